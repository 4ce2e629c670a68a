"""Banked scratchpad: interleaving, conflicts and the XOR hash (golden); all ports at once with
random stalls, bit-exact, in the Amaranth simulator and under Verilator; measured conflicts.

The generic stream bench drives one ``i`` and one ``o`` stream, so this file has its own
multi-port bench: one ``sim.stream.StreamBench`` per port (its requests in, its read responses
checked by a scoreboard), all driven in the same cycle. In the Amaranth simulator one testbench
moves every port's values; under Verilator the cocotb test below (this module is also the cocotb
test module, run through ``sim.runner.build`` and ``sim.runner.run_cocotb_spec`` with a JSON spec)
runs ``sim.stream.run_cocotb_bench`` for every port concurrently.
"""

import json
import os
import sys
from math import gcd
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from golden.memory.scratchpad import (
    ScratchpadConfig,
    bank_of,
    conflict_rate,
    row_of,
    schedule,
    scratchpad,
    strided_addresses,
)
from hw.memory.scratchpad import Scratchpad
from sim.payload import PayloadCodec
from sim.scoreboard import MismatchError, Scoreboard
from sim.stream import StreamBench, run_cocotb_bench

SPEC_VARIABLE = "ACCELGEN_SCRATCHPAD_SPEC"


# --- Stimulus --------------------------------------------------------------------------------

