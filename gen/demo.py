"""The demos: a GEMV on the emitted PE array, and a Mamba block and an attention head on the
whole accelerator, each run under Verilator and measured there (cycles, utilization, error
against float64, bit-exactness against the golden model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from golden.fixed_point import QFormat, dequantize, quantize
from golden.pe_array import PEArrayConfig, gemm_reference, gemm_schedule, pe_array
from hw.pe_array import PEArray
from sim.backends import run_stream
from sim.payload import PayloadCodec

__all__ = ["GemvRun", "run_gemv", "run_gemm", "LayerRun", "run_layer", "SIMULATED_DMA_LATENCY"]

#: Cycles from a DMA instruction's start to its first beat with the wait-free cocotbext-axi RAM
#: the verilator backend simulates (the cycle model's ``dma_latency`` for that memory).
SIMULATED_DMA_LATENCY = 5


@dataclass(frozen=True)
class GemvRun:
    """Measured figures of one GEMV or GEMM on the array (all from the simulation)."""

    rows: int
    cols: int
    m: int
    k: int
    vectors: int          # input transactions
    cycles: int           # first input accepted .. last output taken, inclusive
    macs_per_cycle: float
    utilization: float    # useful MACs / (cycles * rows * cols)
    initiation_interval: float  # cycles between accepted inputs
    latency: list[int]    # distinct input-to-output latencies observed
    valid_prob: float
    ready_prob: float
    bit_exact: bool       # every received output word equals the golden model's
    max_abs_error: float  # dequantized result vs float64 W @ x
    max_rel_error: float  # relative to max |W @ x|
    n: int = 1            # columns of x (1: GEMV)
    simulator: str = "verilator"

    def to_json(self) -> dict:
        return asdict(self)


def run_gemv(config: PEArrayConfig, m: int, k: int, *, seed: int = 1,
             valid_prob: float = 1.0, ready_prob: float = 1.0,
             simulator: str = "verilator") -> GemvRun:
    """Run ``y = W x`` (``W``: ``m x k``) on a PE array (in Verilator unless ``simulator`` says
    ``amaranth``) and measure it.

    ``W`` and ``x`` are uniform in [-1, 1), quantized to Q0.(in_width-1) with round-to-nearest-
    even; ``y`` has ``2 * (in_width - 1)`` fraction bits.
    """
    return run_gemm(config, m, k, 1, seed=seed, valid_prob=valid_prob, ready_prob=ready_prob,
                    simulator=simulator)


def run_gemm(config: PEArrayConfig, m: int, k: int, n: int, *, seed: int = 1,
             valid_prob: float = 1.0, ready_prob: float = 1.0,
             simulator: str = "verilator") -> GemvRun:
    """Run ``Y = W X`` (``W``: ``m x k``, ``X``: ``k x n``) on a PE array and measure it.

    Inputs as in :func:`run_gemv`; ``simulator`` is ``verilator`` (the emitted Verilog, through
    cocotb) or ``amaranth``. Every output word is checked against the golden model.
    """
    rng = np.random.default_rng(seed)
    w_real = rng.uniform(-1, 1, (m, k))
    x_real = rng.uniform(-1, 1, (k, n))
    fmt = QFormat(config.in_width, config.in_width - 1, config.signed)
    w_q, x_q = quantize(w_real, fmt), quantize(x_real, fmt)

    schedule = gemm_schedule(config, w_q, x_q)
    expected, sources = pe_array(config, **schedule)
    dut = PEArray(config)
    result = run_stream(dut, "pe_array", schedule, expected, sources, simulator=simulator,
                        valid_prob=valid_prob, ready_prob=ready_prob, seed=seed)

    # The scoreboard has compared every word; decode what the hardware sent to report on it.
    received = PayloadCodec.from_shape(dut.output_layout).decode(result.out_words)
    bit_exact = len(result.out_words) == len(expected["acc"]) and bool(
        np.array_equal(received["acc"], expected["acc"]))
    # One output per (column, block of rows): the accumulators of that block's rows.
    y_hw = received["acc"].reshape(n, -1)[:, :m].T
    y = dequantize(y_hw, QFormat(64, 2 * fmt.frac))
    reference = gemm_reference(w_real, x_real)
    abs_error = float(np.max(np.abs(y - reference)))

    cycles = result.out_cycles[-1] - result.in_cycles[0] + 1
    vectors = len(result.in_cycles)
    macs = m * k * n
    return GemvRun(
        rows=config.rows, cols=config.cols, m=m, k=k, vectors=vectors, cycles=cycles,
        macs_per_cycle=macs / cycles,
        utilization=macs / (cycles * config.rows * config.cols),
        initiation_interval=(result.in_cycles[-1] - result.in_cycles[0]) / max(1, vectors - 1),
        latency=sorted({out - result.in_cycles[src]
                        for out, src in zip(result.out_cycles, sources)}),
        valid_prob=valid_prob, ready_prob=ready_prob, bit_exact=bit_exact,
        max_abs_error=abs_error,
        max_rel_error=abs_error / float(np.max(np.abs(reference))),
        n=n, simulator=simulator,
    )


@dataclass(frozen=True)
class LayerRun:
    """One layer on the accelerator: the RTL's run against the golden machine and float64."""

    layer: str
    dims: dict
    backend: str
    instructions: int
    bit_exact: bool | None  # the backend's int16 outputs equal the golden machine's (None:
                            # the backend is the golden machine)
    max_abs_error: float    # dequantized output vs the float64 reference
    rel_error: float        # max abs error / RMS of the reference output
    cycles_model: int       # golden.accelerator_cycles
    cycles_measured: int | None  # counted by the hardware (None for backend="golden")
    utilization: float      # useful PE ops / (rows * cols * modelled cycles)
    phases: dict            # phase -> {"cycles", "share", "utilization"} (modelled)
    # Streaming: DRAM bytes the program moves (read + written), the same layer's unbatched
    # plan (token_block=1: weights loaded once per token) and the DMA cycles hidden behind PE
    # work (modelled).
    dram_bytes: int = 0
    dram_bytes_unbatched: int = 0
    dma_overlap: float = 0.0
    # The simulator's speed (None for backend="golden"): its DRAM model, clock cycles
    # simulated per wall-clock second and per CPU second (CPU: with dram_model="fast" only).
    dram_model: str | None = None
    sim_cycles: int | None = None
    sim_cycles_per_second: float | None = None
    sim_cycles_per_cpu_second: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


