"""``make bench``: the measured numbers users trade area, speed and accuracy with, in one report.

The benchmark collects; the measurements are the project's own:

- **PE utilization**: GEMV and GEMM on the PE array in Verilator (:func:`gen.demo.run_gemm`),
  useful MACs over the MAC-cycles the array offers from the first input accepted to the last
  output taken, next to the bound the tiling's zero padding leaves (useful MACs over
  transactions x PEs).
- **Simulation speed**: the same PE array under cocotb + Verilator, under the Amaranth
  simulator and in the native C++ Verilator harness (:func:`sim.backends.run_stream`,
  :mod:`sim.native`), the Verilog emission time and the Verilator build times (in an empty
  build directory), as the array grows. Each simulator runs a short and
  a long GEMV; cycles per second is the difference in simulated cycles over the difference in
  wall time (the fixed cost of a run, Verilog emission and simulator start-up, cancels out and
  is reported as ``startup_seconds``).
- **ECP5 resources and Fmax**: the rows of an ``accelgen fpga-bench`` results JSON (the board
  flow's report of each build) when one is given, otherwise the PE array at 2x2 and 4x4 placed
  and routed here (:func:`gen.measure.fpga_bench.write_fpga_bench`, a few minutes).
- **Nonlinear accuracy** (:mod:`gen.measure.accuracy`) and **sparse storage**
  (:mod:`gen.measure.sparse_storage`).

Every section records the machine and tool versions it was measured with, and every figure
carries them in its caption.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from golden.pe_array import PEArrayConfig, gemm_schedule, pe_array
from hw.pe_array import PEArray
from sim.backends import SIMULATORS, run_stream

from ..emit import atomic_write, replace_between_markers, verilog_text
from .figures import pyplot, save_figure
from .provenance import add_caption, caption, caption_png, machine_info, measured_with
from .streaming import markdown as streaming_markdown
from .streaming import streaming_bench

__all__ = ["UTILIZATION_ARRAYS", "GEMV_SHAPES", "GEMM_SHAPES", "SPEED_SIZES", "ECP5_SUBSET",
           "ACCELERATOR_SPEED", "accelerator_speed_bench",
           "SECTIONS", "DEFAULT_FPGA_JSON", "utilization_bench", "simulation_speed_bench",
           "ecp5_bench", "accuracy_bench", "sparse_bench", "markdown_report",
           "write_bench", "README_MARKERS"]

#: PE arrays (rows, cols) of the utilization bench.
UTILIZATION_ARRAYS = ((4, 8), (8, 8))
#: GEMV shapes (M, K): some divide the arrays, some do not.
GEMV_SHAPES = ((32, 64), (64, 203), (30, 50), (5, 9), (128, 256))
#: GEMM shapes (M, K, N).
GEMM_SHAPES = ((32, 64, 8), (64, 203, 4), (30, 50, 3), (100, 300, 8))
#: PE arrays (rows, cols) of the simulation-speed bench.
SPEED_SIZES = ((2, 2), (4, 4), (4, 8), (8, 8))
#: PE arrays placed and routed when no fpga-bench JSON is given (fpga_bench's design tuples).
ECP5_SUBSET = [("PE array", 2, 2, "pe-array", {}), ("PE array", 4, 4, "pe-array", {})]
#: Where ``accelgen fpga-bench`` (``make fpga-bench``) writes its results.
DEFAULT_FPGA_JSON = "build/fpga/fpga_bench.json"
#: C++ optimization of the native harness in the speed bench (the tests build with -O1).
BENCH_NATIVE_OPT = "-O2"
#: Bench sections in report order.
SECTIONS = ("utilization", "simulation_speed", "ecp5", "accuracy", "sparse_storage",
            "streaming")

README_MARKERS = ("<!-- bench:start -->\n", "<!-- bench:end -->")


def _config(rows: int, cols: int) -> PEArrayConfig:
    return PEArrayConfig(rows=rows, cols=cols, in_width=8)


def _savefig(fig, path: Path, text: str) -> None:
    add_caption(fig, text)
    save_figure(fig, path)


# --- PE utilization ---------------------------------------------------------------------------


def utilization_bench(arrays=UTILIZATION_ARRAYS, gemv=GEMV_SHAPES, gemm=GEMM_SHAPES, *,
                      on_step: Callable[[str], None] | None = None) -> dict:
    """GEMV and GEMM on each PE array in Verilator, no stalls: measured utilization per shape."""
    from ..demo import run_gemm

    rows = []
    for r, c in arrays:
        config = _config(r, c)
        for shape in [(m, k, 1) for m, k in gemv] + [tuple(s) for s in gemm]:
            m, k, n = shape
            if on_step:
                on_step(f"utilization: {r}x{c} array, {'GEMV' if n == 1 else 'GEMM'} "
                        f"{m}x{k}{'' if n == 1 else f'x{n}'}")
            run = run_gemm(config, m, k, n, seed=1, simulator="verilator")
            macs = m * k * n
            rows.append({"rows": r, "cols": c, "workload": "GEMV" if n == 1 else "GEMM",
                         "m": m, "k": k, "n": n, "macs": macs, "transactions": run.vectors,
                         "cycles": run.cycles, "latency": run.latency,
                         "utilization": run.utilization,
                         "padding_bound": macs / (run.vectors * r * c),
                         "macs_per_cycle": run.macs_per_cycle,
                         "initiation_interval": run.initiation_interval,
                         "bit_exact": run.bit_exact})
    return {"method": "cocotb on Verilator, no stalls; utilization = M*K*N / (cycles * rows * "
                      "cols), cycles from the first input accepted to the last output taken; "
                      "padding_bound = M*K*N / (transactions * rows * cols)",
            "rows": rows, **measured_with(["verilator"])}


def _plot_utilization(data: dict, path: Path) -> None:
    plt = pyplot()
    rows = data["rows"]
    arrays = list(dict.fromkeys((r["rows"], r["cols"]) for r in rows))
    labels = list(dict.fromkeys(_shape_label(r) for r in rows))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / len(arrays)
    for a, (nr, nc) in enumerate(arrays):
        mine = {_shape_label(r): r for r in rows if (r["rows"], r["cols"]) == (nr, nc)}
        xs = np.arange(len(labels)) + (a - (len(arrays) - 1) / 2) * width
        ax.bar(xs, [mine[label]["utilization"] for label in labels], width,
               label=f"{nr}x{nc} measured")
        ax.scatter(xs, [mine[label]["padding_bound"] for label in labels], marker="_", s=200,
                   color="k", zorder=3, label="padding bound" if a == 0 else None)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="PE utilization", ylim=(0, 1.05),
           title="PE utilization in Verilator: useful MACs / (cycles x PEs)")
    ax.legend(fontsize=8)
    ax.grid(True, axis="y", alpha=0.3)
    _savefig(fig, path, caption(data))


def _shape_label(row: dict) -> str:
    return (f"GEMV {row['m']}x{row['k']}" if row["n"] == 1 else
            f"GEMM {row['m']}x{row['k']}x{row['n']}")


# --- simulation speed -------------------------------------------------------------------------


@contextmanager
def _fresh_build_dir():
    """A temporary ``ACCELGEN_BUILD_DIR`` and no compiler cache, so the Verilator builds are
    timed from scratch."""
    saved = {name: os.environ.get(name) for name in ("ACCELGEN_BUILD_DIR", "ACCELGEN_NO_CCACHE")}
    directory = tempfile.mkdtemp(prefix="accelgen-bench-")
    os.environ.update(ACCELGEN_BUILD_DIR=directory, ACCELGEN_NO_CCACHE="1")
    try:
        yield Path(directory)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(directory, ignore_errors=True)


def _gemv_stream(config: PEArrayConfig, transactions: int, seed: int):
    """A GEMV of ``transactions`` input transactions, 8 per output (K = 8 * cols)."""
    rng = np.random.default_rng(seed)
    lo, hi = config.operand_range
    blocks = max(1, transactions // 8)
    w = rng.integers(lo, hi + 1, (config.rows * blocks, 8 * config.cols))
    x = rng.integers(lo, hi + 1, (8 * config.cols, 1))
    schedule = gemm_schedule(config, w, x)
    expected, sources = pe_array(config, **schedule)
    return schedule, expected, sources


def _timed_run(config: PEArrayConfig, simulator: str, transactions: int
               ) -> tuple[int, float, float, object]:
    """Cycles, wall seconds and CPU seconds (this process and its simulator processes) of one
    stream run; the golden model's time is left out."""
    schedule, expected, sources = _gemv_stream(config, transactions, seed=transactions)
    started, cpu = time.perf_counter(), _all_cpu()
    if simulator == "native":
        from sim.native import run_native_stream

        result = run_native_stream(PEArray(config), "pe_array", schedule, expected, sources,
                                   opt=BENCH_NATIVE_OPT, trace=False)
    else:
        result = run_stream(PEArray(config), "pe_array", schedule, expected, sources,
                            simulator=simulator)
    return result.cycles, time.perf_counter() - started, _all_cpu() - cpu, result


