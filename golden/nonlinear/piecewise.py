"""Piecewise-polynomial engine shared by the GELU and SiLU units: parameters and bit-exact model.

A unit evaluates a function ``g`` on ``[lo, lo + segments * width)`` cut into uniform segments
whose width is a power of two, and handles the two sides outside that domain with a cheap rule.

1. *Range detection* (extras, not PE): ``u = x``, or ``|x|`` (saturated) for a *folded* unit.
   ``d = u - lo_q`` in input LSBs (``lo_q = lo * 2**in_frac``, an integer), with ``W = width *
   2**in_frac`` input LSBs per segment (a power of two): the segment is ``k = d >> log2(W)``,
   the local coordinate ``r`` in [0, 1) is ``d & (W - 1)`` shifted to ``F`` fraction bits.
   ``below = d < 0``, ``above = k >= segments``; ``k`` is clamped to the table.
2. *Coefficient ROM*: per segment, the minimax (absolute error) polynomial of order ``order``
   in ``r``, coefficients rounded to ``F`` fraction bits. All polynomial values are signed
   ``poly_width``-bit words with ``I`` integer bits, the fewest that hold every coefficient and
   every Horner intermediate plus one safety bit, so ``F = poly_width - 1 - I``.
3. *Horner on PE lanes*: ``p = c[order]``, then for ``j = order-1 .. 0``:
   ``p = ADD(MUL(p, r) >> F, c[j])`` (the shift is wiring: an arithmetic shift, floor; the ADD
   saturates to ``poly_width``).
4. *To the output format*: ``q = SHR(p, F - out_frac)`` with the configured rounding, saturated
   to ``out_width``; ``x_out`` is ``x`` shifted into the output format (floor, saturated).
5. *Combine* (extras): style ``"poly"`` gives ``0`` below, ``x_out`` above and ``q`` inside;
   style ``"relu-correction"`` (``g`` is the correction ``t - f(t)`` on ``t = |x|``) gives
   ``max(x_out, 0) - (0 if above else q)``, saturated.

:func:`piecewise` composes the PE ops of ``golden.pe`` exactly as the hardware instantiates
them; :func:`piecewise_approximation` is the same piecewise polynomial with unquantized float
coefficients, in float64 (the error of the approximation itself).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..fixed_point import ROUNDING_MODES, int_array, saturate
from ..params import BlockConfig, param
from ..pe import Op, PEConfig, pe_op
from .fit import minimax_poly
from .formats import InOutFormats

__all__ = ["PiecewiseConfig", "STYLES", "piecewise", "piecewise_front",
           "piecewise_approximation"]

#: How the polynomial result and the input combine into the output (see the module docstring).
STYLES = ("poly", "relu-correction")

#: Samples of ``r`` in [0, 1] used to bound the Horner intermediates.
_BOUND_SAMPLES = 4097


@functools.cache
def _fit(target: Callable, lo: float, width: float, segments: int,
         order: int) -> tuple[tuple[tuple[float, ...], ...], float]:
    """Minimax coefficients ``c[0..order]`` in ``r`` for every segment, and the worst fit error."""
    table, worst = [], 0.0
    for k in range(segments):
        start = lo + k * width
        coefficients, error = minimax_poly(target, start, start + width, order)
        table.append(tuple(float(c) for c in coefficients))
        worst = max(worst, error)
    return tuple(table), worst


def _horner_magnitude(table: tuple[tuple[float, ...], ...]) -> float:
    """Largest magnitude of a coefficient or a Horner intermediate over r in [0, 1]."""
    r = np.linspace(0.0, 1.0, _BOUND_SAMPLES)
    largest = 0.0
    for coefficients in table:
        largest = max(largest, max(abs(c) for c in coefficients))
        p = np.full_like(r, coefficients[-1])
        for c in reversed(coefficients[:-1]):
            product = p * r
            p = product + c
            largest = max(largest, float(np.max(np.abs(product))), float(np.max(np.abs(p))))
    return largest


@dataclass(frozen=True, kw_only=True)
class PiecewiseConfig(InOutFormats, BlockConfig):
    """Parameters shared by the piecewise-polynomial units (the engine; not a block itself).

    A unit subclasses this and defines the properties :attr:`target`, :attr:`domain_lo`,
    :attr:`fold` and :attr:`style` (and :attr:`segment_count` if ``segments`` is derived).

    Parameters
    ----------
    in_width, in_frac : int
        Signed input format: ``in_width`` bits (4..24), ``in_frac`` of them fraction bits.
    out_width, out_frac : int
        Signed output format (4..32 bits, 0..31 fraction bits).
    segments : int
        Uniform polynomial segments of the domain (1..64 here; units narrow it).
    range_max : float
        ``R``: the unit's domain in terms of it (e.g. ``[-R, R)``).
    order : int
        Polynomial order per segment, 1..3.
    poly_width : int
        Width of the signed polynomial datapath (8..32); the fraction bits ``F`` follow.
    rounding : str
        Rounding of the shift into the output format.
    lanes : int
        Elements per cycle, 1..256.
    """

    in_width: int = param(16, help="input width in bits (signed)", range=(4, 24))
    in_frac: int = param(10, help="input fraction bits", range=(0, 23))
    out_width: int = param(16, help="output width in bits (signed)", range=(4, 32))
    out_frac: int = param(10, help="output fraction bits", range=(0, 31))
    segments: int = param(8, help="uniform polynomial segments of the domain", range=(1, 64))
    range_max: float = param(8.0, help="R: bound of the polynomial domain", range=(0.0, 65536.0))
    order: int = param(3, help="polynomial order per segment", range=(1, 3))
    poly_width: int = param(18, help="width of the signed polynomial datapath (PE operands)",
                            range=(8, 32))
    rounding: str = param("half_up", help="rounding of the output", choices=ROUNDING_MODES)
    lanes: int = param(1, help="elements per cycle", range=(1, 256))

    # --- what a unit defines ------------------------------------------------------------------

    @property
    def target(self) -> Callable:
        """The float64 function ``g`` the polynomial segments approximate."""
        raise NotImplementedError

    @property
    def domain_lo(self) -> float:
        """``lo``: start of the polynomial domain."""
        raise NotImplementedError

    @property
    def domain_hi(self) -> float:
        """End (exclusive) of the polynomial domain."""
        raise NotImplementedError

    @property
    def fold(self) -> bool:
        """Evaluate ``g`` on ``|x|`` (true) or on ``x``."""
        raise NotImplementedError

    @property
    def style(self) -> str:
        """How the result is formed, one of :data:`STYLES`."""
        raise NotImplementedError

    @property
    def segment_count(self) -> int:
        """Resolved number of segments."""
        return self.segments

    # --- validation ---------------------------------------------------------------------------

    def _check(self):
        self._check_formats()
        if not self.range_max > 0:
            raise ValueError(f"range_max must be > 0, got {self.range_max}")
        lo_q = self.domain_lo * 2.0 ** self.in_frac
        if not float(lo_q).is_integer():
            raise ValueError(f"range_max must be a multiple of the input LSB 2**-{self.in_frac} "
                             f"(the domain starts at {self.domain_lo:g}), got {self.range_max}")
        width = self.segment_width
        if math.frexp(width)[0] != 0.5:
            raise ValueError(f"the segment width must be a power of two: range_max="
                             f"{self.range_max} over segments={self.segment_count} gives "
                             f"{width:g}")
        if width * 2.0 ** self.in_frac < 1:
            raise ValueError(f"the segment width {width:g} (from range_max={self.range_max}, "
                             f"segments={self.segment_count}) is below the input LSB "
                             f"2**-{self.in_frac}")
        f = self.frac_bits
        if f < 4:
            raise ValueError(f"poly_width={self.poly_width} leaves {f} fraction bits after "
                             f"{self.int_bits} integer bits and the sign; need at least 4")
        if f < self.segment_shift:
            raise ValueError(f"poly_width={self.poly_width} leaves {f} fraction bits, fewer "
                             f"than the {self.segment_shift} input bits of the local "
                             f"coordinate (segment width {width:g})")
        if f < self.out_frac:
            raise ValueError(f"out_frac must be at most the {f} fraction bits of the "
                             f"polynomial datapath (poly_width={self.poly_width}), "
                             f"got {self.out_frac}")

    # --- derived values -----------------------------------------------------------------------

    @property
    def segment_width(self) -> float:
        """Width of one segment in real units (a power of two)."""
        return (self.domain_hi - self.domain_lo) / self.segment_count

    @property
    def lo_raw(self) -> int:
        """``lo_q``: the domain start in input LSBs."""
        return int(self.domain_lo * 2.0 ** self.in_frac)

    @property
    def segment_shift(self) -> int:
        """``log2(W)``, ``W`` the segment width in input LSBs."""
        return math.frexp(self.segment_width)[1] - 1 + self.in_frac

    @property
    def r_shift(self) -> int:
        """Left shift taking the low ``log2(W)`` bits of ``d`` to ``r`` with ``F`` fraction bits."""
        return self.frac_bits - self.segment_shift

    @property
    def out_shift(self) -> int:
        """Right shift from the polynomial's ``F`` fraction bits to ``out_frac``."""
        return self.frac_bits - self.out_frac

    @property
    def real_table(self) -> tuple[tuple[float, ...], ...]:
        """Unquantized coefficients ``c[0..order]`` of every segment (minimax fits)."""
        return _fit(self.target, self.domain_lo, self.segment_width, self.segment_count,
                    self.order)[0]

    @property
    def fit_error(self) -> float:
        """Largest minimax error of a segment's fit (on the fit's sample points)."""
        return _fit(self.target, self.domain_lo, self.segment_width, self.segment_count,
                    self.order)[1]

    @property
    def int_bits(self) -> int:
        """``I``: integer bits of the polynomial datapath (one more than the values need)."""
        largest = _horner_magnitude(self.real_table)
        needed = 0 if largest < 1 else math.floor(math.log2(largest)) + 1
        while largest >= 2.0 ** needed:  # guard against log2 rounding
            needed += 1
        return needed + 1

    @property
    def frac_bits(self) -> int:
        """``F``: fraction bits of ``r``, the coefficients and every Horner value."""
        return self.poly_width - 1 - self.int_bits

    @property
    def table(self) -> tuple[tuple[int, ...], ...]:
        """The coefficient ROM: ``c[0..order]`` per segment, rounded to ``F`` fraction bits."""
        scale = 2.0 ** self.frac_bits
        return tuple(tuple(int(round(c * scale)) for c in row) for row in self.real_table)

    @property
    def table_words(self) -> int:
        """Coefficient ROM size in words: ``segments * (order + 1)``."""
        return self.segment_count * (self.order + 1)

    @functools.cached_property  # built once: config validation is slow
    def mul_pe(self) -> PEConfig:
        """Horner multiply ``p * r``, exact (``2 * poly_width`` bits)."""
        return PEConfig(in_width=self.poly_width, signed=True, ops=("mul",))

    @functools.cached_property  # built once: config validation is slow
    def add_pe(self) -> PEConfig:
        """Horner add ``(p * r >> F) + c``, saturating to ``poly_width``."""
        return PEConfig(in_width=self.poly_width, signed=True, out_width=self.poly_width,
                        ops=("add",))

    @functools.cached_property  # built once: config validation is slow
    def out_pe(self) -> PEConfig:
        """Shift from ``F`` fraction bits to the output format, rounded and saturated."""
        return PEConfig(in_width=self.poly_width, signed=True, out_width=self.out_width,
                        ops=("shr",), rounding=self.rounding, shifter="logic")


