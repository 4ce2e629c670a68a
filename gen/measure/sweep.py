"""Design-space exploration: a grid (or a random sample) of one generator's configurations, each
elaborated, emitted, simulated on a workload and optionally synthesized or placed and routed,
evaluated on Dask distributed workers.

A sweep file names the generator, the values of its parameters and the workload::

    [sweep]
    generator = "pe-array"
    stages = ["simulate", "synthesize"]   # elaborate and emit always run; "pnr" for Fmax
    simulator = "verilator"               # or "amaranth"
    objectives = ["luts", "cycles", "max_rel_error"]   # or {utilization = "max", ...}
    random = 8                            # optional: 8 points of the grid, drawn with seed
    seed = 0

    [parameters]                  # a list sweeps, a scalar is fixed, {start, stop, step} is
    rows = [2, 4]                 # an inclusive range; a tuple parameter's list of names is
    cols = {start = 2, stop = 8, step = 2}   # one value (ops = [["mul"], ["mul", "madd"]]
    in_width = 8                  # sweeps two)

    [workload]                    # see gen.measure.workloads
    kind = "gemm"
    shapes = [[30, 50], [16, 64, 4]]

Every configuration is built from the generator's config class before anything is scheduled,
so a bad value stops the sweep with the usual error. Each point's result (metrics, or its error
and traceback) is one JSON file in ``<output>/points/``, named by a hash of the generator, the
whole config, the workload, the stages and the tool versions: a sweep run again (after an
interruption, or with more values) computes only the points it has no file for.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import random
import socket
import time
import traceback
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from golden.params import BlockConfig
from sim.backends import check_simulator

from ..emit import atomic_write, tool_versions
from ..registry import get_generator
from .figures import pyplot, save_figure
from .provenance import source_digest
from .workloads import WORKLOADS, parse_workload, run_workload

__all__ = ["STAGES", "SweepSpec", "SweepResult", "load_sweep", "parse_sweep", "point_key",
           "evaluate_point", "dask_client", "run_sweep", "pareto_front", "plot_pareto",
           "MAX_POINTS"]

#: Optional stages, in the order they run (after elaborate and emit).
STAGES = ("simulate", "synthesize", "pnr")

#: Metrics of each stage besides the workload's.
STAGE_METRICS = {
    "emit": ("verilog_bytes",),
    "synthesize": ("luts", "ffs", "dsps", "brams"),
    "pnr": ("luts", "ffs", "dsps", "brams", "fmax_mhz"),
}

#: Metrics that are better larger; every other objective is minimized unless the file says.
MAXIMIZED = {"utilization", "fmax_mhz", "elements_per_cycle", "macs"}

#: A grid larger than this must be sampled (``random = N``).
MAX_POINTS = 100_000

_SWEEP_KEYS = {"generator", "stages", "simulator", "objectives", "random", "seed",
               "target_mhz"}


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, validated sweep.

    Attributes
    ----------
    generator : str
        CLI name of the generator.
    values : dict
        Parameter name -> the values it takes (one value: fixed), in file order.
    workload : dict or None
        The parsed workload (:func:`gen.measure.workloads.parse_workload`).
    stages : tuple of str
        The optional stages (:data:`STAGES`) to run.
    simulator : str
        ``verilator`` or ``amaranth``.
    objectives : dict
        Metric -> ``"min"`` or ``"max"``, for the Pareto front.
    random, seed : int or None, int
        Sample ``random`` points of the grid with ``seed`` (None: the whole grid).
    target_mhz : float
        Clock constraint of place and route.
    points : list of dict
        The parameters of every point to evaluate (swept ones only), in order.
    configs : list of BlockConfig
        Each point's full config, validated.
    grid_size : int
        Points in the whole grid.
    """

    generator: str
    values: dict
    workload: dict | None
    stages: tuple[str, ...]
    simulator: str
    objectives: dict
    random: int | None
    seed: int
    target_mhz: float
    points: list = field(repr=False)
    configs: list = field(repr=False)
    grid_size: int = 0

    @property
    def swept(self) -> list[str]:
        """Names of the parameters with more than one value."""
        return [name for name, values in self.values.items() if len(values) > 1]

    def to_json(self) -> dict:
        return {"generator": self.generator, "values": self.values, "workload": self.workload,
                "stages": list(self.stages), "simulator": self.simulator,
                "objectives": self.objectives, "random": self.random, "seed": self.seed,
                "target_mhz": self.target_mhz, "grid_size": self.grid_size,
                "points": len(self.points)}


