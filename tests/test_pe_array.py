"""PE array: golden model and schedules, Amaranth-sim unit tests, cocotb on the emitted Verilog."""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from stimulus import array_transactions, operands

from boards import get_board
from golden.pe import Op
from golden.pe_array import (
    Mode,
    PEArrayConfig,
    gemm,
    gemm_reference,
    gemm_schedule,
    gemv,
    pe_array,
)
from hw.pe_array import PEArray
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test

# --- golden model ------------------------------------------------------------------------------


@pytest.mark.parametrize("rows,cols,m,k,n", [(1, 1, 3, 4, 2), (3, 5, 7, 13, 3), (4, 16, 9, 40, 1),
                                             (8, 8, 8, 8, 4)])
def test_golden_gemm_equals_numpy_when_exact(rows, cols, m, k, n, rng):
    config = PEArrayConfig(rows=rows, cols=cols, in_width=8)
    w, x = rng.integers(-128, 128, (m, k)), rng.integers(-128, 128, (k, n))
    assert np.array_equal(gemm(config, w, x), w @ x)
    assert np.array_equal(gemm(config, w, x), gemm_reference(w, x))  # exact in float64 here
    assert np.array_equal(gemv(config, w, x[:, 0]), w @ x[:, 0])


def test_golden_schedule_tiles_and_broadcasts():
    config = PEArrayConfig(rows=2, cols=3, in_width=8)
    w = np.arange(5 * 4).reshape(5, 4) - 10
    x = np.arange(4).reshape(4, 1) - 2
    s = gemm_schedule(config, w, x)
    # ceil(5/2) row blocks x ceil(4/3) chunks, one column.
    assert s["a"].shape == (6, 2, 3) and s["last"].tolist() == [0, 1, 0, 1, 0, 1]
    assert np.array_equal(s["a"][1], [[3 - 10, 0, 0], [7 - 10, 0, 0]])  # K padded with zeros
    assert np.array_equal(s["b"][0], [[-2, -1, 0], [-2, -1, 0]])  # x chunk on every row
    assert np.array_equal(s["a"][5], [[19 - 10, 0, 0], [0, 0, 0]])  # M padded with zeros


@pytest.mark.parametrize("in_width,signed,max_k,cols", [(4, True, 37, 5), (8, False, 100, 8),
                                                        (2, True, 9, 1), (16, True, 64, 16)])
def test_default_accumulator_is_exact_up_to_max_k(in_width, signed, max_k, cols):
    config = PEArrayConfig(rows=2, cols=cols, in_width=in_width, signed=signed, max_k=max_k)
    lo, hi = config.operand_range
    # The largest and the most negative dot products of length max_k.
    w = np.array([[hi] * max_k, [lo] * max_k])
    for x in (np.full(max_k, hi), np.full(max_k, lo)):
        assert np.array_equal(gemv(config, w, x), w.astype(object) @ x.astype(object))


def test_golden_accumulator_saturates_and_restarts():
    config = PEArrayConfig(rows=1, cols=2, in_width=4, acc_width=8)
    ones = np.ones((4, 1, 2), dtype=np.int64)
    out, source = pe_array(config, op=int(Op.MUL), mode=int(Mode.LINEAR), last=[0, 0, 1, 1],
                           a=ones * 7, b=ones * 7, c=ones * 0)
    # 2*49 = 98 per transaction: 98, 196 -> 127 (saturated), 127 + 98 -> 127; then restart.
    assert out["acc"][:, 0].tolist() == [127, 98] and source.tolist() == [2, 3]


def test_golden_elementwise_keeps_accumulators_and_emits_every_transaction():
    config = PEArrayConfig(rows=1, cols=1, in_width=8)
    a = np.array([3, 5, 2, 4]).reshape(4, 1, 1)
    out, source = pe_array(config, op=int(Op.MUL), mode=[1, 0, 1, 0], last=[0, 0, 1, 0],
                           a=a, b=a, c=a * 0)
    # The elementwise transaction in the middle of a dot product passes through untouched.
    assert source.tolist() == [1, 2, 3]
    assert out["elem"][:, 0, 0].tolist() == [25, 4, 16]
    assert out["acc"][:, 0].tolist() == [9, 13, 13]


