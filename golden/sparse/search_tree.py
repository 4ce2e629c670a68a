"""RT-NeRF's bi-directional adder & search tree over a bitmap block: parameters and golden model.

A query is ``(op, bitmap, arg)`` over a block of ``B`` bits (``bitmap[0]`` is position 0):

- ``SearchOp.RANK``: ``result`` = number of set bits in ``bitmap[0:arg]`` (a prefix count),
  for ``arg`` in ``0..B``. ``arg > B`` is an error.
- ``SearchOp.SELECT``: ``result`` = position of the ``arg``-th set bit, counting from 0.
  ``arg >= popcount(bitmap)`` is an error ("not found").

An error gives ``error = 1`` and ``result = 0``: a defined flag, never garbage. ``arg`` is an
``index_width``-bit unsigned field, so it ranges over ``0..2**index_width - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..params import BlockConfig, param

__all__ = ["SearchOp", "SearchTreeConfig", "search_tree", "rank", "select"]


class SearchOp(IntEnum):
    """The query kind: the ``op`` field of the input payload."""

    RANK = 0    # prefix count of set bits before position arg
    SELECT = 1  # position of the arg-th set bit


@dataclass(frozen=True, kw_only=True)
class SearchTreeConfig(BlockConfig):
    """Parameters of a pipelined bi-directional adder & search tree.

    Parameters
    ----------
    bits : int
        Bitmap block size ``B``, 8..1024 (any value, not only powers of two).
    levels_per_stage : int
        Tree levels between pipeline registers, 1..10, in the upward (adder) and the downward
        (search) pass alike: fewer gives a higher clock, more gives a lower latency.
    """

    bits: int = param(64, help="bitmap block size in bits", range=(8, 1024))
    levels_per_stage: int = param(1, help="tree levels between pipeline registers (both passes)",
                                  range=(1, 10))

    @property
    def levels(self) -> int:
        """Tree levels above the leaves, ``ceil(log2(bits))``."""
        return (self.bits - 1).bit_length()

    @property
    def leaves(self) -> int:
        """Leaves of the conceptual tree, ``2**levels``: the bitmap padded with zeros."""
        return 1 << self.levels

    @property
    def index_width(self) -> int:
        """Width of ``arg`` and ``result``: holds every value in ``0..bits``."""
        return self.bits.bit_length()

    @property
    def max_arg(self) -> int:
        """Largest ``arg`` the payload carries, ``2**index_width - 1``."""
        return (1 << self.index_width) - 1

    @property
    def stages_per_pass(self) -> int:
        """Register stages of each pass, ``ceil(levels / levels_per_stage)``."""
        return -(-self.levels // self.levels_per_stage)


def _queries(config: SearchTreeConfig, op, bitmap, arg):
    bitmap = np.asarray(bitmap)
    if bitmap.ndim != 2 or bitmap.shape[1] != config.bits:
        raise ValueError(f"bitmap must have shape (N, {config.bits}), got {bitmap.shape}")
    if bitmap.dtype.kind not in "iub":
        raise TypeError(f"bitmap must hold integers, got dtype {bitmap.dtype}")
    if bitmap.size and not np.isin(bitmap, (0, 1)).all():
        raise ValueError("bitmap values must be 0 or 1")
    n = bitmap.shape[0]
    op, arg = (np.broadcast_to(np.asarray(x, dtype=np.int64), (n,)) for x in (op, arg))
    if not np.isin(op, [o.value for o in SearchOp]).all():
        raise ValueError(f"op must be one of {[o.value for o in SearchOp]}")
    if n and (arg.min() < 0 or arg.max() > config.max_arg):
        raise ValueError(f"arg must be in 0..{config.max_arg}")
    return op, bitmap.astype(np.int64), arg


def search_tree(config: SearchTreeConfig, op, bitmap, arg) -> dict[str, np.ndarray]:
    """Bit-exact model of a stream of search-tree queries.

    Parameters
    ----------
    config : SearchTreeConfig
    op : array_like of int, shape ``(N,)`` or scalar
        :class:`SearchOp` of each query.
    bitmap : array_like of int, shape ``(N, bits)``
        The bitmap blocks, 0 or 1 per position.
    arg : array_like of int, shape ``(N,)`` or scalar
        ``0..max_arg``: the prefix length (RANK) or the set-bit ordinal (SELECT).

    Returns
    -------
    dict of numpy.ndarray
        ``result`` and ``error``, each of shape ``(N,)``; ``result`` is 0 where ``error`` is 1.
    """
    op, bitmap, arg = _queries(config, op, bitmap, arg)
    n = len(op)
    counts = np.zeros((n, config.bits + 1), dtype=np.int64)  # counts[:, k]: set bits in [0, k)
    np.cumsum(bitmap, axis=1, out=counts[:, 1:])
    popcount = counts[:, -1]
    is_rank = op == SearchOp.RANK
    rank_error = arg > config.bits
    rank_result = counts[np.arange(n), np.minimum(arg, config.bits)]
    select_error = arg >= popcount
    # The arg-th set bit sits where the running count first exceeds arg: before it, the count
    # is <= arg at every position, so the number of such positions is its index.
    select_result = (counts[:, 1:] <= arg[:, None]).sum(axis=1)
    error = np.where(is_rank, rank_error, select_error)
    result = np.where(error, 0, np.where(is_rank, rank_result, select_result))
    return {"result": result.astype(np.int64), "error": error.astype(np.int64)}


def rank(bitmap, arg: int) -> int | None:
    """Set bits in ``bitmap[0:arg]``; ``None`` when ``arg`` is outside ``0..len(bitmap)``."""
    bits = [int(b) for b in bitmap]
    if not 0 <= arg <= len(bits):
        return None
    return sum(bits[:arg])


def select(bitmap, arg: int) -> int | None:
    """Position of the ``arg``-th set bit of ``bitmap`` (from 0); ``None`` if there is none."""
    if arg < 0:
        return None
    for position, bit in enumerate(bitmap):
        if bit:
            if arg == 0:
                return position
            arg -= 1
    return None
