"""What reconfigurability costs on a real FPGA: the PE array against a minimal fixed-function MAC
array (``hw.mac_array``), both placed and routed for the ECP5-85F by the same flow.

Each core sits in :class:`boards.harness.FmaxHarness` (every port bit driven from a shift chain
or captured in a register; the core kept as its own module) with its clock from the PLL at the
target frequency. Resources are the core's own cells from Yosys (LUTs = LUT4 + 2 per CCU2C
carry cell, the two LUT4s each one occupies); Fmax is nextpnr's after routing. Writes JSON, a
PNG and the Markdown table the README shows.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from amaranth.back import verilog

from boards import get_board
from boards.harness import CORE_NAME, FmaxHarness, keep_core_script
from hw.mac_array import MACArray
from hw.pe_array import PEArray

from .build import BuildError, build_top, toolchain_env
from .emit import atomic_write
from .fpga_report import parse_yosys_stat

__all__ = ["DESIGNS", "core_resources", "synthesize_core", "bench_design", "markdown_table",
           "write_fpga_bench", "update_readme"]

#: (label, rows, cols, kind, extra PE-array parameters) measured by default.
DESIGNS = [
    ("PE array", 2, 2, "pe-array", {}),
    ("MAC baseline", 2, 2, "mac-array", {}),
    ("PE array", 4, 4, "pe-array", {}),
    ("MAC baseline", 4, 4, "mac-array", {}),
    # At 8x8 the DSPs spread over the die: the routes into and out of them set Fmax, so the
    # PE's second multiplier stage (the DSP input register) is measured too.
    ("PE array, 2 multiplier stages", 8, 8, "pe-array", {"multiplier_stages": 2}),
    ("PE array, ops mul+madd, 2 multiplier stages", 8, 8, "pe-array",
     {"ops": ("mul", "madd"), "multiplier_stages": 2}),
    ("PE array, op mul (modes only)", 8, 8, "pe-array", {"ops": ("mul",)}),
    ("PE array, op mul (modes only), 2 multiplier stages", 8, 8, "pe-array",
     {"ops": ("mul",), "multiplier_stages": 2}),
    ("MAC baseline", 8, 8, "mac-array", {}),
]
BOARD, TARGET_MHZ = "ulx3s-85f", 100.0


def core_resources(cells: dict[str, int]) -> dict[str, int]:
    """ECP5 resources of a core from its Yosys cell counts."""
    return {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
            "ffs": cells.get("TRELLIS_FF", 0),
            "dsps": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
            "brams": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0)}


def synthesize_core(core, directory: Path) -> dict[str, int]:
    """Yosys ``synth_ecp5`` of the core's Verilog alone (no harness, no place and route): its
    cell counts. The fallback when the harness build fails inside Yosys."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "core.v").write_text(verilog.convert(core, name=CORE_NAME))
    env = toolchain_env("ecp5")
    log = directory / "synth.log"
    # -q -l as Amaranth's build scripts run it: YoWASP Yosys's ABC step can end the process
    # early (exit status 0) when the full log goes to stdout.
    done = subprocess.run([env["YOSYS"], "-q", "-l", log.name, "-p",
                           f"read_verilog core.v; synth_ecp5 -top {CORE_NAME}; stat"],
                          cwd=directory, capture_output=True, text=True, env=env)
    if done.returncode or "Printing statistics" not in log.read_text():
        raise BuildError(f"synthesis of the core alone failed too (log: {log})")
    return parse_yosys_stat(log.read_text())[CORE_NAME]


