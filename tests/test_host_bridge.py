"""Host bridge: the protocol's encoders, parsers and golden model; the hardware against the
model in the Amaranth simulator (a Python AXI4-Lite slave with random wait states on every
channel, random input gaps and output backpressure), and the emitted Verilog under Verilator
with cocotbext-axi's AxiLiteRam as the slave."""

import copy
import random
import shutil
import sys
from pathlib import Path

import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from gen.emit import ports
from golden.host_bridge import (
    CMD_PING,
    CMD_READ,
    CMD_WRITE,
    MAX_WORDS,
    OKAY,
    PING_MAGIC,
    PING_RESPONSE,
    SLVERR,
    STATUS_BUS_ERROR,
    STATUS_OK,
    STATUS_UNKNOWN_COMMAND,
    HostBridgeConfig,
    WordMemory,
    encode_ping,
    encode_read,
    encode_write,
    host_bridge,
    parse_ping_response,
    parse_read_response,
    parse_status,
    parse_write_response,
    ping_response_length,
    read_response_length,
    write_response_length,
)
from hw.host_bridge import HostBridge
from sim.payload import stream_codecs
from sim.runner import build, new_test_dir, run_cocotb_spec
from sim.scoreboard import Scoreboard
from sim.stream import StreamBench

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the cocotb module host_bridge_tb lives here
    sys.path.insert(0, str(TESTS))

JUNK = [b for b in range(256) if b not in (CMD_WRITE, CMD_READ, CMD_PING)]


def random_commands(r: random.Random, frames: int, *, addr_width: int, window: int,
                    hole: range, max_count: int = 8, junk: bool = True) -> bytes:
    """``frames`` random WRITE/READ/PING frames and junk bytes. Addresses fall in the first
    ``window`` bytes (so reads find earlier writes) or in ``hole`` (unmapped), with random low
    bits (ignored by the bridge)."""
    out = bytearray()
    for _ in range(frames):
        kind = r.choices("WRPJ", [5, 5, 1, 1 if junk else 0])[0]
        if kind == "P":
            out += encode_ping()
        elif kind == "J":
            out.append(r.choice(JUNK))
        else:
            count = r.choice([1, 1, 2, 3, 4, r.randint(1, max_count)])
            if r.random() < 0.2:
                addr = r.randrange(hole.start - 8, hole.stop)  # unmapped, or a burst into it
            else:
                addr = r.randrange(window)
            addr &= (1 << addr_width) - 1
            if kind == "W":
                out += encode_write(addr, [r.getrandbits(32) for _ in range(count)],
                                    addr_width=addr_width)
            else:
                out += encode_read(addr, count, addr_width=addr_width)
    return bytes(out)


# --- protocol: encoders and parsers -----------------------------------------------------------


def test_encoders_lay_out_the_frames():
    assert encode_write(0x1234_5678, [0xAABB_CCDD, 1]) == (
        b"W" + bytes([0x78, 0x56, 0x34, 0x12, 1, 0xDD, 0xCC, 0xBB, 0xAA, 1, 0, 0, 0]))
    assert encode_read(0xFF, 256, addr_width=8) == b"R" + bytes([0xFF, 0, 0, 0, 255])
    assert encode_read(4, 1) == b"R\x04\x00\x00\x00\x00"
    assert encode_ping() == b"P"
    assert PING_MAGIC == 0x4143_4347 and PING_RESPONSE == b"\x00GCCA"
    assert (write_response_length(7), read_response_length(3), ping_response_length()) == \
        (1, 13, 5)
    assert len(encode_write(0, range(MAX_WORDS))) == 6 + 4 * MAX_WORDS


