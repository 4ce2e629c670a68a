"""GELU on PE lanes (a pipelined core): range detection, a coefficient ROM and Horner's rule.

Parameters, methods and the bit-exact model are in ``golden.nonlinear.gelu``; the engine is
``hw.nonlinear.piecewise``.
"""

from __future__ import annotations

from golden.nonlinear.gelu import GELUConfig

from .piecewise import PiecewiseUnit

__all__ = ["GELU"]


class GELU(PiecewiseUnit):
    """``lanes`` parallel ``GELU(x)`` evaluations per cycle, built from PE lanes.

    With the default ``method="relu-correction"`` each lane computes
    ``max(x, 0) - delta(|x|)`` (``delta`` a piecewise cubic on ``[0, range_max)``); with
    ``method="poly"`` it evaluates a piecewise cubic of GELU on ``[-range_max, range_max)``.

    Parameters
    ----------
    config : golden.nonlinear.gelu.GELUConfig, optional
        Or its fields as keywords (``method="poly", lanes=4, ...``).

    Attributes
    ----------
    config : golden.nonlinear.gelu.GELUConfig
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

    config_class = GELUConfig
