"""The Amaranth simulator (the fast unit-test level): running a stream bench on a component, an
AXI4-Lite master that checks the slave's handshake rules, and an AXI4 memory slave."""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Module, Value
from amaranth.sim import Simulator

from .payload import stream_codecs
from .scoreboard import Scoreboard
from .stream import BenchResult, StreamBench, check_ready_prob

__all__ = ["AxiLiteSimMaster", "AxiSimRam", "run_amaranth_bench", "simulate_stream"]


def simulate_stream(component, inputs: dict, expected: dict, sources=None, *,
                    valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 0,
                    vcd: str | None = None) -> BenchResult:
    """The Amaranth-simulator twin of ``sim.runner.run_stream_test``: drive ``inputs`` into
    ``component.i``, check every word of ``component.o`` against ``expected``, with random
    stalls on both sides. Raises ``sim.scoreboard.MismatchError`` at the first difference."""
    check_ready_prob(component, ready_prob)
    in_codec, out_codec = stream_codecs(component)
    scoreboard = Scoreboard(out_codec.encode(expected), out_codec,
                            None if sources is None else [int(s) for s in sources])
    bench = StreamBench(in_codec.encode(inputs), scoreboard, valid_prob=valid_prob,
                        ready_prob=ready_prob, seed=seed)
    return run_amaranth_bench(component, bench, vcd=vcd)


def run_amaranth_bench(dut, bench: StreamBench, *, vcd: str | None = None) -> BenchResult:
    """Run ``bench`` on ``dut``'s ``i`` and ``o`` stream ports in the Amaranth simulator.

    One testbench drives both sides each cycle, so the combinational ``i.ready`` it reads
    already reflects this cycle's ``o.ready``.
    """
    i_payload = Value.cast(dut.i.payload)
    o_payload = Value.cast(dut.o.payload)
    mask = (1 << len(o_payload)) - 1
    in_width, in_signed = len(i_payload), i_payload.shape().signed

    def as_input(word):  # payload words are raw bit patterns; a signed port wants the value
        return word - (1 << in_width) if in_signed and word >> (in_width - 1) else word

    async def testbench(ctx):
        while not bench.finished:
            valid, payload, ready = bench.drive()
            ctx.set(dut.i.valid, valid)
            if valid:
                ctx.set(i_payload, as_input(payload))
            if not dut.o.signature.always_ready:
                ctx.set(dut.o.ready, ready)
            bench.sample(bool(ctx.get(dut.i.ready)), bool(ctx.get(dut.o.valid)),
                         lambda: ctx.get(o_payload) & mask)
            await ctx.tick()

    sim = Simulator(_with_clock(dut))
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return bench.check_complete()


def _with_clock(dut):
    """``dut`` under a top with a ``sync`` domain, so a purely combinational block (which has
    none of its own) runs on the same clocked bench."""
    m = Module()
    m.domains.sync = ClockDomain()
    m.submodules.dut = dut
    return m


class AxiLiteSimMaster:
    """An AXI4-Lite master for Amaranth simulator testbenches; it asserts the slave's rules.

    A write offers AW and W, each after its own wait (either may come first), then takes B; a
    read offers AR, then takes R. Responses must not arrive early, change while valid, or
    drop valid before ready. :meth:`write` and :meth:`read` touch disjoint channels, so one
    testbench may write while another reads.

    Parameters
    ----------
    ctx : amaranth.sim testbench context
    bus : the slave's AXI4-Lite interface (``awvalid``, ``awaddr``, ... ``rresp``)
    wait : callable, optional
        Returns the cycles a channel waits before offering valid (AW, W, AR) or ready (B, R);
        asked once per channel and transfer. By default no wait.
    ready : callable, optional
        Asked every cycle once a response's wait is over: raise ready this cycle? By default
        always (ready stays high).
    """

    def __init__(self, ctx, bus, *, wait=None, ready=None):
        self.ctx, self.bus = ctx, bus
        self.wait = wait or (lambda: 0)
        self.ready = ready or (lambda: True)

    async def write(self, address, data, strb=0xF, *, prot=None, aw_wait=None, w_wait=None,
                    b_wait=None) -> int:
        """One write; returns BRESP. Waits default to :attr:`wait`'s."""
        ctx, bus = self.ctx, self.bus
        aw_wait = self.wait() if aw_wait is None else aw_wait
        w_wait = self.wait() if w_wait is None else w_wait
        ctx.set(bus.awaddr, address)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, strb)
        if prot is not None:
            ctx.set(bus.awprot, prot)
        aw_done = w_done = False
        cycle = 0
        while not (aw_done and w_done):
            assert not ctx.get(bus.bvalid), "B before both AW and W were accepted"
            ctx.set(bus.awvalid, not aw_done and cycle >= aw_wait)
            ctx.set(bus.wvalid, not w_done and cycle >= w_wait)
            aw_fire = ctx.get(bus.awvalid) and ctx.get(bus.awready)
            w_fire = ctx.get(bus.wvalid) and ctx.get(bus.wready)
            await ctx.tick()
            aw_done, w_done, cycle = aw_done or aw_fire, w_done or w_fire, cycle + 1
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        (resp,) = await self._response(bus.bvalid, bus.bready, [bus.bresp], b_wait)
        return resp

    async def read(self, address, *, prot=None, ar_wait=None, r_wait=None) -> tuple[int, int]:
        """One read; returns ``(RDATA, RRESP)``."""
        ctx, bus = self.ctx, self.bus
        ar_wait = self.wait() if ar_wait is None else ar_wait
        ctx.set(bus.araddr, address)
        if prot is not None:
            ctx.set(bus.arprot, prot)
        cycle = 0
        while True:
            assert not ctx.get(bus.rvalid), "R before AR was accepted"
            ctx.set(bus.arvalid, cycle >= ar_wait)
            fire = ctx.get(bus.arvalid) and ctx.get(bus.arready)
            await ctx.tick()
            cycle += 1
            if fire:
                break
        ctx.set(bus.arvalid, 0)
        resp, data = await self._response(bus.rvalid, bus.rready, [bus.rresp, bus.rdata], r_wait)
        return data, resp

    async def _response(self, valid, ready, payload, wait):
        ctx, held, cycle = self.ctx, None, 0
        wait = self.wait() if wait is None else wait
        while True:
            take = cycle >= wait and self.ready()
            ctx.set(ready, take)
            if ctx.get(valid):
                values = [ctx.get(p) for p in payload]
                assert held is None or values == held, "response changed while valid"
                held = values
                if take:
                    await ctx.tick()
                    ctx.set(ready, 0)
                    return values
            else:
                assert held is None, "response valid dropped before ready"
            await ctx.tick()
            cycle += 1