#: The native harness's speed over cocotb's: steady (run cost left out) and end to end, per wall
#: and per CPU second (what a loaded machine changes less).
_SPEED_RATIOS = {"native_vs_cocotb": "cycles_per_second",
                 "native_vs_cocotb_cpu": "cycles_per_cpu_second",
                 "native_vs_cocotb_end_to_end": "end_to_end_cycles_per_second",
                 "native_vs_cocotb_end_to_end_cpu": "end_to_end_cycles_per_cpu_second"}


def simulation_speed_bench(sizes=SPEED_SIZES, *, transactions: dict | None = None,
                           accelerator: dict | None = None,
                           on_step: Callable[[str], None] | None = None) -> dict:
    """Emission and Verilator build time, and cycles per second on both simulators, per array;
    and the whole accelerator's rows (:func:`accelerator_speed_bench` with ``accelerator``,
    default :data:`ACCELERATOR_SPEED`; ``{}`` skips them).

    ``transactions`` maps each simulator to the length of its long run (default: 20000 for
    cocotb on Verilator, 4000 for the slower Amaranth simulator, 200000 for the native
    harness); the short run is 8 transactions. ``native_vs_cocotb`` is the ratio of the native
    harness's cycles/s to cocotb's, measured side by side.
    """
    from sim.native import build_stream_harness
    from sim.runner import build

    lengths = {"verilator": 20000, "amaranth": 4000, "native": 200000,
               **(transactions or {})}
    rows = []
    for r, c in sizes:
        config = _config(r, c)
        if on_step:
            on_step(f"simulation speed: {r}x{c} array: emit and Verilator build")
        started = time.perf_counter()
        text = verilog_text(PEArray(config), "pe_array")
        emit_seconds = time.perf_counter() - started
        row = {"rows": r, "cols": c, "pes": r * c, "verilog_bytes": len(text.encode()),
               "verilog_lines": text.count("\n"), "emit_seconds": emit_seconds}
        with _fresh_build_dir():
            started = time.perf_counter()
            build(PEArray(config), "pe_array")
            row["verilator_build_seconds"] = time.perf_counter() - started
            started, cpu = time.perf_counter(), _children_cpu()
            build_stream_harness(PEArray(config), "pe_array", opt=BENCH_NATIVE_OPT)
            row["native_build_seconds"] = time.perf_counter() - started
            row["native_build_cpu_seconds"] = _children_cpu() - cpu
            for simulator in SIMULATORS:
                if on_step:
                    on_step(f"simulation speed: {r}x{c} array on {simulator}")
                short_cycles, short_seconds, short_cpu, _ = _timed_run(config, simulator, 8)
                long_cycles, long_seconds, long_cpu, result = _timed_run(config, simulator,
                                                                         lengths[simulator])
                rate = (long_cycles - short_cycles) / (long_seconds - short_seconds)
                cpu_rate = ((long_cycles - short_cycles) / (long_cpu - short_cpu)
                            if long_cpu > short_cpu else None)
                row[simulator] = {
                    "cycles": long_cycles, "seconds": long_seconds, "cpu_seconds": long_cpu,
                    "cycles_per_second": rate if rate > 0 else None,
                    "cycles_per_cpu_second": cpu_rate,
                    "end_to_end_cycles_per_second": long_cycles / long_seconds,
                    "end_to_end_cycles_per_cpu_second": (long_cycles / long_cpu if long_cpu
                                                         else None),
                    "startup_seconds": short_seconds - short_cycles / rate if rate > 0 else None,
                    "short_run": {"cycles": short_cycles, "seconds": short_seconds,
                                  "cpu_seconds": short_cpu},
                    "load_average_1min": round(os.getloadavg()[0], 2)}
                if simulator == "native":  # the C++ loop alone, without file and process costs
                    row[simulator]["loop_cycles_per_second"] = (result.cycles
                                                                / result.loop_seconds)
            for ratio, key in _SPEED_RATIOS.items():
                native, cocotb = row["native"].get(key), row["verilator"].get(key)
                if native and cocotb:
                    row[ratio] = native / cocotb
        rows.append(row)
    accelerator = ACCELERATOR_SPEED if accelerator is None else accelerator
    accelerator_rows = (accelerator_speed_bench(**accelerator, on_step=on_step)
                        if accelerator else [])
    return {"method": "GEMV streams without stalls; cycles_per_second = (long - short run "
                      "cycles) / (long - short run wall seconds); startup_seconds = the short "
                      "run's time less its cycles at that rate (Verilog emission to find the "
                      "cached build, simulator start-up); verilator_build_seconds in an empty "
                      "build directory; native: the C++ Verilator harness of sim/native.py "
                      f"built with {BENCH_NATIVE_OPT}, stimulus and expected words from a file; "
                      "cycles_per_cpu_second the same differences over CPU seconds (the "
                      "bench process and its simulator processes); end_to_end: a long run's "
                      "cycles over its whole time; native_vs_cocotb*: the ratios; "
                      "accelerator rows: the top running a compiled "
                      "layer, cycles_per_second = clock cycles simulated (program load and "
                      "status polls included) / wall seconds, cycles_per_cpu_second the same "
                      "per CPU second of the simulation loop (fast model)",
            "rows": rows, "accelerator": accelerator_rows, **measured_with(["verilator"])}


