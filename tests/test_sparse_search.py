"""Sparse search unit (coordinate format): golden versus a dict lookup, malformed blocks,
bit-exact hardware with stalls (Amaranth and Verilator), queries per cycle versus the model."""

import numpy as np
import pytest

from golden.sparse.sparse_search import (
    SparseSearchConfig,
    block_words,
    concat_words,
    cycles_per_query,
    query_words,
    rows_scanned,
    sparse_search,
)
from hw.sparse.sparse_search import SparseSearch
from sim.amaranth_sim import run_amaranth_bench, simulate_stream
from sim.payload import stream_codecs
from sim.runner import run_stream_test
from sim.scoreboard import Scoreboard
from sim.stream import StreamBench

DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)


def random_values(config, rng, n):
    """``n`` random values, about a third of them at the extremes, 0 or -1."""
    lo, hi = config.value_range
    corners = rng.random(n) < 0.3
    return np.where(corners, rng.choice(np.array([lo, hi, 0, -1]), n),
                    rng.integers(lo, hi + 1, n))


def random_block(config, rng, n):
    """``n`` sorted distinct coordinates in the block (``0..B-1``) and random values."""
    coords = np.sort(rng.choice(config.coord_limit, n, replace=False))
    return coords, random_values(config, rng, n)


def edge_queries(config, coords, rng, extra=8):
    """First, last, neighbours, 0, the largest coordinate, a missing one, and random ones."""
    top = config.coord_max
    picks = [0, top, top - 1, 1] + rng.integers(0, top + 1, extra).tolist()
    if len(coords):
        first, last = int(coords[0]), int(coords[-1])
        picks += [first, last, max(first - 1, 0), min(last + 1, top), int(rng.choice(coords))]
        missing = np.setdiff1d(np.arange(top + 1), coords)
        if len(missing):
            picks.append(int(rng.choice(missing)))
    return np.array(picks)


def dict_lookup(blocks_and_queries):
    """Plain-Python answers for well-formed blocks: (hit, index, value, error) per query."""
    answers = []
    for coords, values, queries in blocks_and_queries:
        table = {int(c): (k, int(v)) for k, (c, v) in enumerate(zip(coords, values))}
        for q in queries:
            k, v = table.get(int(q), (0, 0))
            answers.append((int(int(q) in table), k, v, 0))
    return answers


def as_tuples(out):
    return list(zip(*(out[name].tolist() for name in ("hit", "index", "value", "error"))))


def run_golden(config, parts):
    return sparse_search(config, **concat_words(*parts))


# --- Golden model -------------------------------------------------------------------------


@pytest.mark.parametrize("coord_width,block,max_nnz", [(6, None, 64), (10, None, 1024),
                                                       (10, None, 64), (10, 1000, 1000)])
def test_golden_matches_dict_lookup(coord_width, block, max_nnz, rng):
    config = SparseSearchConfig(coord_width=coord_width, block=block, max_nnz=max_nnz)
    space = config.coord_limit
    sizes = [round(d * space) for d in DENSITIES if round(d * space) <= max_nnz]
    sizes += [max_nnz, 1, int(rng.integers(0, max_nnz + 1))]
    cases, parts = [], []
    for n in sizes:
        coords, values = random_block(config, rng, n)
        queries = edge_queries(config, coords, rng)
        if n >= space // 2:  # dense blocks: every coordinate of the space
            queries = np.concatenate([queries, np.arange(space)])
        cases.append((coords, values, queries))
        parts += [block_words(coords, values), query_words(queries)]
    assert as_tuples(run_golden(config, parts)) == dict_lookup(cases)


def test_golden_malformed_blocks_flag_every_answer():
    config = SparseSearchConfig(coord_width=6, block=40, max_nnz=5, parallel=2)
    good = ([3, 9, 20], [7, -8, 5])
    queries = query_words([3, 9, 20, 4, 63])
    malformed = {
        "out of order": ([3, 20, 9], [1, 2, 3]),
        "duplicate": ([3, 9, 9, 20], [1, 2, 3, 4]),
        "too many": ([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]),
        "outside the block": ([3, 9, 40], [1, 2, 3]),
        "first two out of order": ([5, 4], [1, 1]),
    }
    for name, (coords, values) in malformed.items():
        out = run_golden(config, [block_words(*good), queries, block_words(coords, values),
                                  queries, block_words(*good), queries])
        answers = as_tuples(out)
        assert answers[:5] == answers[10:] == [(1, 0, 7, 0), (1, 1, -8, 0), (1, 2, 5, 0),
                                               (0, 0, 0, 0), (0, 0, 0, 0)], name
        assert answers[5:10] == [(0, 0, 0, 1)] * 5, name  # an error flag, never data
    # Exactly max_nnz entries up to B - 1 is fine; an empty block misses without error.
    out = run_golden(config, [block_words([1, 2, 3, 4, 39], [9, 8, 7, 6, 5]),
                              query_words([39, 40, 63]), block_words([]), query_words([0, 5])])
    assert as_tuples(out) == [(1, 4, 5, 0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0),
                              (0, 0, 0, 0)]


