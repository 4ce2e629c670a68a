"""LayerNorm without affine: parameters and the bit-exact model.

For a vector ``x`` of ``n`` raw integers the unit outputs ``y = (x - mean) / sqrt(var)`` in a
signed Q format (default Q5.10). The affine ``gamma * y + beta`` is left to element-wise ops.
There is no epsilon: a constant vector (``var = 0``) gives ``y = 0``. Because ``y`` does not
change when ``x`` is scaled, the input's fixed-point format does not matter: the unit takes raw
integers.

Arithmetic (exact integers where it can be):

1. One pass over the input sums ``S = sum(x)`` and ``Q = sum(x*x)``; the vector is buffered.
2. ``D = n*Q - S*S = n**2 * var`` exactly, and ``y = N / sqrt(D)`` with ``N = n*x - S``, so no
   division by ``n`` is needed.
3. Reciprocal square root of ``D`` (the hardware computes it once per vector):

   - *range reduction*: ``D = u * 4**e`` with ``u`` in [1, 4), ``e = floor(msb(D) / 2)``;
     ``U = floor(D * 2**F / 4**e)`` holds ``u`` with ``F`` = :data:`MANT_FRAC` fraction bits
     (``D = 0`` is taken as 1: its ``N`` are all 0);
   - *table and polynomial*: ``u`` falls in one of ``3 * 2**SEG_BITS`` segments of width
     ``2**-SEG_BITS``; per segment a minimax (relative error) line ``c0 - c1 * t`` in the
     segment's local coordinate ``t`` in [0, 1) gives ``y0 ~ 1/sqrt(u)`` to about 2**-12;
   - *one Newton step* ``y1 = y0 * (3 - u * y0**2) / 2`` on multiplies and a subtract (the
     error squares, to about 2**-21 with the truncations of the datapath);
   - ``R = y1`` with ``G`` = :data:`Y_FRAC` fraction bits, so ``1/sqrt(D) = R * 2**-(G + e)``.

4. Per element, on PE lanes: ``n * x`` (MUL), ``- S`` (SUB), ``* R`` (MUL), then a right shift
   by ``G + e - out_frac`` with the configured rounding, saturated to the output format.

Every multiply, add and subtract is a PE op (``golden.pe.pe_op``) with the same configs the
hardware instantiates. :func:`layernorm_reference` is the float64 truth.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..fixed_point import ROUNDING_MODES, QFormat, bits_for_range, saturate, shift_right
from ..params import BlockConfig, param
from ..pe import Op, PEConfig, pe_op
from .fit import minimax_poly

__all__ = ["LayerNormConfig", "layernorm", "layernorm_reference", "rsqrt_table", "rsqrt_parts",
           "split_vectors", "residual_vectors", "vectors_stream", "MANT_FRAC", "SEG_BITS",
           "Y_FRAC"]

#: Fraction bits of the reduced argument ``u`` in [1, 4).
MANT_FRAC = 22
#: Table segments per unit of ``u``: ``2**SEG_BITS`` (``3 * 2**SEG_BITS`` entries in all).
SEG_BITS = 4
#: Fraction bits of ``1/sqrt(u)`` in (0.5, 1] and of its Newton step.
Y_FRAC = 23


@functools.cache
def rsqrt_table() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(c0, c1)``: per segment, ``1/sqrt(u) ~ (c0 - c1 * t) * 2**-Y_FRAC``."""
    step = 2.0 ** -SEG_BITS
    c0, c1 = [], []
    for k in range(3 << SEG_BITS):
        lo = 1.0 + k * step
        real, _ = minimax_poly(lambda u: u ** -0.5, lo, lo + step, 1, relative=True)
        c0.append(int(round(real[0] * 2 ** Y_FRAC)))
        c1.append(int(round(-real[1] * 2 ** Y_FRAC)))
    return tuple(c0), tuple(c1)