def _parameter_values(name: str, kind: type, value) -> list:
    """The values a ``[parameters]`` entry gives its parameter."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"start", "stop", "step"})
        if unknown or not {"start", "stop"} <= set(value):
            raise ValueError(f"parameters: {name} range must be {{start, stop, step}}, "
                             f"got {value!r}")
        start, stop, step = value["start"], value["stop"], value.get("step", 1)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop, step)) \
                or step < 1 or stop < start:
            raise ValueError(f"parameters: {name} range needs integers start <= stop and "
                             f"step >= 1, got {value!r}")
        return list(range(start, stop + 1, step))
    if isinstance(value, list):
        if kind is tuple and all(isinstance(v, str) for v in value):
            return [tuple(value)]  # one value of a tuple parameter
        if not value:
            raise ValueError(f"parameters: {name} has an empty list of values")
        return [tuple(v) if isinstance(v, list) else v for v in value]
    return [value]


def _objectives(table, stages: tuple[str, ...], workload: dict | None) -> dict:
    available = set(STAGE_METRICS["emit"])
    for stage in stages:
        available |= set(STAGE_METRICS.get(stage, ()))
    if workload is not None and "simulate" in stages:
        available |= set(WORKLOADS[workload["kind"]].metrics)
    if table is None:  # area, speed, error: whichever the stages measure
        table = [m for m in ("luts", "cycles", "max_abs_error") if m in available] or \
            ["verilog_bytes"]
    if isinstance(table, list):
        table = {name: "max" if name in MAXIMIZED else "min" for name in table}
    if not isinstance(table, dict) or not table:
        raise ValueError(f"sweep objectives must be a list of metrics or a table of metric = "
                         f"'min' or 'max', got {table!r}")
    for name, sense in table.items():
        if name not in available:
            raise ValueError(f"sweep objective {name!r} is not measured by these stages; "
                             f"measured: {', '.join(sorted(available))}")
        if sense not in ("min", "max"):
            raise ValueError(f"sweep objective {name} must be 'min' or 'max', got {sense!r}")
    return dict(table)


def _describe(point: dict) -> str:
    return ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in point.items())


def parse_sweep(document: dict, source: str = "sweep file") -> SweepSpec:
    """Validate a sweep document (a parsed TOML file) and build every point's config.

    Raises ``ValueError`` or ``TypeError`` with one line naming the problem, before any work.
    """
    unknown = sorted(set(document) - {"sweep", "parameters", "workload"})
    if unknown or "sweep" not in document:
        raise ValueError(f"{source} must have a [sweep] table and may have [parameters] and "
                         f"[workload]; found {', '.join(f'[{t}]' for t in document) or 'none'}")
    table = document["sweep"]
    if not isinstance(table, dict):
        raise ValueError(f"{source}: sweep must be a table")
    unknown = sorted(set(table) - _SWEEP_KEYS)
    if unknown:
        raise ValueError(f"unknown sweep setting {unknown[0]!r}; allowed: "
                         f"{', '.join(sorted(_SWEEP_KEYS))}")
    if "generator" not in table:
        raise ValueError(f"{source}: [sweep] needs generator = '<name>' (see accelgen list)")
    generator = get_generator(table["generator"])
    workload = (parse_workload(generator.name, document["workload"])
                if "workload" in document else None)
    stages = table.get("stages", ["simulate"] if workload else [])
    if not isinstance(stages, list) or any(s not in STAGES for s in stages):
        raise ValueError(f"sweep stages must be a list drawn from {', '.join(STAGES)}, "
                         f"got {stages!r}")
    stages = tuple(s for s in STAGES if s in stages)
    if ("simulate" in stages) != (workload is not None):
        raise ValueError("the simulate stage and a [workload] table go together: "
                         + ("add a [workload] table" if workload is None else
                            "add 'simulate' to stages"))
    simulator = check_simulator(table.get("simulator", "verilator"))
    target_mhz = table.get("target_mhz", 100.0)
    if isinstance(target_mhz, bool) or not isinstance(target_mhz, (int, float)) \
            or not 1 <= target_mhz <= 1000:
        raise ValueError(f"sweep target_mhz must be in 1..1000, got {target_mhz!r}")
    sample, seed = table.get("random"), table.get("seed", 0)
    for name, value, low in (("random", sample, 1), ("seed", seed, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise ValueError(f"sweep {name} must be an integer >= {low}, got {value!r}")

    parameters = document.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ValueError(f"{source}: parameters must be a table")
    config_class = generator.config_class
    hints = typing.get_type_hints(config_class)
    names = [f.name for f in fields(config_class)]
    unknown = sorted(set(parameters) - set(names))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} for {generator.name}; allowed: "
                         f"{', '.join(names)}")
    values = {name: _parameter_values(name, BlockConfig.field_kind(hints[name]), value)
              for name, value in parameters.items()}
    grid_size = math.prod(len(v) for v in values.values())
    if sample is None and grid_size > MAX_POINTS:
        raise ValueError(f"the grid has {grid_size} points, more than {MAX_POINTS}: sample it "
                         f"with random = N")
    if sample is None:
        indices: typing.Iterable[int] = range(grid_size)
    else:
        indices = sorted(random.Random(seed).sample(range(grid_size), min(sample, grid_size)))
    axes = list(values.items())
    points, configs = [], []
    for index in indices:
        point = {}
        for name, options in reversed(axes):  # the last parameter varies fastest
            index, digit = divmod(index, len(options))
            point[name] = options[digit]
        point = {name: point[name] for name, _ in axes}
        swept = {k: v for k, v in point.items() if len(values[k]) > 1}
        try:
            configs.append(config_class.from_dict(dict(point)))
        except (ValueError, TypeError) as error:
            where = f"point {_describe(swept)}: " if swept else ""
            raise type(error)(f"{where}{error}") from None
        points.append(swept)
    return SweepSpec(
        generator=generator.name,
        values={k: [list(v) if isinstance(v, tuple) else v for v in vs]
                for k, vs in values.items()},
        workload=workload, stages=stages, simulator=simulator,
        objectives=_objectives(table.get("objectives"), stages, workload), random=sample,
        seed=seed, target_mhz=float(target_mhz), points=points, configs=configs,
        grid_size=grid_size)


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep TOML file (:func:`parse_sweep`)."""
    from ..config import read_toml

    return parse_sweep(read_toml(path, "sweep"), f"sweep file {path}")