class AxiSimRam:
    """An AXI4 memory slave for Amaranth simulator testbenches (the Verilator tests use
    cocotbext-axi's ``AxiRam``, with wait states and a protocol checker).

    INCR bursts of full-width beats, one burst at a time per direction, no wait states, OKAY
    responses; write strobes select bytes. Run :meth:`serve_writes` and :meth:`serve_reads` as
    background testbenches (``sim.add_testbench(ram.serve_reads, background=True)``).

    Parameters
    ----------
    bus : the master's AXI4 interface (``awvalid``, ``awaddr``, ... ``rlast``, as
        ``hw.memory.dma.axi4_signature`` names them)
    memory : bytearray
        The memory, byte address 0 first; accesses outside it raise ``IndexError``.
    """

    def __init__(self, bus, memory: bytearray):
        self.bus, self.memory = bus, memory
        self.beat_bytes = len(bus.wdata) // 8

    @staticmethod
    async def _handshake(ctx, valid, *payload) -> list[int]:
        """With our ready high: wait for ``valid``, return the payload, pass the edge.
        (Plain ticks, not ``tick().until()``: a background testbench is closed mid-wait.)"""
        while not ctx.get(valid):
            await ctx.tick()
        values = [ctx.get(p) for p in payload]
        await ctx.tick()
        return values

    async def _accept_burst(self, ctx, channel: str) -> tuple[int, int, int]:
        """Take one AW or AR beat (``channel``: ``"aw"`` or ``"ar"``); return its address,
        its beat count and its ID."""
        bus = self.bus
        ready = getattr(bus, f"{channel}ready")
        ctx.set(ready, 1)
        address, length, size, burst, ident = await self._handshake(
            ctx, getattr(bus, f"{channel}valid"),
            *(getattr(bus, f"{channel}{name}") for name in ("addr", "len", "size", "burst", "id")))
        ctx.set(ready, 0)
        beats = length + 1
        if burst != 1 or 1 << size != self.beat_bytes:
            raise AssertionError(f"{channel} burst type {burst} size {size}: this RAM serves "
                                 f"full-width INCR bursts only")
        if address + beats * self.beat_bytes > len(self.memory):
            raise IndexError(f"{channel} burst at {address:#x} of {beats} beats is outside "
                             f"the {len(self.memory)}-byte memory")
        return address, beats, ident

    async def serve_writes(self, ctx) -> None:
        """Answer write bursts (a background testbench)."""
        bus, nbytes = self.bus, self.beat_bytes
        while True:
            address, beats, ident = await self._accept_burst(ctx, "aw")
            ctx.set(bus.wready, 1)
            for beat in range(beats):
                data, strb, last = await self._handshake(ctx, bus.wvalid, bus.wdata,
                                                         bus.wstrb, bus.wlast)
                if bool(last) != (beat == beats - 1):
                    raise AssertionError(f"wlast={last} on beat {beat + 1} of {beats}")
                base = address + beat * nbytes
                for lane in range(nbytes):
                    if strb >> lane & 1:
                        self.memory[base + lane] = (data >> (8 * lane)) & 0xFF
            ctx.set(bus.wready, 0)
            ctx.set(bus.bid, ident)
            ctx.set(bus.bresp, 0)
            ctx.set(bus.bvalid, 1)
            await self._handshake(ctx, bus.bready)
            ctx.set(bus.bvalid, 0)

    async def serve_reads(self, ctx) -> None:
        """Answer read bursts (a background testbench)."""
        bus, nbytes = self.bus, self.beat_bytes
        while True:
            address, beats, ident = await self._accept_burst(ctx, "ar")
            ctx.set(bus.rid, ident)
            ctx.set(bus.rresp, 0)
            for beat in range(beats):
                base = address + beat * nbytes
                ctx.set(bus.rdata, int.from_bytes(self.memory[base:base + nbytes], "little"))
                ctx.set(bus.rlast, beat == beats - 1)
                ctx.set(bus.rvalid, 1)
                await self._handshake(ctx, bus.rready)
            ctx.set(bus.rvalid, 0)