@dataclass(frozen=True, kw_only=True)
class LayerNormConfig(BlockConfig):
    """Parameters of the LayerNorm unit.

    Parameters
    ----------
    in_width : int
        Width of the signed raw inputs, 4..16 (their fraction bits do not matter).
    out_width, out_frac : int
        Signed output format (default Q5.10: ``|y| <= sqrt(n - 1) < 32`` for ``n <= 1024``).
    max_len : int
        Longest vector, 1..4096; a longer one ends at its ``max_len``-th element.
    banks : int
        Input buffer banks of ``max_len`` elements, 2 or 3 (as the softmax's: three let
        back-to-back vectors stream with no bubble).
    rounding : str
        Rounding of the outputs.
    """

    in_width: int = param(16, help="input width in bits (signed raw integers)", range=(4, 16))
    out_width: int = param(16, help="output width in bits (signed)", range=(4, 24))
    out_frac: int = param(10, help="output fraction bits", range=(0, 20))
    max_len: int = param(1024, help="longest vector", range=(1, 4096))
    banks: int = param(3, help="input buffer banks of max_len elements (3: no bubble "
                       "between back-to-back vectors)", range=(2, 3))
    rounding: str = param("half_up", help="rounding of the outputs", choices=ROUNDING_MODES)

    def _check(self):
        if self.out_frac >= self.out_width:
            raise ValueError(f"out_frac must be in 0..{self.out_width - 1} (below out_width), "
                             f"got {self.out_frac}")

    @property
    def input_format(self) -> QFormat:
        """Raw signed inputs (integers: the unit is scale invariant)."""
        return QFormat(self.in_width, 0, True)

    @property
    def output_format(self) -> QFormat:
        return QFormat(self.out_width, self.out_frac, True)

    # Widths of the statistics ------------------------------------------------------------

    @property
    def x_bound(self) -> int:
        """Largest ``|x|``."""
        return 1 << (self.in_width - 1)

    @property
    def sum_width(self) -> int:
        """Signed width of ``S`` (and of ``n * x``)."""
        bound = self.max_len * self.x_bound
        return bits_for_range(-bound, bound, True)

    @property
    def square_sum_width(self) -> int:
        """Unsigned width of ``Q``."""
        return bits_for_range(0, self.max_len * self.x_bound ** 2, False)

    @property
    def d_width(self) -> int:
        """Unsigned width of ``D = n*Q - S*S`` (and of ``n*Q``)."""
        return bits_for_range(0, self.max_len ** 2 * self.x_bound ** 2, False)

    @property
    def len_width(self) -> int:
        """Unsigned width of ``n``."""
        return bits_for_range(0, self.max_len, False)

    @property
    def multiply_steps(self) -> int:
        """Cycles of the hardware's bit-serial ``n*Q - S*S`` (a bit of ``n`` and of ``|S|``
        per cycle)."""
        return max(self.len_width, self.sum_width - 1)

    @property
    def max_e(self) -> int:
        """Largest exponent ``e`` of the range reduction."""
        return (self.d_width - 1) // 2

    # The PE lanes ----------------------------------------------------------------------

    @property
    def line_pe(self) -> PEConfig:
        """``c1 * t`` of the table's line."""
        _, c1 = rsqrt_table()
        width = max(max(c1).bit_length(), MANT_FRAC - SEG_BITS)
        return PEConfig(in_width=width, signed=False, ops=("mul",))

    @property
    def newton_pe(self) -> PEConfig:
        """The line's subtract and the Newton step: ``U < 2**(F+2)``, ``y``, ``3 - u*y**2``."""
        return PEConfig(in_width=Y_FRAC + 2, signed=False, ops=("mul", "sub"))

    @property
    def scale_pe(self) -> PEConfig:
        """``n * x``."""
        return PEConfig(in_width=max(self.in_width, self.len_width + 1), signed=True,
                        ops=("mul",))

    @property
    def center_pe(self) -> PEConfig:
        """``N = n*x - S``: ``|N| <= n * (max(x) - min(x))``."""
        bound = self.max_len * (2 * self.x_bound - 1)
        width = max(bits_for_range(-bound, bound, True), self.sum_width)
        return PEConfig(in_width=width, out_width=width, signed=True, ops=("sub",))

    @property
    def norm_pe(self) -> PEConfig:
        """``N * R``."""
        return PEConfig(in_width=max(self.center_pe.in_width, Y_FRAC + 2), signed=True,
                        ops=("mul",))

    @property
    def product_width(self) -> int:
        """Signed width of ``N * R`` (the final shift's input)."""
        return self.norm_pe.output_width


def split_vectors(config: LayerNormConfig, last) -> list[tuple[int, int]]:
    """``(start, stop)`` of each vector given the ``last`` flags (``max_len`` also ends one)."""
    bounds, start = [], 0
    for i, flag in enumerate(np.asarray(last).tolist()):
        if flag or i - start + 1 == config.max_len:
            bounds.append((start, i + 1))
            start = i + 1
    if start != len(last):
        raise ValueError("the final vector has no last flag")
    return bounds


