"""Accuracy report of the nonlinear units, ours next to the published baselines.

Every "ours" figure comes from the golden models, which the cocotb suite checks bit for bit
against the emitted Verilog, so the numbers describe the hardware. The report is a JSON file
and one PNG plot of error against input per function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.nonlinear import baselines
from golden.nonlinear.exp import ExpConfig, exp, exp_reference
from golden.nonlinear.gelu import GELUConfig, gelu, gelu_approximation, gelu_reference
from golden.nonlinear.layernorm import (
    LayerNormConfig,
    layernorm,
    layernorm_reference,
    residual_vectors,
    vectors_stream,
)
from golden.nonlinear.silu import SiLUConfig, silu, silu_approximation, silu_reference
from golden.nonlinear.softmax import (
    SoftmaxConfig,
    attention_rows,
    rows_stream,
    softmax,
    softmax_reference,
)

from ..emit import atomic_write, tool_versions
from .figures import pyplot, save_figure

__all__ = ["Curve", "accuracy_report", "write_accuracy_report"]

SWEEP = (-24.0, 24.0)  # activation range of the targets


@dataclass
class Curve:
    """One method's error against input, for a plot, with its summary figures."""

    label: str
    x: np.ndarray
    error: np.ndarray
    summary: dict


def _codes(fmt, lo: float, hi: float) -> np.ndarray:
    """Every raw input code of ``fmt`` whose value lies in ``[lo, hi]``."""
    return np.arange(max(fmt.min_int, int(np.ceil(lo / fmt.lsb))),
                     min(fmt.max_int, int(np.floor(hi / fmt.lsb))) + 1)


def exp_curves() -> list[Curve]:
    """Relative error of exp on [-8, 4] (an output format fine enough to show the method)."""
    ours = []
    for order in (1, 2):
        config = ExpConfig(order=order, in_width=16, in_frac=10, out_width=30, out_frac=24)
        x = _codes(config.input_format, -8.0, 4.0)  # exp(4) < 64, the UQ6.24 maximum
        y = exp(config, x) * config.output_format.lsb
        rel = np.abs(y / exp_reference(config, x) - 1)
        ours.append(Curve(f"ours, order {order}", x * config.input_format.lsb, rel,
                          {"max_rel_error": float(rel.max()),
                           "target": 0.031 if order == 1 else 0.003}))
    curves = []
    real = np.linspace(-8.0, 4.0, 20001)
    for c, label in ((0, "Schraudolph, c = 0"),
                     (baselines.SCHRAUDOLPH_C_RMS, "Schraudolph, c = 60801")):
        rel = np.abs(baselines.schraudolph_exp(real, c) / np.exp(real) - 1)
        curves.append(Curve(label, real, rel, {"max_rel_error": float(rel.max())}))
    negative = real[real <= 0]
    rel = np.abs(baselines.ibert_exp_float(negative, 2.0 ** -10) / np.exp(negative) - 1)
    curves.append(Curve("I-BERT i-exp (x <= 0)", negative, rel,
                        {"max_rel_error": float(rel.max())}))
    return curves + ours  # ours drawn last, on top


def _activation_curves(configs, model, reference, approximation) -> list[Curve]:
    """Hardware-output and float-approximation error curves for each ``(label, config)``."""
    curves = []
    for label, config in configs:
        x = _codes(config.input_format, *SWEEP)
        error = np.abs(model(config, x) * config.output_format.lsb - reference(config, x))
        real = np.linspace(*SWEEP, 200001)
        exact = reference(config, real / config.input_format.lsb)
        fit = np.abs(approximation(config, real) - exact)
        curves.append(Curve(f"ours, {label}: hardware output", x * config.input_format.lsb,
                            error, {
                                "max_abs_error": float(error.max()),
                                "max_abs_error_lsb": float(error.max()
                                                           / config.output_format.lsb),
                                "approximation_max_abs_error": float(fit.max()),
                                "table_words": config.table_words,
                            }))
        curves.append(Curve(f"ours, {label}: approximation", real, fit,
                            {"max_abs_error": float(fit.max())}))
    return curves


def gelu_curves() -> list[Curve]:
    """Absolute error of GELU on [-24, 24]: ours (both methods), I-BERT, Edge-MoE."""
    ours = _activation_curves([("ReLU - correction", GELUConfig()),
                                       ("piecewise poly", GELUConfig(method="poly"))],
                              gelu, gelu_reference, gelu_approximation)
    curves = []
    real = np.linspace(*SWEEP, 200001)
    exact = baselines.gelu_exact(real)
    for label, values, extra in (
            ("I-BERT i-GELU", baselines.ibert_gelu_float(real, 2.0 ** -10), {}),
            ("Edge-MoE table", baselines.edge_moe_gelu(real), {"table_words": 177})):
        error = np.abs(values - exact)
        curves.append(Curve(label, real, error, {"max_abs_error": float(error.max()), **extra}))
    return curves + ours  # ours drawn last, on top


def silu_curves() -> list[Curve]:
    """Absolute error of SiLU on [-24, 24]."""
    return _activation_curves([("8 segments", SiLUConfig())], silu, silu_reference,
                              silu_approximation)


