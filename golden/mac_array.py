"""Fixed-function MAC array: the minimal hardware for the PE array's linear mode.

The FPGA resource baseline that :class:`hw.pe_array.PEArray` is compared against: the same
``rows x cols`` operand grid and the same per-row result, with nothing else: multipliers,
one adder tree and one accumulator per row, no ops, no modes, no saturation, no streams.

Each input carries operand matrices ``a``, ``b`` of shape ``(rows, cols)`` and a ``last`` flag.
Row ``r`` adds ``sum_c a[r, c] * b[r, c]`` to its accumulator. ``last`` marks the final
product of a dot product: the input with ``last`` set emits one output, the finished sums of
all rows, and the next input starts a new dot product from 0.

Overflow wraps (two's complement, modulo ``2**acc_width``): minimal hardware has no
saturation logic. The default accumulator width is the PE array's (exact for ``max_k``
elements, see :class:`MACArrayConfig`), so up to ``max_k`` elements both designs give the
exact dot product and the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fixed_point import bits_for_range, int_array, int_range, sum_range, wrap
from .params import BlockConfig, param

__all__ = ["MACArrayConfig", "mac_array", "mac_array_reference"]

MAX_ACC_WIDTH = 64


@dataclass(frozen=True, kw_only=True)
class MACArrayConfig(BlockConfig):
    """Parameters of a ``rows x cols`` fixed-function MAC array.

    Parameters
    ----------
    rows, cols : int
        Array shape, each 1..64. A row is one adder tree over ``cols`` products.
    in_width : int
        Operand width of ``a`` and ``b``, 2..18 (one ECP5 ``MULT18X18D`` per product).
    signed : bool
        Two's complement operands and accumulators if true, unsigned otherwise.
    max_k : int
        Longest dot product (in elements) the default accumulator holds exactly, 1..2**24.
    acc_width : int or None
        Accumulator width, 2..64; sums wrap modulo ``2**acc_width``. ``None``: the width a
        :class:`golden.pe_array.PEArrayConfig` with the same ``in_width``, ``signed`` and
        ``max_k`` derives, i.e. exact for ``max_k`` terms of a ``2 * in_width``-bit PE result.
    tree_levels_per_stage : int
        Adder levels between pipeline registers in the adder trees, 1..16 (as the PE array).
    """

    rows: int = param(8, help="rows (one adder tree and accumulator each)", range=(1, 64))
    cols: int = param(8, help="products per row (adder tree inputs)", range=(1, 64))
    in_width: int = param(8, help="operand width of a and b in bits", range=(2, 18))
    signed: bool = param(True, help="two's complement (true) or unsigned (false) arithmetic")
    max_k: int = param(4096, help="longest dot product the default accumulator holds exactly",
                       range=(1, 1 << 24))
    acc_width: int | None = param(None, help="accumulator width, sums wrap (derived: the PE "
                                  "array's, exact for max_k)", range=(2, MAX_ACC_WIDTH))
    tree_levels_per_stage: int = param(1, help="adder levels between pipeline registers",
                                       range=(1, 16))

    def _exact_acc_width(self) -> int:
        # PEArrayConfig's rule with its default out_width = 2 * in_width: max_k terms, each
        # anywhere in the range of a 2*in_width-bit result. One formula, so both arrays
        # compared on an FPGA carry accumulators of the same width. At most 36 + 24 bits
        # (in_width 18, max_k 2**24), so it always fits the 64-bit limit.
        lo, hi = sum_range(int_range(2 * self.in_width, self.signed), self.max_k)
        return bits_for_range(lo, hi, self.signed)

    @property
    def accumulator_width(self) -> int:
        """Resolved accumulator width."""
        return self._exact_acc_width() if self.acc_width is None else self.acc_width

    @property
    def product_width(self) -> int:
        """Width of one product, ``2 * in_width`` (exact for any two operands)."""
        return 2 * self.in_width

    @property
    def operand_range(self) -> tuple[int, int]:
        """Inclusive range of an operand."""
        return int_range(self.in_width, self.signed)


def mac_array(config: MACArrayConfig, a, b, last) -> np.ndarray:
    """Bit-exact model of the MAC array over a sequence of inputs, from reset.

    Parameters
    ----------
    config : MACArrayConfig
    a, b : array_like of int, shape ``(N, rows, cols)``
        Operands of the N inputs (only the cycles with ``valid`` set: gaps do not matter).
    last : array_like of int, shape ``(N,)`` or scalar
        1 on the final input of each dot product.

    Returns
    -------
    numpy.ndarray of int, shape ``(M, rows)``
        One row of accumulators per input with ``last`` set (M of them), wrapped to
        ``acc_width`` bits. int64, or Python ints in an object array for widths above 63.
        ``numpy.flatnonzero(last)`` gives the input behind each output.
    """
    a, b = np.asarray(a), np.asarray(b)
    shape = (config.rows, config.cols)
    for name, x in (("a", a), ("b", b)):
        if x.ndim != 3 or x.shape[1:] != shape:
            raise ValueError(f"{name} must have shape (N, {config.rows}, {config.cols}), "
                             f"got {x.shape}")
        lo, hi = config.operand_range
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"operand {name} must be in {lo}..{hi}")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    last = np.broadcast_to(np.asarray(last, dtype=np.int64), (n,))
    if n and not np.isin(last, (0, 1)).all():
        raise ValueError("last must be 0 or 1")

    acc_w = config.accumulator_width
    dtype = object if acc_w > 63 else np.int64
    ends = np.flatnonzero(last)
    if not len(ends):
        return np.zeros((0, config.rows), dtype=dtype)
    # Wrapping after every addition equals wrapping the exact sum once (arithmetic modulo
    # 2**acc_width), so each dot product is summed exactly and wrapped at the end. Inputs
    # after the final last belong to an unfinished dot product and emit nothing.
    bits = 2 * config.in_width + 7 + n.bit_length()  # cols <= 64 products per row, n rows
    used = ends[-1] + 1
    row_sums = (int_array(a[:used], bits) * int_array(b[:used], bits)).sum(axis=2)
    starts = np.concatenate([[0], ends[:-1] + 1])
    sums = np.add.reduceat(row_sums, starts, axis=0)
    return wrap(sums, acc_w, config.signed).astype(dtype)


def mac_array_reference(a, b, last) -> np.ndarray:
    """Float64 reference: each finished dot product per row, without any overflow."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    last = np.broadcast_to(np.asarray(last), (a.shape[0],))
    sums = (a * b).sum(axis=2)
    outputs, start = [], 0
    for t in np.flatnonzero(last):
        outputs.append(sums[start:t + 1].sum(axis=0))
        start = t + 1
    return np.array(outputs).reshape(len(outputs), a.shape[1])