def _programs(spec: SweepSpec) -> list[str]:
    """The tool binaries a sweep runs."""
    programs = []
    if "simulate" in spec.stages and spec.simulator == "verilator":
        programs.append("verilator")
    if {"synthesize", "pnr"} & set(spec.stages):
        programs.append("yosys")
    if "pnr" in spec.stages:
        programs.append("nextpnr-ecp5")
    return programs


def sweep_tools(spec: SweepSpec) -> dict:
    """The tool versions a sweep's results depend on (part of every point's key)."""
    from .provenance import program_versions

    return {**tool_versions(), **program_versions(_programs(spec))}


def point_key(spec: SweepSpec, config: BlockConfig, tools: dict) -> str:
    """The cache key of one point: a hash of everything its result depends on, accelgen's own
    source included (:func:`gen.measure.provenance.source_digest`)."""
    identity = {"generator": spec.generator, "config": config.to_dict(),
                "workload": spec.workload, "stages": list(spec.stages),
                "simulator": spec.simulator if "simulate" in spec.stages else None,
                "target_mhz": spec.target_mhz if "pnr" in spec.stages else None,
                "tools": tools, "source": source_digest()}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def _work_dir(key: str) -> Path:
    """Where a worker keeps a point's synthesis and place-and-route files: its own build
    directory (``$ACCELGEN_BUILD_DIR``, default ``build/``), like the simulation builds."""
    from sim.runner import build_root

    return build_root().parent / "sweep" / key