#: The accelerator rows of the simulation-speed bench: the default 4x8 accelerator running the
#: issue's Mamba block (d_model 16, d_inner 32, d_state 4, 16 tokens) on both DRAM models.
ACCELERATOR_SPEED = {"config": {"rows": 4, "cols": 8},
                     "mamba": {"d_model": 16, "d_inner": 32, "d_state": 4, "seq_len": 16},
                     "dram_models": ("fast", "checked"), "repeats": 3}


def accelerator_speed_bench(config: dict, mamba: dict, dram_models=("fast", "checked"),
                            repeats: int = 3,
                            on_step: Callable[[str], None] | None = None) -> list[dict]:
    """The whole accelerator top under Verilator on each DRAM model, running a compiled Mamba
    block: clock cycles simulated per wall-clock second and per CPU second, and what its
    build cost.

    ``fast``: the native harness; its loop's wall and CPU time (``repeats`` runs, the best
    kept: the machine is shared), the model's build time from its build record. ``checked``:
    cocotb, one run, wall time of the whole run (start-up included, which is small next to
    its per-cycle cost), no CPU time.
    """
    from golden.accelerator import AcceleratorConfig

    from ..compiler import (
        MambaDims,
        compile_mamba_block,
        quantize_mamba_weights,
        random_mamba_weights,
    )
    from ..runtime import Accelerator

    cfg = AcceleratorConfig(**config)
    dims = MambaDims(**mamba)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((dims.seq_len, dims.d_model))
    program = compile_mamba_block(dims, quantize_mamba_weights(
        random_mamba_weights(dims, rng), calibration=x, config=cfg), cfg)
    accelerator = Accelerator(cfg)
    golden = accelerator.run(program, x)
    rows = []
    for model in dram_models:
        if on_step:
            on_step(f"simulation speed: {cfg.rows}x{cfg.cols} accelerator, {model} DRAM model")
        started = time.perf_counter()
        runs = [accelerator.run(program, x, backend="verilator", dram_model=model)
                for _ in range(repeats if model == "fast" else 1)]
        first_seconds = time.perf_counter() - started
        best = min(runs, key=lambda r: r.hardware.sim_seconds)
        hw = best.hardware
        row = {"rows": cfg.rows, "cols": cfg.cols,
               "workload": f"Mamba block d_model {dims.d_model}, d_inner {dims.d_inner}, "
                           f"d_state {dims.d_state}, {dims.seq_len} tokens",
               "dram_model": model, "instructions": len(program.words),
               "core_cycles": best.measured_cycles, "sim_cycles": hw.sim_cycles,
               "seconds": hw.sim_seconds, "cycles_per_second": hw.cycles_per_second,
               "cpu_seconds": hw.sim_cpu_seconds,
               "cycles_per_cpu_second": (hw.sim_cycles / hw.sim_cpu_seconds
                                         if hw.sim_cpu_seconds else None),
               "bit_exact": bool(np.array_equal(best.output_q, golden.output_q)),
               "all_runs_seconds": [r.hardware.sim_seconds for r in runs],
               "load_average_1min": round(os.getloadavg()[0], 2),
               "first_call_seconds": first_seconds}
        if model == "fast":
            from sim.accelerator_native import native_build

            build = native_build(cfg)
            record = json.loads((build.build_dir / "build.json").read_text())
            row.update(build_seconds=record["seconds"], build_cpu_seconds=record["cpu_seconds"],
                       build_load_average=record.get("load_average"),
                       build_command=record["command"])
        rows.append(row)
    return rows


