"""Design-space exploration: sweep files, the Pareto front, the point cache and Dask runs
(a real LocalCluster, and a scheduler + worker started on a tcp address)."""

import json
import random
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from gen.cli import main
from gen.demo import run_gemm
from gen.measure.sweep import (
    evaluate_point,
    load_sweep,
    pareto_front,
    parse_sweep,
    point_key,
    run_sweep,
    sweep_tools,
)
from gen.measure.workloads import parse_workload, run_workload
from golden.nonlinear.exp import ExpConfig, exp, exp_reference
from golden.pe_array import PEArrayConfig

ROOT = Path(__file__).resolve().parent.parent


# --- the Pareto front -------------------------------------------------------------------------


def test_pareto_front_keeps_the_non_dominated_points():
    values = [[1, 9], [2, 5], [3, 5], [4, 1], [5, 5], [2, 5], None, [9, 9]]
    # [3, 5] and [5, 5] are dominated by [2, 5]; equal points are both kept; None is left out.
    assert pareto_front(values, ["min", "min"]) == [0, 1, 3, 5]
    # Larger is better for the second objective: only the largest y at the smallest x survive.
    assert pareto_front(values, ["min", "max"]) == [0]
    assert pareto_front([[1, 2, 3]], ["min", "max", "min"]) == [0]
    assert pareto_front([], ["min"]) == []
    with pytest.raises(ValueError, match="senses must be 'min' or 'max'"):
        pareto_front(values, ["min", "low"])
    with pytest.raises(ValueError, match="needs 2 objective values"):
        pareto_front([[1, 2], [1]], ["min", "min"])


def test_pareto_front_matches_a_sort_and_scan_in_two_dimensions():
    # Independent algorithm for two minimized objectives: sort by (x, y), keep each point
    # whose y is below every y seen at a smaller x (or equal to the best at the same x).
    rng = random.Random(3)
    for _ in range(50):
        points = [[rng.randint(0, 12), rng.randint(0, 12)] for _ in range(rng.randint(1, 30))]
        order = sorted(range(len(points)), key=lambda i: points[i])
        expected, best = [], None
        for i in order:
            x, y = points[i]
            if best is None or y < best[1] or (y == best[1] and x == best[0]):
                expected.append(i)
                if best is None or y < best[1]:
                    best = (x, y)
        assert pareto_front(points, ["min", "min"]) == sorted(expected)


# --- sweep files ------------------------------------------------------------------------------


def sweep_doc(**sections):
    doc = {"sweep": {"generator": "pe-array", "simulator": "amaranth"},
           "parameters": {"rows": [1, 2], "cols": {"start": 2, "stop": 6, "step": 2},
                          "ops": ["mul", "madd"]},
           "workload": {"kind": "gemm", "shapes": [[5, 20], [3, 9, 2]]}}
    for name, table in sections.items():
        doc[name] = {**doc.get(name, {}), **table}
    return doc


def test_grid_ranges_and_tuple_parameters():
    spec = parse_sweep(sweep_doc())
    assert spec.grid_size == 6 and spec.swept == ["rows", "cols"]
    assert spec.points[:4] == [{"rows": 1, "cols": 2}, {"rows": 1, "cols": 4},
                               {"rows": 1, "cols": 6}, {"rows": 2, "cols": 2}]
    assert all(c.ops == ("mul", "madd") for c in spec.configs)
    assert spec.configs[5] == PEArrayConfig(rows=2, cols=6, ops=("mul", "madd"))
    assert spec.stages == ("simulate",)
    assert spec.objectives == {"cycles": "min", "max_abs_error": "min"}
    assert spec.workload["shapes"] == [[5, 20, 1], [3, 9, 2]]
    swept_ops = parse_sweep(sweep_doc(parameters={"ops": [["mul"], ["mul", "madd"]]}))
    assert swept_ops.grid_size == 12 and {c.ops for c in swept_ops.configs} == {
        ("mul",), ("mul", "madd")}


def test_random_sample_is_seeded_and_drawn_from_the_grid():
    doc = sweep_doc(sweep={"random": 4, "seed": 7},
                    parameters={"in_width": [4, 6, 8], "max_k": [64, 128]})
    first, again = parse_sweep(doc), parse_sweep(doc)
    grid = parse_sweep(sweep_doc(parameters={"in_width": [4, 6, 8], "max_k": [64, 128]}))
    assert first.points == again.points and len(first.points) == 4
    assert all(p in grid.points for p in first.points)
    assert len({json.dumps(p) for p in first.points}) == 4
    other = parse_sweep(sweep_doc(sweep={"random": 4, "seed": 8},
                                  parameters={"in_width": [4, 6, 8], "max_k": [64, 128]}))
    assert other.points != first.points
    everything = parse_sweep(sweep_doc(sweep={"random": 1000}))
    assert everything.points == parse_sweep(sweep_doc()).points


