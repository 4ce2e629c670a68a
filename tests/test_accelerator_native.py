"""The verilator backend's two DRAM models agree: the native harness (``dram_model="fast"``:
a C++ AXI4 memory and host, sim/accelerator_native.py) and the cocotb testbench
(``"checked"``: cocotbext-axi's AxiRam and the AXI4 protocol checker) give the same DRAM, the
same status and the same cycles with no wait states, and both equal the golden machine.

Both builds are of the default suite's small accelerator (tests/test_accelerator.py's SMALL),
so this file adds one native build (about a minute of CPU) to the suite."""

import numpy as np
import pytest
from stimulus import SMALL_ACCELERATOR, dma_program, int16

from gen.compiler import (
    MambaDims,
    compile_mamba_block,
    quantize_mamba_weights,
    random_mamba_weights,
)
from gen.runtime import Accelerator, run_verilator
from golden.accelerator import (
    AcceleratorConfig,
    ErrorCode,
    MachineStatus,
    Opcode,
    pack,
    run_golden,
)
from sim.accelerator_native import axi_master_ports, host_plan

SMALL = AcceleratorConfig(**SMALL_ACCELERATOR, dma_latency=5)
HALT = pack(Opcode.HALT)


def _both(config, words, dram, **options):
    fast = run_verilator(config, words, dram, dram_model="fast", **options)
    checked = run_verilator(config, words, dram, dram_model="checked", **options)
    return fast, checked


def test_dram_models_agree_on_dma_programs(rng, measure):
    dram = int16(rng, (SMALL.depth // 2 + 48, SMALL.line), -3000, 3000)
    words = dma_program(rng, SMALL, len(dram))
    expected, _ = run_golden(SMALL, words, dram)
    fast, checked = _both(SMALL, words, dram, seed=3)
    assert fast.status == checked.status == MachineStatus(done=True, pc=len(words) - 1)
    assert np.array_equal(fast.dram, expected) and np.array_equal(checked.dram, expected)
    assert fast.cycles == checked.cycles
    measure(f"DMA program: {fast.cycles} cycles on both DRAM models; fast: {fast.sim_cycles} "
            f"cycles simulated at {fast.cycles_per_second:,.0f}/s (wall, loaded machine), "
            f"{fast.sim_cycles / fast.sim_cpu_seconds:,.0f} per CPU-second; checked: "
            f"{checked.sim_seconds:.1f} s for the whole cocotb run")
    # An error: a DMA store past the DRAM stops with EXT_RANGE at its pc, nothing stored.
    words = [pack(Opcode.DMA_LOAD, line=0, ext=0, lines=4),
             pack(Opcode.DMA_STORE, line=0, ext=len(dram) - 2, lines=3), HALT]
    fast, checked = _both(SMALL, words, dram)
    assert (fast.status.error, fast.status.pc) == (ErrorCode.EXT_RANGE, 1)
    assert fast.status == checked.status and fast.cycles == checked.cycles
    assert np.array_equal(fast.dram, dram) and np.array_equal(checked.dram, dram)


def test_dram_models_agree_on_a_compiled_layer(rng, measure):
    dims = MambaDims(16, 32, 4, 8)
    x = rng.normal(0, 1, (dims.seq_len, dims.d_model))
    layer = quantize_mamba_weights(random_mamba_weights(dims, rng), calibration=x,
                                   config=SMALL)
    prog = compile_mamba_block(dims, layer, SMALL)
    acc = Accelerator(SMALL)
    golden = acc.run(prog, x)
    fast = acc.run(prog, x, backend="verilator")  # dram_model="fast" is the default
    checked = acc.run(prog, x, backend="verilator", dram_model="checked")
    assert fast.hardware.dram_model == "fast" and checked.hardware.dram_model == "checked"
    assert np.array_equal(fast.output_q, golden.output_q)
    assert np.array_equal(checked.output_q, golden.output_q)
    assert fast.stats == checked.stats == golden.stats
    assert fast.measured_cycles == checked.measured_cycles
    hw = fast.hardware
    measure(f"mamba {dims}: {fast.measured_cycles} cycles on both DRAM models (model "
            f"{golden.cycles.cycles}); fast simulated {hw.sim_cycles} cycles in "
            f"{hw.sim_seconds:.3f} s wall, {hw.sim_cpu_seconds:.3f} s CPU; checked took "
            f"{checked.hardware.sim_seconds:.1f} s")


def test_fast_model_wait_states_keep_outputs_and_cost_cycles(rng):
    dram = int16(rng, (SMALL.depth // 2 + 48, SMALL.line), -3000, 3000)
    words = dma_program(rng, SMALL, len(dram))
    expected, _ = run_golden(SMALL, words, dram)
    free = run_verilator(SMALL, words, dram)
    runs = [run_verilator(SMALL, words, dram, stall=0.4, seed=seed) for seed in (1, 2)]
    for run in runs:
        assert run.status == free.status and np.array_equal(run.dram, expected)
        assert run.cycles > free.cycles
    assert runs[0].cycles != runs[1].cycles  # the seed draws other wait states


def test_fast_model_refuses_what_only_the_checked_one_has():
    with pytest.raises(ValueError, match="dram_model must be one of fast, checked, got 'x'"):
        run_verilator(SMALL, [HALT], np.zeros((4, SMALL.line)), dram_model="x")
    with pytest.raises(ValueError, match="csr_stall and waves need dram_model='checked'"):
        run_verilator(SMALL, [HALT], np.zeros((4, SMALL.line)), csr_stall=0.2)
    with pytest.raises(ValueError, match="stall and csr_stall must be in"):
        run_verilator(SMALL, [HALT], np.zeros((4, SMALL.line)), stall=1.5)


def test_host_plan_is_the_cocotb_hosts_register_accesses():
    from golden.accelerator_top import accelerator_regmap, identity_registers, program_writes

    regmap = accelerator_regmap(SMALL)
    address = {r.name: r.address for r in regmap.registers}
    plan = host_plan(SMALL, [HALT], prog_len=1, ext_lines=9, poll_cycles=32)
    ids = identity_registers(SMALL)
    assert plan[:len(ids)] == [f"expect {address[n]} {v} {n}" for n, v in ids.items()]
    writes = program_writes(regmap, [HALT])
    assert plan[len(ids):len(ids) + len(writes)] == [f"write {a} {v}" for a, v in writes]
    assert plan[-6:] == [f"write {address['prog_len']} 1", f"write {address['ext_lines']} 9",
                         f"write {address['ctrl']} 1", f"write {address['ctrl']} 0",
                         f"wait {address['status']} 32", f"read {address['cycles']} cycles"]


def test_axi_master_ports_are_the_axi4_members():
    from hw.accelerator_top import AcceleratorTop

    assert axi_master_ports(AcceleratorTop(SMALL)) == ["axi"]  # not the AXI4-Lite "axil"
