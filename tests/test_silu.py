"""SiLU unit: accuracy, golden model vs plain Python, hardware vs golden (Amaranth sim and
Verilator), latency, II and parameter checks."""

import numpy as np
import pytest
from test_gelu import check_datapath_bits, codes, python_piecewise

from golden.nonlinear.silu import (
    SiLUConfig,
    silu,
    silu_approximation,
    silu_exact,
    silu_reference,
)
from hw.nonlinear.silu import SiLU
from hw.pe import PE
from hw.pipeline import StreamPipeline
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test

# --- golden model ------------------------------------------------------------------------------


def test_exact_silu_is_stable_and_matches_the_definition():
    x = np.linspace(-30, 30, 601)
    assert np.allclose(silu_exact(x), x / (1 + np.exp(-x)), rtol=1e-15, atol=0)
    assert np.all(np.isfinite(silu_exact([-1e4, 1e4])))
    assert silu_exact([-1e4, 1e4]).tolist() == [-0.0, 1e4]
    assert np.array_equal(silu_reference(SiLUConfig(), [-1024, 0, 2048]),
                          silu_exact([-1.0, 0.0, 2.0]))


def test_accuracy_of_the_default_unit(measure):
    config = SiLUConfig()
    assert (config.in_width, config.in_frac, config.out_width, config.out_frac) == (16, 10, 16, 10)
    assert (config.segments, config.range_max, config.order) == (8, 8.0, 3)
    assert config.segment_width == 2.0
    x = codes(config, -24, 24)
    lsb = config.output_format.lsb
    error = np.abs(silu(config, x) * lsb - silu_reference(config, x))
    dense = np.concatenate([np.linspace(-24, 24, 960_001), x * 2.0 ** -config.in_frac])
    approximation_error = np.abs(silu_approximation(config, dense) - silu_exact(dense))
    inside = np.abs(dense) < config.range_max
    error_inside = error[np.abs(x) < config.range_max * 2 ** config.in_frac].max()
    measure(f"SiLU: hardware max |error| {error.max():.3g} ({error.max() / lsb:.3f} LSB) at "
            f"x={x[error.argmax()] * 2.0 ** -10:g} ({error_inside / lsb:.3f} LSB inside "
            f"[-8, 8)); approximation {approximation_error.max():.3g} "
            f"({approximation_error[inside].max():.3g} inside [-8, 8)); "
            f"fit {config.fit_error:.3g}; {config.table_words} table words; "
            f"I={config.int_bits} F={config.frac_bits}")
    assert error.max() <= 5e-3
    assert approximation_error.max() <= 5e-3
    assert config.segments <= 8 and config.table_words == 32
    check_datapath_bits(config)


@pytest.mark.parametrize("kwargs", [
    {},
    {"order": 1, "rounding": "truncate", "segments": 4},
    {"order": 2, "rounding": "nearest_even", "out_width": 12, "out_frac": 6, "range_max": 4.0},
    {"in_width": 8, "in_frac": 0, "out_width": 10, "out_frac": 3, "segments": 4, "order": 2},
    {"in_width": 20, "in_frac": 14, "out_width": 24, "out_frac": 16, "poly_width": 26,
     "range_max": 2.0, "segments": 8},
])
def test_golden_matches_python(kwargs, rng):
    config = SiLUConfig(**kwargs)
    x = codes(config)
    x = np.concatenate([x[:40], x[-40:], rng.choice(x, 1500)])
    assert silu(config, x).tolist() == [python_piecewise(config, int(v)) for v in x]
    check_datapath_bits(config)


def test_golden_keeps_the_shape_and_rejects_out_of_range_inputs():
    config = SiLUConfig(in_width=8, in_frac=4, out_width=8, out_frac=4, range_max=4.0)
    x = np.arange(-128, 128).reshape(2, 128)
    assert silu(config, x).shape == (2, 128)
    with pytest.raises(ValueError, match=r"x must be in -128..127 \(Q3.4\)"):
        silu(config, [-129])
    with pytest.raises(TypeError, match="config must be a SiLUConfig"):
        silu(object(), [0])


# --- Amaranth simulator ------------------------------------------------------------------------

SMALL = dict(in_width=10, in_frac=6, out_width=10, out_frac=6, poly_width=14, range_max=4.0)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_latency_follows_from_order(order):
    config = SiLUConfig(**SMALL, order=order)
    dut = StreamPipeline(SiLU(config))
    assert dut.latency == dut.core.latency == 2 + PE.latency * (2 * order + 1)
    x = np.array([[-300], [0], [100]])
    result = simulate_stream(dut, {"value": x}, {"value": silu(config, x)})
    assert result.out_cycles[0] - result.in_cycles[0] == dut.latency


