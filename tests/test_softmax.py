"""Single-pass softmax: accuracy on uniform and peaked rows, bit-exact hardware, throughput."""

import numpy as np
import pytest

from golden.fixed_point import quantize
from golden.nonlinear.softmax import (
    SoftmaxConfig,
    attention_rows,
    rows_stream,
    softmax,
    softmax_reference,
)
from hw.nonlinear.softmax import Softmax
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


def edge_vectors(config):
    """L = 1, all equal, the extremes, and a maximum that rises at the last element."""
    lo, hi = config.input_format.min_int, config.input_format.max_int
    return [np.array([5]), np.array([lo]), np.array([hi]), np.full(9, 77), np.full(3, lo),
            np.array([lo, hi, lo, hi]), np.arange(-20, 21) * 100, np.array([0, 0, 0, hi]),
            np.array([hi, lo] * 5)]


@pytest.mark.parametrize("kind", ["uniform", "peaked"])
@pytest.mark.parametrize("length", [1, 2, 17, 256, 1024])
def test_accuracy_targets(kind, length, rng, measure):
    config = SoftmaxConfig()
    x, last = rows_stream(config, attention_rows(rng, [length] * 8, kind))
    p = softmax(config, x, last)["p"] * config.output_format.lsb
    reference = softmax_reference(config, x, last)
    error = np.abs(p - reference).max()
    sums = np.add.reduceat(p, np.flatnonzero(np.concatenate([[1], last[:-1]])))
    measure(f"softmax {kind} L={length}: max |p - p_ref| {error:.2e} (bound 2^-9 = "
            f"{2 ** -9:.2e}), max |sum - 1| {np.abs(sums - 1).max():.2e}")
    assert error <= 2 ** -9
    assert np.all(np.abs(sums - 1) <= 0.01)


def test_edge_cases_exact_values():
    config = SoftmaxConfig()
    x = np.concatenate(edge_vectors(config))
    last = np.zeros(len(x), dtype=np.int64)
    last[np.cumsum([len(v) for v in edge_vectors(config)]) - 1] = 1
    p = softmax(config, x, last)["p"]
    assert p[0] == config.output_format.max_int  # L = 1: probability 1, saturated
    equal = p[3:12]
    assert np.all(equal == equal[0]) and abs(equal[0] * 2 ** -16 - 1 / 9) < 2 ** -12
    reference = softmax_reference(config, x, last)
    assert np.abs(p * 2 ** -16 - reference).max() <= 2 ** -9


def test_vectors_longer_than_max_len_are_split():
    config = SoftmaxConfig(max_len=4)
    x = np.arange(10) * 50
    last = np.zeros(10, dtype=np.int64)
    last[-1] = 1
    out = softmax(config, x, last)
    assert out["last"].tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 1]


@pytest.mark.parametrize("banks", [2, 3])
def test_amaranth_sim_bit_exact_with_stalls(banks, rng):
    config = SoftmaxConfig(max_len=32, banks=banks)
    vectors = edge_vectors(config) + attention_rows(rng, [1, 5, 32, 40, 2, 31], "peaked")
    x = np.concatenate([v if v.dtype.kind == "i" else quantize(v, config.input_format)
                        for v in vectors])
    last = np.zeros(len(x), dtype=np.int64)
    last[np.cumsum([len(v) for v in vectors]) - 1] = 1
    expected = softmax(config, x, last)
    simulate_stream(Softmax(config), {"x": x, "last": last}, expected, valid_prob=0.6,
                    ready_prob=0.5, seed=9)


@pytest.mark.parametrize("max_len", [1, 4, 7])
def test_amaranth_sim_short_max_len(max_len, rng):
    """Below max_len 8 the reciprocal is narrower than exp(0) (found by tests/test_fuzz.py:
    the normalizing multiplier once truncated exp(0) to the reciprocal's width)."""
    config = SoftmaxConfig(max_len=max_len)
    fmt = config.input_format
    x = rng.integers(fmt.min_int, fmt.max_int + 1, 5 * max_len)
    last = (rng.random(len(x)) < 0.3).astype(np.int64)
    last[-1] = 1
    simulate_stream(Softmax(config), {"x": x, "last": last}, softmax(config, x, last),
                    valid_prob=0.7, ready_prob=0.6)


def test_verilator_bit_exact_with_stalls_and_throughput(rng, measure):
    config = SoftmaxConfig()  # max_len 1024
    lengths = [1, 3, 1024, 700, 1030, 64, 1, 2, 300]
    vectors = attention_rows(rng, lengths[:5], "peaked") + attention_rows(rng, lengths[5:],
                                                              "uniform")
    edges = edge_vectors(config)
    x, last = rows_stream(config, vectors)
    edge_last = np.zeros(sum(map(len, edges)), dtype=np.int64)
    edge_last[np.cumsum([len(v) for v in edges]) - 1] = 1
    x, last = np.concatenate([x, np.concatenate(edges)]), np.concatenate([last, edge_last])
    expected = softmax(config, x, last)
    dut = Softmax(config)
    run_stream_test(dut, "softmax", {"x": x, "last": last}, expected, valid_prob=0.7,
                    ready_prob=0.6, seed=4)

    # Throughput and latency without stalls: long vectors back to back.
    x, last = rows_stream(config, attention_rows(rng, [1024] * 4, "uniform"))
    free = run_stream_test(dut, "softmax", {"x": x, "last": last}, softmax(config, x, last),
                           seed=5)
    input_rate = (free.in_cycles[-1] - free.in_cycles[0] + 1) / len(x)
    output_rate = (free.out_cycles[-1] - free.out_cycles[0] + 1) / len(x)
    first_vector_latency = free.out_cycles[0] - free.in_cycles[1023]
    measure(f"softmax 4 x 1024 back to back: input {input_rate:.4f} cycles/element, output "
            f"{output_rate:.4f} cycles/element, latency last-in to first-out "
            f"{first_vector_latency} (component says {dut.latency})")
    assert input_rate == 1.0  # reads its input once, one element per cycle
    assert output_rate == 1.0
    assert first_vector_latency == dut.latency


@pytest.mark.parametrize("kwargs,message", [
    ({"max_len": 0}, "max_len must be in 1..4096, got 0"),
    ({"max_len": 5000}, "max_len must be in 1..4096, got 5000"),
    ({"exp_order": 3}, "exp_order must be in 1..2, got 3"),
    ({"banks": 1}, "banks must be in 2..3, got 1"),
    ({"in_width": 16, "in_frac": 16}, "in_frac must be in 0..15"),
    ({"out_width": 8, "out_frac": 9}, "out_frac must be in 1..8"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Softmax(**kwargs)
