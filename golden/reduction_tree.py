"""Reduction tree: parameters and the bit-exact model (an exact sum of ``n`` integers)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .fixed_point import bits_for_range, int_array, int_range, sum_range
from .params import BlockConfig, param

__all__ = ["ReductionTreeConfig", "reduction_tree", "reduction_tree_reference"]


@dataclass(frozen=True, kw_only=True)
class ReductionTreeConfig(BlockConfig):
    """Parameters of a pipelined adder tree.

    Parameters
    ----------
    n : int
        Number of inputs, 1..1024 (any value, not only powers of two).
    width : int
        Input width in bits, 2..64.
    signed : bool
        Two's complement inputs if true.
    levels_per_stage : int
        Adder levels between pipeline registers, 1..16: fewer gives a higher clock, more gives
        a lower latency.
    """

    n: int = param(8, help="number of inputs", range=(1, 1024))
    width: int = param(16, help="input width in bits", range=(2, 64))
    signed: bool = param(True, help="two's complement (true) or unsigned (false) inputs")
    levels_per_stage: int = param(1, help="adder levels between pipeline registers",
                                  range=(1, 16))

    @property
    def levels(self) -> int:
        """Number of adder levels, ``ceil(log2(n))``."""
        return math.ceil(math.log2(self.n)) if self.n > 1 else 0

    @property
    def output_width(self) -> int:
        """Exact width of the sum: no sum of ``n`` inputs overflows it."""
        lo, hi = sum_range(int_range(self.width, self.signed), self.n)
        return bits_for_range(lo, hi, self.signed)


def reduction_tree(config: ReductionTreeConfig, values) -> np.ndarray:
    """Bit-exact model: the sum over the last axis of ``values`` (shape ``(..., n)``)."""
    values = int_array(values, config.output_width + 1)
    if values.shape[-1:] != (config.n,):
        raise ValueError(f"values must have last axis of length n={config.n}, "
                         f"got shape {values.shape}")
    lo, hi = int_range(config.width, config.signed)
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"values must be in {lo}..{hi}")
    return values.sum(axis=-1)


def reduction_tree_reference(values) -> np.ndarray:
    """Float64 reference sum over the last axis."""
    return np.asarray(values, dtype=np.float64).sum(axis=-1)