def _pe(config: PEConfig, op: Op, a, b) -> int:
    return int(pe_op(config, int(op), a, b, 0))


def rsqrt_parts(config: LayerNormConfig, d: int) -> tuple[int, int]:
    """``(R, e)`` with ``1/sqrt(d) ~ R * 2**-(Y_FRAC + e)``, as the hardware computes them."""
    d = max(int(d), 1)
    e = (d.bit_length() - 1) // 2
    shift = 2 * e - MANT_FRAC
    u = d >> shift if shift >= 0 else d << -shift  # in [2**F, 2**(F+2))
    local = MANT_FRAC - SEG_BITS
    segment = (u >> local) - (1 << SEG_BITS)
    t = u & ((1 << local) - 1)
    c0, c1 = rsqrt_table()
    line, newton = config.line_pe, config.newton_pe
    y0 = _pe(newton, Op.SUB, c0[segment], _pe(line, Op.MUL, c1[segment], t) >> local)
    square = _pe(newton, Op.MUL, y0, y0) >> Y_FRAC
    p = _pe(newton, Op.MUL, u, square) >> MANT_FRAC
    h = _pe(newton, Op.SUB, 3 << Y_FRAC, p)
    return _pe(newton, Op.MUL, y0, h) >> (Y_FRAC + 1), e


def layernorm(config: LayerNormConfig, x, last) -> dict[str, np.ndarray]:
    """Bit-exact model: raw outputs for a stream of raw inputs with ``last`` flags.

    Returns
    -------
    dict
        ``y`` (raw, ``out_frac`` fraction bits) and ``last`` (1 where a vector ends), one per
        input element.
    """
    x = np.asarray(x, dtype=np.int64)
    fmt = config.input_format
    if x.size and (x.min() < fmt.min_int or x.max() > fmt.max_int):
        raise ValueError(f"x must be in {fmt.min_int}..{fmt.max_int} ({fmt})")
    y = np.zeros(len(x), dtype=np.int64)
    out_last = np.zeros(len(x), dtype=np.int64)
    for start, stop in split_vectors(config, last):
        v = x[start:stop]
        n = len(v)
        s = int(v.sum())
        q = int((v * v).sum())
        r, e = rsqrt_parts(config, n * q - s * s)
        nx = pe_op(config.scale_pe, int(Op.MUL), v, n, 0)
        centered = pe_op(config.center_pe, int(Op.SUB), nx, s, 0)
        product = pe_op(config.norm_pe, int(Op.MUL), centered, r, 0)
        scaled = shift_right(product, Y_FRAC + e - config.out_frac, config.rounding)
        y[start:stop] = saturate(scaled, config.out_width, True)
        out_last[stop - 1] = 1
    return {"y": y, "last": out_last}


def layernorm_reference(config: LayerNormConfig, x, last) -> np.ndarray:
    """Float64 ``(x - mean) / std`` of each vector (0 for a constant vector)."""
    real = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(real)
    for start, stop in split_vectors(config, last):
        v = real[start:stop]
        centered = v - v.mean()
        std = np.sqrt(np.mean(centered ** 2))
        out[start:stop] = centered / std if std > 0 else 0.0
    return out


def residual_vectors(config: LayerNormConfig, rng, lengths) -> list[np.ndarray]:
    """Raw test vectors of the given lengths, as the residual streams LayerNorm sees: Gaussian
    with a random scale (``2**0 .. 2**(in_width - 2)``), half of them offset by up to a quarter
    of the range; clipped to the input range."""
    fmt = config.input_format
    vectors = []
    for n in lengths:
        scale = 2.0 ** rng.uniform(0, config.in_width - 2)
        offset = rng.uniform(-0.5, 0.5) * 2 ** (config.in_width - 1) * rng.integers(0, 2)
        v = np.round(rng.standard_normal(n) * scale / 3 + offset)
        vectors.append(np.clip(v, fmt.min_int, fmt.max_int).astype(np.int64))
    return vectors


def vectors_stream(vectors) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated raw inputs and their ``last`` flags."""
    x = np.concatenate(vectors)
    last = np.zeros(len(x), dtype=np.int64)
    last[np.cumsum([len(v) for v in vectors]) - 1] = 1
    return x, last
