"""Reconfigurable PE array with per-row reduction trees (MARCA's reduction-alternative array).

Bit-exact model of ``hw.pe_array.PEArray`` at the level of stream transactions, and the tiled
GEMV / GEMM schedules the array runs, with float references.

Each input transaction carries ``op``, ``mode``, ``last`` and operand matrices ``a``, ``b``,
``c`` of shape ``(rows, cols)``. Every PE computes ``op`` (see :func:`golden.pe.pe_op`), then:

- ``Mode.ELEMENTWISE``: the ``rows x cols`` results are the output (the trees are bypassed).
- ``Mode.LINEAR``: each row's tree sums its ``cols`` results, and the row's accumulator adds the
  sum (saturating to the accumulator width). Only the transaction with ``last`` set emits an
  output; it also restarts the accumulation for the next transaction.

An output carries both fields: ``elem`` (the PE results of the emitting transaction) and ``acc``
(the accumulator registers after it), with ``mode`` and ``last`` copied from the input.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .fixed_point import bits_for_range, int_array, saturate, sum_range
from .params import param
from .pe import Op, PEConfig, pe_op
from .reduction_tree import ReductionTreeConfig

__all__ = [
    "Mode",
    "PEArrayConfig",
    "pe_array",
    "gemm_schedule",
    "gemm",
    "gemv",
    "gemm_reference",
]

MAX_ACC_WIDTH = 64


class Mode(IntEnum):
    """Array mode, per transaction: the ``mode`` field of the input payload."""

    ELEMENTWISE = 0  # reduction trees bypassed: every PE result comes out
    LINEAR = 1       # reduction trees enabled: row sums accumulate over transactions


@dataclass(frozen=True, kw_only=True)
class PEArrayConfig(PEConfig):
    """Parameters of a ``rows x cols`` PE array; the PE lane parameters are inherited.

    Parameters
    ----------
    rows, cols : int
        Array shape, each 1..256. A row is one reduction tree over ``cols`` PEs.
    max_k : int
        Longest dot product (in elements) the default accumulator holds exactly, 1..2**24.
    acc_width : int or None
        Accumulator width, ``in_width``..64. ``None``: exact for ``max_k`` PE results. A narrower
        width saturates.
    tree_levels_per_stage : int
        Adder levels between pipeline registers in the reduction trees, 1..16.
    backpressure : bool
        Hardware only. True: ``o.ready`` low stalls the whole pipeline (and ``i.ready``). False:
        both streams are ``always_ready`` (no ready port): one transaction per cycle and the
        consumer takes every output, like the MAC baseline and like the accelerator, which
        never stalls its array. No stall enable then reaches the array's registers, the
        longest route of a large array.
    **lane parameters
        ``in_width``, ``signed``, ``out_width``, ``rounding``, ``ops``, ``multiplier_stages``,
        ``sum_register``, ``shifter`` of :class:`PEConfig`.
    """

    rows: int = param(4, help="PE rows (one reduction tree each)", range=(1, 256))
    cols: int = param(8, help="PEs per row (reduction tree inputs)", range=(1, 256))
    max_k: int = param(4096, help="longest dot product the default accumulator holds exactly",
                       range=(1, 1 << 24))
    acc_width: int | None = param(None, help="accumulator width, narrower saturates "
                                  "(derived: exact for max_k)", range=(2, MAX_ACC_WIDTH))
    tree_levels_per_stage: int = param(1, help="adder levels between pipeline registers",
                                       range=(1, 16))
    backpressure: bool = param(True, help="o.ready stalls the pipeline (false: both streams "
                               "always ready, the consumer takes every output)")

    def _check(self):
        super()._check()
        if self.acc_width is not None and self.acc_width < self.in_width:
            raise ValueError(f"acc_width must be in {self.in_width}..{MAX_ACC_WIDTH} "
                             f"(at least in_width), got {self.acc_width}")
        if self.acc_width is None and self._exact_acc_width() > MAX_ACC_WIDTH:
            raise ValueError(f"max_k={self.max_k} needs a {self._exact_acc_width()}-bit "
                             f"accumulator, more than {MAX_ACC_WIDTH}: lower max_k or set "
                             f"acc_width (which saturates)")

    def _exact_acc_width(self) -> int:
        lo, hi = sum_range(self.output_range, self.max_k)
        return bits_for_range(lo, hi, self.signed)

    @property
    def accumulator_width(self) -> int:
        """Resolved accumulator width."""
        return self._exact_acc_width() if self.acc_width is None else self.acc_width

    @functools.cached_property  # built once: config validation is slow
    def tree(self) -> ReductionTreeConfig:
        """Config of each row's reduction tree."""
        return ReductionTreeConfig(n=self.cols, width=self.output_width, signed=self.signed,
                                   levels_per_stage=self.tree_levels_per_stage)

    @functools.cached_property  # built once: config validation is slow
    def pe(self) -> PEConfig:
        """Config of each PE lane."""
        return PEConfig(in_width=self.in_width, signed=self.signed, out_width=self.out_width,
                        rounding=self.rounding, ops=self.ops, shifter=self.shifter,
                        multiplier_stages=self.multiplier_stages,
                        sum_register=self.sum_register)


