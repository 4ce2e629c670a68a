"""Stream buffer: host-mapped input and output buffers that run a batch of words through a
stream design and capture what it returns.

Parameters, the address map and the model are in ``golden.memory.stream_buffer``. The block
sits between a host bus (AXI4-Lite) and a design with ``i``/``o`` streams: its ``o`` feeds
the design's input, its ``i`` takes the design's output.

Storage is two simple dual-port memories, so each maps to block RAM:

- the input buffer, ``lanes * 32`` bits wide with a lane-granular write port (a bus write
  touches one lane) and one synchronous read port, shared: a bus read of the input region
  takes it for the cycle of its AR handshake, the stream side uses it otherwise;
- the output buffer, ``out_width`` bits wide, written a whole entry at a time by the capture
  side and read through its synchronous read port by the bus.

The stream side reads entry after entry into a two-word prefetch buffer (the ``o`` register
and a skid register): a read is issued when, counting the word still in the read port, the
buffer will have room even if the design takes nothing this cycle. Without stalls a word
leaves every cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.memory.stream_buffer import LANE_BITS, OKAY, SLVERR, StreamBufferConfig

from ..config import configure
from .csr import add_axi_lite_write_slot, axi_lite_signature

__all__ = ["StreamBuffer"]

_COUNTER_MAX = (1 << 32) - 1


class StreamBuffer(wiring.Component):
    """Input and output buffers behind an AXI4-Lite slave, streaming runs through a design.

    **Bus.** AW and W are accepted independently, in either order, each into a holding
    register; once both hold a beat and B is free, the write happens and B answers the next
    cycle (a write every 2 cycles without stalls). ``arready`` is high while no read is in
    flight; R is valid 2 cycles after the AR handshake (memory read, then lane select) and
    holds until ``rready``. Responses follow the address map of
    ``golden.memory.stream_buffer``; ``wstrb``, ``awprot``, ``arprot`` and the low two
    address bits are ignored.

    **Runs.** A ``start`` pulse while idle latches ``count`` and ``expect``, clears the
    counters and ``overflow`` and raises ``busy`` (``start`` while busy is ignored). Entries
    ``0 .. count - 1`` go out on ``o`` in order; words on ``i`` are taken whenever ``busy``
    (``i.ready = busy``, so the design stalls between runs) and stored in output entries
    ``0 .. expect - 1`` in arrival order; further words are dropped and set ``overflow``. The
    run ends once ``count`` words were sent and ``expect`` captured: ``busy`` falls and ``done``
    pulses the cycle after the final handshake (the cycle after ``start`` for
    ``count = expect = 0``). A design that returns fewer than ``expect`` words keeps the run
    busy until reset.

    **Timing** (no bus read of the input region during the run). If ``start`` is high in cycle
    ``s``, the first ``o`` word is valid in cycle ``s + 3``, and words leave one per cycle
    while ``o.ready`` is high. ``cycles`` counts from ``s`` to the ``done`` cycle, so a run
    through a design that answers each word ``L`` cycles after taking it, without stalls,
    takes ``count + L + 3`` cycles. ``first_output`` is the cycle of the first ``i`` handshake
    minus that of the first ``o`` handshake: the design's latency (0 while no output has
    arrived, and if an output came first). Both saturate at ``2**32 - 1``. A bus read of the
    input region during a run takes the memory port for a cycle, which can delay the next
    ``o`` word by one cycle.

    Parameters
    ----------
    config : golden.memory.stream_buffer.StreamBufferConfig, optional
        Or its fields (``in_width``, ``out_width``, ``depth``) as keywords.

    Attributes
    ----------
    config : StreamBufferConfig
    latency : None
        The time from ``start`` to ``done`` depends on the design (see Timing above).

    Members
    -------
    bus : In(axi_lite_signature(config.addr_width))
        The AXI4-Lite slave: Verilog ports ``bus__awaddr`` ... (cocotbext-axi prefix ``bus_``).
    o : Out(stream.Signature(in_width))
        Words to the design.
    i : In(stream.Signature(out_width))
        The design's output words.
    start : In(1)
    count, expect : In(range(depth + 1))
    busy, done, overflow : Out(1)
    sent, received : Out(range(depth + 1))
        Words taken by the design / captured, in the current or last run.
    cycles, first_output : Out(32)
    """

    latency = None

    def __init__(self, config: StreamBufferConfig | None = None, **params):
        self.config = cfg = configure(self, StreamBufferConfig, config, params)
        counts = range(cfg.depth + 1)
        super().__init__({
            "bus": In(axi_lite_signature(cfg.addr_width)),
            "o": Out(stream.Signature(cfg.in_width)),
            "i": In(stream.Signature(cfg.out_width)),
            "start": In(1), "count": In(counts), "expect": In(counts),
            "busy": Out(1), "done": Out(1), "sent": Out(counts), "received": Out(counts),
            "cycles": Out(32), "first_output": Out(32), "overflow": Out(1),
        })

    def _decode(self, m: Module, addr, name: str):
        """``(region, entry, lane, in_range, lane_used)`` signals of a bus address."""
        cfg = self.config
        aw = cfg.addr_width
        region = addr[aw - 1]
        offset = addr[:aw - 1]
        in_bits = (cfg.in_stride // 4).bit_length() - 1
        out_bits = (cfg.out_stride // 4).bit_length() - 1
        entry = Signal(aw, name=f"{name}_entry")
        lane = Signal(max(in_bits, out_bits, 1), name=f"{name}_lane")
        m.d.comb += [
            entry.eq(Mux(region, offset[2 + out_bits:], offset[2 + in_bits:])),
            lane.eq(Mux(region, offset[2:2 + out_bits], offset[2:2 + in_bits])),
        ]
        in_range = entry < cfg.depth
        used = Mux(region, lane < cfg.out_lanes, lane < cfg.in_lanes)
        return region, entry, lane, in_range, used

    def elaborate(self, platform):
        m = Module()
        cfg, bus = self.config, self.bus
        in_lanes = cfg.in_lanes

        m.submodules.in_mem = in_mem = Memory(shape=unsigned(in_lanes * LANE_BITS),
                                              depth=cfg.depth, init=[])
        m.submodules.out_mem = out_mem = Memory(shape=unsigned(cfg.out_width),
                                                depth=cfg.depth, init=[])
        in_wr = in_mem.write_port(granularity=LANE_BITS)
        in_rd = in_mem.read_port()
        out_wr = out_mem.write_port()
        out_rd = out_mem.read_port()

        # --- Bus writes: AW and W holding registers (wstrb is ignored) ------------------------
        aw_addr, w_data, _, do_write = add_axi_lite_write_slot(m, bus)
        w_region, w_entry, w_lane, w_in_range, w_used = self._decode(m, aw_addr, "write")
        write_ok = ~w_region & w_in_range
        # The word is replicated into every lane and the enable picks one; bits beyond
        # in_width are stored as 0, so they read back as 0.
        m.d.comb += [
            in_wr.addr.eq(w_entry),
            in_wr.data.eq(Cat(*[w_data] * in_lanes) & ((1 << cfg.in_width) - 1)),
            in_wr.en.eq(Cat(do_write & write_ok & (w_lane == k) for k in range(in_lanes))),
        ]
        with m.If(do_write):
            m.d.sync += bus.bresp.eq(Mux(write_ok, OKAY, SLVERR))

        # --- Bus reads: AR -> memory read -> lane select into rdata -> R ---------------------
        r_region, r_entry, r_lane, r_in_range, r_used = self._decode(m, bus.araddr, "read")
        ar_fire = Signal()
        stage = Signal()  # the memory word of an accepted read is on the read port
        stage_region = Signal()
        stage_lane = Signal.like(r_lane)
        stage_ok = Signal()
        stage_used = Signal()
        m.d.comb += [bus.arready.eq(~stage & ~bus.rvalid),
                     ar_fire.eq(bus.arvalid & bus.arready)]
        m.d.sync += stage.eq(ar_fire)
        with m.If(ar_fire):
            m.d.sync += [stage_region.eq(r_region), stage_lane.eq(r_lane),
                         stage_ok.eq(r_in_range), stage_used.eq(r_used)]
        bus_in_read = ar_fire & ~r_region  # the bus takes the input read port this cycle
        m.d.comb += [out_rd.addr.eq(r_entry), out_rd.en.eq(ar_fire & r_region)]
        out_padded = Cat(out_rd.data, Const(0, cfg.out_lanes * LANE_BITS - cfg.out_width))
        lane_word = Mux(stage_region, out_padded.word_select(stage_lane, LANE_BITS),
                        in_rd.data.word_select(stage_lane, LANE_BITS))
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(stage):
            m.d.sync += [bus.rvalid.eq(1),
                         bus.rdata.eq(Mux(stage_ok & stage_used, lane_word, 0)),
                         bus.rresp.eq(Mux(stage_ok, OKAY, SLVERR))]

        # --- Run control ---------------------------------------------------------------------
        busy, done = self.busy, self.done
        count = Signal.like(self.count)
        expect = Signal.like(self.expect)
        o_fire = self.o.valid & self.o.ready
        i_fire = self.i.valid & self.i.ready
        capture = i_fire & (self.received != expect)
        m.d.comb += self.i.ready.eq(busy)
        sent_next = self.sent + o_fire
        received_next = self.received + capture
        m.d.sync += done.eq(0)
        with m.If(busy):
            m.d.sync += [self.sent.eq(sent_next), self.received.eq(received_next)]
            with m.If(i_fire & ~capture):
                m.d.sync += self.overflow.eq(1)
            with m.If(self.cycles != _COUNTER_MAX):
                m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If((sent_next == count) & (received_next == expect)):
                m.d.sync += [busy.eq(0), done.eq(1)]

        # The latency counter runs from the cycle after the first o handshake up to and
        # including the first i handshake; it shows once that handshake happened.
        o_seen, i_seen = Signal(), Signal()
        latency = Signal(32)
        m.d.comb += self.first_output.eq(Mux(i_seen, latency, 0))
        with m.If(busy):
            with m.If(o_fire):
                m.d.sync += o_seen.eq(1)
            with m.If(i_fire):
                m.d.sync += i_seen.eq(1)
            with m.If(o_seen & ~i_seen & (latency != _COUNTER_MAX)):
                m.d.sync += latency.eq(latency + 1)

        # --- Stream out: read entries into the o register and a skid register ----------------
        next_entry = Signal(range(cfg.depth + 1))
        inflight = Signal()  # a word read for the stream is on the read port this cycle
        skid = Signal(cfg.in_width)
        skid_valid = Signal()
        held = Signal(range(4))
        m.d.comb += held.eq(self.o.valid + skid_valid + inflight)
        room = (held < 2) | ((held == 2) & o_fire)
        issue = busy & (next_entry != count) & room & ~bus_in_read
        m.d.comb += [in_rd.addr.eq(Mux(bus_in_read, r_entry, next_entry)),
                     in_rd.en.eq(issue | bus_in_read)]
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += next_entry.eq(next_entry + 1)
        with m.If(~self.o.valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1),
                             skid.eq(in_rd.data), skid_valid.eq(inflight)]
            with m.Elif(inflight):
                m.d.sync += [self.o.payload.eq(in_rd.data), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        with m.Elif(inflight):
            m.d.sync += [skid.eq(in_rd.data), skid_valid.eq(1)]

        # --- Capture: whole entries into the output buffer ----------------------------------
        m.d.comb += [out_wr.addr.eq(self.received), out_wr.data.eq(self.i.payload),
                     out_wr.en.eq(capture)]

        # Start last: it overrides the counters (and is ignored while busy).
        with m.If(self.start & ~busy):
            m.d.sync += [count.eq(self.count), expect.eq(self.expect), next_entry.eq(0),
                         self.sent.eq(0), self.received.eq(0), self.overflow.eq(0),
                         self.cycles.eq(1), latency.eq(0), o_seen.eq(0),
                         i_seen.eq(0)]
            with m.If((self.count == 0) & (self.expect == 0)):
                m.d.sync += done.eq(1)
            with m.Else():
                m.d.sync += busy.eq(1)
        return m
