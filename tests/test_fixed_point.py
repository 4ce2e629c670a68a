"""golden.fixed_point against plain Python integer and Fraction arithmetic."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from golden.fixed_point import (
    QFormat,
    bits_for_range,
    dequantize,
    int_range,
    product_range,
    quantize,
    saturate,
    shift_left_saturate,
    shift_right,
    sum_of_products_width,
    wrap,
)

widths = st.integers(1, 64)


def round_fraction(x: Fraction, rounding: str) -> int:
    """Reference rounding of an exact rational."""
    floor = math.floor(x)
    rest = x - floor
    if rounding == "truncate":
        return floor
    if rounding == "half_up":
        return floor + (rest >= Fraction(1, 2))
    return floor + (rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1))


@given(st.data(), widths, st.booleans())
def test_saturate_and_wrap_match_python(data, width, signed):
    lo, hi = int_range(width, signed)
    values = data.draw(st.lists(st.integers(lo * 4 - 5, hi * 4 + 5), min_size=1, max_size=20))
    sat = saturate(np.array(values, dtype=object), width, signed)
    wrapped = wrap(np.array(values, dtype=object), width, signed)
    for v, s, w in zip(values, sat, wrapped):
        assert s == min(max(v, lo), hi)
        low = v % (1 << width)
        assert w == (low - (1 << width) if signed and low >= 1 << (width - 1) else low)


@given(st.lists(st.integers(-(1 << 40), 1 << 40), min_size=1, max_size=30),
       st.integers(0, 45), st.sampled_from(["nearest_even", "half_up", "truncate"]))
def test_shift_right_rounds_like_exact_division(values, amount, rounding):
    out = shift_right(np.array(values, dtype=np.int64), amount, rounding)
    expected = [round_fraction(Fraction(v, 1 << amount), rounding) for v in values]
    assert out.tolist() == expected


@given(st.lists(st.integers(-(1 << 70), 1 << 70), min_size=1, max_size=10),
       st.integers(0, 80), st.sampled_from(["nearest_even", "half_up", "truncate"]))
def test_shift_right_exact_beyond_int64(values, amount, rounding):
    out = shift_right(np.array(values, dtype=object), amount, rounding)
    assert list(out) == [round_fraction(Fraction(v, 1 << amount), rounding) for v in values]


@given(st.data(), st.integers(2, 64), st.booleans())
def test_shift_left_saturate_matches_python(data, width, signed):
    lo, hi = int_range(width, signed)
    values = data.draw(st.lists(st.integers(lo, hi), min_size=1, max_size=20))
    amount = data.draw(st.integers(0, 100))
    out = shift_left_saturate(np.array(values, dtype=object), amount, width, signed)
    assert list(out) == [min(max(v << amount, lo), hi) for v in values]


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20),
       st.integers(1, 40), st.integers(-8, 30), st.booleans(),
       st.sampled_from(["nearest_even", "half_up", "truncate"]))
def test_quantize_saturating_matches_exact_rounding(xs, width, frac, signed, rounding):
    fmt = QFormat(width, frac, signed)
    q = quantize(np.array(xs), fmt, rounding=rounding)
    for x, got in zip(xs, q.tolist()):
        exact = round_fraction(Fraction(x) * Fraction(2) ** frac, rounding)
        assert got == min(max(exact, fmt.min_int), fmt.max_int)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20),
       st.integers(1, 40), st.integers(-8, 30), st.booleans())
def test_quantize_wrap_keeps_low_bits(xs, width, frac, signed):
    fmt = QFormat(width, frac, signed)
    q = quantize(np.array(xs), fmt, rounding="nearest_even", overflow="wrap")
    for x, got in zip(xs, q.tolist()):
        exact = round_fraction(Fraction(x) * Fraction(2) ** frac, "nearest_even")
        assert (got - exact) % (1 << width) == 0
        assert fmt.min_int <= got <= fmt.max_int


def test_quantize_ties_and_dequantize():
    fmt = QFormat(8, 1)  # steps of 0.5: ties at quarter values
    ties = np.array([0.25, 0.75, -0.25, -0.75])
    assert quantize(ties, fmt, "nearest_even").tolist() == [0, 2, 0, -2]
    assert quantize(ties, fmt, "half_up").tolist() == [1, 2, 0, -1]
    assert quantize(ties, fmt, "truncate").tolist() == [0, 1, -1, -2]
    assert dequantize(np.array([3, -4]), fmt).tolist() == [1.5, -2.0]
    assert (fmt.min_value, fmt.max_value, str(fmt)) == (-64.0, 63.5, "Q6.1")


@given(st.integers(-(1 << 62), 1 << 62), st.integers(-(1 << 62), 1 << 62), st.booleans())
def test_bits_for_range_is_minimal(a, b, signed):
    lo, hi = min(a, b), max(a, b)
    if not signed:
        lo, hi = abs(lo), abs(hi)
        lo, hi = min(lo, hi), max(lo, hi)
    bits = bits_for_range(lo, hi, signed)
    rlo, rhi = int_range(bits, signed)
    assert rlo <= lo and hi <= rhi
    if bits > 1:
        rlo, rhi = int_range(bits - 1, signed)
        assert lo < rlo or hi > rhi


@pytest.mark.parametrize("wa,wb,n,signed", [(8, 8, 1, True), (8, 8, 3, True), (4, 6, 7, False),
                                            (16, 16, 1024, True), (2, 2, 5, True)])
def test_sum_of_products_width_is_exact(wa, wb, n, signed):
    a, b = QFormat(wa, 0, signed), QFormat(wb, 0, signed)
    width = sum_of_products_width(a, b, n)
    lo, hi = product_range((a.min_int, a.max_int), (b.min_int, b.max_int))
    rlo, rhi = int_range(width, signed)
    assert rlo <= n * lo and n * hi <= rhi  # the extreme sums fit...
    slo, shi = int_range(width - 1, signed)
    assert n * lo < slo or n * hi > shi  # ...and one bit fewer does not hold them


@pytest.mark.parametrize("kwargs,message", [
    ({"width": 0}, "width must be in 1..64, got 0"),
    ({"width": 65}, "width must be in 1..64, got 65"),
    ({"width": 8, "frac": 99}, "frac must be in -64..64, got 99"),
])
def test_qformat_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QFormat(**kwargs)


def test_bad_modes_are_rejected():
    with pytest.raises(ValueError, match="rounding must be one of"):
        quantize([1.0], QFormat(8), rounding="up")
    with pytest.raises(ValueError, match="overflow must be one of"):
        quantize([1.0], QFormat(8), overflow="clip")
    with pytest.raises(ValueError, match="x must be finite"):
        quantize([np.nan], QFormat(8))


@pytest.mark.parametrize("value_shape, target, value_range", [
    ((7, True), (4, True), None),     # narrowing, both clamps
    ((7, True), (4, False), None),    # signed into unsigned: negatives clamp to 0
    ((7, False), (4, True), None),    # unsigned into signed: only the high clamp
    ((7, False), (4, False), None),
    ((4, True), (6, False), None),    # wider unsigned target: only negatives clamp
    ((7, True), (4, True), (-8, 40)),     # the caller's range drops the low clamp
    ((7, True), (4, True), (-50, 7)),     # ... and the high clamp
    ((7, True), (5, True), (-16, 15)),    # always fits: no logic at all
])
def test_hardware_saturate_matches_golden(value_shape, target, value_range):
    """hw.arith.saturate (overflow from the top bits) equals golden saturate for every value."""
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from golden.fixed_point import int_range
    from hw.arith import saturate as hw_saturate
    from hw.arith import shape_of

    value = Signal(shape_of(*value_shape))
    m = Module()
    result = Signal(shape_of(*target))
    m.d.comb += result.eq(hw_saturate(value, shape_of(*target), value_range=value_range))
    lo, hi = value_range or int_range(*value_shape)
    got = []

    async def bench(ctx):
        for v in range(lo, hi + 1):
            ctx.set(value, v)
            got.append(ctx.get(result))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    values = np.arange(lo, hi + 1)
    np.testing.assert_array_equal(got, saturate(values, *target))
