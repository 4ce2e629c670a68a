"""Analytical cycle model of the accelerator's programs, with PE utilization per phase.

An instruction takes ``issue_cycles`` to fetch and decode, then occupies its engine for

    streaming cycles + pipeline latency (drain)

Serial machine (``decoupled=False``): one instruction at a time, so a program takes the sum of
its instructions' ``issue + stream + latency``.

Decoupled machine (``decoupled=True``, the dependency rule of :mod:`golden.accelerator`):
instruction ``i`` is fetched from the cycle after instruction ``i - 1`` dispatched, and
dispatches at

    ``D_i = max(D_{i-1} + issue_cycles, free(engine_i), max(F_j for earlier j conflicting))``

where ``F_j = D_j + stream_j + latency_j`` is when ``j`` finishes and ``free(engine)`` the
finish of the engine's previous instruction; ``HALT`` dispatches when every engine is free, and
the program ends there.

Write-port rule: the compute and load engines share the scratchpad's one write port (what lets
it map to block RAM), compute first. A compute instruction writes in the cycles of
:func:`write_runs` (a read step at ``D + s`` is written ``latency`` cycles later); a load's
beats may be taken one per cycle from ``D + dma_latency`` on, but not in a compute write cycle,
and it finishes a cycle after its last beat (``D + beats + dma_latency`` without compute
writes). Compute instructions issued after a load in program order can delay it, so a load's
finish is settled when an instruction first waits for it (all compute that can overlap it is
scheduled by then). :func:`program_cycles` keeps the schedule (``CycleReport.schedule``).
A phase's cycles are the cycles its instructions push the program's end out by (each
instruction's ``max(0, F_i - max_{j<i} F_j)``), so the phases add up to the total; its DMA
overlap is the fraction of its DMA instructions' busy cycles during which the compute engine
runs a ``GEMV`` or an ``EW``.

=========  ============================================  ===========================================
opcode     streaming cycles                              pipeline latency
=========  ============================================  ===========================================
DMA_*      ``lines * beats_per_line`` (one AXI beat per  ``dma_latency`` (address to first beat)
           cycle; a line is ``line_bits / 512`` beats,
           at least one; a load's beat also waits out
           each compute write)
GEMV       ``ceil(m/R) * ceil(k/C)``: one tile per       read + PE array + requantizer
           cycle (port 0 the tile, port 1 the x line)
EW         ``lines * ceil(operands / 2)``: operands      read + PE array + requantizer
           (2, or 3 for MADD, broadcast ones included)
           share the two read ports
NL         ``lines * L / nl_lanes``: a line per cycle   read + unit latency
           with a lane per element, else in passes
SOFTMAX    ``2 * n + more * max(n, gap)``: one element   read + softmax latency (last input to
           per cycle in, then one per cycle out; each    first output)
           further vector of a batch comes in while the
           previous one is normalized and output, its
           last element at least ``gap`` cycles after
           the previous vector's last
LAYERNORM  ``2 * n + more * max(n, gap)``, as SOFTMAX    read + LayerNorm latency (last input to
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

A unit's ``gap`` is the part of its latency before the output pass: from a vector's last
element to the cycle the next vector's last element may enter (the unit normalizes one vector
at a time; three input banks keep the input pass from waiting for the output pass):

- softmax: ``e + recip_width + 1`` (the sum leaves the exp, the divider's bits, its result);
- LayerNorm: ``5 + multiply_steps + 6 * P`` (hand-over, the serial multiply, reduction,
  ``1/sqrt`` and its result).

PE utilization is useful PE operations over ``R * C`` times the cycles: a GEMV does ``m * k``
useful MACs (padding of partial tiles is not useful), an EW ``lines * R * C`` element ops (every
lane, padding lanes included: the machine cannot tell them apart); DMA, NL, SOFTMAX, LAYERNORM
and HALT leave the PE array idle (the units have PE lanes of their own).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from .accelerator import (
    AcceleratorConfig,
    Instruction,
    NLUnit,
    Opcode,
    access,
    conflicts,
    engine,
    ew_operands,
)

__all__ = ["Latencies", "InstructionCost", "PhaseReport", "CycleReport", "latencies",
           "instruction_cost", "program_cycles", "write_runs"]

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
    softmax_gap: int
    layernorm_gap: int
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
        softmax_gap=sm_exp + sm.recip_width + 1,
        layernorm_gap=5 + config.layernorm_config.multiply_steps + 6 * pe,
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
        stream = 2 * f["n"] + f["more"] * max(f["n"], lat.softmax_gap)
        return InstructionCost(lat.issue, stream, lat.read + lat.softmax, 0)
    if op == Opcode.LAYERNORM:
        stream = 2 * f["n"] + f["more"] * max(f["n"], lat.layernorm_gap)
        return InstructionCost(lat.issue, stream, lat.read + lat.layernorm, 0)
    if op == Opcode.HALT:
        return InstructionCost(lat.issue, 0, 0, 0)
    raise ValueError(f"no cycle cost for opcode {op}")


@dataclass
class PhaseReport:
    """Totals of one phase: instructions, cycles, useful PE ops and PE utilization, and its
    DMA busy cycles with the part of them overlapped by PE work (``GEMV`` / ``EW``)."""

    name: str
    instructions: int = 0
    cycles: int = 0
    pe_ops: int = 0
    pe_count: int = 1
    dma_cycles: int = 0
    dma_overlapped: int = 0

    @property
    def dma_overlap(self) -> float:
        """Fraction of the phase's DMA busy cycles with the PE array at work (0 without DMA)."""
        return self.dma_overlapped / self.dma_cycles if self.dma_cycles else 0.0

    @property
    def utilization(self) -> float:
        """Useful PE ops over ``R * C * cycles`` (0 for an empty phase)."""
        return self.pe_ops / (self.pe_count * self.cycles) if self.cycles else 0.0