@pytest.mark.parametrize("kwargs", [
    dict(SMALL),
    dict(in_width=8, in_frac=2, out_width=12, out_frac=7, order=2, rounding="nearest_even",
         segments=4, poly_width=16, lanes=3),
    dict(in_width=10, in_frac=5, out_width=8, out_frac=4, order=1, rounding="truncate",
         lanes=2),
])
def test_amaranth_sim_every_code_with_stalls(kwargs):
    config = SiLUConfig(**kwargs)
    x = codes(config)  # every code: both sides of +-range_max and the extremes
    x = np.concatenate([x, x[:(-len(x)) % config.lanes]]).reshape(-1, config.lanes)
    expected = silu(config, x)
    result = simulate_stream(StreamPipeline(SiLU(config)), {"value": x}, {"value": expected},
                             valid_prob=0.6, ready_prob=0.5, seed=config.lanes)
    assert len(result.out_words) == len(x)


def test_amaranth_sim_latency_and_ii():
    config = SiLUConfig(**SMALL)
    x = codes(config).reshape(-1, 1)[::7]
    dut = StreamPipeline(SiLU(config))
    result = simulate_stream(dut, {"value": x}, {"value": silu(config, x)})
    assert {o - i for i, o in zip(result.in_cycles, result.out_cycles)} == {dut.latency}
    assert np.all(np.diff(result.in_cycles) == 1)


# --- cocotb on Verilator: the emitted Verilog --------------------------------------------------

def test_verilator_every_16bit_code_with_stalls():
    config = SiLUConfig(lanes=4)
    x = codes(config).reshape(-1, 4)
    result = run_stream_test(StreamPipeline(SiLU(config)), "silu", {"value": x},
                             {"value": silu(config, x)}, valid_prob=0.7, ready_prob=0.6,
                             seed=31)
    assert len(result.out_words) == len(x) == 65536 // 4


def test_verilator_ii_and_latency(measure):
    config = SiLUConfig(lanes=4)
    x = codes(config).reshape(-1, 4)
    dut = StreamPipeline(SiLU(config))
    result = run_stream_test(dut, "silu", {"value": x}, {"value": silu(config, x)}, seed=32)
    latencies = {o - i for i, o in zip(result.in_cycles, result.out_cycles)}
    interval = (result.in_cycles[-1] - result.in_cycles[0]) / (len(x) - 1)
    measure(f"SiLU lanes=4: II {interval:.3f}, latency {sorted(latencies)} "
            f"(component says {dut.latency}), {len(x)} vectors in {result.cycles} cycles")
    assert interval == 1.0
    assert latencies == {dut.latency} == {23}  # 2 + 7 PEs of 3 stages


# --- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,error,message", [
    ({"segments": 0}, ValueError, "segments must be in 1..8, got 0"),
    ({"segments": 9}, ValueError, "segments must be in 1..8, got 9"),
    ({"order": 4}, ValueError, "order must be in 1..3, got 4"),
    ({"in_frac": 16}, ValueError, r"in_frac must be in 0..15 \(below in_width\), got 16"),
    ({"in_width": 8, "in_frac": 8}, ValueError, r"in_frac must be in 0..7 \(below in_width\)"),
    ({"in_width": 25}, ValueError, "in_width must be in 4..24, got 25"),
    ({"out_width": 3}, ValueError, "out_width must be in 4..32, got 3"),
    ({"range_max": -8.0}, ValueError, r"range_max must be in 0.0..65536.0, got -8.0"),
    ({"range_max": 6.0}, ValueError, "segment width must be a power of two: range_max=6.0 over "
                                     "segments=8 gives 1.5"),
    ({"segments": 5}, ValueError, "segment width must be a power of two"),
    ({"in_width": 8, "in_frac": 0, "range_max": 0.5, "segments": 1, "out_frac": 2}, ValueError,
     r"range_max must be a multiple of the input LSB 2\*\*-0 \(the domain starts at -0.5\)"),
    ({"range_max": 8.0 + 2.0 ** -12}, ValueError,
     r"range_max must be a multiple of the input LSB 2\*\*-10"),
    ({"in_width": 8, "in_frac": 0, "range_max": 2.0, "segments": 8}, ValueError,
     "segment width 0.5 .* is below the input LSB"),
    ({"poly_width": 8}, ValueError, "poly_width=8 leaves 3 fraction bits"),
    ({"poly_width": 15}, ValueError, "poly_width=15 leaves 10 fraction bits, fewer than the 11"),
    ({"out_frac": 14}, ValueError, "out_frac must be at most the 13 fraction bits"),
    ({"range_max": True}, TypeError, "range_max must be a number"),
])
def test_bad_parameters_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        SiLU(**kwargs)