def _synthesize(component, directory: Path) -> dict:
    from .fpga_bench import core_resources, synthesize_core

    return core_resources(synthesize_core(component, directory / "synth"))


def _place_and_route(component, directory: Path, target_mhz: float) -> dict:
    """The core in the Fmax harness on the ECP5-85F, as ``accelgen fpga-bench`` builds it: the
    core's own cells and the Fmax after routing."""
    from .fpga_bench import place_and_route_core

    routed = place_and_route_core(component, directory / "pnr", target_mhz=target_mhz)
    routed["pnr_directory"] = routed.pop("directory")
    routed.pop("seconds")
    return routed


def evaluate_point(task: dict) -> dict:
    """Evaluate one point (runs on a Dask worker): elaborate, emit, then the task's stages.

    Never raises for the point's own failures: the record has ``status`` ``"ok"`` and its
    ``metrics``, or ``"error"`` with the ``stage`` that failed, the ``error`` and the
    ``traceback``.
    """
    from ..emit import verilog_text

    generator = get_generator(task["generator"])
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    metrics: dict[str, Any] = {}
    stage = "elaborate"
    record = {"key": task["key"], "worker": socket.gethostname(), "pid": os.getpid()}
    try:
        config = generator.config_class.from_dict(task["config"])
        component = generator.build(config)
        seconds["elaborate"] = time.perf_counter() - started
        stage = "emit"
        mark = time.perf_counter()
        text = verilog_text(component, generator.module_name)
        metrics.update(verilog_bytes=len(text.encode()), latency=component.latency)
        seconds["emit"] = time.perf_counter() - mark
        # Place and route synthesizes too (the core's cells in the harness): with both
        # stages asked for, synthesis does not run on its own.
        stages = [s for s in task["stages"]
                  if not (s == "synthesize" and "pnr" in task["stages"])]
        for stage in stages:
            mark = time.perf_counter()
            if stage == "simulate":
                metrics.update(run_workload(generator, config, task["workload"],
                                            task["simulator"]))
            elif stage == "synthesize":
                metrics.update(_synthesize(generator.build(config), _work_dir(task["key"])))
            else:
                metrics.update(_place_and_route(generator.build(config),
                                                _work_dir(task["key"]), task["target_mhz"]))
            seconds[stage] = time.perf_counter() - mark
        record.update(status="ok", metrics=metrics)
    except Exception as error:  # a failing point is a result, not the end of the sweep
        record.update(status="error", stage=stage, error=f"{type(error).__name__}: {error}",
                      traceback=traceback.format_exc(), metrics=metrics)
    record.update(seconds={k: round(v, 3) for k, v in seconds.items()},
                  total_seconds=round(time.perf_counter() - started, 3))
    return record


