"""UART (8N1) with stream ports: bytes in on ``i`` go out on ``tx``, bytes from ``rx`` come out
on ``o``.

Parameters, the frame format and the receiver's exact model are in ``golden.uart``.

Receiver. ``rx`` is asynchronous, so it passes two flip-flops (``golden.uart.SYNC_STAGES``)
before anything looks at it. While idle the receiver watches for a falling edge of the
synchronized line; from the cycle of the edge it counts ``divisor // 2`` cycles to the middle
of the start bit (a 1 there is a glitch: back to idle), then ``divisor`` cycles to the middle
of each data bit and of the stop bit. A stop bit of 1 loads the byte into the ``o`` register; a
0 drops it and pulses ``frame_error``. A byte that completes while ``o`` still holds one that
is not taken in that cycle is dropped and pulses ``overrun`` (the older byte is kept). The
byte is on ``o`` one cycle after the stop-bit sample, i.e. ``SYNC_STAGES + 1`` cycles after
the middle of the stop bit on the pin, about 9.5 bit times after its start bit began.

Transmitter. ``i.ready`` is high while idle and in the final cycle of a stop bit, so a byte
offered then is taken and its start bit follows the stop bit with no idle cycle: a stream of
``n`` bytes offered back to back leaves in exactly ``10 * divisor * n`` cycles. ``tx`` is a
register: a byte taken in cycle ``t`` has its start bit on ``tx`` in cycles
``t + 1 .. t + divisor`` and its stop bit ends in cycle ``t + 10 * divisor``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from golden.uart import SYNC_STAGES, UARTConfig

from .config import configure

__all__ = ["UART"]


class UART(wiring.Component):
    """8N1 UART transmitter and receiver sharing one bit-time divisor.

    Parameters
    ----------
    config : golden.uart.UARTConfig, optional
        Or its field (``divisor``: clock cycles per bit) as a keyword.

    Attributes
    ----------
    latency : None
        Not a pipeline (bytes take a frame time; see the module docstring for the timing).
    config : golden.uart.UARTConfig

    Members
    -------
    rx : In(1, init=1)
        Serial line from the host (asynchronous; synchronized inside).
    tx : Out(1, init=1)
        Serial line to the host.
    i : In(stream.Signature(8))
        Bytes to transmit.
    o : Out(stream.Signature(8))
        Received bytes.
    frame_error : Out(1)
        One-cycle pulse: a received byte had a stop bit of 0 and was dropped.
    overrun : Out(1)
        One-cycle pulse: a byte completed while ``o`` held one not taken; the new byte was
        dropped.
    """

    latency = None

    def __init__(self, config: UARTConfig | None = None, **params):
        self.config = configure(self, UARTConfig, config, params)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        self.state = {}  # the registers, for the formal proofs' invariants (sim/contracts.py)
        self._receiver(m)
        self._transmitter(m)
        return m

    def _receiver(self, m):
        divisor = self.config.divisor
        line = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, line, init=1, stages=SYNC_STAGES)
        previous = Signal(init=1)
        m.d.sync += previous.eq(line)

        busy = Signal()
        count = Signal(range(divisor))
        bit = Signal(range(10))  # 0: start, 1..8: data, 9: stop
        shift = Signal(8)
        m.d.sync += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(~busy):
            with m.If(previous & ~line):  # falling edge: the middle of the start bit is next
                m.d.sync += [busy.eq(1), count.eq(divisor // 2 - 1), bit.eq(0)]
        with m.Elif(count != 0):
            m.d.sync += count.eq(count - 1)
        with m.Else():  # the middle of bit `bit`
            m.d.sync += [count.eq(divisor - 1), bit.eq(bit + 1)]
            with m.If(bit == 0):
                with m.If(line):  # a glitch, not a start bit
                    m.d.sync += busy.eq(0)
            with m.Elif(bit != 9):
                m.d.sync += shift.eq(Cat(shift[1:], line))  # LSB first
            with m.Else():
                m.d.sync += busy.eq(0)
                with m.If(~line):
                    m.d.sync += self.frame_error.eq(1)
                with m.Elif(self.o.valid & ~self.o.ready):
                    m.d.sync += self.overrun.eq(1)
                with m.Else():
                    m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift)]
        self.state.update(rx_line=line, rx_previous=previous, rx_busy=busy, rx_count=count,
                          rx_bit=bit, rx_shift=shift)

    def _transmitter(self, m):
        divisor = self.config.divisor
        busy = Signal()
        count = Signal(range(divisor))
        bit = Signal(range(10))  # the bit now on tx: 0 start, 1..8 data, 9 stop
        shift = Signal(9)  # data bits still to send, then the stop bit
        bit_done = count == 0
        # Idle, or the last cycle of a stop bit: a byte taken now starts right after it.
        m.d.comb += self.i.ready.eq(~busy | (bit_done & (bit == 9)))

        with m.If(busy):
            m.d.sync += count.eq(count - 1)
            with m.If(bit_done):
                m.d.sync += [count.eq(divisor - 1), bit.eq(bit + 1), self.tx.eq(shift[0]),
                             shift.eq(Cat(shift[1:], Const(1)))]
                with m.If(bit == 9):
                    m.d.sync += [busy.eq(0), self.tx.eq(1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), count.eq(divisor - 1), bit.eq(0), self.tx.eq(0),
                         shift.eq(Cat(self.i.payload, Const(1)))]
        self.state.update(tx_busy=busy, tx_count=count, tx_bit=bit, tx_shift=shift)
