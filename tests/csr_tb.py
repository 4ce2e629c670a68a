"""cocotb tests of an emitted CSR block through cocotbext-axi's AxiLiteMaster.

``tests/test_csr.py`` writes a spec (the register map as JSON, seed, number of operations,
stall probability, report path) and points ``ACCELGEN_CSR_SPEC`` at it. Every AXI channel
stalls at random (pause generators on AW, W, B, AR and R); every response, read word and
field port is compared with ``golden.memory.csr.CSRModel``. Addresses are word-aligned here
(the master splits an unaligned access into two beats); ``tests/test_csr.py`` covers unaligned
addresses and arbitrary strobe patterns in the Amaranth simulator.
"""

import itertools
import json
import logging
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from golden.memory.csr import SLVERR, csr_model, regmap_from_json


class CSRBench:
    """The DUT, the bus master, the golden model and the comparisons."""

    def __init__(self, dut):
        with open(os.environ["ACCELGEN_CSR_SPEC"]) as f:
            self.spec = json.load(f)
        self.dut = dut
        self.regmap = regmap_from_json(self.spec["regmap"])
        self.model = csr_model(self.regmap)
        self.rng = random.Random(self.spec["seed"])
        self.nbytes = self.regmap.strobe_width
        self.stats = {"writes": 0, "partial_writes": 0, "reads": 0, "slverr": 0,
                      "status_changes": 0, "set_pulses": 0, "w1c_clears": 0}
        Clock(dut.clk, 10, unit="ns").start()
        # The master logs every transaction at INFO: keep the log to warnings and failures.
        logging.getLogger(f"cocotb.{dut._name}.axil_").setLevel(logging.WARNING)
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axil_"), dut.clk, dut.rst)
        self.stall(self.spec["pause"])

    def stall(self, probability: float) -> None:
        """Random wait states on every channel (each its own pattern)."""
        channels = (self.master.write_if.aw_channel, self.master.write_if.w_channel,
                    self.master.write_if.b_channel, self.master.read_if.ar_channel,
                    self.master.read_if.r_channel)
        for k, channel in enumerate(channels):
            rng = random.Random(self.spec["seed"] * 10 + k)
            channel.set_pause_generator(rng.random() < probability for _ in itertools.count())

    def port(self, register, field, part=None):
        name = f"{register.name}__{field.name}" + (f"__{part}" if part else "")
        return getattr(self.dut, name)

    def inputs(self):
        """(register, field, handle) of every input the design drives: ro values, w1c sets."""
        for r in self.regmap.registers:
            for f in r.fields:
                if f.access == "ro":
                    yield r, f, self.port(r, f)
                elif f.access == "w1c":
                    yield r, f, self.port(r, f, "set")

    async def reset(self):
        self.dut.rst.value = 1
        for _, _, handle in self.inputs():
            handle.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        self.model.reset()
        await RisingEdge(self.dut.clk)

    async def check_ports(self):
        """Every rw and w1c output equals the model's field value (sampled mid-cycle)."""
        await FallingEdge(self.dut.clk)
        for r in self.regmap.registers:
            for f in r.fields:
                if f.access == "ro":
                    continue
                handle = self.port(r, f, "value" if f.access == "w1c" else None)
                got, expected = int(handle.value), self.model.field(r.name, f.name)
                assert got == expected, (f"port {r.name}.{f.name}: expected {expected:#x}, "
                                         f"got {got:#x}")

    async def write(self, address, data, strb=None):
        """A write of the bytes ``strb`` enables (contiguous, as the master makes them)."""
        full = (1 << self.nbytes) - 1
        strb = full if strb is None else strb
        first = (strb & -strb).bit_length() - 1
        count = strb.bit_count()
        assert strb == ((1 << count) - 1) << first, "the master writes contiguous bytes"
        payload = (data >> 8 * first).to_bytes(self.nbytes, "little")[:count]
        response = await self.master.write(address + first, payload)
        expected = self.model.write(address, data, strb)
        self.count(expected, partial=strb != full)
        assert int(response.resp) == expected, (f"write {address:#x}: response "
                                                f"{int(response.resp)}, expected {expected}")

    def count(self, response, *, partial=False, read=False):
        self.stats["reads" if read else "writes"] += 1
        self.stats["partial_writes"] += partial
        self.stats["slverr"] += response == SLVERR

    async def read(self, address):
        response = await self.master.read(address, self.nbytes)
        data, expected_resp = self.model.read(address)
        got = int.from_bytes(response.data, "little")
        self.count(expected_resp, read=True)
        assert int(response.resp) == expected_resp, (f"read {address:#x}: response "
                                                     f"{int(response.resp)}, expected "
                                                     f"{expected_resp}")
        assert got == data, f"read {address:#x}: expected {data:#x}, got {got:#x}"

    async def set_status(self, register, field, value):
        """Drive an ro input to ``value``, or pulse a w1c set input with ``value`` for a cycle."""
        if field.access == "ro":
            self.port(register, field).value = value
            self.stats["status_changes"] += 1
        else:
            handle = self.port(register, field, "set")
            handle.value = value
            await RisingEdge(self.dut.clk)
            handle.value = 0
            self.stats["set_pulses"] += 1
        self.model.set_status(register.name, field.name, value)
        await RisingEdge(self.dut.clk)

    def random_strb(self):
        first = self.rng.randrange(self.nbytes)
        count = self.rng.randint(1, self.nbytes - first)
        return ((1 << count) - 1) << first

    def random_data(self):
        return self.rng.getrandbits(self.regmap.data_width)

    def report(self, name, **extra):
        path = self.spec.get("report")
        if path:
            with open(f"{path}.{name}.json", "w") as f:
                json.dump({**self.stats, **extra}, f)