def run_layer(layer: str, config=None, *, backend: str = "verilator", seed: int = 1,
              **verilator_options) -> LayerRun:
    """Compile a random ``mamba`` block (d_model 16, d_inner 32, d_state 4, 8 tokens) or
    ``attention`` head (d_model 16, d_head 8, 8 tokens, d_mlp 32), calibrated on its own input,
    and run it on ``backend`` and on the golden machine (``verilator_options``, e.g.
    ``dram_model``, go to :meth:`gen.runtime.Accelerator.run`)."""
    from golden.accelerator import AcceleratorConfig

    from . import compiler
    from .runtime import Accelerator

    config = config or AcceleratorConfig(dma_latency=SIMULATED_DMA_LATENCY)
    rng = np.random.default_rng(seed)
    if layer == "mamba":
        dims = compiler.MambaDims(d_model=16, d_inner=32, d_state=4, seq_len=8)
        weights = compiler.random_mamba_weights(dims, rng)
        quantize, compile_, reference = (compiler.quantize_mamba_weights,
                                         compiler.compile_mamba_block,
                                         compiler.mamba_block_reference)
    elif layer == "attention":
        dims = compiler.AttentionDims(d_model=16, d_head=8, seq_len=8, d_mlp=32)
        weights = compiler.random_attention_weights(dims, rng)
        quantize, compile_, reference = (compiler.quantize_attention_weights,
                                         compiler.compile_attention,
                                         compiler.attention_reference)
    else:
        raise ValueError(f"layer must be mamba or attention, got {layer!r}")
    x = rng.standard_normal((dims.seq_len, dims.d_model))
    quantized = quantize(weights, calibration=x, config=config)
    program = compile_(dims, quantized, config)
    unbatched = compile_(dims, quantized, config, token_block=1)
    accelerator = Accelerator(config)
    golden = accelerator.run(program, x)
    run = (golden if backend == "golden" else
           accelerator.run(program, x, backend=backend, **verilator_options))
    hw = run.hardware
    ref = reference(weights, x)
    error = float(np.max(np.abs(run.output - ref)))
    total = run.cycles.total.cycles
    return LayerRun(
        layer=layer, dims=asdict(dims), backend=backend, instructions=len(run.stats.trace),
        bit_exact=(None if backend == "golden" else
                   bool(np.array_equal(run.output_q, golden.output_q))),
        max_abs_error=error, rel_error=error / float(np.sqrt(np.mean(ref ** 2))),
        cycles_model=total, cycles_measured=run.measured_cycles,
        utilization=run.cycles.utilization,
        phases={name: {"cycles": p.cycles, "share": p.cycles / total,
                       "utilization": p.utilization}
                for name, p in run.cycles.phases.items()},
        dram_bytes=program.dram_bytes()["total"],
        dram_bytes_unbatched=unbatched.dram_bytes()["total"],
        dma_overlap=run.cycles.total.dma_overlap,
        dram_model=hw and hw.dram_model, sim_cycles=hw and hw.sim_cycles,
        sim_cycles_per_second=hw and hw.cycles_per_second,
        sim_cycles_per_cpu_second=(hw.sim_cycles / hw.sim_cpu_seconds
                                   if hw and hw.sim_cpu_seconds else None))
