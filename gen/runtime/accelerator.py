"""The accelerator's Python API: run a compiled layer on a backend and report its cycles.

Example::

    acc = Accelerator(AcceleratorConfig(rows=4, cols=8))
    weights_q = quantize_mamba_weights(weights, calibration=x_sample)
    prog = compile_mamba_block(dims, weights_q, acc.config)
    result = acc.run(prog, x)            # backend="golden": the bit-exact NumPy machine
    result.output, result.cycles.table()

``backend="golden"`` runs the bit-exact NumPy machine; ``backend="verilator"`` runs the RTL
(:class:`hw.accelerator_top.AcceleratorTop`, emitted as Verilog, under Verilator: the host
loads the program and polls the status through the AXI4-Lite registers:
:func:`run_verilator`), reproduces the golden outputs bit for bit and reports the cycles the
core counted in :attr:`RunResult.measured_cycles`. Its DRAM model (:data:`DRAM_MODELS`):

- ``"fast"`` (default): a native executable, no Python per cycle: a C++ AXI4 memory and a
  C++ host (:mod:`sim.accelerator_native`); optional seeded DRAM wait states;
- ``"checked"``: the cocotb testbench, a cocotbext-axi ``AxiRam`` watched by an AXI4 protocol
  checker, wait states on the DRAM and on the register port, waves.

With no wait states both give the same outputs and the same cycles.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field, replace

import numpy as np

from golden.accelerator import (
    AcceleratorConfig,
    ErrorCode,
    MachineStatus,
    RunStats,
    run_golden,
    unpack,
)
from golden.accelerator_cycles import CycleReport, program_cycles
from golden.accelerator_top import decode_status
from golden.fixed_point import dequantize, quantize

from ..compiler import Program

__all__ = ["BACKENDS", "DRAM_MODELS", "Accelerator", "RunResult", "ModelRun", "HardwareRun",
           "run_verilator"]


#: Backends :meth:`Accelerator.run` accepts.
BACKENDS = ("golden", "verilator")
#: DRAM models of the verilator backend, the first the default.
DRAM_MODELS = ("fast", "checked")


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
    measured_cycles : int or None
        Cycles the RTL took from start to HALT (``backend="verilator"``), else None.
    hardware : HardwareRun or None
        The verilator run (its simulation speed), else None.
    """

    output: np.ndarray
    output_q: np.ndarray
    input_q: np.ndarray
    stats: RunStats
    cycles: CycleReport
    measured_cycles: int | None = None
    hardware: HardwareRun | None = None


@dataclass
class HardwareRun:
    """What :func:`run_verilator` measured: DRAM after the run, the status and the cycles
    the core counted; and the simulator's own figures: ``sim_cycles`` clock cycles simulated
    in all (reset, program load and status polling included) in ``sim_seconds`` of wall time
    and ``sim_cpu_seconds`` of CPU time (the simulation loop only with ``dram_model="fast"``;
    the whole cocotb run, start-up included, with ``"checked"``, where the CPU time is not
    measured)."""

    dram: np.ndarray
    status: MachineStatus
    cycles: int
    dram_model: str = "checked"
    sim_cycles: int | None = None
    sim_seconds: float | None = None
    sim_cpu_seconds: float | None = None

    @property
    def cycles_per_second(self) -> float | None:
        """Simulated cycles per wall-clock second, if measured."""
        if self.sim_cycles is None or not self.sim_seconds:
            return None
        return self.sim_cycles / self.sim_seconds


def _hardware_config(config: AcceleratorConfig) -> AcceleratorConfig:
    """``config`` with its model-only parameters at their defaults: configs that describe the
    same hardware map to one key."""
    from golden.accelerator_top import MODEL_PARAMETERS

    defaults = AcceleratorConfig()
    return replace(config, **{name: getattr(defaults, name) for name in MODEL_PARAMETERS})