@dataclass
class CycleReport:
    """Cycles of a program: per instruction, per phase (in first-seen order) and in total.

    ``schedule`` holds each instruction's ``(dispatch, finish)`` cycles."""

    costs: list[InstructionCost]
    phases: dict[str, PhaseReport]
    total: PhaseReport
    schedule: list[tuple[int, int]] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        return self.total.cycles

    @property
    def utilization(self) -> float:
        return self.total.utilization

    def table(self) -> str:
        """A plain-text table: phase, instructions, cycles, share of cycles, PE utilization."""
        rows = [f"{'phase':<12} {'instr':>6} {'cycles':>9} {'share':>6} {'PE util':>8} "
                f"{'DMA hidden':>10}"]
        for p in [*self.phases.values(), self.total]:
            share = p.cycles / self.total.cycles if self.total.cycles else 0.0
            hidden = f"{p.dma_overlap:>10.1%}" if p.dma_cycles else f"{'-':>10}"
            rows.append(f"{p.name:<12} {p.instructions:>6} {p.cycles:>9} {share:>6.1%} "
                        f"{p.utilization:>8.1%} {hidden}")
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
    costs = [instruction_cost(config, ins, lat) for ins in instructions]
    schedule = (_decoupled_schedule(config, instructions, costs, lat) if config.decoupled
                else _serial_schedule(costs))
    pe_busy = [(d, f) for ins, (d, f) in zip(instructions, schedule)
               if ins.opcode in (Opcode.GEMV, Opcode.EW)]
    starts = [d for d, _ in pe_busy]
    report = {}
    total = PhaseReport("total", pe_count=pe_count)
    end = 0
    for ins, phase, cost, (d, f) in zip(instructions, phases, costs, schedule):
        pushed = max(0, f - end)
        end = max(end, f)
        is_dma = ins.opcode in (Opcode.DMA_LOAD, Opcode.DMA_STORE)
        hidden = _overlap(pe_busy, starts, d, f) if is_dma else 0
        for p in (report.setdefault(phase, PhaseReport(phase, pe_count=pe_count)), total):
            p.instructions += 1
            p.cycles += pushed
            p.pe_ops += cost.pe_ops
            if is_dma:
                p.dma_cycles += f - d
                p.dma_overlapped += hidden
    return CycleReport(costs, report, total, schedule)


def _serial_schedule(costs) -> list[tuple[int, int]]:
    out, t = [], 0
    for cost in costs:
        d = t + cost.issue
        t = d + cost.stream + cost.latency
        out.append((d, t))
    return out


def write_runs(config: AcceleratorConfig, ins: Instruction, cost: InstructionCost,
               dispatch: int, lat: Latencies | None = None) -> list[tuple[int, int, int]]:
    """The cycles in which a compute instruction dispatched at ``dispatch`` writes the
    scratchpad, as runs ``(first, count, period)`` (writes at ``first + j * period``, ``j <
    count``) in time order; none for a DMA or ``HALT``. The last write is the instruction's
    finish, ``dispatch + stream + latency``; a read step at cycle ``dispatch + s`` (``s`` from
    1) is written ``latency`` cycles later."""
    op, f = ins.opcode, ins.fields
    latency = cost.latency
    if op == Opcode.GEMV:  # a row block is written after its last chunk
        kcs = math.ceil(f["k"] / config.cols)
        return [(dispatch + kcs + latency, math.ceil(f["m"] / config.rows), kcs)]
    if op == Opcode.EW:  # a line per read step (two steps for MADD)
        per = cost.stream // f["lines"]
        return [(dispatch + per + latency, f["lines"], per)]
    if op == Opcode.NL:  # a line, or a chunk of one, per read step
        return [(dispatch + 1 + latency, cost.stream, 1)]
    if op in (Opcode.SOFTMAX, Opcode.LAYERNORM):
        # n results per vector, one per cycle; the vectors of a batch a step apart, the last
        # one's ending at the finish.
        lat = lat or latencies(config)
        gap = lat.softmax_gap if op == Opcode.SOFTMAX else lat.layernorm_gap
        n, more = f["n"], f["more"]
        step = max(n, gap)
        finish = dispatch + cost.stream + latency
        if step == n:
            return [(finish - (more + 1) * n + 1, (more + 1) * n, 1)]
        return [(finish - n + 1 - (more - j) * step, n, 1) for j in range(more + 1)]
    return []