def _accumulate_exact(config: PEArrayConfig, row_sums, linear, last, acc_after) -> bool:
    """Fill ``acc_after[1:]`` with running sums per dot product when no partial sum can
    reach the accumulator's range (then saturation never acts and the sums are exact);
    return False, leaving it alone, otherwise. The same result as the transaction loop,
    without a Python step per transaction."""
    if row_sums.dtype != np.int64 or not len(linear):
        return False
    sums = row_sums[linear]
    ends = np.asarray(last)[linear] != 0
    # Dot product index of each linear transaction: a new one starts after each ``last``.
    group = np.concatenate([[0], np.cumsum(ends[:-1])])
    limit = (1 << (config.accumulator_width - 1)) - 1 if config.signed else (
        (1 << config.accumulator_width) - 1)
    magnitude = np.abs(sums).astype(np.float64)  # a bound; float64 holds it closely enough
    bound = np.cumsum(magnitude, axis=0)
    starts = np.flatnonzero(np.concatenate([[True], group[1:] != group[:-1]]))
    running = np.cumsum(sums, axis=0)
    offset_rows = np.repeat(starts, np.diff(np.concatenate([starts, [len(sums)]])))
    before = np.where(offset_rows[:, None] > 0, running[offset_rows - 1], 0)
    bound_before = np.where(offset_rows[:, None] > 0, bound[offset_rows - 1], 0.0)
    if (bound[-1].max() >= 2.0 ** 62 or np.max(bound - bound_before) * (1 + 1e-9) + 1 >= limit
            or not config.signed and sums.min() < 0):
        return False
    acc_after[1:] = running - before
    return True


def pe_array(config: PEArrayConfig, op, mode, last, a, b, c) -> tuple[dict, np.ndarray]:
    """Bit-exact model of a stream of PE-array transactions, from reset.

    Parameters
    ----------
    config : PEArrayConfig
    op, mode, last : array_like of int, shape ``(N,)`` or scalar
        Per-transaction :class:`~golden.pe.Op`, :class:`Mode` and end-of-operation flag.
    a, b, c : array_like of int, shape ``(N, rows, cols)``
        Operands.

    Returns
    -------
    outputs : dict of numpy.ndarray
        The emitted output transactions: ``elem`` ``(M, rows, cols)``, ``acc`` ``(M, rows)``,
        ``mode`` ``(M,)``, ``last`` ``(M,)``.
    source : numpy.ndarray of int, shape ``(M,)``
        Index of the input transaction that emitted each output.
    """
    a = np.asarray(a)
    n = a.shape[0]
    if a.shape[1:] != (config.rows, config.cols):
        raise ValueError(f"a must have shape (N, {config.rows}, {config.cols}), got {a.shape}")
    op, mode, last = (np.broadcast_to(np.asarray(x, dtype=np.int64), (n,))
                      for x in (op, mode, last))
    if not np.isin(mode, [m.value for m in Mode]).all():
        raise ValueError(f"mode must be one of {[m.value for m in Mode]}")

    elem = pe_op(config.pe, op[:, None, None], a, b, c)
    acc_w = config.accumulator_width
    bits = max(acc_w, config.tree.output_width) + 2
    row_sums = int_array(elem, bits).sum(axis=2)  # the reduction trees, exact

    # acc_after[j + 1]: accumulators after the j-th linear transaction (acc_after[0]: reset).
    linear = np.flatnonzero(mode == Mode.LINEAR)
    acc_after = int_array(np.zeros((len(linear) + 1, config.rows), dtype=np.int64), bits)
    if not _accumulate_exact(config, row_sums, linear, last, acc_after):
        fresh = True  # the next linear transaction starts a new dot product
        for j, t in enumerate(linear):
            acc_after[j + 1] = saturate((0 if fresh else acc_after[j]) + row_sums[t], acc_w,
                                        config.signed)
            fresh = bool(last[t])
    # Elementwise transactions leave the accumulators alone: each transaction sees the value
    # left by the latest linear transaction at or before it.
    linear_seen = np.cumsum(mode == Mode.LINEAR)
    acc_out = acc_after[linear_seen]
    emitted = np.flatnonzero((mode == Mode.ELEMENTWISE) | (last != 0))
    outputs = {
        "elem": elem[emitted],
        "acc": acc_out[emitted],
        "mode": mode[emitted],
        "last": last[emitted],
    }
    return outputs, emitted


