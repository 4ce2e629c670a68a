"""Generic cocotb test: a stream block's output words against the golden model's.

``sim.runner.run_stream_test`` writes a spec (payload codecs, input words, expected words,
stall probabilities, seed) and points ``ACCELGEN_STREAM_SPEC`` at it. This test drives the
inputs with random valid stalls, takes outputs with random ready stalls, compares every word
in order through the scoreboard, and writes the observed transfer cycles to the report file.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from sim.payload import PayloadCodec
from sim.scoreboard import MismatchError, Scoreboard
from sim.stream import BurstyStreamBench, StreamBench, run_cocotb_bench


@cocotb.test()
async def stream_matches_golden(dut):
    """Every output word equals the golden model's, in order, none lost or extra."""
    with open(os.environ["ACCELGEN_STREAM_SPEC"]) as f:
        spec = json.load(f)
    scoreboard = Scoreboard([int(w, 16) for w in spec["expected"]],
                            PayloadCodec.from_json(spec["out_codec"]), spec["sources"])
    bench_class = BurstyStreamBench if spec.get("stalls") == "bursty" else StreamBench
    bench = bench_class([int(w, 16) for w in spec["inputs"]], scoreboard,
                        valid_prob=spec["valid_prob"], ready_prob=spec["ready_prob"],
                        seed=spec["seed"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    if hasattr(dut, "o__ready"):  # an always-ready output has no ready port
        dut.o__ready.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    error = None
    try:
        await run_cocotb_bench(dut, bench)
    except MismatchError as mismatch:
        error = str(mismatch)
        raise
    finally:
        report = {**bench.result.to_json(), "error": error}
        if isinstance(bench, BurstyStreamBench):
            report["stall_runs"] = bench.stall_runs()
        with open(spec["report"], "w") as f:
            json.dump(report, f)
        dut._log.info("cycles: %d, inputs: %d, outputs: %d", bench.result.cycles,
                      len(bench.result.in_cycles), len(bench.result.out_cycles))
