"""RT-NeRF's hybrid sparse encodings: bitmap and coordinate blocks, chosen block by block.

RT-NeRF stores a sparse voxel grid cut into blocks of ``B`` elements (the tensor flattened in
C order, zero-padded to a multiple of ``B``). Each block is stored in one of two formats:

bitmap (:class:`BitmapBlock`)
    one bit per element saying "nonzero", then the nonzero values in position order. Its size
    barely depends on the density beyond the values, so it suits dense blocks.
coordinate (:class:`CoordinateBlock`)
    the local coordinate (``0..B-1``) and value of each nonzero, in increasing coordinate
    order, preceded by their count. It costs nothing per zero, so it suits sparse blocks.

A hybrid encoding is a list of blocks of either format; the Python type of a block is its
format tag. This module is the golden model: encoding, decoding, validation of malformed
blocks, the storage cost in bits and the queries (rank, select, lookup, dot product) a
hardware decoder implements. Everything is exact integer arithmetic, so there is no separate
float reference beyond :func:`density`.

Storage accounting, in bits (:func:`storage_bits`, :func:`encoding_storage_bits`):

* bitmap block: ``B + nnz * value_width``. The number of values is the bitmap's popcount, so
  no count field is stored.
* coordinate block: ``count_width + nnz * (coord_width + value_width)``, where
  ``coord_width`` holds ``0..B-1`` and ``count_width`` holds ``0..B`` (unsigned).
* a hybrid encoding adds 1 tag bit per block; a single-format encoding has no tags (the
  format is fixed by the configuration).

Not counted, because they are the same for every format: the tensor shape, the configuration
and any per-block offset table a random-access memory layout would add.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..fixed_point import bits_for_range, int_array, int_range
from ..params import BlockConfig, param

__all__ = [
    "FORMATS",
    "RULES",
    "SparseFormatConfig",
    "BitmapBlock",
    "CoordinateBlock",
    "bitmap_bits",
    "coordinate_bits",
    "crossover_nnz",
    "choose_format",
    "storage_bits",
    "encoding_storage_bits",
    "validate_block",
    "encode_block",
    "encode",
    "decode",
    "rank",
    "select",
    "lookup",
    "lookup_global",
    "sparse_dense_dot",
    "density",
]

FORMATS = ("bitmap", "coordinate", "hybrid")
RULES = ("size", "density")

_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True, kw_only=True)
class SparseFormatConfig(BlockConfig):
    """Parameters of the block-sparse encodings.

    Parameters
    ----------
    block : int
        Elements per block ``B``, 8..1024 (any integer, not only powers of two).
    value_width : int
        Bits of each stored nonzero value, 2..32.
    signed : bool
        Values are two's complement (true) or unsigned (false).
    rule : str
        How a hybrid encoding picks a block's format. ``"size"``: the smaller of the two exact
        sizes, ties to bitmap (optimal storage). ``"density"``: bitmap if the block's density
        ``nnz / B`` is above ``density_threshold`` (RT-NeRF's criterion, a single comparator).
    density_threshold : float
        Density above which rule ``"density"`` uses bitmap, 0.0..1.0.
    """

    block: int = param(64, help="elements per block B", range=(8, 1024))
    value_width: int = param(16, help="bits of each stored nonzero value", range=(2, 32))
    signed: bool = param(True, help="two's complement (true) or unsigned (false) values")
    rule: str = param("size", help="how a hybrid encoding picks each block's format",
                      choices=RULES)
    density_threshold: float = param(0.25, help="rule density: blocks denser than this use "
                                     "bitmap", range=(0.0, 1.0))

    @property
    def coord_width(self) -> int:
        """Bits of a local coordinate ``0..B-1``."""
        return bits_for_range(0, self.block - 1, False)

    @property
    def count_width(self) -> int:
        """Bits of a coordinate block's entry count ``0..B`` (an empty or a full block)."""
        return bits_for_range(0, self.block, False)

    @property
    def value_range(self) -> tuple[int, int]:
        """Inclusive range of a stored value."""
        return int_range(self.value_width, self.signed)


def _frozen_ints(x) -> np.ndarray:
    """A read-only private copy of ``x``; integer arrays become int64 when that is lossless.

    Anything else is kept as it is, so :func:`validate_block` can name the problem rather
    than a silent conversion hiding it.
    """
    arr = np.array(x)
    if arr.size == 0 and arr.dtype.kind not in "iu":
        arr = arr.astype(np.int64)  # [] is float64 to NumPy; no element is misread
    elif arr.dtype.kind in "iu" and arr.dtype != np.int64 and \
            (arr.size == 0 or int(arr.max()) <= _INT64_MAX):
        arr = arr.astype(np.int64)
    arr.setflags(write=False)
    return arr


def _frozen(x) -> np.ndarray:
    arr = np.array(x)
    arr.setflags(write=False)
    return arr


class _Block:
    """Shared behaviour: array-valued equality and the entry count."""

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return all(np.array_equal(a, b) for a, b in zip(self._arrays(), other._arrays()))

    __hash__ = None  # holds arrays; equality is by value

    @property
    def nnz(self) -> int:
        """Number of stored nonzeros."""
        return int(self.values.size)


@dataclass(frozen=True, kw_only=True, eq=False)
class BitmapBlock(_Block):
    """A block stored as a bitmap plus the nonzero values in position order.

    Parameters
    ----------
    bitmap : numpy.ndarray of bool, shape (B,)
        ``bitmap[i]`` is set iff local position ``i`` holds a nonzero.
    values : numpy.ndarray of int64
        The nonzero values, in increasing position order (``values[rank(bitmap, i)]`` is the
        value at a set position ``i``).

    The arrays are copied and made read-only; :func:`validate_block` checks them against a
    configuration.
    """

    format: ClassVar[str] = "bitmap"
    bitmap: np.ndarray
    values: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "bitmap", _frozen(self.bitmap))
        object.__setattr__(self, "values", _frozen_ints(self.values))

    def _arrays(self):
        return self.bitmap, self.values


