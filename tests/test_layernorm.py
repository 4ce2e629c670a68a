"""LayerNorm unit: accuracy against float64, bit-exact hardware under stalls, throughput."""

import numpy as np
import pytest

from golden.nonlinear.layernorm import (
    Y_FRAC,
    LayerNormConfig,
    layernorm,
    layernorm_reference,
    residual_vectors,
    rsqrt_parts,
    vectors_stream,
)
from hw.nonlinear.layernorm import LayerNorm
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


def edge_vectors(config):
    """n = 1, constant vectors (variance 0), the extremes, one outlier, two values."""
    lo, hi = config.input_format.min_int, config.input_format.max_int
    return [np.array([5]), np.array([lo]), np.full(9, 77), np.full(3, lo),
            np.array([lo, hi, lo, hi]), np.array([hi] + [lo] * 30), np.array([0, 1]),
            np.arange(-20, 21) * 100, np.array([hi, hi - 1, hi])]


def test_rsqrt_relative_error(rng, measure):
    config = LayerNormConfig()
    d = np.concatenate([np.arange(1, 1025), rng.integers(1, 1 << 50, 2000)])
    error = np.array([r * 2.0 ** -(Y_FRAC + e) * np.sqrt(float(v)) - 1
                      for v in d.tolist() for r, e in [rsqrt_parts(config, v)]])
    measure(f"layernorm rsqrt: max relative error {np.abs(error).max():.2e} "
            f"(2^{np.log2(np.abs(error).max()):.1f}), table {3 << 4} segments + 1 Newton step")
    assert np.abs(error).max() < 2.0 ** -21
    r, e = rsqrt_parts(config, 0)  # D = 0 is taken as 1 (its outputs are 0 anyway)
    assert (r, e) == rsqrt_parts(config, 1) and e == 0 and abs(r - (1 << Y_FRAC)) <= 1


@pytest.mark.parametrize("length", [2, 3, 64, 384, 1024])
def test_accuracy_against_float64(length, rng, measure):
    config = LayerNormConfig()
    x, last = vectors_stream(residual_vectors(config, rng, [length] * 12))
    y = layernorm(config, x, last)["y"]
    reference = layernorm_reference(config, x, last) * 2 ** config.out_frac
    error = np.abs(y - reference).max()
    measure(f"layernorm n={length}: max error {error:.4f} LSB of Q5.10 against float64")
    assert error <= 0.51  # half an LSB of rounding plus the rsqrt's ~2**-21


def test_edge_cases_exact_values():
    config = LayerNormConfig()
    vectors = edge_vectors(config)
    x, last = vectors_stream(vectors)
    y = layernorm(config, x, last)["y"]
    ends = np.cumsum([len(v) for v in vectors])
    assert y[0] == 0 and y[1] == 0  # n = 1: variance 0
    assert np.all(y[2:ends[3]] == 0)  # constant vectors
    assert y[ends[3]:ends[4]].tolist() == [-1024, 1024, -1024, 1024]  # +-1 exactly
    assert y[ends[5]:ends[6]].tolist() == [-1024, 1024]
    reference = layernorm_reference(config, x, last) * 1024
    assert np.abs(y - reference).max() <= 0.51


def test_output_saturates_beyond_the_format():
    # One outlier among 1023 equal values is sqrt(1023) ~ 31.98 sigma: fits Q5.10; with a
    # narrower output it saturates.
    config = LayerNormConfig(out_width=12, out_frac=8)
    x = np.array([1000] + [0] * 1023)
    last = np.zeros(1024, dtype=np.int64)
    last[-1] = 1
    y = layernorm(config, x, last)["y"]
    assert y[0] == 2047 and np.all(y[1:] == round(-1 / np.sqrt(1023) * 256))


def test_vectors_longer_than_max_len_are_split():
    config = LayerNormConfig(max_len=4)
    x = np.arange(10) * 50
    last = np.zeros(10, dtype=np.int64)
    last[-1] = 1
    assert layernorm(config, x, last)["last"].tolist() == [0, 0, 0, 1, 0, 0, 0, 1, 0, 1]


@pytest.mark.parametrize("banks", [2, 3])
def test_amaranth_sim_bit_exact_with_stalls(banks, rng):
    config = LayerNormConfig(max_len=32, banks=banks)
    vectors = edge_vectors(config) + residual_vectors(config, rng, [1, 5, 32, 40, 2, 31])
    x, last = vectors_stream(vectors)
    simulate_stream(LayerNorm(config), {"x": x, "last": last}, layernorm(config, x, last),
                    valid_prob=0.6, ready_prob=0.5, seed=9)


@pytest.mark.parametrize("params", [{"max_len": 1, "in_width": 4},
                                    {"max_len": 7, "in_width": 9, "out_width": 8,
                                     "out_frac": 6, "rounding": "nearest_even"}])
def test_amaranth_sim_small_configs(params, rng):
    config = LayerNormConfig(**params)
    fmt = config.input_format
    x = rng.integers(fmt.min_int, fmt.max_int + 1, 5 * config.max_len + 3)
    last = (rng.random(len(x)) < 0.3).astype(np.int64)
    last[-1] = 1
    simulate_stream(LayerNorm(config), {"x": x, "last": last}, layernorm(config, x, last),
                    valid_prob=0.7, ready_prob=0.6)


def test_verilator_bit_exact_with_stalls_and_throughput(rng, measure):
    config = LayerNormConfig()  # max_len 1024
    vectors = residual_vectors(config, rng, [1, 3, 1024, 384, 1030, 64, 2, 300])
    x, last = vectors_stream(vectors + edge_vectors(config))
    dut = LayerNorm(config)
    run_stream_test(dut, "layernorm", {"x": x, "last": last}, layernorm(config, x, last),
                    valid_prob=0.7, ready_prob=0.6, seed=4)

    # Throughput and latency without stalls: long vectors back to back.
    x, last = vectors_stream(residual_vectors(config, rng, [1024] * 4))
    free = run_stream_test(dut, "layernorm", {"x": x, "last": last},
                           layernorm(config, x, last), seed=5)
    input_rate = (free.in_cycles[-1] - free.in_cycles[0] + 1) / len(x)
    output_rate = (free.out_cycles[-1] - free.out_cycles[0] + 1) / len(x)
    latency = free.out_cycles[0] - free.in_cycles[1023]
    measure(f"layernorm 4 x 1024 back to back: input {input_rate:.4f} cycles/element, output "
            f"{output_rate:.4f} cycles/element, latency last-in to first-out {latency} "
            f"(component says {dut.latency})")
    assert input_rate == 1.0 and output_rate == 1.0
    assert latency == dut.latency


@pytest.mark.parametrize("kwargs,message", [
    ({"max_len": 0}, "max_len must be in 1..4096, got 0"),
    ({"max_len": 5000}, "max_len must be in 1..4096, got 5000"),
    ({"banks": 1}, "banks must be in 2..3, got 1"),
    ({"in_width": 17}, "in_width must be in 4..16, got 17"),
    ({"out_width": 8, "out_frac": 8}, "out_frac must be in 0..7"),
    ({"rounding": "up"}, "rounding must be one of"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LayerNorm(**kwargs)
