"""``verilator --lint-only -Wall`` on emitted Verilog, against one documented allowlist.

Amaranth's Verilog trips a few of Verilator's style warnings by construction; each entry of
:data:`LINT_ALLOWLIST` names one such pattern and why it is harmless. Every other warning is
a finding: :func:`lint_design` returns it, ``accelgen lint`` prints it and exits non-zero, and
``tests/test_lint.py`` fails on it for a matrix of configurations of every generator.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .emit import check_module_name, verilog_text

__all__ = ["Allowed", "LINT_ALLOWLIST", "LintWarning", "LintReport", "lint_verilog",
           "lint_design"]


@dataclass(frozen=True)
class Allowed:
    """One allowlisted kind of warning.

    Attributes
    ----------
    code : str
        Verilator's warning code (``UNUSEDSIGNAL``).
    reason : str
        Why Amaranth's output raises it and why that is harmless.
    pattern : str
        Regular expression the message must match (``""``: any message of ``code``).
    top_inputs : bool
        Whether the entry also covers the top module's own input ports (an input the design
        ignores is worth knowing about, so by default it does not).
    source : str
        Regular expression the warned Verilog line must match (``""``: any line).
    """

    code: str
    reason: str
    pattern: str = ""
    top_inputs: bool = True
    source: str = ""

    def covers(self, warning: LintWarning) -> bool:
        """Whether this entry allows ``warning``."""
        if warning.code != self.code or not re.search(self.pattern, warning.message):
            return False
        if not re.search(self.source, warning.source):
            return False
        return self.top_inputs or not warning.top_input


#: The warnings that Amaranth's Verilog raises by construction, each with its reason.
LINT_ALLOWLIST: tuple[Allowed, ...] = (
    Allowed("WIDTHEXPAND", "Amaranth widens operands implicitly by its own exact rules (an "
            "n-bit + m-bit add is max(n, m) + 1 bits); the Verilog spells the widths out only "
            "at the assignment"),
    Allowed("WIDTHTRUNC", "Amaranth truncates to the target's width on assignment, as its "
            "semantics define; the Verilog leaves that implicit"),
    Allowed("PROCASSINIT", "every register gets its init value in its declaration (the FPGA "
            "power-up value) and again on reset in its always block"),
    Allowed("CASEINCOMPLETE", "Amaranth assigns each signal its default before a case "
            "statement, so values no case covers keep the default (Verilator's LATCH check, "
            "which would flag a real latch, stays on)"),
    Allowed("DECLFILENAME", "Amaranth writes a design's submodules (pe.core, ...) into the one "
            "file named after the top module"),
    Allowed("UNUSEDSIGNAL", "Amaranth keeps a named wire for every signal, struct field view "
            "(i__payload.last), submodule port and temporary ($12), and slices wider "
            "intermediates, whether or not logic reads all of them; an unused input port "
            "of the top module is still reported", top_inputs=False),
    Allowed("UNUSEDSIGNAL", "AXI4-Lite slaves ignore AxPROT and the byte offset of word-"
            "aligned addresses (the AXI4-Lite rule for a slave without protection checks)",
            pattern=r"'\w*__(awprot|arprot)'|'\w*__(awaddr|araddr)'\[1:0\]"),
    Allowed("ASCRANGE", "Amaranth declares a zero-width signal (the address of a one-word "
            "memory, a counter over range(1)) as [-1:0]; nothing reads or drives it",
            pattern=r"\[-1:0\]"),
    Allowed("CMPCONST", "at the smallest sizes (one row, one entry) a generic bound check "
            "such as remaining <= 1 on a 1-bit counter folds to a constant; only ordering "
            "comparisons are covered (an == that can never hold may be a width bug)",
            source=r"[<>]=? \d+'h[0-9a-f]+;\s*$"),
    Allowed("UNUSEDSIGNAL", "an AXI4 master that issues every transaction with one ID gets "
            "its responses in order and need not read BID/RID (the DMA)",
            pattern=r"'\w*__(bid|rid)'"),
)

_WARNING = re.compile(r"^%Warning-(\w+): ([^:]+):(\d+):(?:\d+:)? (.*)$", re.M)
_SIGNAL = re.compile(r"'([^']+)'")


@dataclass(frozen=True)
class LintWarning:
    """One Verilator warning: code, line of the Verilog, message, and whether it is about an
    input port of the top module."""

    code: str
    line: int
    message: str
    top_input: bool = False
    source: str = ""  # the Verilog line

    def __str__(self) -> str:
        return f"line {self.line}: %Warning-{self.code}: {self.message}"


@dataclass
class LintReport:
    """Every warning of one lint run, split into allowlisted and findings."""

    name: str
    verilog: Path
    findings: list[LintWarning] = field(default_factory=list)
    allowed_by: Counter = field(default_factory=Counter)  # Allowed -> warnings it covered

    @property
    def allowed(self) -> Counter:
        """Allowlisted warnings per code."""
        counts = Counter()
        for entry, n in self.allowed_by.items():
            counts[entry.code] += n
        return counts

    @property
    def clean(self) -> bool:
        """No warning outside the allowlist."""
        return not self.findings


def _top_inputs(text: str, top: str) -> tuple[set[str], tuple[int, int]]:
    """Input port names of module ``top``, and the first and last lines it spans."""
    start = re.search(rf"^module {re.escape(top)}\(", text, re.M)
    end = text.find("\nendmodule", start.end())
    names = set(re.findall(r"^\s*input\s+(?:wire\s+)?(?:signed\s+)?(?:\[[^\]]+\]\s*)?"
                           r"(\S+?);", text[start.end():end], re.M))
    return names, (text.count("\n", 0, start.start()) + 1, text.count("\n", 0, end) + 1)


def lint_verilog(text: str, top: str, work_dir: Path | None = None) -> LintReport:
    """Lint Verilog ``text`` whose top module is ``top`` with ``-Wall``."""
    from sim.runner import verilator_env

    verilator_env()
    work = Path(work_dir or tempfile.mkdtemp(prefix=f"lint-{top}-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / f"{top}.v"
    source.write_text(text)
    result = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top,
                             str(source)], capture_output=True, text=True)
    if result.returncode != 0 and "%Warning" not in result.stderr:
        raise RuntimeError(f"verilator failed on {source}:\n{result.stderr[-2000:]}")
    inputs, (top_first, top_last) = _top_inputs(text, top)
    lines = text.splitlines()
    report = LintReport(top, source)
    for code, _file, line, message in _WARNING.findall(result.stderr):
        signal = _SIGNAL.search(message)
        line = int(line)
        top_input = (signal is not None and signal.group(1) in inputs
                     and top_first <= line <= top_last)
        warning = LintWarning(code, line, message, top_input,
                              lines[line - 1] if 0 < line <= len(lines) else "")
        entry = next((a for a in LINT_ALLOWLIST if a.covers(warning)), None)
        if entry is None:
            report.findings.append(warning)
        else:
            report.allowed_by[entry] += 1
    return report


def lint_design(component, name: str, work_dir: Path | None = None) -> LintReport:
    """Emit ``component`` as module ``name`` (exactly as ``accelgen emit`` does) and lint it."""
    return lint_verilog(verilog_text(component, check_module_name(name)), name, work_dir)