@functools.cache
def _simulation_build(config: AcceleratorConfig, waves: bool):
    """The Verilator build of the top for ``config`` (the Verilog cached on disk by config and
    sources, the build by the Verilog's hash; this saves converting the design again)."""
    from golden.accelerator_top import GENERATOR
    from hw.accelerator_top import AcceleratorTop
    from sim.runner import build_verilog, cached_verilog

    return build_verilog(cached_verilog(config, lambda: AcceleratorTop(config), GENERATOR),
                         GENERATOR, waves=waves)


def run_verilator(config: AcceleratorConfig, words, dram, *, prog_len: int | None = None,
                  dram_model: str = "fast", stall: float = 0.0, csr_stall: float = 0.0,
                  seed: int = 0, max_cycles: int = 1_000_000, poll_cycles: int = 64,
                  waves: bool = False) -> HardwareRun:
    """Run a program on the RTL under Verilator.

    The emitted design is :class:`hw.accelerator_top.AcceleratorTop` (Verilog module
    ``accelerator``, what ``accelgen emit accelerator`` writes). The host checks the identity
    registers, loads the program and starts it through the AXI4-Lite register port, polls
    ``status`` every ``poll_cycles`` and reads the core's cycle counter. The DRAM, by
    ``dram_model``:

    - ``"fast"``: the native harness of :mod:`sim.accelerator_native` (a C++ AXI4 memory and
      host; the executable is built once per design and cached);
    - ``"checked"``: the cocotb testbench ``sim/accelerator_tb.py``: a cocotbext-axi
      ``AxiRam`` on the AXI4 port, watched by ``sim.axi.AxiProtocolChecker``, the host on a
      cocotbext-axi ``AxiLiteMaster``.

    Parameters
    ----------
    words : sequence of int
        The program; ``prog_len`` words of it may run (default all).
    dram : array_like of int, shape ``(lines, L)``
        External memory (int16 values), placed at AXI address 0.
    dram_model : str
        One of :data:`DRAM_MODELS`.
    stall, csr_stall : float
        Wait-state probability of every channel of the DRAM / of the register port
        (``csr_stall`` and ``waves`` need ``dram_model="checked"``).

    Raises
    ------
    ValueError
        An unknown ``dram_model``, an option it does not have, or a program longer than
        ``max_program``.
    sim.runner.SimulationError
        If the run fails (a timeout, a register answering an error, a wrong identity
        register or an AXI protocol error).
    """
    from golden.accelerator_top import GENERATOR
    from sim.runner import SimulationError, new_test_dir, run_cocotb_spec

    if dram_model not in DRAM_MODELS:
        raise ValueError(f"dram_model must be one of {', '.join(DRAM_MODELS)}, got "
                         f"{dram_model!r}")
    if dram_model == "fast" and (csr_stall or waves):
        raise ValueError("csr_stall and waves need dram_model='checked' (the fast model has "
                         "no register wait states and records no waves)")
    if not 0 <= stall < 1 or not 0 <= csr_stall < 1:
        raise ValueError(f"stall and csr_stall must be in [0, 1), got {stall}, {csr_stall}")
    words = [int(w) for w in words]
    if len(words) > config.max_program:
        raise ValueError(f"the program has {len(words)} words, more than max_program="
                         f"{config.max_program}")
    dram = np.asarray(dram, dtype=np.int64).reshape(-1, config.line)
    prog_len = len(words) if prog_len is None else prog_len
    image = dram.astype("<i2").tobytes()
    if dram_model == "fast":
        from sim.accelerator_native import run_native

        test_dir = new_test_dir(f"{GENERATOR}-native")
        run, after = run_native(_hardware_config(config), words, image, test_dir,
                                prog_len=prog_len, ext_lines=len(dram), stall=stall,
                                seed=seed, max_cycles=max_cycles, poll_cycles=poll_cycles)
        if run.failure:
            raise SimulationError(f"{run.failure}; files: {test_dir}")
        status, _ = decode_status(run.status_word)
        return HardwareRun(_dram_lines(after, config), status, run.cycles, dram_model,
                           run.sim_cycles, run.seconds, run.cpu_seconds)
    sim_build = _simulation_build(_hardware_config(config), waves)
    test_dir = new_test_dir(GENERATOR)
    (test_dir / "dram_in.bin").write_bytes(image)
    spec = {
        "config": config.to_dict(),
        "words": [hex(w) for w in words],
        "prog_len": prog_len,
        "ext_lines": len(dram),
        "dram_in": str(test_dir / "dram_in.bin"),
        "dram_out": str(test_dir / "dram_out.bin"),
        "stall": stall,
        "csr_stall": csr_stall,
        "seed": seed,
        "max_cycles": max_cycles,
        "poll_cycles": poll_cycles,
        "report": str(test_dir / "report.json"),
    }
    started = time.perf_counter()
    report = run_cocotb_spec(sim_build, "sim.accelerator_tb", spec,
                             env_var="ACCELGEN_ACCEL_SPEC", test_dir=test_dir, seed=seed,
                             error_key="failure")
    seconds = time.perf_counter() - started
    done, error, code, pc = report["status"]
    status = MachineStatus(done=bool(done), error=ErrorCode(code) if error else ErrorCode.NONE,
                           pc=pc, message="reported by the hardware" if error else "")
    after = (test_dir / "dram_out.bin").read_bytes()
    return HardwareRun(_dram_lines(after, config), status, report["cycles"], dram_model,
                       report.get("sim_cycles"), seconds)