def _load_finish(first_beat: int, beats: int, runs: list, lasts: list) -> int:
    """The finish of a load whose ``beats`` R beats may be taken one per cycle from cycle
    ``first_beat`` on, except in the cycles of the compute write ``runs`` (in time order,
    disjoint ``(first, count, period)``: writes at ``first + j * period``, ``lasts`` their
    last cycles): one cycle after its last beat."""
    cur, left = first_beat, beats  # the next cycle to look at, the beats still to take
    for first, count, period in runs[bisect.bisect_left(lasts, cur):]:
        last = first + (count - 1) * period
        if cur < first:  # the free cycles before the run
            if left <= first - cur:
                break
            left, cur = left - (first - cur), first
        writes = count - (cur - first + period - 1) // period  # the run's writes from cur on
        free = (last - cur + 1) - writes
        if left > free:  # the run's free cycles do not take them all
            left, cur = left - free, last + 1
            continue
        return _nth_free_cycle(cur, left, first, period) + 1
    return cur + left


def _nth_free_cycle(cur: int, n: int, first: int, period: int) -> int:
    """The ``n``-th cycle (from 1) at or after ``cur`` that is not a write of a run of writes
    at ``first + j * period`` (``period`` >= 2, ``cur`` >= ``first``; the run is long enough)."""
    offset = (cur - first) % period
    if offset == 0:  # a write at cur
        cur, offset = cur + 1, 1
    if n <= period - offset:  # in this period, before the next write
        return cur + n - 1
    n -= period - offset
    after_write = cur + (period - offset) + 1  # the first free cycle after the next write
    full, rest = divmod(n - 1, period - 1)  # period - 1 free cycles per period
    return after_write + full * period + rest


def _decoupled_schedule(config, instructions, costs, lat) -> list[tuple[int, int]]:
    out = []
    free = {"load": 0, "store": 0, "compute": 0}
    # The unfinished instructions that may still block: [finish, Access] per engine, newest
    # last; an entry finished before the candidate's earliest dispatch cannot block it. The
    # newest load's finish is None until something waits for it (see the write-port rule).
    recent: dict[str, list] = {name: [] for name in free}
    runs: list[tuple[int, int, int]] = []  # the compute engine's write cycles so far
    lasts: list[int] = []
    pending = None  # (index, first beat, beats, its recent entry) of a load not yet resolved
    fetched = 0

    def resolve():
        # The write-port rule: a load's R beat waits in any cycle the compute engine writes.
        # Resolved only when an instruction waits for the load: every compute instruction
        # that can write during the load is then scheduled (later ones dispatch after it).
        nonlocal pending
        if pending is not None:
            index, first_beat, beats, entry = pending
            entry[0] = free["load"] = _load_finish(first_beat, beats, runs, lasts)
            out[index] = (out[index][0], entry[0])
            pending = None

    for index, (ins, cost) in enumerate(zip(instructions, costs)):
        t = fetched + cost.issue
        unit = engine(ins.opcode)
        if unit is None:  # HALT
            resolve()
            t = max(t, *free.values())
        else:
            if unit == "load":
                resolve()
            t = max(t, free[unit])
            acc = access(config, ins)
            for other, entries in recent.items():
                if other == unit:
                    continue
                for entry in reversed(entries):
                    if entry[0] is not None and entry[0] <= t:
                        break
                    if conflicts(entry[1], acc):
                        if entry[0] is None:
                            resolve()
                        t = max(t, entry[0])
        f = t + cost.stream + cost.latency
        if unit is not None:
            entry = [f, acc]
            if unit == "load":
                entry[0] = None
                pending = (index, t + lat.dma, cost.stream, entry)
            else:
                free[unit] = f
                for run in write_runs(config, ins, cost, t, lat):
                    runs.append(run)
                    lasts.append(run[0] + (run[1] - 1) * run[2])
            entries = recent[unit]
            entries.append(entry)
            while entries and entries[0][0] is not None and entries[0][0] <= t:
                entries.pop(0)  # finished before this dispatch
        out.append((t, f))
        fetched = t
    resolve()
    return out


def _overlap(busy, starts, d, f) -> int:
    """Cycles of ``[d, f)`` covered by the disjoint, sorted intervals ``busy``."""
    i = max(0, bisect.bisect_right(starts, d) - 1)
    covered = 0
    while i < len(busy) and busy[i][0] < f:
        covered += max(0, min(f, busy[i][1]) - max(d, busy[i][0]))
        i += 1
    return covered
