"""Host bridge: command frames on a byte stream become AXI4-Lite transactions, and their
results go back on another byte stream.

The protocol, its encoders/parsers, the parameters (``HostBridgeConfig``) and the golden model
are in ``golden.host_bridge``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from golden.host_bridge import (
    CMD_PING,
    CMD_READ,
    CMD_WRITE,
    PING_RESPONSE,
    STATUS_BUS_ERROR,
    STATUS_OK,
    STATUS_UNKNOWN_COMMAND,
    HostBridgeConfig,
)

from .config import configure
from .memory.csr import axi_lite_signature

__all__ = ["HostBridge"]


class HostBridge(wiring.Component):
    """Byte-stream to AXI4-Lite master bridge (see ``golden.host_bridge`` for the protocol).

    One state machine parses the command bytes and runs one AXI transaction at a time; a
    5-byte output buffer holds the bytes of a response not yet taken:

    - WRITE: each data word is written as soon as its 4th byte arrives (AW and W raised
      together, ``wstrb`` all ones, ``prot`` 0); while the write waits for its B response the
      bridge takes the next word's first 3 bytes. The status byte follows the last B.
    - READ: each word is read (AR), and its R response is taken once the output buffer is
      empty; the next AR is issued while the word's 4 bytes drain, so bytes stream out as
      words arrive and nothing larger than one word is buffered.
    - A command byte is taken only when the output buffer is empty, so the answers to PING and
      to unknown bytes never wait for room.

    Without stalls and with a slave answering the cycle after its handshake, a WRITE takes
    4 cycles per word (its bytes) and a READ 5 cycles per word (4 bytes out, 1 to refill the
    buffer). Backpressure on ``o`` stalls the bridge and loses nothing. There is no AXI timeout: the
    slave must answer every transaction. ``rst`` (synchronous) abandons any command and
    empties the output buffer; it must not interrupt an AXI transaction whose slave is not
    reset with it.

    Parameters
    ----------
    config : golden.host_bridge.HostBridgeConfig, optional
        Or its fields (``addr_width``) as keywords.

    Attributes
    ----------
    config : golden.host_bridge.HostBridgeConfig
    latency : None
        Variable: it depends on the slave and on the command.

    Members
    -------
    i : In(stream.Signature(8))
        Command bytes from the host.
    o : Out(stream.Signature(8))
        Response bytes to the host.
    bus : Out(axi_lite_signature(addr_width))
        AXI4-Lite master port: Verilog ports ``bus__awaddr`` ... (cocotbext-axi prefix
        ``"bus_"``).
    """

    latency = None

    def __init__(self, config: HostBridgeConfig | None = None, **params):
        self.config = cfg = configure(self, HostBridgeConfig, config, params)
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "bus": Out(axi_lite_signature(cfg.addr_width)),
        })

    def elaborate(self, platform):
        m = Module()
        bus, i, o = self.bus, self.i, self.o
        addr_width = self.config.addr_width

        # Output buffer: up to 5 bytes, sent lowest byte first. Loaded only when empty.
        out_data = Signal(8 * len(PING_RESPONSE))
        out_left = Signal(range(len(PING_RESPONSE) + 1))
        out_empty = Signal()
        m.d.comb += [out_empty.eq(out_left == 0), o.valid.eq(~out_empty),
                     o.payload.eq(out_data[:8])]
        with m.If(o.valid & o.ready):
            m.d.sync += [out_data.eq(out_data >> 8), out_left.eq(out_left - 1)]

        def send(value, length):
            m.d.sync += [out_data.eq(value), out_left.eq(length)]

        word_addr = Signal(addr_width - 2)  # the low 2 address bits are always 0
        remaining = Signal(8)               # words left after the current one
        shift = Signal(32)                  # bytes of the address or data word, LE
        nbytes = Signal(2)                  # bytes of the field taken so far
        is_read = Signal()
        error = Signal()
        word = Cat(shift[8:], i.payload)    # the field, once its last byte is on i
        take = i.valid & i.ready

        m.d.comb += [
            bus.awaddr.eq(Cat(Const(0, 2), word_addr)), bus.araddr.eq(Cat(Const(0, 2), word_addr)),
            bus.awprot.eq(0), bus.arprot.eq(0), bus.wstrb.eq(0xF),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += bus.awvalid.eq(0)
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += bus.wvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += bus.arvalid.eq(0)

        with m.FSM() as fsm:
            with m.State("COMMAND"):
                m.d.comb += i.ready.eq(out_empty)
                with m.If(take):
                    m.d.sync += [nbytes.eq(0), error.eq(0), is_read.eq(i.payload == CMD_READ)]
                    with m.Switch(i.payload):
                        with m.Case(CMD_WRITE, CMD_READ):
                            m.next = "ADDRESS"
                        with m.Case(CMD_PING):
                            send(int.from_bytes(PING_RESPONSE, "little"), len(PING_RESPONSE))
                        with m.Default():
                            send(STATUS_UNKNOWN_COMMAND, 1)
            with m.State("ADDRESS"):
                m.d.comb += i.ready.eq(1)
                with m.If(take):
                    m.d.sync += [shift.eq(word), nbytes.eq(nbytes + 1)]
                    with m.If(nbytes == 3):
                        m.d.sync += word_addr.eq(word[2:addr_width])
                        m.next = "COUNT"
            with m.State("COUNT"):
                m.d.comb += i.ready.eq(1)
                with m.If(take):
                    m.d.sync += remaining.eq(i.payload)
                    with m.If(is_read):
                        m.d.sync += bus.arvalid.eq(1)
                        m.next = "READ"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += i.ready.eq(1)
                with m.If(take):
                    m.d.sync += [shift.eq(word), nbytes.eq(nbytes + 1)]
                    with m.If(nbytes == 3):
                        m.d.sync += [bus.wdata.eq(word), bus.awvalid.eq(1), bus.wvalid.eq(1)]
                        m.next = "WRITE"
            with m.State("WRITE"):
                # B is taken only after both AW and W went, so it answers this write.
                m.d.comb += bus.bready.eq(~bus.awvalid & ~bus.wvalid)
                # Meanwhile the next word's first 3 bytes may come in; its 4th starts the
                # next write from DATA.
                m.d.comb += i.ready.eq((remaining != 0) & (nbytes != 3))
                with m.If(take):
                    m.d.sync += [shift.eq(word), nbytes.eq(nbytes + 1)]
                with m.If(bus.bvalid & bus.bready):
                    m.d.sync += [error.eq(error | (bus.bresp != 0)),
                                 word_addr.eq(word_addr + 1), remaining.eq(remaining - 1)]
                    with m.If(remaining == 0):
                        m.next = "STATUS"
                    with m.Else():
                        m.next = "DATA"
            with m.State("READ"):
                m.d.comb += bus.rready.eq(~bus.arvalid & out_empty)
                with m.If(bus.rvalid & bus.rready):
                    send(bus.rdata, 4)
                    m.d.sync += [error.eq(error | (bus.rresp != 0)),
                                 word_addr.eq(word_addr + 1), remaining.eq(remaining - 1)]
                    with m.If(remaining == 0):
                        m.next = "STATUS"
                    with m.Else():
                        m.d.sync += bus.arvalid.eq(1)
            with m.State("STATUS"):
                with m.If(out_empty):
                    send(Mux(error, STATUS_BUS_ERROR, STATUS_OK), 1)
                    m.next = "COMMAND"
        # Kept for the formal proofs' invariants (sim/contracts.py).
        self.state = {"reading": fsm.ongoing("READ"), "writing": fsm.ongoing("WRITE")}
        return m