def disjoint_program(config, rng, length):
    """Per port, ``length`` random reads and writes whose result does not depend on timing:
    each port reads and writes its own addresses (few of them, so a word is often read back
    right after it is written), all ports read a shared never-written set, and everyone may
    read and write the out-of-range addresses (writes there are dropped)."""
    size, top = config.size, 1 << config.addr_width
    addrs = rng.permutation(size)
    shared = addrs[:max(1, size // 8)]
    owned = np.array_split(addrs[len(shared):], config.ports)
    outside = np.arange(size, top)
    programs = []
    for p in range(config.ports):
        mine = owned[p][:16] if len(owned[p]) else shared  # an empty share: read-only
        kind = rng.random(length)
        addr = np.where(kind < 0.7, rng.choice(mine, length), rng.choice(shared, length))
        if len(outside):
            addr = np.where(kind > 0.95, rng.choice(outside, length), addr)
        write = (rng.random(length) < 0.5) & np.isin(addr, np.concatenate([mine, outside]))
        write &= len(owned[p]) > 0
        data = rng.integers(0, 1 << config.width, length, dtype=np.uint64)
        programs.append({"write": write.astype(np.int64), "addr": addr, "data": data})
    return programs


# --- The multi-port bench --------------------------------------------------------------------

def make_benches(request_codec, response_codec, inputs, expected, valid_prob, ready_prob,
                 seed):
    """One StreamBench per port (lists of payload words per port); a shared cycle budget."""
    budget = int(sum(len(i) / valid_prob + len(e) / ready_prob
                     for i, e in zip(inputs, expected)) * 4 + 1000)
    return [StreamBench(words, Scoreboard(out, response_codec), valid_prob=valid_prob,
                        ready_prob=ready_prob, seed=seed * 101 + p, max_cycles=budget)
            for p, (words, out) in enumerate(zip(inputs, expected))]


def encoded(dut, programs, expected):
    request_codec = PayloadCodec.from_shape(dut.request_layout)
    response_codec = PayloadCodec.from_shape(dut.response_layout)
    inputs = [request_codec.encode(p, count=len(p["addr"])) for p in programs]
    outputs = [response_codec.encode(e, count=len(e["data"])) for e in expected]
    return request_codec, response_codec, inputs, outputs


def run_amaranth(dut, programs, expected, *, valid_prob=1.0, ready_prob=1.0, seed=0):
    """Drive every port at once in the Amaranth simulator; return the benches' results and
    the number of cycles in which some port offered a request that was not taken."""
    from amaranth.sim import Simulator

    request_codec, response_codec, inputs, outputs = encoded(dut, programs, expected)
    benches = make_benches(request_codec, response_codec, inputs, outputs, valid_prob,
                           ready_prob, seed)
    stalled = [0]

    async def testbench(ctx):
        while not all(b.finished for b in benches):
            driven = [b.drive() for b in benches]
            for (valid, payload, ready), req, resp in zip(driven, dut.req, dut.resp):
                ctx.set(req.valid, valid)
                if valid:
                    ctx.set(req.payload.as_value(), payload)
                ctx.set(resp.ready, ready)
            readies = [bool(ctx.get(req.ready)) for req in dut.req]
            stalled[0] += any(v and not r for (v, _, _), r in zip(driven, readies))
            for b, req_ready, resp in zip(benches, readies, dut.resp):
                b.sample(req_ready, bool(ctx.get(resp.valid)),
                         lambda resp=resp: ctx.get(resp.payload.as_value()))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return [b.check_complete() for b in benches], stalled[0]


def run_verilator(dut, name, programs, expected, *, valid_prob, ready_prob, seed):
    """Build the Verilog and run this module's cocotb test on every port at once."""
    from sim.runner import build, new_test_dir, run_cocotb_spec

    request_codec, response_codec, inputs, outputs = encoded(dut, programs, expected)
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:  # the cocotb process imports this module through sys.path
        sys.path.insert(0, here)
    test_dir = new_test_dir(name)
    spec = {"request_codec": request_codec.to_json(),
            "response_codec": response_codec.to_json(),
            "inputs": [[hex(w) for w in words] for words in inputs],
            "expected": [[hex(w) for w in words] for words in outputs],
            "valid_prob": valid_prob, "ready_prob": ready_prob, "seed": seed,
            "report": str(test_dir / "report.json")}
    return run_cocotb_spec(build(dut, name), Path(__file__).stem, spec, env_var=SPEC_VARIABLE,
                           test_dir=test_dir, seed=seed)


@cocotb.test()
async def scratchpad_ports_match_golden(dut):
    """Every port's read responses equal the golden model's, with random stalls everywhere."""
    with open(os.environ[SPEC_VARIABLE]) as f:
        spec = json.load(f)
    benches = make_benches(PayloadCodec.from_json(spec["request_codec"]),
                           PayloadCodec.from_json(spec["response_codec"]),
                           [[int(w, 16) for w in words] for words in spec["inputs"]],
                           [[int(w, 16) for w in words] for words in spec["expected"]],
                           spec["valid_prob"], spec["ready_prob"], spec["seed"])
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for p in range(len(benches)):
        getattr(dut, f"req__{p}__valid").value = 0
        getattr(dut, f"resp__{p}__ready").value = 0
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    errors = []

    def report():
        with open(spec["report"], "w") as f:
            json.dump({"ports": [b.result.to_json() for b in benches],
                       "error": "; ".join(errors) or None}, f)

    async def port(p, bench):
        # A failing task ends the cocotb test at once: record the mismatch before raising.
        try:
            await run_cocotb_bench(dut, bench, in_prefix=f"req__{p}", out_prefix=f"resp__{p}")
        except MismatchError as mismatch:
            errors.append(f"port {p}: {mismatch}")
            report()
            raise

    tasks = [cocotb.start_soon(port(p, b)) for p, b in enumerate(benches)]
    for task in tasks:
        await task
    report()


# --- Golden model ----------------------------------------------------------------------------

@pytest.mark.parametrize("banks,depth,interleave", [
    (4, 256, "low-order"), (3, 10, "low-order"), (1, 7, "low-order"), (5, 1, "low-order"),
    (4, 256, "xor"), (8, 5, "xor"), (1, 3, "xor"), (16, 2, "xor"), (64, 4, "xor"),
])
def test_interleaving_is_a_bijection(banks, depth, interleave):
    config = ScratchpadConfig(banks=banks, depth=depth, interleave=interleave)
    addr = np.arange(config.size)
    bank, row = bank_of(config, addr), row_of(config, addr)
    assert bank.min() >= 0 and bank.max() < banks and row.max() < depth
    assert len(set(zip(bank.tolist(), row.tolist()))) == config.size
    assert np.all(row_of(config, np.arange(config.size, 1 << config.addr_width)) >= depth)


def test_interleaving_rules():
    low = ScratchpadConfig(banks=4, depth=16)
    assert bank_of(low, [0, 1, 2, 3, 4, 5, 63]).tolist() == [0, 1, 2, 3, 0, 1, 3]
    assert row_of(low, [0, 3, 4, 63]).tolist() == [0, 0, 1, 15]
    three = ScratchpadConfig(banks=3, depth=10)
    assert three.addr_width == 5
    assert bank_of(three, [0, 4, 29, 31]).tolist() == [0, 1, 2, 1]
    xor = ScratchpadConfig(banks=4, depth=16, interleave="xor")
    # bank = addr[1:0] ^ addr[3:2]; row = addr >> 2
    assert bank_of(xor, [0b0000, 0b0001, 0b0100, 0b0111, 0b1110, 0b110111]).tolist() == \
        [0, 1, 1, 2, 1, 2]
    assert row_of(xor, [0b0111, 0b110111]).tolist() == [1, 13]
    with pytest.raises(ValueError, match="addresses must be in 0..63"):
        bank_of(low, [64])


@pytest.mark.parametrize("banks,ports", [(4, 2), (4, 4), (8, 4), (5, 3), (16, 8)])
def test_unit_stride_is_conflict_free_with_low_order(banks, ports):
    config = ScratchpadConfig(banks=banks, ports=ports)
    for start in (0, 1, 3):
        addresses = strided_addresses(config, 1, 256, start)
        assert conflict_rate(config, addresses) == 0
        grants = schedule(config, addresses)
        assert max(g[-1] for g in grants) + 1 == 256 // ports + (256 % ports > 0)


@pytest.mark.parametrize("banks,ports", [(4, 2), (4, 4), (8, 4), (8, 8), (16, 4)])
def test_strides_low_order_versus_xor(banks, ports):
    low = ScratchpadConfig(banks=banks, ports=ports)
    xor = ScratchpadConfig(banks=banks, ports=ports, interleave="xor")
    # Low-order: a stride uses banks / gcd(stride, banks) banks; more ports than that conflict.
    for stride in (1, 2, 3, 4, banks, banks + 1, 2 * banks):
        used = banks // gcd(stride, banks)
        rate = conflict_rate(low, strided_addresses(low, stride, 512))
        assert (rate > 0) == (ports > used), (stride, rate)
    # A stride of N hits one bank: only one port is served until port 0 is done, etc.
    assert conflict_rate(low, strided_addresses(low, banks, 512)) == pytest.approx(
        1 - 1 / ports)
    # XOR: every power-of-two stride up to N spreads over all banks.
    stride = 1
    while stride <= banks:
        assert conflict_rate(xor, strided_addresses(xor, stride, 512)) == 0, stride
        stride *= 2


def test_same_cycle_same_address_lower_port_first():
    config = ScratchpadConfig(banks=4, depth=4, ports=3)
    programs = [
        {"write": [1, 1], "addr": [5, 6], "data": [11, 12]},   # cycles 0, 1
        {"write": [0, 0], "addr": [5, 6], "data": [0, 0]},     # stalled behind port 0
        {"write": [0, 1, 0], "addr": [7, 7, 7], "data": [0, 99, 0]},  # its own bank 3
    ]
    assert [g.tolist() for g in schedule(config, [p["addr"] for p in programs])] == \
        [[0, 1], [1, 2], [0, 1, 2]]
    out = scratchpad(config, programs)
    assert [o["data"].tolist() for o in out] == [[], [11, 12], [0, 99]]
    # The other way round: port 0 reads before port 1's write to the same word lands.
    programs = [{"write": [0, 0, 0], "addr": [2, 3, 2], "data": [0, 0, 0]},
                {"write": [1], "addr": [2], "data": [7]},
                {"write": [], "addr": [], "data": []}]
    assert scratchpad(config, programs)[0]["data"].tolist() == [0, 0, 7]


def test_golden_out_of_range_and_wide_words():
    config = ScratchpadConfig(banks=3, depth=10, ports=1, width=100)
    big = (1 << 100) - 1
    out = scratchpad(config, [{"write": [1, 0, 1, 0, 0], "addr": [31, 31, 29, 29, 0],
                               "data": [big, 0, big, 0, 0]}])
    assert out[0]["data"].tolist() == [0, big, 0]
    with pytest.raises(ValueError, match="data must be in"):
        scratchpad(config, [{"write": [1], "addr": [0], "data": [1 << 100]}])
    with pytest.raises(ValueError, match="addresses must be in 0..31"):
        scratchpad(config, [{"write": [1], "addr": [32], "data": [0]}])
    with pytest.raises(ValueError, match="need address streams for 1 ports"):
        schedule(config, [[0], [1]])


# --- Hardware --------------------------------------------------------------------------------

SIM_CONFIGS = [
    dict(banks=4, ports=3, depth=8, width=16),
    dict(banks=3, ports=2, depth=10, width=8),            # constant divider, out-of-range
    dict(banks=8, ports=4, depth=4, width=64, interleave="xor"),
    dict(banks=1, ports=2, depth=5, width=5),             # every pair of requests conflicts
    dict(banks=2, ports=1, depth=1, width=1),
]


@pytest.mark.parametrize("params", SIM_CONFIGS, ids=lambda p: "-".join(map(str, p.values())))
def test_amaranth_sim_bit_exact_with_stalls_on_all_ports(params, rng):
    config = ScratchpadConfig(**params)
    programs = disjoint_program(config, rng, 120)
    expected = scratchpad(config, programs)
    results, _ = run_amaranth(Scratchpad(config), programs, expected, valid_prob=0.7,
                              ready_prob=0.5, seed=len(params))
    assert [len(r.out_words) for r in results] == [len(e["data"]) for e in expected]


VERILATOR_CONFIGS = [
    dict(banks=4, ports=4, depth=64, width=32, interleave="xor"),
    dict(banks=3, ports=3, depth=10, width=16),           # constant divider, out-of-range
]


@pytest.mark.parametrize("k", range(len(VERILATOR_CONFIGS)))
def test_verilator_bit_exact_with_stalls_on_all_ports(k, rng):
    config = ScratchpadConfig(**VERILATOR_CONFIGS[k])
    programs = disjoint_program(config, rng, 400)
    expected = scratchpad(config, programs)
    report = run_verilator(Scratchpad(config), f"scratchpad{k}", programs, expected,
                           valid_prob=0.7, ready_prob=0.6, seed=k + 1)
    assert [len(p["out_words"]) for p in report["ports"]] == [len(e["data"]) for e in expected]


def test_measured_conflicts_and_schedule_equal_the_golden(measure):
    """Strides 1, 2, N, N + 1 from an aligned start (0) and a misaligned one (3): every grant
    cycle and the conflict rate measured in simulation equal the golden schedule's."""
    for banks, ports in ((4, 2), (4, 4)):
        figures = []
        for interleave in ("low-order", "xor"):
            config = ScratchpadConfig(banks=banks, ports=ports, depth=64,
                                      interleave=interleave)
            dut = Scratchpad(config)
            rates = []
            for stride in (1, 2, banks, banks + 1):
                measured = []
                for start in (0, 3):
                    addresses = strided_addresses(config, stride, 64 * ports, start)
                    programs = [{"write": np.zeros(len(a), dtype=np.int64), "addr": a,
                                 "data": np.zeros(len(a), dtype=np.int64)} for a in addresses]
                    results, stalled = run_amaranth(dut, programs, scratchpad(config, programs))
                    cycles = max(r.in_cycles[-1] for r in results) + 1
                    assert [r.in_cycles for r in results] == \
                        [g.tolist() for g in schedule(config, addresses)]
                    assert stalled / cycles == conflict_rate(config, addresses)
                    # Responses follow each grant by the latency, one per port and cycle.
                    for r in results:
                        assert (np.array(r.out_cycles) - r.in_cycles == dut.latency).all()
                    measured.append(f"{stalled / cycles:.3f}")
                rates.append(f"{stride}: {'/'.join(measured)}")
            figures.append(f"{interleave} {', '.join(rates)}")
        measure(f"scratchpad N={banks} ports={ports}: conflict rate (measured = golden) by "
                f"stride, start 0/3: {'; '.join(figures)}")


def test_full_throughput_reads_and_writes(measure):
    config = ScratchpadConfig(banks=4, ports=4, depth=16)
    dut = Scratchpad(config)
    # Each port owns bank p (addresses 4k + p): writes then reads, no conflicts, no stalls.
    programs = []
    for p in range(4):
        addr = np.tile(np.arange(16) * 4 + p, 2)
        programs.append({"write": np.repeat([1, 0], 16), "addr": addr,
                         "data": np.tile(np.arange(16) + 100 * p, 2)})
    results, stalled = run_amaranth(dut, programs, scratchpad(config, programs))
    assert stalled == 0
    per_cycle = 4 * 32 / (max(r.in_cycles[-1] for r in results) + 1)
    measure(f"scratchpad N=4 ports=4 disjoint banks: {per_cycle:.2f} requests/cycle, read "
            f"latency {dut.latency}")
    assert per_cycle == 4.0


@pytest.mark.parametrize("kwargs,message", [
    ({"banks": 0}, "banks must be in 1..64, got 0"),
    ({"banks": 65}, "banks must be in 1..64, got 65"),
    ({"width": 0}, "width must be in 1..512, got 0"),
    ({"width": 513}, "width must be in 1..512, got 513"),
    ({"depth": 0}, "depth must be in 1..65536, got 0"),
    ({"depth": 65537}, "depth must be in 1..65536, got 65537"),
    ({"ports": 0}, "ports must be in 1..8, got 0"),
    ({"ports": 9}, "ports must be in 1..8, got 9"),
    ({"interleave": "modulo"}, "interleave must be one of low-order, xor, got 'modulo'"),
    ({"banks": 6, "interleave": "xor"}, "interleave 'xor' needs banks to be a power of two"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Scratchpad(**kwargs)


def test_bad_parameter_types_are_rejected():
    with pytest.raises(TypeError, match="banks must be an integer"):
        Scratchpad(banks=4.0)
