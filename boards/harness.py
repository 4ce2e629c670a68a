"""An out-of-pins harness for measuring a core's resources and Fmax on a real device.

A core like an 8x8 PE array has more than a thousand port bits, far more than any package has
pins. The harness feeds every input bit from a shift chain clocked in through one pin (the
board UART's rx) and registers every output bit, folding them into one output pin (tx), so that

- no input is constant and no output unused: synthesis cannot remove any of the core;
- every path into and out of the core starts and ends at a flip-flop, and the fold is a tree
  of registered 4-input XORs (one LUT per level): the reported Fmax is the core's own, not an
  I/O path's or the harness's;
- the core is kept as its own module (Yosys ``keep_hierarchy``), so its cells are counted apart
  from the harness's.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import wiring

from hw.pipeline import port_members

__all__ = ["CORE_NAME", "FmaxHarness", "keep_core_script"]

#: Submodule name of the core in the harness.
CORE_NAME = "core"


def keep_core_script(top_name: str) -> str:
    """The Yosys command (Amaranth's ``script_after_read`` override) that keeps the core a
    separate module of the ``top_name`` design, so ``stat`` counts its cells alone."""
    return f"setattr -mod -set keep_hierarchy 1 {top_name}.{CORE_NAME}"


class FmaxHarness(Elaboratable):
    """Shift-chain inputs and registered, folded outputs around a core.

    Parameters
    ----------
    core : wiring.Component
        Any component; every member of its signature is driven or observed.
    board : boards.Board
        The board (its family picks the PLL).
    freq_hz : int, optional
        Run the core's clock at this frequency from a PLL on the board clock (the constraint
        nextpnr times against); by default the board clock.
    """

    def __init__(self, core: wiring.Component, board, *, freq_hz: int | None = None):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be an amaranth.lib.wiring.Component, got {core!r}")
        self.core = core
        self.board = board
        self.freq_hz = freq_hz

    def elaborate(self, platform):
        m = Module()
        from .top import add_board_clock, uart_buffers

        add_board_clock(m, platform, self.board, self.freq_hz)
        rx, tx = uart_buffers(m, platform)
        m.submodules[CORE_NAME] = core = self.core

        inputs, outputs = [], []
        for _, member, value in port_members(core):
            (inputs if member.flow == wiring.In else outputs).append(value)
        in_bits = sum(len(Cat(v)) for v in inputs)
        # The harness's own registers have no reset: they only carry bits to and from pins, and
        # a reset net to each of them crosses the die (9.4 ns of route to a chain register was
        # the 8x8 PE array's critical path once the core's own paths were shorter).
        chain = Signal(max(1, in_bits), reset_less=True)
        m.d.sync += chain.eq(Cat(rx.i, chain[:-1]))
        offset = 0
        for value in inputs:
            width = len(Cat(value))
            m.d.comb += Cat(value).eq(chain[offset:offset + width])
            offset += width

        captured = Signal(max(1, sum(len(Cat(v)) for v in outputs)), reset_less=True)
        m.d.sync += captured.eq(Cat(*outputs))
        folded, level = captured, 0
        while len(folded) > 1:  # one LUT4 and a register per level, so no level limits Fmax
            level += 1
            groups = [folded[k:k + 4] for k in range(0, len(folded), 4)]
            reduced = Signal(len(groups), name=f"fold{level}", reset_less=True)
            m.d.sync += reduced.eq(Cat(group.xor() for group in groups))
            folded = reduced
        m.d.comb += tx.o.eq(folded[0])
        return m