def _dram_lines(data: bytes, config: AcceleratorConfig) -> np.ndarray:
    """DRAM bytes as lines of int16 values."""
    return np.frombuffer(data, dtype="<i2").astype(np.int64).reshape(-1, config.line)


class Accelerator:
    """An accelerator instance of a given configuration.

    Parameters
    ----------
    config : AcceleratorConfig, optional
        Or its fields as keywords.
    """

    def __init__(self, config: AcceleratorConfig | None = None, **params):
        self.config = AcceleratorConfig.coerce(config, **params)

    def run(self, program: Program, inputs, backend: str = "golden",
            **verilator_options) -> RunResult:
        """Run ``program`` on ``inputs`` (float, ``(seq_len, d_model)``).

        ``backend``: ``"golden"`` (the NumPy machine) or ``"verilator"`` (the RTL, bit for bit
        the same outputs; its measured cycles in :attr:`RunResult.measured_cycles`, the
        model's in :attr:`RunResult.cycles`). The first verilator run of a config builds the
        design (minutes for the default 4 x 8; cached by design hash afterwards).
        ``verilator_options`` go to :func:`run_verilator` (``dram_model``, ``stall``,
        ``csr_stall``, ``seed``, ``poll_cycles``, ``waves``, ``max_cycles``).

        Raises
        ------
        ValueError
            Unknown backend, a program compiled for another config, an input of the wrong
            shape, or verilator options for the golden backend.
        RuntimeError
            If the machine stops with an error status (never for a compiled program).
        """
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if verilator_options and backend != "verilator":
            raise ValueError(f"options {', '.join(sorted(verilator_options))} apply to the "
                             f"verilator backend only")
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
        measured = hardware = None
        if backend == "golden":
            dram, stats = run_golden(self.config, program.words, program.dram(x_q))
        else:
            hw = run_verilator(self.config, program.words, program.dram(x_q),
                               **verilator_options)
            dram, measured = hw.dram, hw.cycles
            hardware = hw
            # A compiled program is straight-line: it executed every word up to its pc.
            trace = [(pc, unpack(program.words[pc])) for pc in range(hw.status.pc + 1)]
            stats = RunStats(hw.status, trace if hw.status.done else trace[:-1])
        if not stats.status.done:
            raise RuntimeError(f"the accelerator stopped with error {stats.status.error.name} "
                               f"at pc {stats.status.pc}: {stats.status.message}")
        out_q = program.output(dram)
        phases = [program.phases[pc] for pc, _ in stats.trace]
        cycles = program_cycles(self.config, [ins for _, ins in stats.trace], phases)
        return RunResult(dequantize(out_q, program.output_format), out_q, x_q, stats, cycles,
                         measured, hardware)

    def run_model(self, model, sentences, backend: str = "golden", *,
                  batch_tokens: int | None = 128, **verilator_options) -> ModelRun:
        """Sentence embeddings of ``sentences`` from ``model`` (``gen.model.load_model``),
        the whole encoder on this accelerator: see :func:`_run_model`."""
        return _run_model(self, model, sentences, backend, batch_tokens=batch_tokens,
                          **verilator_options)


