"""cocotb tests of an emitted AXI4-Lite decoder between cocotbext-axi's AxiLiteMaster (on
``bus``) and one AxiLiteRam per port (``port<k>``, as large as its region).

``tests/test_axil_decoder.py`` writes a spec (regions, address width, seed, number of
operations and concurrent rounds, stall probability, report path) and points
``ACCELGEN_AXIL_DECODER_SPEC`` at it. Every channel of the master and of each RAM stalls at
random. Each response and read word is compared with ``golden.memory.axil_decoder``'s model
(unmapped addresses: SLVERR, data 0), and at the end each RAM must hold exactly what the
model's memory for that region holds, which checks the routing and the local addresses.
The report (``{"error": ..., "tests": {name: counts}}``) collects every test's counts.
"""

import json
import logging
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiLiteRam

from golden.memory.axil_decoder import SLVERR, AXILiteDecoderModel, decode
from sim.axi import set_axi_stalls


class DecoderBench:
    """The DUT, the master, the RAMs, the golden model and the comparisons."""

    def __init__(self, dut, name: str, seed_offset: int):
        with open(os.environ["ACCELGEN_AXIL_DECODER_SPEC"]) as f:
            self.spec = json.load(f)
        self.dut, self.name = dut, name
        self.regions = [tuple(r) for r in self.spec["regions"]]
        self.addr_width = self.spec["addr_width"]
        self.model = AXILiteDecoderModel(self.regions, self.addr_width)
        seed = self.spec["seed"] + seed_offset
        self.rng = random.Random(seed)
        self.stats = {"writes": 0, "partial_writes": 0, "reads": 0, "slverr": 0,
                      "per_port": [0] * len(self.regions)}
        Clock(dut.clk, 10, unit="ns").start()
        logging.getLogger(f"cocotb.{dut._name}").setLevel(logging.WARNING)
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "bus_"), dut.clk, dut.rst)
        self.rams = [AxiLiteRam(AxiLiteBus.from_prefix(dut, f"port{k}_"), dut.clk, dut.rst,
                                size=size) for k, (_, size) in enumerate(self.regions)]
        for k, agent in enumerate([self.master, *self.rams]):
            for interface in (agent.write_if, agent.read_if):
                interface.log.setLevel(logging.WARNING)
            set_axi_stalls(agent, self.spec["pause"], seed * 16 + k)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def address(self) -> int:
        """A word address: mostly inside a region, sometimes anywhere (often unmapped)."""
        if self.rng.random() < 0.25:
            return self.rng.randrange(1 << self.addr_width) & ~3
        base, size = self.rng.choice(self.regions)
        return base + (self.rng.randrange(size) & ~3)

    def count(self, addr, response, *, read=False, partial=False):
        self.stats["reads" if read else "writes"] += 1
        self.stats["partial_writes"] += partial
        self.stats["slverr"] += response == SLVERR
        route = decode(self.model.regions, addr)
        if route is not None:
            self.stats["per_port"][route[0]] += 1

    def random_strb(self) -> int:
        """Contiguous byte lanes, as the master makes them; all four half of the time."""
        if self.rng.random() < 0.5:
            return 0xF
        first = self.rng.randrange(4)
        return ((1 << self.rng.randint(1, 4 - first)) - 1) << first

    def start_write(self, addr, data, strb):
        """Start the master's write of the lanes ``strb`` enables; returns the task."""
        first = (strb & -strb).bit_length() - 1
        payload = data.to_bytes(4, "little")[first:first + strb.bit_count()]
        return cocotb.start_soon(self.master.write(addr + first, payload))

    async def write(self, addr, data, strb=0xF):
        result = await self.start_write(addr, data, strb)
        expected = self.model.write(addr, data, strb)
        self.count(addr, expected, partial=strb != 0xF)
        assert int(result.resp) == expected, (f"write {addr:#x}: response {int(result.resp)}, "
                                              f"expected {expected}")

    async def read(self, addr):
        result = await self.master.read(addr, 4)
        check_read(addr, result, self.model.read(addr))
        self.count(addr, int(result.resp), read=True)

    def check_memories(self):
        """Each RAM holds exactly what the model's memory for its region holds."""
        for k, (ram, port) in enumerate(zip(self.rams, self.model.ports)):
            image = bytearray(port.size)
            for addr, value in port.words.items():
                image[addr:addr + 4] = value.to_bytes(4, "little")
            contents = ram.read(0, port.size)
            if contents != bytes(image):
                first = next(a for a in range(0, port.size, 4)
                             if contents[a:a + 4] != image[a:a + 4])
                raise AssertionError(f"port {k} word {first:#x}: expected "
                                     f"{image[first:first + 4].hex()}, got "
                                     f"{contents[first:first + 4].hex()}")

    def report(self, **extra):
        path = Path(self.spec["report"])
        report = json.loads(path.read_text()) if path.exists() else {"error": None,
                                                                     "tests": {}}
        report["tests"][self.name] = {**self.stats, **extra}
        path.write_text(json.dumps(report))

    def fail(self, error):
        path = Path(self.spec["report"])
        report = json.loads(path.read_text()) if path.exists() else {"tests": {}}
        report["error"] = report.get("error") or f"{self.name}: {error}"
        path.write_text(json.dumps(report))


