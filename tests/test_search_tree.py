"""Search tree (RT-NeRF rank/select): golden model vs plain Python, Amaranth sim and Verilator
bit-exact under stalls, one query per cycle, latency formula, parameter checks."""

import math

import numpy as np
import pytest
from amaranth.hdl import Fragment
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.sparse.search_tree import SearchOp, SearchTreeConfig, rank, search_tree, select
from hw.sparse.search_tree import SearchTree, SearchTreeOp
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test

DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)


def plain_rank(bits, arg):
    """(result, error) of a RANK query, in plain Python."""
    return (bits[:arg].count(1), 0) if 0 <= arg <= len(bits) else (0, 1)


def plain_select(bits, arg):
    """(result, error) of a SELECT query, in plain Python."""
    ones = [p for p, b in enumerate(bits) if b]
    return (ones[arg], 0) if 0 <= arg < len(ones) else (0, 1)


# --- golden model ------------------------------------------------------------------------------


@given(st.data(), st.integers(8, 80), st.sampled_from(DENSITIES))
@settings(max_examples=150, deadline=None)
def test_golden_equals_plain_python_for_every_arg(data, n_bits, density):
    config = SearchTreeConfig(bits=n_bits)
    draw_bit = st.integers(0, 1) if 0 < density < 1 else st.just(int(density))
    bits = data.draw(st.lists(draw_bit, min_size=n_bits, max_size=n_bits))
    args = np.arange(config.max_arg + 1)  # every arg, out-of-range ones included
    bitmap = np.tile(bits, (len(args), 1))
    for op, plain, helper in ((SearchOp.RANK, plain_rank, rank),
                              (SearchOp.SELECT, plain_select, select)):
        out = search_tree(config, int(op), bitmap, args)
        expected = [plain(bits, int(a)) for a in args]
        assert list(zip(out["result"].tolist(), out["error"].tolist())) == expected
        assert [helper(bits, int(a)) for a in args] == [None if e else r for r, e in expected]


def test_golden_edges():
    config = SearchTreeConfig(bits=10)
    one_hot = [[1] + [0] * 9, [0] * 9 + [1]]  # only the first / only the last position set
    out = search_tree(config, [1, 1, 1, 1, 0, 0, 0, 0],
                      one_hot * 4, [0, 0, 1, 1, 1, 9, 10, 11])
    assert out["result"].tolist() == [0, 9, 0, 0, 1, 0, 1, 0]
    assert out["error"].tolist() == [0, 0, 1, 1, 0, 0, 0, 1]
    assert select([1] * 10, 9) == 9 and select([1] * 10, 10) is None
    assert select([0] * 10, 0) is None and rank([0] * 10, 10) == 0
    assert rank([1] * 10, 0) == 0 and rank([1] * 10, 10) == 10 and rank([1] * 10, 11) is None


@pytest.mark.parametrize("n_bits,levels,leaves,index_width", [
    (8, 3, 8, 4), (13, 4, 16, 4), (64, 6, 64, 7), (65, 7, 128, 7), (1000, 10, 1024, 10),
    (1024, 10, 1024, 11),
])
def test_config_derived_values(n_bits, levels, leaves, index_width):
    config = SearchTreeConfig(bits=n_bits)
    assert (config.levels, config.leaves, config.index_width) == (levels, leaves, index_width)
    assert config.levels == math.ceil(math.log2(n_bits))
    assert config.max_arg == (1 << index_width) - 1 >= n_bits


def test_golden_rejects_bad_queries():
    config = SearchTreeConfig(bits=8)
    zeros = np.zeros((2, 8), dtype=np.int64)
    with pytest.raises(ValueError, match=r"bitmap must have shape \(N, 8\), got \(2, 7\)"):
        search_tree(config, 0, np.zeros((2, 7), dtype=np.int64), 0)
    with pytest.raises(ValueError, match="bitmap values must be 0 or 1"):
        search_tree(config, 0, zeros + 2, 0)
    with pytest.raises(ValueError, match=r"op must be one of \[0, 1\]"):
        search_tree(config, 2, zeros, 0)
    with pytest.raises(ValueError, match="arg must be in 0..15"):
        search_tree(config, 0, zeros, 16)
    with pytest.raises(ValueError, match="arg must be in 0..15"):
        search_tree(config, 1, zeros, -1)


# --- stimulus ----------------------------------------------------------------------------------


def random_queries(config, rng, n):
    """Blocks of every density (all-zero and all-one included), both ops mixed, args at the
    edges (0, popcount - 1, popcount, bits, max_arg, ...) or anywhere in the field."""
    n_bits = config.bits
    density = rng.choice(DENSITIES, n)
    bitmap = (rng.random((n, n_bits)) < density[:, None]).astype(np.int64)
    bitmap[0::11] = 0
    bitmap[1::11] = 1
    popcount = bitmap.sum(axis=1)
    edges = np.stack([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64),
                      popcount - 1, popcount, popcount + 1,
                      np.full(n, n_bits - 1), np.full(n, n_bits), np.full(n, n_bits + 1),
                      np.full(n, config.max_arg), rng.integers(0, popcount + 1),
                      rng.integers(0, config.max_arg + 1, n)], axis=1)
    arg = np.clip(edges[np.arange(n), rng.integers(0, edges.shape[1], n)], 0, config.max_arg)
    return {"op": rng.integers(0, 2, n), "bitmap": bitmap, "arg": arg}


