"""What reconfigurability costs on a real FPGA: the PE array against a minimal fixed-function MAC
array (``hw.mac_array``), both placed and routed for the ECP5-85F by the same flow.

Each core sits in :class:`boards.harness.FmaxHarness` (every port bit driven from a shift chain
or captured in a register; the core kept as its own module) with its clock from the PLL at the
target frequency. Resources are the core's own cells from Yosys (LUTs = LUT4 + 2 per CCU2C
carry cell, the two LUT4s each one occupies); Fmax is nextpnr's after routing. Writes JSON, a
PNG and the Markdown tables the README shows.

Where the PE array's LUTs go: :func:`lane_costs` synthesizes one int8 PE lane alone for each op
set of :data:`LANE_OP_SETS` (``mul`` only, ``mul`` plus one op, all ops), so the table shows
what each op adds to a lane; the array adds its reduction trees and accumulators, which the
baseline has too. :func:`lane_floor` sets the all-op int8 lane beside the lane written by hand
for ECP5 (:data:`HAND_LANE_FLOOR`, figures measured outside the project): the ECP5 netlist
(``hw.pe.mapped_lane``'s LUT4 primitives), the portable Verilog ``accelgen emit pe`` writes,
and a lane as the 8x8 array has it (its row's op decode).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from amaranth.back import verilog

from boards import get_board
from boards.harness import CORE_NAME, FmaxHarness, keep_core_script
from golden.pe import OP_NAMES
from hw.mac_array import MACArray
from hw.pe import PE
from hw.pe_array import PEArray
from hw.pipeline import StreamPipeline

from ..build import BuildError, build_top, toolchain_env
from ..emit import atomic_write, port_map, verilog_text
from .figures import pyplot, save_figure
from .fpga_report import parse_yosys_stat
from .provenance import measured_with, source_digest

__all__ = ["BenchDesign", "DESIGNS", "LANE_OP_SETS", "core_resources", "synthesize_core",
           "place_and_route_core", "bench_design",
           "lane_costs", "markdown_table", "lane_table", "HAND_LANE_FLOOR", "lane_floor",
           "floor_table", "write_fpga_bench", "README_MARKERS"]

class BenchDesign(NamedTuple):
    """One core of the bench: its table label, size, generator (``pe-array`` or
    ``mac-array``), extra generator parameters, nextpnr's router and its seed (None:
    nextpnr's default)."""

    label: str
    rows: int
    cols: int
    kind: str
    params: dict
    router: str = "router1"
    seed: int | None = None


#: The cores measured by default.
DESIGNS = [
    BenchDesign("PE array", 2, 2, "pe-array", {}),
    BenchDesign("MAC baseline", 2, 2, "mac-array", {}),
    BenchDesign("PE array", 4, 4, "pe-array", {}),
    BenchDesign("MAC baseline", 4, 4, "mac-array", {}),
    # At 8x8 the DSPs spread over the die: the routes into and out of them get cycles of their
    # own (multiplier_stages=4: 3 gives the route out one). router2: router1 had not routed
    # the mapped all-op array after 20 minutes (issue 18), over-used wires stuck near 35 000.
    # Without backpressure, as the accelerator uses it (and as the MAC baseline is built), over
    # three placer seeds; with it, o.ready reaches every register's clock enable.
    *(BenchDesign("PE array, all ops, 4 multiplier stages, no backpressure", 8, 8, "pe-array",
                  {"multiplier_stages": 4, "backpressure": False}, "router2", seed)
      for seed in (1, 2, 3)),
    BenchDesign("PE array, all ops, 4 multiplier stages", 8, 8, "pe-array",
                {"multiplier_stages": 4}, "router2", 2),
    BenchDesign("PE array, ops mul+madd, 3 multiplier stages", 8, 8, "pe-array",
                {"ops": ("mul", "madd"), "multiplier_stages": 3}),
    BenchDesign("PE array, op mul (modes only), 2 multiplier stages", 8, 8, "pe-array",
                {"ops": ("mul",), "multiplier_stages": 2}),
    BenchDesign("MAC baseline", 8, 8, "mac-array", {}),
]
BOARD, TARGET_MHZ = "ulx3s-85f", 100.0

