"""AXI4-Lite decoder: region checks, the config and the golden model; the hardware routing
random reads and writes (concurrently, with random stalls on every channel of the master and
of each slave) in the Amaranth simulator, and the emitted Verilog under Verilator between
cocotbext-axi's AxiLiteMaster and one AxiLiteRam per port."""

import random
import shutil
import sys
import zlib
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from gen.emit import ports
from golden.memory.axil_decoder import (
    OKAY,
    SLVERR,
    AXILiteDecoderConfig,
    AXILiteDecoderModel,
    RegionMemory,
    check_regions,
    decode,
    format_region,
    parse_region,
)
from hw.memory.axil_decoder import AXILiteDecoder
from sim.amaranth_sim import AxiLiteSimMaster
from sim.runner import build, new_test_dir, run_cocotb_spec

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the cocotb module axil_decoder_tb lives here
    sys.path.insert(0, str(TESTS))

DECERR = 3


# --- regions, config, golden model ------------------------------------------------------------


@pytest.mark.parametrize("regions,addr_width,message", [
    ([], 32, "regions must hold at least one region"),
    ("0:16", 32, "regions must be a sequence of"),
    ([(0, 16), (0x20, 6)], 32, r"regions\[1\]: size 0x6 must be a power of two >= 4"),
    ([(0, 2)], 32, r"regions\[0\]: size 0x2 must be a power of two >= 4"),
    ([(0x10, 0x20)], 32, r"regions\[0\]: base 0x10 must be a multiple of its size 0x20"),
    ([(-4, 4)], 32, r"regions\[0\]: base -0x4 must be a multiple"),
    ([(0xF000, 0x1000), (0x10000, 4)], 16,
     r"regions\[1\]: 0x10000..0x10003 does not fit the 16-bit address space"),
    ([(0, 0x100), (0x200, 0x100), (0x180, 0x80), (0x240, 4)], 16,
     r"regions\[3\] \(0x240..0x243\) overlaps regions\[1\] \(0x200..0x2ff\)"),
    ([(0, 0x100), (0, 0x1000)], 16, r"regions\[1\] \(0x0..0xfff\) overlaps regions\[0\]"),
    ([(0, 16, 1)], 32, r"regions\[0\] must be a \(base, size\) pair of integers"),
    ([(0, True)], 32, r"regions\[0\] must be a \(base, size\) pair of integers"),
    ([(0, 16)], 33, "addr_width must be in 2..32, got 33"),
])
def test_check_regions_names_the_region_and_the_problem(regions, addr_width, message):
    with pytest.raises(ValueError, match=message):
        check_regions(regions, addr_width)


def test_decode_and_region_forms():
    regions = check_regions([[0x1000, 0x1000], (0x0, 0x100), (0x400, 4)], 16)
    assert regions == ((0x1000, 0x1000), (0x0, 0x100), (0x400, 4))
    assert decode(regions, 0x1FFF) == (0, 0xFFF) and decode(regions, 0x1000) == (0, 0)
    assert decode(regions, 0xFF) == (1, 0xFF) and decode(regions, 0x403) == (2, 3)
    assert decode(regions, 0x100) is None and decode(regions, 0x404) is None
    assert decode(regions, 0x2000) is None
    assert parse_region(" 0x10:16 ") == (0x10, 16) and format_region(0x10, 16) == "0x10:0x10"
    assert check_regions([(0, 1 << 32)], 32) == ((0, 1 << 32),)