def check_read(addr, result, expected):
    data, resp = expected
    got = int.from_bytes(result.data, "little")
    assert (got, int(result.resp)) == (data, resp), (
        f"read {addr:#x}: expected {data:#x}/{resp}, got {got:#x}/{int(result.resp)}")


@cocotb.test(timeout_time=5, timeout_unit="ms")  # a deadlock fails instead of hanging
async def random_traffic(dut):
    """Random full and partial writes and reads, in and between the regions, one at a time."""
    bench = DecoderBench(dut, "random_traffic", 0)
    try:
        await bench.reset()
        start = get_sim_time("ns")
        for _ in range(bench.spec["ops"]):
            addr = bench.address()
            if bench.rng.random() < 0.5:
                await bench.write(addr, bench.rng.getrandbits(32), bench.random_strb())
            else:
                await bench.read(addr)
        bench.check_memories()
        bench.report(cycles=int((get_sim_time("ns") - start) / 10))
    except AssertionError as error:
        bench.fail(error)
        raise


@cocotb.test(timeout_time=5, timeout_unit="ms")
async def concurrent_reads_and_writes(dut):
    """Batches of writes (queued back to back by the master) and reads in flight at the same
    time; the reads avoid the words the batch writes, so the order between them is free."""
    bench = DecoderBench(dut, "concurrent_reads_and_writes", 1)
    try:
        await bench.reset()
        rng = bench.rng
        for _ in range(bench.spec["rounds"]):
            targets = list({bench.address() for _ in range(rng.randint(1, 4))})
            writes = [(a, rng.getrandbits(32), bench.random_strb()) for a in targets]
            reads = [a for a in (bench.address() for _ in range(rng.randint(1, 4)))
                     if a not in targets]
            read_expected = [bench.model.read(a) for a in reads]
            write_expected = [bench.model.write(*w) for w in writes]
            write_tasks = [bench.start_write(*w) for w in writes]
            read_tasks = [cocotb.start_soon(bench.master.read(a, 4)) for a in reads]
            for (addr, _, strb), task, resp in zip(writes, write_tasks, write_expected):
                result = await task
                bench.count(addr, resp, partial=strb != 0xF)
                assert int(result.resp) == resp, f"write {addr:#x}: response {result.resp}"
            for addr, task, expected in zip(reads, read_tasks, read_expected):
                result = await task
                bench.count(addr, int(result.resp), read=True)
                check_read(addr, result, expected)
        bench.check_memories()
        bench.report()
    except AssertionError as error:
        bench.fail(error)
        raise
