"""PE lane: golden model vs plain Python, hardware vs golden (Amaranth sim and Verilator)."""

import itertools
import re
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_fixed_point import round_fraction

from golden.pe import OP_NAMES, Op, PEConfig, pe_op, pe_op_reference
from hw.pe import PE, lane_is_mapped
from hw.pipeline import StreamPipeline
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


def python_pe(config: PEConfig, op: Op, a: int, b: int, c: int) -> int:
    """The PE spelled out one value at a time with Python integers."""
    lo, hi = config.output_range
    if op.name.lower() not in config.ops:
        return 0
    if op is Op.SHL:  # the mathematical shifts, unclamped
        exact = a << max(b, 0)
    elif op is Op.SHR:
        exact = round_fraction(Fraction(a, 1 << max(b, 0)), config.rounding)
    else:
        exact = {Op.MUL: a * b, Op.ADD: a + b, Op.SUB: a - b, Op.MADD: a * b + c,
                 Op.MAX: max(a, b), Op.MIN: min(a, b)}[op]
    return min(max(exact, lo), hi)


def lane_inputs(config, op, a, b, c):
    return {"op": np.asarray(op), "a": np.asarray(a), "b": np.asarray(b), "c": np.asarray(c)}


@given(st.data(), st.integers(2, 32), st.booleans(),
       st.sampled_from(["nearest_even", "half_up", "truncate"]))