def test_golden_rejects_bad_inputs():
    config = PEArrayConfig(rows=2, cols=2, in_width=4, max_k=8)
    with pytest.raises(ValueError, match="K=9 exceeds max_k=8"):
        gemm_schedule(config, np.zeros((2, 9), dtype=int), np.zeros((9, 1), dtype=int))
    with pytest.raises(ValueError, match="w values must be in -8..7"):
        gemm_schedule(config, np.full((2, 2), 8), np.zeros((2, 1), dtype=int))
    with pytest.raises(ValueError, match="shapes do not match"):
        gemm_schedule(config, np.zeros((2, 3), dtype=int), np.zeros((2, 1), dtype=int))
    with pytest.raises(ValueError, match="mode must be one of"):
        pe_array(config, op=0, mode=2, last=0, a=np.zeros((1, 2, 2), dtype=int),
                 b=np.zeros((1, 2, 2), dtype=int), c=np.zeros((1, 2, 2), dtype=int))


@pytest.mark.parametrize("kwargs,error,message", [
    ({"rows": 0}, ValueError, "rows must be in 1..256, got 0"),
    ({"rows": 257}, ValueError, "rows must be in 1..256, got 257"),
    ({"cols": 0}, ValueError, "cols must be in 1..256, got 0"),
    ({"in_width": 1}, ValueError, "in_width must be in 2..32, got 1"),
    ({"in_width": 33}, ValueError, "in_width must be in 2..32, got 33"),
    ({"in_width": 8, "acc_width": 7}, ValueError, "acc_width must be in 8..64"),
    ({"acc_width": 65}, ValueError, "acc_width must be in 2..64, got 65"),
    ({"in_width": 32, "max_k": 1 << 20}, ValueError, "max_k=1048576 needs a 84-bit accumulator"),
    ({"ops": ("mul", "fma")}, ValueError, "ops must be drawn from"),
    ({"tree_levels_per_stage": 0}, ValueError, "tree_levels_per_stage must be in 1..16"),
    ({"rows": "4"}, TypeError, "rows must be an integer"),
    ({"bogus": 1}, TypeError, "unexpected keyword argument 'bogus'"),
])
def test_bad_parameters_are_rejected_before_building(kwargs, error, message):
    with pytest.raises(error, match=message):
        PEArray(**kwargs)


def test_config_object_or_keywords_but_not_both():
    config = PEArrayConfig(rows=2, cols=2)
    dut = PEArray(config)
    assert dut.config is config
    Fragment.get(dut, None)
    with pytest.raises(TypeError, match="either a PEArrayConfig or keyword parameters"):
        PEArray(config, rows=3)
    with pytest.raises(TypeError, match="config must be a PEArrayConfig"):
        PEArray({"rows": 2})


@pytest.mark.parametrize("cols,levels_per_stage,stages,latency", [
    (1, 1, 1, 3 + 1 + 1), (8, 1, 1, 3 + 3 + 1), (9, 2, 1, 3 + 2 + 1), (64, 16, 1, 3 + 1 + 1),
    (8, 1, 2, 4 + 3 + 1), (8, 1, 3, 5 + 3 + 1), (8, 1, 4, 6 + 3 + 1),
    (8, 1, "3+sum", 6 + 3 + 1),
])
def test_latency_follows_from_parameters(cols, levels_per_stage, stages, latency):
    dut = PEArray(rows=1, cols=cols, in_width=4, tree_levels_per_stage=levels_per_stage,
                  multiplier_stages=3 if stages == "3+sum" else stages,
                  sum_register=stages == "3+sum")
    assert dut.latency == latency
    Fragment.get(dut, None)  # it elaborates


# --- Amaranth simulator (fast unit tests) --------------------------------------------------------


def corner_transactions(config):
    """Every op on all-max / all-min / mixed-extreme operands, in both modes."""
    lo, hi = config.operand_range
    pairs = [(hi, hi), (lo, lo), (lo, hi), (hi, lo), (hi, 0), (lo, -1 if lo < 0 else 1)]
    rows = [(int(op), mode, a, b) for op in config.op_codes for mode in (0, 1)
            for a, b in pairs]
    op, mode, a, b = (np.array(column) for column in zip(*rows))
    shape = (len(rows), config.rows, config.cols)
    full = lambda v: np.broadcast_to(v[:, None, None], shape)  # noqa: E731
    return {"op": op, "mode": mode, "last": np.ones(len(rows), dtype=np.int64),
            "a": full(a), "b": full(b), "c": full(a)}


def concat(*batches):
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def expected_for(config, inputs):
    return pe_array(config, **inputs)


