"""Banked multi-port scratchpad: one ``Memory`` per bank, a bank-conflict arbiter per cycle.

Parameters, the address interleaving and the bit-exact model are in
``golden.memory.scratchpad``. Each port has a request stream and a response stream. Every cycle:

1. each port's head request is mapped to ``(bank, row)`` (low address bits, a constant
   divider for a bank count that is not a power of two, or the XOR hash);
2. a port *wants* a bank when its request is valid and, for a read, its response path has room;
   port p is granted (``req[p].ready``) iff no lower-numbered port wants the same bank: lower
   port wins, the others stall (nothing is dropped, each port stays in order);
3. per bank, the granted port's row drives the bank's write port (write) or synchronous read
   port (read). A bank serves one port per cycle, so reads and writes never collide in a bank.

Read data leaves each bank's read port one cycle after the grant and is steered back to the
requesting port (a registered bank index) into a two-entry response buffer: an output register
and a skid register. A port issues a read only when the buffer is sure to have room for it, so
responses take full backpressure and, without stalls, each port issues a read every cycle.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.memory.scratchpad import ScratchpadConfig

from ..config import configure

__all__ = ["Scratchpad"]


class Scratchpad(wiring.Component):
    """``ports`` request/response stream pairs over ``banks`` single-port-per-cycle banks.

    Parameters
    ----------
    config : golden.memory.scratchpad.ScratchpadConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        Cycles from accepting a read request to its response being valid, with no stall (2:
        the bank's read register, then the port's response register).
    request_layout, response_layout : data.StructLayout

    Members
    -------
    req : In(stream.Signature(StructLayout({"write": 1, "addr": unsigned(addr_width),
        "data": unsigned(width)}))).array(ports)
        Requests of port p; ``data`` is ignored by a read. Verilog ports ``req__<p>__valid``,
        ``req__<p>__ready``, ``req__<p>__payload``.
    resp : Out(stream.Signature(StructLayout({"data": unsigned(width)}))).array(ports)
        One response per read, in request order; writes get none.
    """

    latency = 2

    def __init__(self, config: ScratchpadConfig | None = None, **params):
        self.config = cfg = configure(self, ScratchpadConfig, config, params)
        self.request_layout = data.StructLayout({
            "write": 1, "addr": unsigned(cfg.addr_width), "data": unsigned(cfg.width)})
        self.response_layout = data.StructLayout({"data": unsigned(cfg.width)})
        super().__init__({
            "req": In(stream.Signature(self.request_layout)).array(cfg.ports),
            "resp": Out(stream.Signature(self.response_layout)).array(cfg.ports),
        })

    def _map(self, m: Module, addr, p: int):
        """Bank, row and out-of-range flag of a port's request address."""
        cfg = self.config
        n, k = cfg.banks, cfg.bank_bits
        bank = Signal(range(n), name=f"bank{p}")
        row = Signal(range(max(1, ((1 << cfg.addr_width) - 1) // n + 1)), name=f"row{p}")
        if n == 1:
            m.d.comb += row.eq(addr)
        elif n == 1 << k:
            m.d.comb += row.eq(addr[k:])
            if cfg.interleave == "xor":
                m.d.comb += bank.eq(addr[:k] ^ addr[k:2 * k])
            else:
                m.d.comb += bank.eq(addr[:k])
        else:  # low-order over a bank count that is not a power of two
            m.d.comb += [bank.eq(addr % n), row.eq(addr // n)]
        outside = Signal(name=f"outside{p}")
        if cfg.size < 1 << cfg.addr_width:
            m.d.comb += outside.eq(row >= cfg.depth)
        return bank, row, outside

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        n, ports = cfg.banks, cfg.ports

        writes, reads = [], []
        for b in range(n):
            m.submodules[f"bank{b}"] = mem = Memory(shape=unsigned(cfg.width), depth=cfg.depth,
                                                    init=[])
            writes.append(mem.write_port())
            reads.append(mem.read_port())
        read_data = Array(read.data for read in reads)

        # --- Each port: address mapping and whether it wants its bank this cycle -------------
        mapped, wants, rooms = [], [], []
        for p in range(ports):
            req, resp = self.req[p], self.resp[p]
            mapped.append(self._map(m, req.payload.addr, p))
            # The response buffer (resp.valid and a skid register) plus a read in flight hold
            # resp.valid + skid + flight - taken words after this cycle; a read issued now
            # lands a cycle later, so it may issue only if that is at most one.
            skid = Signal(name=f"skid{p}_valid")
            flight = Signal(name=f"flight{p}")
            room = Signal(name=f"room{p}")
            taken = resp.valid & resp.ready
            m.d.comb += room.eq(req.payload.write
                                | ((resp.valid + skid + flight - taken) <= 1))
            want = Signal(name=f"want{p}")
            m.d.comb += want.eq(req.valid & room)
            wants.append(want)
            rooms.append((room, skid, flight, taken))

        # --- Arbiter: the lowest-numbered port wanting a bank gets it ------------------------
        grants = []
        for p in range(ports):
            bank = mapped[p][0]
            conflict = Const(0)
            for q in range(p):
                conflict = conflict | (wants[q] & (mapped[q][0] == bank))
            grant = Signal(name=f"grant{p}")
            m.d.comb += [self.req[p].ready.eq(rooms[p][0] & ~conflict),
                         grant.eq(wants[p] & ~conflict)]
            grants.append(grant)

        # --- Banks: at most one granted port per bank and cycle -----------------------------
        for b in range(n):
            write, read = writes[b], reads[b]
            for p in range(ports):
                bank, row, outside = mapped[p]
                payload = self.req[p].payload
                with m.If(grants[p] & (bank == b)):
                    m.d.comb += [write.addr.eq(row), read.addr.eq(row),
                                 write.data.eq(payload.data),
                                 write.en.eq(payload.write & ~outside),
                                 read.en.eq(~payload.write)]

        # --- Responses: steer the bank's read data back, buffer it under backpressure -------
        for p in range(ports):
            resp, payload = self.resp[p], self.req[p].payload
            _, skid, flight, taken = rooms[p]
            bank, _, outside = mapped[p]
            flight_bank = Signal(range(n), name=f"flight{p}_bank")
            flight_zero = Signal(name=f"flight{p}_zero")  # an out-of-range read answers 0
            skid_data = Signal(cfg.width, name=f"skid{p}_data")
            m.d.sync += [flight.eq(grants[p] & ~payload.write), flight_bank.eq(bank),
                         flight_zero.eq(outside)]
            arrived = Mux(flight_zero, 0, read_data[flight_bank])
            with m.If(~resp.valid | taken):
                with m.If(skid):  # the older word moves to the output first
                    m.d.sync += [resp.payload.data.eq(skid_data), skid.eq(flight),
                                 skid_data.eq(arrived)]
                with m.Else():
                    m.d.sync += [resp.valid.eq(flight), resp.payload.data.eq(arrived)]
            with m.Elif(flight):  # the output is held: the skid is free (see room)
                m.d.sync += [skid.eq(1), skid_data.eq(arrived)]
        # Kept for the formal proofs' invariants (sim/contracts.py): per port, the skid
        # register's and the read in flight's valid bits.
        self.state = [{"skid": skid, "flight": flight} for _, skid, flight, _ in rooms]
        return m