def _check_cluster(scheduler: str | None, workers: int | None) -> None:
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ValueError(f"scheduler must be an address like tcp://host:port, got {scheduler!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A Dask ``Client``: connected to the scheduler at ``scheduler`` (``tcp://host:port``), or
    to a new ``LocalCluster`` of ``workers`` processes (default: one per core) with one thread
    each, since every point runs its own simulator or synthesis process."""
    from distributed import Client, LocalCluster

    _check_cluster(scheduler, workers)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError) as error:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: "
                             f"{error}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                      processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


@dataclass
class SweepResult:
    """What a sweep run found.

    Attributes
    ----------
    records : list of dict
        One per point, in the sweep's order: ``params``, ``status``, ``metrics`` ...
    front : list of int
        Indices into ``records`` of the Pareto-optimal points.
    computed, cached : int
        Points evaluated by this run, and points read from the cache.
    paths : list of Path
        ``sweep.json`` and ``pareto.png``.
    """

    records: list
    front: list
    computed: int
    cached: int
    paths: list

    @property
    def failed(self) -> list:
        """The records of the points that failed."""
        return [r for r in self.records if r["status"] != "ok"]


def run_sweep(spec: SweepSpec, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int | None = None, retry_failed: bool = False,
              on_start: Callable[[int, int], None] | None = None,
              on_point: Callable[[dict], None] | None = None) -> SweepResult:
    """Evaluate every point of ``spec`` that has no result in ``out_dir/points`` yet.

    Points run on Dask (:func:`dask_client`; no cluster is started when everything is cached).
    Each result is written as it arrives, so an interrupted sweep keeps what it finished; a
    failed point's record is kept too and not run again unless ``retry_failed``. Then writes
    ``sweep.json`` (every point, the Pareto front over ``spec.objectives``, machine and tools)
    and ``pareto.png``. ``on_start(to_compute, cached)`` and ``on_point(record)`` report
    progress.
    """
    from .provenance import caption, measured_with

    _check_cluster(scheduler, workers)
    out_dir = Path(out_dir)
    points_dir = out_dir / "points"
    tools = sweep_tools(spec)
    keys = [point_key(spec, config, tools) for config in spec.configs]
    records: dict[str, dict] = {}
    for key in keys:
        path = points_dir / f"{key}.json"
        if path.exists():
            record = json.loads(path.read_text())
            if record["status"] == "ok" or not retry_failed:
                records[key] = record
    pending, seen = [], set()  # equal configs (repeated values) run once
    for i, key in enumerate(keys):
        if key not in records and key not in seen:
            pending.append(i)
            seen.add(key)
    cached = len(keys) - len(pending)
    if on_start:
        on_start(len(pending), cached)
    if pending:
        from distributed import as_completed

        with dask_client(scheduler, workers) as client:
            futures = {}
            for i in pending:
                task = {"key": keys[i], "generator": spec.generator,
                        "config": spec.configs[i].to_dict(), "stages": list(spec.stages),
                        "workload": spec.workload, "simulator": spec.simulator,
                        "target_mhz": spec.target_mhz}
                future = client.submit(evaluate_point, task, key=f"accelgen-point-{keys[i]}")
                futures[future] = i
            for future in as_completed(futures):
                i = futures[future]
                try:
                    record = future.result()
                except Exception as error:  # the worker died or the task could not run
                    record = {"key": keys[i], "status": "error", "stage": "dask",
                              "error": f"{type(error).__name__}: {error}",
                              "traceback": "".join(traceback.format_exception(error)),
                              "metrics": {}}
                record.update(generator=spec.generator, params=spec.points[i],
                              config=spec.configs[i].to_dict(), tools=tools,
                              finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                atomic_write(points_dir / f"{keys[i]}.json",
                             json.dumps(record, indent=2, default=_jsonable) + "\n")
                records[keys[i]] = record
                if on_point:
                    on_point(record)
    ordered = [{**records[key], "params": spec.points[i]} for i, key in enumerate(keys)]
    front = pareto_front([_objective_values(r, spec.objectives) for r in ordered],
                         list(spec.objectives.values()))
    info = measured_with(_programs(spec), packages=("dask", "distributed"))
    summary = {"spec": spec.to_json(), "objectives": spec.objectives,
               "computed": len(pending), "cached": cached,
               "failed": sum(r["status"] != "ok" for r in ordered),
               "pareto_front": [ordered[i]["key"] for i in front],
               "points": ordered, **info}
    paths = [out_dir / "sweep.json", out_dir / "pareto.png"]
    atomic_write(paths[0], json.dumps(summary, indent=2, default=_jsonable) + "\n")
    plot_pareto(ordered, spec.objectives, front, paths[1],
                title=f"{spec.generator}: {len(ordered)} points ({summary['failed']} failed), "
                      f"{len(front)} on the Pareto front", caption_text=caption(info))
    return SweepResult(ordered, front, len(pending), cached, paths)


def _jsonable(value):
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serializable: {value!r}")


def _objective_values(record: dict, objectives: dict) -> list | None:
    """The record's objective values, or None if it failed or lacks one."""
    if record["status"] != "ok":
        return None
    values = [record["metrics"].get(name) for name in objectives]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in values):
        return None
    return values


