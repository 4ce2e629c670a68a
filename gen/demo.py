"""The GEMV demo: quantize a random layer, run it on the emitted PE array under Verilator, and
measure cycles, MACs per cycle, utilization and error, all from the simulation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from golden.fixed_point import QFormat, dequantize, quantize
from golden.pe_array import PEArrayConfig, gemm_reference, gemm_schedule, pe_array
from hw.pe_array import PEArray
from sim.payload import PayloadCodec
from sim.runner import run_stream_test

__all__ = ["GemvRun", "run_gemv"]


@dataclass(frozen=True)
class GemvRun:
    """Measured figures of one GEMV on the array (all from the Verilator run)."""

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

    def to_json(self) -> dict:
        return asdict(self)


def run_gemv(config: PEArrayConfig, m: int, k: int, *, seed: int = 1,
             valid_prob: float = 1.0, ready_prob: float = 1.0) -> GemvRun:
    """Run ``y = W x`` (``W``: ``m x k``) on a PE array in Verilator and measure it.

    ``W`` and ``x`` are uniform in [-1, 1), quantized to Q0.(in_width-1) with round-to-nearest-
    even; ``y`` has ``2 * (in_width - 1)`` fraction bits.
    """
    rng = np.random.default_rng(seed)
    w_real = rng.uniform(-1, 1, (m, k))
    x_real = rng.uniform(-1, 1, k)
    fmt = QFormat(config.in_width, config.in_width - 1, config.signed)
    w_q, x_q = quantize(w_real, fmt), quantize(x_real, fmt)

    schedule = gemm_schedule(config, w_q, x_q.reshape(-1, 1))
    expected, sources = pe_array(config, **schedule)
    dut = PEArray(config)
    result = run_stream_test(dut, "pe_array", schedule, expected, sources,
                             valid_prob=valid_prob, ready_prob=ready_prob, seed=seed)

    # The scoreboard has compared every word; decode what the hardware sent to report on it.
    received = PayloadCodec.from_shape(dut.output_layout).decode(result.out_words)
    bit_exact = len(result.out_words) == len(expected["acc"]) and bool(
        np.array_equal(received["acc"], expected["acc"]))
    y_hw = received["acc"].reshape(-1)[:m]
    y = dequantize(y_hw, QFormat(64, 2 * fmt.frac))
    reference = gemm_reference(w_real, x_real.reshape(-1, 1))[:, 0]
    abs_error = float(np.max(np.abs(y - reference)))

    cycles = result.out_cycles[-1] - result.in_cycles[0] + 1
    vectors = len(result.in_cycles)
    return GemvRun(
        rows=config.rows, cols=config.cols, m=m, k=k, vectors=vectors, cycles=cycles,
        macs_per_cycle=m * k / cycles,
        utilization=m * k / (cycles * config.rows * config.cols),
        initiation_interval=(result.in_cycles[-1] - result.in_cycles[0]) / max(1, vectors - 1),
        latency=sorted({out - result.in_cycles[src]
                        for out, src in zip(result.out_cycles, sources)}),
        valid_prob=valid_prob, ready_prob=ready_prob, bit_exact=bit_exact,
        max_abs_error=abs_error,
        max_rel_error=abs_error / float(np.max(np.abs(reference))),
    )