@settings(max_examples=200)
def test_golden_matches_python(data, in_width, signed, rounding):
    out_width = data.draw(st.integers(2, 64))
    config = PEConfig(in_width=in_width, signed=signed, out_width=out_width, rounding=rounding)
    lo, hi = config.operand_range
    op = data.draw(st.sampled_from(list(Op)))
    a, b, c = (data.draw(st.integers(lo, hi)) for _ in range(3))
    if op in (Op.SHL, Op.SHR):  # around and beyond the clamping points
        b = data.draw(st.integers(max(lo, -3), min(hi, out_width + 3)))
    if op is Op.SHR and not signed and data.draw(st.booleans()):
        a, b = data.draw(st.integers(hi // 2, hi)), min(hi, in_width + data.draw(st.integers(0, 2)))
    assert pe_op(config, int(op), a, b, c).item() == python_pe(config, op, a, b, c)


def test_golden_float_reference_agrees_where_exact():
    config = PEConfig(in_width=8, out_width=16)
    a, b, c = np.array([3, -7, 100]), np.array([5, 2, -3]), np.array([1, 1, 1])
    for op in (Op.MUL, Op.ADD, Op.SUB, Op.MADD, Op.MAX, Op.MIN):
        assert np.array_equal(pe_op(config, int(op), a, b, c), pe_op_reference(op, a, b, c))


def exhaustive(config):
    """Every op on every (a, b) pair, with a few c values."""
    lo, hi = config.operand_range
    values = range(lo, hi + 1)
    rows = [(int(op), a, b, c) for op in config.op_codes for a, b in
            itertools.product(values, values) for c in (lo, 0, hi)]
    return [np.array(column) for column in zip(*rows)]


@pytest.mark.parametrize("shifter,out_width", [("multiplier", 6), ("logic", 6),
                                               ("multiplier", 3),   # a saturating narrow
                                               ("multiplier", 2)])  # shl's limit 1 (signed)
@pytest.mark.parametrize("signed", [True, False])
@pytest.mark.parametrize("rounding", ["nearest_even", "half_up", "truncate"])
def test_hardware_exhaustive_4bit_amaranth(signed, rounding, shifter, out_width):
    config = PEConfig(in_width=4, signed=signed, out_width=out_width, rounding=rounding,
                      shifter=shifter)
    op, a, b, c = exhaustive(config)
    expected = pe_op(config, op, a, b, c)
    result = simulate_stream(StreamPipeline(PE(config)), lane_inputs(config, op, a, b, c),
                             {"value": expected})
    assert len(result.out_words) == len(op)


def test_hardware_with_op_subset_returns_zero_for_missing_ops(rng):
    config = PEConfig(in_width=6, ops=("mul", "max", "shr"))
    n = 400
    op = rng.integers(0, 8, n)
    a, b, c = (rng.integers(-32, 32, n) for _ in range(3))
    expected = pe_op(config, op, a, b, c)
    assert np.all(expected[~np.isin(op, [Op.MUL, Op.MAX, Op.SHR])] == 0)
    simulate_stream(StreamPipeline(PE(config)), lane_inputs(config, op, a, b, c),
                    {"value": expected}, valid_prob=0.6, ready_prob=0.5, seed=3)


def _verilator_check(config, rng, platform=None):
    """3000 random and corner lanes through the PE's emitted Verilog (for ``platform``'s
    build when given) under random stalls; every output compared with the golden model."""
    n = 3000
    lo, hi = config.operand_range
    op = rng.choice([int(o) for o in Op], n)
    a, b, c = (rng.integers(lo, hi + 1, n) for _ in range(3))
    b = np.where(np.isin(op, [Op.SHL, Op.SHR]),
                 np.clip(rng.integers(-2, config.output_width + 3, n), lo, hi), b)
    corner = rng.random(n) < 0.2
    a = np.where(corner, rng.choice([lo, hi], n), a)
    expected = pe_op(config, op, a, b, c)
    dut = StreamPipeline(PE(config))
    assert dut.latency == 2 + config.multiplier_stages + config.sum_register
    result = run_stream_test(dut, "pe", lane_inputs(config, op, a, b, c), {"value": expected},
                             valid_prob=0.7, ready_prob=0.6, seed=11, platform=platform)
    assert len(result.out_words) == n


@pytest.mark.parametrize("signed,in_width,out_width,shifter,stages", [
    (True, 16, 32, None, 1), (True, 16, 32, "multiplier", 1), (True, 8, 16, None, 1),
    (True, 8, 16, None, 2), (True, 8, 16, None, 3), (False, 12, 12, None, 1),
    (False, 8, 16, "logic", 2), (False, 8, 16, "logic", 4),
    (True, 2, 2, None, 1)])
def test_verilator_matches_golden_with_stalls(signed, in_width, out_width, shifter, stages,
                                              rng):
    _verilator_check(PEConfig(in_width=in_width, signed=signed, out_width=out_width,
                              rounding="nearest_even", shifter=shifter,
                              multiplier_stages=stages), rng)


@pytest.mark.parametrize("signed,shifter", [(True, None), (False, "logic")])
def test_verilator_sum_register_matches_golden(signed, shifter, rng):
    """The sum register on the ECP5 netlist (the DSP's registers, then the fabric's)."""
    from boards import get_board

    _verilator_check(PEConfig(in_width=8, signed=signed, rounding="nearest_even",
                              shifter=shifter, multiplier_stages=3, sum_register=True), rng,
                     platform=get_board("ulx3s-85f").platform())


@pytest.mark.parametrize("signed,stages", [(True, 1), (True, 2), (False, 2), (True, 4)])
def test_ecp5_netlist_with_dsp_registers_matches_golden(signed, stages, rng):
    """The ECP5 build's netlist (a MULT18X18D holding the product register, and the operand
    registers with 2 multiplier stages) against the golden model, the primitive simulated by
    sim/models/MULT18X18D.v."""
    from amaranth.back import verilog

    from boards import get_board

    platform = get_board("ulx3s-85f").platform()
    config = PEConfig(in_width=8, signed=signed, rounding="nearest_even",
                      multiplier_stages=stages)
    netlist = verilog.convert(PE(config), platform=platform, emit_src=False)
    assert netlist.count("MULT18X18D") == 1 and "REG_OUTPUT_CLK(\"CLK0\")" in netlist
    assert ("REG_INPUTA_CLK(\"CLK0\")" in netlist) == (stages >= 2)
    _verilator_check(config, rng, platform=get_board("ulx3s-85f").platform())


@pytest.mark.parametrize("kwargs,error,message", [
    ({"in_width": 1}, ValueError, "in_width must be in 2..32, got 1"),
    ({"in_width": 33}, ValueError, "in_width must be in 2..32, got 33"),
    ({"out_width": 65}, ValueError, "out_width must be in 2..64, got 65"),
    ({"rounding": "up"}, ValueError, "rounding must be one of"),
    ({"ops": ("mul", "div")}, ValueError, "ops must be drawn from .*'div'"),
    ({"ops": ()}, TypeError, "ops must be a non-empty tuple"),
    ({"signed": 1}, TypeError, "signed must be a bool"),
    ({"in_width": 8.0}, TypeError, "in_width must be an integer"),
])
def test_bad_parameters_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        PE(**kwargs)


def test_golden_rejects_unknown_op_and_out_of_range_operands():
    config = PEConfig(in_width=4)
    with pytest.raises(ValueError, match="op must be one of"):
        pe_op(config, 9, 1, 1, 1)
    with pytest.raises(ValueError, match="operand a must be in -8..7"):
        pe_op(config, 0, 8, 1, 1)
    assert set(OP_NAMES) == {op.name.lower() for op in Op}


# --- The mapped int8 lane (hw.pe.mapped_lane): its netlists on every input ----------------

def _mapped_lane_check(board, stages, sum_register, words):
    """The lane's netlist (the portable one, or ``board``'s with LUT4 and MULT18X18D
    primitives) in the native Verilator loop, every output against the golden model."""
    from boards import get_board
    from sim.lane_check import LaneSim, unpack_words

    config = PEConfig(multiplier_stages=stages, sum_register=sum_register)
    pe = PE(config)
    assert pe.mapped
    sim = LaneSim(pe, get_board(board).platform() if board else None)
    checked = 0
    for start, chunk in words:
        if isinstance(chunk, int):
            out = sim.outputs_range(start, chunk)
            words_ = np.arange(start, start + chunk)
        else:
            words_ = chunk
            out = sim.outputs(words_)
        f = unpack_words(config, words_)
        expected = pe_op(config, f["op"], f["a"], f["b"], f["c"])
        bad = np.flatnonzero(out != expected)
        assert bad.size == 0, [(int(f["op"][k]), int(f["a"][k]), int(f["b"][k]), int(f["c"][k]),
                                int(out[k]), int(expected[k])) for k in bad[:5]]
        checked += len(words_)
    return checked


@pytest.mark.parametrize("board,stages", [(None, 1), ("ulx3s-85f", 4)])
def test_mapped_lane_every_op_a_b(board, stages, rng):
    """Every (op, a, b) of the int8 lane, c random (2**19 inputs; ``c`` only enters madd):
    the chained comparison on the portable netlist, the tree on ECP5's."""
    grid = np.arange(1 << 19, dtype=np.int64)  # op in bits 0..2, a, b above: the word layout
    words = grid | (rng.integers(0, 256, grid.size) << 19)
    assert _mapped_lane_check(board, stages, False, [(0, words)]) == 1 << 19


@pytest.mark.slow
@pytest.mark.parametrize("board,stages,sum_register", [
    (None, 1, False), ("ulx3s-85f", 1, False), ("ulx3s-85f", 2, False),
    ("ulx3s-85f", 3, True), ("ulx3s-85f", 4, False)])
def test_mapped_lane_exhaustive(board, stages, sum_register):
    """All 2**27 (op, a, b, c) inputs of the int8 lane through its netlist (about a minute of
    CPU each, most of it the golden model)."""
    chunk = 1 << 24
    words = [(start, chunk) for start in range(0, 1 << 27, chunk)]
    assert _mapped_lane_check(board, stages, sum_register, words) == 1 << 27


@pytest.mark.parametrize("board,stages,sum_register", [(None, 1, False),
                                                       ("ulx3s-85f", 3, True)])
def test_mapped_lane_verilator_with_stalls(board, stages, sum_register, rng):
    """The mapped lane's netlists under cocotb with random stalls on both sides (the ECP5
    one with its LUT4, TRELLIS_FF and MULT18X18D primitives simulated)."""
    from boards import get_board

    config = PEConfig(multiplier_stages=stages, sum_register=sum_register)
    assert lane_is_mapped(config)
    _verilator_check(config, rng, platform=get_board(board).platform() if board else None)


def test_mapped_lane_amaranth_with_stalls(rng):
    """The mapped lane's portable description in the Amaranth simulator, random stalls."""
    config = PEConfig()
    assert lane_is_mapped(config)
    n = 1500
    op = rng.integers(0, 8, n)
    a, b, c = (rng.integers(-128, 128, n) for _ in range(3))
    b = np.where(op >= 6, rng.integers(-3, 20, n), b)
    simulate_stream(StreamPipeline(PE(config)), lane_inputs(config, op, a, b, c),
                    {"value": pe_op(config, op, a, b, c)}, valid_prob=0.7, ready_prob=0.6,
                    seed=5)


def test_decoded_op_needs_the_mapped_lane():
    with pytest.raises(ValueError, match="decoded_op needs the mapped lane"):
        PE(in_width=6, decoded_op=True)
    with pytest.raises(TypeError, match="decoded_op must be a bool"):
        PE(decoded_op=1)
    for stages, delay in ((1, 0), (3, 1), (4, 1)):
        pe = PE(decoded_op=True, multiplier_stages=stages)
        pe._MustUse__silence = True  # built for its attributes only
        assert pe.decode_delay == delay and "decoded" in pe.signature.members
    assert not lane_is_mapped(PEConfig(rounding="nearest_even"))
    assert not lane_is_mapped(PEConfig(ops=("mul", "add")))


def test_lut4_truth_tables_and_portable_cells():
    """INIT bit {D, C, B, A}; the portable cells are modules marked keep_hierarchy."""
    from gen.emit import verilog_text
    from hw.dsp import lut4_init

    assert lut4_init(lambda a: a, 1) == 0xAAAA
    assert lut4_init(lambda a, b, c, d: a & b & c & d, 4) == 0x8000
    assert lut4_init(lambda a, b: ~(a ^ b), 2) == 0x9999
    with pytest.raises(ValueError, match="n_inputs must be in 0..4"):
        lut4_init(lambda *bits: 0, 5)
    text = verilog_text(PE(), "pe")
    assert text.count("(* keep_hierarchy = 1 *)\nmodule \\pe.lut4_") == 77
    # Generic lanes: none without shifts on the multiplier; with them, one per result bit
    # (the output's choice of sum bits, hw.pe._select_output).
    assert "keep_hierarchy" not in verilog_text(PE(in_width=6, ops=("mul", "add")), "pe")
    assert "keep_hierarchy" not in verilog_text(PE(in_width=6, shifter="logic"), "pe")
    assert verilog_text(PE(in_width=16, out_width=32), "pe").count("keep_hierarchy") == 32


@pytest.mark.parametrize("x_shape,y_shape", [
    ((16, True), (1, False)), ((16, True), (2, True)), ((7, False), (4, False)),
    ((5, True), (6, True)), ((3, False), (3, True)), ((1, True), (1, True)),
])
def test_shift_add_product_is_exact(x_shape, y_shape):
    """Every product of the narrow operand's values with the wide one's (sampled past 6 bits):
    the multiplier-free product the units' add, subtract and shift PEs use."""
    from amaranth.hdl import Module, Shape, Signal, signed
    from amaranth.sim import Simulator

    from hw.dsp import shift_add_product

    x, y = Signal(Shape(*x_shape)), Signal(Shape(*y_shape))
    product = Signal(signed(len(x) + len(y) + 1))
    m = Module()
    m.d.comb += product.eq(shift_add_product(x, y))

    def values(shape):
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        every = range(lo, lo + (1 << shape.width))
        return every if shape.width <= 6 else sorted({lo, 0, 1, every[-1], every[1000 % len(every)],
                                                      max(lo, -1)})

    async def bench(ctx):
        for a, b in itertools.product(values(x.shape()), values(y.shape())):
            ctx.set(x, a)
            ctx.set(y, b)
            assert ctx.get(product) == a * b, (a, b)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()


def test_ecp5_units_spend_dsp_blocks_on_real_products_only():
    """On the ECP5 the exp unit's add and shift PEs (a 1-bit y) multiply in the fabric, with no
    multiplier cell; its polynomial and scale multipliers are MULT18X18D blocks."""
    from amaranth.back import rtlil

    from boards import get_board
    from hw.nonlinear.exp import Exp

    unit = Exp(lanes=1)
    text = rtlil.convert(unit, platform=get_board("ulx3s-85f").platform())
    dsps = len(re.findall(r"cell \\MULT18X18D ", text))
    assert "cell $mul " not in text
    # per lane: the scale by log2(e) and the polynomial's multipliers; no add or shift PE
    assert dsps == 1 + unit.config.order


# --- Shifts on the multiplier for operands up to int16 (an 18x18 DSP) -----------------------

def _edge_values(lo, hi, rng, n_random=8):
    """The range's ends, 0 and +-1, every power of two and its neighbours inside the range,
    and a few random values."""
    values = {lo, lo + 1, -1, 0, 1, hi - 1, hi}
    for j in range(max(hi, -lo).bit_length() + 1):
        values |= {(1 << j) - 1, 1 << j, (1 << j) + 1, -(1 << j), -(1 << j) - 1}
    values |= set(rng.integers(lo, hi + 1, n_random).tolist())
    return sorted(v for v in values if lo <= v <= hi)


@pytest.mark.parametrize("signed,in_width,out_width,rounding,ops", [
    (True, 16, 32, "half_up", OP_NAMES), (True, 16, 32, "nearest_even", OP_NAMES),
    (True, 16, 32, "truncate", OP_NAMES),
    (True, 16, 24, "nearest_even", ("mul", "shl", "shr")),  # shl saturates before the post-shift
    (True, 12, 64, "half_up", ("shl", "shr")),  # post-shifts by 16, 32 and 48
    (False, 15, 32, "nearest_even", ("add", "shl", "shr")),
    (False, 8, 32, "half_up", ("mul", "shl")),  # unsigned: 2 steps; no shr beside it
    (True, 16, 32, "truncate", ("shr",)),
])
def test_multiplier_shifts_wide_results_amaranth(signed, in_width, out_width, rounding, ops,
                                                 rng):
    """shl and shr on the multiplier for lanes whose shl factor needs the post-shift (results
    wider than 17 bits): every amount from below 0 to past the clamp, the operand range's
    edge values, against the golden model, under random stalls. The int16-into-32 lane with
    every op is the accelerator's."""
    config = PEConfig(in_width=in_width, signed=signed, out_width=out_width, rounding=rounding,
                      ops=ops)
    assert config.shift_unit == "multiplier"
    lo, hi = config.operand_range
    a_values = _edge_values(lo, hi, rng)
    rows = [(int(op), a, b) for op, top in ((Op.SHL, out_width + 2), (Op.SHR, in_width + 3))
            if op.name.lower() in ops
            for b in range(max(lo, -2), min(hi, top) + 1) for a in a_values]
    op, a, b = (np.array(column) for column in zip(*rows))
    c = np.zeros_like(a)
    simulate_stream(StreamPipeline(PE(config)), lane_inputs(config, op, a, b, c),
                    {"value": pe_op(config, op, a, b, c)}, valid_prob=0.9, ready_prob=0.9,
                    seed=7)


def test_shifter_derivation_fits_an_18x18_multiplier():
    """``multiplier`` up to int16 signed / 15-bit unsigned operands (shr's factor 2**K fits
    18 bits signed), whatever the result width; ``logic`` past that."""
    assert PEConfig(in_width=16, out_width=32).shift_unit == "multiplier"
    assert PEConfig(in_width=8, out_width=32).shift_unit == "multiplier"
    assert PEConfig(in_width=15, signed=False, out_width=64).shift_unit == "multiplier"
    assert PEConfig(in_width=17, out_width=34).shift_unit == "logic"
    assert PEConfig(in_width=16, signed=False).shift_unit == "logic"
    assert PEConfig(in_width=16, shifter="logic").shift_unit == "logic"
