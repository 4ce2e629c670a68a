"""Workloads that a sweep or a benchmark runs on a generated design, and what they measure.

A workload is named by its ``kind`` and runs on the generators it lists:

- ``gemm`` (``pe-array``): ``Y = W X`` for each of ``shapes`` (``[M, K]`` for a GEMV or
  ``[M, K, N]``), inputs uniform in [-1, 1) quantized to the array's input width
  (:func:`gen.demo.run_gemm`). Cycles, useful MACs, utilization, error against float64.
- ``activation`` (``exp``, ``gelu``, ``silu``): every input code of the unit's format in
  ``range`` (real values; default the whole format), or ``count`` of them evenly spaced. Error
  of the hardware's output against float64, the reference clipped to the output format's range
  (saturation is the defined behaviour).
- ``softmax`` (``softmax``): ``rows`` attention rows (:func:`golden.nonlinear.softmax.
  attention_rows`) of each length in ``lengths``. Error of the probabilities and of the row sums.

Every output word is checked against the golden model in the simulation, so a point that
returns metrics is bit-exact; ``cycles`` run from the first input accepted to the last output
taken. ``max_rel_error`` is the largest absolute error over the largest absolute reference value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.backends import run_stream

__all__ = ["Workload", "WORKLOADS", "parse_workload", "run_workload"]


@dataclass(frozen=True)
class Workload:
    """A kind of workload: where it runs, its settings with defaults, what it measures.

    Attributes
    ----------
    kind : str
        The ``kind`` a sweep file's ``[workload]`` table names.
    generators : tuple of str
        Generators (CLI names) it runs on.
    defaults : dict
        Every setting it takes, with its default (``None``: derived, or required if listed in
        ``required``).
    required : tuple of str
        Settings without a default.
    metrics : tuple of str
        Keys of the metrics it returns.
    run : callable
        ``(generator, config, settings, simulator) -> metrics``.
    """

    kind: str
    generators: tuple[str, ...]
    defaults: dict
    required: tuple[str, ...]
    metrics: tuple[str, ...]
    run: Callable[..., dict]


def _probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"workload {name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"workload {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_gemm(settings: dict) -> dict:
    shapes = settings["shapes"]
    if not isinstance(shapes, list) or not shapes:
        raise ValueError(f"workload shapes must be a non-empty list of [M, K] or [M, K, N], "
                         f"got {shapes!r}")
    normalized = []
    for shape in shapes:
        if not isinstance(shape, list) or len(shape) not in (2, 3):
            raise ValueError(f"workload shapes: each shape is [M, K] or [M, K, N], got {shape!r}")
        normalized.append([_positive_int("shape sizes", v) for v in shape] + [1] * (3 - len(shape)))
    return {**settings, "shapes": normalized}


def _run_gemm(generator, config, settings: dict, simulator: str) -> dict:
    from ..demo import run_gemm

    runs = [run_gemm(config, m, k, n, seed=settings["seed"], simulator=simulator,
                     valid_prob=settings["valid_prob"], ready_prob=settings["ready_prob"])
            for m, k, n in settings["shapes"]]
    cycles = sum(r.cycles for r in runs)
    macs = sum(r.m * r.k * r.n for r in runs)
    return {"cycles": cycles, "macs": macs, "transactions": sum(r.vectors for r in runs),
            "utilization": macs / (cycles * config.rows * config.cols),
            "max_abs_error": max(r.max_abs_error for r in runs),
            "max_rel_error": max(r.max_rel_error for r in runs),
            "bit_exact": all(r.bit_exact for r in runs),
            "shapes": [{"m": r.m, "k": r.k, "n": r.n, "cycles": r.cycles,
                        "utilization": r.utilization, "latency": r.latency} for r in runs]}


def _activation_models(name: str):
    from golden.nonlinear.exp import exp, exp_reference
    from golden.nonlinear.gelu import gelu, gelu_reference
    from golden.nonlinear.silu import silu, silu_reference

    return {"exp": (exp, exp_reference), "gelu": (gelu, gelu_reference),
            "silu": (silu, silu_reference)}[name]


def _check_activation(settings: dict) -> dict:
    lo_hi = settings["range"]
    if lo_hi is not None and (not isinstance(lo_hi, list) or len(lo_hi) != 2
                              or not all(isinstance(v, (int, float)) for v in lo_hi)
                              or not lo_hi[0] < lo_hi[1]):
        raise ValueError(f"workload range must be [lo, hi] with lo < hi, got {lo_hi!r}")
    if settings["count"] is not None:
        _positive_int("count", settings["count"])
    return settings


def _summary(y: np.ndarray, reference: np.ndarray, lsb: float) -> dict:
    error = np.abs(y - reference)
    return {"max_abs_error": float(error.max()), "max_abs_error_lsb": float(error.max() / lsb),
            "rms_error": float(np.sqrt(np.mean(error ** 2))),
            "max_rel_error": float(error.max() / max(np.abs(reference).max(), lsb))}


def _span(result) -> int:
    return result.out_cycles[-1] - result.in_cycles[0] + 1


def _run_activation(generator, config, settings: dict, simulator: str) -> dict:
    model, reference = _activation_models(generator.name)
    fmt_in, fmt_out = config.input_format, config.output_format
    lo, hi = settings["range"] or (fmt_in.min_value, fmt_in.max_value)
    codes = np.arange(max(fmt_in.min_int, int(np.ceil(lo / fmt_in.lsb))),
                      min(fmt_in.max_int, int(np.floor(hi / fmt_in.lsb))) + 1)
    if codes.size == 0:
        raise ValueError(f"workload range {lo}..{hi} holds no input code of {fmt_in}")
    if settings["count"] is not None and settings["count"] < codes.size:
        codes = np.unique(codes[np.linspace(0, codes.size - 1, settings["count"]).round()
                                .astype(int)])
    lanes = config.lanes
    x = np.concatenate([codes, np.full(-codes.size % lanes, codes[-1])]).reshape(-1, lanes)
    expected = model(config, x)
    result = run_stream(generator.build(config), generator.module_name, {"value": x},
                        {"value": expected}, simulator=simulator, seed=settings["seed"],
                        valid_prob=settings["valid_prob"], ready_prob=settings["ready_prob"])
    ideal = np.clip(reference(config, codes), fmt_out.min_value, fmt_out.max_value)
    y = expected.reshape(-1)[:codes.size] * fmt_out.lsb
    cycles = _span(result)
    return {"cycles": cycles, "elements": int(codes.size),
            "elements_per_cycle": codes.size / cycles, **_summary(y, ideal, fmt_out.lsb),
            "bit_exact": True}


def _check_softmax(settings: dict) -> dict:
    lengths = settings["lengths"]
    if not isinstance(lengths, list) or not lengths:
        raise ValueError(f"workload lengths must be a non-empty list of integers, "
                         f"got {lengths!r}")
    for length in lengths:
        _positive_int("lengths", length)
    _positive_int("rows", settings["rows"])
    if settings["rows_kind"] not in ("uniform", "peaked"):
        raise ValueError(f"workload rows_kind must be uniform or peaked, "
                         f"got {settings['rows_kind']!r}")
    return settings


def _run_softmax(generator, config, settings: dict, simulator: str) -> dict:
    from golden.nonlinear.softmax import (
        attention_rows,
        rows_stream,
        softmax,
        softmax_reference,
        split_vectors,
    )

    rng = np.random.default_rng(settings["seed"])
    lengths = [length for length in settings["lengths"] for _ in range(settings["rows"])]
    x, last = rows_stream(config, attention_rows(rng, lengths, settings["rows_kind"]))
    expected = softmax(config, x, last)
    result = run_stream(generator.build(config), generator.module_name,
                        {"x": x, "last": last}, expected, simulator=simulator,
                        seed=settings["seed"], valid_prob=settings["valid_prob"],
                        ready_prob=settings["ready_prob"])
    p = expected["p"] * config.output_format.lsb
    sums = [p[start:stop].sum() for start, stop in split_vectors(config, last)]
    cycles = _span(result)
    return {"cycles": cycles, "elements": int(x.size), "elements_per_cycle": x.size / cycles,
            **_summary(p, softmax_reference(config, x, last), config.output_format.lsb),
            "max_sum_error": float(np.max(np.abs(np.array(sums) - 1))), "bit_exact": True}


_STALLS = {"seed": 1, "valid_prob": 1.0, "ready_prob": 1.0}
_CHECKS = {"gemm": _check_gemm, "activation": _check_activation, "softmax": _check_softmax}
_ERRORS = ("max_abs_error", "max_abs_error_lsb", "rms_error", "max_rel_error")

#: The workloads by kind.
WORKLOADS = {w.kind: w for w in (
    Workload("gemm", ("pe-array",), {"shapes": None, **_STALLS}, ("shapes",),
             ("cycles", "macs", "transactions", "utilization", "max_abs_error",
              "max_rel_error"), _run_gemm),
    Workload("activation", ("exp", "gelu", "silu"), {"range": None, "count": None, **_STALLS},
             (), ("cycles", "elements", "elements_per_cycle", *_ERRORS), _run_activation),
    Workload("softmax", ("softmax",), {"lengths": [16, 64], "rows": 4, "rows_kind": "peaked",
                                       **_STALLS}, (),
             ("cycles", "elements", "elements_per_cycle", *_ERRORS, "max_sum_error"),
             _run_softmax),
)}


def parse_workload(generator: str, table: dict[str, Any]) -> dict:
    """Check a ``[workload]`` table for ``generator`` and fill in its defaults.

    Raises ``ValueError`` naming the problem: an unknown kind, a kind that does not run on
    this generator, an unknown or missing setting, or a bad value.
    """
    if not isinstance(table, dict):
        raise ValueError(f"workload must be a table, got {table!r}")
    kind = table.get("kind")
    if kind not in WORKLOADS:
        raise ValueError(f"workload kind must be one of {', '.join(WORKLOADS)}, got {kind!r}")
    workload = WORKLOADS[kind]
    if generator not in workload.generators:
        raise ValueError(f"workload {kind} runs on {', '.join(workload.generators)}, "
                         f"not {generator}")
    settings = {k: v for k, v in table.items() if k != "kind"}
    unknown = sorted(set(settings) - set(workload.defaults))
    if unknown:
        raise ValueError(f"unknown workload setting {unknown[0]!r} for {kind}; allowed: "
                         f"{', '.join(sorted(workload.defaults))}")
    missing = [k for k in workload.required if k not in settings]
    if missing:
        raise ValueError(f"workload {kind} needs {', '.join(missing)}")
    settings = {**workload.defaults, **settings}
    _positive_int("seed", settings["seed"], minimum=0)
    for name in ("valid_prob", "ready_prob"):
        settings[name] = _probability(name, settings[name])
    return {"kind": kind, **_CHECKS[kind](settings)}


def run_workload(generator, config, workload: dict, simulator: str) -> dict:
    """Run a parsed workload (:func:`parse_workload`) on ``generator``'s design for ``config``;
    return its metrics."""
    settings = {k: v for k, v in workload.items() if k != "kind"}
    return WORKLOADS[workload["kind"]].run(generator, config, settings, simulator)