def _check_input(config: PiecewiseConfig, x) -> np.ndarray:
    x = int_array(x, config.in_width + 1)
    fmt = config.input_format
    if x.size and (x.min() < fmt.min_int or x.max() > fmt.max_int):
        raise ValueError(f"x must be in {fmt.min_int}..{fmt.max_int} ({fmt})")
    return x


def piecewise_front(config: PiecewiseConfig, x) -> dict[str, np.ndarray]:
    """Range detection of raw inputs ``x``: what the hardware's front register holds.

    Returns
    -------
    dict of numpy.ndarray
        ``k`` (segment, clamped to the table), ``r`` (local coordinate, ``F`` fraction bits),
        ``below``, ``above`` (bool) and ``through``: ``x`` in the output format (style
        ``"poly"``) or its ReLU (style ``"relu-correction"``).
    """
    x = _check_input(config, x)
    fmt = config.input_format
    u = np.minimum(np.abs(x), fmt.max_int) if config.fold else x
    d = u - config.lo_raw
    k = d >> config.segment_shift
    below, above = d < 0, k >= config.segment_count
    k = np.clip(k, 0, config.segment_count - 1)
    r = (d & ((1 << config.segment_shift) - 1)) << config.r_shift
    shift = config.out_frac - config.in_frac
    x_out = saturate(x << shift if shift >= 0 else x >> -shift, config.out_width, True)
    through = np.maximum(x_out, 0) if config.style == "relu-correction" else x_out
    return {"k": k, "r": r, "below": below, "above": above, "through": through}


