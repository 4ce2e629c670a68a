"""Ping-pong buffer: output equals input with fill boundaries (golden); bit-exact hardware with
stalls in the Amaranth simulator and under Verilator; one word per cycle without stalls."""

import numpy as np
import pytest

from golden.memory.pingpong import PingPongConfig, fills, pingpong
from hw.memory.pingpong import PingPong
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


def stream_of(config, rng, lengths, ended=None):
    """Fills of the given lengths, random data; ``last`` on each fill's final word unless
    ``ended[k]`` is False (a fill of ``depth`` words ends by itself)."""
    data = rng.integers(0, 1 << config.width, sum(lengths), dtype=np.uint64)
    last = np.zeros(sum(lengths), dtype=np.int64)
    for k, stop in enumerate(np.cumsum(lengths)):
        last[stop - 1] = 1 if ended is None else int(ended[k])
    return {"data": data, "last": last}


def mixed_lengths(config, rng):
    """Fills of 1 word, exactly depth words (with and without last), longer than depth (split
    by the buffer), and random lengths."""
    d = config.depth
    lengths = [1, 1, 1, d, d, 1, 2 * d + 3, d + 1, 3 * d, 1] + list(rng.integers(1, d + 1, 12))
    ended = [True] * len(lengths)
    ended[3] = False  # depth words without last: the buffer ends the fill
    return lengths, ended


def test_golden_output_equals_input_with_fill_boundaries():
    config = PingPongConfig(depth=4)
    data = np.arange(20)
    last = np.zeros(20, dtype=np.int64)
    last[[0, 1, 6, 10, 18]] = 1
    out = pingpong(config, data, last)
    # fills: [0], [1], [2..5] (4 words, ends by depth), [6], [7..10], [11..14], [15..18];
    # word 19 starts a fill that never ends, so it stays in the buffer.
    assert fills(config, last) == [(0, 1), (1, 2), (2, 6), (6, 7), (7, 11), (11, 15),
                                   (15, 19)]
    assert out["data"].tolist() == list(range(19))
    assert np.flatnonzero(out["last"]).tolist() == [0, 1, 5, 6, 10, 14, 18]


def test_golden_wide_words_and_checks():
    config = PingPongConfig(width=200, depth=2)
    big = (1 << 200) - 1
    out = pingpong(config, [big, 1, 2], [0, 0, 1])
    assert out["data"].tolist() == [big, 1, 2] and out["last"].tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="data must be in"):
        pingpong(config, [1 << 200], [1])
    with pytest.raises(ValueError, match="last must be a 1-D array of 0 and 1"):
        pingpong(config, [1], [2])


@pytest.mark.parametrize("width,depth", [(16, 8), (1, 1), (64, 5), (8, 2)])
def test_amaranth_sim_bit_exact_with_stalls(width, depth, rng):
    config = PingPongConfig(width=width, depth=depth)
    lengths, ended = mixed_lengths(config, rng)
    inputs = stream_of(config, rng, lengths, ended)
    expected = pingpong(config, inputs["data"], inputs["last"])
    assert len(expected["data"]) == sum(lengths)
    for seed, (valid_prob, ready_prob) in enumerate([(0.7, 0.6), (1.0, 0.3), (0.3, 1.0)]):
        simulate_stream(PingPong(config), inputs, expected, valid_prob=valid_prob,
                        ready_prob=ready_prob, seed=seed)


def throughput(result, words):
    """Cycles per word from the first to the last transfer of each side."""
    return tuple((cycles[-1] - cycles[0] + 1) / words
                 for cycles in (result.in_cycles, result.out_cycles))


def test_verilator_bit_exact_with_stalls_and_throughput(rng, measure):
    config = PingPongConfig(depth=64)  # width 16
    dut = PingPong(config)
    lengths, ended = mixed_lengths(config, rng)
    inputs = stream_of(config, rng, lengths, ended)
    expected = pingpong(config, inputs["data"], inputs["last"])
    run_stream_test(dut, "pingpong", inputs, expected, valid_prob=0.7, ready_prob=0.6,
                    seed=1)

    # Without stalls, back to back: equal fills (depth words, one word, 7 words) move one word
    # per cycle; mixed lengths are measured (a long fill after a short one makes the producer
    # wait for the consumer, and a short one after a long one the consumer for the producer).
    figures = []
    for name, lengths in (("depth", [64] * 16), ("one-word", [1] * 256), ("7-word", [7] * 64),
                          ("mixed", mixed_lengths(config, rng)[0])):
        inputs = stream_of(config, rng, lengths)
        free = run_stream_test(dut, "pingpong", inputs,
                               pingpong(config, inputs["data"], inputs["last"]), seed=2)
        rate_in, rate_out = throughput(free, sum(lengths))
        if name != "mixed":
            assert rate_in == rate_out == 1.0
        first_fill_latency = free.out_cycles[0] - free.in_cycles[lengths[0] - 1]
        assert first_fill_latency == dut.latency
        figures.append(f"{name} fills {rate_in:.3f}/{rate_out:.3f}")
    measure(f"pingpong depth 64, no stalls, cycles per word in/out: {', '.join(figures)}; "
            f"last word of a fill to its first output {dut.latency} cycles")


def test_amaranth_sim_throughput_without_stalls():
    config = PingPongConfig(depth=3)
    rng = np.random.default_rng(0)
    for lengths in ([3] * 20, [1] * 40, [2] * 30):
        inputs = stream_of(config, rng, lengths)
        free = simulate_stream(PingPong(config), inputs,
                               pingpong(config, inputs["data"], inputs["last"]))
        assert throughput(free, sum(lengths)) == (1.0, 1.0)


def test_producer_stalls_instead_of_overwriting():
    # The consumer never takes a word: two fills fit (one per half), the third waits.
    config = PingPongConfig(depth=4)
    inputs = {"data": np.arange(12), "last": np.tile([0, 0, 0, 1], 3)}
    from amaranth.sim import Simulator

    dut = PingPong(config)
    accepted = []

    async def testbench(ctx):
        for cycle in range(40):
            k = len(accepted)
            ctx.set(dut.i.valid, k < 12)
            if k < 12:
                ctx.set(dut.i.payload.data, int(inputs["data"][k]))
                ctx.set(dut.i.payload.last, int(inputs["last"][k]))
            ctx.set(dut.o.ready, cycle >= 30)
            if k < 12 and ctx.get(dut.i.ready):
                accepted.append(cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    assert accepted[:8] == list(range(8))
    assert 30 < accepted[8] < 40  # resumes only after the consumer drained a half


@pytest.mark.parametrize("kwargs,message", [
    ({"width": 0}, "width must be in 1..512, got 0"),
    ({"width": 513}, "width must be in 1..512, got 513"),
    ({"depth": 0}, "depth must be in 1..65536, got 0"),
    ({"depth": 65537}, "depth must be in 1..65536, got 65537"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PingPong(**kwargs)


def test_bad_parameter_types_are_rejected():
    with pytest.raises(TypeError, match="depth must be an integer"):
        PingPong(depth="256")
