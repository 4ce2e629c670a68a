"""Input sharing for linear ops (MARCA's buffer management): one fetched chunk of ``x`` feeds
every PE row.

For ``y = W x`` on a ``rows x cols`` array, each transaction needs a ``rows x cols`` tile of W but
only one ``cols``-long chunk of x: the same chunk is every row's ``b`` operand. Fetching it once
and fanning it out divides the x traffic by ``rows`` (``golden.memory.buffer_management``
counts it). This model turns ``(w tile, x chunk, last)`` words into the PE array's transactions.
"""

from __future__ import annotations

import numpy as np

from ..pe import Op
from ..pe_array import Mode, PEArrayConfig

__all__ = ["input_share", "share_words"]


def input_share(config: PEArrayConfig, w, x, last) -> dict[str, np.ndarray]:
    """PE-array transactions for words of weight tiles ``w`` ``(N, rows, cols)``, x chunks
    ``x`` ``(N, cols)`` and ``last`` flags ``(N,)``: multiply, linear mode, x on every row."""
    w, x = np.asarray(w), np.asarray(x)
    n = len(w)
    if w.shape != (n, config.rows, config.cols) or x.shape != (n, config.cols):
        raise ValueError(f"w must be (N, {config.rows}, {config.cols}) and x (N, {config.cols}), "
                         f"got {w.shape} and {x.shape}")
    return {
        "op": np.full(n, int(Op.MUL)),
        "mode": np.full(n, int(Mode.LINEAR)),
        "last": np.asarray(last, dtype=np.int64).reshape(n),
        "a": w,
        "b": np.broadcast_to(x[:, None, :], w.shape).copy(),
        "c": np.zeros_like(w),
    }


def share_words(schedule: dict) -> dict[str, np.ndarray]:
    """The shared-input words of a ``gemm_schedule``: its weight tiles and one x chunk each
    (row 0 of ``b``, which the schedule repeats on every row)."""
    return {"w": schedule["a"], "x": schedule["b"][:, 0, :], "last": schedule["last"]}
