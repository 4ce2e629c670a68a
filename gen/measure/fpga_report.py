"""Resource and timing reports from Yosys and nextpnr logs.

Reads what Amaranth's iCE40 and ECP5 flows leave in a build directory: ``<name>.rpt`` (the
Yosys log, with ``stat`` cell counts per module) and ``<name>.tim`` (the nextpnr log, with the
device utilisation after packing and the achieved frequency of every clock after routing).
Works on any such directory, whether ``accelgen build`` made it or not.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["parse_yosys_stat", "parse_nextpnr_log", "FAMILY_RESOURCES", "build_report",
           "report_directory"]

# Per family: summary name -> (nextpnr bel type, Yosys cell types counted for it).
FAMILY_RESOURCES = {
    "ice40": {"luts": ("ICESTORM_LC", ("SB_LUT4",)),
              "ffs": (None, ("SB_DFF", "SB_DFFE", "SB_DFFSR", "SB_DFFSS", "SB_DFFESR",
                             "SB_DFFESS", "SB_DFFR", "SB_DFFS", "SB_DFFER", "SB_DFFES")),
              "brams": ("ICESTORM_RAM", ("SB_RAM40_4K",)),
              "dsps": ("ICESTORM_DSP", ("SB_MAC16",))},
    "ecp5": {"luts": ("TRELLIS_COMB", ("LUT4",)),
             "ffs": ("TRELLIS_FF", ("TRELLIS_FF",)),
             "brams": ("DP16KD", ("DP16KD", "PDPW16KD")),
             "dsps": ("MULT18X18D", ("MULT18X18D",))},
}

# Lines of a Yosys `stat` block that are totals, not cell types.
_STAT_TOTALS = {"wires", "wire bits", "public wires", "public wire bits", "ports", "port bits",
                "cells", "submodules", "memories", "memory bits", "processes"}
_COUNT_LINE = re.compile(r"^\s+(\d+)\s+(\S+)\s*$")
_MODULE_LINE = re.compile(r"^=== (\S+) ===\s*$")
_UTIL_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
# nextpnr reports each clock after placement and again after routing; a failing clock's line
# is a warning ("Warning: Max frequency ... (FAIL at ...)"), a passing one's is "Info:".
_FMAX_LINE = re.compile(r"^(?:Info|Warning): Max frequency for clock '([^']+)': ([\d.]+) MHz "
                        r"\((PASS|FAIL) at ([\d.]+) MHz\)")


def parse_yosys_stat(text: str) -> dict[str, dict[str, int]]:
    """Cell counts per module from the last ``stat`` in a Yosys log.

    Returns ``{module: {cell type: count}}`` for each ``=== module ===`` block (local counts,
    Yosys-internal ``$scopeinfo`` cells left out). With a flattened design there is one module.
    """
    start = text.rfind("Printing statistics.")
    if start < 0:
        raise ValueError("no Yosys statistics in the log (was `stat` run?)")
    modules: dict[str, dict[str, int]] = {}
    current = None
    for line in text[start:].splitlines():
        if (match := _MODULE_LINE.match(line)):
            name = match.group(1)
            current = None if name == "design" else modules.setdefault(name, {})
        elif line.startswith("=== design hierarchy"):
            current = None
        elif current is not None and (match := _COUNT_LINE.match(line)):
            count, cell = int(match.group(1)), match.group(2)
            if cell not in _STAT_TOTALS and not cell.startswith("$scopeinfo"):
                current[cell] = current.get(cell, 0) + count
    return modules


def parse_nextpnr_log(text: str) -> dict:
    """Device utilisation and achieved clock frequencies from a nextpnr log.

    Returns ``{"utilisation": {bel: {"used", "available"}}, "clocks": {clock: {"fmax_mhz",
    "constraint_mhz", "met"}}}``, from the last utilisation table (after packing) and the last
    report per clock (after routing).
    """
    utilisation: dict[str, dict[str, int]] = {}
    clocks: dict[str, dict] = {}
    lines = text.splitlines()
    tables = [i for i, line in enumerate(lines) if line.startswith("Info: Device utilisation")]
    if not tables:
        raise ValueError("no device utilisation in the nextpnr log (did packing finish?)")
    for line in lines[tables[-1] + 1:]:
        match = _UTIL_LINE.match(line)
        if not match:
            break
        utilisation[match.group(1)] = {"used": int(match.group(2)),
                                       "available": int(match.group(3))}
    for line in lines:
        if (match := _FMAX_LINE.match(line)):
            clocks[match.group(1)] = {"fmax_mhz": float(match.group(2)),
                                      "constraint_mhz": float(match.group(4)),
                                      "met": match.group(3) == "PASS"}
    return {"utilisation": utilisation, "clocks": clocks}


def build_report(family: str, yosys_log: str, nextpnr_log: str, top: str | None = None) -> dict:
    """Combine both logs into one report with a per-family resource summary.

    ``summary`` has ``luts``, ``ffs``, ``brams`` and ``dsps`` (nextpnr's counts after packing;
    iCE40 FFs from Yosys, as nextpnr counts them inside logic cells), each with ``available``
    where the device says; ``fmax_mhz`` per clock; and ``timing_met`` (every clock's achieved
    frequency at or above its constraint). ``modules`` keeps Yosys's cell counts per module.
    ``top`` names the module whose Yosys counts stand in when nextpnr has no count.
    """
    if family not in FAMILY_RESOURCES:
        raise ValueError(f"family must be one of {', '.join(FAMILY_RESOURCES)}, got {family!r}")
    modules = parse_yosys_stat(yosys_log)
    pnr = parse_nextpnr_log(nextpnr_log)
    cells = modules.get(top) if top else None
    if cells is None:  # the flattened top: the only (or largest) module
        cells = max(modules.values(), key=lambda c: sum(c.values()), default={})
    summary = {}
    for name, (bel, cell_types) in FAMILY_RESOURCES[family].items():
        if bel is not None and bel in pnr["utilisation"]:
            summary[name] = dict(pnr["utilisation"][bel])
        else:
            summary[name] = {"used": sum(cells.get(t, 0) for t in cell_types)}
            if bel is None and "ICESTORM_LC" in pnr["utilisation"]:
                summary[name]["available"] = pnr["utilisation"]["ICESTORM_LC"]["available"]
    clocks = pnr["clocks"]
    return {
        "family": family,
        "summary": summary,
        "clocks": clocks,
        "timing_met": bool(clocks) and all(c["met"] for c in clocks.values()),
        "utilisation": pnr["utilisation"],
        "modules": modules,
    }


def report_directory(directory: str | Path, family: str | None = None) -> dict:
    """The report of a build directory holding one ``*.rpt`` (Yosys) and ``*.tim`` (nextpnr)
    log; the family is read from the utilisation table if not given."""
    directory = Path(directory)
    rpts, tims = sorted(directory.glob("*.rpt")), sorted(directory.glob("*.tim"))
    if not directory.is_dir():
        raise ValueError(f"build directory {directory} does not exist")
    if len(rpts) != 1 or len(tims) != 1:
        raise ValueError(f"{directory} must hold one Yosys log (*.rpt) and one nextpnr log "
                         f"(*.tim); found {len(rpts)} and {len(tims)}")
    nextpnr_log = tims[0].read_text(errors="replace")
    if family is None:
        family = "ice40" if "ICESTORM_LC" in nextpnr_log else "ecp5"
    report = build_report(family, rpts[0].read_text(errors="replace"), nextpnr_log,
                          top=rpts[0].stem)
    report["design"] = rpts[0].stem
    return report