def test_golden_queries_inside_a_block_and_empty_words():
    config = SparseSearchConfig(coord_width=4, max_nnz=4, parallel=1)
    words = concat_words(
        block_words([2, 7], [1, 2]),
        {**block_words([5, 6], [3, 4]), "last": np.array([0, 0])},  # open block: 5, 6
        query_words([5, 6, 2]),                 # answered against the entries so far
        {**block_words([9], [0]), "empty": np.array([1]), "last": np.array([0])},  # no entry
        {**block_words([4], [7]), "last": np.array([0])},  # out of order: flagged from here
        query_words([5]),
        block_words([8], [-1]),                 # ends the malformed block
        query_words([8, 5]),
        block_words([11], [6]),                 # a new block replaces it
        query_words([11, 5]),
    )
    assert as_tuples(sparse_search(config, **words)) == [
        (1, 0, 3, 0), (1, 1, 4, 0), (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 1), (0, 0, 0, 1),
        (1, 0, 6, 0), (0, 0, 0, 0)]


def test_rows_scanned_and_cycles_per_query():
    config = SparseSearchConfig(max_nnz=20, parallel=8)  # rows of 8, 8, 4
    n = 20
    # rank: stored coordinates below the query; the scan stops at the row holding rank.
    assert rows_scanned(config, n, [0, 7, 8, 15, 16, 19, 20]).tolist() == [1, 1, 2, 2, 3, 3, 3]
    assert rows_scanned(config, 9, 9).tolist() == 2
    assert rows_scanned(config, 0, 0).tolist() == 0
    assert cycles_per_query(config, [0, 20, 5], [0, 20, 0]).tolist() == [1, 3, 1]