def exhaustive_queries(config):
    """Both ops with every arg on all-zero, all-one, first-only, last-only and alternating
    blocks."""
    n_bits = config.bits
    blocks = np.zeros((5, n_bits), dtype=np.int64)
    blocks[1] = 1
    blocks[2, 0] = 1
    blocks[3, -1] = 1
    blocks[4, ::2] = 1
    args = np.arange(config.max_arg + 1)
    grid = [(op, b, a) for b in range(len(blocks)) for op in (0, 1) for a in args]
    op, block, arg = (np.array(column) for column in zip(*grid))
    return {"op": op, "bitmap": blocks[block], "arg": arg}


def concat(*batches):
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def expected_for(config, inputs):
    out = search_tree(config, **inputs)
    plain = {0: plain_rank, 1: plain_select}
    spot = range(0, len(inputs["op"]), 97)  # a spot check against plain Python
    assert [(out["result"][q], out["error"][q]) for q in spot] == [
        plain[int(inputs["op"][q])](inputs["bitmap"][q].tolist(), int(inputs["arg"][q]))
        for q in spot]
    return out


# --- Amaranth simulator (fast unit tests) --------------------------------------------------------


@pytest.mark.parametrize("n_bits,levels_per_stage", [(8, 1), (13, 1), (13, 2), (64, 1), (64, 4)])
def test_amaranth_sim_bit_exact_under_stalls(n_bits, levels_per_stage, rng):
    config = SearchTreeConfig(bits=n_bits, levels_per_stage=levels_per_stage)
    inputs = concat(exhaustive_queries(config), random_queries(config, rng, 600))
    expected = expected_for(config, inputs)
    assert set(expected["error"].tolist()) == {0, 1}
    simulate_stream(SearchTree(config), inputs, expected, valid_prob=0.7, ready_prob=0.6,
                    seed=n_bits)


@pytest.mark.parametrize("n_bits,levels_per_stage", [
    (8, 1), (8, 2), (8, 3), (13, 1), (13, 3), (64, 1), (64, 2), (64, 6), (100, 4), (300, 10),
])
def test_amaranth_sim_latency_and_one_query_per_cycle(n_bits, levels_per_stage, rng):
    config = SearchTreeConfig(bits=n_bits, levels_per_stage=levels_per_stage)
    dut = SearchTree(config)
    assert dut.latency == 2 * math.ceil(config.levels / levels_per_stage)
    assert dut.latency == SearchTree.latency_of(config)
    inputs = random_queries(config, rng, 100)
    result = simulate_stream(dut, inputs, expected_for(config, inputs))
    assert np.all(np.diff(result.in_cycles) == 1)
    assert {o - i for i, o in zip(result.in_cycles, result.out_cycles)} == {dut.latency}


def test_op_enum_follows_golden_encoding():
    assert [(op.name, op.value) for op in SearchTreeOp] == [(op.name, op.value)
                                                            for op in SearchOp]
    dut = SearchTree(bits=13)
    assert dut.input_layout["bitmap"].shape.length == 13
    assert dut.input_layout["arg"].shape.width == dut.output_layout["result"].shape.width == 4
    Fragment.get(dut, None)  # it elaborates


# --- cocotb on Verilator: the emitted Verilog ---------------------------------------------------


@pytest.mark.parametrize("n_bits,n_queries", [(64, 3000), (1000, 500)])
def test_verilator_bit_exact_and_one_query_per_cycle(n_bits, n_queries, rng, measure):
    config = SearchTreeConfig(bits=n_bits)
    inputs = random_queries(config, rng, n_queries)
    expected = expected_for(config, inputs)
    dut = SearchTree(config)
    stalled = run_stream_test(dut, "search_tree", inputs, expected, valid_prob=0.7,
                              ready_prob=0.6, seed=n_bits)
    assert len(stalled.out_words) == n_queries
    free = run_stream_test(dut, "search_tree", inputs, expected, seed=n_bits)
    latencies = {o - i for i, o in zip(free.in_cycles, free.out_cycles)}
    interval = (free.in_cycles[-1] - free.in_cycles[0]) / (n_queries - 1)
    measure(f"search tree bits={n_bits}: {1 / interval:.3f} queries/cycle, latency "
            f"{sorted(latencies)} (component says {dut.latency}); {n_queries} queries in "
            f"{stalled.cycles} cycles with stalls")
    assert interval == 1.0
    assert latencies == {dut.latency}


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs,error,message", [
    ({"bits": 4}, ValueError, "bits must be in 8..1024, got 4"),
    ({"bits": 1025}, ValueError, "bits must be in 8..1024, got 1025"),
    ({"levels_per_stage": 0}, ValueError, "levels_per_stage must be in 1..10, got 0"),
    ({"levels_per_stage": 11}, ValueError, "levels_per_stage must be in 1..10, got 11"),
    ({"bits": "64"}, TypeError, "bits must be an integer"),
    ({"bogus": 1}, TypeError, "unexpected keyword argument 'bogus'"),
])
def test_bad_parameters_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        SearchTree(**kwargs)


def test_config_object_or_keywords_but_not_both():
    config = SearchTreeConfig(bits=16)
    dut = SearchTree(config)
    assert dut.config is config
    Fragment.get(dut, None)
    with pytest.raises(TypeError, match="either a SearchTreeConfig or keyword parameters"):
        SearchTree(config, bits=32)
    with pytest.raises(TypeError, match="config must be a SearchTreeConfig"):
        SearchTree({"bits": 16})