@cocotb.test()
async def reset_values(dut):
    """After reset every register reads its reset word and every output shows its reset."""
    bench = CSRBench(dut)
    await bench.reset()
    await bench.check_ports()
    for r in bench.regmap.registers:
        await bench.read(r.address)
    await bench.check_ports()
    bench.report("reset_values")


@cocotb.test()
async def random_traffic(dut):
    """Random full and partial writes, reads, ro input changes, w1c set pulses and clears,
    unmapped accesses (SLVERR), each compared with the golden model."""
    bench = CSRBench(dut)
    await bench.reset()
    rng, regmap = bench.rng, bench.regmap
    registers = regmap.registers
    unmapped = regmap.unmapped_addresses()
    status_fields = [(r, f) for r in registers for f in r.fields if f.access != "rw"]
    start = get_sim_time("ns")
    for _ in range(bench.spec["ops"]):
        kind = rng.choices(["write", "read", "status", "clear", "unmapped"],
                           [4, 4, 2 if status_fields else 0, 1, 1 if unmapped else 0])[0]
        register = rng.choice(registers)
        if kind == "write":
            strb = bench.random_strb() if rng.random() < 0.5 else None
            await bench.write(register.address, bench.random_data(), strb)
        elif kind == "read":
            await bench.read(register.address)
        elif kind == "status":
            r, f = rng.choice(status_fields)
            await bench.set_status(r, f, rng.getrandbits(f.width))
        elif kind == "clear":  # write 1s into w1c fields (and whatever else the word holds)
            r = rng.choice([r for r, f in status_fields if f.access == "w1c"] or registers)
            data = bench.random_data() | r.mask("w1c") if rng.random() < 0.5 else \
                bench.random_data()
            bench.stats["w1c_clears"] += 1
            await bench.write(r.address, data)
        else:
            address = rng.choice(unmapped)
            if rng.random() < 0.5:
                await bench.write(address, bench.random_data())
            else:
                await bench.read(address)
        await bench.check_ports()
    for r in registers:
        await bench.read(r.address)
    cycles = int((get_sim_time("ns") - start) / 10)
    bench.report("random_traffic", cycles=cycles)


