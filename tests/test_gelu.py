"""GELU unit: accuracy, golden model vs plain Python, hardware vs golden (Amaranth sim and
Verilator), latency, II and parameter checks. ``python_piecewise`` also serves test_silu."""

import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Fragment
from test_fixed_point import round_fraction

from golden.nonlinear.baselines import gelu_exact
from golden.nonlinear.gelu import (
    GELUConfig,
    gelu,
    gelu_approximation,
    gelu_correction,
    gelu_reference,
)
from hw.nonlinear.gelu import GELU
from hw.pe import PE
from hw.pipeline import StreamPipeline
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test

ROOT = Path(__file__).resolve().parent.parent
METHODS = ["relu-correction", "poly"]


# --- plain-Python model of the engine, one value at a time -------------------------------------

def _clamp(value: int, width: int) -> int:
    return min(max(value, -(1 << (width - 1))), (1 << (width - 1)) - 1)


def python_piecewise(config, x: int) -> int:
    """The engine's arithmetic spelled out with Python integers (no NumPy, no PE model)."""
    fmt = config.input_format
    u = min(abs(x), fmt.max_int) if config.fold else x
    d = u - round(config.domain_lo * 2 ** config.in_frac)
    lsbs = round(config.segment_width * 2 ** config.in_frac)  # W, a power of two
    k, r_raw = divmod(d, lsbs)  # floor division: r_raw in [0, W)
    below, above = d < 0, k >= config.segment_count
    c = config.table[min(max(k, 0), config.segment_count - 1)]
    frac = config.frac_bits
    r = r_raw * (2 ** frac // lsbs)
    p = c[config.order]
    for j in range(config.order - 1, -1, -1):
        p = _clamp(math.floor(Fraction(p * r, 2 ** frac)) + c[j], config.poly_width)
    q = _clamp(round_fraction(Fraction(p, 2 ** (frac - config.out_frac)), config.rounding),
               config.out_width)
    x_out = _clamp(math.floor(Fraction(x) * Fraction(2) ** (config.out_frac - config.in_frac)),
                   config.out_width)
    if config.style == "relu-correction":
        return _clamp(max(x_out, 0) - (0 if above else q), config.out_width)
    return 0 if below else x_out if above else q


def codes(config, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Every raw input code (optionally only those of real value in [lo, hi])."""
    fmt = config.input_format
    first = fmt.min_int if lo is None else max(fmt.min_int, math.ceil(lo * 2 ** fmt.frac))
    last = fmt.max_int if hi is None else min(fmt.max_int, math.floor(hi * 2 ** fmt.frac))
    return np.arange(first, last + 1, dtype=np.int64)


def check_datapath_bits(config) -> None:
    """``I`` is one safety bit above the fewest integer bits holding every coefficient and
    Horner intermediate (sampled densely), and the quantized ROM fits ``poly_width``."""
    r = np.linspace(0.0, 1.0, 10001)
    largest = 0.0
    for row in config.real_table:
        p = np.full_like(r, row[-1])
        largest = max(largest, *map(abs, row))
        for c in reversed(row[:-1]):
            largest = max(largest, np.max(np.abs(p * r)))
            p = p * r + c
            largest = max(largest, np.max(np.abs(p)))
    needed = config.int_bits - 1
    assert largest < 2.0 ** needed
    assert needed == 0 or largest >= 2.0 ** (needed - 1)
    assert config.frac_bits == config.poly_width - 1 - config.int_bits
    limit = 1 << (config.poly_width - 1)
    assert all(-limit <= c < limit for row in config.table for c in row)
    assert config.table == tuple(tuple(round(c * 2.0 ** config.frac_bits) for c in row)
                                 for row in config.real_table)
    assert config.table_words == len(config.table) * len(config.table[0])


# --- golden model ------------------------------------------------------------------------------

def test_correction_is_relu_minus_gelu():
    t = np.linspace(0, 10, 1001)
    assert np.allclose(gelu_correction(t), t - gelu_exact(t), rtol=0, atol=1e-14)
    assert np.array_equal(gelu_reference(GELUConfig(), [-1024, 0, 2048]),
                          gelu_exact([-1.0, 0.0, 2.0]))


@pytest.mark.parametrize("method", METHODS)
def test_accuracy_of_the_default_unit(method, measure):
    config = GELUConfig(method=method)
    assert (config.in_width, config.in_frac, config.out_width, config.out_frac) == (16, 10, 16, 10)
    assert config.segment_count == {"relu-correction": 9, "poly": 18}[method]
    assert config.segment_width == 0.5 and config.order == 3
    x = codes(config, -24, 24)
    lsb = config.output_format.lsb
    error = np.abs(gelu(config, x) * lsb - gelu_reference(config, x))
    dense = np.concatenate([np.linspace(-24, 24, 960_001), x * 2.0 ** -config.in_frac])
    approximation_error = np.abs(gelu_approximation(config, dense) - gelu_exact(dense))
    measure(f"GELU {method}: hardware max |error| {error.max():.3g} "
            f"({error.max() / lsb:.3f} LSB) at x={x[error.argmax()] * 2.0 ** -10:g}; "
            f"approximation {approximation_error.max():.3g}; fit {config.fit_error:.3g}; "
            f"{config.table_words} table words; I={config.int_bits} F={config.frac_bits}")
    assert error.max() <= 2 * lsb
    assert approximation_error.max() <= 1e-4
    assert config.table_words < 177
    check_datapath_bits(config)


@pytest.mark.parametrize("kwargs", [
    {},
    {"method": "poly"},
    {"order": 1, "rounding": "truncate", "out_frac": 12, "poly_width": 20},
    {"method": "poly", "order": 2, "rounding": "nearest_even", "out_width": 8, "out_frac": 4},
    {"in_width": 8, "in_frac": 1, "range_max": 4.0, "segments": 2, "out_frac": 3},
    {"method": "poly", "in_width": 12, "in_frac": 8, "out_frac": 6, "poly_width": 14,
     "range_max": 2.0, "segments": 16},
])
def test_golden_matches_python(kwargs, rng):
    config = GELUConfig(**kwargs)
    x = codes(config)
    x = np.concatenate([x[:40], x[-40:], rng.choice(x, 1500)])
    assert gelu(config, x).tolist() == [python_piecewise(config, int(v)) for v in x]
    check_datapath_bits(config)


def test_golden_keeps_the_shape_and_rejects_out_of_range_inputs():
    config = GELUConfig(in_width=8, in_frac=4, out_width=8, out_frac=4)
    x = np.arange(-128, 128).reshape(4, 8, 8)
    assert gelu(config, x).shape == (4, 8, 8)
    assert gelu(config, x).dtype == np.int64
    with pytest.raises(ValueError, match=r"x must be in -128..127 \(Q3.4\)"):
        gelu(config, [128])
    with pytest.raises(TypeError, match="config must be a GELUConfig"):
        gelu(object(), [0])


def test_golden_does_not_import_the_hardware():
    code = ("import sys, golden.nonlinear.gelu, golden.nonlinear.silu; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('hw', 'amaranth', 'sim')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Amaranth simulator ------------------------------------------------------------------------

SMALL = dict(in_width=10, in_frac=6, out_width=10, out_frac=6, poly_width=14)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_latency_follows_from_order(order):
    config = GELUConfig(**SMALL, order=order)
    dut = StreamPipeline(GELU(config))
    assert dut.latency == dut.core.latency == 2 + PE.latency * (2 * order + 1)
    x = np.array([[-300], [0], [100]])
    result = simulate_stream(dut, {"value": x}, {"value": gelu(config, x)})
    assert result.out_cycles[0] - result.in_cycles[0] == dut.latency


@pytest.mark.parametrize("kwargs", [
    dict(SMALL),
    dict(SMALL, method="poly"),
    dict(in_width=8, in_frac=3, out_width=9, out_frac=5, order=2, rounding="nearest_even",
         range_max=4.0, segments=8, poly_width=12, lanes=3),
    dict(in_width=10, in_frac=5, out_width=8, out_frac=4, method="poly", order=1,
         rounding="truncate", lanes=2),
])
def test_amaranth_sim_every_code_with_stalls(kwargs):
    config = GELUConfig(**kwargs)
    x = codes(config)  # every code: both sides of 0 and of +-range_max, and the extremes
    x = np.concatenate([x, x[:(-len(x)) % config.lanes]]).reshape(-1, config.lanes)
    expected = gelu(config, x)
    dut = StreamPipeline(GELU(config))
    result = simulate_stream(dut, {"value": x}, {"value": expected}, valid_prob=0.6,
                             ready_prob=0.5, seed=config.lanes)
    assert len(result.out_words) == len(x)


@pytest.mark.parametrize("method", METHODS)
def test_amaranth_sim_latency_and_ii(method):
    config = GELUConfig(**SMALL, method=method)
    x = codes(config).reshape(-1, 1)[::7]
    dut = StreamPipeline(GELU(config))
    result = simulate_stream(dut, {"value": x}, {"value": gelu(config, x)})
    assert {o - i for i, o in zip(result.in_cycles, result.out_cycles)} == {dut.latency}
    assert np.all(np.diff(result.in_cycles) == 1)


# --- cocotb on Verilator: the emitted Verilog --------------------------------------------------

def all_codes_in_lanes(config):
    return codes(config).reshape(-1, config.lanes)


@pytest.mark.parametrize("method", METHODS)
def test_verilator_every_16bit_code_with_stalls(method):
    config = GELUConfig(method=method, lanes=4)
    x = all_codes_in_lanes(config)
    result = run_stream_test(StreamPipeline(GELU(config)), "gelu", {"value": x},
                             {"value": gelu(config, x)}, valid_prob=0.7, ready_prob=0.6,
                             seed=21)
    assert len(result.out_words) == len(x) == 65536 // 4


@pytest.mark.parametrize("method", METHODS)
def test_verilator_ii_and_latency(method, measure):
    config = GELUConfig(method=method, lanes=4)
    x = all_codes_in_lanes(config)
    dut = StreamPipeline(GELU(config))
    result = run_stream_test(dut, "gelu", {"value": x}, {"value": gelu(config, x)}, seed=22)
    latencies = {o - i for i, o in zip(result.in_cycles, result.out_cycles)}
    interval = (result.in_cycles[-1] - result.in_cycles[0]) / (len(x) - 1)
    measure(f"GELU {method} lanes=4: II {interval:.3f}, latency {sorted(latencies)} "
            f"(component says {dut.latency}), {len(x)} vectors in {result.cycles} cycles")
    assert interval == 1.0
    assert latencies == {dut.latency} == {23}  # 2 + 7 PEs of 3 stages


# --- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,message", [
    ({"segments": 0}, ValueError, "segments must be in 1..64, got 0"),
    ({"segments": 65}, ValueError, "segments must be in 1..64, got 65"),
    ({"order": 4}, ValueError, "order must be in 1..3, got 4"),
    ({"order": 0}, ValueError, "order must be in 1..3, got 0"),
    ({"in_frac": 16}, ValueError, r"in_frac must be in 0..15 \(below in_width\), got 16"),
    ({"method": "tanh"}, ValueError, "method must be one of relu-correction, poly"),
    ({"poly_width": 33}, ValueError, "poly_width must be in 8..32, got 33"),
    ({"lanes": 0}, ValueError, "lanes must be in 1..256, got 0"),
    ({"rounding": "up"}, ValueError, "rounding must be one of"),
    ({"range_max": 0.0}, ValueError, "range_max must be > 0, got 0.0"),
    ({"range_max": "4.5"}, TypeError, "range_max must be a number"),
    ({"segments": 2.0}, TypeError, "segments must be an integer"),
    ({"segments": 3}, ValueError, "segment width must be a power of two: range_max=4.5 over "
                                  "segments=3 gives 1.5"),
    ({"method": "poly", "segments": 12}, ValueError, "segment width must be a power of two"),
    ({"in_width": 8, "in_frac": 0, "out_frac": 4}, ValueError,
     r"segment width 0.5 \(from range_max=4.5, segments=9\) is below the input LSB 2\*\*-0"),
    ({"method": "poly", "in_width": 8, "in_frac": 1, "range_max": 4.25, "segments": 17},
     ValueError, r"range_max must be a multiple of the input LSB 2\*\*-1"),
    ({"method": "poly", "poly_width": 8}, ValueError,
     "poly_width=8 leaves 3 fraction bits after 4 integer bits and the sign; need at least 4"),
    ({"poly_width": 10}, ValueError, "poly_width=10 leaves 8 fraction bits, fewer than the 9"),
    ({"out_frac": 17}, ValueError, "out_frac must be at most the 16 fraction bits"),
])
def test_bad_parameters_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        GELU(**kwargs)


def test_config_or_keywords_not_both():
    with pytest.raises(TypeError, match="pass either a GELUConfig or keyword parameters"):
        GELU(GELUConfig(), lanes=2)
    dut = GELU(GELUConfig(lanes=2))
    assert dut.config.lanes == 2
    Fragment.get(dut, None)  # and it elaborates
