"""Board tops: a :class:`~hw.host_top.HostTop` on a board's clock (or a PLL), UART pins and LEDs.

:func:`board_design` is the one place a design, a board and the link parameters become a top,
so ``accelgen build``, the host client (through ``build.json``) and the tests agree on the
clock frequency the UART divisor is computed for.
"""

from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import ClockDomain, ClockSignal, Const, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from golden.host_top import HostTopConfig
from hw.host_top import HostTop

from . import Board
from .pll import add_pll, pll_params
from .reset import PowerOnReset, power_on_cycles

__all__ = ["clock_frequency", "uart_buffers", "BoardTop", "add_board_clock", "board_design"]


def clock_frequency(board: Board, freq_hz: float | None) -> float:
    """The frequency the top will run at: the board's oscillator, or the PLL output closest
    to ``freq_hz`` (``ValueError`` if the PLL cannot get within 1 %)."""
    base = board.platform().default_clk_frequency
    if freq_hz is None or freq_hz == base:
        return base
    if not board.bitstream:
        raise ValueError(f"freq: {board.name} builds use the board clock "
                         f"({base / 1e6:g} MHz); add a clocking wizard in the vendor tool")
    try:
        return pll_params(board.family, base, freq_hz)["f_out_hz"]
    except ValueError as error:
        raise ValueError(f"freq: {error}") from None


def add_board_clock(m: Module, platform, board: Board, freq_hz: float | None) -> None:
    """Define ``m``'s ``sync`` domain: clocked by the board oscillator, or with ``freq_hz`` (not
    the oscillator's own frequency) by a PLL from it; reset by a :class:`~boards.reset.PowerOnReset`
    for :data:`~boards.reset.POWER_ON_RESET_S` after configuration, by the board's reset button
    if it has one, and, from a PLL, while it is not locked.

    The domain is defined here for every board rather than left to the platform, whose own
    ``sync`` is reset-less on the ECP5 (``ResetSignal()`` would not resolve there)."""
    base = platform.default_clk_frequency
    request = Signal()  # reset request: power-on, or the button
    if freq_hz is None or freq_hz == base:
        m.domains.sync = ClockDomain("sync")
        m.submodules.clk_buffer = clk = io.Buffer("i", platform.request(platform.default_clk,
                                                                        dir="-"))
        m.d.comb += ClockSignal("sync").eq(clk.i)
        m.submodules.reset_sync = ResetSynchronizer(request, domain="sync")
        clock_hz = base
    else:
        # The PLL takes the clock pin itself: on the iCE40UP5K the only PLL shares its site
        # with the clock pin, so it must be the pad-fed SB_PLL40_PAD. The power-on counter
        # then runs on the PLL's output, the only clock there is.
        pll = add_pll(m, board.family, platform.request(platform.default_clk, dir="-"), base,
                      freq_hz, reset=request)
        clock_hz = pll.f_out_hz
    m.submodules.power_on_reset = por = PowerOnReset(power_on_cycles(clock_hz))
    button = Const(0)
    if platform.default_rst is not None:
        m.submodules.rst_buffer = rst = io.Buffer("i", platform.request(platform.default_rst,
                                                                        dir="-"))
        button = rst.i
    m.d.comb += request.eq(por.busy | button)


def uart_buffers(m: Module, platform) -> tuple[io.Buffer, io.Buffer]:
    """I/O buffers of the board's host UART: ``rx`` (``.i``) and ``tx`` (``.o``)."""
    uart = platform.request("uart", 0, dir={"rx": "-", "tx": "-"})
    m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
    m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
    return rx, tx


class BoardTop(Elaboratable):
    """A host-linked design on a board.

    Parameters
    ----------
    host : hw.host_top.HostTop
        The design behind its UART link, made for the frequency this top runs at.
    board : boards.Board
    freq_hz : float, optional
        PLL output frequency; by default the board clock.
    """

    def __init__(self, host: HostTop, board: Board, freq_hz: float | None = None):
        self.host, self.board, self.freq_hz = host, board, freq_hz

    def elaborate(self, platform):
        m = Module()
        add_board_clock(m, platform, self.board, self.freq_hz)
        m.submodules.host = host = self.host
        rx, tx = uart_buffers(m, platform)
        m.d.comb += [host.rx.eq(rx.i), tx.o.eq(host.tx)]
        for index, signal in enumerate((host.busy, host.done)):
            try:
                led = platform.request("led", index, dir="-")
            except ResourceError:  # boards with fewer LEDs show less
                break
            m.submodules[f"led_{index}"] = buffer = io.Buffer("o", led)
            m.d.comb += buffer.o.eq(signal)
        return m


def board_design(board: Board, design, generator: str, *, freq_hz: float | None = None,
                 baud: int = 115_200, depth: int = 256) -> BoardTop:
    """The board top around ``design`` (a registered generator's component), its UART divisor
    computed for the frequency the top will actually run at."""
    clock_hz = clock_frequency(board, freq_hz)
    host = HostTop(design, generator, HostTopConfig(clock_hz=round(clock_hz), baud=baud,
                                                    depth=depth))
    return BoardTop(host, board, freq_hz)
