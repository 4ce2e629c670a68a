"""Ping-pong (double) buffer: parameters and the model.

Two halves of ``depth`` words each. The producer stream (``data``, ``last``) fills one half;
a *fill* ends at a word with ``last = 1`` or at the half's ``depth``-th word, and then the
halves swap by handshake: the filled half is handed to the consumer and the producer moves on
to the other half as soon as the consumer has drained it. The consumer stream outputs each
filled half in order, ``last = 1`` on the final word of every fill (so a fill of ``depth`` words
without ``last`` gets one on its final word). The producer never overwrites unread data; it
stalls instead.

So the output equals the input, with ``last`` marking the fill boundaries. Words of a fill that
has not ended (no ``last``, fewer than ``depth`` words, at the end of the input) stay in the
buffer and are not output.

Timing (the hardware's). A fill is output only once it is complete, and fill ``k + 2`` can
start only once fill ``k`` is drained. With no stalls and back-to-back fills of equal length
(``depth`` words, one word, or any other), words move at one per cycle in steady state; with
mixed lengths a short fill after a long one waits for the consumer and a long fill after a
short one leaves the consumer idle. A fill's first word leaves two cycles after the word that
ended the fill was accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import BlockConfig, param

__all__ = ["PingPongConfig", "fills", "pingpong"]


@dataclass(frozen=True, kw_only=True)
class PingPongConfig(BlockConfig):
    """Parameters of the ping-pong buffer.

    Parameters
    ----------
    width : int
        Data width in bits, 1..512.
    depth : int
        Words per half, 1..65536 (the longest fill).
    """

    width: int = param(16, help="data width in bits", range=(1, 512))
    depth: int = param(256, help="words per half (the longest fill)", range=(1, 65536))


def fills(config: PingPongConfig, last) -> list[tuple[int, int]]:
    """``(start, stop)`` of each complete fill, given the input ``last`` flags (a fill also
    ends at its ``depth``-th word)."""
    flags = np.asarray(last, dtype=np.int64)
    if flags.ndim != 1 or (flags.size and not np.isin(flags, (0, 1)).all()):
        raise ValueError("last must be a 1-D array of 0 and 1")
    bounds, start = [], 0
    for i, flag in enumerate(flags.tolist()):
        if flag or i - start + 1 == config.depth:
            bounds.append((start, i + 1))
            start = i + 1
    return bounds


def pingpong(config: PingPongConfig, data, last) -> dict[str, np.ndarray]:
    """The consumer stream for the producer stream ``data``, ``last``.

    Returns
    -------
    dict
        ``data`` (the input words of the complete fills, in order; int64, or an object array of
        Python ints for ``width > 63``) and ``last`` (1 on the final word of every fill).
    """
    values = [int(v) for v in np.asarray(data).tolist()]
    if len(values) != len(np.asarray(last)):
        raise ValueError("data and last must have the same length")
    if any(v < 0 or v >> config.width for v in values):
        raise ValueError(f"data must be in 0..2**{config.width} - 1")
    bounds = fills(config, last)
    end = bounds[-1][1] if bounds else 0
    out_last = np.zeros(end, dtype=np.int64)
    out_last[[stop - 1 for _, stop in bounds]] = 1
    dtype = object if config.width > 63 else np.int64
    return {"data": np.array(values[:end], dtype=dtype), "last": out_last}