def pareto_front(values: list, senses: list[str]) -> list[int]:
    """Indices of the non-dominated points.

    ``values[i]`` is point ``i``'s objective values (or None to leave it out); ``senses`` says
    per objective whether smaller (``"min"``) or larger (``"max"``) is better. A point is
    dominated if another is at least as good in every objective and better in one; points
    with equal values are all kept. Indices come back in increasing order.
    """
    if any(s not in ("min", "max") for s in senses):
        raise ValueError(f"senses must be 'min' or 'max', got {senses!r}")
    signs = [1 if s == "min" else -1 for s in senses]
    scored = [(i, [sign * v for sign, v in zip(signs, row)]) for i, row in enumerate(values)
              if row is not None]
    for _, row in scored:
        if len(row) != len(signs):
            raise ValueError(f"every point needs {len(signs)} objective values, got {row!r}")
    front = []
    for i, a in scored:
        dominated = any(all(y <= x for x, y in zip(a, b)) and any(y < x for x, y in zip(a, b))
                        for j, b in scored if j != i)
        if not dominated:
            front.append(i)
    return front


def plot_pareto(records: list, objectives: dict, front: list, path: str | Path, *,
                title: str = "", caption_text: str = "") -> None:
    """Scatter every pair of objectives (every point that has them, the Pareto front in red)
    into a PNG."""
    plt = pyplot()

    from .provenance import add_caption

    names = list(objectives)
    rows = {i: v for i, r in enumerate(records)
            if (v := _objective_values(r, objectives)) is not None}
    pairs = list(itertools.combinations(range(len(names)), 2))[:6] or [(0, None)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.2), squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        def coords(indices, a=a, b=b):
            xs = [rows[i][a] for i in indices]
            return (list(range(len(xs))), xs) if b is None else (xs, [rows[i][b] for i in
                                                                      indices])

        ax.scatter(*coords(sorted(rows)), s=18, color="0.6", label="points")
        on_front = [i for i in front if i in rows]
        ax.scatter(*coords(on_front), s=30, color="tab:red", label="Pareto front")
        if len(on_front) <= 12:  # name the front's points by their swept parameters
            for i, x, y in zip(on_front, *coords(on_front)):
                ax.annotate(_describe(records[i].get("params", {})), (x, y), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")
        label = f"{names[a]} ({objectives[names[a]]})"
        if b is None:
            ax.set(xlabel="point", ylabel=label)
        else:
            ax.set(xlabel=label, ylabel=f"{names[b]} ({objectives[names[b]]})")
            for axis, k in (("x", a), ("y", b)):
                column = [v[k] for v in rows.values()]
                if column and min(column) > 0 and max(column) / min(column) > 50:
                    getattr(ax, f"set_{axis}scale")("log")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if not rows:
        axes[0][0].text(0.5, 0.5, "no point finished", ha="center", transform=axes[0][0]
                        .transAxes)
    fig.suptitle(title, fontsize=10)
    add_caption(fig, caption_text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
