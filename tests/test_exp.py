"""Exponential unit: accuracy of the arithmetic, hardware bit-exact vs golden at both levels."""

import numpy as np
import pytest

from golden.nonlinear.exp import ExpConfig, exp, exp_reference
from hw.nonlinear.exp import Exp
from hw.pipeline import StreamPipeline
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test

# The bounds: |error| <= rel * y + 1 LSB over the whole input range.
REL_BOUND = {1: 0.031, 2: 0.003}


def all_inputs(config):
    fmt = config.input_format
    return np.arange(fmt.min_int, fmt.max_int + 1)


def accuracy(config):
    """Worst slack of the bound (<= 0 means met) and the max relative error on large outputs."""
    x = all_inputs(config)
    y = exp(config, x) * config.output_format.lsb
    ideal = np.minimum(exp_reference(config, x), config.output_format.max_value)
    error = np.abs(y - ideal)
    slack = error - (REL_BOUND[config.order] * ideal + config.output_format.lsb)
    large = ideal > 2 ** 12 * config.output_format.lsb  # output rounding negligible
    return slack.max(), (error / ideal)[large].max()


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("formats", [
    dict(in_width=16, in_frac=10, out_width=16, out_frac=8),    # exp on [-32, 32)
    dict(in_width=16, in_frac=9, out_width=16, out_frac=15),    # softmax-style: x <= 0
    dict(in_width=12, in_frac=6, out_width=24, out_frac=12, poly_frac=12),
])
def test_error_bound_over_every_input(order, formats, measure):
    config = ExpConfig(order=order, **formats)
    slack, relative = accuracy(config)
    measure(f"exp order {order} {config.input_format}->{config.output_format}: max relative "
            f"error {relative:.4%} on outputs > 4096 LSB; bound slack {slack:.3g}")
    assert slack <= 0
    assert relative <= REL_BOUND[order]


def test_underflow_to_zero_and_saturation():
    config = ExpConfig(order=2)
    fmt_in, fmt_out = config.input_format, config.output_format
    assert exp(config, [fmt_in.min_int]).item() == 0
    assert exp(config, [fmt_in.max_int]).item() == fmt_out.max_int
    x = all_inputs(config)
    y = exp(config, x)
    ideal = exp_reference(config, x)
    assert np.all(y[ideal > 1.01 * fmt_out.max_value] == fmt_out.max_int)
    assert np.all(y[ideal < 0.49 * fmt_out.lsb] == 0)


@pytest.mark.parametrize("order", [1, 2])
def test_amaranth_sim_every_input_of_a_small_format(order):
    config = ExpConfig(order=order, lanes=2, in_width=10, in_frac=5, out_width=12, out_frac=6,
                       poly_frac=10)
    x = all_inputs(config).reshape(-1, 2)
    dut = StreamPipeline(Exp(config))
    simulate_stream(dut, {"value": x}, {"value": exp(config, x)}, valid_prob=0.6,
                    ready_prob=0.5, seed=order)
    free = simulate_stream(StreamPipeline(Exp(config)), {"value": x[:50]},
                           {"value": exp(config, x[:50])})
    assert {o - i for i, o in zip(free.in_cycles, free.out_cycles)} == {dut.latency}
    assert dut.latency == 3 * (2 + 2 * order)  # PEs of 3 stages: scale, Horner steps, shift


@pytest.mark.parametrize("order", [1, 2])
def test_verilator_every_16bit_input(order, measure):
    config = ExpConfig(order=order, lanes=4)
    x = all_inputs(config).reshape(-1, 4)
    expected = {"value": exp(config, x)}
    dut = StreamPipeline(Exp(config))
    stalled = run_stream_test(dut, "exp", {"value": x}, expected, valid_prob=0.7,
                              ready_prob=0.6, seed=order)
    free = run_stream_test(dut, "exp", {"value": x}, expected, seed=order)
    latencies = {o - i for i, o in zip(free.in_cycles, free.out_cycles)}
    per_element = (free.in_cycles[-1] - free.in_cycles[0] + 1) / x.size
    measure(f"exp order {order}, 4 lanes: {per_element:.3f} cycles/element "
            f"({1 / per_element / 4:.3f} elements/cycle/lane), latency {sorted(latencies)}; "
            f"{len(stalled.out_words)} words bit-exact under stalls")
    assert latencies == {dut.latency}
    assert per_element == 1 / 4


@pytest.mark.parametrize("kwargs,message", [
    ({"order": 3}, "order must be in 1..2, got 3"),
    ({"order": 0}, "order must be in 1..2, got 0"),
    ({"in_width": 16, "in_frac": 16}, "in_frac must be in 0..15"),
    ({"poly_frac": 20}, "poly_frac must be in 8..16, got 20"),
    ({"out_width": 40}, "out_width must be in 2..32, got 40"),
    ({"lanes": 0}, "lanes must be in 1..256, got 0"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Exp(**kwargs)
