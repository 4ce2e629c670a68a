"""golden.sparse.encoding: round trips, queries against plain Python, storage accounting and
the rejection of every malformed block."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.sparse.encoding import (
    BitmapBlock,
    CoordinateBlock,
    SparseFormatConfig,
    bitmap_bits,
    choose_format,
    coordinate_bits,
    crossover_nnz,
    decode,
    density,
    encode,
    encode_block,
    encoding_storage_bits,
    lookup,
    lookup_global,
    rank,
    select,
    sparse_dense_dot,
    storage_bits,
    validate_block,
)

ROOT = Path(__file__).resolve().parent.parent

# (encode fmt, hybrid rule): every way of encoding a tensor.
WAYS = [("bitmap", "size"), ("coordinate", "size"), ("hybrid", "size"), ("hybrid", "density")]


def sparse_tensor(rng, shape, dens, config):
    """A tensor with exactly round(dens * size) nonzeros at random positions, values random
    over the nonzero value range (extremes included)."""
    size = int(np.prod(shape))
    lo, hi = config.value_range
    nnz = round(dens * size)
    values = rng.integers(lo, hi, nnz, endpoint=True)
    values[values == 0] = hi
    if nnz >= 2:
        values[:2] = (lo or 1, hi)  # the range's extremes are always exercised
    flat = np.zeros(size, dtype=np.int64)
    flat[rng.choice(size, nnz, replace=False)] = values
    return flat.reshape(shape)


def blocks_of(config, tensor):
    b = config.block
    flat = np.asarray(tensor).reshape(-1)
    padded = np.concatenate([flat, np.zeros(-flat.size % b, dtype=np.int64)])
    return padded.reshape(-1, b)


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("block,coord,count", [(8, 3, 4), (24, 5, 5), (64, 6, 7), (100, 7, 7),
                                               (128, 7, 8), (1024, 10, 11)])
def test_derived_widths(block, coord, count):
    config = SparseFormatConfig(block=block)
    assert (config.coord_width, config.count_width) == (coord, count)
    assert config.block - 1 < 2 ** coord and config.block < 2 ** count
    assert config.block - 1 >= 2 ** (coord - 1) or coord == 1


def test_defaults():
    config = SparseFormatConfig()
    assert config.to_dict() == {"block": 64, "value_width": 16, "signed": True, "rule": "size",
                                "density_threshold": 0.25}
    assert config.value_range == (-32768, 32767)
    assert SparseFormatConfig(value_width=8, signed=False).value_range == (0, 255)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"block": 7}, ValueError, "block must be in 8..1024, got 7"),
    ({"block": 1025}, ValueError, "block must be in 8..1024, got 1025"),
    ({"block": 64.0}, TypeError, "block must be an integer"),
    ({"value_width": 1}, ValueError, "value_width must be in 2..32, got 1"),
    ({"value_width": 33}, ValueError, "value_width must be in 2..32, got 33"),
    ({"signed": 1}, TypeError, "signed must be a bool"),
    ({"rule": "bits"}, ValueError, "rule must be one of size, density, got 'bits'"),
    ({"density_threshold": 1.5}, ValueError, r"density_threshold must be in 0.0..1.0, got 1.5"),
    ({"density_threshold": -0.1}, ValueError, r"density_threshold must be in 0.0..1.0"),
    ({"density_threshold": float("nan")}, ValueError, r"density_threshold must be in 0.0..1.0"),
    ({"density_threshold": "high"}, TypeError, "density_threshold must be a number"),
])
def test_bad_parameters_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        SparseFormatConfig(**kwargs)


# --- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt,rule", WAYS)
@pytest.mark.parametrize("block", [64, 24, 100])
@pytest.mark.parametrize("dens", [0, 0.01, 0.1, 0.5, 1.0])
def test_round_trip(rng, fmt, rule, block, dens):
    config = SparseFormatConfig(block=block, rule=rule)
    for shape in [(1,), (block,), (1000,), (5, 6, 7), (16, 16, 16), (0,), (2, 0, 3)]:
        tensor = sparse_tensor(rng, shape, dens, config)
        blocks = encode(config, tensor, fmt)
        assert len(blocks) == -(-tensor.size // block)
        decoded = decode(config, blocks, shape)
        assert decoded.dtype == np.int64 and decoded.shape == shape
        np.testing.assert_array_equal(decoded, tensor)
        for row, blk in zip(blocks_of(config, tensor), blocks):
            validate_block(config, blk)
            nnz = int(np.count_nonzero(row))
            expected = fmt if fmt != "hybrid" else choose_format(config, nnz)
            assert blk.format == expected and blk.nnz == nnz
            assert blk.values.dtype == np.int64
            assert blk == encode_block(config, row, fmt)


@pytest.mark.parametrize("value_width,signed", [(2, True), (2, False), (32, True), (32, False),
                                                (7, False)])
def test_round_trip_at_the_value_range_extremes(rng, value_width, signed):
    config = SparseFormatConfig(block=24, value_width=value_width, signed=signed)
    tensor = sparse_tensor(rng, (3, 4, 11), 0.6, config)
    lo, hi = config.value_range
    tensor.reshape(-1)[:2] = [lo or 1, hi]
    for fmt in ("bitmap", "coordinate", "hybrid"):
        np.testing.assert_array_equal(decode(config, encode(config, tensor, fmt), tensor.shape),
                                      tensor)


@settings(max_examples=150, deadline=None)
@given(st.data(), st.sampled_from([8, 12, 24, 64, 100]), st.integers(0, 300),
       st.sampled_from(WAYS), st.floats(0.0, 1.0))
def test_round_trip_any_tensor(data, block, length, way, threshold):
    fmt, rule = way
    config = SparseFormatConfig(block=block, value_width=5, rule=rule,
                                density_threshold=threshold)
    # Mostly zeros, with runs of dense stretches, so every block density shows up.
    element = st.one_of(st.just(0), st.just(0), st.integers(-16, 15))
    tensor = np.array(data.draw(st.lists(element, min_size=length, max_size=length)),
                      dtype=np.int64)
    blocks = encode(config, tensor, fmt)
    np.testing.assert_array_equal(decode(config, blocks, tensor.shape), tensor)
    for index in range(len(blocks) * block):
        assert lookup_global(config, blocks, index) == (tensor[index] if index < length else 0)


def test_empty_and_full_blocks():
    config = SparseFormatConfig()  # B = 64, 16-bit values
    tensor = np.zeros(64 * 3, dtype=np.int64)
    tensor[64:128] = np.arange(1, 65)  # block 1 full
    tensor[[130, 131, 190]] = [-5, 7, 32767]  # block 2: three nonzeros
    blocks = encode(config, tensor)
    assert [b.format for b in blocks] == ["coordinate", "bitmap", "coordinate"]
    assert blocks[0] == CoordinateBlock(coords=[], values=[])
    assert blocks[1] == BitmapBlock(bitmap=np.ones(64, bool), values=np.arange(1, 65))
    assert blocks[2] == CoordinateBlock(coords=[2, 3, 62], values=[-5, 7, 32767])
    empty_bitmap = encode_block(config, np.zeros(64, np.int64), "bitmap")
    assert empty_bitmap.nnz == 0 and not empty_bitmap.bitmap.any()
    full_coordinate = encode_block(config, tensor[64:128], "coordinate")
    np.testing.assert_array_equal(full_coordinate.coords, np.arange(64))
    for blk in (empty_bitmap, full_coordinate, *blocks):
        validate_block(config, blk)
    np.testing.assert_array_equal(decode(config, blocks, (3, 8, 8)), tensor.reshape(3, 8, 8))


def test_blocks_are_immutable_and_compare_by_value():
    blk = CoordinateBlock(coords=np.array([1, 5], np.int32), values=[3, -4])
    assert blk.coords.dtype == np.int64  # lossless conversion of integer dtypes
    with pytest.raises(ValueError, match="read-only"):
        blk.values[0] = 9
    with pytest.raises(AttributeError):
        blk.values = np.array([1, 2])
    source = np.array([True, False] * 4)
    bm = BitmapBlock(bitmap=source, values=[1, 2, 3, 4])
    source[1] = True  # the block holds its own copy
    assert bm.bitmap.sum() == 4
    assert bm == BitmapBlock(bitmap=[True, False] * 4, values=[1, 2, 3, 4])
    assert bm != BitmapBlock(bitmap=[True, False] * 4, values=[1, 2, 3, 5])
    assert blk != bm


# --- queries against plain Python ------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(8, 130))
def test_rank_select_lookup_match_python(data, block):
    bits = data.draw(st.lists(st.booleans(), min_size=block, max_size=block))
    config = SparseFormatConfig(block=block, value_width=8)
    values = [data.draw(st.integers(-128, 127).filter(bool)) for _ in range(sum(bits))]
    dense = [0] * block
    for pos, v in zip([i for i, bit in enumerate(bits) if bit], values):
        dense[pos] = v
    bitmap = np.array(bits, dtype=bool)
    set_positions = [i for i, bit in enumerate(bits) if bit]
    for i in range(block + 1):
        assert rank(bitmap, i) == sum(bits[:i])
    for k, pos in enumerate(set_positions):
        assert select(bitmap, k) == pos
        assert rank(bitmap, select(bitmap, k)) == k
    blocks = [encode_block(config, np.array(dense), fmt) for fmt in ("bitmap", "coordinate")]
    assert blocks[0] == BitmapBlock(bitmap=bitmap, values=values)
    for blk in blocks:
        for i in range(block):
            assert lookup(config, blk, i) == dense[i]


def test_rank_select_small_example():
    bitmap = np.array([0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    assert [rank(bitmap, i) for i in range(9)] == [0, 0, 1, 2, 2, 2, 2, 2, 3]
    assert [select(bitmap, k) for k in range(3)] == [1, 2, 7]


@pytest.mark.parametrize("call,message", [
    (lambda bm: rank(bm, -1), r"i must be in 0..8 .* got -1"),
    (lambda bm: rank(bm, 9), r"i must be in 0..8 .* got 9"),
    (lambda bm: select(bm, 2), r"k must be >= 0 and below the number of set bits \(2\), got 2"),
    (lambda bm: select(bm, -1), r"k must be >= 0 .* got -1"),
    (lambda bm: select(np.zeros(8, bool), 0), r"number of set bits \(0\), got 0"),
    (lambda bm: rank(bm.astype(int), 3), "bitmap must be a 1-D array of bool"),
])
def test_rank_select_reject_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.array([1, 0, 0, 1, 0, 0, 0, 0], dtype=bool))


def test_lookup_rejects_positions_outside_the_block():
    config = SparseFormatConfig(block=24)
    blocks = encode(config, np.arange(30))
    for blk in (blocks[0], encode_block(config, np.arange(24), "coordinate")):
        for i in (-1, 24):
            with pytest.raises(ValueError, match=rf"i must be a local position in 0..23, got {i}"):
                lookup(config, blk, i)
    assert lookup_global(config, blocks, 29) == 29 and lookup_global(config, blocks, 47) == 0
    for index in (-1, 48):
        with pytest.raises(ValueError, match=rf"index must be in 0..47 .* got {index}"):
            lookup_global(config, blocks, index)


# --- storage accounting ----------------------------------------------------------------------

def test_storage_by_hand():
    config = SparseFormatConfig()  # B 64, coord 6 bits, count 7 bits, values 16 bits
    dense = np.zeros(64, np.int64)
    dense[[0, 10, 63]] = [1, -2, 3]
    assert storage_bits(config, encode_block(config, dense, "bitmap")) == 64 + 3 * 16 == 112
    assert storage_bits(config, encode_block(config, dense, "coordinate")) == 7 + 3 * 22 == 73
    assert (bitmap_bits(config, 0), coordinate_bits(config, 0)) == (64, 7)
    assert (bitmap_bits(config, 64), coordinate_bits(config, 64)) == (1088, 7 + 64 * 22)
    # Two blocks, one sparse and one full: hybrid picks 73 + 1088 and adds 2 tag bits.
    tensor = np.concatenate([dense, np.arange(1, 65)])
    assert encoding_storage_bits(config, encode(config, tensor), hybrid=True) == 73 + 1088 + 2
    assert encoding_storage_bits(config, encode(config, tensor, "bitmap"), False) == 112 + 1088
    assert encoding_storage_bits(config, encode(config, tensor, "coordinate"), False) == \
        73 + 7 + 64 * 22
    assert encoding_storage_bits(config, [], hybrid=True) == 0

    small = SparseFormatConfig(block=24, value_width=8)  # coord 5 bits, count 5 bits
    row = np.zeros(24, np.int64)
    row[[4, 5]] = [9, 9]
    assert storage_bits(small, encode_block(small, row, "bitmap")) == 24 + 2 * 8 == 40
    assert storage_bits(small, encode_block(small, row, "coordinate")) == 5 + 2 * 13 == 31


def test_single_format_encodings_cannot_mix_formats():
    config = SparseFormatConfig()
    blocks = encode(config, np.concatenate([np.zeros(64, np.int64), np.ones(64, np.int64)]))
    assert {b.format for b in blocks} == {"bitmap", "coordinate"}
    with pytest.raises(ValueError, match="cannot mix bitmap and coordinate blocks"):
        encoding_storage_bits(config, blocks, hybrid=False)
    with pytest.raises(TypeError, match="hybrid must be a bool"):
        encoding_storage_bits(config, blocks, hybrid=1)


@pytest.mark.parametrize("block", [8, 12, 24, 64, 100, 1024])
@pytest.mark.parametrize("value_width", [2, 16, 32])
def test_size_rule_picks_the_smaller_block_ties_to_bitmap(block, value_width):
    config = SparseFormatConfig(block=block, value_width=value_width)
    cross = crossover_nnz(config)
    for nnz in range(block + 1):
        bm, co = bitmap_bits(config, nnz), coordinate_bits(config, nnz)
        assert choose_format(config, nnz) == ("bitmap" if bm <= co else "coordinate")
        assert (nnz >= cross) == (bm <= co)  # one crossover, independent of value_width
    assert crossover_nnz(SparseFormatConfig()) == 10  # B 64: 7 + 6 n < 64 for n <= 9
    tie = SparseFormatConfig(block=12)  # 12 + 2w == 4 + 2 (4 + w)
    assert bitmap_bits(tie, 2) == coordinate_bits(tie, 2) and choose_format(tie, 2) == "bitmap"


def test_density_rule_uses_a_strict_threshold():
    config = SparseFormatConfig(rule="density")  # threshold 0.25 of 64 = 16
    assert choose_format(config, 16) == "coordinate" and choose_format(config, 17) == "bitmap"
    zero = SparseFormatConfig(rule="density", density_threshold=0.0)
    assert choose_format(zero, 0) == "coordinate" and choose_format(zero, 1) == "bitmap"
    one = SparseFormatConfig(rule="density", density_threshold=1.0)
    assert all(choose_format(one, n) == "coordinate" for n in range(65))
    for nnz in (-1, 65):
        with pytest.raises(ValueError, match=rf"nnz must be in 0..64 .*, got {nnz}"):
            choose_format(config, nnz)


@settings(max_examples=100, deadline=None)
@given(st.data(), st.sampled_from([8, 24, 64, 100]), st.integers(2, 32), st.integers(0, 400))
def test_hybrid_size_rule_is_never_larger_than_a_single_format_plus_tags(data, block,
                                                                         value_width, length):
    config = SparseFormatConfig(block=block, value_width=value_width)
    p = data.draw(st.floats(0.0, 1.0))
    keep = np.array(data.draw(st.lists(st.floats(0, 1), min_size=length, max_size=length)))
    tensor = (keep < p).astype(np.int64).reshape(-1)  # density about p
    hybrid = encoding_storage_bits(config, encode(config, tensor), hybrid=True)
    single = [encoding_storage_bits(config, encode(config, tensor, fmt), hybrid=False)
              for fmt in ("bitmap", "coordinate")]
    n_blocks = -(-length // block)
    assert hybrid <= min(single) + n_blocks
    # Block by block, hybrid is exactly the smaller format plus its tag.
    per_block = sum(min(bitmap_bits(config, int(r.sum())), coordinate_bits(config, int(r.sum())))
                    for r in blocks_of(config, tensor))
    assert hybrid == per_block + n_blocks


# --- sparse x dense --------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["bitmap", "coordinate", "hybrid"])
@pytest.mark.parametrize("dens", [0, 0.01, 0.1, 0.5, 1.0])
def test_sparse_dense_dot_equals_numpy(rng, fmt, dens):
    config = SparseFormatConfig(block=100, value_width=12)
    tensor = sparse_tensor(rng, (7, 11, 13), dens, config)
    blocks = encode(config, tensor, fmt)
    dense = rng.integers(-(1 << 20), 1 << 20, tensor.size)
    got = sparse_dense_dot(config, blocks, dense)
    assert isinstance(got, int)
    assert got == int(np.dot(decode(config, blocks, tensor.shape).reshape(-1), dense))
    assert sparse_dense_dot(config, blocks, dense.astype(np.int32)) == got


def test_sparse_dense_dot_is_exact_beyond_int64(rng):
    config = SparseFormatConfig(block=64, value_width=32)
    tensor = np.full(500, config.value_range[0], dtype=np.int64)
    tensor[::3] = config.value_range[1]
    dense = np.full(500, np.iinfo(np.int64).max, dtype=np.int64)
    dense[1::2] = np.iinfo(np.int64).min
    expected = sum(int(a) * int(b) for a, b in zip(tensor, dense))
    assert abs(expected) > 2 ** 63
    for fmt in ("bitmap", "coordinate"):
        assert sparse_dense_dot(config, encode(config, tensor, fmt), dense) == expected
    big = np.full(500, 2 ** 64 - 1, dtype=np.uint64)
    assert sparse_dense_dot(config, encode(config, tensor), big) == \
        sum(int(a) * (2 ** 64 - 1) for a in tensor)


def test_sparse_dense_dot_rejects_bad_vectors():
    config = SparseFormatConfig(block=24)
    blocks = encode(config, np.arange(30))
    with pytest.raises(ValueError, match=r"dense \(49 elements\) needs 3 blocks of 24, got 2"):
        sparse_dense_dot(config, blocks, np.ones(49, int))
    with pytest.raises(ValueError, match="nonzero at padding position 29, beyond the 29"):
        sparse_dense_dot(config, blocks, np.ones(29, int))
    with pytest.raises(ValueError, match="dense must be a 1-D vector"):
        sparse_dense_dot(config, blocks, np.ones((6, 5), int))
    with pytest.raises(TypeError, match="dense must hold integers"):
        sparse_dense_dot(config, blocks, np.ones(30))


# --- malformed input -------------------------------------------------------------------------

C64 = SparseFormatConfig()
BITS = np.zeros(64, bool)
BITS[[3, 9]] = True

MALFORMED = [
    (CoordinateBlock(coords=[5, 3], values=[1, 2]),
     r"coordinates out of order: coords\[1\] = 3 follows coords\[0\] = 5"),
    (CoordinateBlock(coords=[1, 4, 4], values=[1, 2, 3]),
     r"duplicated coordinate: coords\[1\] and coords\[2\] are both 4"),
    (CoordinateBlock(coords=[1, 64], values=[1, 2]),
     r"coordinate coords\[1\] = 64 is outside the block's local positions 0..63"),
    (CoordinateBlock(coords=[-1], values=[1]),
     r"coordinate coords\[0\] = -1 is outside the block's local positions 0..63"),
    (CoordinateBlock(coords=[1, 2], values=[7]),
     "values and coords length mismatch: 1 values for 2 coordinates"),
    (CoordinateBlock(coords=[1, 2], values=[7, 0]),
     r"a zero stored as a nonzero value: values\[1\] is 0"),
    (CoordinateBlock(coords=[1], values=[32768]),
     r"values\[0\] = 32768 is outside the value range -32768..32767 \(16-bit signed\)"),
    (CoordinateBlock(coords=[1], values=[-32769]),
     r"values\[0\] = -32769 is outside the value range"),
    (CoordinateBlock(coords=[1.0], values=[2]), "coords must hold integers, got dtype float64"),
    (CoordinateBlock(coords=[[1]], values=[2]), r"coords must be a 1-D array, got shape \(1, 1\)"),
    (CoordinateBlock(coords=np.array([2 ** 64 - 1], np.uint64), values=[2]),
     r"coordinate coords\[0\] = 18446744073709551615 is outside"),
    (BitmapBlock(bitmap=np.zeros(63, bool), values=[]),
     r"bitmap of wrong length: a block of 64 elements needs a bitmap of shape \(64,\), got "
     r"shape \(63,\)"),
    (BitmapBlock(bitmap=np.zeros((8, 8), bool), values=[]), "bitmap of wrong length"),
    (BitmapBlock(bitmap=BITS.astype(int), values=[1, 2]),
     "bitmap must be an array of bool, got dtype int64"),
    (BitmapBlock(bitmap=BITS, values=[1, 2, 3]),
     "counts that do not match the bitmap: 2 bits are set but 3 values are stored"),
    (BitmapBlock(bitmap=BITS, values=[1]), "counts that do not match the bitmap"),
    (BitmapBlock(bitmap=BITS, values=[0, 5]), r"a zero stored as a nonzero value: values\[0\]"),
    (BitmapBlock(bitmap=BITS, values=[5, 40000]), r"values\[1\] = 40000 is outside"),
    (BitmapBlock(bitmap=BITS, values=[5.0, 4.0]), "values must hold integers"),
]


@pytest.mark.parametrize("block,message", MALFORMED, ids=[
    f"{type(b).__name__}-{i}" for i, (b, _) in enumerate(MALFORMED)])
def test_malformed_blocks_are_rejected_by_every_entry_point(block, message):
    with pytest.raises(ValueError, match=message):
        validate_block(C64, block)
    with pytest.raises(ValueError, match="block 1: " + message):
        decode(C64, [CoordinateBlock(coords=[], values=[]), block], (100,))
    with pytest.raises(ValueError, match=message):
        lookup(C64, block, 0)
    with pytest.raises(ValueError, match="block 0: " + message):
        lookup_global(C64, [block], 3)
    with pytest.raises(ValueError, match=message):
        storage_bits(C64, block)
    with pytest.raises(ValueError, match="block 0: " + message):
        encoding_storage_bits(C64, [block], hybrid=True)
    with pytest.raises(ValueError, match="block 0: " + message):
        sparse_dense_dot(C64, [block], np.ones(64, int))


def test_value_range_depends_on_the_config():
    unsigned = SparseFormatConfig(value_width=4, signed=False)
    with pytest.raises(ValueError, match=r"values\[0\] = -1 is outside the value range 0..15 "
                                         r"\(4-bit unsigned\)"):
        validate_block(unsigned, CoordinateBlock(coords=[0], values=[-1]))
    validate_block(unsigned, CoordinateBlock(coords=[0], values=[15]))
    small = SparseFormatConfig(block=8)
    with pytest.raises(ValueError, match="coords\\[0\\] = 8 is outside .* 0..7"):
        validate_block(small, CoordinateBlock(coords=[8], values=[1]))
    with pytest.raises(ValueError, match="bitmap of wrong length"):
        validate_block(small, BitmapBlock(bitmap=BITS, values=[1, 2]))


def test_non_blocks_and_configs_are_type_errors():
    with pytest.raises(TypeError, match="block must be a BitmapBlock or a CoordinateBlock, got "
                                        "dict"):
        validate_block(C64, {"coords": [], "values": []})
    with pytest.raises(TypeError, match="config must be a SparseFormatConfig"):
        validate_block({"block": 64}, CoordinateBlock(coords=[], values=[]))


def test_decode_rejects_wrong_block_counts_and_padding():
    config = SparseFormatConfig(block=24)
    blocks = encode(config, np.arange(1, 31))  # 30 elements: 2 blocks, 18 padding zeros
    with pytest.raises(ValueError, match=r"shape \(60,\) \(60 elements\) needs 3 blocks of 24, "
                                         r"got 2"):
        decode(config, blocks, 60)
    with pytest.raises(ValueError, match=r"nonzero at padding position 29, beyond the 29 "
                                         r"elements of shape \(29,\)"):
        decode(config, blocks, (29,))
    with pytest.raises(ValueError, match="shape must be non-negative integers"):
        decode(config, blocks, (-30,))
    np.testing.assert_array_equal(decode(config, blocks, (2, 3, 5)),
                                  np.arange(1, 31).reshape(2, 3, 5))
    np.testing.assert_array_equal(decode(config, blocks, 48)[30:], 0)  # padding may be kept


@pytest.mark.parametrize("call,error,message", [
    (lambda c: encode(c, np.ones((4, 4), int)), ValueError, "tensor must be 1-D or 3-D"),
    (lambda c: encode(c, np.int64(3)), ValueError, "tensor must be 1-D or 3-D"),
    (lambda c: encode(c, np.ones(10)), TypeError, "tensor must hold integers, got dtype float"),
    (lambda c: encode(c, np.ones(10, bool)), TypeError, "tensor must hold integers"),
    (lambda c: encode(c, np.array([0, 0, 1 << 15])), ValueError,
     "tensor value 32768 at flat index 2 is outside the value range -32768..32767"),
    (lambda c: encode(c, np.array([2 ** 64 - 1], np.uint64)), ValueError,
     "tensor value 18446744073709551615 at flat index 0 is outside"),
    (lambda c: encode(c, np.ones(10, int), "csr"), ValueError,
     "fmt must be one of bitmap, coordinate, hybrid, got 'csr'"),
    (lambda c: encode_block(c, np.ones(63, int), "bitmap"), ValueError,
     r"dense_block must have shape \(64,\) \(one block\), got shape \(63,\)"),
    (lambda c: encode_block(c, np.ones(64, int), "dense"), ValueError, "fmt must be one of"),
    (lambda c: density([]), ValueError, "density of an empty tensor is undefined"),
])
def test_bad_tensors_are_rejected(call, error, message):
    with pytest.raises(error, match=message):
        call(C64)


def test_density():
    assert density(np.array([0, 3, 0, -1])) == 0.5
    assert density(np.zeros((2, 3, 4), int)) == 0.0 and density(np.ones(5, int)) == 1.0


def test_golden_encoding_never_imports_the_hardware():
    code = ("import sys, golden.sparse.encoding; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('hw', 'amaranth', 'sim')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