def _children_cpu() -> float:
    """CPU seconds of the finished child processes (compilers) so far."""
    usage = os.times()
    return usage.children_user + usage.children_system


def _all_cpu() -> float:
    """CPU seconds of this process and of its finished child processes (simulators) so far."""
    usage = os.times()
    return usage.user + usage.system + usage.children_user + usage.children_system


def _plot_speed(data: dict, path: Path) -> None:
    plt = pyplot()
    rows = data["rows"]
    pes = [r["pes"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for simulator, marker in zip(SIMULATORS, "os^"):
        if not all(simulator in r for r in rows):  # a report from before the native harness
            continue
        left.plot(pes, [r[simulator]["cycles_per_second"] or np.nan for r in rows],
                  f"{marker}-", label=f"{simulator} (steady)")
        left.plot(pes, [r[simulator]["end_to_end_cycles_per_second"] for r in rows],
                  f"{marker}:", label=f"{simulator} (end to end)")
    left.set(xscale="log", yscale="log", xlabel="PE array",
             ylabel="simulated cycles per second", title="simulation speed, PE array GEMV")
    left.legend(fontsize=8)
    right.plot(pes, [r["verilator_build_seconds"] for r in rows], "o-", label="Verilator build")
    if all("native_build_seconds" in r for r in rows):
        right.plot(pes, [r["native_build_seconds"] for r in rows], "^-",
                   label=f"native build ({BENCH_NATIVE_OPT})")
    right.plot(pes, [r["emit_seconds"] for r in rows], "s-", label="Verilog emission")
    right.set(xscale="log", yscale="log", xlabel="PE array", ylabel="seconds",
              title="build time")
    right.legend(fontsize=8)
    for ax in (left, right):
        _array_ticks(ax, [(r["rows"], r["cols"]) for r in rows])
        ax.grid(True, which="both", alpha=0.3)
    _savefig(fig, path, caption(data))


def _array_ticks(ax, shapes) -> None:
    """x ticks at the arrays' PE counts, labelled ``rows x cols``, on a log axis."""
    from matplotlib.ticker import NullLocator

    ticks = {r * c: f"{r}x{c}" for r, c in shapes}
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(list(ticks), list(ticks.values()))


# --- ECP5 resources and Fmax ------------------------------------------------------------------


def _yosys_version(directory: str | None) -> str | None:
    """The Yosys version a build's log names (``<name>.rpt``; ``synth.log`` of a core alone)."""
    if not directory:
        return None
    for log in (*Path(directory).glob("*.rpt"), Path(f"{directory}.synth") / "synth.log"):
        if log.exists():
            match = re.search(r"^\s*(Yosys \d[^\n(]*)", log.read_text(errors="replace"), re.M)
            if match:
                return match.group(1).strip()
    return None


def ecp5_bench(out_dir: Path, fpga_json: str | Path | None = None, *, designs=None,
               on_step: Callable[[str], None] | None = None) -> dict:
    """ECP5-85F resources and Fmax per array size: the rows of ``fpga_json`` (written by
    ``accelgen fpga-bench``) if it exists, else ``designs`` (default :data:`ECP5_SUBSET`)
    built here into ``out_dir/fpga``."""
    if fpga_json is not None and Path(fpga_json).exists():
        data = json.loads(Path(fpga_json).read_text())
        source = {"fpga_bench_json": str(fpga_json), "built_by_this_run": False}
    else:
        from .fpga_bench import write_fpga_bench

        def stage(name: str) -> None:
            if on_step:
                on_step(f"ECP5: {name}")

        paths = write_fpga_bench(Path(out_dir) / "fpga", designs or ECP5_SUBSET,
                                 on_stage=stage)
        data = json.loads(paths[0].read_text())
        source = {"fpga_bench_json": str(paths[0]), "built_by_this_run": True}
    # fpga-bench's JSON records its machine and tools (older ones did not); the builds' logs
    # name their Yosys either way.
    info = {"machine": data.get("machine", f"not recorded in {source['fpga_bench_json']}"),
            "tools": dict(data.get("tools", {}))}
    rows = []
    for row in data["rows"]:
        rows.append({**row, "yosys": _yosys_version(row.get("directory"))})
    versions = sorted({r["yosys"] for r in rows if r["yosys"]})
    info["tools"] = {**info["tools"], "yosys (from the build logs)": ", ".join(versions)}
    return {"method": "each core in the Fmax harness on the ECP5-85F (ulx3s-85f), placed and "
                      "routed by the board flow; the core's own cells (LUTs = LUT4 + 2 per "
                      "CCU2C), Fmax after routing",
            "board": data.get("board"), "target_mhz": data.get("target_mhz"), **source,
            "rows": rows, **info}


def _plot_ecp5(data: dict, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for label in dict.fromkeys(r["label"] for r in data["rows"]):
        mine = [r for r in data["rows"] if r["label"] == label and "luts" in r]
        macs = [r["rows"] * r["cols"] for r in mine]
        axes[0].plot(macs, [r["luts_per_mac"] for r in mine], "o-", label=label)
        axes[1].plot(macs, [r["dsps_per_mac"] for r in mine], "o-", label=label)
        timed = [r for r in mine if r.get("fmax_mhz") is not None]
        axes[2].plot([r["rows"] * r["cols"] for r in timed], [r["fmax_mhz"] for r in timed],
                     "o-", label=label)
    for ax, ylabel in zip(axes, ("LUTs per MAC", "DSPs per MAC", "Fmax (MHz)")):
        ax.set(xscale="log", xlabel="array (rows x cols)", ylabel=ylabel)
        _array_ticks(ax, [(r["rows"], r["cols"]) for r in data["rows"]])
        ax.grid(True, which="both", alpha=0.3)
    if data.get("target_mhz"):
        axes[2].axhline(data["target_mhz"], color="grey", linestyle=":")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"ECP5-85F ({data.get('board')}), cores in the Fmax harness", fontsize=10)
    _savefig(fig, path, _section_caption(data))


# --- nonlinear accuracy and sparse storage ----------------------------------------------------


def accuracy_bench(out_dir: Path) -> dict:
    """The nonlinear units' accuracy report
    (:func:`gen.measure.accuracy.write_accuracy_report`) into ``out_dir/accuracy``,
    its figures captioned; returns its summary."""
    from .accuracy import write_accuracy_report

    info = measured_with([])
    paths = write_accuracy_report(Path(out_dir) / "accuracy")
    for png in paths[1:]:
        caption_png(png, caption(info))
    data = json.loads(paths[0].read_text())
    softmax = {row: methods for row, methods in data["softmax"].items()}
    return {"method": "golden models (bit-exact with the RTL, checked by the test suite) "
                      "against float64 and the published baselines",
            "report": str(paths[0]), "figures": [str(p) for p in paths[1:]],
            **{name: data[name] for name in ("exp", "gelu", "silu")}, "softmax": softmax,
            "layernorm": data["layernorm"],
            "targets": data["targets"], **info}


def sparse_bench(out_dir: Path) -> dict:
    """The sparse encodings' storage report
    (:func:`gen.measure.sparse_storage.write_storage_report`) into ``out_dir/sparse``,
    its figure captioned; returns its summary."""
    from .sparse_storage import write_storage_report

    info = measured_with([])
    paths = write_storage_report(Path(out_dir) / "sparse")
    caption_png(paths[1], caption(info))
    data = json.loads(paths[0].read_text())
    return {"method": "bits per element of each encoding of random tensors, every encoding "
                      "decoded back and compared", "report": str(paths[0]),
            "figures": [str(paths[1])], "config": data["config"], "elements": data["elements"],
            "rows": [{"density": r["density"], "bits_per_element": r["bits_per_element"]}
                     for r in data["rows"]],
            "crossover": data["crossover"], **info}


# --- the report -------------------------------------------------------------------------------


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _whole(value) -> str:
    """A figure rounded to a whole number, with thousands separators."""
    return "-" if value is None else f"{value:,.0f}"


def _section_caption(section: dict) -> str:
    """What a section was measured with; an fpga-bench JSON from before machines were recorded
    has a note in place of the machine."""
    machine = section["machine"]
    if not isinstance(machine, dict):
        return f"{machine}; " + "; ".join(f"{k} {v}" for k, v in section["tools"].items())
    return caption(section)


def _measured_line(section: dict) -> str:
    return f"*{_section_caption(section)}*"


def markdown_report(report: dict) -> str:
    """The README's bench section: one table per measured section, each with its machine and
    tool versions."""
    out = []
    if (data := report.get("utilization")):
        arrays = list(dict.fromkeys((r["rows"], r["cols"]) for r in data["rows"]))
        by_shape: dict[str, dict] = {}
        for r in data["rows"]:
            by_shape.setdefault(_shape_label(r), {})[(r["rows"], r["cols"])] = r
        out += ["**PE utilization** (Verilator, no stalls: measured utilization, cycles, and "
                "the bound the tiling's padding leaves, useful MACs / (transactions x PEs))", "",
                "| workload | " + " | ".join(f"{r}x{c}: utilization | cycles | bound"
                                            for r, c in arrays) + " |",
                "|---|" + "---:|---:|---:|" * len(arrays)]
        for label, cells in by_shape.items():
            out.append(f"| {label} | " + " | ".join(
                f"{cells[a]['utilization']:.1%} | {cells[a]['cycles']} | "
                f"{cells[a]['padding_bound']:.1%}" if a in cells else "- | - | -"
                for a in arrays) + " |")
        out += ["", _measured_line(data), ""]
    if (data := report.get("simulation_speed")):
        out += ["**Simulation speed** (PE array GEMV; steady cycles/s without the fixed cost "
                "of a run, which is given as start-up)", "",
                "| array | Verilog lines | emit (s) | Verilator build (s) | cocotb cycles/s | "
                "start-up (s) | Amaranth cycles/s | start-up (s) | native build (s) | "
                "native cycles/s | native / cocotb |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in data["rows"]:
            v, a, n = r["verilator"], r["amaranth"], r.get("native", {})
            ratio = r.get("native_vs_cocotb")
            out.append(f"| {r['rows']}x{r['cols']} | {r['verilog_lines']} | "
                       f"{r['emit_seconds']:.2f} | {r['verilator_build_seconds']:.1f} | "
                       f"{_fmt(v['cycles_per_second'])} | {_fmt(v['startup_seconds'], 2)} | "
                       f"{_fmt(a['cycles_per_second'])} | {_fmt(a['startup_seconds'], 2)} | "
                       f"{_fmt(r.get('native_build_seconds'), 2)} | "
                       f"{_fmt(n.get('cycles_per_second'))} | "
                       f"{_fmt(ratio, 2)}{'x' if ratio else ''} |")
        if any("native_vs_cocotb_cpu" in r for r in data["rows"]):
            out += ["", "| array | cocotb cycles per CPU-s | native cycles per CPU-s | "
                    "native / cocotb: steady, wall | steady, CPU | end to end, wall | "
                    "end to end, CPU | native loop alone (cycles/s) | load |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for r in data["rows"]:
                if "native_vs_cocotb_cpu" not in r:
                    continue
                v, n = r["verilator"], r["native"]
                out.append(f"| {r['rows']}x{r['cols']} | {_fmt(v['cycles_per_cpu_second'])} | "
                           f"{_fmt(n['cycles_per_cpu_second'])} | " + " | ".join(
                               f"{_fmt(r.get(k), 3)}x" if r.get(k) else "-"
                               for k in _SPEED_RATIOS) +
                           f" | {_fmt(n.get('loop_cycles_per_second'))} | "
                           f"{_fmt(n.get('load_average_1min'))} |")
        if data.get("accelerator"):
            out += ["", "| accelerator | workload | DRAM model | build (s) | build CPU (s) | "
                    "cycles simulated | cycles/s (wall) | cycles per CPU-second | load |",
                    "|---|---|---|---:|---:|---:|---:|---:|---:|"]
            for r in data["accelerator"]:
                out.append(f"| {r['rows']}x{r['cols']} top | {r['workload']} | "
                           f"{r['dram_model']} | {_whole(r.get('build_seconds'))} | "
                           f"{_whole(r.get('build_cpu_seconds'))} | {r['sim_cycles']} | "
                           f"{_whole(r['cycles_per_second'])} | "
                           f"{_whole(r['cycles_per_cpu_second'])} | "
                           f"{_fmt(r['load_average_1min'])} |")
        out += ["", _measured_line(data), ""]
    if (data := report.get("ecp5")):
        out += [f"**ECP5-85F** ({'built by this run' if data['built_by_this_run'] else 'from '}"
                f"{'' if data['built_by_this_run'] else data['fpga_bench_json']}; target "
                f"{_fmt(data['target_mhz'])} MHz)", "",
                "| core | size | LUTs | LUTs/MAC | DSPs/MAC | FFs | Fmax (MHz) |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in data["rows"]:
            if "luts" not in r:
                out.append(f"| {r['label']} | {r['rows']}x{r['cols']} | not built | | | | |")
                continue
            fmax = "synthesis only" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.1f}"
            out.append(f"| {r['label']} | {r['rows']}x{r['cols']} | {r['luts']} | "
                       f"{r['luts_per_mac']:.1f} | {r['dsps_per_mac']:.2f} | {r['ffs']} | "
                       f"{fmax} |")
        out += ["", _measured_line(data), ""]
    if (data := report.get("accuracy")):
        out += ["**Nonlinear units** (hardware outputs against float64)", "",
                "| unit | method | max error | figure |", "|---|---|---:|---|"]
        for unit in ("exp", "gelu", "silu"):
            for method, summary in data[unit].items():
                if not method.startswith("ours") or method.endswith("approximation"):
                    continue
                key = "max_rel_error" if "max_rel_error" in summary else "max_abs_error"
                out.append(f"| {unit} | {method.removeprefix('ours, ')} | "
                           f"{summary[key]:.3g} | {key.replace('_', ' ')} |")
        worst = {order: max(row[f"ours, exp order {order}"]["max_abs_error"]
                            for row in data["softmax"].values()) for order in (1, 2)}
        for order, value in worst.items():
            out.append(f"| softmax | exp order {order}, L <= 1024 | {value:.3g} | max abs error "
                       f"of p |")
        if "layernorm" in data:  # reports written before the unit existed lack it
            worst = max(row["max_abs_error"] for row in data["layernorm"].values())
            out.append(f"| layernorm | Q5.10 out, n <= 1024 | {worst:.3g} | max abs error "
                       f"({worst * 1024:.3f} LSB) |")
        out += ["", _measured_line(data), ""]
    if (data := report.get("sparse_storage")):
        formats = list(data["rows"][0]["bits_per_element"])
        out += [f"**Sparse storage** (bits per element, B = {data['config']['block']}, "
                f"{data['config']['value_width']}-bit values; bitmap and coordinate cross at "
                f"density {_fmt(data['crossover']['measured_density'])})", "",
                "| density | " + " | ".join(formats) + " |",
                "|---:|" + "---:|" * len(formats)]
        for r in data["rows"]:
            if r["density"] in (0.01, 0.05, 0.1, 0.3, 0.5, 1.0):
                out.append(f"| {r['density']:g} | " + " | ".join(
                    f"{r['bits_per_element'][f]:.2f}" for f in formats) + " |")
        out += ["", _measured_line(data), ""]
    if (data := report.get("streaming")):
        out += streaming_markdown(data) + ["", _measured_line(data), ""]
    return "\n".join(out)


_PLOTS = {"utilization": _plot_utilization, "simulation_speed": _plot_speed,
          "ecp5": _plot_ecp5}


def write_bench(out_dir: str | Path, *, sections=SECTIONS, fpga_json: str | Path | None = None,
                readme: str | Path | None = None, options: dict | None = None,
                on_step: Callable[[str], None] | None = None) -> list[Path]:
    """Measure ``sections`` and write ``bench.json``, ``bench.md`` and the figures into
    ``out_dir``; sections not measured now are kept from an earlier ``bench.json`` there.

    ``options`` maps a section to keyword arguments of its function (e.g. smaller sizes);
    ``readme`` gets the Markdown between its bench markers. Returns the paths written.
    """
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"bench sections must be drawn from {', '.join(SECTIONS)}, "
                         f"got {', '.join(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = options or {}
    report_path = out_dir / "bench.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    runners = {
        "utilization": lambda **kw: utilization_bench(on_step=on_step, **kw),
        "simulation_speed": lambda **kw: simulation_speed_bench(on_step=on_step, **kw),
        "ecp5": lambda **kw: ecp5_bench(out_dir, fpga_json, on_step=on_step, **kw),
        "accuracy": lambda **kw: accuracy_bench(out_dir, **kw),
        "sparse_storage": lambda **kw: sparse_bench(out_dir, **kw),
        "streaming": lambda **kw: streaming_bench(on_step=on_step, **kw),
    }
    paths = [report_path, out_dir / "bench.md"]
    for name in SECTIONS:
        if name not in sections:
            continue
        if on_step:
            on_step(f"{name}")
        started = time.perf_counter()
        report[name] = {**runners[name](**options.get(name, {})),
                        "bench_seconds": round(time.perf_counter() - started, 1),
                        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for name in SECTIONS:
        if name in _PLOTS and name in report:
            figure = out_dir / f"{name}.png"
            _PLOTS[name](report[name], figure)
            paths.append(figure)
        elif name in report and name in sections and "figures" in report[name]:
            paths += [Path(p) for p in report[name]["figures"]]
    report["machine_at_report"] = machine_info()
    ordered = {name: report[name] for name in SECTIONS if name in report}
    atomic_write(report_path, json.dumps({**ordered, "machine_at_report":
                                          report["machine_at_report"]}, indent=2) + "\n")
    table = markdown_report(ordered)
    atomic_write(paths[1], table)
    if readme is not None:
        replace_between_markers(readme, table, README_MARKERS)
        paths.append(Path(readme))
    return paths
