"""Stream stimulus and collection with seeded random valid/ready stalls.

:class:`StreamBench` holds the whole cycle-by-cycle behaviour of a stream testbench and knows
nothing of the simulator: each cycle, :meth:`StreamBench.drive` says what to put on the ports
and :meth:`StreamBench.sample` takes the settled handshake values before the clock edge. The
cocotb coroutine :func:`run_cocotb_bench` and the Amaranth testbench in ``sim.amaranth_sim``
only move those values to and from their simulator, so both levels stall identically.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .scoreboard import Scoreboard

__all__ = ["StreamBench", "BurstyStreamBench", "BenchResult", "check_ready_prob",
           "run_cocotb_bench"]


@dataclass
class BenchResult:
    """What a bench observed: transfer cycles and received words."""

    cycles: int = 0
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    out_words: list[int] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"cycles": self.cycles, "in_cycles": self.in_cycles,
                "out_cycles": self.out_cycles, "out_words": [hex(w) for w in self.out_words]}


class StreamBench:
    """Feeds input words to a stream and collects the output stream, with random stalls.

    The input side raises ``valid`` for a pending word with probability ``valid_prob`` each
    cycle and then holds ``valid`` and the payload until the word is taken (the stream rule).
    The output side raises ``ready`` with probability ``ready_prob`` each cycle.

    Parameters
    ----------
    inputs : list of int
        Input payload words, in order.
    scoreboard : Scoreboard
        Checks each output as it arrives; the bench ends when it has all expected words plus
        ``drain_cycles`` (to catch extra outputs), after ``idle_cycles`` without a transfer on
        either stream (a hang), or at ``max_cycles`` when one is given.
    valid_prob, ready_prob : float
        Probabilities in (0, 1]; 1 means no stalls on that side.
    seed : int
        Seed of the stall pattern.
    """

    def __init__(self, inputs: list[int], scoreboard: Scoreboard, *, valid_prob: float = 1.0,
                 ready_prob: float = 1.0, seed: int = 0, drain_cycles: int = 32,
                 idle_cycles: int = 4096, max_cycles: int | None = None):
        for name, p in (("valid_prob", valid_prob), ("ready_prob", ready_prob)):
            if not 0 < p <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {p}")
        self.inputs = list(inputs)
        self.scoreboard = scoreboard
        self.valid_prob, self.ready_prob = valid_prob, ready_prob
        self.rng = random.Random(seed)
        self.drain_cycles = drain_cycles
        # A slow block (one that buffers whole vectors) is not a hung one: the bench gives up
        # on a stretch with no transfer, not on a total budget guessed from the stall rates.
        self.idle_cycles = idle_cycles
        self.max_cycles = max_cycles
        self._last_transfer = 0
        self.result = BenchResult()
        self._next = 0
        self._valid = False
        self._ready = False
        self._done_at: int | None = None

    @property
    def finished(self) -> bool:
        """True when all outputs arrived and the drain period passed, or at the cycle limit."""
        if self.max_cycles is not None and self.result.cycles >= self.max_cycles:
            return True
        if self.result.cycles - self._last_transfer >= self.idle_cycles:
            return True
        return self._done_at is not None and self.result.cycles >= self._done_at

    def offer(self) -> bool:
        """Whether to offer the next input word this cycle (its valid then holds until it is
        taken); subclasses change the stall pattern here."""
        return self.valid_prob >= 1 or self.rng.random() < self.valid_prob

    def take(self) -> bool:
        """Whether to raise the output's ready this cycle."""
        return self.ready_prob >= 1 or self.rng.random() < self.ready_prob

    def drive(self) -> tuple[bool, int, bool]:
        """Return ``(in_valid, in_payload, out_ready)`` for this cycle."""
        if not self._valid and self._next < len(self.inputs):
            self._valid = self.offer()
        self._ready = self.take()
        payload = self.inputs[self._next] if self._valid else 0
        return self._valid, payload, self._ready

    def sample(self, in_ready: bool, out_valid: bool, out_payload) -> None:
        """Record this cycle's transfers; ``out_payload`` is a callable read only on a transfer."""
        cycle = self.result.cycles
        if self._valid and in_ready:
            self._last_transfer = cycle
            self.result.in_cycles.append(cycle)
            self._next += 1
            self._valid = False
        if self._ready and out_valid:
            self._last_transfer = cycle
            word = out_payload()
            self.result.out_cycles.append(cycle)
            self.result.out_words.append(word)
            self.scoreboard.check(word, cycle)
        self.result.cycles = cycle + 1
        # Every input sent and every output in: keep watching a while for extra outputs.
        all_in = self._next == len(self.inputs)
        all_out = self.scoreboard.received == len(self.scoreboard.expected)
        if self._done_at is None and all_in and all_out:
            self._done_at = cycle + self.drain_cycles

    def check_complete(self) -> BenchResult:
        """Raise unless every expected output arrived; return the result."""
        self.scoreboard.check_complete(self.result.cycles)
        return self.result


