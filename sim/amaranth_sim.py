"""Running a stream bench on a component in the Amaranth simulator (the fast unit-test level)."""

from __future__ import annotations

from amaranth.hdl import Value
from amaranth.sim import Simulator

from .payload import stream_codecs
from .scoreboard import Scoreboard
from .stream import BenchResult, StreamBench

__all__ = ["run_amaranth_bench", "simulate_stream"]


def simulate_stream(component, inputs: dict, expected: dict, sources=None, *,
                    valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 0,
                    vcd: str | None = None) -> BenchResult:
    """The Amaranth-simulator twin of ``sim.runner.run_stream_test``: drive ``inputs`` into
    ``component.i``, check every word of ``component.o`` against ``expected``, with random
    stalls on both sides. Raises ``sim.scoreboard.MismatchError`` at the first difference."""
    in_codec, out_codec = stream_codecs(component)
    scoreboard = Scoreboard(out_codec.encode(expected), out_codec,
                            None if sources is None else [int(s) for s in sources])
    bench = StreamBench(in_codec.encode(inputs), scoreboard, valid_prob=valid_prob,
                        ready_prob=ready_prob, seed=seed)
    return run_amaranth_bench(component, bench, vcd=vcd)


def run_amaranth_bench(dut, bench: StreamBench, *, vcd: str | None = None) -> BenchResult:
    """Run ``bench`` on ``dut``'s ``i`` and ``o`` stream ports in the Amaranth simulator.

    One testbench drives both sides each cycle, so the combinational ``i.ready`` it reads
    already reflects this cycle's ``o.ready``.
    """
    i_payload = Value.cast(dut.i.payload)
    o_payload = Value.cast(dut.o.payload)
    mask = (1 << len(o_payload)) - 1
    in_width, in_signed = len(i_payload), i_payload.shape().signed

    def as_input(word):  # payload words are raw bit patterns; a signed port wants the value
        return word - (1 << in_width) if in_signed and word >> (in_width - 1) else word

    async def testbench(ctx):
        while not bench.finished:
            valid, payload, ready = bench.drive()
            ctx.set(dut.i.valid, valid)
            if valid:
                ctx.set(i_payload, as_input(payload))
            ctx.set(dut.o.ready, ready)
            bench.sample(bool(ctx.get(dut.i.ready)), bool(ctx.get(dut.o.valid)),
                         lambda: ctx.get(o_payload) & mask)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return bench.check_complete()