@pytest.mark.parametrize("kwargs", [
    {"rows": 1, "cols": 1, "in_width": 8},
    {"rows": 2, "cols": 3, "in_width": 4, "signed": False, "out_width": 5, "acc_width": 7},
    {"rows": 3, "cols": 5, "in_width": 6, "rounding": "nearest_even", "acc_width": 12},
    {"rows": 2, "cols": 7, "in_width": 3, "rounding": "truncate", "tree_levels_per_stage": 2},
    {"rows": 2, "cols": 4, "in_width": 5, "multiplier_stages": 2, "shifter": "logic"},
    # The mapped lanes: the op decode shared by two rows (3 rows: the last alone), its
    # register and the stall enable copied per two lanes (3 columns: the last alone), the
    # operands registered in the fabric before the DSP.
    {"rows": 3, "cols": 3, "in_width": 8, "multiplier_stages": 4},
])
def test_amaranth_sim_mixed_modes_under_stalls(kwargs, rng):
    config = PEArrayConfig(**kwargs)
    inputs = concat(corner_transactions(config), array_transactions(config, rng, 250))
    expected, source = expected_for(config, inputs)
    simulate_stream(PEArray(config), inputs, expected, source, valid_prob=0.6, ready_prob=0.5,
                    seed=7)


def test_amaranth_sim_ii_and_latency_without_stalls(rng):
    config = PEArrayConfig(rows=2, cols=5, in_width=8)
    inputs = array_transactions(config, rng, 200, modes=(0,))
    expected, source = expected_for(config, inputs)
    dut = PEArray(config)
    result = simulate_stream(dut, inputs, expected, source)
    assert np.all(np.diff(result.in_cycles) == 1)
    assert {o - result.in_cycles[s] for o, s in zip(result.out_cycles, source)} == {dut.latency}


def test_amaranth_sim_op_subset(rng):
    config = PEArrayConfig(rows=2, cols=2, in_width=6, ops=("mul", "add", "shr"))
    inputs = array_transactions(config, rng, 200, ops=list(Op))
    expected, source = expected_for(config, inputs)
    simulate_stream(PEArray(config), inputs, expected, source, valid_prob=0.8, ready_prob=0.7)


@pytest.mark.parametrize("kwargs", [
    {"rows": 2, "cols": 3, "in_width": 5, "acc_width": 7},  # the accumulators saturate
    {"rows": 3, "cols": 3, "in_width": 8, "multiplier_stages": 4},  # the mapped lanes
])
def test_amaranth_sim_without_backpressure(kwargs, rng):
    config = PEArrayConfig(backpressure=False, **kwargs)
    dut = PEArray(config)
    assert dut.i.signature.always_ready and dut.o.signature.always_ready
    inputs = concat(corner_transactions(config), array_transactions(config, rng, 250))
    expected, source = expected_for(config, inputs)
    result = simulate_stream(dut, inputs, expected, source, valid_prob=0.6, seed=7)
    assert {o - result.in_cycles[s] for o, s in zip(result.out_cycles, source)} == {dut.latency}
    with pytest.raises(ValueError, match="ready_prob must be 1"):
        simulate_stream(dut, inputs, expected, source, ready_prob=0.5)


# --- cocotb on Verilator: the emitted Verilog ---------------------------------------------------

VERILATOR_CONFIGS = {
    "1x1-s2": dict(rows=1, cols=1, in_width=2, out_width=2, acc_width=3),
    "3x5-u5": dict(rows=3, cols=5, in_width=5, signed=False, rounding="nearest_even",
                   acc_width=9),
    "2x3-u12": dict(rows=2, cols=3, in_width=12, signed=False, out_width=12,
                    rounding="truncate"),
    # int16 lanes (the accelerator's, each with its output's choice of sum bits as LUT
    # modules) in a 16-column tree of two pipeline stages; 2 rows have every per-row copy of
    # the control that 4 have, in half the Verilog (2.3 MB: it dominated this file's time).
    "2x16-s16": dict(rows=2, cols=16, in_width=16, tree_levels_per_stage=2),
    # The README's example array: its Verilator build is shared with that example's test. The
    # Larger int8 arrays run in the slow suite here (16x16) and, inside the accelerator, in
    # tests/test_minilm.py (8x8).
    "4x8-s8": dict(rows=4, cols=8, in_width=8),
}


@pytest.fixture(params=list(VERILATOR_CONFIGS), scope="module")
def array_config(request):
    return PEArrayConfig(**VERILATOR_CONFIGS[request.param])


def test_verilator_mixed_ops_and_modes_under_stalls(array_config, rng):
    config = array_config
    inputs = concat(corner_transactions(config), array_transactions(config, rng, 1500))
    expected, source = expected_for(config, inputs)
    result = run_stream_test(PEArray(config), "pe_array", inputs, expected, source,
                             valid_prob=0.6, ready_prob=0.5, seed=3, key=config)
    assert len(result.out_words) == len(source)


