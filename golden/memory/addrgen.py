"""Tiled address generator (a DMA descriptor walker): parameters, descriptors and the model.

A *descriptor* is a base address and, per loop level, a bound and a signed stride. Levels are
listed **outermost first**: ``bounds[0]`` / ``strides[0]`` belong to the outermost loop and
``bounds[levels - 1]`` / ``strides[levels - 1]`` to the innermost one, so a descriptor walks::

    for i0 in range(bounds[0]):
        for i1 in range(bounds[1]):
            ...
                addr = base + i0 * strides[0] + i1 * strides[1] + ...

one address per output word, in that order, with ``last = 1`` on the descriptor's final
address. A config with fewer levels simply has shorter ``bounds`` / ``strides``; an unused loop
is written with bound 1 (its stride is then irrelevant).

Fields (the hardware's input payload, in this order): ``base`` (unsigned, ``addr_width``
bits), ``bounds`` (``levels`` unsigned ``count_width``-bit counts) and ``strides`` (``levels``
signed ``stride_width``-bit strides). Output words: ``addr`` (unsigned, ``addr_width``),
``last`` and ``error``.

Defined errors, never wrapped addresses. A descriptor is *invalid* when a bound is 0 (an empty
loop), or when one of its addresses would lie outside ``0..limit-1`` (``limit`` defaults to
``2**addr_width``, so an address that would wrap the address width is invalid too). The extent
is known up front: with ``span_k = (bounds[k] - 1) * strides[k]``, the lowest address is
``base + sum(min(span_k, 0))`` and the highest ``base + sum(max(span_k, 0))``
(:func:`descriptor_extent`). An invalid descriptor produces exactly one output word
``{addr: 0, last: 1, error: 1}`` instead of its addresses; a valid one produces
``prod(bounds)`` words with ``error = 0``. The Python-side :func:`check_descriptor` raises
``ValueError`` for the same descriptors (and for fields that do not fit the payload).

Timing (the hardware's, described here so the tests can check it): without stalls, the first
word of a descriptor appears :data:`LATENCY` cycles after the descriptor is accepted, and the
output stream carries one word per cycle, across descriptor boundaries too (the next
descriptor is checked while the current one is walked), so ``W`` words take ``W`` cycles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..params import BlockConfig, param

__all__ = ["AddrGenConfig", "LATENCY", "FIELDS", "addrgen", "check_descriptor",
           "descriptor_error", "descriptor_extent", "descriptor_words", "word_counts",
           "MAX_GOLDEN_WORDS"]

#: Input payload fields, in the order of the hardware's layout.
FIELDS = ("base", "bounds", "strides")

#: Cycles from accepting a descriptor to its first output word, with no stall.
LATENCY = 3

#: Most output words :func:`addrgen` enumerates in one call (it builds them in memory).
MAX_GOLDEN_WORDS = 1 << 26


@dataclass(frozen=True, kw_only=True)
class AddrGenConfig(BlockConfig):
    """Parameters of the address generator.

    Parameters
    ----------
    levels : int
        Nested loops per descriptor, 1..4.
    addr_width : int
        Address width in bits (unsigned), 8..64.
    count_width : int
        Width of each loop bound (unsigned), 1..32: bounds ``1..2**count_width - 1``.
    stride_width : int
        Width of each stride (signed, two's complement), 2..32.
    limit : int or None
        Size of the address space: every address must be in ``0..limit-1``;
        ``1..2**addr_width``. ``None``: ``2**addr_width`` (addresses must not wrap).
    """

    levels: int = param(4, help="nested loops per descriptor", range=(1, 4))
    addr_width: int = param(32, help="address width in bits", range=(8, 64))
    count_width: int = param(16, help="bits of each loop bound (unsigned)", range=(1, 32))
    stride_width: int = param(24, help="bits of each stride (signed)", range=(2, 32))
    limit: int | None = param(None, help="address space size: addresses must be below it "
                              "(default 2**addr_width)", range=(1, 1 << 64))

    def _check(self):
        if self.limit is not None and self.limit > 1 << self.addr_width:
            raise ValueError(f"limit must be in 1..{1 << self.addr_width} (2**addr_width), "
                             f"got {self.limit}")

    @property
    def address_limit(self) -> int:
        """Resolved ``limit``: addresses are ``0..address_limit-1``."""
        return (1 << self.addr_width) if self.limit is None else self.limit

    @property
    def base_range(self) -> tuple[int, int]:
        return 0, (1 << self.addr_width) - 1

    @property
    def bound_range(self) -> tuple[int, int]:
        """Values the bound field holds (0 is representable but invalid)."""
        return 0, (1 << self.count_width) - 1

    @property
    def stride_range(self) -> tuple[int, int]:
        return -(1 << (self.stride_width - 1)), (1 << (self.stride_width - 1)) - 1


def _fit(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def _fields(config: AddrGenConfig, base, bounds, strides) -> tuple[int, list[int], list[int]]:
    """Check that one descriptor's fields fit the payload; return them as Python ints."""
    base = _fit("base", base, *config.base_range)
    bounds, strides = list(np.asarray(bounds).reshape(-1)), list(np.asarray(strides).reshape(-1))
    for name, values in (("bounds", bounds), ("strides", strides)):
        if len(values) != config.levels:
            raise ValueError(f"{name} must have {config.levels} entries (levels), "
                             f"got {len(values)}")
    bounds = [_fit(f"bounds[{k}]", b, *config.bound_range) for k, b in enumerate(bounds)]
    strides = [_fit(f"strides[{k}]", s, *config.stride_range) for k, s in enumerate(strides)]
    return base, bounds, strides


def descriptor_extent(config: AddrGenConfig, base, bounds, strides) -> tuple[int, int]:
    """``(lowest, highest)`` address of a descriptor with bounds >= 1 (exact integers, not
    wrapped: either may fall outside the address space)."""
    base, bounds, strides = _fields(config, base, bounds, strides)
    if min(bounds) < 1:
        raise ValueError("descriptor_extent needs bounds >= 1")
    spans = [(b - 1) * s for b, s in zip(bounds, strides)]
    return base + sum(min(s, 0) for s in spans), base + sum(max(s, 0) for s in spans)


def descriptor_error(config: AddrGenConfig, base, bounds, strides) -> str | None:
    """Why the hardware flags this descriptor (``None`` if it is valid).

    Raises ``ValueError`` if a field does not fit the payload at all.
    """
    base, bounds, strides = _fields(config, base, bounds, strides)
    empty = [k for k, b in enumerate(bounds) if b == 0]
    if empty:
        return f"bounds[{empty[0]}] is 0 (an empty loop)"
    lo, hi = descriptor_extent(config, base, bounds, strides)
    limit = config.address_limit
    if lo < 0 or hi >= limit:
        return (f"addresses {lo}..{hi} leave the address space 0..{limit - 1}"
                + (" (they would wrap the address width)" if config.limit is None else ""))
    return None


def check_descriptor(config: AddrGenConfig, base, bounds, strides) -> None:
    """Raise ``ValueError`` unless the descriptor is valid (the hardware would flag it)."""
    reason = descriptor_error(config, base, bounds, strides)
    if reason is not None:
        raise ValueError(f"invalid descriptor: {reason}")


def descriptor_words(config: AddrGenConfig, descriptors) -> dict[str, np.ndarray]:
    """Input words from a list of ``(base, bounds, strides)``: a dict of field arrays, ``base``
    ``(N,)``, ``bounds`` and ``strides`` ``(N, levels)``. Fields are checked to fit."""
    rows = [_fields(config, *d) for d in descriptors]
    dtype = object if config.addr_width >= 64 else np.int64
    return {
        "base": np.array([r[0] for r in rows], dtype=dtype),
        "bounds": np.array([r[1] for r in rows], dtype=np.int64).reshape(-1, config.levels),
        "strides": np.array([r[2] for r in rows], dtype=np.int64).reshape(-1, config.levels),
    }


def _rows(config: AddrGenConfig, descriptors: dict):
    missing = [f for f in FIELDS if f not in descriptors]
    if missing:
        raise ValueError(f"descriptors miss fields {missing}")
    base = np.asarray(descriptors["base"]).reshape(-1)
    bounds = np.asarray(descriptors["bounds"])
    strides = np.asarray(descriptors["strides"])
    n = len(base)
    for name, values in (("bounds", bounds), ("strides", strides)):
        if values.shape != (n, config.levels):
            raise ValueError(f"{name} must have shape ({n}, {config.levels}), "
                             f"got {values.shape}")
    return [(base[t], bounds[t], strides[t]) for t in range(n)]


def word_counts(config: AddrGenConfig, descriptors: dict) -> np.ndarray:
    """Output words of each descriptor: ``prod(bounds)``, or 1 for an invalid one."""
    counts = [1 if descriptor_error(config, *d) else math.prod(int(b) for b in d[1])
              for d in _rows(config, descriptors)]
    return np.array(counts, dtype=np.int64)


def addrgen(config: AddrGenConfig, descriptors: dict) -> dict[str, np.ndarray]:
    """Bit-exact model: the output words of a stream of descriptors.

    Parameters
    ----------
    config : AddrGenConfig
    descriptors : dict of array_like
        ``base`` ``(N,)``, ``bounds`` and ``strides`` ``(N, levels)`` (see
        :func:`descriptor_words`).

    Returns
    -------
    dict of numpy.ndarray
        ``addr``, ``last``, ``error``, one entry per output word. ``addr`` is int64 for
        ``addr_width < 64`` and Python ints (dtype object) for 64-bit addresses.
    """
    rows = _rows(config, descriptors)
    total = int(word_counts(config, descriptors).sum()) if rows else 0
    if total > MAX_GOLDEN_WORDS:
        raise ValueError(f"the descriptors produce {total} words, more than the golden model "
                         f"enumerates ({MAX_GOLDEN_WORDS})")
    wide = config.addr_width >= 64
    addr, last, error = [], [], []
    for d in rows:
        if descriptor_error(config, *d) is not None:
            addr.append(np.zeros(1, dtype=object if wide else np.int64))
            last.append(np.ones(1, dtype=np.int64))
            error.append(np.ones(1, dtype=np.int64))
            continue
        base, bounds, strides = _fields(config, *d)
        # Offsets from base, outermost level first (C order = the loop nest's order). They
        # are exact in int64: a valid descriptor's offsets are within +-2**64 and the product
        # of its bounds is at most MAX_GOLDEN_WORDS, so each |span| is far below 2**63.
        offsets = np.zeros(bounds, dtype=np.int64)
        for k, (b, s) in enumerate(zip(bounds, strides)):
            shape = [1] * config.levels
            shape[k] = b
            offsets = offsets + (np.arange(b, dtype=np.int64) * s).reshape(shape)
        offsets = offsets.reshape(-1)
        addr.append(offsets.astype(object) + base if wide else offsets + base)
        flags = np.zeros(len(offsets), dtype=np.int64)
        flags[-1] = 1
        last.append(flags)
        error.append(np.zeros(len(offsets), dtype=np.int64))
    if not rows:
        return {"addr": np.zeros(0, dtype=object if wide else np.int64),
                "last": np.zeros(0, dtype=np.int64), "error": np.zeros(0, dtype=np.int64)}
    return {"addr": np.concatenate(addr), "last": np.concatenate(last),
            "error": np.concatenate(error)}