#: Op sets of one PE lane measured by :func:`lane_costs`: the multiplier alone, each op added
#: to it, and every op (the array's default).
LANE_OP_SETS = [("mul",), *(("mul", op) for op in OP_NAMES if op != "mul"), OP_NAMES]


def core_resources(cells: dict[str, int]) -> dict[str, int]:
    """ECP5 resources of a core from its Yosys cell counts."""
    return {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
            "ffs": cells.get("TRELLIS_FF", 0),
            "dsps": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
            "brams": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0)}


def synthesize_core(core, directory: Path) -> dict[str, int]:
    """Yosys ``synth_ecp5`` of the core's Verilog alone (no harness, no place and route),
    elaborated for the bench's board as in the harness (the PE's DSP instances): its cell
    counts. The fallback when the harness build fails inside Yosys."""
    platform = get_board(BOARD).platform()
    return synthesize_verilog(verilog.convert(core, name=CORE_NAME, platform=platform,
                                              ports=port_map(core)), directory)


def synthesize_verilog(text: str, directory: Path) -> dict[str, int]:
    """Yosys ``synth_ecp5`` of Verilog whose top module is :data:`CORE_NAME`, flattened after
    synthesis (modules kept apart during it count into the top): its cell counts."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "core.v").write_text(text)
    env = toolchain_env("ecp5")
    log = directory / "synth.log"
    # -q -l as Amaranth's build scripts run it: YoWASP Yosys's ABC step can end the process
    # early (exit status 0) when the full log goes to stdout.
    done = subprocess.run([env["YOSYS"], "-q", "-l", log.name, "-p",
                           f"read_verilog core.v; synth_ecp5 -top {CORE_NAME}; "
                           "setattr -mod -unset keep_hierarchy; flatten; stat"],
                          cwd=directory, capture_output=True, text=True, env=env)
    if done.returncode or "Printing statistics" not in log.read_text():
        raise BuildError(f"synthesis of the core alone failed too (log: {log})")
    return parse_yosys_stat(log.read_text())[CORE_NAME]


def place_and_route_core(core, directory: Path, *, target_mhz: float = TARGET_MHZ,
                         router: str = "router1", seed: int | None = None,
                         on_stage: Callable[[str], None] | None = None) -> dict:
    """Place and route ``core`` in :class:`~boards.harness.FmaxHarness` on the bench's board:
    the core's own resources (:func:`core_resources`), ``fmax_mhz`` after routing,
    ``timing_met`` and the build's ``seconds`` and ``directory``. ``router`` is nextpnr's
    (``router1`` or ``router2``), ``seed`` its placer's seed (None: its default). Raises
    :class:`~gen.build.BuildError` when a tool fails."""
    if router not in ("router1", "router2"):
        raise ValueError(f"router must be router1 or router2, got {router!r}")
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    board = get_board(BOARD)
    result = build_top(board, FmaxHarness(core, board, freq_hz=target_mhz * 1e6), "bench",
                       Path(directory), on_stage=on_stage,
                       overrides={"script_after_read": keep_core_script("bench"),
                                  "nextpnr_opts": f"--router {router}"
                                  + ("" if seed is None else f" --seed {seed}")})
    return _routed(result.report, result.directory)


def _routed(report: dict, directory) -> dict:
    (timing,) = report["clocks"].values()
    return {**core_resources(report["modules"][f"bench.{CORE_NAME}"]),
            "fmax_mhz": timing["fmax_mhz"], "timing_met": timing["met"],
            "seconds": report["seconds"], "directory": str(directory)}


def bench_design(label: str, rows: int, cols: int, kind: str, params: dict, out_dir: Path, *,
                 target_mhz: float = TARGET_MHZ, router: str = "router1",
                 seed: int | None = None,
                 on_stage: Callable[[str], None] | None = None) -> dict:
    """Place and route one int8 core in the harness; return its row of the table.

    A build directory left by an earlier run of the same accelgen source is read instead of
    rebuilt."""
    suffix = "-".join(f"{k}{'_'.join(v) if isinstance(v, tuple) else v}"
                      for k, v in params.items())
    directory = out_dir / (f"{kind}-{rows}x{cols}{'-' + suffix if suffix else ''}"
                           f"{'' if router == 'router1' else '-' + router}"
                           f"{'' if seed is None else f'-seed{seed}'}")
    factory = PEArray if kind == "pe-array" else MACArray

    def core():
        return factory(rows=rows, cols=cols, in_width=8, signed=True, **params)

    row = {"label": label, "kind": kind, "rows": rows, "cols": cols,
           "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
           "target_mhz": target_mhz, "router": router, "seed": seed}
    # A build is reused only when accelgen's source (hardware, harness, flow) is the one that
    # produced it; any change to the code measures it again.
    stamp, source = directory / "accelgen_source", source_digest()
    if ((directory / "report.json").exists() and stamp.exists()
            and stamp.read_text().strip() == source):
        measured = _routed(json.loads((directory / "report.json").read_text()), directory)
    else:
        try:
            measured = place_and_route_core(core(), directory, target_mhz=target_mhz,
                                            router=router, seed=seed, on_stage=on_stage)
            atomic_write(stamp, source + "\n")
        except BuildError as error:
            # Recorded, not hidden. When the harness build fails inside Yosys, the core alone
            # may still synthesize, which gives its resources; Fmax stays unknown.
            row = {**row, "error": str(error), "directory": str(directory)}
            try:
                cells = synthesize_core(core(), Path(f"{directory}.synth"))
            except BuildError as again:
                return {**row, "error": f"{error}; {again}"}
            resources = core_resources(cells)
            return {**row, **resources, "luts_per_mac": resources["luts"] / (rows * cols),
                    "dsps_per_mac": resources["dsps"] / (rows * cols), "fmax_mhz": None,
                    "synthesis_only": True}
    macs = rows * cols
    return {**row, **measured, "luts_per_mac": measured["luts"] / macs,
            "dsps_per_mac": measured["dsps"] / macs}


def lane_costs(out_dir: Path, op_sets=None) -> list[dict]:
    """ECP5 resources of one int8 PE lane per op set (Yosys ``synth_ecp5`` of the lane alone).

    Returns one row per op set: ``ops``, ``luts``, ``ffs``, ``dsps`` and ``added_luts`` (LUTs
    over the ``mul``-only lane).
    """
    rows = []
    for ops in op_sets or LANE_OP_SETS:
        cells = synthesize_core(PE(in_width=8, signed=True, ops=tuple(ops)),
                                Path(out_dir) / f"lane-{'_'.join(ops)}")
        rows.append({"ops": list(ops), **core_resources(cells)})
    base = next((r["luts"] for r in rows if r["ops"] == ["mul"]), None)
    for row in rows:
        row["added_luts"] = None if base is None else row["luts"] - base
    return rows


#: The all-op int8 lane written by hand for ECP5, as issue 18 reports it: measured outside the
#: project (Yosys 0.69 ``synth_ecp5``, LUTs = LUT4 + 2 per CCU2C, beyond the one MULT18X18D),
#: its netlist checked on all 2**27 (op, a, b, c) inputs. Reference figures, not measured here.
HAND_LANE_FLOOR = [
    ("by hand: a plain `case` statement", 371, 43),
    ("by hand: every op as `a*y + z` on one multiplier and one adder, generic RTL", 195, 43),
    ("by hand: the same, saturation only on product bits [22:15], a 16-bit adder, one shift "
     "decoder, each output bit one LUT4", 145, 43),
    ("by hand: the same logic mapped to LUT4 by hand", 89, 43),
    ("by hand: the same, the op's effect on `b` by the input register's reset", 85, 51),
]


def lane_floor(out_dir: Path) -> list[dict]:
    """The all-op int8 lane as accelgen builds it, synthesized alone for ECP5: ``label``,
    ``luts``, ``ffs``, ``dsps`` per row."""
    out_dir = Path(out_dir)
    builds = [
        ("accelgen: `PE()` for ECP5 (LUT4 primitives, hw.pe.mapped_lane)",
         lambda d: synthesize_core(PE(), d)),
        ("accelgen: the portable Verilog of `accelgen emit pe` (with its stream wrapper)",
         lambda d: synthesize_verilog(verilog_text(StreamPipeline(PE()), CORE_NAME), d)),
        ("accelgen: a lane of the 8x8 array (its op decode shared, 4 multiplier stages)",
         lambda d: synthesize_core(PE(multiplier_stages=4, decoded_op=True), d)),
    ]
    return [{"label": label, **core_resources(build(out_dir / f"floor-{k}"))}
            for k, (label, build) in enumerate(builds)]


def floor_table(rows: list[dict]) -> str:
    """Markdown table of the hand-written floor (:data:`HAND_LANE_FLOOR`) and
    :func:`lane_floor`'s rows."""
    lines = ["| all-op int8 lane, ECP5 synthesis | LUTs | FFs |", "|---|---:|---:|"]
    lines += [f"| {label} | {luts} | {ffs} |" for label, luts, ffs in HAND_LANE_FLOOR]
    lines += [f"| {r['label']} | {r['luts']} | {r['ffs']} |" for r in rows]
    return "\n".join(lines) + "\n"


