"""Requantizer: parameters and the bit-exact model (a rounding right shift, then saturation).

Each lane computes ``saturate(shift_right(value, shift, rounding), out_width)``: the signed
``width``-bit ``value`` divided by ``2**shift`` with the given rounding (see
:mod:`golden.fixed_point`), clamped to a signed ``out_width``-bit integer. ``shift`` is one
unsigned ``shift_width``-bit amount for all lanes (the accelerator's instruction field).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fixed_point import ROUNDING_MODES, int_array, int_range, saturate, shift_right
from .params import BlockConfig, param

__all__ = ["RequantizerConfig", "requantizer"]


@dataclass(frozen=True, kw_only=True)
class RequantizerConfig(BlockConfig):
    """Parameters of a requantizer.

    Parameters
    ----------
    lanes : int
        Values requantized per cycle, 1..256.
    width : int
        Signed input width in bits, 2..64.
    out_width : int
        Signed output width in bits, 2..32.
    shift_width : int
        Bits of the unsigned shift amount, 1..7 (amounts ``0 .. 2**shift_width - 1``).
    rounding : str
        How the dropped bits round the result (``golden.fixed_point.ROUNDING_MODES``).
    """

    lanes: int = param(64, help="values requantized per cycle", range=(1, 256))
    width: int = param(32, help="signed input width in bits", range=(2, 64))
    out_width: int = param(16, help="signed output width in bits", range=(2, 32))
    shift_width: int = param(6, help="bits of the shift amount", range=(1, 7))
    rounding: str = param("half_up", help="rounding of the dropped bits",
                          choices=ROUNDING_MODES)


def requantizer(config: RequantizerConfig, values, shift: int) -> np.ndarray:
    """Bit-exact model: ``values >> shift`` rounded, saturated to ``out_width`` bits.

    Parameters
    ----------
    config : RequantizerConfig
    values : array_like of int
        Signed ``width``-bit inputs, any shape.
    shift : int
        The amount, ``0 .. 2**shift_width - 1``.
    """
    values = int_array(values)
    lo, hi = int_range(config.width, True)
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"values must be in {lo}..{hi} (width={config.width})")
    if not 0 <= shift < 1 << config.shift_width:
        raise ValueError(f"shift must be in 0..{(1 << config.shift_width) - 1}, got {shift}")
    return saturate(shift_right(values, shift, config.rounding), config.out_width, True)