def softmax_table(seed: int = 0, rows_per_length: int = 8) -> dict:
    """Max abs probability error and row-sum error against L, uniform and peaked rows, for
    ours (exp order 1 and 2) and softmax on the baseline exps."""
    rng = np.random.default_rng(seed)
    table = {}
    for kind in ("uniform", "peaked"):
        for length in (1, 4, 16, 64, 256, 1024):
            vectors = attention_rows(rng, [length] * rows_per_length, kind)
            row = {}
            for order in (1, 2):
                config = SoftmaxConfig(exp_order=order)
                x, last = rows_stream(config, vectors)
                p = softmax(config, x, last)["p"] * config.output_format.lsb
                error = np.abs(p - softmax_reference(config, x, last))
                sums = np.add.reduceat(p, np.flatnonzero(np.concatenate([[1], last[:-1]])))
                row[f"ours, exp order {order}"] = {
                    "max_abs_error": float(error.max()),
                    "max_sum_error": float(np.abs(sums - 1).max())}
            for label, fn in (("Schraudolph c = 60801 exp",
                               lambda z: baselines.schraudolph_exp(z, 60801)),
                              ("I-BERT i-exp", lambda z: baselines.ibert_exp_float(
                                  z, 2.0 ** -10))):
                worst = 0.0
                for v in vectors:
                    z = fn(v - v.max())
                    worst = max(worst, float(np.abs(z / z.sum() - np.exp(v - v.max()) /
                                                    np.exp(v - v.max()).sum()).max()))
                row[label] = {"max_abs_error": worst}
            table[f"{kind} L={length}"] = row
    return table


def layernorm_table(seed: int = 0, vectors_per_length: int = 8) -> dict:
    """Max error of the LayerNorm unit (Q5.10 outputs) against float64, per vector length, on
    residual-stream-like vectors (random scales and offsets)."""
    rng = np.random.default_rng(seed)
    config = LayerNormConfig()
    table = {}
    for length in (2, 16, 64, 384, 1024):
        x, last = vectors_stream(residual_vectors(config, rng, [length] * vectors_per_length))
        y = layernorm(config, x, last)["y"] * config.output_format.lsb
        error = np.abs(y - layernorm_reference(config, x, last))
        table[f"n={length}"] = {"max_abs_error": float(error.max()),
                                "max_error_lsb": float(error.max() / config.output_format.lsb)}
    return table


def accuracy_report() -> tuple[dict, dict[str, list[Curve]]]:
    """Compute the report: ``(json_data, curves by function)``."""
    curves = {"exp": exp_curves(), "gelu": gelu_curves(), "silu": silu_curves()}
    data = {
        "targets": {
            "exp": "error <= rel * y + 1 LSB; rel <= 3.1 % (order 1), 0.3 % (order 2)",
            "softmax": "max abs error <= 2^-9 for L <= 1024, row sums within 1 %",
            "gelu": "<= 2 LSB on [-24, 24]; approximation <= 1e-4; fewer than 177 table words",
            "silu": "<= 5e-3 on [-24, 24] with at most 8 segments",
            "layernorm": "within 0.51 LSB of Q5.10 (half an LSB of rounding) for n <= 1024",
        },
        **{name: {c.label: c.summary for c in items} for name, items in curves.items()},
        "softmax": softmax_table(),
        "layernorm": layernorm_table(),
        "tools": tool_versions(),
    }
    return data, curves


def _plot(name: str, curves: list[Curve], path: Path, ylabel: str) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(9, 4.5))
    for curve in curves:
        ax.semilogy(curve.x, np.maximum(curve.error, 1e-12), ".", markersize=1, label=curve.label)
    ax.set_xlabel("x")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name}: error against float64")
    ax.legend(markerscale=8, fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def _plot_softmax(table: dict, path: Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, kind in zip(axes, ("uniform", "peaked")):
        keys = [k for k in table if k.startswith(kind)]
        lengths = [int(k.split("L=")[1]) for k in keys]
        for method in table[keys[0]]:
            ax.loglog(lengths, [max(table[k][method]["max_abs_error"], 1e-9) for k in keys],
                      "o-", label=method)
        ax.axhline(2 ** -9, color="k", linestyle="--", linewidth=1, label="target 2^-9")
        ax.set_title(f"softmax, {kind} rows")
        ax.set_xlabel("L")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("max |p - p_float64|")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def write_accuracy_report(out_dir: str | Path) -> list[Path]:
    """Write ``accuracy.json`` and a plot per function into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, curves = accuracy_report()
    paths = [out_dir / "accuracy.json"]
    atomic_write(paths[0], json.dumps(data, indent=2) + "\n")
    for name, items in curves.items():
        ylabel = "relative error" if name == "exp" else "absolute error"
        paths.append(out_dir / f"{name}_error.png")
        _plot(name, items, paths[-1], ylabel)
    paths.append(out_dir / "softmax_error.png")
    _plot_softmax(data["softmax"], paths[-1])
    return paths