def test_config_normalizes_regions_and_rejects_bad_parameters():
    config = AXILiteDecoderConfig(regions=((0x1000, 0x100), "0:0x100"), addr_width=16)
    assert config.regions == ("0x1000:0x100", "0x0:0x100")
    assert config.region_list == ((0x1000, 0x100), (0, 0x100))
    assert (config.ports, config.port_addr_widths) == (2, (8, 8))
    assert config == AXILiteDecoderConfig(regions=["0x1000:0x100", (0, 256)], addr_width=16)
    assert AXILiteDecoderConfig.from_dict(config.to_dict()) == config
    assert AXILiteDecoderConfig().region_list == ((0, 0x1000), (0x1000, 0x1000))
    with pytest.raises(ValueError, match="addr_width must be in 2..32, got 33"):
        AXILiteDecoderConfig(addr_width=33)
    with pytest.raises(ValueError, match="addr_width must be in 2..32, got 1"):
        AXILiteDecoder(addr_width=1)
    with pytest.raises(ValueError, match=r"regions\[1\] must be 'BASE:SIZE' .* got '0x100'"):
        AXILiteDecoderConfig(regions=("0:0x100", "0x100"))
    with pytest.raises(ValueError, match=r"regions\[0\] must be 'BASE:SIZE'.*got 'a:b'"):
        AXILiteDecoderConfig(regions=("a:b",))
    with pytest.raises(ValueError, match=r"regions\[0\]: size 0x6 must be a power of two"):
        AXILiteDecoder(regions=[(0, 6)])
    with pytest.raises(ValueError, match=r"regions\[0\]: 0x0..0x1ffff does not fit the "
                                         "16-bit address space"):
        AXILiteDecoder(regions=[(0, 0x20000)], addr_width=16)
    with pytest.raises(ValueError, match=r"regions\[1\] .* overlaps regions\[0\]"):
        AXILiteDecoder(regions=[(0, 0x100), (0x80, 0x80)])
    with pytest.raises(TypeError, match="regions must be a non-empty tuple"):
        AXILiteDecoder(regions=())
    with pytest.raises(ValueError, match=r"regions\[0\] must be a 'BASE:SIZE' string or a"):
        AXILiteDecoderConfig(regions=(16,))


def test_golden_model_routes_strobes_and_answers_unmapped():
    model = AXILiteDecoderModel([(0x100, 0x100), (0x0, 0x10)], addr_width=12)
    assert model.write(0x104, 0xAABB_CCDD) == OKAY
    assert model.write(0x106, 0x1122_3344, strb=0b1100) == OKAY  # same word, upper half
    assert model.read(0x105) == (0x1122_CCDD, OKAY)
    assert model.write(0x8, 7) == OKAY and model.read(0xB) == (7, OKAY)
    assert model.write(0x200, 1) == SLVERR and model.read(0x10) == (0, SLVERR)
    assert model.transactions == [
        [("W", 0x4, 0xAABB_CCDD, 0xF), ("W", 0x6, 0x1122_3344, 0b1100), ("R", 0x5)],
        [("W", 0x8, 7, 0xF), ("R", 0xB)]]
    assert model.ports[0].words == {0x4: 0x1122_CCDD}
    with pytest.raises(ValueError, match="addr must be in 0..2\\*\\*12 - 1, got 4096"):
        model.read(0x1000)
    with pytest.raises(ValueError, match=r"ports must hold one slave per region \(2\), got 1"):
        AXILiteDecoderModel([(0x100, 0x100), (0x0, 0x10)], 12, [RegionMemory(4)])


def test_ports_one_member_per_region():
    dut = AXILiteDecoder(regions=[(0x8000, 0x8000), (0x400, 4), (0, 0x100)], addr_width=16)
    by_name = {p["name"]: p for p in ports(dut)}
    assert by_name["bus__awaddr"] == {"name": "bus__awaddr", "direction": "input", "width": 16}
    assert by_name["bus__rdata"]["direction"] == "output"
    assert [by_name[f"port{k}__araddr"]["width"] for k in range(3)] == [15, 2, 8]
    assert by_name["port1__awaddr"]["direction"] == "output"
    assert by_name["port2__rdata"] == {"name": "port2__rdata", "direction": "input",
                                       "width": 32}
    assert dut.ports == [dut.port0, dut.port1, dut.port2] and dut.latency is None
    assert dut.regions == ((0x8000, 0x8000), (0x400, 4), (0, 0x100))
    Fragment.get(dut, None)