@dataclass
class ModelRun:
    """Outcome of :meth:`Accelerator.run_model`.

    Attributes
    ----------
    sentences : list of str
    tokens : list of int
        Tokens per sentence (``[CLS]`` and ``[SEP]`` included).
    embeddings, reference : numpy.ndarray, shape ``(n, hidden)``
        Unit-norm sentence embeddings from the accelerator and from the float64 model.
    cosine : numpy.ndarray, shape ``(n,)``
        Cosine between each sentence's accelerator and float64 embeddings.
    similarity, reference_similarity : numpy.ndarray, shape ``(n, n)``
    cycles : int
        Modeled cycles of every program run (the cycle model of the executed trace).
    pe_ops, model_macs : int
        Useful PE operations as the cycle model counts them, and the float model's
        multiply-accumulates (projections, scores, context) for the padded lengths.
    pe_count : int
    batches : list of list of int
        Sentence indices of each batch (compiled together, run as a sequence of programs).
    measured_cycles : int or None
        Cycles the RTL counted (verilator backend).
    wall_seconds : float
        Wall time of the backend runs.
    programs : int
        Programs run (every batch is cut into programs of at most ``max_program`` words).
    batch_figures : list of dict
        Per batch: its sentences, padded tokens, programs, cycles, useful PE operations and
        PE utilization (with ``batch_tokens=None``, one sentence each).
    """

    sentences: list[str]
    tokens: list[int]
    embeddings: np.ndarray
    reference: np.ndarray
    cosine: np.ndarray
    similarity: np.ndarray
    reference_similarity: np.ndarray
    cycles: int
    pe_ops: int
    model_macs: int
    pe_count: int
    batches: list
    phases: dict
    measured_cycles: int | None = None
    wall_seconds: float = 0.0
    programs: int = 0
    batch_figures: list = field(default_factory=list)

    @property
    def cycles_per_sentence(self) -> float:
        return self.cycles / len(self.sentences)

    @property
    def utilization(self) -> float:
        """PE utilization as the cycle model counts it (GEMV and EW PE operations)."""
        return self.pe_ops / (self.pe_count * self.cycles)

    @property
    def model_utilization(self) -> float:
        """The float model's MACs over ``PE count x cycles``: the stricter figure (zero
        blocks of the attention layouts and element-wise plumbing count as idle)."""
        return self.model_macs / (self.pe_count * self.cycles)

    def sentences_per_second(self, clock_mhz: float) -> float:
        return clock_mhz * 1e6 / self.cycles_per_sentence

    def to_dict(self, clock_mhz: float) -> dict:
        err = np.abs(self.similarity - self.reference_similarity)
        return {
            "sentences": self.sentences, "tokens": self.tokens,
            "similarity": self.similarity.round(6).tolist(),
            "reference_similarity": self.reference_similarity.round(6).tolist(),
            "max_similarity_error": float(err.max()),
            "cosine_vs_float64": self.cosine.round(6).tolist(),
            "min_cosine_vs_float64": float(self.cosine.min()),
            "cycles": self.cycles, "cycles_per_sentence": self.cycles_per_sentence,
            "pe_utilization": self.utilization, "model_mac_utilization": self.model_utilization,
            "clock_mhz": clock_mhz,
            "sentences_per_second": self.sentences_per_second(clock_mhz),
            "batches": self.batches,
            "phases": self.phases,
            "measured_cycles": self.measured_cycles, "wall_seconds": self.wall_seconds,
            "programs": self.programs, "per_batch": self.batch_figures,
        }


def _batches(lengths: list[int], batch_tokens: int | None) -> list[list[int]]:
    """Consecutive sentences grouped while their padded tokens fit ``batch_tokens``."""
    if not batch_tokens:
        return [[i] for i in range(len(lengths))]
    groups, current, used = [], [], 0
    for i, t in enumerate(lengths):
        if current and used + t > batch_tokens:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += t
    groups.append(current)
    return groups


