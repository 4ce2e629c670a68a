"""The whole accelerator on an ECP5-85F: LUTs, DSPs, BRAMs, Fmax, whether it fits, sentences/s.

The design is the registered ``accelerator`` (:class:`hw.accelerator_top.AcceleratorTop`: the
core behind its AXI4-Lite registers, with its AXI4 master), built in three steps of increasing
cost:

1. :func:`multiplier_estimate`: the 18x18 DSP blocks of the core elaborated for the ECP5
   (Amaranth's netlist, no synthesis): its ``MULT18X18D`` instances, and ``ceil(a/18) *
   ceil(b/18)`` for each product Yosys maps to blocks (seconds: the fast tests use it);
2. :func:`synthesize`: Yosys ``synth_ecp5`` of the design alone, its LUTs (LUT4 + 2 per CCU2C),
   flip-flops, DSPs (MULT18X18D) and block RAMs (DP16KD), how each memory mapped
   (:func:`memory_mapping`): whether it fits the device;
3. :func:`place_and_route`: the design in :class:`boards.harness.FmaxHarness` placed and routed
   by nextpnr-ecp5 for the ULX3S-85F with a timeout: Fmax.

Why the nonlinear units have their own lane count (``nl_lanes``): with a lane per element of a
line, the exp, GELU and SiLU units hold ``3 * rows * cols`` lanes of a few multipliers each,
which alone need more DSPs than the device has at 4x8 and above. With ``nl_lanes`` lanes an NL
instruction streams a line in ``rows * cols / nl_lanes`` cycles instead of one.

Block RAM: the scratchpad has one write port and three read ports (compute two, the store DMA
one), so Yosys maps it to three copies of ``depth x rows*cols*16`` bits, each a simple
dual-port array of DP16KD written by the write port: ``3 * depth * rows * cols / 1024``
blocks (an 18-bit-wide block holds 1024 elements of 16 bits), 192 of the 208 for 8x8 and 1024
lines. The program memory takes ``max_program * 128 / 16384`` more (8 for 1024 words).

Sentences per second are ``Fmax / cycles per sentence``, the cycles from the cycle model of the
compiled MiniLM program (given by the caller).
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
from pathlib import Path

from amaranth.back import rtlil, verilog

from boards import get_board
from boards.harness import CORE_NAME, FmaxHarness, keep_core_script
from golden.accelerator import AcceleratorConfig

from ..build import BuildError, build_top, toolchain_env
from ..emit import atomic_write
from .fpga_bench import core_resources
from .fpga_report import parse_nextpnr_log, parse_yosys_stat
from .provenance import measured_with

__all__ = ["ECP5_85F", "BOARD", "PLACERS", "ROUTERS", "FLOW_NEXTPNR_OPTIONS",
           "check_pnr_options", "MINILM_UNITS", "DEFAULT_CONFIGS",
           "SYNTH_OPTS", "COARSE_WITHOUT_SHARE", "FAST_MAP_LUTS", "synth_script",
           "fpga_config", "multiplier_estimate", "fits",
           "memory_mapping", "synthesize", "place_and_route", "failed_build_resources",
           "sentences_per_second", "minilm_cycles",
           "measure_accelerator", "write_fpga_accelerator"]

#: Capacity of the LFE5U-85F: LUT4s, 18x18 multipliers (MULT18X18D), 18 Kbit block RAMs.
ECP5_85F = {"luts": 83640, "dsps": 156, "brams": 208}
BOARD = "ulx3s-85f"
#: nextpnr-ecp5's placers and routers.
PLACERS = ("heap", "static", "sa")
ROUTERS = ("router1", "router2")
#: The nextpnr options the place-and-route flow sets itself (Amaranth's ECP5 build script and
#: :func:`place_and_route`'s parameters), which ``nextpnr_args`` may not repeat.
FLOW_NEXTPNR_OPTIONS = ("--placer", "--router", "--no-tmdriv", "--freq", "--json", "--lpf",
                        "--textcfg", "--log", "--package", "--speed", "--12k", "--25k", "--45k",
                        "--85k", "--quiet")

#: The configurations measured by default: the largest arrays with narrow nonlinear units and
#: the scratchpad and program memory sized to the block RAMs. The 8x8 is all-MiniLM-L6-v2's:
#: it builds what the model's programs use, of the NL units GELU alone (not exp and SiLU,
#: Mamba's) and of the PE ops mul, add and madd (not sub, max, min and the shifts).
MINILM_UNITS = {"nl_units": ("gelu",), "pe_ops": ("mul", "add", "madd")}
DEFAULT_CONFIGS = [
    {"rows": 8, "cols": 8, "nl_lanes": 4, "depth": 1024, "max_program": 1024, **MINILM_UNITS},
    {"rows": 4, "cols": 8, "nl_lanes": 4, "depth": 1024, "max_program": 1024},
]


#: ``synth_ecp5`` options. ``-no-rw-check``: a scratchpad read never meets a write of the same
#: line in the same cycle where the result matters (the interlock keeps the engines' ranges
#: apart, an instruction reads a line before it writes it back, and a write of some elements
#: of a line leaves the block RAMs of the others alone), so Yosys need not emulate read-old-data
#: with a register and a comparator per data bit beside each block RAM copy.
SYNTH_OPTS = "-no-rw-check"

#: ``synth_ecp5``'s ``coarse`` stage (Yosys 0.5x-0.69 ``synth_lattice``) without its ``share``
#: pass. ``share`` asks a SAT solver, for every pair of the PE array's 64 x 3 shifters (and the
#: units'), whether one could serve both: on the 8x8 accelerator it answered no to each of
#: 1,637 pairs in the 50 minutes it ran here (13 % of a loaded core), a tenth of the way through.
#: Checked to give the same cells as plain ``synth_ecp5`` on a small design.
COARSE_WITHOUT_SHARE = [
    "proc", "check", "flatten", "tribuf -logic", "deminout", "opt_expr", "opt_clean", "check",
    "opt -nodffe -nosdff", "fsm", "opt", "wreduce", "peepopt", "opt_clean",
    "techmap -map +/cmp2lut.v -D LUT_WIDTH=4", "opt_expr", "opt_clean",
    "techmap -map +/mul2dsp.v -map +/lattice/dsp_map_18x18.v -D DSP_A_MAXWIDTH=18 "
    "-D DSP_B_MAXWIDTH=18 -D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_NAME=$__MUL18X18",
    "chtype -set $mul t:$__soft_mul", "alumacc", "opt", f"memory -nomap {SYNTH_OPTS}",
    "opt_clean",
]


#: ``synth_ecp5``'s ``map_luts`` stage with ABC's classic LUT mapping alone (``abc -lut 4:7``
#: with the script ``strash; if``: LUT4s and the wide LUTs ECP5 builds with PFUMX / L6MUX21),
#: not ABC9's default script (``&scorr; &sweep; &dc2; &dch -f -r; &if; &mfs``), which ran past
#: an hour of a loaded core on the 8x8 accelerator (348,049 AND gates) without finishing. (ABC9
#: with the mapping step alone, ``&st; &if``, finished in minutes, but Yosys 0.69's
#: ``abc9`` then failed an assertion reintegrating its netlist; Yosys 0.6x's ``synth_ecp5`` has
#: no ``-noabc9`` any more.)
FAST_MAP_LUTS = ["check -latchonly -assert", "techmap -map +/lattice/latches_map.v",
                 "abc -lut 4:7 -script +strash;if", "clean"]


def synth_script(top: str, *, fast_lut_map: bool = False) -> list[str]:
    """Yosys commands synthesizing ``top`` for the ECP5 as ``synth_ecp5`` does, in two runs
    around :data:`COARSE_WITHOUT_SHARE`; the last runs ``synth_ecp5 -run map_ram:``. With
    ``fast_lut_map`` it stops before ``map_luts``, runs :data:`FAST_MAP_LUTS` and goes on from
    ``map_cells``."""
    coarse = [f"synth_ecp5 {SYNTH_OPTS} -top {top} -run begin:coarse", *COARSE_WITHOUT_SHARE]
    if not fast_lut_map:
        return [*coarse, f"synth_ecp5 {SYNTH_OPTS} -top {top} -run map_ram:"]
    return [*coarse, f"synth_ecp5 {SYNTH_OPTS} -top {top} -run map_ram:map_luts",
            *FAST_MAP_LUTS, f"synth_ecp5 {SYNTH_OPTS} -top {top} -run map_cells:"]


def fpga_config(**params) -> AcceleratorConfig:
    """An :class:`AcceleratorConfig` from keyword parameters (validated as usual)."""
    return AcceleratorConfig(**params)


def _design(config: AcceleratorConfig):
    from hw.accelerator_top import AcceleratorTop

    return AcceleratorTop(config)


def multiplier_estimate(config: AcceleratorConfig) -> dict:
    """The 18x18 DSP blocks (MULT18X18D) the core takes on the ECP5, from its elaboration for
    the ULX3S-85F (Amaranth's netlist, no synthesis), and its memories' ports.

    Each ``MULT18X18D`` instance (:func:`hw.dsp.registered_product`) is one block. Each ``$mul``
    cell takes ``ceil(a/18) * ceil(b/18)`` blocks as Yosys's ``mul2dsp`` splits it, except
    what ``synth_ecp5`` leaves to logic: a product by a constant power of two (``opt_expr``
    makes it a shift: a ``word_select`` with a signal index is one), one with an operand under
    2 bits, and the copies of one expression: Amaranth lowers an expression once per use
    (an expression used in several places), and ``opt_merge`` keeps one, so the products
    of one source line with the same widths in one module count once.

    Returns
    -------
    dict
        ``multipliers`` (the products on DSP blocks), ``dsps`` (their blocks), ``by_width``
        (``"AxB": count``, instances as ``"MULT18X18D"``) and ``memories`` (per memory, its
        ``write_ports`` and ``read_ports``: a block RAM copy holds one write and one read port,
        so a memory maps to block RAM only with one write port).
    """
    from hw.accelerator import AcceleratorCore

    text = rtlil.convert(AcceleratorCore(config), name="core",
                         platform=get_board(BOARD).platform())
    by_width: dict[str, int] = {}
    dsps = 0
    memories: dict[str, dict] = {}
    for module in re.split(r"^module ", text, flags=re.M)[1:]:
        name = module.split(None, 1)[0].lstrip("\\")
        for kind, memid in re.findall(r"cell \$mem(wr|rd)_v2 \S+\n\s*parameter \\MEMID "
                                      r"\"\\\\(\S+)\"", module):
            ports = memories.setdefault(f"{name}.{memid}", {"write_ports": 0, "read_ports": 0})
            ports["write_ports" if kind == "wr" else "read_ports"] += 1
        instances = len(re.findall(r"^\s*cell \\MULT18X18D ", module, re.M))
        if instances:
            by_width["MULT18X18D"] = by_width.get("MULT18X18D", 0) + instances
            dsps += instances
        seen = set()
        for cell in re.finditer(r"((?:^\s*attribute \\src \"[^\"]*\"\n)*)"
                                r"^\s*cell \$mul \S+\n(.*?)\n\s*end", module, re.S | re.M):
            body = cell.group(2)
            widths = []
            for port in "AB":
                width = int(re.search(rf"parameter \\{port}_WIDTH (\d+)", body).group(1))
                const = re.search(rf"connect \\{port} \d+'([01]+)$", body, re.M)
                if const:
                    value = int(const.group(1), 2)
                    width = 0 if value & (value - 1) == 0 else value.bit_length()
                widths.append(width)
            a, b = sorted(widths)
            src = re.search(r"src \"([^\"]*)\"", cell.group(1))
            key = (src.group(1) if src else body, a, b)
            if a < 2 or key in seen:
                continue
            seen.add(key)
            by_width[f"{a}x{b}"] = by_width.get(f"{a}x{b}", 0) + 1
            dsps += math.ceil(a / 18) * math.ceil(b / 18)
    return {"multipliers": sum(by_width.values()), "dsps": dsps,
            "by_width": dict(sorted(by_width.items())), "memories": dict(sorted(memories.items()))}


def fits(resources: dict) -> bool:
    """Whether LUTs, DSPs and block RAMs are all within the ECP5-85F's."""
    return all(resources.get(k, 0) <= ECP5_85F[k] for k in ECP5_85F)


def synthesize(config: AcceleratorConfig, directory: Path, *,
               timeout: float | None = None, fast_lut_map: bool = False) -> dict:
    """Yosys ``synth_ecp5`` of the accelerator alone: ``luts``, ``ffs``, ``dsps``, ``brams``,
    ``fits`` and ``seconds``. Raises :class:`~gen.build.BuildError` on failure or timeout."""
    import time

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    platform = get_board(BOARD).platform()
    (directory / "core.v").write_text(verilog.convert(_design(config), name=CORE_NAME,
                                                      platform=platform))
    env = toolchain_env("ecp5")
    log = directory / "synth.log"
    started = time.monotonic()
    script = ["read_verilog core.v", *synth_script(CORE_NAME, fast_lut_map=fast_lut_map), "stat"]
    try:
        done = subprocess.run([env["YOSYS"], "-q", "-l", log.name, "-p", "; ".join(script)],
                              cwd=directory, capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"synthesis timed out after {timeout:g} s (log: {log})") from None
    if done.returncode or "Printing statistics" not in log.read_text():
        raise BuildError(f"synthesis failed (log: {log})")
    text = log.read_text()
    resources = core_resources(parse_yosys_stat(text)[CORE_NAME])
    return {**resources, "fits": fits(resources), "memories": memory_mapping(text),
            "seconds": round(time.monotonic() - started, 1)}


def memory_mapping(log_text: str) -> dict:
    """How Yosys's ``memory_libmap`` mapped each memory of a synthesis log: the library cell
    (``DP16KD``, ``PDPW16KD``, ``TRELLIS_DPR16X4``: block or distributed RAM) or ``"logic"``
    (flip-flops and LUTs: a memory no RAM could hold, or a small ROM such as a unit's table of
    coefficients)."""
    out = {}
    for name, cell in re.findall(r"^mapping memory (\S+) via \$__(\w+?)_?$", log_text, re.M):
        out[name] = cell
    for name in re.findall(r"^using FF mapping for memory (\S+)$", log_text, re.M):
        out[name] = "logic"
    return dict(sorted(out.items()))


def check_pnr_options(*, router: str = "router1", placer: str = "heap",
                      nextpnr_args=()) -> None:
    """Raise ``ValueError`` for a router or placer nextpnr lacks, or ``nextpnr_args`` that
    repeat an option of :data:`FLOW_NEXTPNR_OPTIONS`: checked before anything is built."""
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, got {router!r}")
    if placer not in PLACERS:
        raise ValueError(f"placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    owned = [arg for arg in nextpnr_args if arg.split("=")[0] in FLOW_NEXTPNR_OPTIONS]
    if owned:
        raise ValueError(f"nextpnr args must not set {', '.join(owned)}: the flow sets "
                         f"{', '.join(FLOW_NEXTPNR_OPTIONS)} (placer, router, timing_driven and "
                         f"target_mhz are parameters)")


def place_and_route(config: AcceleratorConfig, directory: Path, *, target_mhz: float = 50.0,
                    timeout: float | None = None, router: str = "router1",
                    placer: str = "heap", timing_driven: bool = True,
                    nextpnr_args: tuple[str, ...] = (), fast_lut_map: bool = False) -> dict:
    """Place and route the accelerator in :class:`~boards.harness.FmaxHarness` on the
    ULX3S-85F: its resources, ``fmax_mhz``, ``timing_met`` and ``seconds``. ``placer`` and
    ``router`` are nextpnr's (``static``: its electrostatic placer, which spreads cells by
    density and so leaves the router more room than HeAP on a crowded device).
    ``timing_driven=False`` places and routes for wire length and congestion alone (nextpnr's
    ``--no-tmdriv``: neither the placer nor the router weighs timing; router2 otherwise shrinks
    an arc's congestion cost as its criticality grows); the routed design is still timed, and
    ``fmax_mhz`` is its Fmax. ``nextpnr_args`` go to nextpnr as they are
    (e.g. ``--router2-alt-weights``, ``--seed 3``, ``--router2-heatmap heat``), except the
    options the flow sets itself (:data:`FLOW_NEXTPNR_OPTIONS`). Raises
    :class:`~gen.build.BuildError` when a tool fails or the flow passes ``timeout`` seconds."""
    check_pnr_options(router=router, placer=placer, nextpnr_args=nextpnr_args)
    board = get_board(BOARD)
    harness = FmaxHarness(_design(config), board, freq_hz=target_mhz * 1e6)
    script = synth_script("bench", fast_lut_map=fast_lut_map)
    # The coarse stage after the design is read; the platform's synth_ecp5 runs the next
    # command of the script (from map_ram), and the rest (fast_lut_map's) after it.
    coarse = len(COARSE_WITHOUT_SHARE) + 1
    runs = script[coarse].split(" -run ")[1]
    overrides = {"script_after_read": "\n".join([keep_core_script("bench"), *script[:coarse]]),
                 "synth_opts": " ".join(filter(None, [board.overrides.get("synth_opts"),
                                                      SYNTH_OPTS, f"-run {runs}"])),
                 "nextpnr_opts": " ".join([f"--placer {placer} --router {router}",
                                           *([] if timing_driven else ["--no-tmdriv"]),
                                           *map(shlex.quote, nextpnr_args)])}
    if script[coarse + 1:]:
        overrides["script_after_synth"] = "\n".join(script[coarse + 1:])
    result = build_top(board, harness, "bench", Path(directory), timeout=timeout,
                       overrides=overrides)
    report = result.report
    (timing,) = report["clocks"].values()
    resources = core_resources(report["modules"][f"bench.{CORE_NAME}"])
    return {**resources, "fits": fits(resources), "fmax_mhz": timing["fmax_mhz"],
            "timing_met": timing["met"], "seconds": report["seconds"],
            "directory": str(result.directory)}


def failed_build_resources(directory: Path) -> dict | None:
    """What a place and route that failed (``<directory>.failed``, e.g. nextpnr finding no
    room, or a timeout) had synthesized: the core's resources, ``fits``, nextpnr's
    ``utilisation`` of the device after packing (``TRELLIS_COMB``: LUT4s and carries with their
    flip-flops' slices) and ``clocks``, nextpnr's last timing report (after placement, when the
    routing did not finish: an estimate), when its log got that far; None when Yosys itself did
    not finish."""
    failed = Path(f"{directory}.failed")
    try:
        cells = parse_yosys_stat((failed / "bench.rpt").read_text())[f"bench.{CORE_NAME}"]
    except (OSError, ValueError, KeyError):
        return None
    resources = core_resources(cells)
    out = {**resources, "fits": fits(resources)}
    try:
        log = parse_nextpnr_log((failed / "bench.tim").read_text())
    except (OSError, ValueError):
        return out
    utilisation = log["utilisation"]
    out["utilisation"] = {k: v for k, v in utilisation.items() if v["used"]}
    if log["clocks"]:
        out["clocks"] = log["clocks"]
    if any(v["used"] > v["available"] for v in utilisation.values()):
        out["fits"] = False
    return out


def sentences_per_second(fmax_mhz: float, cycles_per_sentence: int) -> float:
    """Sentences per second at ``fmax_mhz`` for a program of ``cycles_per_sentence``."""
    if cycles_per_sentence <= 0:
        raise ValueError(f"cycles_per_sentence must be positive, got {cycles_per_sentence}")
    return fmax_mhz * 1e6 / cycles_per_sentence


def _fetched_minilm():
    """all-MiniLM-L6-v2 as ``accelgen fetch-model minilm`` fetches it, loaded."""
    from ..model import fetch_model
    from ..model.sentence import load_model
    return load_model(fetch_model("minilm"))


def minilm_cycles(config: AcceleratorConfig, tokens: int, model=None) -> dict:
    """The cycle model's figures for one all-MiniLM-L6-v2 sentence of ``tokens`` padded tokens
    compiled for ``config`` (the whole encoder, every program of it, one after the other).

    Parameters
    ----------
    config : AcceleratorConfig
        The accelerator (the encoder compiles for the 8x8 array only).
    tokens : int
        Padded tokens, a positive multiple of 8.
    model : gen.model.sentence.SentenceModel, optional
        The loaded model; default: the checkpoint ``accelgen fetch-model minilm`` fetches.

    Returns
    -------
    dict
        ``tokens``, ``cycles_per_sentence``, ``pe_ops`` (useful PE operations),
        ``pe_utilization`` (``pe_ops / (cycles * rows * cols)``) and ``uses``: the NL units
        and the ``EW`` PE ops the programs use (``nl_units``, ``pe_ops``; ``GEMV`` multiplies
        too), what a configuration for the model needs to build.

    Raises
    ------
    ValueError
        From the compiler: ``tokens`` not a positive multiple of 8, a config it does not
        compile for, or a sentence that does not fit the scratchpad.
    """
    from golden.accelerator import NLUnit, Opcode
    from golden.accelerator_cycles import program_cycles
    from golden.pe import Op

    compiled = (model or _fetched_minilm()).compile([tokens], config)
    cycles = pe_ops = 0
    units, ops = set(), set()
    for program in compiled.programs:
        report = program_cycles(config, program.instructions, program.phases)
        cycles += report.cycles
        pe_ops += report.total.pe_ops
        for instruction in program.instructions:
            if instruction.opcode == Opcode.NL:
                units.add(NLUnit(instruction.unit))
            elif instruction.opcode == Opcode.EW:
                ops.add(Op(instruction.op))
    uses = {"nl_units": [u.name.lower() for u in sorted(units)],
            "pe_ops": [op.name.lower() for op in sorted(ops)]}
    return {"tokens": tokens, "cycles_per_sentence": cycles, "pe_ops": pe_ops,
            "pe_utilization": pe_ops / (config.line * cycles), "uses": uses}


def measure_accelerator(params: dict, out_dir: Path, *, steps=("estimate", "synthesis", "pnr"),
                        target_mhz: float = 50.0, timeout: float | None = None,
                        router: str = "router1", placer: str = "heap",
                        timing_driven: bool = True, nextpnr_args: tuple[str, ...] = (),
                        cycles_per_sentence: int | None = None,
                        fast_lut_map: bool = False, minilm: dict | None = None) -> dict:
    """One configuration through the ``steps`` asked for; failures and timeouts are recorded
    in the row, not raised. ``fast_lut_map``: LUTs mapped by :data:`FAST_MAP_LUTS` in both the
    synthesis and place and route. ``minilm``: :func:`minilm_cycles` of this configuration,
    recorded in the row; its cycles give the sentences/s unless ``cycles_per_sentence`` is
    given."""
    config = fpga_config(**params)
    name = "-".join(f"{k}{'+'.join(v) if isinstance(v, tuple) else v}"
                    for k, v in params.items())
    row = {"params": params, "config": config.to_dict(), "device": "LFE5U-85F", "board": BOARD,
           "capacity": ECP5_85F,
           "lut_mapping": "abc -lut 4:7 (strash; if)" if fast_lut_map else "abc9"}
    if "estimate" in steps:
        row["estimate"] = multiplier_estimate(config)
    if "synthesis" in steps:
        try:
            row["synthesis"] = synthesize(config, out_dir / f"{name}.synth", timeout=timeout,
                                          fast_lut_map=fast_lut_map)
        except BuildError as error:
            row["synthesis"] = {"error": str(error)}
    if "pnr" in steps:
        settings = {"target_mhz": target_mhz, "placer": placer, "router": router,
                    "timing_driven": timing_driven, "nextpnr_args": list(nextpnr_args),
                    "timeout_s": timeout}
        try:
            row["pnr"] = {**place_and_route(config, out_dir / name, target_mhz=target_mhz,
                                            timeout=timeout, router=router, placer=placer,
                                            timing_driven=timing_driven,
                                            nextpnr_args=nextpnr_args,
                                            fast_lut_map=fast_lut_map), **settings}
        except BuildError as error:
            row["pnr"] = {"error": str(error), **settings}
            synthesized = failed_build_resources(out_dir / name)
            if synthesized:
                row["pnr"]["synthesized"] = synthesized
    if minilm:
        row["minilm"] = minilm
        cycles_per_sentence = cycles_per_sentence or minilm.get("cycles_per_sentence")
    if cycles_per_sentence:
        row["cycles_per_sentence"] = cycles_per_sentence
        fmax = row.get("pnr", {}).get("fmax_mhz")
        if fmax:
            row["sentences_per_second"] = sentences_per_second(fmax, cycles_per_sentence)
    return row


def write_fpga_accelerator(out_dir: str | Path, configs=None, *, minilm_tokens: int | None = None,
                           **options) -> list[Path]:
    """Measure each configuration (default :data:`DEFAULT_CONFIGS`) and write
    ``fpga_accelerator.json``; returns its path. With ``minilm_tokens``, each row also holds
    :func:`minilm_cycles` of its configuration (before anything is built), or the compiler's
    ``error`` for a configuration it refuses (e.g. a 16x4, whose rows do not divide the token
    padding, or one without a unit the model uses).
    Bad place-and-route ``options`` (:func:`check_pnr_options`) raise before anything runs or
    is written."""
    check_pnr_options(**{k: options[k] for k in ("router", "placer", "nextpnr_args")
                         if k in options})
    configs = configs or DEFAULT_CONFIGS
    figures = [None] * len(configs)
    if minilm_tokens is not None:
        model = _fetched_minilm()
        figures = []
        for params in configs:
            try:
                figures.append(minilm_cycles(fpga_config(**params), minilm_tokens, model))
            except ValueError as error:
                figures.append({"tokens": minilm_tokens, "error": str(error)})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [measure_accelerator(p, out_dir, minilm=f, **options)
            for p, f in zip(configs, figures)]
    path = out_dir / "fpga_accelerator.json"
    atomic_write(path, json.dumps({"rows": rows, **measured_with(["yosys", "nextpnr-ecp5"])},
                                  indent=2) + "\n")
    return [path]
