"""cocotb test of the accelerator top (``hw.accelerator_top``) running a program against DRAM,
driven like software on a SoC drives it: through its AXI4-Lite registers.

``gen.runtime.run_verilator`` writes a JSON spec and points ``ACCELGEN_ACCEL_SPEC`` at it:

- ``config``: the ``AcceleratorConfig`` (its register map and identity registers);
- ``words``: the program (hex strings), ``prog_len``: words the sequencer may run;
- ``dram_in`` / ``dram_out``: binary files of the external memory (lines of little-endian
  int16) before / after the run, at address 0 of a cocotbext-axi ``AxiRam``; ``ext_lines``:
  DRAM size in lines, for the range check;
- ``stall``: wait-state probability of every AXI4 channel of the DRAM; ``csr_stall``: of
  every AXI4-Lite channel of the register port; ``seed``; ``max_cycles``; ``poll_cycles``:
  cycles between status polls;
- ``report``: where to write ``{status: [done, error, code, pc], cycles, failure,
  sim_cycles}`` (``sim_cycles``: clock cycles simulated in all).

The host (:class:`sim.accelerator_host.AcceleratorHost` on a cocotbext-axi ``AxiLiteMaster``)
checks the identity registers, loads the program through the program-load window, starts,
polls ``status`` and reads the core's cycle counter. :class:`sim.axi.AxiProtocolChecker`
watches every cycle of the DRAM port.
"""

import json
import logging
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from golden.accelerator import AcceleratorConfig
from sim.accelerator_host import cocotb_host
from sim.axi import AxiProtocolChecker, attach_axi_ram, random_pauses


def _axi_lite_master(dut, stall: float, seed: int) -> AxiLiteMaster:
    # The master logs every transaction at INFO: keep the log to warnings and failures.
    logging.getLogger(f"cocotb.{dut._name}.axil_").setLevel(logging.WARNING)
    master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "axil_"), dut.clk, dut.rst)
    channels = (master.write_if.aw_channel, master.write_if.w_channel,
                master.write_if.b_channel, master.read_if.ar_channel,
                master.read_if.r_channel)
    for k, channel in enumerate(channels):
        if stall > 0:
            channel.set_pause_generator(random_pauses(stall, random.Random(seed * 10 + k)))
    return master


@cocotb.test()
async def accelerator_program(dut):
    """Load the program over AXI4-Lite, start, poll until done or error; report status,
    cycles and DRAM."""
    spec = json.loads(Path(os.environ["ACCELGEN_ACCEL_SPEC"]).read_text())
    config = AcceleratorConfig.from_dict(spec["config"])
    report = {"status": None, "cycles": None, "failure": None, "sim_cycles": None}
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    image = Path(spec["dram_in"]).read_bytes()
    ram = attach_axi_ram(dut, "axi_", dut.clk, dut.rst, size=max(len(image), 4096),
                         stall=spec["stall"], seed=spec["seed"])
    ram.write(0, image)
    checker = AxiProtocolChecker(dut, "axi_", dut.clk, dut.rst, data_width=len(dut.axi__wdata))
    checker.start()
    host = cocotb_host(config, _axi_lite_master(dut, spec["csr_stall"], spec["seed"]), dut.clk)
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    try:
        status, cycles = await host.run([int(w, 16) for w in spec["words"]],
                                        prog_len=spec["prog_len"], ext_lines=spec["ext_lines"],
                                        poll_cycles=spec["poll_cycles"],
                                        max_cycles=spec["max_cycles"])
        report["status"] = [int(status.done), int(bool(status.error)), int(status.error),
                            status.pc]
        report["cycles"] = cycles
        checker.check_complete()
        Path(spec["dram_out"]).write_bytes(ram.read(0, len(image)))
    except AssertionError as error:
        report["failure"] = str(error)
        raise
    finally:
        report["sim_cycles"] = int(get_sim_time(unit="ns")) // 10  # the 10 ns clock's cycles
        if checker.errors and not report["failure"]:
            report["failure"] = checker.errors[0]
        Path(spec["report"]).write_text(json.dumps(report))