@cocotb.test()
async def concurrent_reads_and_writes(dut):
    """Back-to-back writes (several in flight) and reads on the other channels at the same
    time: the reads target registers the writes leave alone, and unmapped addresses."""
    bench = CSRBench(dut)
    await bench.reset()
    rng, regmap = bench.rng, bench.regmap
    writable = [r for r in regmap.registers if r.mask("rw", "w1c")]
    for _ in range(bench.spec["rounds"]):
        targets = rng.sample(writable, max(1, len(writable) // 2))
        others = [r.address for r in regmap.registers if r not in targets]
        others += regmap.unmapped_addresses()[:2]
        writes = [(r.address, bench.random_data(), bench.random_strb()) for r in targets]
        expected = [bench.model.write(*w) for w in writes]  # distinct registers: any order
        reads = [rng.choice(others) for _ in range(rng.randint(1, 4))]
        read_expected = [bench.model.read(a) for a in reads]
        write_tasks = [cocotb.start_soon(bench.master.write(
            a + ((s & -s).bit_length() - 1),
            (d >> 8 * ((s & -s).bit_length() - 1)).to_bytes(bench.nbytes, "little")
            [:s.bit_count()])) for a, d, s in writes]
        read_tasks = [cocotb.start_soon(bench.master.read(a, bench.nbytes)) for a in reads]
        for (address, _, _), task, resp in zip(writes, write_tasks, expected):
            result = await task
            bench.count(resp, partial=True)
            assert int(result.resp) == resp, f"write {address:#x}: response {result.resp}"
        for address, task, (data, resp) in zip(reads, read_tasks, read_expected):
            result = await task
            bench.count(resp, read=True)
            got = int.from_bytes(result.data, "little")
            assert (got, int(result.resp)) == (data, resp), (
                f"read {address:#x}: expected {data:#x}/{resp}, got {got:#x}/{result.resp}")
        await bench.check_ports()
    for r in regmap.registers:
        await bench.read(r.address)
    bench.report("concurrent_reads_and_writes")


@cocotb.test()
async def w1c_set_then_clear(dut):
    """Each w1c bit: set by a pulse, stays set, a 0 written leaves it, a 1 written clears it,
    and a write without its byte enabled leaves it."""
    bench = CSRBench(dut)
    await bench.reset()
    for r in bench.regmap.registers:
        for f in r.fields:
            if f.access != "w1c":
                continue
            ones = (1 << f.width) - 1
            await bench.write(r.address, r.mask("w1c"))  # clear everything first
            await bench.set_status(r, f, ones)
            await bench.check_ports()
            assert bench.model.field(r.name, f.name) == ones
            await bench.write(r.address, 0)
            await bench.read(r.address)
            full = (1 << bench.nbytes) - 1
            other = full & ~sum(1 << k for k in range(f.offset // 8, f.msb // 8 + 1))
            run = other >> ((other & -other).bit_length() - 1) if other else 0
            if other and run & (run + 1) == 0:  # contiguous lanes, as the master writes them
                await bench.write(r.address, (1 << bench.regmap.data_width) - 1, strb=other)
                assert bench.model.field(r.name, f.name) == ones
                await bench.read(r.address)
            await bench.write(r.address, f.mask)
            await bench.check_ports()
            assert bench.model.field(r.name, f.name) == 0
            await bench.read(r.address)
    bench.report("w1c_set_then_clear")


@cocotb.test()
async def ro_fields_read_the_inputs(dut):
    """Reads of ro fields return what the testbench drives, and writes do not change them."""
    bench = CSRBench(dut)
    await bench.reset()
    for r in bench.regmap.registers:
        for f in r.fields:
            if f.access != "ro":
                continue
            for value in (0, (1 << f.width) - 1, bench.rng.getrandbits(f.width)):
                await bench.set_status(r, f, value)
                await bench.read(r.address)
                await bench.write(r.address, bench.random_data())
                await bench.read(r.address)
    bench.report("ro_fields_read_the_inputs")


@cocotb.test()
async def unmapped_addresses_answer_slverr(dut):
    """Every unmapped word answers SLVERR on read and write, and a write there changes
    nothing."""
    bench = CSRBench(dut)
    await bench.reset()
    for address in bench.regmap.unmapped_addresses():
        await bench.write(address, bench.random_data())
        await bench.read(address)
    for r in bench.regmap.registers:
        await bench.read(r.address)
    await bench.check_ports()
    bench.report("unmapped_addresses_answer_slverr")
