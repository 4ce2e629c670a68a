"""High-density sparse search unit for the coordinate format (RT-NeRF): parameters and model.

A *block* in coordinate format is a list of up to ``max_nnz`` stored entries, each a local
coordinate (unsigned, ``coord_width`` bits) and a value (signed, ``value_width`` bits), with the
coordinates strictly increasing. The unit holds one block and answers lookup queries: for a
query coordinate ``q`` it returns ``hit`` (``q`` is stored), ``index`` (its position in the
block's list) and ``value``; on a miss, ``index`` and ``value`` are 0.

One input stream carries both loads and queries; each word has the fields

- ``kind``: 0 = load word, 1 = query;
- ``coord``, ``value``: the entry (load) or the query coordinate (``value`` ignored);
- ``last``: on a load word, the block's final word;
- ``empty``: on a load word, "this word carries no entry" (it still opens / ends a block),
  so an empty block is one load word with ``empty = last = 1``.

``last`` and ``empty`` are ignored on queries. A block is a run of load words ended by one with
``last = 1``; the first load word after that (or at the start) begins a new block and replaces
the previous one. Queries are answered in order, one output per query, none per load word.
Queries normally follow a complete block; a query inside a block's run of load words is
answered against the entries loaded so far.

Errors (an error flag instead of wrong data). A block is *malformed* when an entry's coordinate
is not greater than the previous entry's (out of order or duplicate), is outside the block
(``>= block``, the coordinate range ``0..B-1``; with the default ``block = 2**coord_width``
the field cannot hold such a coordinate), or when the block has more than ``max_nnz`` entries
(the extra entries are dropped). The error is sticky: from the load word where it is detected
to the end of the block, every answer is ``error = 1, hit = index = value = 0``. A query
outside the block simply misses. :func:`sparse_search` rejects words whose fields do not fit
the payload (a coordinate of more than ``coord_width`` bits, say) with ValueError.

Timing (the hardware's, described here so the tests can check it). The stored entries sit in
rows of ``P = parallel`` entries; a query compares ``q`` against one row per cycle (P
comparators), starting at row 0, and stops at the first row holding a coordinate ``>= q`` or at
the last occupied row. With ``rank`` = number of stored coordinates ``< q`` and ``n`` entries,
that is ``min(rank // P + 1, ceil(n / P))`` rows (:func:`rows_scanned`); an empty or malformed
block is answered without a scan (0 rows). A query occupies the input for
``max(1, rows)`` cycles (:func:`cycles_per_query`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..fixed_point import int_range
from ..params import BlockConfig, param

__all__ = ["SparseSearchConfig", "sparse_search", "rows_scanned", "cycles_per_query",
           "block_words", "query_words", "concat_words", "FIELDS"]

# Input word fields, in the order of the hardware's payload layout.
FIELDS = ("kind", "coord", "value", "last", "empty")


@dataclass(frozen=True, kw_only=True)
class SparseSearchConfig(BlockConfig):
    """Parameters of the sparse search unit.

    Parameters
    ----------
    coord_width : int
        Width of a local coordinate (unsigned), 3..16: blocks of up to ``2**coord_width``
        voxels.
    value_width : int
        Width of a stored value (signed), 2..32.
    max_nnz : int
        Most entries a block may hold, 1..1024.
    parallel : int
        Stored coordinates compared per cycle (P), 1..64.
    block : int or None
        Elements per block ``B`` (any integer, as in ``golden.sparse.encoding``): a stored
        coordinate must be in ``0..B-1``. ``None``: ``2**coord_width``.
    """

    coord_width: int = param(10, help="local coordinate width in bits (unsigned)", range=(3, 16))
    value_width: int = param(16, help="stored value width in bits (signed)", range=(2, 32))
    max_nnz: int = param(64, help="most entries of a block", range=(1, 1024))
    parallel: int = param(8, help="coordinates compared per cycle (P)", range=(1, 64))
    block: int | None = param(None, help="elements per block B: stored coordinates must be "
                              "below it (default 2**coord_width)", range=(1, 1 << 16))

    def _check(self):
        if self.block is not None and self.block > 1 << self.coord_width:
            raise ValueError(f"block must be in 1..{1 << self.coord_width} (2**coord_width), "
                             f"got {self.block}")

    @property
    def coord_limit(self) -> int:
        """``B``: stored coordinates are ``0..B-1``."""
        return (1 << self.coord_width) if self.block is None else self.block

    @property
    def rows(self) -> int:
        """Rows of ``parallel`` entries holding ``max_nnz``: ``ceil(max_nnz / parallel)``."""
        return -(-self.max_nnz // self.parallel)

    @property
    def index_width(self) -> int:
        """Width of the output ``index`` (holds ``max_nnz - 1``, at least 1 bit)."""
        return max(1, (self.max_nnz - 1).bit_length())

    @property
    def value_range(self) -> tuple[int, int]:
        return int_range(self.value_width, True)

    @property
    def coord_max(self) -> int:
        return (1 << self.coord_width) - 1


def _check_range(name: str, values: np.ndarray, lo: int, hi: int) -> None:
    if values.size and (values.min() < lo or values.max() > hi):
        bad = values[(values < lo) | (values > hi)][0]
        raise ValueError(f"{name} must be in {lo}..{hi}, got {bad}")


def _words(config: SparseSearchConfig, kind, coord, value, last, empty) -> list[np.ndarray]:
    arrays = [np.asarray(a, dtype=np.int64).reshape(-1) for a in (kind, coord, value, last,
                                                                  empty)]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"kind, coord, value, last and empty must have one length, got "
                         f"{', '.join(str(len(a)) for a in arrays)}")
    kind, coord, value, last, empty = arrays
    _check_range("kind", kind, 0, 1)
    _check_range("coord", coord, 0, config.coord_max)
    _check_range("value", value, *config.value_range)
    _check_range("last", last, 0, 1)
    _check_range("empty", empty, 0, 1)
    return arrays


def sparse_search(config: SparseSearchConfig, kind, coord, value, last,
                  empty) -> dict[str, np.ndarray]:
    """Bit-exact model: the answers to the queries of an input stream.

    Parameters
    ----------
    kind, coord, value, last, empty : array_like of int
        The input words' fields, one entry per word (see the module docstring).

    Returns
    -------
    dict
        ``hit``, ``index``, ``value``, ``error``: one entry per query (``kind == 1``), in order.
    """
    kind, coord, value, last, empty = _words(config, kind, coord, value, last, empty)
    out = {name: [] for name in ("hit", "index", "value", "error")}
    coords: list[int] = []
    values: list[int] = []
    position: dict[int, int] = {}
    error, in_block = False, False
    for k, c, v, end, none in zip(kind.tolist(), coord.tolist(), value.tolist(), last.tolist(),
                                  empty.tolist()):
        if k == 0:
            if not in_block:  # the first load word of a block replaces the previous block
                coords, values, position, error = [], [], {}, False
            in_block = not end
            if none:
                continue
            if len(coords) == config.max_nnz:
                error = True  # too many entries: dropped
                continue
            if (coords and c <= coords[-1]) or c >= config.coord_limit:
                error = True  # out of order, duplicate, or outside the block
            position.setdefault(c, len(coords))
            coords.append(c)
            values.append(v)
            continue
        found = None if error else position.get(c)
        out["hit"].append(int(found is not None))
        out["index"].append(found or 0)
        out["value"].append(0 if found is None else values[found])
        out["error"].append(int(error))
    return {name: np.array(a, dtype=np.int64) for name, a in out.items()}


def rows_scanned(config: SparseSearchConfig, n, rank) -> np.ndarray:
    """Compare rows a query needs: ``min(rank // P + 1, ceil(n / P))``, 0 when ``n == 0``.

    Parameters
    ----------
    n : int or array_like of int
        Entries of the block, 0..max_nnz (pass 0 for a malformed block: it is not scanned).
    rank : int or array_like of int
        Stored coordinates smaller than the query, 0..n (``np.searchsorted(coords, q)``).
    """
    n, rank = np.broadcast_arrays(np.asarray(n, dtype=np.int64),
                                  np.asarray(rank, dtype=np.int64))
    _check_range("n", n, 0, config.max_nnz)
    if n.size and (rank.min() < 0 or np.any(rank > n)):
        bad = rank[(rank < 0) | (rank > n)][0]
        raise ValueError(f"rank must be in 0..n, got {bad}")
    p = config.parallel
    return np.minimum(rank // p + 1, -(-n // p))


def cycles_per_query(config: SparseSearchConfig, n, rank) -> np.ndarray:
    """Cycles a query occupies the unit's input: ``max(1, rows_scanned(config, n, rank))``.

    Back-to-back queries are accepted this many cycles apart (no stalls), so a run of queries
    takes the sum of these; a query's answer follows ``rows + 1`` cycles after it is accepted.
    """
    return np.maximum(1, rows_scanned(config, n, rank))


def block_words(coords, values=None) -> dict[str, np.ndarray]:
    """Load words of one block: an entry per word, ``last`` on the final one; an empty block
    (no coordinates) is one word with ``empty = last = 1``."""
    coords = np.asarray(coords, dtype=np.int64).reshape(-1)
    values = np.zeros_like(coords) if values is None else np.asarray(values, dtype=np.int64)
    if len(values) != len(coords):
        raise ValueError(f"values must have one entry per coordinate ({len(coords)}), got "
                         f"{len(values)}")
    if len(coords) == 0:
        return {"kind": np.zeros(1, np.int64), "coord": np.zeros(1, np.int64),
                "value": np.zeros(1, np.int64), "last": np.ones(1, np.int64),
                "empty": np.ones(1, np.int64)}
    last = np.zeros(len(coords), np.int64)
    last[-1] = 1
    return {"kind": np.zeros(len(coords), np.int64), "coord": coords, "value": values,
            "last": last, "empty": np.zeros(len(coords), np.int64)}


def query_words(coords) -> dict[str, np.ndarray]:
    """Query words for the coordinates ``coords``."""
    coords = np.asarray(coords, dtype=np.int64).reshape(-1)
    zeros = np.zeros(len(coords), np.int64)
    return {"kind": np.ones(len(coords), np.int64), "coord": coords, "value": zeros,
            "last": zeros, "empty": zeros}


def concat_words(*parts: dict) -> dict[str, np.ndarray]:
    """Concatenate dicts of word fields (from :func:`block_words`, :func:`query_words`)."""
    return {name: np.concatenate([np.asarray(p[name], dtype=np.int64) for p in parts])
            for name in FIELDS}