class BurstyStreamBench(StreamBench):
    """A :class:`StreamBench` whose stalls come in runs of several cycles (a gap before an
    input word, ready held low), with run lengths drawn from :attr:`RUNS`. It records the
    stall runs the block actually saw: input gaps while words were pending, and runs of
    cycles in which an output word was valid but not taken.

    Attributes
    ----------
    valid_gaps, ready_stalls : list of int
        Lengths of the completed runs.
    """

    RUNS = (1, 2, 3, 5, 9, 17)

    def __init__(self, *args, gap_prob: float = 0.3, stall_prob: float = 0.2, **kwargs):
        super().__init__(*args, **kwargs)
        self.gap_prob, self.stall_prob = gap_prob, stall_prob
        self._gap_left = self._stall_left = 0
        self._gap = self._stall = 0
        self.valid_gaps: list[int] = []
        self.ready_stalls: list[int] = []

    def offer(self) -> bool:
        if self._gap_left == 0 and self.rng.random() < self.gap_prob:
            self._gap_left = self.rng.choice(self.RUNS)
        if self._gap_left:
            self._gap_left -= 1
            self._gap += 1
            return False
        if self._gap:
            self.valid_gaps.append(self._gap)
            self._gap = 0
        return True

    def take(self) -> bool:
        if self._stall_left == 0 and self.rng.random() < self.stall_prob:
            self._stall_left = self.rng.choice(self.RUNS)
        if self._stall_left:
            self._stall_left -= 1
            return False
        return True

    def sample(self, in_ready: bool, out_valid: bool, out_payload) -> None:
        if out_valid and not self._ready:
            self._stall += 1
        elif self._stall:
            self.ready_stalls.append(self._stall)
            self._stall = 0
        super().sample(in_ready, out_valid, out_payload)

    def stall_runs(self) -> dict[str, list[int]]:
        """The recorded runs (for a report)."""
        return {"valid_gaps": list(self.valid_gaps), "ready_stalls": list(self.ready_stalls)}


def check_ready_prob(component, ready_prob: float) -> None:
    """Raise ``ValueError`` when a bench would hold back the output of ``component`` (with
    ``ready_prob`` below 1) but its ``o`` stream is always ready: it has no backpressure, every
    output word is taken the cycle it is valid."""
    if component.o.signature.always_ready and ready_prob < 1:
        raise ValueError(f"ready_prob must be 1 for a component whose output is always ready "
                         f"(no backpressure), got {ready_prob}")


async def run_cocotb_bench(dut, bench: StreamBench, *, in_prefix: str = "i",
                           out_prefix: str = "o") -> BenchResult:
    """Run a :class:`StreamBench` on a cocotb DUT's ``<prefix>__valid/ready/payload`` ports.

    The clock must already be running. Ports are driven just after each rising edge and the
    handshake is sampled in the read-only phase before the next one.
    """
    from cocotb.triggers import ReadOnly, RisingEdge

    i_valid, i_payload = (getattr(dut, f"{in_prefix}__{n}") for n in ("valid", "payload"))
    o_valid, o_payload = (getattr(dut, f"{out_prefix}__{n}") for n in ("valid", "payload"))
    # An always-ready stream (no backpressure) has no ready port: only ready may be absent.
    i_ready, o_ready = (getattr(dut, f"{prefix}__ready", None)
                        for prefix in (in_prefix, out_prefix))
    last_payload = None
    while not bench.finished:
        valid, payload, ready = bench.drive()
        i_valid.value = int(valid)
        if valid and payload != last_payload:  # touch the wide handle only when it changes
            i_payload.value = payload
            last_payload = payload
        if o_ready is not None:
            o_ready.value = int(ready)
        await ReadOnly()
        bench.sample(i_ready is None or bool(i_ready.value), bool(o_valid.value),
                     lambda: o_payload.value.to_unsigned())
        await RisingEdge(dut.clk)
    return bench.check_complete()
