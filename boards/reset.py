"""Power-on reset: a clock domain's reset held for a fixed time after configuration.

A board top makes its own ``sync`` domain, from the board clock or from a PLL, and both are
reset the same way: a :class:`PowerOnReset` counts the domain's clock edges from configuration,
and its ``busy`` output is the hold of an ``amaranth.lib.cdc.ResetSynchronizer`` that drives the
domain's reset (the PLL's own, ORed with "not locked", on the PLL path). The platforms' own
``sync`` domains differ by family: the ECP5 one is reset-less (the global set/reset does the
job), so a design that uses ``ResetSignal()`` (the ECP5 multiplier's register resets) could not
be built at the board clock.
"""

from __future__ import annotations

import math

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Signal

__all__ = ["POWER_ON_RESET_S", "power_on_cycles", "PowerOnReset"]

#: How long the power-on reset lasts. iCE40 block RAMs read as zeros for about 3 us after
#: configuration; this is Amaranth's iCE40 platform's margin over it (5x), used on every family.
POWER_ON_RESET_S = 15e-6


def power_on_cycles(clock_hz: float) -> int:
    """Clock edges of ``clock_hz`` that last :data:`POWER_ON_RESET_S` (at least 1)."""
    if isinstance(clock_hz, bool) or not isinstance(clock_hz, (int, float)) or \
            not clock_hz > 0:
        raise ValueError(f"clock_hz must be a positive frequency in Hz, got {clock_hz!r}")
    return max(1, math.ceil(POWER_ON_RESET_S * clock_hz))


class PowerOnReset(Elaboratable):
    """A counter of ``cycles`` edges of ``domain``'s clock from configuration.

    The counter counts up from zero, because flip-flops configure to zero on every family
    (the iCE40's take no other initial value), and it runs in a reset-less domain of its own
    on the same clock, so the reset it holds cannot restart it.

    Parameters
    ----------
    cycles : int
        Clock edges ``busy`` stays high for, at least 1.
    domain : str
        The domain whose clock is counted.

    Attributes
    ----------
    busy : Signal
        High from configuration until ``cycles`` edges have passed, then low for good.
    """

    def __init__(self, cycles: int, *, domain: str = "sync"):
        try:
            if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 1:
                raise ValueError(f"cycles must be an integer >= 1, got {cycles!r}")
            if not isinstance(domain, str) or not domain:
                raise TypeError(f"domain must be a clock domain name, got {domain!r}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # rejected, so never built: no "unused" warning
            raise
        self.cycles = cycles
        self.domain = domain
        self.busy = Signal()

    def elaborate(self, platform):
        m = Module()
        m.domains.por = ClockDomain("por", reset_less=True, local=True)
        m.d.comb += ClockSignal("por").eq(ClockSignal(self.domain))
        # A register, not a compare of the count: ``busy`` is an asynchronous reset request.
        timer = Signal(range(self.cycles))
        done = Signal()
        with m.If(timer == self.cycles - 1):
            m.d.por += done.eq(1)
        with m.Else():
            m.d.por += timer.eq(timer + 1)
        m.d.comb += self.busy.eq(~done)
        return m
