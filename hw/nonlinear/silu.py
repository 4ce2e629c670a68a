"""SiLU on PE lanes (a pipelined core): range detection, a coefficient ROM and Horner's rule.

Parameters and the bit-exact model are in ``golden.nonlinear.silu``; the engine is
``hw.nonlinear.piecewise``.
"""

from __future__ import annotations

from golden.nonlinear.silu import SiLUConfig

from .piecewise import PiecewiseUnit

__all__ = ["SiLU"]


class SiLU(PiecewiseUnit):
    """``lanes`` parallel ``SiLU(x) = x * sigmoid(x)`` evaluations per cycle, built from PE lanes.

    Each lane evaluates a piecewise polynomial on ``[-range_max, range_max)`` and outputs 0 below
    it and ``x`` at or above it.

    Parameters
    ----------
    config : golden.nonlinear.silu.SiLUConfig, optional
        Or its fields as keywords (``segments=8, lanes=4, ...``).

    Attributes
    ----------
    config : golden.nonlinear.silu.SiLUConfig
    latency : int
        ``2 + PE.latency * (2 * order + 1)``: front, Horner steps, output shift, combine
        (16 with the default order 3).

    Members
    -------
    en : In(1)
        Stall enable: all registers load when high.
    i : In(ArrayLayout(signed(in_width), lanes))
    o : Out(ArrayLayout(signed(out_width), lanes))
    """

    config_class = SiLUConfig
