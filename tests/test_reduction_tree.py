"""Reduction tree: latency formula, exact sums (Amaranth sim and Verilator), parameter checks."""

import math

import numpy as np
import pytest

from golden.reduction_tree import ReductionTreeConfig, reduction_tree, reduction_tree_reference
from hw.pipeline import StreamPipeline
from hw.reduction_tree import ReductionTree
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


def tree_inputs(config, rng, n_vectors):
    """Random vectors, plus all-max and all-min vectors (the overflow corners)."""
    lo, hi = (-(1 << (config.width - 1)), (1 << (config.width - 1)) - 1) if config.signed \
        else (0, (1 << config.width) - 1)
    values = rng.integers(lo, hi + 1, (n_vectors, config.n), dtype=np.int64)
    values[:4] = [[hi] * config.n, [lo] * config.n, [hi] * config.n, [lo] * config.n]
    return values


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 16, 33, 100, 256, 1024])
@pytest.mark.parametrize("levels_per_stage", [1, 2, 3, 16])
def test_latency_follows_from_parameters(n, levels_per_stage):
    tree = StreamPipeline(ReductionTree(n=n, width=8, levels_per_stage=levels_per_stage))
    levels = math.ceil(math.log2(n)) if n > 1 else 0
    assert tree.config.levels == levels
    assert tree.latency == max(1, math.ceil(levels / levels_per_stage))  # output registered
    result = simulate_stream(tree, {"value": np.ones((1, n), dtype=np.int64)}, {"value": [n]})
    assert result.out_cycles[0] - result.in_cycles[0] == tree.latency


@pytest.mark.parametrize("n,width,signed", [(1, 8, True), (3, 8, True), (5, 4, False),
                                            (100, 16, True)])
def test_output_width_is_exact(n, width, signed):
    config = ReductionTreeConfig(n=n, width=width, signed=signed)
    lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
    out_lo = -(1 << (config.output_width - 1)) if signed else 0
    out_hi = (1 << (config.output_width - (1 if signed else 0))) - 1
    assert out_lo <= n * lo and n * hi <= out_hi
    assert config.output_width <= width + math.ceil(math.log2(n)) if n > 1 else True


@pytest.mark.parametrize("n,width,signed,levels_per_stage", [
    (1, 8, True, 1), (2, 8, False, 1), (3, 5, True, 1), (7, 12, True, 2), (13, 16, False, 3),
    (64, 8, True, 4),
])
def test_amaranth_sim_sums_exactly_under_stalls(n, width, signed, levels_per_stage, rng):
    config = ReductionTreeConfig(n=n, width=width, signed=signed,
                                 levels_per_stage=levels_per_stage)
    values = tree_inputs(config, rng, 300)
    dut = StreamPipeline(ReductionTree(config))
    expected = reduction_tree(config, values)
    assert np.array_equal(expected, reduction_tree_reference(values))  # exact in float64 too
    simulate_stream(dut, {"value": values}, {"value": expected}, valid_prob=0.6,
                    ready_prob=0.5, seed=n)
    result = simulate_stream(StreamPipeline(ReductionTree(config)), {"value": values},
                             {"value": expected})
    assert {o - i for i, o in zip(result.in_cycles, result.out_cycles)} == {dut.latency}


@pytest.mark.parametrize("n,width,signed,levels_per_stage", [
    (1, 16, True, 1), (13, 16, True, 2), (64, 8, False, 1),
])
def test_verilator_sums_exactly(n, width, signed, levels_per_stage, rng, measure):
    config = ReductionTreeConfig(n=n, width=width, signed=signed,
                                 levels_per_stage=levels_per_stage)
    values = tree_inputs(config, rng, 2000)
    expected = reduction_tree(config, values)
    dut = StreamPipeline(ReductionTree(config))
    stalled = run_stream_test(dut, "reduction_tree", {"value": values}, {"value": expected},
                              valid_prob=0.7, ready_prob=0.5, seed=n)
    assert len(stalled.out_words) == len(values)
    free = run_stream_test(dut, "reduction_tree", {"value": values}, {"value": expected},
                           seed=n)
    latencies = {o - i for i, o in zip(free.in_cycles, free.out_cycles)}
    interval = (free.in_cycles[-1] - free.in_cycles[0]) / (len(values) - 1)
    measure(f"tree n={n} lps={levels_per_stage}: latency {sorted(latencies)}, II {interval:.3f}")
    assert latencies == {dut.latency}
    assert interval == 1.0


@pytest.mark.parametrize("kwargs,message", [
    ({"n": 0}, "n must be in 1..1024, got 0"),
    ({"n": 1025}, "n must be in 1..1024, got 1025"),
    ({"width": 1}, "width must be in 2..64, got 1"),
    ({"levels_per_stage": 0}, "levels_per_stage must be in 1..16, got 0"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ReductionTree(**kwargs)


def test_golden_rejects_wrong_shapes_and_values():
    config = ReductionTreeConfig(n=4, width=4)
    with pytest.raises(ValueError, match="last axis of length n=4"):
        reduction_tree(config, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="values must be in -8..7"):
        reduction_tree(config, np.full((1, 4), 8))
