"""Storage benchmark of RT-NeRF's sparse encodings: bits per element against density.

For each density, a random tensor with exactly ``round(density * elements)`` nonzeros at
uniformly random positions (and uniformly random nonzero values) is encoded as bitmap only,
coordinate only and hybrid under both rules, and each encoding's size is measured with
:func:`golden.sparse.encoding.encoding_storage_bits` (the accounting is defined there). Every
encoding is decoded back and compared with the tensor, so the figures describe encodings that
round-trip. The report is a JSON file and one PNG plot.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from golden.sparse.encoding import (
    SparseFormatConfig,
    bitmap_bits,
    coordinate_bits,
    crossover_nnz,
    decode,
    encode,
    encoding_storage_bits,
)

from ..emit import atomic_write, tool_versions
from .figures import pyplot, save_figure

__all__ = ["DENSITIES", "FORMATS", "storage_report", "write_storage_report"]

DENSITIES = (0, .005, .01, .02, .05, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1.0)

# Report key -> (encode fmt, hybrid rule or None).
FORMATS = {
    "bitmap": ("bitmap", None),
    "coordinate": ("coordinate", None),
    "hybrid (size rule)": ("hybrid", "size"),
    "hybrid (density rule)": ("hybrid", "density"),
}


def _random_tensor(config: SparseFormatConfig, elements: int, nnz: int,
                   rng: np.random.Generator) -> np.ndarray:
    """A 1-D tensor with exactly ``nnz`` nonzeros at uniformly random positions."""
    tensor = np.zeros(elements, dtype=np.int64)
    lo, hi = config.value_range
    # Uniform over the nonzero values: draw from a range one shorter and skip over 0.
    values = rng.integers(lo, hi, nnz, endpoint=False) if lo < 0 else \
        rng.integers(1, hi, nnz, endpoint=True)
    if lo < 0:
        values = np.where(values >= 0, values + 1, values)
    tensor[rng.choice(elements, nnz, replace=False)] = values
    return tensor


def _crossover(densities: list[float], bitmap: list[float], coordinate: list[float]):
    """Density where coordinate stops being smaller than bitmap, by linear interpolation
    between the measured points; None if the sweep does not cross."""
    diff = np.array(coordinate) - np.array(bitmap)
    for k in range(len(diff) - 1):
        if diff[k] < 0 <= diff[k + 1]:
            d0, d1 = densities[k], densities[k + 1]
            return d0 + (d1 - d0) * -diff[k] / (diff[k + 1] - diff[k])
    return None


def storage_report(config: SparseFormatConfig | None = None, densities=DENSITIES,
                   elements: int = 65536, seed: int = 0) -> dict:
    """Measure bits per element of each format over a sweep of densities.

    Parameters
    ----------
    config : SparseFormatConfig, optional
        Block size, value width and density threshold (default: ``SparseFormatConfig()``).
        Both hybrid rules are measured whatever its ``rule``.
    densities : sequence of float
        Fractions of nonzero elements, each in 0..1, increasing.
    elements : int
        Tensor length. Bits per element are total bits / ``elements``; with ``elements`` a
        multiple of ``B`` there is no padding, so an empty bitmap encoding costs exactly 1.
    seed : int
        Seed of the random tensors.

    Returns
    -------
    dict
        JSON-ready: ``config``, ``derived`` widths, ``definitions``, one row per density
        (exact ``total_bits``, ``bits_per_element`` and ``bitmap_block_fraction`` per
        format), ``crossover`` and ``tools``.
    """
    config = SparseFormatConfig.coerce(config)
    densities = [float(d) for d in densities]
    if not densities or any(not 0 <= d <= 1 for d in densities) or densities != sorted(densities):
        raise ValueError(f"densities must be increasing fractions in 0..1, got {densities}")
    if not isinstance(elements, int) or elements < 1:
        raise ValueError(f"elements must be an integer >= 1, got {elements!r}")
    rng = np.random.default_rng(seed)
    b = config.block
    rows = []
    for d in densities:
        nnz = round(d * elements)
        tensor = _random_tensor(config, elements, nnz, rng)
        total, bitmap_fraction = {}, {}
        for name, (fmt, rule) in FORMATS.items():
            cfg = dataclasses.replace(config, rule=rule) if rule else config
            blocks = encode(cfg, tensor, fmt)
            if not np.array_equal(decode(cfg, blocks, tensor.shape), tensor):
                raise AssertionError(f"{name} encoding does not round-trip at density {d}")
            total[name] = encoding_storage_bits(cfg, blocks, hybrid=fmt == "hybrid")
            bitmap_fraction[name] = sum(blk.format == "bitmap" for blk in blocks) / len(blocks)
        rows.append({"density": d, "nnz": nnz, "total_bits": total,
                     "bits_per_element": {k: v / elements for k, v in total.items()},
                     "bitmap_block_fraction": bitmap_fraction})
    # Where coordinate and bitmap blocks cost the same: count_width + n*coord_width = B.
    analytic_nnz = (b - config.count_width) / config.coord_width
    return {
        "config": config.to_dict(),
        "derived": {"coord_width": config.coord_width, "count_width": config.count_width,
                    "value_range": list(config.value_range)},
        "elements": elements,
        "blocks": -(-elements // b),
        "seed": seed,
        "definitions": {
            "bitmap block bits": "B + nnz * value_width",
            "coordinate block bits": "count_width + nnz * (coord_width + value_width)",
            "hybrid": "sum of its blocks + 1 tag bit per block",
            "bits_per_element": "total bits of the encoding / elements",
            "tensor": "1-D, exactly round(density * elements) nonzeros at uniformly random "
                      "positions, values uniform over the nonzero value range",
        },
        "block_bits_example": {"empty bitmap": bitmap_bits(config, 0),
                               "empty coordinate": coordinate_bits(config, 0),
                               "full bitmap": bitmap_bits(config, b),
                               "full coordinate": coordinate_bits(config, b)},
        "rows": rows,
        "crossover": {
            "measured_density": _crossover(
                densities, [r["bits_per_element"]["bitmap"] for r in rows],
                [r["bits_per_element"]["coordinate"] for r in rows]),
            "analytic_density": analytic_nnz / b,
            "size_rule_bitmap_from_nnz": crossover_nnz(config),
            "note": "measured: linear interpolation between the swept densities where "
                    "coordinate-only stops being smaller than bitmap-only; analytic: "
                    "(B - count_width) / coord_width / B, where one block costs the same in "
                    "both formats",
        },
        "tools": tool_versions(),
    }


def _plot(data: dict, path: Path) -> None:
    plt = pyplot()

    rows = data["rows"]
    x = [r["density"] for r in rows]
    fig, (ax, ax_mix) = plt.subplots(1, 2, figsize=(11, 4.5),
                                     gridspec_kw={"width_ratios": [2, 1]})
    styles = {"bitmap": "o-", "coordinate": "s-", "hybrid (size rule)": "^--",
              "hybrid (density rule)": "v:"}
    for name in FORMATS:
        ax.plot(x, [r["bits_per_element"][name] for r in rows], styles[name], label=name,
                markersize=4)
        if name.startswith("hybrid"):
            ax_mix.plot(x, [r["bitmap_block_fraction"][name] for r in rows], styles[name],
                        label=name, markersize=4)
    cross = data["crossover"]["measured_density"]
    if cross is not None:
        for axis in (ax, ax_mix):
            axis.axvline(cross, color="k", linestyle="--", linewidth=1)
        ax.annotate(f"crossover\ndensity {cross:.3f}", (cross, 0),
                    xytext=(cross + 0.03, 0.9 * max(r["bits_per_element"]["coordinate"]
                                                     for r in rows)), fontsize=9)
    cfg = data["config"]
    ax.set_title(f"storage, B = {cfg['block']}, {cfg['value_width']}-bit values")
    ax.set_xlabel("density (nonzeros / elements)")
    ax.set_ylabel("bits per element")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ax_mix.set_title("hybrid: fraction of bitmap blocks")
    ax_mix.set_xlabel("density")
    ax_mix.set_ylim(-0.05, 1.05)
    ax_mix.legend(fontsize=8)
    ax_mix.grid(True, alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def write_storage_report(out_dir: str | Path, **options) -> list[Path]:
    """Write ``sparse_storage.json`` and ``sparse_storage.png`` into ``out_dir``.

    ``options`` go to :func:`storage_report` (``config``, ``densities``, ``elements``,
    ``seed``). Returns the paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = storage_report(**options)
    paths = [out_dir / "sparse_storage.json", out_dir / "sparse_storage.png"]
    atomic_write(paths[0], json.dumps(data, indent=2) + "\n")
    _plot(data, paths[1])
    return paths
