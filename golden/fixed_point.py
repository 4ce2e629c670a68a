"""Fixed-point arithmetic in NumPy, exact on integers.

Every function takes and returns integer arrays (the raw two's complement values a hardware
register holds) except :func:`quantize` (float in) and :func:`dequantize` (float out). Values
are ``int64`` when the widths involved fit in 63 bits; wider intermediate results switch to
NumPy ``object`` arrays of Python integers, so the arithmetic stays exact at any width with the
same vectorized code (see :func:`int_array`).

Rounding modes, shared by quantization and by shifts:

``"nearest_even"``
    round to nearest, ties to even (IEEE 754 default, no bias).
``"half_up"``
    round to nearest, ties toward +inf: add half an LSB, then drop bits (cheapest in hardware).
``"truncate"``
    drop the bits below the LSB, which in two's complement is floor (toward -inf).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ROUNDING_MODES",
    "OVERFLOW_MODES",
    "QFormat",
    "int_array",
    "int_range",
    "bits_for_range",
    "saturate",
    "wrap",
    "shift_right",
    "shift_left_saturate",
    "quantize",
    "dequantize",
    "product_range",
    "sum_range",
    "sum_of_products_width",
]

ROUNDING_MODES = ("nearest_even", "half_up", "truncate")
OVERFLOW_MODES = ("saturate", "wrap")

# int64 holds any value of up to 63 magnitude bits plus sign; wider goes to Python ints.
_INT64_SAFE_BITS = 63


def _check_rounding(rounding: str) -> None:
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDING_MODES)}, got {rounding!r}")


def int_range(width: int, signed: bool) -> tuple[int, int]:
    """Return the inclusive ``(min, max)`` of a ``width``-bit two's complement integer.

    Parameters
    ----------
    width : int
        Number of bits, at least 1.
    signed : bool
        Two's complement signed if true, unsigned otherwise.
    """
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width must be an integer >= 1, got {width!r}")
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def bits_for_range(lo: int, hi: int, signed: bool) -> int:
    """Return the fewest bits that hold every integer in ``[lo, hi]``.

    Parameters
    ----------
    lo, hi : int
        Inclusive bounds, ``lo <= hi``.
    signed : bool
        Width of a signed (two's complement) or unsigned integer.
    """
    if lo > hi:
        raise ValueError(f"lo must be <= hi, got lo={lo}, hi={hi}")
    if not signed:
        if lo < 0:
            raise ValueError(f"an unsigned range cannot hold negative values, got lo={lo}")
        return max(1, hi.bit_length())
    # A signed n-bit integer holds -2**(n-1) .. 2**(n-1)-1.
    positive_bits = hi.bit_length() + 1 if hi > 0 else 1
    negative_bits = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(positive_bits, negative_bits)


def int_array(values, bits: int = 64) -> np.ndarray:
    """Return ``values`` as an exact integer array able to hold ``bits``-bit results.

    ``int64`` when ``bits <= 63``, otherwise an ``object`` array of Python integers. Use the
    widest intermediate width of a computation for ``bits``.
    """
    if bits <= _INT64_SAFE_BITS:
        arr = np.asarray(values)
        if arr.dtype == object:
            return np.array([int(v) for v in arr.ravel()], dtype=np.int64).reshape(arr.shape)
        if arr.dtype.kind not in "iub":
            raise TypeError(f"expected integer values, got dtype {arr.dtype}")
        return arr.astype(np.int64)
    arr = np.asarray(values, dtype=object)
    return np.vectorize(int, otypes=[object])(arr) if arr.size else arr


def saturate(values, width: int, signed: bool) -> np.ndarray:
    """Clamp integers to the range of a ``width``-bit integer.

    Parameters
    ----------
    values : array_like of int
    width : int
        Target width in bits.
    signed : bool
        Signedness of the target.
    """
    lo, hi = int_range(width, signed)
    shape = np.shape(values)
    values = np.atleast_1d(values)  # 0-d object arrays would decay to scalars in ufuncs
    if values.dtype != object and width + 1 > _INT64_SAFE_BITS:
        values = values.astype(object)  # the bounds themselves do not fit int64
    out = np.where(values < lo, lo, np.where(values > hi, hi, values)).astype(values.dtype)
    return out.reshape(shape)


def wrap(values, width: int, signed: bool) -> np.ndarray:
    """Keep the low ``width`` bits of integers (two's complement overflow).

    Parameters
    ----------
    values : array_like of int
    width : int
        Target width in bits.
    signed : bool
        Read the kept bits as signed (two's complement) or unsigned.
    """
    int_range(width, signed)  # validates width
    values = int_array(values, max(width + 1, 64))
    mask = (1 << width) - 1
    low = values & mask
    if signed:
        sign = 1 << (width - 1)
        low = np.where(low >= sign, low - (1 << width), low)
    return low


def shift_right(values, amount, rounding: str = "truncate") -> np.ndarray:
    """Arithmetic shift right with rounding: ``round(values / 2**amount)``.

    Parameters
    ----------
    values : array_like of int
    amount : int or array_like of int
        Shift amounts, each >= 0 (broadcast against ``values``).
    rounding : {"nearest_even", "half_up", "truncate"}
        How the dropped bits round the result.
    """
    _check_rounding(rounding)
    shape = np.broadcast_shapes(np.shape(values), np.shape(amount))
    values, amount = (np.atleast_1d(x) for x in np.broadcast_arrays(values, amount))
    if np.any(amount < 0):
        raise ValueError("amount must be >= 0")
    if amount.size and np.max(amount) >= _INT64_SAFE_BITS - 1:
        values = values.astype(object)  # 2**amount would overflow int64
    if values.dtype == object:
        amount = amount.astype(object)
    quotient = values >> amount  # floor division by 2**amount
    if rounding == "truncate":
        return quotient.reshape(shape)
    remainder = values - (quotient << amount)  # in [0, 2**amount)
    half = (np.ones_like(amount) << amount) >> 1  # 2**(amount-1), or 0 when amount == 0
    if rounding == "half_up":
        round_up = (amount > 0) & (remainder >= half)
    else:  # nearest_even
        odd = (quotient & 1) == 1
        round_up = (amount > 0) & ((remainder > half) | ((remainder == half) & odd))
    return (quotient + round_up.astype(quotient.dtype)).reshape(shape)


def shift_left_saturate(values, amount, width: int, signed: bool) -> np.ndarray:
    """Shift left by ``amount`` and saturate to a ``width``-bit integer, without overflow.

    Saturation is decided by comparing ``values`` with the limits shifted right, so no
    intermediate exceeds ``width`` bits however large ``amount`` is.
    """
    lo, hi = int_range(width, signed)
    shape = np.broadcast_shapes(np.shape(values), np.shape(amount))
    values, amount = (np.atleast_1d(x) for x in np.broadcast_arrays(values, amount))
    values = int_array(values, width + 1)
    if np.any(amount < 0):
        raise ValueError("amount must be >= 0")
    amount = np.minimum(amount, width)  # any shift >= width saturates a nonzero value
    if values.dtype == object:
        amount = amount.astype(object)
    limit_hi = np.right_shift(hi, amount) if values.dtype != object else hi >> amount
    too_high = values > limit_hi
    too_low = values < -((-lo) >> amount) if signed else np.zeros_like(too_high)
    safe = np.where(too_high | too_low, 0, values)
    out = np.where(too_high, hi, np.where(too_low, lo, safe << amount)).astype(values.dtype)
    return out.reshape(shape)


@dataclass(frozen=True)
class QFormat:
    """A fixed-point format: ``width`` bits of which ``frac`` are fraction bits.

    A raw integer ``q`` stands for the real value ``q * 2**-frac``. ``QFormat(16, 8)`` is
    signed Q7.8.

    Parameters
    ----------
    width : int
        Total bits including the sign bit, 1..64.
    frac : int
        Fraction bits, -64..64 (negative scales by powers of two above 1).
    signed : bool
        Two's complement signed (default) or unsigned.
    """

    width: int
    frac: int = 0
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.width, int) or not 1 <= self.width <= 64:
            raise ValueError(f"width must be in 1..64, got {self.width!r}")
        if not isinstance(self.frac, int) or not -64 <= self.frac <= 64:
            raise ValueError(f"frac must be in -64..64, got {self.frac!r}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"signed must be a bool, got {self.signed!r}")

    @property
    def min_int(self) -> int:
        """Smallest raw integer."""
        return int_range(self.width, self.signed)[0]

    @property
    def max_int(self) -> int:
        """Largest raw integer."""
        return int_range(self.width, self.signed)[1]

    @property
    def lsb(self) -> float:
        """Real value of one LSB, ``2**-frac``."""
        return 2.0 ** -self.frac

    @property
    def min_value(self) -> float:
        """Smallest representable real value."""
        return self.min_int * self.lsb

    @property
    def max_value(self) -> float:
        """Largest representable real value."""
        return self.max_int * self.lsb

    def __str__(self):
        kind = "Q" if self.signed else "UQ"
        int_bits = self.width - self.frac - (1 if self.signed else 0)
        return f"{kind}{int_bits}.{self.frac}"


def quantize(x, fmt: QFormat, rounding: str = "nearest_even", overflow: str = "saturate"):
    """Convert real values to raw integers of a fixed-point format.

    Parameters
    ----------
    x : array_like of float
        Finite real values.
    fmt : QFormat
        Target format.
    rounding : {"nearest_even", "half_up", "truncate"}
        Rounding of values between two representable numbers.
    overflow : {"saturate", "wrap"}
        Clamp to the format's range, or keep the low bits (two's complement wrap).

    Returns
    -------
    numpy.ndarray
        Raw integers (``int64``, or ``object`` for widths above 63).
    """
    _check_rounding(rounding)
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f"overflow must be one of {', '.join(OVERFLOW_MODES)}, got {overflow!r}")
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("x must be finite")
    scaled = np.ldexp(x, fmt.frac)  # exact: scaling by a power of two
    if rounding == "nearest_even":
        rounded = np.rint(scaled)
    elif rounding == "half_up":
        rounded = np.floor(scaled + 0.5)
        # x + 0.5 can itself round up in float64 just below a tie; fix those exactly.
        rounded = np.where(rounded - scaled > 0.5, rounded - 1, rounded)
    else:
        rounded = np.floor(scaled)
    # Clamp in float first so the conversion to int cannot overflow, then finish exactly.
    bound = float(2 ** (fmt.width + 1))
    clipped = np.clip(rounded, -bound, bound)
    if overflow == "saturate":
        as_int = int_array(clipped.astype(object), fmt.width + 2)
        return saturate(as_int, fmt.width, fmt.signed)
    exact = np.vectorize(int, otypes=[object])(rounded) if rounded.size else rounded.astype(object)
    return int_array(wrap(exact, fmt.width, fmt.signed), fmt.width + 1)


def dequantize(q, fmt: QFormat) -> np.ndarray:
    """Return the real values (float64) of raw integers in format ``fmt``."""
    q = np.asarray(q)
    return np.ldexp(q.astype(np.float64), -fmt.frac)


def product_range(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Return the inclusive range of ``x * y`` for ``x`` in range ``a`` and ``y`` in ``b``."""
    corners = [x * y for x in a for y in b]
    return min(corners), max(corners)


def sum_range(term: tuple[int, int], n: int) -> tuple[int, int]:
    """Return the inclusive range of a sum of ``n`` terms, each in range ``term``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return n * term[0], n * term[1]


def sum_of_products_width(a: QFormat, b: QFormat, n: int) -> int:
    """Return the exact width of a sum of ``n`` products of ``a`` and ``b`` values.

    The result is signed if either operand is. No sum of ``n`` such products overflows it.
    """
    lo, hi = sum_range(product_range((a.min_int, a.max_int), (b.min_int, b.max_int)), n)
    return bits_for_range(lo, hi, a.signed or b.signed)