@pytest.mark.parametrize("change,message", [
    ({"sweep": {"generator": "pe-arry"}}, "unknown generator 'pe-arry'"),
    ({"sweep": {"stages": ["simulate", "route"]}}, "stages must be a list drawn from"),
    ({"sweep": {"simulator": "iverilog"}}, "simulator must be one of verilator, amaranth"),
    ({"sweep": {"objectives": ["luts"]}}, "objective 'luts' is not measured by these stages"),
    ({"sweep": {"objectives": {"cycles": "fast"}}}, "must be 'min' or 'max'"),
    ({"sweep": {"random": 0}}, "sweep random must be an integer >= 1"),
    ({"sweep": {"colour": 1}}, "unknown sweep setting 'colour'"),
    ({"parameters": {"rows": [0, 2]}}, "point rows=0, cols=2: rows must be in 1..256, got 0"),
    ({"parameters": {"row": [1]}}, "unknown parameter 'row' for pe-array"),
    ({"parameters": {"cols": {"start": 4, "stop": 2}}}, "cols range needs integers start"),
    ({"parameters": {"rows": []}}, "rows has an empty list of values"),
    ({"parameters": {"in_width": "8"}}, "in_width must be an integer"),
    ({"workload": {"kind": "conv"}}, "workload kind must be one of gemm, activation"),
    ({"workload": {"kind": "activation"}}, "workload activation runs on exp, gelu, silu"),
    ({"workload": {"shapes": [[5, 0]]}}, "shape sizes must be an integer >= 1"),
    ({"workload": {"stride": 2}}, "unknown workload setting 'stride' for gemm"),
    ({"workload": {"ready_prob": 0}}, "ready_prob must be a number in (0, 1]"),
    ({"extra": {"a": 1}}, "must have a [sweep] table and may have [parameters] and [workload]"),
])
def test_bad_sweeps_are_rejected_before_any_work(change, message):
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        parse_sweep(sweep_doc(**change))


def test_simulate_and_a_workload_go_together():
    doc = sweep_doc(sweep={"stages": ["synthesize"]})
    with pytest.raises(ValueError, match="add 'simulate' to stages"):
        parse_sweep(doc)
    del doc["workload"]
    doc["sweep"]["stages"] = ["simulate"]
    with pytest.raises(ValueError, match="add a \\[workload\\] table"):
        parse_sweep(doc)


