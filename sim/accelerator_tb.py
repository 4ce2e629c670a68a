"""cocotb test of the accelerator core (``hw.accelerator``) running a program against DRAM.

``gen.accelerator.run_verilator`` writes a JSON spec and points ``ACCELGEN_ACCEL_SPEC`` at it:

- ``words``: the program (hex strings), ``prog_len``: words the sequencer may run;
- ``line_bytes``: bytes per line; ``dram_in`` / ``dram_out``: binary files of the external
  memory (lines of little-endian int16) before / after the run, at address 0 of a cocotbext-axi
  ``AxiRam``; ``ext_lines``: DRAM size in lines, for the range check;
- ``stall``: wait-state probability of every AXI channel; ``seed``; ``max_cycles``;
- ``report``: where to write ``{status: [done, error, code, pc], cycles, failure}``.

:class:`sim.axi.AxiProtocolChecker` watches every AXI cycle of the DMA port.
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, First, RisingEdge, Timer

from sim.axi import AxiProtocolChecker, attach_axi_ram


@cocotb.test()
async def accelerator_program(dut):
    """Load the program, start, wait for done or error; report status, cycles and DRAM."""
    spec = json.loads(Path(os.environ["ACCELGEN_ACCEL_SPEC"]).read_text())
    report = {"status": None, "cycles": None, "failure": None}
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    for name in ("prog_we", "host_we", "start"):
        getattr(dut, name).value = 0
    image = Path(spec["dram_in"]).read_bytes()
    ram = attach_axi_ram(dut, "axi_", dut.clk, dut.rst, size=max(len(image), 4096),
                         stall=spec["stall"], seed=spec["seed"])
    ram.write(0, image)
    beat_bits = len(dut.axi__wdata)
    checker = AxiProtocolChecker(dut, "axi_", dut.clk, dut.rst, data_width=beat_bits)
    checker.start()
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    try:
        for address, word in enumerate(spec["words"]):
            dut.prog_we.value = 1
            dut.prog_addr.value = address
            dut.prog_data.value = int(word, 16)
            await RisingEdge(dut.clk)
        dut.prog_we.value = 0
        dut.prog_len.value = spec["prog_len"]
        dut.ext_lines.value = spec["ext_lines"]
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await RisingEdge(dut.clk)
        if dut.busy.value:
            timeout = Timer(10 * spec["max_cycles"], unit="ns")
            assert await First(FallingEdge(dut.busy), timeout) is not timeout, \
                f"still busy after {spec['max_cycles']} cycles (pc {int(dut.pc.value)})"
        await ClockCycles(dut.clk, 2)
        report["status"] = [int(getattr(dut, s).value) for s in ("done", "error", "code", "pc")]
        report["cycles"] = int(dut.cycles.value)
        checker.check_complete()
        Path(spec["dram_out"]).write_bytes(ram.read(0, len(image)))
    except AssertionError as error:
        report["failure"] = str(error)
        raise
    finally:
        if checker.errors and not report["failure"]:
            report["failure"] = checker.errors[0]
        Path(spec["report"]).write_text(json.dumps(report))