def bench_design(label: str, rows: int, cols: int, kind: str, params: dict, out_dir: Path, *,
                 target_mhz: float = TARGET_MHZ,
                 on_stage: Callable[[str], None] | None = None) -> dict:
    """Place and route one core in the harness; return its row of the table."""
    board = get_board(BOARD)
    name = "bench"
    suffix = "-".join(f"{k}{'_'.join(v) if isinstance(v, tuple) else v}"
                      for k, v in params.items())
    directory = out_dir / f"{kind}-{rows}x{cols}{'-' + suffix if suffix else ''}"
    if (directory / "report.json").exists():  # built by an earlier run: measured already
        report = json.loads((directory / "report.json").read_text())
    else:
        factory = PEArray if kind == "pe-array" else MACArray

        def core():
            return factory(rows=rows, cols=cols, in_width=8, signed=True, **params)

        try:
            report = build_top(board, FmaxHarness(core(), board, freq_hz=target_mhz * 1e6),
                               name, directory, on_stage=on_stage,
                               overrides={"script_after_read": keep_core_script(name)}).report
        except BuildError as error:
            # Recorded, not hidden: YoWASP Yosys 0.70's ABC9 fails on the 8x8 MAC array in
            # the harness (an internal assertion in ABC reintegration). The core alone still
            # synthesizes, which gives its resources; Fmax stays unknown.
            row = {"label": label, "kind": kind, "rows": rows, "cols": cols,
                   "error": str(error), "directory": str(directory)}
            try:
                cells = synthesize_core(core(), Path(f"{directory}.synth"))
            except BuildError as again:
                return {**row, "error": f"{error}; {again}"}
            resources = core_resources(cells)
            return {**row, **resources, "luts_per_mac": resources["luts"] / (rows * cols),
                    "dsps_per_mac": resources["dsps"] / (rows * cols), "fmax_mhz": None,
                    "synthesis_only": True}
    resources = core_resources(report["modules"][f"{name}.{CORE_NAME}"])
    (timing,) = report["clocks"].values()
    macs = rows * cols
    return {"label": label, "kind": kind, "rows": rows, "cols": cols, "params": {
                k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
            **resources, "luts_per_mac": resources["luts"] / macs,
            "dsps_per_mac": resources["dsps"] / macs, "fmax_mhz": timing["fmax_mhz"],
            "target_mhz": target_mhz, "timing_met": timing["met"],
            "seconds": report["seconds"],
            "directory": str(directory)}


def markdown_table(rows: list[dict]) -> str:
    """The README table: one line per core, the LUT ratio against the same-size baseline."""
    baseline = {(r["rows"], r["cols"]): r for r in rows if r["kind"] == "mac-array"}
    lines = ["| core | size | LUTs | LUTs/MAC | FFs | DSPs/MAC | Fmax (MHz) | LUTs vs "
             "baseline |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r and "luts" not in r:
            lines.append(f"| {r['label']} | {r['rows']}x{r['cols']} int8 | not built: "
                         f"{r['error'].split(' (logs')[0]} | | | | | |")
            continue
        base = baseline.get((r["rows"], r["cols"]))
        base = None if base is None or "luts" not in base else base
        ratio = f"{r['luts'] / base['luts']:.2f}x" if base else "-"
        fmax = "synthesis only" if r.get("synthesis_only") else f"{r['fmax_mhz']:.1f}"
        lines.append(f"| {r['label']} | {r['rows']}x{r['cols']} int8 | {r['luts']} | "
                     f"{r['luts_per_mac']:.1f} | {r['ffs']} | {r['dsps_per_mac']:.2f} | "
                     f"{fmax} | {ratio} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label and "luts" in r]
        left.plot([r["rows"] * r["cols"] for r in mine], [r["luts_per_mac"] for r in mine],
                  "o-", label=label)
        timed = [r for r in mine if r["fmax_mhz"] is not None]
        right.plot([r["rows"] * r["cols"] for r in timed], [r["fmax_mhz"] for r in timed],
                   "o-", label=label)
    left.set(xscale="log", xlabel="MACs", ylabel="LUTs per MAC", title="LUTs per MAC, ECP5-85F")
    right.axhline(TARGET_MHZ, color="grey", linestyle=":")
    right.set(xscale="log", xlabel="MACs", ylabel="Fmax (MHz)", title="Fmax after routing")
    left.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_fpga_bench(out_dir: str | Path, designs=None, *,
                     on_stage: Callable[[str], None] | None = None) -> list[Path]:
    """Build every design, then write ``fpga_bench.json``, ``fpga_bench.md`` and
    ``fpga_bench.png`` into ``out_dir``. A design whose build directory already holds a report
    is not rebuilt (delete ``out_dir/builds`` to measure again)."""
    out_dir = Path(out_dir)
    rows = [bench_design(*design, out_dir / "builds", on_stage=on_stage)
            for design in (designs or DESIGNS)]
    paths = [out_dir / "fpga_bench.json", out_dir / "fpga_bench.md", out_dir / "fpga_bench.png"]
    atomic_write(paths[0], json.dumps({"board": BOARD, "target_mhz": TARGET_MHZ,
                                       "rows": rows}, indent=2) + "\n")
    atomic_write(paths[1], markdown_table(rows))
    _plot(rows, paths[2])
    return paths


README_MARKERS = ("<!-- fpga-bench:start -->\n", "<!-- fpga-bench:end -->")


def update_readme(path: str | Path, table: str) -> None:
    """Replace the text between the README's fpga-bench markers with ``table``."""
    path = Path(path)
    text = path.read_text()
    start, end = README_MARKERS
    if start not in text or end not in text:
        raise ValueError(f"{path} has no fpga-bench markers ({start.strip()} ... {end})")
    head, rest = text.split(start, 1)
    atomic_write(path, head + start + table + end + rest.split(end, 1)[1])
