"""Ping-pong (double) buffer: the producer fills one half while the consumer drains the other.

Parameters and the model are in ``golden.memory.pingpong``. Both halves live in one
``Memory`` of ``2 * depth`` words with one write port (the producer's) and one synchronous read
port (the consumer's), so it maps to a single simple dual-port RAM. Each half has a *full* flag
and a length:

- producer: writes the accepted word at ``(fill half, count)``; a word with ``last`` or the
  ``depth``-th word marks the half full with its length and moves to the other half. A word is
  accepted only while its half is not full, so unread data is never overwritten.
- consumer: reads the full half in order under one stall enable (``~o.valid | o.ready``, read
  port enabled by it); the final word carries ``last``, and reading it frees the half.

A half's full flag is set by the producer and cleared by the consumer, never in the same cycle
(the producer needs it clear, the consumer set), and a freed half can be refilled the next
cycle, so with no stalls words move at one per cycle even for fills of one word.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.memory.pingpong import PingPongConfig

from ..config import configure

__all__ = ["PingPong"]


class PingPong(wiring.Component):
    """Double buffer between a producer stream and a consumer stream.

    Parameters
    ----------
    config : golden.memory.pingpong.PingPongConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        Cycles from accepting the word that ends a fill to that fill's first output word, with
        no stall (2: the full flag, then the read port).
    input_layout, output_layout : data.StructLayout

    Members
    -------
    i : In(stream.Signature(StructLayout({"data": unsigned(width), "last": 1})))
    o : Out(stream.Signature(StructLayout({"data": unsigned(width), "last": 1})))
    """

    latency = 2

    def __init__(self, config: PingPongConfig | None = None, **params):
        self.config = cfg = configure(self, PingPongConfig, config, params)
        self.input_layout = data.StructLayout({"data": unsigned(cfg.width), "last": 1})
        self.output_layout = data.StructLayout({"data": unsigned(cfg.width), "last": 1})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.config.depth
        m.submodules.buffer = buffer = Memory(shape=unsigned(self.config.width),
                                              depth=2 * depth, init=[])
        write, read = buffer.write_port(), buffer.read_port()

        full = Array(Signal(name=f"half{h}_full") for h in range(2))
        length = Array(Signal(range(depth + 1), name=f"half{h}_len") for h in range(2))

        def address(half, index):
            return Mux(half, depth + index, index)

        # --- Producer -----------------------------------------------------------------------
        fill_half = Signal()
        count = Signal(range(depth))
        ends = self.i.payload.last | (count == depth - 1)
        m.d.comb += self.i.ready.eq(~full[fill_half])
        accepted = self.i.valid & self.i.ready
        m.d.comb += [write.addr.eq(address(fill_half, count)), write.data.eq(self.i.payload.data),
                     write.en.eq(accepted)]
        with m.If(accepted):
            m.d.sync += count.eq(count + 1)
            with m.If(ends):
                m.d.sync += [count.eq(0), fill_half.eq(~fill_half), full[fill_half].eq(1),
                             length[fill_half].eq(count + 1)]

        # --- Consumer: one stall enable over the read port and the output register ----------
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        drain_half = Signal()
        index = Signal(range(depth))
        final = index == length[drain_half] - 1
        issue = full[drain_half] & advance
        m.d.comb += [read.addr.eq(address(drain_half, index)), read.en.eq(advance),
                     self.o.payload.data.eq(read.data)]
        with m.If(issue):
            m.d.sync += index.eq(index + 1)
            with m.If(final):
                m.d.sync += [index.eq(0), drain_half.eq(~drain_half), full[drain_half].eq(0)]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(issue), self.o.payload.last.eq(final)]
        # Kept for the formal proofs' invariants (sim/contracts.py).
        self.state = {"full": full, "length": length, "fill_half": fill_half, "count": count,
                      "drain_half": drain_half, "index": index}
        return m
