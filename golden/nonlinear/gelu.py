"""GELU unit: parameters and the bit-exact model.

``GELU(x) = x * Phi(x)``, evaluated by the piecewise-polynomial engine of
``golden.nonlinear.piecewise`` (range detection, a coefficient ROM and Horner's rule on PE
lanes). Two methods:

``"relu-correction"`` (default; the form of Edge-MoE)
    ``GELU(x) = max(x, 0) - delta(|x|)`` with the even correction
    ``delta(t) = t - GELU(t) = t * Phi(-t)``. The polynomial approximates ``delta`` on
    ``t = |x|`` in ``[0, R)`` with ``segments`` uniform segments (default 9 over ``R = 4.5``:
    width 0.5); at or beyond ``R`` the correction is dropped (``delta(4.5) ~ 1.5e-5``).
``"poly"``
    The polynomial approximates GELU itself on ``[-R, R)``, ``segments`` counting the segments
    over that whole domain (default 18 over ``R = 4.5``: width 0.5); below ``-R`` the output is
    0 and at or above ``R`` it is ``x``.

In both methods the segment width (``R / segments``, resp. ``2 * R / segments``) must be a power
of two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..params import param
from .baselines import gelu_exact
from .piecewise import PiecewiseConfig, piecewise, piecewise_approximation

__all__ = ["GELUConfig", "GELU_METHODS", "gelu", "gelu_reference", "gelu_approximation",
           "gelu_correction"]

#: The ways of building GELU from the polynomial engine (see the module docstring).
GELU_METHODS = ("relu-correction", "poly")

#: Default segments per method (segment width 0.5 with the default range_max 4.5).
DEFAULT_SEGMENTS = {"relu-correction": 9, "poly": 18}

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def gelu_correction(t) -> np.ndarray:
    """Float64 ``delta(t) = t - GELU(t) = t * Phi(-t) = t/2 * erfc(t / sqrt 2)``."""
    t = np.asarray(t, dtype=np.float64)
    return t * 0.5 * _erfc(t / math.sqrt(2.0))


@dataclass(frozen=True, kw_only=True)
class GELUConfig(PiecewiseConfig):
    """Parameters of the GELU unit.

    Parameters
    ----------
    method : str
        ``"relu-correction"`` (default) or ``"poly"``; see the module docstring.
    in_width, in_frac : int
        Signed input format (4..24 bits; default Q5.10).
    out_width, out_frac : int
        Signed output format (4..32 bits; default Q5.10).
    segments : int or None
        Uniform segments, 1..64: over ``[0, R)`` for ``relu-correction``, over ``[-R, R)`` for
        ``poly``. ``None`` (default): 9 resp. 18 (width 0.5 with ``R = 4.5``).
    range_max : float
        ``R``, default 4.5.
    order : int
        Polynomial order per segment, 1..3 (default 3).
    poly_width : int
        Width of the signed polynomial datapath, 8..32 (default 18).
    rounding : str
        Rounding of the output (default ``half_up``).
    lanes : int
        Elements per cycle, 1..256.
    """

    method: str = param("relu-correction", help="relu-correction: max(x,0) - delta(|x|); "
                        "poly: GELU itself on [-R, R)", choices=GELU_METHODS)
    segments: int | None = param(None, help="uniform polynomial segments (derived: 9 over "
                                 "[0, R) for relu-correction, 18 over [-R, R) for poly)",
                                 range=(1, 64))
    range_max: float = param(4.5, help="R: polynomial domain [0, R) of delta(|x|) "
                             "(relu-correction) or [-R, R) of GELU (poly)",
                             range=(0.0, 65536.0))

    @property
    def segment_count(self) -> int:
        return DEFAULT_SEGMENTS[self.method] if self.segments is None else self.segments

    @property
    def target(self):
        return gelu_correction if self.method == "relu-correction" else gelu_exact

    @property
    def domain_lo(self) -> float:
        return 0.0 if self.method == "relu-correction" else -float(self.range_max)

    @property
    def domain_hi(self) -> float:
        return float(self.range_max)

    @property
    def fold(self) -> bool:
        return self.method == "relu-correction"

    @property
    def style(self) -> str:
        return "relu-correction" if self.method == "relu-correction" else "poly"


def gelu(config: GELUConfig, x) -> np.ndarray:
    """Bit-exact model: raw signed outputs for raw signed inputs ``x`` (any shape)."""
    return piecewise(GELUConfig.check_instance(config), x)


def gelu_reference(config: GELUConfig, x) -> np.ndarray:
    """Float64 ``GELU`` (``x/2 * erfc(-x / sqrt 2)``) of the real values of raw inputs ``x``."""
    return gelu_exact(np.asarray(x, dtype=np.float64) * 2.0 ** -config.in_frac)


def gelu_approximation(config: GELUConfig, x) -> np.ndarray:
    """The piecewise polynomial with unquantized coefficients on real ``x`` (float64)."""
    return piecewise_approximation(GELUConfig.check_instance(config), x)
