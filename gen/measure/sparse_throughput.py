"""Measured queries per cycle of the sparse units, from cycle-accurate simulation.

Each unit runs a stream of queries with no stalls in the Amaranth simulator (the same RTL the
cocotb suite runs under Verilator) and the rate is counted from the cycles in which answers
left; every answer is checked against the golden model on the way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from golden.sparse.encoding import SparseFormatConfig, encode
from golden.sparse.search_tree import SearchOp, SearchTreeConfig, search_tree
from golden.sparse.sparse_decoder import (
    SparseDecoderConfig,
    concat,
    load_words,
    query_words,
    sparse_decoder,
)
from golden.sparse.sparse_search import SparseSearchConfig, block_words, sparse_search
from golden.sparse.sparse_search import query_words as search_queries
from hw.sparse.search_tree import SearchTree
from hw.sparse.sparse_decoder import SparseDecoder
from hw.sparse.sparse_search import SparseSearch
from sim.amaranth_sim import run_amaranth_bench
from sim.payload import stream_codecs
from sim.scoreboard import Scoreboard
from sim.stream import StreamBench

from ..emit import atomic_write, tool_versions

__all__ = ["throughput_report", "write_throughput_report"]


def _rate(component, inputs: dict, expected: dict) -> float:
    """Answers per cycle while answers flow, every answer checked against ``expected``."""
    in_codec, out_codec = stream_codecs(component)
    words = out_codec.encode(expected)
    bench = StreamBench(in_codec.encode(inputs), Scoreboard(words, out_codec),
                        max_cycles=200 * (len(words) + 10))
    result = run_amaranth_bench(component, bench)
    return len(words) / (result.out_cycles[-1] - result.out_cycles[0] + 1)


def _dense(rng, size: int, density: float) -> np.ndarray:
    values = rng.integers(1, 1000, size)
    return np.where(rng.random(size) < density, values, 0)


def throughput_report(queries: int = 256, seed: int = 0) -> dict:
    """Queries per cycle of the search tree, the coordinate search unit (by P and block
    fill) and the decoder front-end (by format)."""
    rng = np.random.default_rng(seed)
    report = {"search_tree": {}, "sparse_search": {}, "sparse_decoder": {}}
    for bits in (64, 1000):
        config = SearchTreeConfig(bits=bits)
        inputs = {"op": rng.choice([int(op) for op in SearchOp], queries),
                  "bitmap": (rng.random((queries, bits)) < 0.3).astype(np.int64),
                  "arg": rng.integers(0, bits + 1, queries)}
        expected = search_tree(config, inputs["op"], inputs["bitmap"], inputs["arg"])
        report["search_tree"][f"B={bits}"] = _rate(SearchTree(config), inputs, expected)
    for parallel in (1, 4, 8, 16):
        config = SparseSearchConfig(max_nnz=64, parallel=parallel, coord_width=10)
        coords = np.sort(rng.choice(1024, 64, replace=False))
        words = {f: np.concatenate([block_words(coords, coords + 1)[f],
                                    search_queries(rng.integers(0, 1024, queries))[f]])
                 for f in ("kind", "coord", "value", "last", "empty")}
        expected = sparse_search(config, *(words[f] for f in
                                           ("kind", "coord", "value", "last", "empty")))
        report["sparse_search"][f"P={parallel}, 64 entries"] = _rate(SparseSearch(config),
                                                                      words, expected)
    config = SparseDecoderConfig()
    fmt = SparseFormatConfig(block=config.block, value_width=config.value_width)
    for density in (0.02, 0.1, 0.5, 1.0):
        block = encode(fmt, _dense(rng, config.block, density), "hybrid")[0]
        words = concat(load_words(config, block),
                       query_words(config, rng.integers(0, config.block, queries)))
        key = f"density {density:g} ({block.format}, {block.nnz} nonzeros)"
        report["sparse_decoder"][key] = _rate(SparseDecoder(config), words,
                                              sparse_decoder(config, words))
    return report


def write_throughput_report(out_dir: str | Path, **options) -> Path:
    """Measure and write ``sparse_throughput.json`` into ``out_dir``."""
    report = {"queries_per_cycle": throughput_report(**options),
              "method": "Amaranth simulator, no stalls, every answer checked",
              "tools": tool_versions()}
    path = Path(out_dir) / "sparse_throughput.json"
    atomic_write(path, json.dumps(report, indent=2) + "\n")
    return path
