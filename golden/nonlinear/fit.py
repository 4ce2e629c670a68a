"""Minimax polynomial fits, computed in Python when a unit is elaborated."""

from __future__ import annotations

import numpy as np

__all__ = ["minimax_poly"]


def minimax_poly(fn, lo: float, hi: float, order: int, *, relative: bool = False,
                 points: int = 2001, iterations: int = 200) -> tuple[np.ndarray, float]:
    """Fit ``p(r) = sum(c[k] * r**k)``, ``r = (x - lo) / (hi - lo)`` in [0, 1], to ``fn`` on
    ``[lo, hi]``, minimizing the maximum (absolute or relative) error.

    Lawson's algorithm: least squares reweighted by the error, which converges to the minimax
    fit; robust and dependency-free.

    Returns
    -------
    coefficients : numpy.ndarray
        ``c[0] .. c[order]`` in the local coordinate ``r``.
    max_error : float
        The fit's maximum error on the sample points.
    """
    r = np.linspace(0.0, 1.0, points)
    y = np.asarray(fn(lo + r * (hi - lo)), dtype=np.float64)
    basis = np.vander(r, order + 1, increasing=True)
    scale = np.abs(y) if relative else np.ones_like(y)
    weights = np.full(points, 1.0 / points)
    for _ in range(iterations):
        root = np.sqrt(weights)
        coefficients, *_ = np.linalg.lstsq(basis / scale[:, None] * root[:, None],
                                           y / scale * root, rcond=None)
        error = np.abs(basis @ coefficients - y) / scale
        weights = weights * error + 1e-300
        weights /= weights.sum()
    return coefficients, float(error.max())
