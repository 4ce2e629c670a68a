"""Pipelined adder tree over any number of inputs (a pipelined core).

Parameters and the golden model are in ``golden.reduction_tree``.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.reduction_tree import ReductionTreeConfig

from .arith import shape_of
from .config import configure

__all__ = ["ReductionTree"]


class ReductionTree(wiring.Component):
    """Exact sum of ``n`` inputs through ``ceil(log2(n))`` levels of pairwise adders.

    Each level adds neighbouring pairs; an odd one out passes to the next level unchanged, so
    any ``n >= 1`` works. A register stage follows every ``levels_per_stage`` levels and the
    last level; the output is always registered (for ``n == 1`` the tree is one register).
    Every adder grows by one bit, so nothing overflows.

    Parameters
    ----------
    config : golden.reduction_tree.ReductionTreeConfig, optional
        The tree's parameters; or pass them as keywords (``n=8, width=16, ...``).

    Attributes
    ----------
    config : golden.reduction_tree.ReductionTreeConfig
    latency : int
        Register stages from ``i`` to ``o``: ``max(1, ceil(levels / levels_per_stage))``.
    stages : list of list of Signal
        After elaboration, each register stage's partial sums (they add up to the sum of the
        inputs that stage holds; the formal equivalence proof asserts it).

    Members
    -------
    en : In(1)
        Stall enable: all registers load when high.
    i : In(ArrayLayout(input shape, n))
    o : Out(signed or unsigned ``output_width``)
    """

    def __init__(self, config: ReductionTreeConfig | None = None, **params):
        self.config = cfg = configure(self, ReductionTreeConfig, config, params)
        self.latency = self.latency_of(cfg)
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(shape_of(cfg.width, cfg.signed), cfg.n)),
            "o": Out(shape_of(cfg.output_width, cfg.signed)),
        })

    @staticmethod
    def latency_of(config: ReductionTreeConfig) -> int:
        """Register stages of a tree with these parameters (without building one)."""
        return max(1, math.ceil(config.levels / config.levels_per_stage))

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        values = [self.i[k] for k in range(cfg.n)]
        self.stages = []  # each register stage's partial sums (the formal proofs read them)
        for level in range(1, max(1, cfg.levels) + 1):
            pairs = [values[k] + values[k + 1] for k in range(0, len(values) - 1, 2)]
            values = pairs + values[len(pairs) * 2:]
            if level % cfg.levels_per_stage == 0 or level >= cfg.levels:
                # Data only, no reset: whoever feeds the tree tracks which sums are valid, and
                # a reset net to every stage's registers crosses the die (8.2 ns of route was
                # the 8x8 PE array's critical path).
                registered = [Signal(Value.cast(v).shape(), name=f"level{level}_{k}",
                                     reset_less=True)
                              for k, v in enumerate(values)]
                with m.If(self.en):
                    m.d.sync += [r.eq(v) for r, v in zip(registered, values)]
                values = registered
                self.stages.append(registered)
        m.d.comb += self.o.eq(values[0])
        return m
