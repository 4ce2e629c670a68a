"""Analytical cycle model of the accelerator's programs, with PE utilization per phase.

The sequencer runs one instruction at a time (:mod:`golden.accelerator`), so a program takes
the sum of its instructions' cycles. An instruction takes

    ``issue_cycles`` (fetch, decode, start) + streaming cycles + pipeline latency (drain)

=========  ============================================  ===========================================
opcode     streaming cycles                              pipeline latency
=========  ============================================  ===========================================
DMA_*      ``lines * beats_per_line`` (one AXI beat per  ``dma_latency`` (address to first beat)
           cycle; a line is ``line_bits / 512`` beats,
           at least one)
GEMV       ``ceil(m/R) * ceil(k/C)``: one tile per       read + PE array + requantizer
           cycle (port 0 the tile, port 1 the x line)
EW         ``lines * ceil(operands / 2)``: operands      read + PE array + requantizer
           (2, or 3 for MADD, broadcast ones included)
           share the two read ports
NL         ``lines * L / nl_lanes``: a line per cycle   read + unit latency
           with a lane per element, else in passes
SOFTMAX    ``2 * n``: one element per cycle in, then     read + softmax latency (last input to
           one per cycle out                             first output)
LAYERNORM  ``2 * n``, as SOFTMAX                         read + LayerNorm latency (last input to
                                                         first output)
HALT       0                                             0
=========  ============================================  ===========================================

Latencies, copied from the hardware's formulas and evaluated on the golden configs, never by
importing the hardware; ``P = config.pe_latency`` is ``hw.pe.PE.latency`` (register stages of
a PE lane, 3 by default):

- read: ``config.read_latency`` (1: a synchronous memory read);
- PE array: ``P + max(1, ceil(levels / tree_levels_per_stage)) + 1`` (PE, reduction tree,
  output register; ``levels = ceil(log2 C)``); requantizer: 1 register;
- exp: ``P * (2 + 2 * order)``; GELU and SiLU: ``2 + P * (2 * order + 1)``;
- softmax: ``e + 1 + recip_width + 1 + e + P + 1`` with ``e`` the exp latency of its order;
- LayerNorm: ``7 + multiply_steps + 9 * P`` (square and hand-over registers, the bit-serial
  ``n*Q - S*S``, two range-reduction registers, six PEs of ``1/sqrt`` and their result
  register, the ready register, then read, three PEs and the output register).

PE utilization is useful PE operations over ``R * C`` times the cycles: a GEMV does ``m * k``
useful MACs (padding of partial tiles is not useful), an EW ``lines * R * C`` element ops (every
lane, padding lanes included: the machine cannot tell them apart); DMA, NL, SOFTMAX, LAYERNORM
and HALT leave the PE array idle (the units have PE lanes of their own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .accelerator import AcceleratorConfig, Instruction, NLUnit, Opcode, ew_operands

__all__ = ["Latencies", "InstructionCost", "PhaseReport", "CycleReport", "latencies",
           "instruction_cost", "program_cycles"]

#: The requantizer's register.
REQUANT_LATENCY = 1


@dataclass(frozen=True)
class Latencies:
    """Pipeline latencies (cycles) of the accelerator's parts for one config."""

    issue: int
    read: int
    pe_array: int
    requant: int
    exp: int
    gelu: int
    silu: int
    softmax: int
    layernorm: int
    dma: int
    dma_beats_per_line: int


def latencies(config: AcceleratorConfig) -> Latencies:
    """The latencies of ``config``'s parts (see the module docstring)."""
    pe = config.pe_latency
    tree = config.pe_array_config.tree
    tree_latency = max(1, math.ceil(tree.levels / tree.levels_per_stage))

    def piecewise(unit) -> int:
        return 2 + pe * (2 * unit.order + 1)

    sm = config.softmax_config
    sm_exp = pe * (2 + 2 * sm.exp_order)
    return Latencies(
        issue=config.issue_cycles,
        read=config.read_latency,
        pe_array=pe + tree_latency + 1,
        requant=REQUANT_LATENCY,
        exp=pe * (2 + 2 * config.exp_config.order),
        gelu=piecewise(config.gelu_config),
        silu=piecewise(config.silu_config),
        softmax=sm_exp + 1 + sm.recip_width + 1 + sm_exp + pe + 1,
        layernorm=7 + config.layernorm_config.multiply_steps + 9 * pe,
        dma=config.dma_latency,
        dma_beats_per_line=config.dma_beats_per_line,
    )