def plan_batches(model, lengths, batch_tokens, config):
    """Yield ``(sentence indices, EncoderProgram)`` per batch: consecutive sentences whose
    padded ``lengths`` fit ``batch_tokens``; a group that overflows the scratchpad is halved.
    Each batch compiles when it is reached, so a run holds one batch's DRAM image (the
    model's weights) at a time: 21 sentences one per batch, compiled ahead, took 9 GB."""
    pending = _batches(list(lengths), batch_tokens)
    while pending:
        group = pending.pop(0)
        try:
            prog = model.compile([lengths[i] for i in group], config)
        except ValueError as error:
            if "buffer overflow" not in str(error) or len(group) == 1:
                raise
            half = len(group) // 2
            pending[:0] = [group[:half], group[half:]]
            continue
        yield group, prog


def _run_model(self: Accelerator, model, sentences, backend: str = "golden", *,
               batch_tokens: int | None = 128, **verilator_options) -> ModelRun:
    """Embed ``sentences`` with ``model`` (a :class:`gen.model.sentence.SentenceModel`) on
    this accelerator: the host tokenizes, looks the embeddings up, pools and normalises; the
    accelerator runs the whole encoder, one program per batch of sentences whose padded
    tokens fit ``batch_tokens`` (``None``: one sentence per program).

    Raises
    ------
    ValueError
        No sentences, a sentence longer than ``model.max_tokens``, an unknown backend.
    """
    import time

    from golden.minilm import cosine_matrix

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(sentences, str):
        sentences = [sentences]
    sentences = list(sentences)
    ids = model.tokenize(sentences)
    lengths, embs = model.inputs(ids)
    hidden = [None] * len(sentences)
    cycles = pe_ops = macs = 0
    measured = 0 if backend == "verilator" else None
    phases: dict[str, int] = {}
    wall = 0.0
    programs = 0
    groups = []
    figures = []
    for group, prog in plan_batches(model, lengths, batch_tokens, self.config):
        groups.append(group)
        before = (cycles, pe_ops, programs)
        after = prog.dram([embs[i] for i in group], [len(ids[i]) for i in group])
        for program in prog.programs:  # one after the other on the same DRAM
            words = program.words
            start = time.perf_counter()
            if backend == "golden":
                after, stats = run_golden(self.config, words, after)
            else:
                hw = run_verilator(self.config, words, after, **verilator_options)
                after, measured = hw.dram, measured + hw.cycles
                stats = RunStats(hw.status, [(pc, unpack(words[pc]))
                                             for pc in range(hw.status.pc + 1)])
            wall += time.perf_counter() - start
            if not stats.status.done:
                raise RuntimeError(f"the accelerator stopped with error "
                                   f"{stats.status.error.name} at pc {stats.status.pc}: "
                                   f"{stats.status.message}")
            report = program_cycles(self.config, [ins for _, ins in stats.trace],
                                    [program.phases[pc] for pc, _ in stats.trace])
            cycles += report.cycles
            pe_ops += report.total.pe_ops
            programs += 1
            for name, phase in report.phases.items():
                phases[name] = phases.get(name, 0) + phase.cycles
        macs += prog.model_macs
        batch_cycles, batch_ops = cycles - before[0], pe_ops - before[1]
        figures.append({"sentences": list(group), "padded_tokens": list(prog.lengths),
                        "programs": programs - before[2], "cycles": batch_cycles,
                        "pe_ops": batch_ops,
                        "pe_utilization": batch_ops / (self.config.line * batch_cycles)})
        for i, h in zip(group, prog.output(after)):
            hidden[i] = h
        del prog, after  # before the next batch compiles
    emb = model.pool(hidden, ids)
    ref = model.reference(ids)
    return ModelRun(sentences, [len(i) for i in ids], emb, ref, np.sum(emb * ref, axis=1),
                    cosine_matrix(emb), cosine_matrix(ref), cycles, pe_ops, macs,
                    self.config.rows * self.config.cols, groups, phases, measured, wall,
                    programs, figures)