# --- Amaranth simulator -----------------------------------------------------------------------


class PatternSlave:
    """A slave whose answers depend only on the port and the address, so the golden model
    and the simulated slave give the same ones whatever the order of reads and writes: read
    data is a hash, and some words answer SLVERR or DECERR (the decoder must pass them on)."""

    def __init__(self, port: int):
        self.port = port

    def write(self, local, data, strb=0xF):
        word = local >> 2
        return SLVERR if word % 7 == 5 else DECERR if word % 11 == 4 else OKAY

    def read(self, local):
        word = local >> 2
        resp = SLVERR if word % 5 == 3 else DECERR if word % 13 == 6 else OKAY
        return zlib.crc32(f"{self.port}:{local}".encode()), resp


def go(rng, stall):
    return rng.random() >= stall


def delay(rng, stall, longest=4):
    return rng.randint(0, longest) if rng.random() < stall else 0


def watch(ctx, valid, payload, held, name):
    """The payload if ``valid``, checking it stayed put since it was first offered."""
    if not ctx.get(valid):
        assert name not in held, f"{name}: valid dropped before ready"
        return None
    values = [ctx.get(p) for p in payload]
    assert held.get(name) in (None, values), f"{name}: payload changed while waiting"
    return values


async def port_slave(ctx, port, answers: PatternSlave, log, rng, stall):
    """The slave on one port: random ready and response delays; logs what arrives."""
    aw = w = ar = b = r = None
    held = {}
    while True:
        ready = {"aw": aw is None and go(rng, stall), "w": w is None and go(rng, stall),
                 "ar": ar is None and go(rng, stall)}
        ctx.set(port.awready, ready["aw"])
        ctx.set(port.wready, ready["w"])
        ctx.set(port.arready, ready["ar"])
        ctx.set(port.bvalid, b is not None and b[0] == 0)
        ctx.set(port.bresp, b[1] if b else 0)
        ctx.set(port.rvalid, r is not None and r[0] == 0)
        ctx.set(port.rdata, r[1] if r else 0)
        ctx.set(port.rresp, r[2] if r else 0)
        fired = {}
        for name, valid, payload in (("aw", port.awvalid, [port.awaddr, port.awprot]),
                                     ("w", port.wvalid, [port.wdata, port.wstrb]),
                                     ("ar", port.arvalid, [port.araddr, port.arprot])):
            values = watch(ctx, valid, payload, held, f"port {answers.port} {name}")
            if values is not None:
                if ready[name]:
                    fired[name] = values
                    held.pop(f"port {answers.port} {name}", None)
                else:
                    held[f"port {answers.port} {name}"] = values
        b_fire = b is not None and b[0] == 0 and ctx.get(port.bready)
        r_fire = r is not None and r[0] == 0 and ctx.get(port.rready)
        await ctx.tick()
        for pending in (b, r):
            if pending is not None and pending[0] > 0:
                pending[0] -= 1
        if b_fire:
            aw = w = b = None
        if r_fire:
            ar = r = None
        aw = fired.get("aw", aw)
        w = fired.get("w", w)
        if "ar" in fired:
            ar = fired["ar"]
            log.append(("R", ar[0], ar[1]))
            r = [delay(rng, stall), *answers.read(ar[0])]
        if aw is not None and w is not None and b is None:
            log.append(("W", aw[0], w[0], w[1], aw[1]))
            b = [delay(rng, stall), answers.write(aw[0], w[0], w[1])]


async def write_master(ctx, bus, writes, results, rng, stall):
    """Each write with its own AW and W waits (either may come first), then B."""
    master = AxiLiteSimMaster(ctx, bus, wait=lambda: delay(rng, stall),
                              ready=lambda: go(rng, stall))
    for addr, data, strb, prot in writes:
        results.append(await master.write(addr, data, strb, prot=prot))