@dataclass(frozen=True)
class InstructionCost:
    """Cycles of one instruction (``issue + stream + latency``) and its useful PE ops."""

    issue: int
    stream: int
    latency: int
    pe_ops: int

    @property
    def cycles(self) -> int:
        return self.issue + self.stream + self.latency


def instruction_cost(config: AcceleratorConfig, ins: Instruction,
                     lat: Latencies | None = None) -> InstructionCost:
    """Cycles and useful PE operations of a (legal) instruction."""
    lat = lat or latencies(config)
    op, f = ins.opcode, ins.fields
    r, c = config.rows, config.cols
    if op in (Opcode.DMA_LOAD, Opcode.DMA_STORE):
        return InstructionCost(lat.issue, f["lines"] * lat.dma_beats_per_line, lat.dma, 0)
    if op == Opcode.GEMV:
        tiles = math.ceil(f["m"] / r) * math.ceil(f["k"] / c)
        return InstructionCost(lat.issue, tiles, lat.read + lat.pe_array + lat.requant,
                               f["m"] * f["k"])
    if op == Opcode.EW:
        stream = f["lines"] * math.ceil(len(ew_operands(ins)) / 2)
        return InstructionCost(lat.issue, stream, lat.read + lat.pe_array + lat.requant,
                               f["lines"] * r * c)
    if op == Opcode.NL:
        unit = {NLUnit.EXP: lat.exp, NLUnit.GELU: lat.gelu, NLUnit.SILU: lat.silu}
        return InstructionCost(lat.issue, f["lines"] * config.nl_passes,
                               lat.read + unit[NLUnit(f["unit"])], 0)
    if op == Opcode.SOFTMAX:
        return InstructionCost(lat.issue, 2 * f["n"], lat.read + lat.softmax, 0)
    if op == Opcode.LAYERNORM:
        return InstructionCost(lat.issue, 2 * f["n"], lat.read + lat.layernorm, 0)
    if op == Opcode.HALT:
        return InstructionCost(lat.issue, 0, 0, 0)
    raise ValueError(f"no cycle cost for opcode {op}")


@dataclass
class PhaseReport:
    """Totals of one phase: instructions, cycles, useful PE ops and PE utilization."""

    name: str
    instructions: int = 0
    cycles: int = 0
    pe_ops: int = 0
    pe_count: int = 1

    @property
    def utilization(self) -> float:
        """Useful PE ops over ``R * C * cycles`` (0 for an empty phase)."""
        return self.pe_ops / (self.pe_count * self.cycles) if self.cycles else 0.0


@dataclass
class CycleReport:
    """Cycles of a program: per instruction, per phase (in first-seen order) and in total."""

    costs: list[InstructionCost]
    phases: dict[str, PhaseReport]
    total: PhaseReport

    @property
    def cycles(self) -> int:
        return self.total.cycles

    @property
    def utilization(self) -> float:
        return self.total.utilization

    def table(self) -> str:
        """A plain-text table: phase, instructions, cycles, share of cycles, PE utilization."""
        rows = [f"{'phase':<12} {'instr':>6} {'cycles':>9} {'share':>6} {'PE util':>8}"]
        for p in [*self.phases.values(), self.total]:
            share = p.cycles / self.total.cycles if self.total.cycles else 0.0
            rows.append(f"{p.name:<12} {p.instructions:>6} {p.cycles:>9} {share:>6.1%} "
                        f"{p.utilization:>8.1%}")
        return "\n".join(rows)


def program_cycles(config: AcceleratorConfig, instructions, phases=None) -> CycleReport:
    """Predict the cycles of executed instructions.

    Parameters
    ----------
    instructions : sequence of Instruction
        In execution order (a straight-line program, or a run's trace).
    phases : sequence of str, optional
        A phase label per instruction (default: the opcode name).
    """
    instructions = list(instructions)
    if phases is None:
        phases = [ins.opcode.name for ins in instructions]
    phases = list(phases)
    if len(phases) != len(instructions):
        raise ValueError(f"need one phase per instruction: {len(phases)} phases for "
                         f"{len(instructions)} instructions")
    lat = latencies(config)
    pe_count = config.rows * config.cols
    costs, report = [], {}
    total = PhaseReport("total", pe_count=pe_count)
    for ins, phase in zip(instructions, phases):
        cost = instruction_cost(config, ins, lat)
        costs.append(cost)
        for p in (report.setdefault(phase, PhaseReport(phase, pe_count=pe_count)), total):
            p.instructions += 1
            p.cycles += cost.cycles
            p.pe_ops += cost.pe_ops
    return CycleReport(costs, report, total)
