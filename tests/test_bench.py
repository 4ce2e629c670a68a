"""``make bench`` at small sizes: every section measured, recorded with its machine and tools,
figures written, the README table replaced between its markers."""

import json
import math

import pytest
from stimulus import SMALL_ACCELERATOR

from gen.cli import main
from gen.emit import replace_between_markers
from gen.measure.bench import (
    README_MARKERS,
    SECTIONS,
    accelerator_speed_bench,
    ecp5_bench,
    markdown_report,
    write_bench,
)
from gen.measure.provenance import measured_with

SMALL = {
    "utilization": {"arrays": [(1, 2)], "gemv": [(3, 5)], "gemm": [(2, 4, 3)]},
    "simulation_speed": {"sizes": [(1, 2)],
                         "transactions": {"verilator": 300, "amaranth": 300, "native": 300},
                         "accelerator": {}},  # test_accelerator_speed_rows below
    "ecp5": {"designs": [("PE array", 1, 1, "pe-array", {})]},
    "streaming": {"mamba": (32, 64, 8, 4), "mlp": (64, 128, 4), "rtl_mlp": None},
}


def test_bench_small_sizes(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_MARKERS[0]}old table\n{README_MARKERS[1]}\nrest\n")
    out = tmp_path / "bench"
    steps = []
    paths = write_bench(out, options=SMALL, readme=readme, on_step=steps.append)
    report = json.loads((out / "bench.json").read_text())
    assert list(report) == [*SECTIONS, "machine_at_report"]
    for name in SECTIONS:
        section = report[name]
        assert section["machine"]["cores"] >= 1 and section["machine"]["cpu"]
        assert {"python", "amaranth"} <= set(section["tools"])
    assert "verilator binary" in report["utilization"]["tools"]
    assert {"yosys", "nextpnr-ecp5"} <= set(report["ecp5"]["tools"])

    # Utilization: II = 1 with no stalls, so the cycles are the transactions plus the latency;
    # the transactions are the tiling's (N * ceil(M / rows) * ceil(K / cols)).
    for row in report["utilization"]["rows"]:
        assert row["transactions"] == row["n"] * math.ceil(row["m"] / 1) * math.ceil(row["k"] / 2)
        assert row["cycles"] == row["transactions"] + max(row["latency"])
        assert row["padding_bound"] == row["macs"] / (row["transactions"] * 2)
        assert row["utilization"] < row["padding_bound"] <= 1 and row["bit_exact"]

    # Speed: the same workload takes the same cycles on every simulator.
    (speed,) = report["simulation_speed"]["rows"]
    assert speed["verilator"]["cycles"] == speed["amaranth"]["cycles"] == \
        speed["native"]["cycles"] > speed["verilator"]["short_run"]["cycles"]
    assert speed["native_build_seconds"] > 0 and speed["native"]["loop_cycles_per_second"] > 0
    assert speed["verilator_build_seconds"] > 0 and speed["verilog_lines"] > 100
    assert speed["amaranth"]["end_to_end_cycles_per_second"] > 0
    for simulator in ("verilator", "amaranth", "native"):  # CPU time: the simulator's too
        assert speed[simulator]["cpu_seconds"] > 0
    assert speed["native_vs_cocotb_end_to_end_cpu"] > 0
    assert report["simulation_speed"]["accelerator"] == []

    # ECP5: built here (no fpga-bench JSON given); the Yosys version comes from the build log.
    ecp5 = report["ecp5"]
    assert ecp5["built_by_this_run"] and ecp5["board"] == "ulx3s-85f"
    (row,) = ecp5["rows"]
    assert row["luts"] > 0 and row["dsps_per_mac"] == 1.0 and row["fmax_mhz"] > 0
    assert row["yosys"].startswith("Yosys 0.")
    # ... and read back from that JSON, as `make bench` does after `make fpga-bench`.
    again = ecp5_bench(tmp_path / "unused", ecp5["fpga_bench_json"])
    assert not again["built_by_this_run"] and again["rows"] == ecp5["rows"]
    assert again["machine"] == ecp5["machine"] and again["machine"]["cores"] > 0
    assert again["tools"]["yosys (from the build logs)"] == row["yosys"]
    assert not (tmp_path / "unused").exists()

    assert report["accuracy"]["exp"]["ours, order 2"]["max_rel_error"] < 0.003
    assert report["sparse_storage"]["crossover"]["measured_density"] > 0
    for row in report["streaming"]["rows"]:  # batching never moves more bytes
        assert 0 < row["pe_utilization"] <= 1 and row["cycles"] <= row["serial_cycles"]
        assert row["dram_bytes"]["total"] <= row["dram_bytes_unbatched"]["total"]
    for path in paths:
        assert path.exists() and path.stat().st_size > 0, path
    assert {p.name for p in paths} >= {"utilization.png", "simulation_speed.png", "ecp5.png",
                                       "exp_error.png", "sparse_storage.png"}

    table = (out / "bench.md").read_text()
    assert "| GEMM 2x4x3 | 70.6% | 17 | 100.0% |" in table  # 24 MACs / (17 cycles x 2 PEs)
    assert readme.read_text() == f"intro\n{README_MARKERS[0]}{table}{README_MARKERS[1]}\nrest\n"
    assert table.count("*measured on ") == len(SECTIONS)
    assert steps[0] == "utilization"

    # One section again: the others are kept as measured.
    write_bench(out, sections=["sparse_storage"])
    kept = json.loads((out / "bench.json").read_text())
    assert kept["utilization"] == report["utilization"]
    assert kept["sparse_storage"]["measured"] >= report["sparse_storage"]["measured"]


def test_bench_report_pieces(tmp_path, capsys):
    with pytest.raises(ValueError, match="bench sections must be drawn from"):
        write_bench(tmp_path, sections=["speed"])
    path = tmp_path / "README.md"
    path.write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- bench:start --> ... <!-- bench:end --> marker"):
        replace_between_markers(path, "table", README_MARKERS)
    assert markdown_report({}) == ""
    assert main(["bench", "--fpga-json", str(tmp_path / "none.json")]) == 2
    assert "none.json does not exist" in capsys.readouterr().err
    assert main(["bench", "--only", "sparse_storage", "-o", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert "**Sparse storage**" in printed and "bench.json" in printed


def test_accelerator_speed_rows():
    # The accelerator on both DRAM models (the default suite's small accelerator, whose builds
    # the other tests share): the same core cycles, bit-exact, and the native harness
    # simulating faster than cocotb; the rows in the simulation-speed table.
    rows = accelerator_speed_bench(SMALL_ACCELERATOR,
                                   {"d_model": 16, "d_inner": 32, "d_state": 4, "seq_len": 8},
                                   repeats=2)
    fast, checked = rows
    assert (fast["dram_model"], checked["dram_model"]) == ("fast", "checked")
    assert fast["core_cycles"] == checked["core_cycles"] and fast["bit_exact"]
    assert checked["sim_cycles"] > checked["core_cycles"] and fast["sim_cycles"] > 0
    assert checked["bit_exact"] and fast["cycles_per_second"] > checked["cycles_per_second"]
    assert fast["build_cpu_seconds"] > 0 and fast["cycles_per_cpu_second"] > 0
    assert len(fast["all_runs_seconds"]) == 2 and checked["cpu_seconds"] is None
    table = markdown_report({"simulation_speed": {"rows": [], "accelerator": rows,
                                                  **measured_with(["verilator"])}})
    assert "| 2x4 top | Mamba block" in table and "| fast |" in table and "| checked |" in table
