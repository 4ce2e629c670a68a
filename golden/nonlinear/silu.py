"""SiLU (swish) unit: parameters and the bit-exact model.

``SiLU(x) = x * sigmoid(x)``, evaluated by the piecewise-polynomial engine of
``golden.nonlinear.piecewise`` (range detection, a coefficient ROM and Horner's rule on PE
lanes): ``segments`` uniform segments of order ``order`` on ``[-R, R)``, ``R = range_max``.
Below ``-R`` the output is 0 and at or above ``R`` it is ``x`` (``SiLU(x) -> x``); with the
defaults (``R = 8``) those tails cost at most ``8 * sigmoid(-8) ~ 2.7e-3``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import param
from .piecewise import PiecewiseConfig, piecewise, piecewise_approximation

__all__ = ["SiLUConfig", "silu", "silu_reference", "silu_approximation", "silu_exact"]


def silu_exact(x) -> np.ndarray:
    """Float64 ``x * sigmoid(x)``, computed without overflow for any finite ``x``."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # in (0, 1]
    sigmoid = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return x * sigmoid


@dataclass(frozen=True, kw_only=True)
class SiLUConfig(PiecewiseConfig):
    """Parameters of the SiLU unit.

    Parameters
    ----------
    in_width, in_frac : int
        Signed input format (4..24 bits; default Q5.10).
    out_width, out_frac : int
        Signed output format (4..32 bits; default Q5.10).
    segments : int
        Uniform segments on ``[-range_max, range_max)``, 1..8 (default 8); the segment width
        ``2 * range_max / segments`` must be a power of two.
    range_max : float
        ``R``, default 8.0: polynomial domain ``[-R, R)``; 0 below it, ``x`` at or above it.
    order : int
        Polynomial order per segment, 1..3 (default 3).
    poly_width : int
        Width of the signed polynomial datapath, 8..32 (default 18).
    rounding : str
        Rounding of the output (default ``half_up``).
    lanes : int
        Elements per cycle, 1..256.
    """

    segments: int = param(8, help="uniform polynomial segments on [-range_max, range_max)",
                          range=(1, 8))
    range_max: float = param(8.0, help="R: polynomial domain [-R, R); 0 below, x above",
                             range=(0.0, 65536.0))

    @property
    def target(self):
        return silu_exact

    @property
    def domain_lo(self) -> float:
        return -float(self.range_max)

    @property
    def domain_hi(self) -> float:
        return float(self.range_max)

    @property
    def fold(self) -> bool:
        return False

    @property
    def style(self) -> str:
        return "poly"


def silu(config: SiLUConfig, x) -> np.ndarray:
    """Bit-exact model: raw signed outputs for raw signed inputs ``x`` (any shape)."""
    return piecewise(SiLUConfig.check_instance(config), x)


def silu_reference(config: SiLUConfig, x) -> np.ndarray:
    """Float64 ``SiLU`` of the real values of raw inputs ``x``."""
    return silu_exact(np.asarray(x, dtype=np.float64) * 2.0 ** -config.in_frac)


def silu_approximation(config: SiLUConfig, x) -> np.ndarray:
    """The piecewise polynomial with unquantized coefficients on real ``x`` (float64)."""
    return piecewise_approximation(SiLUConfig.check_instance(config), x)