async def read_master(ctx, bus, reads, results, rng, stall):
    master = AxiLiteSimMaster(ctx, bus, wait=lambda: delay(rng, stall),
                              ready=lambda: go(rng, stall))
    for addr, prot in reads:
        results.append(await master.read(addr, prot=prot))


def random_address(rng, regions, addr_width):
    """Mostly inside a region (any byte), sometimes anywhere (often unmapped)."""
    if rng.random() < 0.25:
        return rng.randrange(1 << addr_width)
    base, size = rng.choice(regions)
    return base + rng.randrange(size)


def simulate_decoder(regions, addr_width, *, ops, seed, stall):
    """Random concurrent reads and writes through the decoder to pattern slaves; every
    response and every transaction each port sees equals the golden model's. Returns the
    model."""
    rng = random.Random(seed)
    dut = AXILiteDecoder(regions=regions, addr_width=addr_width)
    writes = [(random_address(rng, regions, addr_width), rng.getrandbits(32),
               rng.getrandbits(4), rng.getrandbits(3)) for _ in range(ops)]
    reads = [(random_address(rng, regions, addr_width), rng.getrandbits(3)) for _ in range(ops)]
    model = AXILiteDecoderModel(regions, addr_width, [PatternSlave(k)
                                                      for k in range(len(regions))])
    expected_writes = [model.write(a, d, s) for a, d, s, _ in writes]
    expected_reads = [model.read(a) for a, _ in reads]
    write_results, read_results = [], []
    logs = [[] for _ in regions]

    async def writer(ctx):
        await write_master(ctx, dut.bus, writes, write_results, random.Random(seed + 1), stall)

    async def reader(ctx):
        await read_master(ctx, dut.bus, reads, read_results, random.Random(seed + 2), stall)

    def slave(k):
        async def run(ctx):
            await port_slave(ctx, dut.ports[k], PatternSlave(k), logs[k],
                             random.Random(seed + 10 + k), stall)
        return run

    async def watchdog(ctx):  # a lost handshake would otherwise hang the masters forever
        for _ in range(60 * ops + 500):
            await ctx.tick()
        raise AssertionError(f"not done after {60 * ops + 500} cycles: {len(write_results)} "
                             f"of {ops} writes and {len(read_results)} of {ops} reads answered")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(writer)
    sim.add_testbench(reader)
    sim.add_testbench(watchdog, background=True)
    for k in range(len(regions)):
        sim.add_testbench(slave(k), background=True)
    sim.run()

    assert write_results == expected_writes
    assert read_results == expected_reads
    # Per port, the writes and the reads each in order, at the local address, with prot.
    for k, log in enumerate(logs):
        port_writes = [(a, d, s, p) for a, d, s, p in writes if (decode(model.regions, a)
                                                                  or (None,))[0] == k]
        port_reads = [(a, p) for a, p in reads if (decode(model.regions, a) or (None,))[0] == k]
        assert [t[:4] for t in log if t[0] == "W"] == \
            [t for t in model.transactions[k] if t[0] == "W"]
        assert [t[:2] for t in log if t[0] == "R"] == \
            [t for t in model.transactions[k] if t[0] == "R"]
        assert [t[4] for t in log if t[0] == "W"] == [p for *_, p in port_writes]
        assert [t[2] for t in log if t[0] == "R"] == [p for _, p in port_reads]
    return model, expected_writes, expected_reads


