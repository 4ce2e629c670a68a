"""Fixed-point arithmetic as Amaranth expressions: saturation and shifts with rounding.

The hardware counterparts of ``golden.fixed_point``; each function returns a combinational
expression and matches its golden twin bit for bit.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Shape, Value, signed, unsigned

from golden.fixed_point import ROUNDING_MODES, bits_for_range, int_range

__all__ = ["shape_of", "saturate", "clamp_amount", "shift_right_rounded", "shift_left_saturate"]


def shape_of(width: int, is_signed: bool) -> Shape:
    """``signed(width)`` or ``unsigned(width)``."""
    return signed(width) if is_signed else unsigned(width)


def saturate(value: Value, shape: Shape, *, value_range: tuple[int, int] | None = None) -> Value:
    """Clamp ``value`` to the range of ``shape``; the result has ``shape``.

    Overflow is found from the bits above the result's (all equal to its sign bit when the value
    fits), a few LUTs, not from comparisons of the whole value, which cost a carry chain each.
    ``value_range`` (inclusive), when the caller knows a tighter range than ``value``'s shape
    allows, drops the clamps the value can never need; a value that always fits costs nothing.
    """
    value = Value.cast(value)
    width, vshape = shape.width, value.shape()
    lo, hi = int_range(width, shape.signed)
    vlo, vhi = value_range if value_range is not None else int_range(vshape.width, vshape.signed)
    result = value[:width]
    result = result.as_signed() if shape.signed else result
    clamp_high, clamp_low = vhi > hi, vlo < lo
    if not (clamp_high or clamp_low):
        return result
    negative = value[-1] if vshape.signed else Const(0, 1)
    if shape.signed:
        top = value[width - 1:]  # the result's sign bit and everything above it
        fits = (top == 0) | (top.all() if vshape.signed else Const(0, 1))
    else:
        fits = ~negative & (value[width:] == 0)
    if clamp_high and clamp_low:
        return Mux(fits, result, Mux(negative, Const(lo, shape), Const(hi, shape)))
    return Mux(fits, result, Const(hi if clamp_high else lo, shape))


def clamp_amount(amount: Value, limit: int) -> Value:
    """Clamp a shift amount to ``0..limit`` (negative amounts count as 0)."""
    amount = Value.cast(amount)
    result = Mux(amount > limit, limit, amount)
    if amount.shape().signed:
        result = Mux(amount < 0, 0, result)
    return result[:bits_for_range(0, limit, False)]


def shift_right_rounded(value: Value, amount: Value, rounding: str) -> Value:
    """Arithmetic ``value >> amount`` with rounding (``amount`` unsigned).

    Adds a bias before the shift: half an output LSB for ``half_up``; half minus one plus the
    result's LSB for ``nearest_even`` (so an exact tie only rounds up to an even result).
    """
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {rounding!r}")
    value = Value.cast(value)
    if rounding == "truncate":
        return value >> amount
    half = (Const(1, 1) << amount) >> 1  # 2**(amount-1), 0 when amount == 0
    if rounding == "half_up":
        bias = half
    else:
        lsb = (value >> amount)[0]
        bias = Mux(amount == 0, 0, half - 1 + lsb)
    return (value + bias) >> amount


def shift_left_saturate(value: Value, amount: Value, shape: Shape) -> Value:
    """``value << amount`` saturated to ``shape`` (``amount`` unsigned, at most ``shape.width``).

    Overflow is detected by comparing ``value`` with the limits shifted right, as in
    ``golden.fixed_point.shift_left_saturate``, so the wide shifted value is never compared.
    """
    value = Value.cast(value)
    lo, hi = int_range(shape.width, shape.signed)
    shifted = (value << amount)[:shape.width]
    shifted = shifted.as_signed() if shape.signed else shifted
    too_high = value > (Const(hi, unsigned(shape.width)) >> amount)
    result = Mux(too_high, Const(hi, shape), shifted)
    if shape.signed:
        too_low = value < -(Const(-lo, unsigned(shape.width)) >> amount)
        result = Mux(too_low, Const(lo, shape), result)
    return result