@dataclass(frozen=True, kw_only=True, eq=False)
class CoordinateBlock(_Block):
    """A block stored as the local coordinates and values of its nonzeros.

    Parameters
    ----------
    coords : numpy.ndarray of int64
        Strictly increasing local coordinates in ``0..B-1``.
    values : numpy.ndarray of int64
        ``values[k]`` is the (nonzero) value at ``coords[k]``.

    The arrays are copied and made read-only; :func:`validate_block` checks them against a
    configuration.
    """

    format: ClassVar[str] = "coordinate"
    coords: np.ndarray
    values: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "coords", _frozen_ints(self.coords))
        object.__setattr__(self, "values", _frozen_ints(self.values))

    def _arrays(self):
        return self.coords, self.values


# --- storage ---------------------------------------------------------------------------------

def _check_nnz(config: SparseFormatConfig, nnz: int) -> int:
    nnz = operator.index(nnz)
    if not 0 <= nnz <= config.block:
        raise ValueError(f"nnz must be in 0..{config.block} (the block size), got {nnz}")
    return nnz


def bitmap_bits(config: SparseFormatConfig, nnz: int) -> int:
    """Bits of a bitmap block holding ``nnz`` nonzeros: ``B + nnz * value_width``."""
    return config.block + _check_nnz(config, nnz) * config.value_width


def coordinate_bits(config: SparseFormatConfig, nnz: int) -> int:
    """Bits of a coordinate block holding ``nnz`` nonzeros.

    ``count_width + nnz * (coord_width + value_width)``.
    """
    nnz = _check_nnz(config, nnz)
    return config.count_width + nnz * (config.coord_width + config.value_width)