@pytest.mark.parametrize("regions,addr_width,stall", [
    ([(0x0, 0x100), (0x1000, 0x1000), (0x400, 4)], 16, 0.4),
    ([(0x80, 0x80), (0x0, 0x40)], 8, 0.0),
    ([(0x0, 0x100)], 8, 0.6),  # one region covering the whole space
    ([(0xFFFF_F000, 0x1000), (0x4000_0000, 0x4000_0000), (0x0, 0x20)], 32, 0.2),
])
def test_amaranth_sim_random_traffic_routes_to_the_golden_model(regions, addr_width, stall,
                                                                rng):
    model, writes, reads = simulate_decoder(regions, addr_width, ops=120,
                                            seed=int(rng.integers(1 << 16)), stall=stall)
    assert all(model.transactions)  # every port was used
    responses = writes + [resp for _, resp in reads]
    assert OKAY in responses and DECERR in responses
    if sum(size for _, size in regions) < 1 << addr_width:
        assert sum(r == SLVERR for r in responses) > 10


def test_amaranth_sim_latency_without_stalls(measure):
    """The decoder adds one cycle on the way to the port and one on the way back: with a
    slave answering the cycle after its handshake, AR to R handshake and AW/W to B
    handshake each take 3 cycles; unmapped addresses are answered in 2."""
    regions = [(0x100, 0x100)]
    dut = AXILiteDecoder(regions=regions, addr_width=12)
    cycles = {}

    async def testbench(ctx):
        bus = dut.bus
        for name, addr in (("mapped", 0x104), ("unmapped", 0x204)):
            ctx.set(bus.rready, 1)
            ctx.set(bus.bready, 1)
            ctx.set(bus.arvalid, 1)
            ctx.set(bus.araddr, addr)
            await ctx.tick()
            ctx.set(bus.arvalid, 0)
            count = 1
            while not ctx.get(bus.rvalid):
                await ctx.tick()
                count += 1
            cycles[f"read {name}"] = count
            await ctx.tick()
            for signal, value in ((bus.awvalid, 1), (bus.wvalid, 1), (bus.awaddr, addr)):
                ctx.set(signal, value)
            await ctx.tick()
            ctx.set(bus.awvalid, 0)
            ctx.set(bus.wvalid, 0)
            count = 1
            while not ctx.get(bus.bvalid):
                await ctx.tick()
                count += 1
            cycles[f"write {name}"] = count
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)

    async def slave(ctx):
        await port_slave(ctx, dut.port0, PatternSlave(0), [], random.Random(0), 0.0)

    sim.add_testbench(slave, background=True)
    sim.run()
    measure(f"decoder, cycles from handshake to response handshake: {cycles}")
    assert cycles == {"read mapped": 3, "write mapped": 3, "read unmapped": 2,
                      "write unmapped": 2}


# --- Verilator: AxiLiteMaster -> decoder -> AxiLiteRam per port -------------------------------


def test_verilator_axi_lite_master_and_rams(rng, measure):
    regions = [(0x0000, 0x1000), (0x2000, 0x100), (0x8000, 0x4000)]
    dut = AXILiteDecoder(regions=regions, addr_width=16)
    sim_build = build(dut, "axil_decoder_3")
    test_dir = new_test_dir("axil_decoder_3")
    seed = int(rng.integers(1 << 16))
    spec = {"regions": regions, "addr_width": 16, "seed": seed, "ops": 600, "rounds": 30,
            "pause": 0.3, "report": str(test_dir / "report")}
    reports = run_cocotb_spec(sim_build, "axil_decoder_tb", spec,
                              env_var="ACCELGEN_AXIL_DECODER_SPEC", test_dir=test_dir,
                              seed=seed)
    assert reports["error"] is None
    assert sorted(reports["tests"]) == ["concurrent_reads_and_writes", "random_traffic"]
    traffic = reports["tests"]["random_traffic"]
    assert traffic["slverr"] > 20 and traffic["partial_writes"] > 20
    assert all(n > 50 for n in traffic["per_port"])
    measure(f"decoder: {traffic['writes']} writes, {traffic['reads']} reads "
            f"({traffic['slverr']} unmapped, SLVERR) in {traffic['cycles']} cycles with 30% "
            f"wait states on every channel of the master and the RAMs")
    shutil.rmtree(test_dir, ignore_errors=True)
