"""A host's end of an 8N1 UART in cocotb: drive the DUT's ``rx`` line, decode its ``tx`` line.

:class:`UartLink` counts time in cycles of the DUT's clock (``divisor`` cycles per bit, as
``golden.uart.UARTConfig``), so it works at any clock period and any simulated baud rate, and
its timing is exact rather than rounded to nanoseconds.

Why not cocotbext-uart: its ``UartSource`` / ``UartSink`` time bits with ``Timer`` in whole
nanoseconds from a baud rate (1e9 / 115200 truncates to 8680 ns), not in clock cycles; they
cannot insert idle gaps or skew the baud rate, and the sink never checks the stop bit. The
protocol is small enough that a direct implementation is shorter than adapting them.
"""

from __future__ import annotations

import collections
import numbers
from collections.abc import Sequence

import cocotb
from cocotb.triggers import ClockCycles, Event, FallingEdge, Lock, select

__all__ = ["UartLink", "UartTimeoutError", "UartTransport"]


class UartTimeoutError(TimeoutError):
    """:meth:`UartLink.read` did not get its bytes in time."""


class UartLink:
    """Host side of a UART link to a DUT: a driver on its ``rx`` and a monitor on its ``tx``.

    Parameters
    ----------
    clk : cocotb handle
        The DUT's clock; all timing is in its rising edges.
    rx : cocotb handle
        The DUT's receive line (input): driven here, idle 1 from construction on.
    tx : cocotb handle
        The DUT's transmit line (output): decoded by the monitor once :meth:`start` ran.
    divisor : int
        Clock cycles per bit.
    baud_error : float, optional
        Relative error of the driver's bit time (``+0.02``: bits 2 % longer, a slower host),
        to test the DUT's tolerance; fractional cycles accumulate over a :meth:`write`, so
        bit boundaries fall on the nearest clock edge to where the skewed clock puts them.

    Notes
    -----
    Levels written to ``rx`` take effect at the DUT's next rising edge, and each lasts a whole
    number of cycles. Call :meth:`write` from a phase that may drive signals (not after
    ``ReadOnly``). The monitor reads ``tx`` at falling clock edges, so :meth:`read` returns
    in a phase where the caller may drive signals at once.

    Attributes
    ----------
    frame_errors : int
        Frames the monitor saw with a stop bit of 0 (their bytes are not queued).
    glitches : int
        Falling edges on ``tx`` that were high again at the middle of the start bit.
    """

    def __init__(self, clk, rx, tx, divisor: int, *, baud_error: float = 0.0):
        if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 2:
            raise ValueError(f"divisor must be an integer >= 2, got {divisor!r}")
        self.clk, self.rx, self.tx, self.divisor = clk, rx, tx, divisor
        self.baud_error = baud_error
        self.frame_errors = 0
        self.glitches = 0
        self._received: collections.deque[int] = collections.deque()
        self._arrived = Event()
        self._write_lock = Lock()
        self._monitor = None
        rx.value = 1

    @property
    def baud_error(self) -> float:
        return self._baud_error

    @baud_error.setter
    def baud_error(self, value: float) -> None:
        if not -0.2 <= value <= 0.2:
            raise ValueError(f"baud_error must be in -0.2..0.2, got {value}")
        self._baud_error = float(value)

    # --- host -> DUT ------------------------------------------------------------------------

    async def write(self, data: bytes, gap_cycles: int | Sequence[int] = 0) -> None:
        """Send ``data`` on ``rx``; return when the last stop bit has ended.

        ``gap_cycles`` idle cycles (line 1) go before each byte: one count for every byte, or
        a sequence with one count per byte. Concurrent writes are serialized, not interleaved.
        """
        data = bytes(data)
        gaps = ([gap_cycles] * len(data) if isinstance(gap_cycles, numbers.Integral)
                else list(gap_cycles))
        if len(gaps) != len(data) or any(int(g) != g or g < 0 for g in gaps):
            raise ValueError("gap_cycles must be a non-negative count, or one per byte")
        bit = self.divisor * (1 + self._baud_error)
        async with self._write_lock:
            # `now` is where the host's (skewed) clock says we are; `edge` the DUT cycles
            # elapsed, so each level lasts to the clock edge nearest its true end.
            now, edge = 0.0, 0
            for gap, byte in zip(gaps, data):
                now += int(gap)
                for level in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
                    if edge < round(now):
                        await ClockCycles(self.clk, round(now) - edge)
                        edge = round(now)
                    self.rx.value = level
                    now += bit
            if edge < round(now):
                await ClockCycles(self.clk, round(now) - edge)

    async def send_break(self, cycles: int) -> None:
        """Hold ``rx`` low for ``cycles`` clock cycles (a break: a frame error for any frame
        it covers), then idle."""
        async with self._write_lock:
            self.rx.value = 0
            await ClockCycles(self.clk, cycles)
            self.rx.value = 1

    # --- DUT -> host ------------------------------------------------------------------------

    def start(self) -> UartLink:
        """Start the monitor on ``tx`` (once); returns the link."""
        if self._monitor is None:
            self._monitor = cocotb.start_soon(self._monitor_tx())
        return self

    def stop(self) -> None:
        """Stop the monitor (a frame in progress is abandoned)."""
        if self._monitor is not None:
            self._monitor.cancel()
            self._monitor = None

    def pending(self) -> int:
        """Received bytes not yet read."""
        return len(self._received)

    def read_nowait(self, n: int | None = None) -> bytes:
        """Take up to ``n`` (default: all) received bytes without waiting."""
        count = len(self._received) if n is None else min(n, len(self._received))
        return bytes(self._received.popleft() for _ in range(count))

    async def read(self, n: int, timeout_cycles: int) -> bytes:
        """Wait for ``n`` bytes from the DUT and take them.

        Raises
        ------
        UartTimeoutError
            (a ``TimeoutError``) if fewer than ``n`` arrived within ``timeout_cycles`` clock
            cycles; the bytes that did arrive stay queued.
        """
        if self._monitor is None:
            raise RuntimeError("UartLink.read needs the monitor: call start() first")
        if len(self._received) < n:
            index, _ = await select(self._wait_for(n), ClockCycles(self.clk, timeout_cycles))
            if index == 1:
                raise UartTimeoutError(
                    f"UART read: {n} bytes expected within {timeout_cycles} cycles "
                    f"({timeout_cycles / (10 * self.divisor):.1f} frame times), got "
                    f"{len(self._received)}: {bytes(self._received).hex(' ')}"
                    f"{f'; {self.frame_errors} framing errors' if self.frame_errors else ''}")
        return self.read_nowait(n)

    async def _wait_for(self, n: int) -> None:
        while len(self._received) < n:
            self._arrived.clear()
            await self._arrived.wait()

    def _line(self) -> int:
        return int(self.tx.value)

    async def _sample(self, cycles: int) -> int:
        """The line ``cycles`` rising edges from now, read at the following falling edge
        (settled, and a phase where whoever the monitor wakes may drive signals)."""
        await ClockCycles(self.clk, cycles)
        await FallingEdge(self.clk)
        return self._line()

    async def _monitor_tx(self) -> None:
        # Same decisions as the DUT's receiver (golden.uart): find a falling edge, sample
        # the start bit at its middle (divisor // 2 cycles on), then every divisor cycles.
        # tx changes just after a rising edge, so the edge trigger fires in that clock's time
        # step and the following rising edges count whole cycles of the new level; reading at
        # the falling edge after them keeps every sample half a cycle clear of any change.
        half = self.divisor // 2
        while True:
            if self._line() == 0:  # after a framing error or at start: wait for idle first
                await self.tx.rising_edge
            await self.tx.falling_edge
            if await self._sample(half):
                self.glitches += 1
                continue
            value = 0
            for k in range(8):
                value |= await self._sample(self.divisor) << k
            if await self._sample(self.divisor):
                self._received.append(value)
                self._arrived.set()
            else:
                self.frame_errors += 1


class UartTransport:
    """A blocking byte pipe over a :class:`UartLink`, for code written against a serial port
    (``boards.host.HostClient``) that runs in a thread started with cocotb's ``bridge``.

    Each call hands control back to the simulator until the bytes are sent or received, so the
    same host code drives a board over pyserial and the emitted Verilog in cocotb.

    Parameters
    ----------
    link : UartLink
        A started link.
    timeout_cycles : int
        Clock cycles ``read`` waits for its bytes before raising :class:`UartTimeoutError`.
    """

    def __init__(self, link: UartLink, timeout_cycles: int):
        from cocotb.task import resume

        self._write = resume(link.write)
        self._read = resume(link.read)
        self.timeout_cycles = timeout_cycles

    def write(self, data: bytes) -> None:
        self._write(bytes(data))

    def read(self, n: int) -> bytes:
        return self._read(n, self.timeout_cycles)