def test_verilator_every_op_elementwise_ii_and_latency(array_config, rng, measure):
    config = array_config
    n = 800
    inputs = array_transactions(config, rng, n, modes=(int(Mode.ELEMENTWISE),))
    assert set(inputs["op"].tolist()) == {int(op) for op in config.op_codes}
    expected, source = expected_for(config, inputs)
    dut = PEArray(config)
    result = run_stream_test(dut, "pe_array", inputs, expected, source, seed=4, key=config)
    latencies = {o - result.in_cycles[s] for o, s in zip(result.out_cycles, source)}
    cycles_per_vector = (result.in_cycles[-1] - result.in_cycles[0]) / (n - 1)
    measure(f"{config.rows}x{config.cols} element-wise: {cycles_per_vector:.3f} cycles/vector, "
            f"latency {sorted(latencies)} (component says {dut.latency})")
    assert cycles_per_vector == 1.0
    assert latencies == {dut.latency}


def test_verilator_gemv_with_ragged_k_and_extreme_values(array_config, rng, measure):
    config = array_config
    m, k = 2 * config.rows + 1, 3 * config.cols + 2  # neither divides the array
    w = operands(config, rng, (m, k), corner_prob=0.5)
    x = operands(config, rng, (k,), corner_prob=0.5)
    schedule = gemm_schedule(config, w, x.reshape(-1, 1))
    expected, source = expected_for(config, schedule)
    dut = PEArray(config)
    stalled = run_stream_test(dut, "pe_array", schedule, expected, source, valid_prob=0.7,
                              ready_prob=0.4, seed=5, key=config)
    free = run_stream_test(dut, "pe_array", schedule, expected, source, seed=5, key=config)
    y = gemv(config, w, x)
    float_error = np.max(np.abs(y.astype(np.float64) - gemm_reference(w, x.reshape(-1, 1))[:, 0]))
    if config.acc_width is None and config.output_width >= 2 * config.in_width:
        # Exact products and accumulators: the array computes the true integer product.
        assert np.array_equal(y, w.astype(object) @ x.astype(object))
        assert float_error == 0
    cycles = free.out_cycles[-1] - free.in_cycles[0] + 1
    interval = (free.in_cycles[-1] - free.in_cycles[0]) / (len(schedule["op"]) - 1)
    latencies = {o - free.in_cycles[s] for o, s in zip(free.out_cycles, source)}
    measure(f"{config.rows}x{config.cols} GEMV {m}x{k} (linear mode): "
            f"{len(schedule['op'])} vectors in {cycles} cycles, II {interval:.3f}, "
            f"latency {sorted(latencies)}; {stalled.cycles} cycles with stalls; "
            f"max |error| vs float64 {float_error:g}")
    assert interval == 1.0 and latencies == {dut.latency}
    assert len(stalled.out_words) == len(free.out_words) == len(source)


@pytest.mark.parametrize("board", [None, "ulx3s-85f"])
def test_verilator_without_backpressure(board, rng):
    """The always-ready array, generic and as mapped for ECP5 (its lanes' primitives
    simulated): no ready port, every output ``latency`` cycles after its input."""
    config = PEArrayConfig(rows=2, cols=3, in_width=8, multiplier_stages=4, acc_width=18,
                           backpressure=False)
    inputs = concat(corner_transactions(config), array_transactions(config, rng, 600))
    expected, source = expected_for(config, inputs)
    dut = PEArray(config)
    result = run_stream_test(dut, "pe_array", inputs, expected, source, valid_prob=0.6, seed=8,
                             platform=get_board(board).platform() if board else None)
    assert {o - result.in_cycles[s] for o, s in zip(result.out_cycles, source)} == {dut.latency}


@pytest.mark.slow
@pytest.mark.parametrize("kwargs", [dict(rows=16, cols=16, in_width=8),
                                    dict(rows=8, cols=12, in_width=16, signed=False,
                                         acc_width=30, tree_levels_per_stage=2)])
def test_verilator_soak_long_random_streams(kwargs, rng, measure):
    config = PEArrayConfig(**kwargs)
    inputs = array_transactions(config, rng, 20000, last_prob=0.05)
    expected, source = expected_for(config, inputs)
    result = run_stream_test(PEArray(config), "pe_array", inputs, expected, source,
                             valid_prob=0.8, ready_prob=0.7, seed=21)
    measure(f"soak {config.rows}x{config.cols}: {len(source)} outputs checked in "
            f"{result.cycles} cycles")