def lane_table(rows: list[dict]) -> str:
    """Markdown table of :func:`lane_costs`."""
    lines = ["| PE lane ops | LUTs | added to mul | FFs | DSPs |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        ops = "all" if tuple(r["ops"]) == OP_NAMES else " + ".join(r["ops"])
        added = "-" if r["added_luts"] is None else f"{r['added_luts']:+d}"
        lines.append(f"| {ops} | {r['luts']} | {added} | {r['ffs']} | {r['dsps']} |")
    return "\n".join(lines) + "\n"


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
        flow = [r["router"]] if r.get("router", "router1") != "router1" else []
        flow += [f"seed {r['seed']}"] if r.get("seed") is not None else []
        label = f"{r['label']} ({', '.join(flow)})" if flow else r["label"]
        lines.append(f"| {label} | {r['rows']}x{r['cols']} int8 | {r['luts']} | "
                     f"{r['luts_per_mac']:.1f} | {r['ffs']} | {r['dsps_per_mac']:.2f} | "
                     f"{fmax} | {ratio} |")
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()

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
    save_figure(fig, path, dpi=120)


def write_fpga_bench(out_dir: str | Path, designs=None, *, lane_op_sets=None,
                     on_stage: Callable[[str], None] | None = None) -> list[Path]:
    """Build every design and synthesize the PE lanes, then write ``fpga_bench.json``,
    ``fpga_bench.md`` (both tables) and ``fpga_bench.png`` into ``out_dir``. A design whose
    build directory holds a report from the same accelgen source is not rebuilt
    (:func:`bench_design`)."""
    out_dir = Path(out_dir)
    rows = [bench_design(d.label, d.rows, d.cols, d.kind, d.params, out_dir / "builds",
                         router=d.router, seed=d.seed, on_stage=on_stage)
            for d in (BenchDesign(*d) for d in (designs or DESIGNS))]
    if on_stage:
        on_stage("PE lanes: synthesis")
    lanes = lane_costs(out_dir / "lanes", lane_op_sets)
    floor = lane_floor(out_dir / "lanes")
    paths = [out_dir / "fpga_bench.json", out_dir / "fpga_bench.md", out_dir / "fpga_bench.png"]
    # The machine, the tools and the source digest the builds are stamped with.
    atomic_write(paths[0], json.dumps({"board": BOARD, "target_mhz": TARGET_MHZ,
                                       **measured_with(["yosys", "nextpnr-ecp5"]),
                                       "source": source_digest(), "rows": rows,
                                       "lanes": lanes, "lane_floor": floor,
                                       "hand_lane_floor": [dict(zip(("label", "luts", "ffs"), r))
                                                           for r in HAND_LANE_FLOOR]},
                                      indent=2) + "\n")
    atomic_write(paths[1], markdown_table(rows) + "\n" + lane_table(lanes) + "\n"
                 + floor_table(floor))
    _plot(rows, paths[2])
    return paths


README_MARKERS = ("<!-- fpga-bench:start -->\n", "<!-- fpga-bench:end -->")
