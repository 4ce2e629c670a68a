"""Figures of the reports and benchmarks: matplotlib without a display, PNGs written whole."""

from __future__ import annotations

from pathlib import Path

__all__ = ["pyplot", "save_figure"]


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (reports run headless, in CI and on workers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, *, dpi: int = 110) -> None:
    """Write ``fig`` to ``path`` through a temporary file renamed into place (a reader never
    sees half a PNG), and close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        fig.savefig(tmp, dpi=dpi)
    finally:
        pyplot().close(fig)
    tmp.replace(path)
