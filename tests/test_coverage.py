"""Functional coverage (cocotb-coverage) of a PE-array run on Verilator: every op in both
modes, shifts past the width, stall runs of several lengths on both sides, and the saturation
corners of results and accumulators. The report is build/coverage/pe_array.json."""

import json
from pathlib import Path

import numpy as np
from stimulus import array_transactions

from gen.emit import atomic_write
from golden.pe_array import PEArrayConfig, pe_array
from hw.pe_array import PEArray, pe_array_layouts
from sim.coverage import coverage_report, pe_array_coverage, run_bin
from sim.payload import PayloadCodec, stream_codecs
from sim.runner import run_stream_test

REPORT = Path(__file__).resolve().parent.parent / "build" / "coverage" / "pe_array.json"

# Narrow results and accumulators, so that corner operands saturate both.
CONFIG = PEArrayConfig(rows=2, cols=4, in_width=6, out_width=8, acc_width=10)


def saturating_dot_products(config, chunks=4):
    """Directed transactions: one dot product of max * max chunks and one of max * min, each
    long enough to drive the accumulators past both ends."""
    lo, hi = config.operand_range
    shape = (2 * chunks, config.rows, config.cols)
    b = np.repeat([hi, lo], chunks)[:, None, None]
    last = np.tile(np.arange(chunks) == chunks - 1, 2).astype(np.int64)
    return {"op": np.zeros(2 * chunks, dtype=np.int64), "mode": np.ones(2 * chunks, np.int64),
            "last": last, "a": np.full(shape, hi), "b": np.broadcast_to(b, shape).copy(),
            "c": np.zeros(shape, dtype=np.int64)}


def test_pe_array_run_hits_every_bin(rng, measure):
    random = array_transactions(CONFIG, rng, 600)
    random["last"][-1] = 1
    directed = saturating_dot_products(CONFIG)
    inputs = {f: np.concatenate([random[f], directed[f]]) for f in random}
    expected, source = pe_array(CONFIG, **inputs)
    dut = PEArray(CONFIG)
    report = {}
    run_stream_test(dut, "pe_array_coverage", inputs, expected, source, seed=5,
                    stalls="bursty", report=report)  # every output checked bit-exact
    group = pe_array_coverage(CONFIG, inputs, stream_codecs(dut)[1], report)
    coverage = {"config": CONFIG.to_dict(), **coverage_report(group)}
    atomic_write(REPORT, json.dumps(coverage, indent=2) + "\n")
    missed = {name: p["missed"] for name, p in coverage["points"].items() if p["missed"]}
    assert coverage["complete"], f"bins never hit: {missed} (report {REPORT})"
    assert set(coverage["points"]) == {"op", "mode", "op_x_mode", "shift_past_width",
                                       "valid_gap", "ready_stall", "corner"}
    measure(f"PE array coverage: {coverage['bins_hit']}/{coverage['bins']} bins hit, "
            f"report {REPORT}")


def test_missed_bins_are_reported():
    """A run with element-wise multiplies only and no stalls misses the rest, by name."""
    config = PEArrayConfig(rows=1, cols=1, in_width=4, ops=("mul", "add"))
    inputs = {"op": np.zeros(3, dtype=np.int64), "mode": np.zeros(3, dtype=np.int64),
              "b": np.zeros((3, 1, 1), dtype=np.int64)}
    out_codec = PayloadCodec.from_shape(pe_array_layouts(config)[1])
    group = pe_array_coverage(config, inputs, out_codec,
                              {"stall_runs": {"valid_gaps": [], "ready_stalls": [2]},
                               "out_words": []})
    report = coverage_report(group)
    assert not report["complete"]
    assert report["points"]["op"]["missed"] == ["add"]
    assert report["points"]["mode"]["missed"] == ["linear"]
    assert report["points"]["ready_stall"]["bins"] == {"1": 0, "2-3": 1, "4-8": 0, "9+": 0}
    assert report["points"]["op_x_mode"]["missed"] == ["mul x linear", "add x elementwise",
                                                       "add x linear"]


def test_run_bins():
    assert [run_bin(n) for n in (1, 2, 3, 4, 8, 9, 100)] == ["1", "2-3", "2-3", "4-8", "4-8",
                                                             "9+", "9+"]