def piecewise(config: PiecewiseConfig, x) -> np.ndarray:
    """Bit-exact model: raw signed outputs for raw signed inputs ``x`` (any shape)."""
    front = piecewise_front(config, x)
    k, r = front["k"], front["r"]
    table = np.array(config.table, dtype=np.int64).reshape(config.segment_count,
                                                           config.order + 1)
    frac = config.frac_bits
    p = table[k, config.order]
    for j in reversed(range(config.order)):  # Horner: p = (p * r >> F) + c[j]
        product = pe_op(config.mul_pe, int(Op.MUL), p, r, 0)
        p = pe_op(config.add_pe, int(Op.ADD), product >> frac, table[k, j], 0)
    q = pe_op(config.out_pe, int(Op.SHR), p, config.out_shift, 0)
    through, below, above = front["through"], front["below"], front["above"]
    if config.style == "relu-correction":
        y = through - np.where(above, 0, q)
    else:
        y = np.where(below, 0, np.where(above, through, q))
    return saturate(int_array(y, config.out_width + 2), config.out_width, True)


def piecewise_approximation(config: PiecewiseConfig, x) -> np.ndarray:
    """The piecewise polynomial with unquantized coefficients, on real ``x`` (float64 in/out)."""
    x = np.asarray(x, dtype=np.float64)
    u = np.abs(x) if config.fold else x
    s = (u - config.domain_lo) / config.segment_width
    below, above = s < 0, s >= config.segment_count
    k = np.clip(np.floor(s), 0, config.segment_count - 1).astype(np.int64)
    r = s - k
    table = np.array(config.real_table, dtype=np.float64)
    p = table[k, config.order]
    for j in reversed(range(config.order)):
        p = p * r + table[k, j]
    if config.style == "relu-correction":
        return np.maximum(x, 0.0) - np.where(above, 0.0, p)
    return np.where(below, 0.0, np.where(above, x, p))
