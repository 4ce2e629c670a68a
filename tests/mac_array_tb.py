"""cocotb test of an emitted MAC array: every output word and its cycle against the golden model.

``tests/test_mac_array.py`` writes a spec and points ``ACCELGEN_MAC_ARRAY_SPEC`` at it. The
spec is a cycle-by-cycle schedule: ``valid``, ``last`` and the packed ``a`` / ``b`` words of
every cycle (random operands and ``last`` on invalid cycles too, which the array must ignore),
the expected ``acc`` words from the golden model and the cycle each must appear on
(its input's cycle plus the latency). The bench replays the schedule, checks each
``out_valid`` cycle through the scoreboard and its timing, watches a while after the last
expected output for extra ones, and writes what it saw to ``spec["report"]``.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from sim.payload import PayloadCodec
from sim.scoreboard import MismatchError, Scoreboard


@cocotb.test()
async def mac_array_matches_golden(dut):
    """Outputs equal the golden model's, in order, each exactly ``latency`` cycles after the
    input that finished it; nothing extra."""
    with open(os.environ["ACCELGEN_MAC_ARRAY_SPEC"]) as f:
        spec = json.load(f)
    expected_cycles = spec["expected_cycles"]
    scoreboard = Scoreboard([int(w, 16) for w in spec["expected"]],
                            PayloadCodec.from_json(spec["acc_codec"]), spec["sources"])
    a_words = [int(w, 16) for w in spec["a"]]
    b_words = [int(w, 16) for w in spec["b"]]
    valid, last = spec["valid"], spec["last"]
    cycles = len(valid) + spec["drain_cycles"]

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.valid.value = 0
    dut.last.value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0

    out_cycles, error = [], None
    try:
        for cycle in range(cycles):
            if cycle < len(valid):  # inputs change just after the edge, every cycle
                dut.a.value = a_words[cycle]
                dut.b.value = b_words[cycle]
                dut.valid.value = valid[cycle]
                dut.last.value = last[cycle]
            else:
                dut.valid.value = 0
            await ReadOnly()
            if dut.out_valid.value:
                index = len(out_cycles)
                out_cycles.append(cycle)
                scoreboard.check(dut.acc.value.to_unsigned(), cycle)
                if cycle != expected_cycles[index]:
                    raise MismatchError(f"output #{index} at cycle {cycle}, expected at cycle "
                                        f"{expected_cycles[index]} (latency "
                                        f"{spec['latency']})")
            await RisingEdge(dut.clk)
        scoreboard.check_complete(cycles)
    except MismatchError as mismatch:
        error = str(mismatch)
        raise
    finally:
        with open(spec["report"], "w") as f:
            json.dump({"cycles": cycles, "out_cycles": out_cycles, "error": error}, f)