@pytest.mark.parametrize("call,error,message", [
    (lambda: encode_read(0, 0), ValueError, "count must be in 1..256, got 0"),
    (lambda: encode_read(0, 257), ValueError, "count must be in 1..256, got 257"),
    (lambda: encode_read(0, 1.0), TypeError, "count must be an integer"),
    (lambda: encode_write(0, []), ValueError, "words must hold 1..256 words, got 0"),
    (lambda: encode_write(0, [0] * 257), ValueError, "words must hold 1..256 words, got 257"),
    (lambda: encode_write(0, [1, 1 << 32]), ValueError,
     r"words\[1\] must be in 0x0..0xffffffff, got 0x100000000"),
    (lambda: encode_write(0, [-1]), ValueError, r"words\[0\] must be in 0x0..0xffffffff"),
    (lambda: encode_write(0, ["1"]), TypeError, r"words\[0\] must be an integer"),
    (lambda: encode_read(0x100, 1, addr_width=8), ValueError,
     "addr must be in 0x0..0xff, got 0x100"),
    (lambda: encode_write(1 << 32, [0]), ValueError, "addr must be in 0x0..0xffffffff"),
    (lambda: encode_read(-4, 1), ValueError, "addr must be in"),
    (lambda: encode_read(0, 1, addr_width=33), ValueError, "addr_width must be in 0x8..0x20"),
    (lambda: read_response_length(0), ValueError, "count must be in 1..256"),
])
def test_encoders_reject_bad_arguments_by_name(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_parsers_round_trip_and_check():
    memory = WordMemory(unmapped=range(0x30, 0x34))
    words = [0xDEAD_BEEF, 0x0123_4567, 0xFFFF_FFFF]
    assert parse_write_response(host_bridge(encode_write(0x20, words), memory)) == STATUS_OK
    assert parse_read_response(host_bridge(encode_read(0x20, 3), memory), 3) == (words, 0)
    response = host_bridge(encode_read(0x28, 3), memory)  # 0x2C unwritten, 0x30 unmapped
    assert len(response) == read_response_length(3)
    assert parse_read_response(response, 3) == ([0xFFFF_FFFF, 0, 0], STATUS_BUS_ERROR)
    assert parse_ping_response(host_bridge(encode_ping(), memory)) == STATUS_OK
    assert parse_status(1) == STATUS_BUS_ERROR
    with pytest.raises(ValueError, match="status 0x02: .*resynchronize with PING"):
        parse_write_response(b"\x02")
    with pytest.raises(ValueError, match="status must be 0x00 or 0x01, got 0x07"):
        parse_status(7)
    with pytest.raises(ValueError, match="a READ response must be 9 bytes, got 8"):
        parse_read_response(bytes(8), 2)
    with pytest.raises(ValueError, match="a WRITE response must be 1 bytes, got 0"):
        parse_write_response(b"")
    with pytest.raises(ValueError, match="PING response magic must be b'GCCA', got b'ACCG'"):
        parse_ping_response(b"\x00ACCG")
    with pytest.raises(ValueError, match="PING response status must be 0x00, got 0x02"):
        parse_ping_response(b"\x02GCCA")


# --- golden model -----------------------------------------------------------------------------


def test_golden_model_frames_errors_and_transactions():
    memory = WordMemory({0x20: 5}, unmapped={0x104})
    commands = (encode_write(0x100, [1, 2, 3]) + b"\x00" + encode_ping()
                + encode_read(0x1E, 2) + b"Q" + encode_read(0x100, 3))
    response = host_bridge(commands, memory)
    assert response == (bytes([STATUS_BUS_ERROR, STATUS_UNKNOWN_COMMAND]) + PING_RESPONSE
                        + bytes(4) + (5).to_bytes(4, "little") + bytes([STATUS_OK])
                        + bytes([STATUS_UNKNOWN_COMMAND])
                        + (1).to_bytes(4, "little") + bytes(4) + (3).to_bytes(4, "little")
                        + bytes([STATUS_BUS_ERROR]))
    assert memory.transactions == [("W", 0x100, 1), ("W", 0x104, 2), ("W", 0x108, 3),
                                   ("R", 0x1C, 0), ("R", 0x20, 5),  # low bits of 0x1E ignored
                                   ("R", 0x100, 1), ("R", 0x104, 0), ("R", 0x108, 3)]
    assert memory.words == {0x20: 5, 0x100: 1, 0x108: 3}  # the unmapped write stored nothing
    assert (memory.write(0x104, 9), memory.read(0x104)) == (SLVERR, (0, SLVERR))
    assert memory.read(0x108) == (3, OKAY)


def test_golden_model_address_width_wrap_and_truncation():
    config = HostBridgeConfig(addr_width=8)
    memory = WordMemory()
    # Bits above addr_width are ignored; a burst wraps around the top of the space.
    frame = b"W" + (0xABCD_EFFD).to_bytes(4, "little") + bytes([2]) + bytes(range(12))
    assert host_bridge(frame, memory, config) == bytes([STATUS_OK])
    assert [t[1] for t in memory.transactions] == [0xFC, 0x00, 0x04]
    # A cut-short WRITE performs its complete words and sends nothing; a cut header nothing.
    memory = WordMemory()
    cut = encode_write(0x40, [7, 8, 9])[:-6]
    assert host_bridge(encode_ping() + cut, memory) == PING_RESPONSE
    assert memory.transactions == [("W", 0x40, 7)]
    assert host_bridge(encode_read(0, 4)[:-1], memory) == b""
    with pytest.raises(TypeError, match="config must be a HostBridgeConfig"):
        host_bridge(b"P", memory, {"addr_width": 8})


@pytest.mark.parametrize("width", [7, 33, 0])
def test_bad_parameters_are_rejected_before_building(width):
    with pytest.raises(ValueError, match=f"addr_width must be in 8..32, got {width}"):
        HostBridgeConfig(addr_width=width)
    with pytest.raises(ValueError, match=f"addr_width must be in 8..32, got {width}"):
        HostBridge(addr_width=width)
    with pytest.raises(TypeError, match="addr_width must be an integer"):
        HostBridge(addr_width="16")


def test_ports():
    dut = HostBridge(addr_width=20)
    by_name = {p["name"]: p for p in ports(dut)}
    assert by_name["i__payload"] == {"name": "i__payload", "direction": "input", "width": 8}
    assert by_name["o__payload"]["direction"] == "output"
    assert by_name["bus__awaddr"] == {"name": "bus__awaddr", "direction": "output", "width": 20}
    assert by_name["bus__rdata"] == {"name": "bus__rdata", "direction": "input", "width": 32}
    assert by_name["bus__bready"]["direction"] == "output"
    default = HostBridge()
    assert dut.latency is None and default.config == HostBridgeConfig()
    for bridge in (dut, default):
        Fragment.get(bridge, None)  # and they elaborate


# --- Amaranth simulator -----------------------------------------------------------------------


class SimSlave:
    """An AXI4-Lite slave for the Amaranth simulator in front of a :class:`WordMemory`: ready
    and response delays drawn at random on every channel, and checks of the master's side of
    the protocol (valid held with a stable payload until ready, full strobes, prot 0, one
    transaction in flight at a time)."""

    def __init__(self, bus, memory, rng: random.Random, stall: float, max_delay: int = 3):
        self.bus, self.memory, self.rng = bus, memory, rng
        self.stall, self.max_delay = stall, max_delay

    def go(self) -> bool:
        return self.rng.random() >= self.stall

    def delay(self) -> int:
        return self.rng.randint(0, self.max_delay) if self.rng.random() < self.stall else 0

    async def run(self, ctx):
        bus = self.bus
        aw = w = ar = None    # captured AW address, W data, AR address
        b = r = None          # pending responses: [delay, ...]
        held = {}             # channel -> payload offered without ready last cycle
        channels = {"aw": (bus.awvalid, [bus.awaddr, bus.awprot]),
                    "w": (bus.wvalid, [bus.wdata, bus.wstrb]),
                    "ar": (bus.arvalid, [bus.araddr, bus.arprot])}
        while True:
            ready = {"aw": aw is None and self.go(), "w": w is None and self.go(),
                     "ar": ar is None and self.go()}
            ctx.set(bus.awready, ready["aw"])
            ctx.set(bus.wready, ready["w"])
            ctx.set(bus.arready, ready["ar"])
            ctx.set(bus.bvalid, b is not None and b[0] == 0)
            ctx.set(bus.bresp, b[1] if b is not None else 0)
            ctx.set(bus.rvalid, r is not None and r[0] == 0)
            ctx.set(bus.rdata, r[1] if r is not None else 0)
            ctx.set(bus.rresp, r[2] if r is not None else 0)
            fired = {}
            for name, (valid, payload) in channels.items():
                values = [ctx.get(p) for p in payload]
                if ctx.get(valid):
                    assert held.get(name) in (None, values), f"{name} payload changed"
                    if ready[name]:
                        fired[name] = values
                        held.pop(name, None)
                    else:
                        held[name] = values
                else:
                    assert name not in held, f"{name}valid dropped before {name}ready"
            b_fire = b is not None and b[0] == 0 and ctx.get(bus.bready)
            r_fire = r is not None and r[0] == 0 and ctx.get(bus.rready)
            await ctx.tick()
            for pending in (b, r):
                if pending is not None and pending[0] > 0:
                    pending[0] -= 1
            if b_fire:
                aw = w = b = None
            if r_fire:
                ar = r = None
            if "aw" in fired:
                assert ar is None and r is None and b is None, "AW with a transaction in flight"
                assert fired["aw"][1] == 0, "awprot must be 0"
                aw = fired["aw"][0]
            if "w" in fired:
                assert b is None and fired["w"][1] == 0xF, "W with a write in flight / strobes"
                w = fired["w"][0]
            if "ar" in fired:
                assert aw is None and w is None and r is None, "AR with a transaction in flight"
                assert fired["ar"][1] == 0, "arprot must be 0"
                ar = fired["ar"][0]
                r = [self.delay(), *self.memory.read(ar)]
            if aw is not None and w is not None and b is None:
                b = [self.delay(), self.memory.write(aw, w)]


def simulate_bridge(commands: bytes, memory: WordMemory, config: HostBridgeConfig, *,
                    seed: int, valid_prob: float, ready_prob: float, stall: float):
    """Run ``commands`` through the bridge in the Amaranth simulator against ``memory``;
    check the response bytes, the AXI transactions and the final memory against the golden
    model. Returns the stream bench's result."""
    expected_memory = copy.deepcopy(memory)
    expected = host_bridge(commands, expected_memory, config)
    dut = HostBridge(config)
    _, out_codec = stream_codecs(dut)
    bench = StreamBench(list(commands), Scoreboard(list(expected), out_codec),
                        valid_prob=valid_prob, ready_prob=ready_prob, seed=seed)
    slave = SimSlave(dut.bus, memory, random.Random(seed + 1), stall)

    async def streams(ctx):
        while not bench.finished:
            valid, payload, ready = bench.drive()
            ctx.set(dut.i.valid, valid)
            ctx.set(dut.i.payload, payload)
            ctx.set(dut.o.ready, ready)
            bench.sample(bool(ctx.get(dut.i.ready)), bool(ctx.get(dut.o.valid)),
                         lambda: ctx.get(dut.o.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(streams)
    sim.add_testbench(slave.run, background=True)
    sim.run()
    result = bench.check_complete()
    assert memory.transactions == expected_memory.transactions
    assert memory.words == expected_memory.words
    return result, expected_memory


@pytest.mark.parametrize("addr_width,valid_prob,ready_prob,stall", [
    (32, 0.7, 0.6, 0.3), (8, 1.0, 1.0, 0.0), (12, 0.4, 0.9, 0.5), (16, 1.0, 0.3, 0.2)])
def test_amaranth_sim_random_commands_match_golden(addr_width, valid_prob, ready_prob, stall,
                                                   rng):
    r = random.Random(int(rng.integers(1 << 32)))
    config = HostBridgeConfig(addr_width=addr_width)
    space = 1 << addr_width
    window = min(space, 0x200)
    hole = range(window - 0x40, window - 0x30) if space > 0x200 else range(0x80, 0x90)
    commands = random_commands(r, 60, addr_width=addr_width, window=window, hole=hole)
    memory = WordMemory(unmapped=hole)
    _, golden = simulate_bridge(commands, memory, config, seed=r.randrange(1 << 16),
                                valid_prob=valid_prob, ready_prob=ready_prob, stall=stall)
    kinds = [t[0] for t in golden.transactions]
    assert kinds.count("W") > 20 and kinds.count("R") > 20
    assert any(not memory.is_mapped(t[1]) for t in golden.transactions)


def test_amaranth_sim_edge_cases(rng):
    """256-word bursts, address bits the bridge ignores, junk between frames, a burst that
    wraps around the address space, and a WRITE cut short at the end of the stream."""
    r = random.Random(int(rng.integers(1 << 32)))
    config = HostBridgeConfig(addr_width=12)
    words = [r.getrandbits(32) for _ in range(256)]
    commands = (encode_write(0x800, words, addr_width=12) + encode_read(0x800, 256, addr_width=12)
                + b"R" + (0xFFFF_F7F3).to_bytes(4, "little") + b"\x02"  # 0x7F0, 3 words
                + b"\xff\x00" + encode_ping() + b"Q"
                + encode_write(0xFF8, [1, 2, 3, 4], addr_width=12)  # wraps to 0x000
                + encode_read(0xFFC, 2, addr_width=12)
                + encode_write(0x10, [5, 6], addr_width=12)[:-1])
    memory = WordMemory(unmapped=range(0x900, 0x908))
    _, golden = simulate_bridge(commands, memory, config, seed=3, valid_prob=0.8,
                                ready_prob=0.7, stall=0.3)
    assert ("W", 0x000, 3) in golden.transactions and ("W", 0x10, 5) in golden.transactions
    assert ("W", 0x14, 6) not in golden.transactions
    assert golden.transactions[-4:-1] == [("W", 0x4, 4), ("R", 0xFFC, 2), ("R", 0x000, 3)]


def test_amaranth_sim_timing_without_stalls(measure):
    """Cycles per word with no stalls anywhere: a write word costs its 4 input bytes (the
    AXI write overlaps the next word's bytes); a read word its 4 output bytes and one cycle
    to refill the output buffer."""
    config = HostBridgeConfig()
    words = list(range(64))
    for commands, kind in ((encode_write(0, words), "write"), (encode_read(0, 64), "read")):
        memory = WordMemory({4 * k: k for k in range(64)})
        result, _ = simulate_bridge(commands, memory, config, seed=0, valid_prob=1.0,
                                    ready_prob=1.0, stall=0.0)
        span = result.out_cycles[-1] - result.in_cycles[0] + 1
        per_word = span / 64
        measure(f"{kind}: {per_word:.2f} cycles per word without stalls")
        assert per_word <= (4.2 if kind == "write" else 5.2)


# --- Verilator: the emitted Verilog with cocotbext-axi's AxiLiteRam ---------------------------


def test_verilator_axi_lite_ram_against_golden_model(rng, measure):
    r = random.Random(int(rng.integers(1 << 32)))
    addr_width, ram_size = 16, 1 << 16
    config = HostBridgeConfig(addr_width=addr_width)
    hole = range(0x3000, 0x3100)
    commands = random_commands(r, 150, addr_width=addr_width, window=0x400, hole=hole,
                               max_count=16)
    commands += random_commands(r, 40, addr_width=addr_width, window=ram_size, hole=hole,
                                max_count=4)
    commands += (encode_write(0xFF00, [r.getrandbits(32) for _ in range(256)],
                              addr_width=addr_width)  # wraps to 0x0000
                 + encode_read(0xFE00, 256, addr_width=addr_width) + encode_ping())
    memory = WordMemory(unmapped=hole)
    expected = host_bridge(commands, memory, config)
    dut = HostBridge(config)
    _, out_codec = stream_codecs(dut)
    sim_build = build(dut, "host_bridge_a16")
    test_dir = new_test_dir("host_bridge_a16")
    seed = r.randrange(1 << 16)
    spec = {"commands": commands.hex(), "expected": expected.hex(),
            "out_codec": out_codec.to_json(),
            "transactions": memory.transactions, "words": {hex(a): v for a, v in
                                                          memory.words.items()},
            "ram_size": ram_size, "hole": [hole.start, hole.stop], "seed": seed,
            "stall": 0.3, "valid_prob": 0.7, "ready_prob": 0.6,
            "report": str(test_dir / "report.json")}
    report = run_cocotb_spec(sim_build, "host_bridge_tb", spec,
                             env_var="ACCELGEN_HOST_BRIDGE_SPEC", test_dir=test_dir, seed=seed)
    assert report["transactions"] == len(memory.transactions) and report["error"] is None
    assert report["slverr"] > 10
    measure(f"host bridge: {len(commands)} command bytes, {len(expected)} response bytes, "
            f"{report['transactions']} AXI transactions ({report['slverr']} SLVERR) in "
            f"{report['cycles']} cycles with 30% AXI wait states and stream stalls")
    shutil.rmtree(test_dir, ignore_errors=True)
