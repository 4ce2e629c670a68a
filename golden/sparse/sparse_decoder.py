"""Hybrid sparse decoder front-end: parameters, word protocol and the bit-exact model.

Callers stream a hybrid encoding (``golden.sparse.encoding``: each block in bitmap or
coordinate format, the *tag*) and lookup queries through one interface; the front-end serves
each query with the unit that matches the current block's format:

- bitmap blocks: ``hit = bitmap[i]``, ``value = values[rank(i)]``, the rank from the
  bi-directional adder & search tree (``golden.sparse.search_tree``);
- coordinate blocks: the coordinate search unit (``golden.sparse.sparse_search``).

Words (input stream fields ``kind``, ``tag``, ``bitmap``, ``coord``, ``value``, ``last``,
``empty``): a bitmap block is a header word (``kind=LOAD, tag=BITMAP, empty=1``, the bitmap)
followed by one word per nonzero value (``empty=0``), ``last`` on its final word; a coordinate
block is the coordinate unit's load words with ``tag=COORDINATE``; a query is ``kind=QUERY``
with the local position in ``coord``. Each query gets one answer ``{hit, value, error}``.

Defined errors (``error=1, hit=0, value=0``), never garbage: a position outside the block
(``coord >= block``); a bitmap block whose value count differs from its bitmap's popcount
(queried before it is complete, or given too many values); anything the coordinate unit flags
(coordinates out of order, duplicated, outside the block, too many).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..params import BlockConfig, param
from .encoding import BitmapBlock, CoordinateBlock
from .search_tree import SearchTreeConfig
from .sparse_search import SparseSearchConfig, block_words, sparse_search

__all__ = ["WordKind", "Tag", "SparseDecoderConfig", "sparse_decoder", "load_words",
           "query_words", "concat"]

FIELDS = ("kind", "tag", "bitmap", "coord", "value", "last", "empty")


class WordKind(IntEnum):
    """The ``kind`` field of an input word."""

    LOAD = 0
    QUERY = 1


class Tag(IntEnum):
    """The ``tag`` field: the format of the block a load word belongs to."""

    BITMAP = 0
    COORDINATE = 1


@dataclass(frozen=True, kw_only=True)
class SparseDecoderConfig(BlockConfig):
    """Parameters of the decoder front-end.

    Parameters
    ----------
    block : int
        Elements per block B, 8..1024.
    value_width : int
        Signed value width, 2..32.
    parallel : int
        Coordinates the coordinate unit compares per cycle, 1..64.
    levels_per_stage : int
        Search-tree levels between pipeline registers, 1..10.
    """

    block: int = param(64, help="elements per block B", range=(8, 1024))
    value_width: int = param(16, help="value width in bits (signed)", range=(2, 32))
    parallel: int = param(8, help="coordinates compared per cycle in the coordinate unit",
                          range=(1, 64))
    levels_per_stage: int = param(1, help="search-tree levels between pipeline registers",
                                  range=(1, 10))

    @property
    def search_tree(self) -> SearchTreeConfig:
        return SearchTreeConfig(bits=self.block, levels_per_stage=self.levels_per_stage)

    @property
    def sparse_search(self) -> SparseSearchConfig:
        return SparseSearchConfig(coord_width=max(3, (self.block - 1).bit_length()),
                                  value_width=self.value_width, max_nnz=self.block,
                                  parallel=self.parallel, block=self.block)

    @property
    def query_width(self) -> int:
        """Width of ``coord``: positions 0..block, so an out-of-range one can be asked."""
        return self.block.bit_length()


def _words(config: SparseDecoderConfig, words: dict) -> dict[str, np.ndarray]:
    missing = [f for f in FIELDS if f not in words]
    if missing:
        raise ValueError(f"words miss fields {missing}")
    n = len(words["kind"])
    out = {f: np.asarray(words[f], dtype=np.int64) for f in FIELDS}
    if out["bitmap"].shape != (n, config.block):
        raise ValueError(f"bitmap must have shape ({n}, {config.block}), "
                         f"got {out['bitmap'].shape}")
    return out


def sparse_decoder(config: SparseDecoderConfig, words: dict) -> dict[str, np.ndarray]:
    """Bit-exact model: one answer ``{hit, value, error}`` per query word, in order."""
    w = _words(config, words)
    tag, bitmap, values = Tag.BITMAP, np.zeros(config.block, dtype=np.int64), []
    overflow = False
    answers = []
    # The coordinate unit sees exactly the words routed to it; its answers come back in order.
    routed = {f: [] for f in ("kind", "coord", "value", "last", "empty")}
    coordinate_queries = []  # index into answers of each query sent to the coordinate unit
    for t in range(len(w["kind"])):
        if w["kind"][t] == WordKind.LOAD:
            tag = Tag(w["tag"][t])
            if tag == Tag.BITMAP:
                if w["empty"][t]:  # header: a new bitmap block
                    bitmap, values, overflow = w["bitmap"][t].copy(), [], False
                elif len(values) < config.block:
                    values.append(int(w["value"][t]))
                else:
                    overflow = True
            else:
                for f in routed:
                    routed[f].append(int(w[f][t]))
            continue
        position = int(w["coord"][t])
        out_of_range = position >= config.block
        if tag == Tag.COORDINATE:
            coordinate_queries.append((len(answers), out_of_range))
            for f, v in (("kind", 1), ("coord", position % config.block), ("value", 0),
                         ("last", 0), ("empty", 0)):
                routed[f].append(v)
            answers.append(None)
            continue
        complete = not overflow and len(values) == int(bitmap.sum())
        if out_of_range or not complete:
            answers.append((0, 0, 1))
        elif bitmap[position]:
            answers.append((1, values[int(bitmap[:position].sum())], 0))
        else:
            answers.append((0, 0, 0))
    if coordinate_queries:
        coordinate = sparse_search(config.sparse_search, *(routed[f] for f in routed))
        for k, (index, out_of_range) in enumerate(coordinate_queries):
            error = out_of_range or bool(coordinate["error"][k])
            answers[index] = (0, 0, 1) if error else (int(coordinate["hit"][k]),
                                                      int(coordinate["value"][k]), 0)
    hit, value, error = (np.array([a[j] for a in answers], dtype=np.int64) for j in range(3))
    return {"hit": hit, "value": value, "error": error}


def load_words(config: SparseDecoderConfig, block) -> dict[str, np.ndarray]:
    """The load words (fresh, writable arrays) of one encoded block (a ``BitmapBlock`` or a
    ``CoordinateBlock``)."""
    b = config.block
    if isinstance(block, BitmapBlock):
        n = 1 + len(block.values)
        words = {f: np.zeros(n, dtype=np.int64) for f in FIELDS if f != "bitmap"}
        words["bitmap"] = np.zeros((n, b), dtype=np.int64)
        words["bitmap"][0] = np.asarray(block.bitmap, dtype=np.int64)
        words["empty"][0] = 1
        words["value"][1:] = block.values
        words["last"][-1] = 1
        return words
    if isinstance(block, CoordinateBlock):
        words = {f: np.array(v) for f, v in block_words(block.coords, block.values).items()}
        n = len(words["kind"])
        return {**words, "tag": np.full(n, int(Tag.COORDINATE)),
                "bitmap": np.zeros((n, b), dtype=np.int64)}
    raise TypeError(f"block must be a BitmapBlock or a CoordinateBlock, got {block!r}")


def query_words(config: SparseDecoderConfig, positions) -> dict[str, np.ndarray]:
    """Query words for local positions."""
    positions = np.asarray(positions, dtype=np.int64).reshape(-1)
    n = len(positions)
    words = {f: np.zeros(n, dtype=np.int64) for f in FIELDS if f != "bitmap"}
    words.update(kind=np.ones(n, dtype=np.int64), coord=positions,
                 bitmap=np.zeros((n, config.block), dtype=np.int64))
    return words


def concat(*parts: dict) -> dict[str, np.ndarray]:
    """Concatenate word batches."""
    return {f: np.concatenate([p[f] for p in parts]) for f in FIELDS}