def crossover_nnz(config: SparseFormatConfig) -> int:
    """The fewest nonzeros at which a bitmap block is no larger than a coordinate block.

    Rule ``"size"`` stores blocks with fewer nonzeros as coordinates and the others as
    bitmaps. A full block always favours the bitmap (``B * coord_width > B - count_width``),
    so the crossover exists for every configuration.
    """
    # bitmap <= coordinate  <=>  B - count_width <= nnz * coord_width
    return max(0, -(-(config.block - config.count_width) // config.coord_width))


def choose_format(config: SparseFormatConfig, nnz: int) -> str:
    """The format (``"bitmap"`` or ``"coordinate"``) a hybrid encoding gives a block.

    Parameters
    ----------
    config : SparseFormatConfig
        Its ``rule`` (and ``density_threshold``) decide.
    nnz : int
        Nonzeros in the block, ``0..B``.
    """
    nnz = _check_nnz(config, nnz)
    if config.rule == "size":
        # Ties go to the bitmap: same storage, and its lookup needs no search.
        return "bitmap" if bitmap_bits(config, nnz) <= coordinate_bits(config, nnz) \
            else "coordinate"
    return "bitmap" if nnz / config.block > config.density_threshold else "coordinate"


def storage_bits(config: SparseFormatConfig, block: BitmapBlock | CoordinateBlock) -> int:
    """Bits of one block, without a hybrid tag bit (see the module docstring).

    The block is validated first (:func:`validate_block`).
    """
    validate_block(config, block)
    if isinstance(block, BitmapBlock):
        return bitmap_bits(config, block.nnz)
    return coordinate_bits(config, block.nnz)


def encoding_storage_bits(config: SparseFormatConfig, blocks: Iterable, hybrid: bool) -> int:
    """Total bits of an encoding: its blocks, plus 1 format tag bit per block if ``hybrid``.

    Parameters
    ----------
    config : SparseFormatConfig
    blocks : iterable of BitmapBlock or CoordinateBlock
    hybrid : bool
        Count the encoding as hybrid (tagged). A single-format encoding (``False``) must not
        mix formats, since nothing would say which block is which.
    """
    if not isinstance(hybrid, bool):
        raise TypeError(f"hybrid must be a bool, got {hybrid!r}")
    blocks = list(blocks)
    if not hybrid and len({type(b) for b in blocks}) > 1:
        raise ValueError("a single-format encoding (hybrid=False) cannot mix bitmap and "
                         "coordinate blocks; count it with hybrid=True")
    total = 0
    for k, block in enumerate(blocks):
        total += _at_block(k, storage_bits, config, block)
    return total + (len(blocks) if hybrid else 0)


# --- validation ------------------------------------------------------------------------------

def _first_outside(arr: np.ndarray, lo: int, hi: int) -> int | None:
    """Index of the first element outside ``lo..hi``, or None; exact for any integer dtype."""
    if arr.size == 0 or (lo <= int(arr.min()) and int(arr.max()) <= hi):
        return None
    # Python ints: comparing uint64 arrays with negative bounds is not exact in every NumPy.
    return next(i for i, v in enumerate(arr.tolist()) if not lo <= v <= hi)


def _check_int_vector(name: str, arr: np.ndarray) -> None:
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")


def _check_values(config: SparseFormatConfig, values: np.ndarray) -> None:
    _check_int_vector("values", values)
    zero = np.flatnonzero(values == 0)
    if zero.size:
        raise ValueError(f"a zero stored as a nonzero value: values[{zero[0]}] is 0, but a "
                         f"sparse block stores only nonzeros")
    lo, hi = config.value_range
    bad = _first_outside(values, lo, hi)
    if bad is not None:
        kind = "signed" if config.signed else "unsigned"
        raise ValueError(f"values[{bad}] = {int(values[bad])} is outside the value range "
                         f"{lo}..{hi} ({config.value_width}-bit {kind})")


def validate_block(config: SparseFormatConfig, block) -> None:
    """Check that ``block`` is a well-formed block of ``config``; raise if not.

    Raises
    ------
    TypeError
        ``block`` is neither a :class:`BitmapBlock` nor a :class:`CoordinateBlock`.
    ValueError
        Naming the problem: a bitmap of the wrong length or dtype, counts that do not match
        the bitmap, coordinates outside ``0..B-1``, out of order or duplicated, values and
        coords of different lengths, a zero stored as a nonzero, or a value outside the value
        range.
    """
    if not isinstance(config, SparseFormatConfig):
        raise TypeError(f"config must be a SparseFormatConfig, got {config!r}")
    b = config.block
    if isinstance(block, BitmapBlock):
        bitmap = block.bitmap
        if bitmap.dtype != np.bool_:
            raise ValueError(f"bitmap must be an array of bool, got dtype {bitmap.dtype}")
        if bitmap.shape != (b,):
            raise ValueError(f"bitmap of wrong length: a block of {b} elements needs a "
                             f"bitmap of shape ({b},), got shape {bitmap.shape}")
        _check_int_vector("values", block.values)
        set_bits = int(np.count_nonzero(bitmap))
        if set_bits != block.values.size:
            raise ValueError(f"counts that do not match the bitmap: {set_bits} bits are set "
                             f"but {block.values.size} values are stored")
        _check_values(config, block.values)
    elif isinstance(block, CoordinateBlock):
        coords, values = block.coords, block.values
        _check_int_vector("coords", coords)
        _check_int_vector("values", values)
        if coords.size != values.size:
            raise ValueError(f"values and coords length mismatch: {values.size} values for "
                             f"{coords.size} coordinates")
        bad = _first_outside(coords, 0, b - 1)
        if bad is not None:
            raise ValueError(f"coordinate coords[{bad}] = {int(coords[bad])} is outside the "
                             f"block's local positions 0..{b - 1}")
        # In range, so int64 differences are exact (uint64 ones would wrap).
        steps = np.diff(coords.astype(np.int64))
        wrong = np.flatnonzero(steps <= 0)
        if wrong.size:
            i = int(wrong[0])
            if steps[i] == 0:
                raise ValueError(f"duplicated coordinate: coords[{i}] and coords[{i + 1}] are "
                                 f"both {int(coords[i])}")
            raise ValueError(f"coordinates out of order: coords[{i + 1}] = "
                             f"{int(coords[i + 1])} follows coords[{i}] = {int(coords[i])}; "
                             f"they must be strictly increasing")
        _check_values(config, values)
    else:
        raise TypeError(f"block must be a BitmapBlock or a CoordinateBlock, got "
                        f"{type(block).__name__}")


def _at_block(k: int, fn, config, block, *args):
    """Call ``fn(config, block, *args)``, naming block ``k`` in a ValueError."""
    try:
        return fn(config, block, *args)
    except ValueError as e:
        raise ValueError(f"block {k}: {e}") from None


# --- encoding and decoding -------------------------------------------------------------------

def _check_fmt(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")


def _check_tensor(config: SparseFormatConfig, tensor, name: str) -> np.ndarray:
    """``tensor`` as int64 after checking it holds integers of the value range."""
    arr = np.asarray(tensor)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {arr.dtype}")
    lo, hi = config.value_range
    bad = _first_outside(arr.reshape(-1), lo, hi)
    if bad is not None:
        raise ValueError(f"{name} value {arr.reshape(-1)[bad]} at flat index {bad} is outside "
                         f"the value range {lo}..{hi}")
    return arr.astype(np.int64)


def _encode_row(config: SparseFormatConfig, row: np.ndarray, fmt: str):
    mask = row != 0
    if fmt == "hybrid":
        fmt = choose_format(config, int(np.count_nonzero(mask)))
    if fmt == "bitmap":
        return BitmapBlock(bitmap=mask, values=row[mask])
    return CoordinateBlock(coords=np.flatnonzero(mask), values=row[mask])


def encode_block(config: SparseFormatConfig, dense_block, fmt: str):
    """Encode one dense block of ``B`` integers.

    Parameters
    ----------
    config : SparseFormatConfig
    dense_block : array_like of int, shape (B,)
        Values within ``config.value_range``.
    fmt : {"bitmap", "coordinate", "hybrid"}
        The format; ``"hybrid"`` picks one by ``config.rule`` (:func:`choose_format`).

    Returns
    -------
    BitmapBlock or CoordinateBlock
    """
    _check_fmt(fmt)
    row = _check_tensor(config, dense_block, "dense_block")
    if row.shape != (config.block,):
        raise ValueError(f"dense_block must have shape ({config.block},) (one block), got "
                         f"shape {row.shape}")
    return _encode_row(config, row, fmt)


def encode(config: SparseFormatConfig, tensor, fmt: str = "hybrid") -> list:
    """Encode a 1-D or 3-D integer tensor as a list of blocks.

    The tensor is flattened in C order, zero-padded to a multiple of ``B`` and cut into
    blocks of ``B`` elements, each encoded by :func:`encode_block`.

    Parameters
    ----------
    config : SparseFormatConfig
    tensor : array_like of int
        1-D (a vector) or 3-D (a voxel grid), values within ``config.value_range``.
    fmt : {"bitmap", "coordinate", "hybrid"}
        Format of every block, or ``"hybrid"`` to choose per block by ``config.rule``.

    Returns
    -------
    list of BitmapBlock or CoordinateBlock
        ``ceil(tensor.size / B)`` blocks.
    """
    _check_fmt(fmt)
    arr = _check_tensor(config, tensor, "tensor")
    if arr.ndim not in (1, 3):
        raise ValueError(f"tensor must be 1-D or 3-D (a voxel grid), got {arr.ndim}-D "
                         f"shape {arr.shape}")
    b = config.block
    flat = arr.reshape(-1)
    n_blocks = -(-flat.size // b)
    padded = np.zeros(n_blocks * b, dtype=np.int64)
    padded[:flat.size] = flat
    return [_encode_row(config, row, fmt) for row in padded.reshape(n_blocks, b)]


def _entries(block) -> tuple[np.ndarray, np.ndarray]:
    """Local positions and values of a validated block's nonzeros, in position order."""
    if isinstance(block, BitmapBlock):
        return np.flatnonzero(block.bitmap), block.values.astype(np.int64)
    return block.coords.astype(np.int64), block.values.astype(np.int64)


def _gather(config: SparseFormatConfig, blocks: Sequence) -> tuple[np.ndarray, np.ndarray]:
    """Validate every block; return global positions (increasing) and values of all nonzeros."""
    positions, values = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for k, block in enumerate(blocks):
        _at_block(k, validate_block, config, block)
        p, v = _entries(block)
        positions.append(p + k * config.block)
        values.append(v)
    return np.concatenate(positions), np.concatenate(values)


def _check_length(config: SparseFormatConfig, blocks: Sequence, size: int, what: str,
                  positions: np.ndarray) -> None:
    """The blocks cover exactly ``size`` elements, and nothing is stored in the padding."""
    need = -(-size // config.block)
    if len(blocks) != need:
        raise ValueError(f"{what} ({size} elements) needs {need} blocks of {config.block}, "
                         f"got {len(blocks)}")
    if positions.size and positions[-1] >= size:
        raise ValueError(f"the encoding stores a nonzero at padding position "
                         f"{int(positions[positions >= size][0])}, beyond the {size} elements "
                         f"of {what}")


def decode(config: SparseFormatConfig, blocks: Iterable, shape) -> np.ndarray:
    """Decode blocks into a dense int64 tensor of ``shape`` (the inverse of :func:`encode`).

    Parameters
    ----------
    config : SparseFormatConfig
    blocks : iterable of BitmapBlock or CoordinateBlock
        Exactly ``ceil(prod(shape) / B)`` blocks, each validated (:func:`validate_block`).
    shape : int or tuple of int
        Shape of the tensor (any number of dimensions); elements fill it in C order.

    Raises
    ------
    ValueError
        A malformed block (naming it), the wrong number of blocks, or a nonzero stored in
        the padding beyond the tensor.
    """
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
        raise ValueError(f"shape must be non-negative integers, got {shape!r}")
    size = math.prod(int(d) for d in shape)
    blocks = list(blocks)
    positions, values = _gather(config, blocks)
    _check_length(config, blocks, size, f"shape {shape}", positions)
    flat = np.zeros(size, dtype=np.int64)
    flat[positions] = values
    return flat.reshape(shape)


# --- queries ---------------------------------------------------------------------------------

def _as_bitmap(bitmap) -> np.ndarray:
    bitmap = np.asarray(bitmap)
    if bitmap.ndim != 1 or bitmap.dtype != np.bool_:
        raise ValueError(f"bitmap must be a 1-D array of bool, got dtype {bitmap.dtype} "
                         f"shape {bitmap.shape}")
    return bitmap


def rank(bitmap, i: int) -> int:
    """Number of set bits before position ``i`` (``bitmap[:i]``), for ``i`` in ``0..len``.

    In a bitmap block it is the index into ``values`` of the value at a set position ``i``;
    ``rank(bitmap, len(bitmap))`` is the popcount.
    """
    bitmap = _as_bitmap(bitmap)
    i = operator.index(i)
    if not 0 <= i <= bitmap.size:
        raise ValueError(f"i must be in 0..{bitmap.size} (a position, or the bitmap's "
                         f"length), got {i}")
    return int(np.count_nonzero(bitmap[:i]))


def select(bitmap, k: int) -> int:
    """Position of the ``k``-th set bit (0-based): the inverse of :func:`rank` on set bits."""
    positions = np.flatnonzero(_as_bitmap(bitmap))
    k = operator.index(k)
    if not 0 <= k < positions.size:
        raise ValueError(f"k must be >= 0 and below the number of set bits "
                         f"({positions.size}), got {k}")
    return int(positions[k])


def lookup(config: SparseFormatConfig, block, i: int) -> int:
    """Value at local position ``i`` (``0..B-1``) of a block, 0 where nothing is stored.

    Bitmap: ``values[rank(bitmap, i)]`` if bit ``i`` is set. Coordinate: a binary search of
    the sorted coordinates, as a hardware decoder does in ``ceil(log2(nnz + 1))`` steps.
    """
    validate_block(config, block)
    i = operator.index(i)
    if not 0 <= i < config.block:
        raise ValueError(f"i must be a local position in 0..{config.block - 1}, got {i}")
    if isinstance(block, BitmapBlock):
        return int(block.values[rank(block.bitmap, i)]) if block.bitmap[i] else 0
    k = int(np.searchsorted(block.coords, i))
    return int(block.values[k]) if k < block.coords.size and block.coords[k] == i else 0


def lookup_global(config: SparseFormatConfig, blocks: Sequence, index: int) -> int:
    """Value at flat (C-order) ``index`` of an encoded tensor, 0 where nothing is stored.

    ``index`` ranges over the padded length ``len(blocks) * B``; only the block holding it
    is validated.
    """
    index = operator.index(index)
    end = len(blocks) * config.block
    if not 0 <= index < end:
        raise ValueError(f"index must be in 0..{end - 1} ({len(blocks)} blocks of "
                         f"{config.block}), got {index}")
    k, i = divmod(index, config.block)
    return _at_block(k, lookup, config, blocks[k], i)


def sparse_dense_dot(config: SparseFormatConfig, blocks: Iterable, dense) -> int:
    """Exact integer dot product of an encoded tensor (flattened) with a dense vector.

    Computed from the stored nonzeros without decoding: only the ``dense`` elements at their
    positions are read, which is how a sparse MAC unit saves work.

    Parameters
    ----------
    config : SparseFormatConfig
    blocks : iterable of BitmapBlock or CoordinateBlock
        The encoding; ``ceil(len(dense) / B)`` blocks.
    dense : array_like of int, 1-D
        Any integers; the sum is exact (Python integers when it could exceed int64).

    Returns
    -------
    int
    """
    dense = np.asarray(dense)
    if dense.dtype.kind not in "iu":
        raise TypeError(f"dense must hold integers, got dtype {dense.dtype}")
    if dense.ndim != 1:
        raise ValueError(f"dense must be a 1-D vector, got shape {dense.shape}")
    blocks = list(blocks)
    positions, values = _gather(config, blocks)
    _check_length(config, blocks, dense.size, "dense", positions)
    if not positions.size:
        return 0
    picked = dense[positions]
    lo, hi = int(picked.min()), int(picked.max())
    # Each product fits value_width + dense bits; summing nnz of them adds log2(nnz) bits.
    bits = (config.value_width + bits_for_range(min(lo, 0), max(hi, 0), True)
            + positions.size.bit_length())
    return int((int_array(values, bits) * int_array(picked, bits)).sum())


def density(dense) -> float:
    """Fraction of nonzero elements of a tensor (``nnz / size``)."""
    dense = np.asarray(dense)
    if dense.size == 0:
        raise ValueError("density of an empty tensor is undefined")
    return np.count_nonzero(dense) / dense.size
