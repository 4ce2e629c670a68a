"""AXI4 DMA master moving tiles between external memory and a local scratchpad.

Parameters, the command rules and the exact burst plan are in ``golden.memory.dma``.

Ports (Verilog names after Amaranth's flattening):

- ``cmd`` (stream in): ``cmd__valid``, ``cmd__ready``, ``cmd__payload`` packing
  :attr:`DMA.command_layout` = ``{write: 1, ext_addr: addr_width, local_addr, length}``:
  ``write`` 0 moves external -> local, 1 local -> external; ``ext_addr`` is a byte address
  and ``length`` a byte count, both multiples of the bus width in bytes; ``local_addr`` is a
  scratchpad word address. One command runs at a time; ``cmd.ready`` is high only while the
  DMA is idle (no command running and no completion waiting on ``done``).
- ``done`` (stream out): ``done__valid``, ``done__ready``, ``done__payload`` = ``{error: 1}``,
  one per command. ``error`` is set for a command that :func:`golden.memory.dma.check_command`
  rejects (nothing is moved), or when any response of the transfer was not OKAY (the rest of
  the data moves regardless).
- ``busy`` (out): a command is moving data.
- ``local`` (in): a simple scratchpad port for the testbench or a consumer, honoured only while
  not ``busy``: ``local__addr``, ``local__we``, ``local__wdata`` (written at the clock edge) and
  ``local__rdata`` (the word at the previous cycle's ``local__addr``: one cycle of latency).
- ``axi`` (AXI4 master): ``axi__aw{id,addr,len,size,burst,valid,ready}``,
  ``axi__w{data,strb,last,valid,ready}``, ``axi__b{id,resp,valid,ready}``,
  ``axi__ar{id,addr,len,size,burst,valid,ready}``, ``axi__r{id,data,resp,last,valid,ready}``.
  Full-width INCR bursts, all with ID 0 (responses arrive in order), all byte strobes set.

Structure: the scratchpad is one simple dual-port memory (one write, one read port). An
address engine, shared by AR and AW since one direction runs at a time, issues a burst per
cycle into a registered address channel while fewer than ``outstanding`` bursts are in flight
(a burst's slot frees on its last R beat, or its B response). Reads write each R beat straight
into the scratchpad (``rready`` stays high). Writes read the scratchpad one beat ahead into a
registered W channel that stalls as a whole on ``wready``; a W burst starts only after its AW
was issued, and recomputes the same burst lengths to place ``wlast``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.memory.dma import PAGE_BYTES, DMAConfig

from ..config import configure

__all__ = ["DMA", "axi4_signature", "local_port_signature", "AXI_ID_WIDTH"]

AXI_ID_WIDTH = 1
"""Width of the AXI ID signals; the DMA always drives ID 0."""

BURST_INCR = 1


def axi4_signature(addr_width: int, data_width: int, id_width: int = AXI_ID_WIDTH):
    """An AXI4 master port (as seen from the master), with the signal names cocotbext-axi
    expects; the optional ``AxLOCK``/``AxCACHE``/``AxPROT``/``AxQOS`` and user signals are left
    out (a slave must assume their defaults)."""
    def channel(prefix, fields, sink=False):
        # Fields flow from the channel's source; ready flows back.
        forward, backward = (In, Out) if sink else (Out, In)
        members = {f"{prefix}{name}": forward(width) for name, width in fields}
        members[f"{prefix}valid"] = forward(1)
        members[f"{prefix}ready"] = backward(1)
        return members

    strb = data_width // 8
    address = [("id", id_width), ("addr", addr_width), ("len", 8), ("size", 3), ("burst", 2)]
    return wiring.Signature({
        **channel("aw", address),
        **channel("w", [("data", data_width), ("strb", strb), ("last", 1)]),
        **channel("b", [("id", id_width), ("resp", 2)], sink=True),
        **channel("ar", address),
        **channel("r", [("id", id_width), ("data", data_width), ("resp", 2), ("last", 1)],
                  sink=True),
    })


def local_port_signature(addr_width: int, data_width: int):
    """The scratchpad access port, as seen from its user."""
    return wiring.Signature({
        "addr": Out(addr_width),
        "we": Out(1),
        "wdata": Out(data_width),
        "rdata": In(data_width),
    })


class DMA(wiring.Component):
    """AXI4 DMA master with a local scratchpad (see the module docstring for the ports).

    Parameters
    ----------
    config : golden.memory.dma.DMAConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : None
        No fixed latency: a transfer's time depends on the external memory's wait states.
    command_layout, done_layout : data.StructLayout
        Payloads of ``cmd`` and ``done``.
    """

    def __init__(self, config: DMAConfig | None = None, **params):
        self.config = cfg = configure(self, DMAConfig, config, params)
        self.latency = None
        self.command_layout = data.StructLayout({
            "write": 1,
            "ext_addr": cfg.addr_width,
            "local_addr": cfg.local_addr_width,
            "length": cfg.length_width,
        })
        self.done_layout = data.StructLayout({"error": 1})
        super().__init__({
            "cmd": In(stream.Signature(self.command_layout)),
            "done": Out(stream.Signature(self.done_layout)),
            "busy": Out(1),
            "local": In(local_port_signature(cfg.local_addr_width, cfg.data_width)),
            "axi": Out(axi4_signature(cfg.addr_width, cfg.data_width)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        shift = cfg.beat_shift
        page_beats = PAGE_BYTES // cfg.beat_bytes
        axi, cmd, done, local = self.axi, self.cmd, self.done, self.local

        m.submodules.scratchpad = scratchpad = Memory(shape=cfg.data_width,
                                                      depth=cfg.local_depth, init=[])
        wr, rd = scratchpad.write_port(), scratchpad.read_port()

        def burst_beats(name, addr, left):
            """Beats of the next burst: min(max_burst, left, beats to the 4 KiB boundary)."""
            to_page = Signal(range(page_beats + 1), name=f"{name}_to_page")
            limited = Signal(range(page_beats + 1), name=f"{name}_limited")
            beats = Signal(range(page_beats + 1), name=f"{name}_beats")
            cap = min(cfg.max_burst, page_beats)
            m.d.comb += [
                to_page.eq(page_beats - addr[shift:12]),
                limited.eq(Mux(to_page < cap, to_page, cap)),
                beats.eq(Mux(left < limited, left, limited)),
            ]
            return beats

        reading = Signal()
        writing = Signal()
        error = Signal()
        busy = reading | writing
        m.d.comb += [self.busy.eq(busy), done.payload.error.eq(error)]

        # --- Commands: validate and start, or report an error at once ------------------------
        c = cmd.payload
        beats = c.length >> shift
        aligned = (c.length[:shift] == 0) & (c.ext_addr[:shift] == 0) & (c.length != 0)
        ext_ok = (c.ext_addr + c.length) <= (1 << cfg.addr_width)
        local_ok = (c.local_addr + beats) <= cfg.local_depth
        m.d.comb += cmd.ready.eq(~busy & ~done.valid)

        words = range(cfg.local_depth + 1)
        next_addr = Signal(cfg.addr_width)      # address engine: next burst's address
        addr_left = Signal(words)               # ... beats not yet in a burst
        in_flight = Signal(range(cfg.outstanding + 1))
        pointer = Signal(words)                 # next scratchpad word to write / read
        r_left = Signal(words)                  # read: beats still to arrive
        w_addr = Signal(cfg.addr_width)         # write data: next burst's address
        w_left = Signal(words)                  # ... beats not yet in a burst
        w_burst = Signal(range(cfg.max_burst + 1))  # ... beats left in the current burst
        aw_ahead = Signal(range(cfg.outstanding + 1))  # AW bursts whose data has not started
        # in_flight and aw_ahead return to 0 by the end of every command.

        with m.If(cmd.valid & cmd.ready):
            m.d.sync += [error.eq(0), next_addr.eq(c.ext_addr), addr_left.eq(beats),
                         w_addr.eq(c.ext_addr), w_left.eq(beats), r_left.eq(beats),
                         pointer.eq(c.local_addr), w_burst.eq(0)]
            with m.If(~(aligned & ext_ok & local_ok)):
                m.d.sync += [error.eq(1), done.valid.eq(1)]
            with m.Elif(c.write):
                m.d.sync += writing.eq(1)
            with m.Else():
                m.d.sync += reading.eq(1)
        with m.If(done.valid & done.ready):
            m.d.sync += done.valid.eq(0)

        # --- Address engine (AR while reading, AW while writing) -----------------------------
        a_valid = Signal()
        a_addr = Signal(cfg.addr_width)
        a_len = Signal(8)
        a_ready = Mux(reading, axi.arready, axi.awready)
        r_take = reading & axi.rvalid
        b_take = writing & axi.bvalid
        retire = Mux(reading, r_take & axi.rlast, b_take)
        a_beats = burst_beats("a", next_addr, addr_left)
        issue = Signal()
        m.d.comb += issue.eq(busy & (~a_valid | a_ready) & (addr_left != 0)
                             & ((in_flight < cfg.outstanding) | retire))
        with m.If(issue):
            m.d.sync += [a_valid.eq(1), a_addr.eq(next_addr), a_len.eq(a_beats - 1),
                         next_addr.eq(next_addr + (a_beats << shift)),
                         addr_left.eq(addr_left - a_beats)]
        with m.Elif(a_ready):
            m.d.sync += a_valid.eq(0)
        m.d.sync += in_flight.eq(in_flight + issue - retire)
        for ch, active in (("ar", reading), ("aw", writing)):
            m.d.comb += [
                getattr(axi, f"{ch}valid").eq(a_valid & active),
                getattr(axi, f"{ch}addr").eq(a_addr),
                getattr(axi, f"{ch}len").eq(a_len),
                getattr(axi, f"{ch}size").eq(shift),
                getattr(axi, f"{ch}burst").eq(BURST_INCR),
                getattr(axi, f"{ch}id").eq(0),
            ]

        # --- Read data: every R beat into the scratchpad -------------------------------------
        m.d.comb += axi.rready.eq(reading)
        with m.If(r_take):
            m.d.sync += [pointer.eq(pointer + 1), r_left.eq(r_left - 1)]
            with m.If(axi.rresp != 0):
                m.d.sync += error.eq(1)
            with m.If(r_left == 1):
                m.d.sync += [reading.eq(0), done.valid.eq(1)]

        # --- Write data: scratchpad read one beat ahead into the W register ------------------
        w_valid, w_last = Signal(), Signal()
        advance = ~w_valid | axi.wready
        w_beats = burst_beats("w", w_addr, w_left)
        start = writing & (w_burst == 0) & (w_left != 0) & (aw_ahead != 0)
        with m.If(advance):
            with m.If(writing & (w_burst != 0)):
                m.d.sync += [w_valid.eq(1), w_last.eq(w_burst == 1), w_burst.eq(w_burst - 1),
                             pointer.eq(pointer + 1)]
            with m.Elif(start):
                m.d.sync += [w_valid.eq(1), w_last.eq(w_beats == 1), w_burst.eq(w_beats - 1),
                             w_addr.eq(w_addr + (w_beats << shift)),
                             w_left.eq(w_left - w_beats), pointer.eq(pointer + 1)]
            with m.Else():
                m.d.sync += w_valid.eq(0)
        m.d.sync += aw_ahead.eq(aw_ahead + (issue & writing) - (advance & start))
        m.d.comb += [
            axi.wvalid.eq(w_valid),
            axi.wlast.eq(w_last),
            axi.wdata.eq(rd.data),
            axi.wstrb.eq((1 << cfg.beat_bytes) - 1),
            axi.bready.eq(writing),
        ]
        with m.If(b_take):
            with m.If(axi.bresp != 0):
                m.d.sync += error.eq(1)
            # The last response: every burst issued, this one the only one left in flight.
            with m.If((addr_left == 0) & ~a_valid & (in_flight == 1)):
                m.d.sync += [writing.eq(0), done.valid.eq(1)]

        # --- Scratchpad ports: the DMA's while busy, the local port otherwise ----------------
        m.d.comb += [
            wr.en.eq(Mux(busy, r_take, local.we)),
            wr.addr.eq(Mux(busy, pointer, local.addr)),
            wr.data.eq(Mux(busy, axi.rdata, local.wdata)),
            rd.en.eq(Mux(writing, advance, 1)),
            rd.addr.eq(Mux(writing, pointer, local.addr)),
            local.rdata.eq(rd.data),
        ]
        # Kept for the formal proofs' invariants (sim/contracts.py).
        self.state = {"reading": reading, "writing": writing, "a_valid": a_valid,
                      "w_valid": w_valid, "w_last": w_last, "w_burst": w_burst,
                      "in_flight": in_flight, "aw_ahead": aw_ahead, "r_left": r_left,
                      "addr_left": addr_left, "a_len": a_len, "w_left": w_left,
                      "next_addr": next_addr, "w_addr": w_addr}
        return m