def gemm_schedule(config: PEArrayConfig, w, x) -> dict[str, np.ndarray]:
    """Input transactions that compute ``w @ x`` on the array (the hardware's schedule).

    For each column of ``x``, each block of ``rows`` rows of ``w`` and each chunk of ``cols``
    elements of K: ``a`` is the weight tile (zero-padded), ``b`` is the ``x`` chunk broadcast
    to every row (input sharing), ``last`` marks the final chunk of K.

    Parameters
    ----------
    config : PEArrayConfig
    w : array_like of int, shape ``(M, K)``
    x : array_like of int, shape ``(K, N)``

    Returns
    -------
    dict of numpy.ndarray
        ``op``, ``mode``, ``last`` ``(T,)`` and ``a``, ``b``, ``c`` ``(T, rows, cols)`` with
        ``T = N * ceil(M / rows) * ceil(K / cols)``.
    """
    w, x = np.asarray(w), np.asarray(x)
    if w.ndim != 2 or x.ndim != 2 or w.shape[1] != x.shape[0]:
        raise ValueError(f"w (M, K) and x (K, N) shapes do not match: {w.shape}, {x.shape}")
    (m, k), n = w.shape, x.shape[1]
    if k > config.max_k:
        raise ValueError(f"K={k} exceeds max_k={config.max_k}: the accumulator is only "
                         f"guaranteed exact up to max_k")
    lo, hi = config.operand_range
    for name, v in (("w", w), ("x", x)):
        if v.size and (v.min() < lo or v.max() > hi):
            raise ValueError(f"{name} values must be in {lo}..{hi}")
    rows, cols = config.rows, config.cols
    row_blocks, chunks = math.ceil(m / rows), math.ceil(k / cols)
    w_pad = np.zeros((row_blocks * rows, chunks * cols), dtype=np.int64)
    w_pad[:m, :k] = w
    x_pad = np.zeros((chunks * cols, n), dtype=np.int64)
    x_pad[:k] = x
    # a[col_n, block, chunk] = weight tile; b = x chunk of column n broadcast to all rows.
    w_tiles = w_pad.reshape(row_blocks, rows, chunks, cols).transpose(0, 2, 1, 3)
    a = np.broadcast_to(w_tiles, (n, row_blocks, chunks, rows, cols))
    x_chunks = x_pad.T.reshape(n, 1, chunks, 1, cols)
    b = np.broadcast_to(x_chunks, (n, row_blocks, chunks, rows, cols))
    t = n * row_blocks * chunks
    last = np.zeros((n, row_blocks, chunks), dtype=np.int64)
    last[..., -1] = 1
    return {
        "op": np.full(t, int(Op.MUL)),
        "mode": np.full(t, int(Mode.LINEAR)),
        "last": last.reshape(t),
        "a": a.reshape(t, rows, cols).copy(),
        "b": b.reshape(t, rows, cols).copy(),
        "c": np.zeros((t, rows, cols), dtype=np.int64),
    }


def gemm(config: PEArrayConfig, w, x) -> np.ndarray:
    """Bit-exact ``w @ x`` as the array computes it (accumulator saturation included)."""
    w, x = np.asarray(w), np.asarray(x)
    schedule = gemm_schedule(config, w, x)
    outputs, _ = pe_array(config, **schedule)
    m, n = w.shape[0], x.shape[1]
    # One output per (column, row block): the accumulators of that block's rows.
    return outputs["acc"].reshape(n, -1)[:, :m].T


def gemv(config: PEArrayConfig, w, x) -> np.ndarray:
    """Bit-exact ``w @ x`` for a vector ``x`` of length K."""
    return gemm(config, w, np.asarray(x).reshape(-1, 1))[:, 0]


def gemm_reference(w, x) -> np.ndarray:
    """Float64 reference of ``w @ x``."""
    return np.asarray(w, dtype=np.float64) @ np.asarray(x, dtype=np.float64)
