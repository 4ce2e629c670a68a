"""cocotb test of an emitted host bridge with cocotbext-axi's AxiLiteRam as its slave.

``tests/test_host_bridge.py`` writes a spec (command bytes, the golden model's response bytes,
AXI transactions and final memory words, the RAM size, an address range answering SLVERR,
stall probabilities, seed, report path) and points ``ACCELGEN_HOST_BRIDGE_SPEC`` at it.

The command bytes go in with random valid gaps and the responses come out with random ready
stalls (``sim.stream.StreamBench``, checked byte by byte by a scoreboard); every AXI channel of
the RAM has random wait states; a monitor records the bridge's AXI transactions and checks its
side of the handshakes. At the end the transactions and the whole RAM must equal the model's.
"""

import json
import logging
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteRam

from sim.axi import inject_slave_errors, set_axi_stalls
from sim.payload import PayloadCodec
from sim.scoreboard import Scoreboard
from sim.stream import StreamBench, run_cocotb_bench


class AxiLiteMonitor:
    """Records ``("W", addr, data)`` / ``("R", addr, data)`` per completed transaction and
    checks the master's side: AW, W and AR held with a stable payload until ready, full
    strobes, and one transaction in flight at a time."""

    def __init__(self, dut, prefix: str):
        self.dut = dut
        self.h = {name: getattr(dut, f"{prefix}_{name}") for name in (
            "awvalid", "awready", "awaddr", "wvalid", "wready", "wdata", "wstrb", "bvalid",
            "bready", "bresp", "arvalid", "arready", "araddr", "rvalid", "rready", "rdata",
            "rresp")}
        self.transactions: list[list] = []
        self.slverr = 0
        self.cycles = 0

    async def run(self):
        h = self.h
        held = {}
        aw = w = ar = None
        while True:
            await ReadOnly()
            self.cycles += 1
            if int(self.dut.rst.value):
                await RisingEdge(self.dut.clk)
                continue
            for name, payload in (("aw", ("awaddr",)), ("w", ("wdata", "wstrb")),
                                  ("ar", ("araddr",))):
                valid = int(h[f"{name}valid"].value)
                values = [int(h[p].value) for p in payload]
                if not valid:
                    assert name not in held, f"{name}valid dropped before {name}ready"
                    continue
                assert held.get(name) in (None, values), f"{name} payload changed while waiting"
                if int(h[f"{name}ready"].value):
                    held.pop(name, None)
                    if name == "aw":
                        assert aw is None and ar is None, "AW with a transaction in flight"
                        aw = values[0]
                    elif name == "w":
                        assert w is None and values[1] == 0xF, "W in flight or partial strobe"
                        w = values[0]
                    else:
                        assert aw is None and w is None and ar is None, \
                            "AR with a transaction in flight"
                        ar = values[0]
                else:
                    held[name] = values
            if int(h["bvalid"].value) and int(h["bready"].value):
                assert aw is not None and w is not None, "B taken before AW and W"
                self.transactions.append(["W", aw, w])
                self.slverr += int(h["bresp"].value) != 0
                aw = w = None
            if int(h["rvalid"].value) and int(h["rready"].value):
                assert ar is not None, "R taken before AR"
                self.transactions.append(["R", ar, int(h["rdata"].value)])
                self.slverr += int(h["rresp"].value) != 0
                ar = None
            await RisingEdge(self.dut.clk)


@cocotb.test()
async def commands_match_golden(dut):
    """Response bytes, AXI transactions and final RAM contents equal the golden model's."""
    with open(os.environ["ACCELGEN_HOST_BRIDGE_SPEC"]) as f:
        spec = json.load(f)
    Clock(dut.clk, 10, unit="ns").start()
    ram = AxiLiteRam(AxiLiteBus.from_prefix(dut, "bus_"), dut.clk, dut.rst,
                     size=spec["ram_size"])
    for interface in (ram.write_if, ram.read_if):  # per-transaction INFO logs cost time
        interface.log.setLevel(logging.WARNING)
    set_axi_stalls(ram, spec["stall"], spec["seed"])
    inject_slave_errors(ram, *spec["hole"])
    monitor = AxiLiteMonitor(dut, "bus_")
    codec = PayloadCodec.from_json(spec["out_codec"])
    bench = StreamBench(list(bytes.fromhex(spec["commands"])),
                        Scoreboard(list(bytes.fromhex(spec["expected"])), codec),
                        valid_prob=spec["valid_prob"], ready_prob=spec["ready_prob"],
                        seed=spec["seed"])
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    cocotb.start_soon(monitor.run())
    error = None
    try:
        await run_cocotb_bench(dut, bench)
        expected = [list(t) for t in spec["transactions"]]
        for k, (got, want) in enumerate(zip(monitor.transactions, expected)):
            assert got == want, f"AXI transaction #{k}: expected {want}, got {got}"
        assert len(monitor.transactions) == len(expected), (
            f"{len(monitor.transactions)} AXI transactions, expected {len(expected)}")
        image = bytearray(spec["ram_size"])
        for addr, value in spec["words"].items():
            image[int(addr, 16):int(addr, 16) + 4] = value.to_bytes(4, "little")
        contents = ram.read(0, spec["ram_size"])
        if contents != bytes(image):
            first = next(a for a in range(0, len(image), 4)
                         if contents[a:a + 4] != image[a:a + 4])
            raise AssertionError(f"RAM word {first:#x}: expected {image[first:first + 4].hex()}"
                                 f", got {contents[first:first + 4].hex()}")
    except AssertionError as failure:
        error = str(failure)
        raise
    finally:
        with open(spec["report"], "w") as f:
            json.dump({"error": error, "cycles": bench.result.cycles,
                       "transactions": len(monitor.transactions), "slverr": monitor.slverr}, f)
