"""Single-pass softmax: parameters and the bit-exact model.

The input of a vector is read once. As each element ``x`` arrives, a running maximum ``m`` and a
running sum ``d`` of ``exp(x_j - m)`` are updated with *one* exponential per element (the online
normalizer): with ``e = exp(-|x - m|)``,

- ``x <= m``: ``d += e``                      (a new term, the maximum unchanged);
- ``x > m``:  ``d = d * e + exp(0)``, ``m = x`` (rescale the old sum to the new maximum).

When the vector ends, ``r = floor(2**R / d)`` is its reciprocal (an exact restoring division),
and a second pass over the buffered inputs outputs ``p = round(exp(x - m) * r)`` in an unsigned
Q format. The exponentials are :mod:`golden.nonlinear.exp` with the softmax's formats, so
``exp(0)`` is the same constant in the sum and in the output pass and cancels for the maximum.
A vector longer than ``max_len`` ends at its ``max_len``-th element.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..fixed_point import ROUNDING_MODES, bits_for_range, quantize, saturate, shift_right
from ..params import BlockConfig, param
from .exp import ExpConfig, exp
from .formats import InOutFormats

__all__ = ["SoftmaxConfig", "softmax", "softmax_reference", "split_vectors", "attention_rows",
           "rows_stream"]


@dataclass(frozen=True, kw_only=True)
class SoftmaxConfig(InOutFormats, BlockConfig):
    """Parameters of the softmax unit.

    Parameters
    ----------
    in_width, in_frac : int
        Signed input format (default Q6.9: [-64, 64), attention scores reach +-35).
    out_width, out_frac : int
        Unsigned output format of the probabilities (default UQ0.16).
    max_len : int
        Longest vector, 1..4096.
    banks : int
        Input buffer banks of ``max_len`` elements, 2 or 3. Two let a vector arrive while the
        previous one is output; three also hide the normalization (reciprocal) latency, so
        back-to-back vectors stream at one element per cycle.
    exp_order : int
        Polynomial order of the exponential, 1 or 2.
    rounding : str
        Rounding of the output probabilities.
    """

    in_width: int = param(16, help="input width in bits (signed)", range=(8, 24))
    in_frac: int = param(9, help="input fraction bits", range=(0, 20))
    out_width: int = param(16, help="output width in bits (unsigned)", range=(4, 24))
    out_frac: int = param(16, help="output fraction bits", range=(1, 24))
    max_len: int = param(1024, help="longest vector", range=(1, 4096))
    banks: int = param(3, help="input buffer banks of max_len elements (3: no bubble "
                       "between back-to-back vectors)", range=(2, 3))
    exp_order: int = param(2, help="polynomial order of the exponential", range=(1, 2))
    rounding: str = param("half_up", help="rounding of the probabilities",
                          choices=ROUNDING_MODES)

    output_signed = False

    def _check(self):
        self._check_formats()
        if self.out_frac > self.out_width:
            raise ValueError(f"out_frac must be in 1..{self.out_width} (at most out_width), "
                             f"got {self.out_frac}")

    @functools.cached_property  # built once: config validation is slow
    def exp(self) -> ExpConfig:
        """The exponential: input format of the differences, output UQ1.20."""
        return ExpConfig(in_width=self.in_width, in_frac=self.in_frac,
                         out_width=self.exp_frac + 1, out_frac=self.exp_frac,
                         order=self.exp_order, poly_frac=15)

    @property
    def exp_frac(self) -> int:
        """Fraction bits of the exponentials and of the running sum: small terms of long rows
        are rounded 2**-21 at most, so a thousand of them move the sum by under 1e-3 LSB of
        the largest term."""
        return 20

    @property
    def exp_zero(self) -> int:
        """``exp(0)`` as the unit computes it (raw)."""
        return int(exp(self.exp, [0])[0])

    @property
    def sum_width(self) -> int:
        """Width of the running sum: holds ``max_len * exp(0)`` exactly."""
        return bits_for_range(0, self.max_len * self.exp_zero, False)

    @property
    def recip_frac(self) -> int:
        """Fraction bits of the reciprocal ``1/d``: 16 significant bits at the smallest."""
        return self.sum_width - self.exp_frac + 16

    @property
    def recip_shift(self) -> int:
        """``R`` in ``r = floor(2**R / d_raw)``."""
        return self.exp_frac + self.recip_frac

    @property
    def recip_width(self) -> int:
        """Width of the reciprocal: ``d >= exp(0) >= 1`` so ``r <= 2**recip_frac``."""
        return self.recip_frac + 1

    @property
    def out_shift(self) -> int:
        """Right shift from ``e * r`` (``exp_frac + recip_frac`` fraction bits) to the output."""
        return self.exp_frac + self.recip_frac - self.out_frac


def split_vectors(config: SoftmaxConfig, last) -> list[tuple[int, int]]:
    """``(start, stop)`` of each vector given the ``last`` flags (``max_len`` also ends one)."""
    bounds, start = [], 0
    for i, flag in enumerate(np.asarray(last).tolist()):
        if flag or i - start + 1 == config.max_len:
            bounds.append((start, i + 1))
            start = i + 1
    if start != len(last):
        raise ValueError("the final vector has no last flag")
    return bounds


def exp_of_difference(config: SoftmaxConfig, diff) -> np.ndarray:
    """exp of ``x - m <= 0``, clamped to the input format (below it exp is 0 anyway)."""
    return exp(config.exp, np.maximum(diff, config.input_format.min_int))


def softmax(config: SoftmaxConfig, x, last) -> dict[str, np.ndarray]:
    """Bit-exact model: raw probabilities for a stream of raw inputs with ``last`` flags.

    Returns
    -------
    dict
        ``p`` (raw, ``out_frac`` fraction bits) and ``last`` (1 where a vector ends), one per
        input element.
    """
    x = np.asarray(x, dtype=np.int64)
    fmt = config.input_format
    if x.size and (x.min() < fmt.min_int or x.max() > fmt.max_int):
        raise ValueError(f"x must be in {fmt.min_int}..{fmt.max_int} ({fmt})")
    p = np.zeros(len(x), dtype=np.int64)
    out_last = np.zeros(len(x), dtype=np.int64)
    e0, frac = config.exp_zero, config.exp_frac
    for start, stop in split_vectors(config, last):
        v = x[start:stop]
        # Pass 1: the online normalizer (sequential by nature).
        previous_max = np.maximum.accumulate(v)
        previous_max = np.concatenate([[v[0]], previous_max[:-1]])
        e = exp_of_difference(config, -np.abs(v - previous_max))
        m, d = int(v[0]), e0
        for k in range(1, len(v)):
            if v[k] > m:
                d, m = ((d * int(e[k])) >> frac) + e0, int(v[k])
            else:
                d += int(e[k])
        # The reciprocal, then pass 2 over the buffered inputs.
        r = (1 << config.recip_shift) // d
        numerators = exp_of_difference(config, v - m) * r
        scaled = shift_right(numerators, config.out_shift, config.rounding)
        p[start:stop] = saturate(scaled, config.out_width, False)
        out_last[stop - 1] = 1
    return {"p": p, "last": out_last}


def softmax_reference(config: SoftmaxConfig, x, last) -> np.ndarray:
    """Float64 softmax of each vector of the real input values."""
    real = np.asarray(x, dtype=np.float64) * config.input_format.lsb
    out = np.zeros_like(real)
    for start, stop in split_vectors(config, last):
        v = real[start:stop]
        z = np.exp(v - v.max())
        out[start:stop] = z / z.sum()
    return out


def attention_rows(rng, lengths, kind: str) -> list[np.ndarray]:
    """Real-valued test rows: ``"uniform"`` in [-32, 32], or ``"peaked"``: one to three entries
    5..30 above the rest (in [-10, 0]), as attention rows are."""
    if kind not in ("uniform", "peaked"):
        raise ValueError(f"kind must be uniform or peaked, got {kind!r}")
    rows = []
    for length in lengths:
        if kind == "uniform":
            v = rng.uniform(-32, 32, length)
        else:
            v = rng.uniform(-10, 0, length)
            top = rng.choice(length, min(length, rng.integers(1, 4)), replace=False)
            v[top] += rng.uniform(5, 30, len(top))
        rows.append(v)
    return rows


def rows_stream(config: SoftmaxConfig, rows) -> tuple[np.ndarray, np.ndarray]:
    """Raw inputs and ``last`` flags for real-valued rows, quantized to the input format."""
    x = np.concatenate([quantize(v, config.input_format) for v in rows])
    last = np.zeros(len(x), dtype=np.int64)
    last[np.cumsum([len(v) for v in rows]) - 1] = 1
    return x, last
