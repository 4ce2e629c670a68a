"""The accelerator top: register map and host protocol from the config, the program run through
the AXI4-Lite registers in the Amaranth simulator, and `accelgen emit accelerator`.

The Verilator runs of the top (every program the verilator backend runs goes through it) are
in tests/test_accelerator.py."""

import json

import numpy as np
import pytest
from amaranth.sim import Simulator
from stimulus import SMALL_ACCELERATOR, dma_program, int16

from gen.cli import main
from golden.accelerator import (
    INSTRUCTION_BITS,
    AcceleratorConfig,
    ErrorCode,
    MachineStatus,
    Opcode,
    pack,
    run_golden,
)
from golden.accelerator_cycles import program_cycles
from golden.accelerator_top import (
    MODEL_PARAMETERS,
    accelerator_regmap,
    decode_status,
    design_fingerprint,
    identity_registers,
    program_writes,
)
from golden.host_top import MAGIC
from golden.memory.csr import regmap_from_json
from hw.accelerator_top import AcceleratorTop
from sim.accelerator_host import HostProtocolError, amaranth_host
from sim.amaranth_sim import AxiLiteSimMaster, AxiSimRam

HALT = pack(Opcode.HALT)
# dma_latency: cycles to a DMA's first beat (AxiSimRam answers like a wait-free AxiRam).
TINY = AcceleratorConfig(rows=2, cols=4, depth=32, max_program=32, dma_latency=5)


def test_regmap_follows_the_config():
    regmap = accelerator_regmap(TINY)
    names = [r.name for r in regmap.registers]
    assert names[:13] == ["id", "design", "ctrl", "status", "cycles", "prog_len", "ext_lines",
                          "prog_addr", "prog_data0", "prog_data1", "prog_data2", "prog_data3",
                          "prog_ctrl"]
    assert [r.address for r in regmap.registers] == [4 * k for k in range(len(names))]
    assert (regmap.addr_width, regmap.data_width) == (12, 32)
    params = {n[2:] for n in names if n.startswith("p_")}
    assert params == {"rows", "cols", "depth", "decoupled", "max_program", "max_k",
                      "tree_levels_per_stage", "softmax_max_len", "layernorm_max_len",
                      "issue_cycles", "pe_latency", "read_latency"}
    assert not params & MODEL_PARAMETERS and "acc_width" not in params  # None: derived
    # Widths follow the config: prog_len reaches max_program, prog_addr the last word.
    assert regmap.register("prog_len").field("value").width == 6
    assert regmap.register("prog_addr").field("value").width == 5
    ids = identity_registers(TINY)
    assert ids["id"] == MAGIC and ids["p_cols"] == 4 and ids["p_max_program"] == 32
    # The fingerprint covers the hardware, not the cycle model's memory latency.
    assert design_fingerprint(TINY) != design_fingerprint(AcceleratorConfig(rows=2, cols=8,
                                                                            depth=32,
                                                                            max_program=32))
    assert design_fingerprint(TINY) == design_fingerprint(AcceleratorConfig(
        rows=2, cols=4, depth=32, max_program=32, dma_latency=40))


def test_program_writes_carry_each_word(rng):
    regmap = accelerator_regmap(TINY)
    reg = {r.address: r.name for r in regmap.registers}
    words = [int(w) for w in rng.integers(0, 1 << 62, 5)] + [(1 << INSTRUCTION_BITS) - 1, HALT]
    # Replay the writes like the top does: the word is stored on a rising edge of the strobe.
    values, stored, strobe = {}, {}, 0
    for address, value in program_writes(regmap, words, first=3):
        values[reg[address]] = value
        if reg[address] == "prog_ctrl":
            if value and not strobe:
                stored[values["prog_addr"]] = sum(values[f"prog_data{k}"] << (32 * k)
                                                  for k in range(4))
            strobe = value
    assert stored == {3 + k: w for k, w in enumerate(words)}
    with pytest.raises(ValueError, match="program word 4 must be in 0..2\\*\\*128 - 1"):
        program_writes(regmap, [HALT, 1 << 128], first=3)


@pytest.mark.parametrize("status", [MachineStatus(), MachineStatus(done=True, pc=17),
                                    MachineStatus(error=ErrorCode.EXT_RANGE, pc=65535),
                                    MachineStatus(error=ErrorCode.PC_RANGE, pc=3)])
def test_status_word_is_the_machine_status_plus_busy(status):
    for busy in (False, True):
        decoded, got_busy = decode_status(status.word | busy << 2)
        assert got_busy == busy
        assert (decoded.done, decoded.error, decoded.pc) == (status.done, status.error,
                                                             status.pc)


@pytest.mark.parametrize("params,message", [
    ({"issue_cycles": 1}, "issue_cycles must be at least 2 for the hardware, got 1"),
    ({"rows": 3}, "rows must be a power of two, got 3"),
])
def test_top_rejects_configs_it_cannot_build(params, message):
    with pytest.raises(ValueError, match=message):
        AcceleratorTop(**params)


