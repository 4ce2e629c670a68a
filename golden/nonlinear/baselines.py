"""Published approximations of exp and GELU, in NumPy, to compare our hardware against.

These are *baselines* for the accuracy report, not golden models of anything we build: each
function reproduces the arithmetic of one paper as closely as its description allows, so the
report can put our error next to the error of the published method on the same sweep.

* :func:`schraudolph_exp` -- exp by writing ``a*x + b`` into the exponent bits of a double.
* :func:`ibert_exp`, :func:`ibert_exp_float` -- I-BERT's integer-only ``i-exp``.
* :func:`ibert_gelu`, :func:`ibert_gelu_float` -- I-BERT's integer-only ``i-GELU``.
* :func:`edge_moe_gelu` -- Edge-MoE's GELU as ReLU minus an interpolated correction table.
* :func:`gelu_exact` -- the float64 reference GELU.

The integer functions take and return ``int64`` arrays with a float scale, as in the paper
(real value = integer * scale); ``*_float`` wrappers quantize, run and dequantize.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "SCHRAUDOLPH_A",
    "SCHRAUDOLPH_B",
    "SCHRAUDOLPH_C_RMS",
    "SCHRAUDOLPH_LIMIT",
    "schraudolph_exp",
    "ibert_exp",
    "ibert_exp_float",
    "ibert_gelu",
    "ibert_gelu_float",
    "EDGE_MOE_GELU_STEP",
    "EDGE_MOE_GELU_LIMIT",
    "edge_moe_gelu_table",
    "edge_moe_gelu",
    "gelu_exact",
]

# Schraudolph: the upper 32 bits of a double are sign, 11 exponent bits and the top 20 mantissa
# bits, so adding 2**20 to them multiplies the value by 2; a = 2**20 / ln 2 turns x into that.
SCHRAUDOLPH_A = 2.0**20 / math.log(2.0)
SCHRAUDOLPH_B = 1023 * 2**20  # exponent bias 1023, shifted into place: 1072693248
SCHRAUDOLPH_C_RMS = 60801  # the paper's c minimizing the RMS relative error
# a*x + b must stay inside the normal exponent range (1..2046 after the shift); 700 does.
SCHRAUDOLPH_LIMIT = 700.0

# I-BERT second-order polynomials L(p) = a*(p + b)**2 + c (Kim et al. 2021, sections 3.4-3.5).
_IBERT_EXP_ABC = (0.3585, 1.353, 0.344)  # exp(p) on [-ln 2, 0]
_IBERT_ERF_ABC = (-0.2888, -1.769, 1.0)  # erf(p) on [0, -b], clipped to 1 beyond

# Edge-MoE correction table: delta(t) = t * Phi(-t) sampled every 1/32 on [0, 5.5].
EDGE_MOE_GELU_STEP = 1.0 / 32.0
EDGE_MOE_GELU_LIMIT = 5.5
_EDGE_MOE_GELU_ENTRIES = round(EDGE_MOE_GELU_LIMIT / EDGE_MOE_GELU_STEP) + 1  # 177

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def schraudolph_exp(x, c=0):
    """Approximate ``exp(x)`` by building the bits of an IEEE-754 double.

    Source: N. N. Schraudolph, "A Fast, Compact Approximation of the Exponential Function",
    Neural Computation 11(4), 1999.

    The upper 32 bits are ``floor(a*x + (b - c))`` with ``a = 2**20 / ln 2`` and
    ``b = 1023 * 2**20``; the lower 32 bits are zero. The integer part of ``x / ln 2`` lands
    in the exponent, the fraction in the mantissa, so the result is ``2**k * (1 + f)``: exp
    with its mantissa replaced by a straight line.

    Parameters
    ----------
    x : array_like of float
        Input, ``-700 <= x <= 700``.
    c : int, optional
        Shift subtracted from ``b``. ``0`` (default) gives the paper's unbiased form, exact
        at multiples of ``ln 2`` and above exp in between (up to 6.15 %);
        :data:`SCHRAUDOLPH_C_RMS` (60801) minimizes the RMS relative error.

    Returns
    -------
    numpy.ndarray of float64
        The approximation, same shape as ``x``.

    Raises
    ------
    ValueError
        If any ``x`` is outside ``[-700, 700]`` (or NaN): the exponent field would overflow.
    """
    x = np.asarray(x, dtype=np.float64)
    outside = ~(np.abs(x) <= SCHRAUDOLPH_LIMIT)  # NaN counts as outside
    if np.any(outside):
        raise ValueError(f"x must be in [-{SCHRAUDOLPH_LIMIT:g}, {SCHRAUDOLPH_LIMIT:g}], "
                         f"got {float(x[outside].flat[0])!r}")
    high = np.floor(SCHRAUDOLPH_A * x + (SCHRAUDOLPH_B - c)).astype(np.int64)
    return (high << 32).view(np.float64)


def _check_scale(scale, largest: float) -> float:
    # The integer constants floor(constant / scale) must be at least 1 for the steps to work.
    scale = float(scale)
    if not (0.0 < scale < largest):
        raise ValueError(f"scale must be in (0, {largest:.4g}), got {scale!r}")
    return scale


def _ibert_poly(q, scale: float, abc: tuple[float, float, float]):
    # I-BERT "i-poly": a*(x + b)**2 + c = a*S**2 * ((q + q_b)**2 + q_c), all in integers.
    a, b, c = abc
    q_b = math.floor(b / scale)
    q_c = math.floor(c / (a * scale**2))
    return (q + q_b) ** 2 + q_c, a * scale**2


def ibert_exp(q, scale):
    """Integer-only exponential, I-BERT's ``i-exp``, for non-positive inputs.

    Source: S. Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, Algorithm 2.

    Writes ``x = -z*ln2 + p`` with ``p`` in ``(-ln2, 0]``, so ``exp(x) = exp(p) >> z``;
    ``exp(p)`` is the second-order polynomial ``0.3585*(p + 1.353)**2 + 0.344`` evaluated on
    integers (``i-poly``), and the shift is a plain arithmetic right shift.

    Parameters
    ----------
    q : array_like of int
        Quantized input, real value ``x = q * scale``; every ``q`` must be ``<= 0``.
    scale : float
        Input scale ``S``, ``0 < S < ln 2``.

    Returns
    -------
    q_out : numpy.ndarray of int64
        Quantized result, same shape as ``q``.
    scale_out : float
        Output scale: ``exp(x) ~= q_out * scale_out``.

    Raises
    ------
    ValueError
        If any ``q > 0`` or the scale is out of range.
    """
    scale = _check_scale(scale, math.log(2.0))
    q = np.asarray(q, dtype=np.int64)
    if np.any(q > 0):
        raise ValueError(f"i-exp needs q <= 0 (x <= 0), got max q = {int(q.max())}")
    q_ln2 = math.floor(math.log(2.0) / scale)
    z = -q // q_ln2  # floor(-q / q_ln2), non-negative
    q_p = q + z * q_ln2
    q_l, scale_out = _ibert_poly(q_p, scale, _IBERT_EXP_ABC)
    # q_l is positive and below 2**63, so shifting by 63 already gives 0; numpy leaves larger
    # shifts undefined.
    return q_l >> np.minimum(z, 63), scale_out


def ibert_exp_float(x, scale):
    """Run :func:`ibert_exp` on floats: quantize, compute, dequantize.

    Source: S. Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, Algorithm 2.

    Parameters
    ----------
    x : array_like of float
        Input, ``x <= 0`` after rounding to the scale.
    scale : float
        Quantization step ``S`` of the input, ``0 < S < ln 2``.

    Returns
    -------
    numpy.ndarray of float64
        ``q_out * scale_out`` for ``q = round(x / scale)``.
    """
    scale = _check_scale(scale, math.log(2.0))
    q = np.rint(np.asarray(x, dtype=np.float64) / scale).astype(np.int64)
    q_out, scale_out = ibert_exp(q, scale)
    return q_out.astype(np.float64) * scale_out


def _ibert_erf(q, scale: float):
    # I-BERT "i-erf": sign(x) * L(min(|x|, -b)), with L the erf polynomial. a < 0, so the
    # output scale is negative; q_out * S_out still has the sign of x.
    _, b, _ = _IBERT_ERF_ABC
    q_abs = np.minimum(np.abs(q), math.floor(-b / scale))
    q_l, scale_l = _ibert_poly(q_abs, scale, _IBERT_ERF_ABC)
    return np.sign(q) * q_l, scale_l


def ibert_gelu(q, scale):
    """Integer-only GELU, I-BERT's ``i-GELU``.

    Source: S. Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, Algorithm 3.

    ``GELU(x) = x/2 * (1 + erf(x / sqrt 2))`` with erf replaced by I-BERT's integer ``i-erf``
    (``sign(x) * (-0.2888*(min(|x|, 1.769) - 1.769)**2 + 1)``) evaluated on ``q`` with scale
    ``S / sqrt 2``; the ``1 +`` is the integer ``floor(1 / S_erf)``.

    Parameters
    ----------
    q : array_like of int
        Quantized input, real value ``x = q * scale``.
    scale : float
        Input scale ``S``, ``0 < S < 1``.

    Returns
    -------
    q_out : numpy.ndarray of int64
        Quantized result, same shape as ``q``.
    scale_out : float
        Output scale (negative, inherited from ``a < 0``): ``GELU(x) ~= q_out * scale_out``.

    Raises
    ------
    ValueError
        If the scale is out of range.

    Notes
    -----
    The intermediates grow like ``|q| / S**2``; with ``S = 2**-10`` they are near ``1e11``
    for ``|x| <= 8``, far inside int64, but very fine scales with large ``q`` can overflow.
    """
    scale = _check_scale(scale, 1.0)
    q = np.asarray(q, dtype=np.int64)
    q_erf, scale_erf = _ibert_erf(q, scale / math.sqrt(2.0))
    q_1 = math.floor(1.0 / scale_erf)
    return q * (q_erf + q_1), scale * scale_erf / 2.0


def ibert_gelu_float(x, scale):
    """Run :func:`ibert_gelu` on floats: quantize, compute, dequantize.

    Source: S. Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021, Algorithm 3.

    Parameters
    ----------
    x : array_like of float
        Input.
    scale : float
        Quantization step ``S`` of the input, ``0 < S < 1``.

    Returns
    -------
    numpy.ndarray of float64
        ``q_out * scale_out`` for ``q = round(x / scale)``.
    """
    scale = _check_scale(scale, 1.0)
    q = np.rint(np.asarray(x, dtype=np.float64) / scale).astype(np.int64)
    q_out, scale_out = ibert_gelu(q, scale)
    return q_out.astype(np.float64) * scale_out


def _gelu_correction(t):
    # delta(t) = t * Phi(-t) = ReLU(x) - GELU(x) for t = |x|; erfc keeps it accurate at large t.
    return t * 0.5 * _erfc(t / math.sqrt(2.0))


def edge_moe_gelu_table():
    """Return Edge-MoE's GELU correction table, ``delta(t) = t * Phi(-t)`` at ``t = k/32``.

    Source: R. Sarkar et al., "Edge-MoE: Memory-Efficient Multi-Task Vision Transformer
    Architecture with Task-level Sparsity via Mixture-of-Experts", ICCAD 2023.

    Returns
    -------
    numpy.ndarray of float64
        177 values, for ``t_k = k * EDGE_MOE_GELU_STEP``, ``k = 0..176`` (``t`` in
        ``[0, 5.5]``), computed with the exact erfc.
    """
    t = np.arange(_EDGE_MOE_GELU_ENTRIES, dtype=np.float64) * EDGE_MOE_GELU_STEP
    return _gelu_correction(t)


def edge_moe_gelu(x):
    """Approximate GELU as ``ReLU(x) - delta(|x|)`` with ``delta`` from a linear-interpolated table.

    Source: R. Sarkar et al., "Edge-MoE: Memory-Efficient Multi-Task Vision Transformer
    Architecture with Task-level Sparsity via Mixture-of-Experts", ICCAD 2023.

    ``delta(t) = t * Phi(-t)`` is even in ``x`` and vanishes fast, so one small table for
    ``|x|`` in ``[0, 5.5]`` serves both signs; beyond 5.5 ``delta`` (below ``1.1e-7``) is
    taken as 0. Table values stay float64, so the error is that of the method, not of any
    quantization.

    Parameters
    ----------
    x : array_like of float
        Input.

    Returns
    -------
    numpy.ndarray of float64
        The approximation, same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    table = edge_moe_gelu_table()
    t = np.abs(x)
    inside = t <= EDGE_MOE_GELU_LIMIT
    position = np.where(inside, t, 0.0) / EDGE_MOE_GELU_STEP
    # The last segment is [175, 176]; clipping the index keeps t = 5.5 on it with fraction 1.
    index = np.minimum(np.floor(position).astype(np.int64), _EDGE_MOE_GELU_ENTRIES - 2)
    fraction = position - index
    delta = table[index] + fraction * (table[index + 1] - table[index])
    return np.maximum(x, 0.0) - np.where(inside, delta, 0.0)


def gelu_exact(x):
    """Exact GELU, ``x/2 * (1 + erf(x / sqrt 2))``, in float64.

    Source: D. Hendrycks and K. Gimpel, "Gaussian Error Linear Units (GELUs)", arXiv:1606.08415.

    Computed as ``x/2 * erfc(-x / sqrt 2)``, the same function, because ``1 + erf`` loses
    all its digits to cancellation for large negative ``x``.

    Parameters
    ----------
    x : array_like of float
        Input.

    Returns
    -------
    numpy.ndarray of float64
        ``GELU(x)``, same shape as ``x``.
    """
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * _erfc(-x / math.sqrt(2.0))
