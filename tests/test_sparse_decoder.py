"""Hybrid decoder front-end: lookups through either unit equal the dense tensor; defined errors."""

import numpy as np
import pytest

from golden.sparse.encoding import BitmapBlock, CoordinateBlock, SparseFormatConfig, encode
from golden.sparse.sparse_decoder import (
    SparseDecoderConfig,
    concat,
    load_words,
    query_words,
    sparse_decoder,
)
from hw.sparse.sparse_decoder import SparseDecoder
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test

DENSITIES = (0.0, 0.01, 0.1, 0.5, 1.0)


def hybrid_stream(config, rng, tensor, rule="size", positions=None):
    """Load each block of the hybrid encoding of ``tensor`` and query it; return the words and
    the dense values the answers must equal."""
    fmt = SparseFormatConfig(block=config.block, value_width=config.value_width, rule=rule)
    flat = tensor.reshape(-1)
    parts, truth = [], []
    for k, block in enumerate(encode(fmt, tensor, "hybrid")):
        dense = np.zeros(config.block, dtype=np.int64)
        chunk = flat[k * config.block:(k + 1) * config.block]
        dense[:len(chunk)] = chunk
        asked = rng.permutation(config.block) if positions is None else positions
        parts += [load_words(config, block), query_words(config, asked)]
        truth.append(dense[asked])
    return concat(*parts), np.concatenate(truth)


def random_tensor(config, rng, shape, density):
    lo, hi = -(1 << (config.value_width - 1)), (1 << (config.value_width - 1)) - 1
    values = rng.integers(lo, hi + 1, shape)
    values[values == 0] = 1
    return np.where(rng.random(shape) < density, values, 0)


@pytest.mark.parametrize("rule", ["size", "density"])
@pytest.mark.parametrize("density", DENSITIES)
def test_golden_lookups_equal_the_dense_tensor(rule, density, rng):
    config = SparseDecoderConfig(block=24, parallel=4)
    tensor = random_tensor(config, rng, (3, 4, 10), density)  # 3-D, padded to 5 blocks
    words, truth = hybrid_stream(config, rng, tensor, rule)
    out = sparse_decoder(config, words)
    assert not out["error"].any()
    assert np.array_equal(out["value"], truth)
    assert np.array_equal(out["hit"], (truth != 0).astype(np.int64))


def malformed_words(config):
    """Blocks the units must flag: out-of-range positions, an incomplete or overfull bitmap
    block, coordinates out of order; each followed by a good block to show recovery."""
    b = config.block
    bitmap = np.zeros(b, dtype=bool)
    bitmap[[1, 5]] = True
    good = BitmapBlock(bitmap=bitmap, values=np.array([7, -3]))
    short = load_words(config, good)
    short = {f: v[:-1] for f, v in short.items()}  # one value missing
    short["last"][-1] = 1
    extra = load_words(config, good)
    extra = {f: np.concatenate([v, v[-1:]]) for f, v in extra.items()}  # one value too many
    unordered = load_words(config, CoordinateBlock(coords=np.array([2, 5]),
                                                   values=np.array([4, 5])))
    unordered["coord"][:] = [5, 2]
    everywhere = np.arange(b + 1)  # includes the out-of-range position b
    return concat(load_words(config, good), query_words(config, everywhere),
                  short, query_words(config, [1, 5]),
                  extra, query_words(config, [1]),
                  unordered, query_words(config, [2, 5, 3]),
                  load_words(config, CoordinateBlock(coords=np.array([0, b - 1]),
                                                     values=np.array([1, 2]))),
                  query_words(config, [0, b - 1, b, 3]))


def test_golden_defined_errors():
    config = SparseDecoderConfig(block=16, parallel=2)
    out = sparse_decoder(config, malformed_words(config))
    errors = out["error"].tolist()
    assert errors[:17] == [0] * 16 + [1]          # good block; position 16 is out of range
    assert errors[17:20] == [1, 1, 1]             # incomplete, then overfull bitmap block
    assert errors[20:23] == [1, 1, 1]             # coordinates out of order
    assert errors[23:] == [0, 0, 1, 0]            # a good coordinate block recovers
    assert out["value"][23:].tolist() == [1, 2, 0, 0]
    assert not np.any(out["hit"][out["error"] == 1])


@pytest.mark.parametrize("block,parallel", [(24, 4), (8, 1)])
def test_amaranth_sim_bit_exact_with_stalls(block, parallel, rng):
    config = SparseDecoderConfig(block=block, parallel=parallel)
    parts = []
    for density in DENSITIES:
        words, _ = hybrid_stream(config, rng, random_tensor(config, rng, (block,), density))
        parts.append(words)
    words = concat(*parts, malformed_words(config))
    simulate_stream(SparseDecoder(config), words, sparse_decoder(config, words),
                    valid_prob=0.6, ready_prob=0.5, seed=block)


def test_verilator_bit_exact_and_queries_per_cycle(rng, measure):
    config = SparseDecoderConfig()  # block 64, P = 8
    dut = SparseDecoder(config)
    tensor = np.concatenate([random_tensor(config, rng, (4 * 64,), d) for d in DENSITIES])
    words, truth = hybrid_stream(config, rng, tensor)
    words = concat(words, malformed_words(config))
    expected = sparse_decoder(config, words)
    assert np.array_equal(expected["value"][:len(truth)], truth)
    run_stream_test(dut, "sparse_decoder", words, expected, valid_prob=0.7, ready_prob=0.6,
                    seed=3)
    # Throughput without stalls, per format: many queries against one block of each kind.
    fmt = SparseFormatConfig(block=64, value_width=16)
    rates = {}
    for name, density in (("bitmap", 0.5), ("coordinate", 0.05)):
        block = encode(fmt, random_tensor(config, rng, (64,), density), "hybrid")[0]
        assert block.format == name
        asked = rng.integers(0, 64, 512)
        words = concat(load_words(config, block), query_words(config, asked))
        free = run_stream_test(dut, "sparse_decoder", words, sparse_decoder(config, words),
                               seed=4)
        rates[name] = len(asked) / (free.out_cycles[-1] - free.out_cycles[0] + 1)
    measure(f"decoder B=64 P=8: {rates['bitmap']:.3f} queries/cycle on bitmap blocks, "
            f"{rates['coordinate']:.3f} on coordinate blocks")
    assert rates["bitmap"] == 1.0


@pytest.mark.parametrize("kwargs,message", [
    ({"block": 4}, "block must be in 8..1024, got 4"),
    ({"parallel": 0}, "parallel must be in 1..64, got 0"),
    ({"value_width": 1}, "value_width must be in 2..32, got 1"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseDecoder(**kwargs)
