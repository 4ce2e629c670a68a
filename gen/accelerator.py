"""The accelerator's Python API: run a compiled layer on a backend and report its cycles.

Example::

    acc = Accelerator(AcceleratorConfig(rows=4, cols=8))
    weights_q = quantize_mamba_weights(weights, calibration=x_sample)
    prog = compile_mamba_block(dims, weights_q, acc.config)
    result = acc.run(prog, x)            # backend="golden": the bit-exact NumPy machine
    result.output, result.cycles.table()

Only ``backend="golden"`` exists so far; the RTL backend (``"verilator"``) is added with the
hardware and must reproduce the golden outputs bit for bit and its cycles within 5 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.accelerator import AcceleratorConfig, RunStats, run_golden
from golden.accelerator_cycles import CycleReport, program_cycles
from golden.fixed_point import dequantize, quantize

from .compiler import Program

__all__ = ["BACKENDS", "Accelerator", "RunResult"]

#: Backends :meth:`Accelerator.run` accepts.
BACKENDS = ("golden",)


@dataclass
class RunResult:
    """Outcome of :meth:`Accelerator.run`.

    Attributes
    ----------
    output : numpy.ndarray of float64, shape ``(seq_len, d_model)``
        The layer output (dequantized).
    output_q : numpy.ndarray of int64
        The raw int16 outputs, in ``program.output_format``.
    input_q : numpy.ndarray of int64
        The raw inputs the accelerator received.
    stats : RunStats
        Final status and executed instructions.
    cycles : CycleReport
        Predicted cycles and PE utilization per phase.
    """

    output: np.ndarray
    output_q: np.ndarray
    input_q: np.ndarray
    stats: RunStats
    cycles: CycleReport


class Accelerator:
    """An accelerator instance of a given configuration.

    Parameters
    ----------
    config : AcceleratorConfig, optional
        Or its fields as keywords.
    """

    def __init__(self, config: AcceleratorConfig | None = None, **params):
        self.config = AcceleratorConfig.coerce(config, **params)

    def run(self, program: Program, inputs, backend: str = "golden") -> RunResult:
        """Run ``program`` on ``inputs`` (float, ``(seq_len, d_model)``).

        Raises
        ------
        ValueError
            Unknown backend, a program compiled for another config, or an input of the wrong
            shape.
        RuntimeError
            If the machine stops with an error status (never for a compiled program).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if not isinstance(program, Program):
            raise TypeError(f"program must be a Program (from gen.compiler), got {program!r:.60}")
        if program.config != self.config:
            raise ValueError(f"the program was compiled for {program.config}, not for this "
                             f"accelerator's {self.config}")
        x = np.asarray(inputs, dtype=np.float64)
        if x.shape != program.input_shape:
            raise ValueError(f"shape mismatch: inputs have shape {x.shape}, expected "
                             f"(seq_len, d_model) = {program.input_shape}")
        x_q = quantize(x, program.input_format)
        dram, stats = run_golden(self.config, program.words, program.dram(x_q))
        if not stats.status.done:
            raise RuntimeError(f"the accelerator stopped with error {stats.status.error.name} "
                               f"at pc {stats.status.pc}: {stats.status.message}")
        out_q = program.output(dram)
        phases = [program.phases[pc] for pc, _ in stats.trace]
        cycles = program_cycles(self.config, [ins for _, ins in stats.trace], phases)
        return RunResult(dequantize(out_q, program.output_format), out_q, x_q, stats, cycles)