@pytest.mark.parametrize("text,message", [
    ("[sweep\n", "malformed sweep file"),
    ("[sweep]\nstages = []\n", "needs generator"),
    ('[sweep]\ngenerator = "pe-array"\n[parameters]\nrows = [1, 300]\n',
     "point rows=300: rows must be in 1..256, got 300"),
    ('[sweep]\ngenerator = "pe-array"\n[parameters]\nrows = 0\n', "rows must be in 1..256, got 0"),
])
def test_cli_rejects_a_bad_sweep_file_in_one_line(text, message, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["sweep", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelgen: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_example_sweep_files_are_valid():
    paths = sorted((ROOT / "gen" / "measure" / "sweeps").glob("*.toml"))
    assert [p.name for p in paths] == ["exp.toml", "pe_array.toml"]
    for path in paths:
        spec = load_sweep(path)
        assert len(spec.points) > 1 and "synthesize" in spec.stages, path
    assert tomllib.loads(paths[1].read_text())["sweep"]["objectives"] == list(spec.objectives)


def test_point_key_covers_config_workload_stages_and_tools():
    spec = parse_sweep(sweep_doc())
    tools = sweep_tools(spec)
    assert "amaranth" in tools and "yosys" not in tools  # nothing synthesized
    keys = {point_key(spec, c, tools) for c in spec.configs}
    assert len(keys) == len(spec.configs)
    key = point_key(spec, spec.configs[0], tools)
    assert point_key(spec, spec.configs[0], {**tools, "amaranth": "0.6.0"}) != key
    other = parse_sweep(sweep_doc(workload={"seed": 2}))
    assert point_key(other, other.configs[0], tools) != key
    verilator = parse_sweep(sweep_doc(sweep={"simulator": "verilator"}))
    assert point_key(verilator, verilator.configs[0], tools) != key


# --- workloads ---------------------------------------------------------------------------------


def test_activation_workload_measures_the_unit_against_float64():
    from gen.registry import get_generator

    config = ExpConfig(order=1, lanes=2, in_width=10, in_frac=5, out_width=12, out_frac=6,
                       poly_frac=10)
    workload = parse_workload("exp", {"kind": "activation", "range": [-4.0, 2.0], "count": 51})
    metrics = run_workload(get_generator("exp"), config, workload, "amaranth")
    fmt_in, fmt_out = config.input_format, config.output_format
    codes = np.unique(np.linspace(-4 / fmt_in.lsb, 2 / fmt_in.lsb, 51).round().astype(int))
    error = np.abs(exp(config, codes) * fmt_out.lsb
                   - np.clip(exp_reference(config, codes), 0, fmt_out.max_value))
    assert metrics["elements"] == codes.size == 51
    assert metrics["max_abs_error"] == pytest.approx(error.max())
    assert metrics["max_abs_error_lsb"] == pytest.approx(error.max() / fmt_out.lsb)
    # Two lanes: one transaction per two elements at II = 1 (26 for 51 elements, 6 for 11),
    # plus the same pipeline latency.
    fewer = run_workload(get_generator("exp"), config, {**workload, "count": 11}, "amaranth")
    assert metrics["cycles"] - fewer["cycles"] == 26 - 6
    with pytest.raises(ValueError, match="range must be \\[lo, hi\\] with lo < hi"):
        parse_workload("exp", {"kind": "activation", "range": [2, 1]})


def test_softmax_workload_rows_sum_to_one():
    from gen.registry import get_generator
    from golden.nonlinear.softmax import SoftmaxConfig

    workload = parse_workload("softmax", {"kind": "softmax", "lengths": [3, 8], "rows": 2})
    metrics = run_workload(get_generator("softmax"), SoftmaxConfig(max_len=16), workload,
                           "amaranth")
    assert metrics["elements"] == 22
    assert 0 < metrics["max_abs_error"] < 2 ** -9 and metrics["max_sum_error"] < 0.01


# --- evaluation and Dask -----------------------------------------------------------------------


def test_synthesize_and_place_and_route_stages(tmp_path, monkeypatch):
    """One point through Yosys alone and one through the whole ECP5 flow: the same cells."""
    monkeypatch.setenv("ACCELGEN_BUILD_DIR", str(tmp_path))
    spec = parse_sweep({"sweep": {"generator": "reduction-tree", "stages": ["synthesize"]},
                        "parameters": {"n": 3, "width": 4}})
    assert spec.objectives == {"luts": "min"}
    task = {"key": "synth", "generator": "reduction-tree", "config": spec.configs[0].to_dict(),
            "stages": ["synthesize"], "workload": None, "simulator": "verilator",
            "target_mhz": 100.0}
    synthesized = evaluate_point(task)
    routed = evaluate_point({**task, "key": "pnr", "stages": ["synthesize", "pnr"]})
    assert synthesized["status"] == routed["status"] == "ok", synthesized.get("traceback")
    area = {k: synthesized["metrics"][k] for k in ("luts", "ffs", "dsps", "brams")}
    assert area == {k: routed["metrics"][k] for k in area}
    assert area["luts"] > 0 and area["ffs"] > 0
    assert routed["metrics"]["fmax_mhz"] > 100 and routed["metrics"]["timing_met"]
    assert Path(routed["metrics"]["pnr_directory"]).is_relative_to(tmp_path)
    assert set(routed["seconds"]) == {"elaborate", "emit", "pnr"}
    assert set(synthesized["seconds"]) == {"elaborate", "emit", "synthesize"}


SMALL_SWEEP = """
[sweep]
generator = "pe-array"
simulator = "amaranth"
objectives = ["cycles", "max_rel_error"]

[parameters]
rows = {rows}
cols = 2
in_width = [4, 8]
max_k = [16, 64]     # K = 20 exceeds max_k = 16: those points fail in the simulate stage

[workload]
kind = "gemm"
shapes = [[5, 20], [3, 9, 2]]
"""


def _cache(out: Path) -> dict:
    return {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in (out / "points").iterdir()}


def test_sweep_on_a_local_cluster_resumes_from_its_cache(tmp_path):
    out = tmp_path / "out"
    part = tmp_path / "part.toml"
    part.write_text(SMALL_SWEEP.format(rows="[2]"))
    first = run_sweep(load_sweep(part), out, workers=2)
    assert (first.computed, first.cached, len(first.failed)) == (4, 0, 2)

    # The whole grid: only the points not yet in the cache run.
    full = tmp_path / "full.toml"
    full.write_text(SMALL_SWEEP.format(rows="[1, 2]"))
    spec = load_sweep(full)
    started = []
    result = run_sweep(spec, out, workers=2, on_start=lambda n, c: started.append((n, c)))
    assert started == [(4, 4)] and result.computed == 4 and len(result.records) == 8
    cache = _cache(out)
    assert len(cache) == 8

    failed = [r for r in result.records if r["status"] != "ok"]
    assert [r["params"]["max_k"] for r in failed] == [16] * 4
    assert all(r["stage"] == "simulate" and "K=20 exceeds max_k=16" in r["error"]
               and "gemm_schedule" in r["traceback"] for r in failed)

    # What a worker measured is what the same run measures here.
    ok = result.records[spec.points.index({"rows": 1, "in_width": 8, "max_k": 64})]
    config = PEArrayConfig(rows=1, cols=2, in_width=8, max_k=64)
    direct = [run_gemm(config, *shape, simulator="amaranth") for shape in ((5, 20, 1),
                                                                           (3, 9, 2))]
    assert ok["metrics"]["cycles"] == sum(r.cycles for r in direct)
    assert ok["metrics"]["max_rel_error"] == max(r.max_rel_error for r in direct)
    assert ok["metrics"]["bit_exact"]

    front_keys = json.loads((out / "sweep.json").read_text())["pareto_front"]
    assert front_keys == [result.records[i]["key"] for i in result.front]
    assert {result.records[i]["params"]["rows"] for i in result.front} == {2}
    assert (out / "pareto.png").stat().st_size > 0

    # Resume with everything cached: nothing is scheduled (the scheduler address is not even
    # reachable) and no point file is written again, failed ones included.
    again = run_sweep(spec, out, scheduler="tcp://127.0.0.1:9")
    assert (again.computed, again.cached) == (0, 8)
    assert _cache(out) == cache
    assert again.front == result.front

    # --retry-failed runs the failed points again, and only those.
    retried = run_sweep(spec, out, workers=2, retry_failed=True)
    assert (retried.computed, len(retried.failed)) == (4, 4)
    rewritten = {name for name, entry in _cache(out).items() if entry != cache[name]}
    assert rewritten == {f"{r['key']}.json" for r in failed}


def test_sweep_cli_on_an_existing_dask_cluster(tmp_path, capsys):
    """``--scheduler`` uses a cluster started apart from accelgen; Verilator runs on it."""
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    processes = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(scheduler_file), "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        sweep = tmp_path / "tiny.toml"
        sweep.write_text('[sweep]\ngenerator = "pe-array"\n'
                         '[parameters]\nrows = 1\ncols = 2\nmax_k = [8, 4096]\n'
                         '[workload]\nkind = "gemm"\nshapes = [[3, 20]]\n')
        out = tmp_path / "out"
        assert main(["sweep", str(sweep), "-o", str(out), "--scheduler", address]) == 0
        printed = capsys.readouterr().out
        assert f"2 to run on {address}" in printed
        assert "2 points: 2 computed, 0 from the cache, 1 failed" in printed
        assert "failed at simulate: max_k=8: ValueError: K=20 exceeds max_k=8" in printed
        summary = json.loads((out / "sweep.json").read_text())
        assert summary["spec"]["simulator"] == "verilator" and summary["failed"] == 1
        (ok,) = [p for p in summary["points"] if p["status"] == "ok"]
        assert ok["params"] == {"max_k": 4096} and ok["metrics"]["bit_exact"]
        assert ok["metrics"]["cycles"] == ok["metrics"]["transactions"] + max(
            ok["metrics"]["shapes"][0]["latency"])
        assert "verilator binary" in summary["tools"]
        assert main(["sweep", str(sweep), "-o", str(out), "--scheduler", address]) == 0
        assert "2 points: 0 computed, 2 from the cache, 1 failed" in capsys.readouterr().out
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in reversed(processes):
            process.wait(timeout=30)


def test_readme_sweep_example_is_a_valid_sweep():
    readme = (ROOT / "README.md").read_text()
    (example,) = [block for block in re.findall(r"```toml\n(.*?)```", readme, re.S)
                  if "[sweep]" in block]
    spec = parse_sweep(tomllib.loads(example))
    assert spec.grid_size == 3 * 4 * 2 and spec.stages == ("simulate", "synthesize")