@pytest.mark.parametrize("kwargs,message", [
    ({"coord_width": 2}, "coord_width must be in 3..16, got 2"),
    ({"coord_width": 17}, "coord_width must be in 3..16, got 17"),
    ({"value_width": 1}, "value_width must be in 2..32, got 1"),
    ({"value_width": 33}, "value_width must be in 2..32, got 33"),
    ({"max_nnz": 0}, "max_nnz must be in 1..1024, got 0"),
    ({"max_nnz": 1025}, "max_nnz must be in 1..1024, got 1025"),
    ({"parallel": 0}, "parallel must be in 1..64, got 0"),
    ({"parallel": 65}, "parallel must be in 1..64, got 65"),
    ({"block": 0}, "block must be in 1..65536, got 0"),
    ({"coord_width": 5, "block": 33}, r"block must be in 1..32 \(2\*\*coord_width\), got 33"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseSearchConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        SparseSearch(**kwargs)


def test_golden_helpers_reject_bad_inputs():
    config = SparseSearchConfig(coord_width=4, value_width=4, max_nnz=8)
    good = concat_words(block_words([1, 2], [3, -4]), query_words([2]))
    for name, bad, message in [
        ("coord", 16, "coord must be in 0..15, got 16"),
        ("coord", -1, "coord must be in 0..15, got -1"),
        ("value", 8, "value must be in -8..7, got 8"),
        ("kind", 2, "kind must be in 0..1, got 2"),
        ("last", 2, "last must be in 0..1, got 2"),
        ("empty", -1, "empty must be in 0..1, got -1"),
    ]:
        words = {k: v.copy() for k, v in good.items()}
        words[name][1] = bad
        with pytest.raises(ValueError, match=message):
            sparse_search(config, **words)
    with pytest.raises(ValueError, match="must have one length, got 3, 3, 2, 3, 3"):
        sparse_search(config, **{**good, "value": good["value"][:2]})
    with pytest.raises(ValueError, match="n must be in 0..8, got 9"):
        rows_scanned(config, 9, 0)
    with pytest.raises(ValueError, match="rank must be in 0..n, got 5"):
        cycles_per_query(config, 4, 5)
    with pytest.raises(ValueError, match="values must have one entry per coordinate"):
        block_words([1, 2], [3])


# --- Hardware -----------------------------------------------------------------------------


def mixed_stream(config, rng):
    """Several blocks in one stream: empty, one entry, full, dense, malformed (out of order,
    duplicate, too many, outside the block), a word with no entry, queries inside a block,
    random ones."""
    # A block holds at most one entry per coordinate, however large max_nnz is.
    space = config.coord_limit
    nnz = min(config.max_nnz, space)
    parts = []

    def block(coords, values=None, queries=None):
        coords = np.asarray(coords)
        if values is None:
            values = random_values(config, rng, len(coords))
        parts.append(block_words(coords, values))
        parts.append(query_words(edge_queries(config, coords, rng) if queries is None
                                 else queries))

    block([])
    block(*random_block(config, rng, 1))
    block(*random_block(config, rng, nnz))
    block(*random_block(config, rng, min(nnz, space)), queries=np.arange(space))  # dense
    block(*random_block(config, rng, max(nnz - 1, 1)))
    for n in rng.integers(0, nnz + 1, 4):
        block(*random_block(config, rng, n))
    coords, _ = random_block(config, rng, min(nnz + 1, space))
    block(coords[::-1] if len(coords) > 1 else coords)  # out of order
    block(np.sort(np.concatenate([coords[:nnz - 1], coords[:1]])))  # a duplicate
    block(np.arange(nnz + 1) % space)  # too many (or wrapped: out of order)
    if space < 1 << config.coord_width:  # outside the block
        block(np.concatenate([random_block(config, rng, min(nnz, space) - 1)[0], [space]]))
    block([])
    # A word with no entry, then a query inside an open block, then its end.
    coords, values = random_block(config, rng, min(nnz, space))
    words = block_words(coords, values)
    words["empty"][0], words["last"][-1] = 1, 0
    parts += [words, query_words(coords[:3]), block_words([], [])]
    parts.append(query_words(edge_queries(config, coords, rng)))
    return concat_words(*parts)


HW_CONFIGS = {
    "p1": SparseSearchConfig(coord_width=4, value_width=5, max_nnz=9, parallel=1),
    "p8": SparseSearchConfig(coord_width=6, block=50, value_width=16, max_nnz=21, parallel=8),
    "p3": SparseSearchConfig(coord_width=3, value_width=2, max_nnz=8, parallel=3),
    "p5-nnz1": SparseSearchConfig(coord_width=3, value_width=32, max_nnz=1, parallel=5),
}


@pytest.mark.parametrize("name", sorted(HW_CONFIGS))
def test_amaranth_sim_bit_exact_with_stalls(name, rng):
    config = HW_CONFIGS[name]
    inputs = mixed_stream(config, rng)
    expected = sparse_search(config, **inputs)
    assert expected["error"].any() and expected["hit"].any() and not expected["hit"].all()
    simulate_stream(SparseSearch(config), inputs, expected,
                    np.flatnonzero(inputs["kind"]), valid_prob=0.7, ready_prob=0.6, seed=3)


@pytest.mark.parametrize("name", ["p1", "p8"])
def test_verilator_bit_exact_with_stalls(name, rng):
    config = HW_CONFIGS[name]
    inputs = concat_words(mixed_stream(config, rng), mixed_stream(config, rng))
    expected = sparse_search(config, **inputs)
    run_stream_test(SparseSearch(config), f"sparse_search_{name}", inputs, expected,
                    np.flatnonzero(inputs["kind"]), valid_prob=0.7, ready_prob=0.6, seed=11)


@pytest.mark.parametrize("parallel", [1, 4, 16])
def test_queries_per_cycle_match_the_model(parallel, rng, measure):
    config = SparseSearchConfig(max_nnz=64, parallel=parallel)
    coords, values = random_block(config, rng, 64)
    hits = rng.choice(coords, 32)
    queries = np.concatenate([hits, rng.integers(0, config.coord_max + 1, 24),
                              edge_queries(config, coords, rng, extra=0)])
    rng.shuffle(queries)
    inputs = concat_words(block_words(coords, values), query_words(queries))
    dut = SparseSearch(config)
    in_codec, out_codec = stream_codecs(dut)
    expected = out_codec.encode(sparse_search(config, **inputs))
    bench = StreamBench(in_codec.encode(inputs), Scoreboard(expected, out_codec),
                        max_cycles=len(queries) * (config.rows + 1) + 200)
    result = run_amaranth_bench(dut, bench)

    ranks = np.searchsorted(coords, queries)
    rows = rows_scanned(config, 64, ranks)
    cycles = cycles_per_query(config, 64, ranks)
    first = 64  # the input index of the first query
    accepted = np.array(result.in_cycles[first:])
    measured = len(queries) / (accepted[-1] - accepted[0] + cycles[-1])
    modelled = len(queries) / cycles.sum()
    latency = np.array(result.out_cycles) - accepted
    measure(f"sparse search P={parallel}, 64 entries, {len(queries)} queries: "
            f"{measured:.4f} queries/cycle (model {modelled:.4f}), mean rows "
            f"{rows.mean():.2f}, latency rows + 1 = {latency.min()}..{latency.max()} cycles")
    assert np.array_equal(np.diff(accepted), cycles[:-1])
    assert measured == modelled
    assert np.array_equal(latency, [dut.query_latency(r) for r in rows])
    assert dut.latency == dut.query_latency(config.rows)