def simulate_top(config, dram, body, *, host_config=None, rng=None):
    """Run ``await body(host)`` against one top in the Amaranth simulator and return its
    result and the DRAM afterwards. The host (sim.accelerator_host over AxiLiteSimMaster,
    expecting ``host_config``, by default ``config``) has random wait states on the AXI4-Lite
    channels when ``rng`` is given; an AxiSimRam holds ``dram``."""
    top = AcceleratorTop(config)
    memory = bytearray(np.asarray(dram).astype("<i2").tobytes())
    ram = AxiSimRam(top.axi, memory)
    result = []

    async def bench(ctx):
        if rng is None:
            master = AxiLiteSimMaster(ctx, top.axil)
        else:
            master = AxiLiteSimMaster(ctx, top.axil, wait=lambda: int(rng.integers(0, 3)),
                                      ready=lambda: rng.random() < 0.7)
        result.append(await body(amaranth_host(host_config or config, master)))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.add_testbench(ram.serve_reads, background=True)
    sim.add_testbench(ram.serve_writes, background=True)
    sim.run()
    after = np.frombuffer(bytes(memory), dtype="<i2").astype(np.int64)
    return result[0], after.reshape(-1, config.line)


def test_amaranth_sim_runs_programs_through_the_registers(rng, measure):
    config = TINY
    dram = int16(rng, (config.depth // 2 + 16, config.line), -3000, 3000)
    words = dma_program(rng, config, len(dram))
    expected, stats = run_golden(config, words, dram)
    error_program = [pack(Opcode.NL, lines=1), pack(Opcode.DMA_STORE, line=0, ext=len(dram),
                                                    lines=1), HALT]

    async def body(host):
        kwargs = dict(ext_lines=len(dram), poll_cycles=8, max_cycles=20_000)
        return [await host.run(words, **kwargs), await host.run(error_program, **kwargs),
                await host.run(words, prog_len=4, **kwargs)]

    results, after = simulate_top(config, dram, body, rng=rng)
    assert np.array_equal(after, expected)  # the later runs stored nothing
    (status, cycles), (error, _), (cut, _) = results
    assert status == MachineStatus(done=True, pc=len(words) - 1)
    assert (error.error, error.pc, cut.error, cut.pc) == (ErrorCode.EXT_RANGE, 1,
                                                          ErrorCode.PC_RANGE, 4)
    model = program_cycles(config, [i for _, i in stats.trace]).cycles
    measure(f"{len(words)} instructions through the AXI4-Lite registers: {cycles} cycles "
            f"counted by the core, {model} modelled")
    dmas = sum(i.opcode in (Opcode.DMA_LOAD, Opcode.DMA_STORE) for _, i in stats.trace)
    assert abs(cycles - model) <= dmas  # the sim RAM's latency is the model's +-1 cycle


def test_amaranth_sim_program_writes_while_busy_are_dropped(rng):
    config = TINY
    dram = int16(rng, (config.depth // 2 + 16, config.line), -3000, 3000)
    words = dma_program(rng, config, len(dram))
    once, _ = run_golden(config, words, dram)
    twice, _ = run_golden(config, words, once)

    async def body(host):
        await host.load_program(words)
        runs = []
        for _ in range(2):
            await host.start(len(words), len(dram))
            await host.load_program([0, 0])  # zeros are illegal words, if they were stored
            _, busy = await host.status()
            runs.append((busy, await host.wait_stopped(poll_cycles=8, max_cycles=20_000)))
        return runs

    runs, after = simulate_top(config, dram, body)
    done = MachineStatus(done=True, pc=len(words) - 1)
    assert runs == [(True, done), (True, done)]  # still busy after the writes; not stored
    assert np.array_equal(after, twice)


def test_amaranth_sim_host_refuses_other_hardware():
    other = AcceleratorConfig(rows=2, cols=4, depth=32, max_program=32, softmax_max_len=64)

    async def body(host):
        await host.check_identity()

    with pytest.raises(HostProtocolError, match="register design reads .* the hardware is not "
                                                "built from this config"):
        simulate_top(TINY, np.zeros((1, TINY.line)), body, host_config=other)


def test_emit_accelerator_writes_verilog_manifest_and_register_map(tmp_path, capsys):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL_ACCELERATOR.items()]
    assert main(["emit", "accelerator", *flags, "-o", str(tmp_path)]) == 0
    assert "latency variable" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "accelerator.json", "accelerator.v", "accelerator_csr.h", "accelerator_csr.py",
        "accelerator_csr_regmap.json"]
    config = AcceleratorConfig(**SMALL_ACCELERATOR)
    regmap = regmap_from_json((tmp_path / "accelerator_csr_regmap.json").read_text())
    assert regmap == accelerator_regmap(config)
    manifest = json.loads((tmp_path / "accelerator.json").read_text())
    assert manifest["parameters"] == config.to_dict() and manifest["latency"] is None
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["axil__awaddr"] == {"name": "axil__awaddr", "direction": "input", "width": 12}
    assert ports["axi__wdata"]["width"] == config.dma_config.data_width
    header = (tmp_path / "accelerator_csr.h").read_text()
    assert "#define ACCELERATOR_CSR_PROG_CTRL_OFFSET 0x30u" in header
