"""cocotb test of the AXI4 DMA (``hw.memory.dma``) against a cocotbext-axi AxiRam.

``tests/test_dma.py`` writes a JSON spec and points ``ACCELGEN_DMA_SPEC`` at it:

- ``config``: the DMAConfig fields; ``cmd_codec``: the command payload layout
  (``sim.payload.PayloadCodec.to_json``); ``commands``: a list of
  ``{write, ext_addr, local_addr, length}``;
- ``ram_size``: bytes of the AxiRam; ``ext_init`` / ``ext_out``: binary files holding the
  external memory from address 0 before / after the run (the window the test compares);
- ``local_init`` / ``local_out``: binary files of the scratchpad (``local_depth`` words of
  little-endian bytes) written through the ``local`` port before and read back after the
  commands, or null to skip;
- ``stall``: wait-state probability of every AXI channel (or a dict per channel);
  ``cmd_valid_prob`` / ``done_ready_prob``: how often the testbench offers the next command /
  takes a completion; ``fault``: ``[start, end)`` addresses answering SLVERR, or null;
  ``seed``; ``max_cycles``; ``report``: where to write the results.

The commands go through ``cmd`` back to back (the DMA takes one when idle) while completions
are taken from ``done``; :class:`sim.axi.AxiProtocolChecker` checks every AXI cycle and
records the bursts. The report holds each completion's error flag, the cycles at which each
command was accepted and completed, and the AR/AW burst sequences; the pytest side compares
all of it, and the memory files, with the golden model.
"""

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from sim.axi import AxiProtocolChecker, attach_axi_ram, inject_slave_errors


def pack(codec: dict, values: dict) -> int:
    """A payload word from field values (Python ints: fields may be 64 bits wide)."""
    word = 0
    for field in codec["fields"]:
        value = int(values[field["name"]])
        assert 0 <= value < 1 << field["width"], (field["name"], value)
        word |= value << field["offset"]
    return word


async def write_local(dut, words: list[int]):
    """Write the scratchpad through the local port, a word per cycle from address 0."""
    for address, word in enumerate(words):
        dut.local__addr.value = address
        dut.local__wdata.value = word
        dut.local__we.value = 1
        await RisingEdge(dut.clk)
    dut.local__we.value = 0


async def read_local(dut, count: int) -> list[int]:
    """Read ``count`` scratchpad words from address 0 (the port has one cycle of latency)."""
    words = []
    for address in range(count + 1):
        if address < count:
            dut.local__addr.value = address
        await ReadOnly()
        if address:
            words.append(int(dut.local__rdata.value))
        await RisingEdge(dut.clk)
    return words


async def run_commands(dut, words, rng, *, valid_prob, ready_prob, max_cycles, result):
    """Offer the commands on ``cmd`` and take completions from ``done``, with random stalls;
    fill ``result`` with accept cycles, done cycles and error flags."""
    index, valid, cycle = 0, False, 0
    while len(result["errors"]) < len(words):
        assert cycle < max_cycles, (f"timeout after {cycle} cycles: {index} commands accepted, "
                                    f"{len(result['errors'])} completed")
        if not valid and index < len(words) and (valid_prob >= 1 or rng.random() < valid_prob):
            valid = True
            dut.cmd__payload.value = words[index]
        dut.cmd__valid.value = int(valid)
        ready = ready_prob >= 1 or rng.random() < ready_prob
        dut.done__ready.value = int(ready)
        await ReadOnly()
        if valid and dut.cmd__ready.value:
            result["accept_cycles"].append(cycle)
            index += 1
            valid = False
        if ready and dut.done__valid.value:
            assert len(result["errors"]) < len(result["accept_cycles"]), \
                f"a completion without a command (cycle {cycle})"
            result["errors"].append(int(dut.done__payload.value))
            result["done_cycles"].append(cycle)
        await RisingEdge(dut.clk)
        cycle += 1
    dut.cmd__valid.value = 0
    dut.done__ready.value = 0


@cocotb.test()
async def dma_commands(dut):
    """Every command completes with the expected error flag; bursts and data are recorded."""
    spec = json.loads(Path(os.environ["ACCELGEN_DMA_SPEC"]).read_text())
    config = spec["config"]
    beat_bytes = config["data_width"] // 8
    result = {"errors": [], "accept_cycles": [], "done_cycles": [], "ar_bursts": [],
              "aw_bursts": [], "failure": None}

    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.cmd__valid.value = 0
    dut.done__ready.value = 0
    dut.local__we.value = 0
    dut.local__addr.value = 0
    dut.local__wdata.value = 0
    ram = attach_axi_ram(dut, "axi_", dut.clk, dut.rst, size=spec["ram_size"],
                         stall=spec["stall"], seed=spec["seed"])
    ram.write(0, Path(spec["ext_init"]).read_bytes())
    if spec["fault"]:
        inject_slave_errors(ram, *spec["fault"])
    checker = AxiProtocolChecker(dut, "axi_", dut.clk, dut.rst, max_burst=config["max_burst"],
                                 data_width=config["data_width"],
                                 max_reads=config["outstanding"],
                                 max_writes=config["outstanding"])
    checker.start()
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)

    try:
        if spec["local_init"]:
            data = Path(spec["local_init"]).read_bytes()
            await write_local(dut, [int.from_bytes(data[k:k + beat_bytes], "little")
                                    for k in range(0, len(data), beat_bytes)])
        words = [pack(spec["cmd_codec"], c) for c in spec["commands"]]
        await run_commands(dut, words, random.Random(spec["seed"]),
                           valid_prob=spec["cmd_valid_prob"],
                           ready_prob=spec["done_ready_prob"],
                           max_cycles=spec["max_cycles"], result=result)
        await ClockCycles(dut.clk, 16)  # anything after the last completion is an error
        assert not dut.busy.value, "busy after the last completion"
        checker.check_complete()
        if spec["local_out"]:
            local = await read_local(dut, config["local_depth"])
            Path(spec["local_out"]).write_bytes(
                b"".join(w.to_bytes(beat_bytes, "little") for w in local))
        window = len(Path(spec["ext_init"]).read_bytes())
        Path(spec["ext_out"]).write_bytes(ram.read(0, window))
    except AssertionError as error:
        result["failure"] = str(error)
        raise
    finally:
        if checker.errors and not result["failure"]:
            result["failure"] = checker.errors[0]
        result["ar_bursts"] = checker.ar_bursts
        result["aw_bursts"] = checker.aw_bursts
        result["checker_errors"] = checker.errors
        result["cycles"] = checker.cycle
        Path(spec["report"]).write_text(json.dumps(result))
        dut._log.info("%d commands, %d AR and %d AW bursts, %d cycles",
                      len(result["errors"]), len(checker.ar_bursts), len(checker.aw_bursts),
                      checker.cycle)
