"""MARCA's buffer management, as an external-memory traffic model (pure NumPy / Python).

Two techniques, each compared with the same computation without it. Every function returns
``{"optimized": {...}, "baseline": {...}, "ratio": ..., "saved_bytes": ...,
"saved_fraction": ...}`` plus a few technique-specific figures, where ``optimized`` and
``baseline`` each hold ``bytes_read``, ``bytes_written`` and ``bytes_total`` (read + written)
and ``ratio = baseline total / optimized total`` (>= 1: the traffic reduction factor).

Elements are stored byte-aligned: an element of ``bits`` bits takes ``ceil(bits / 8)`` bytes
(:func:`element_bytes`).

**Input sharing for linear operations** (:func:`linear_traffic`). ``w @ x`` with ``w`` of shape
``(M, K)`` and ``x`` of shape ``(K, N)`` is tiled as ``golden.pe_array.gemm_schedule`` does:
for each column of ``x``, each block of ``rows`` rows of ``w`` and each chunk of ``cols``
elements of K, one array transaction. Every transaction fetches its operands from external
memory (no reuse across transactions): the weight tile (one chunk per *active* row: rows past
M in the last block are padding and fetch nothing) and the ``x`` chunk (the chunk's real
elements; the zero padding past K is generated, not fetched). With input sharing
(``optimized``) the ``x`` chunk is fetched once and broadcast to every row of the array; without
it (``baseline``) every active row fetches its own copy. Each dot product's result (``out_bits``)
is written once. So, with ``B = ceil(M / rows)`` row blocks::

    weights read   N * M * K              (both)
    x read         N * B * K  (shared)    N * M * K  (each row its own copy)
    results        M * N                  (both)

**Inter-operation reuse for element-wise chains** (:func:`elementwise_traffic`). A chain of
``k`` element-wise ops runs over a tensor of E elements; op ``i`` takes the running result and
``arity_i - 1`` further input tensors of E elements (``mul`` / ``add``: one, ``exp``: none; see
:data:`ARITY`). Without reuse (``baseline``) every op reads its operands from external memory
and writes its result back (a round trip per op)::

    read   sum(arity_i) * E        written   k * E

With reuse (``optimized``) the intermediates stay in a scratchpad of ``S`` bytes: the tensor
is processed in tiles, each tile's running result is loaded once, updated in place by every
op (each op's extra operand tile loaded beside it) and written once::

    read   (1 + sum(arity_i - 1)) * E    written   E

The working set of a tile is the running result plus the largest op's extra operands, ``(1 +
max(arity_i - 1))`` tiles, so a tile holds ``S // (element_bytes * (1 + max(arity_i - 1)))``
elements (at most E); a scratchpad that cannot hold one element of each is rejected.
Every op saves ``2 * E`` element transfers, so more ops always save more bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["ARITY", "MAMBA_CHAIN", "element_bytes", "linear_traffic", "elementwise_traffic",
           "chain"]

#: Operands of each element-wise op (the running result counts as one).
ARITY = {"mul": 2, "add": 2, "sub": 2, "max": 2, "exp": 1, "silu": 1, "gelu": 1,
         "softplus": 1, "neg": 1}

#: The Mamba-style chain (as in a selective-scan step): multiply, add, exp, multiply.
MAMBA_CHAIN = ("mul", "add", "exp", "mul")

MAX_ARRAY_SIDE = 256  # as golden.pe_array.PEArrayConfig's rows and cols


def _integer(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        bounds = f"in {lo}..{hi}" if hi is not None else f"at least {lo}"
        raise ValueError(f"{name} must be {bounds}, got {value}")
    return int(value)


def element_bytes(bits: int) -> int:
    """Bytes one byte-aligned element of ``bits`` (1..64) bits takes: ``ceil(bits / 8)``."""
    return -(-_integer("bits", bits, 1, 64) // 8)


def _compare(optimized: tuple[int, int], baseline: tuple[int, int]) -> dict:
    """The common result: both traffic figures, the ratio and the savings."""
    def side(read: int, written: int) -> dict:
        return {"bytes_read": read, "bytes_written": written, "bytes_total": read + written}

    opt, base = side(*optimized), side(*baseline)
    saved = base["bytes_total"] - opt["bytes_total"]
    return {"optimized": opt, "baseline": base,
            "ratio": base["bytes_total"] / opt["bytes_total"],
            "saved_bytes": saved, "saved_fraction": saved / base["bytes_total"]}


def linear_traffic(m: int, k: int, n: int = 1, *, rows: int, cols: int, in_bits: int = 16,
                   weight_bits: int | None = None, out_bits: int = 32) -> dict:
    """External-memory traffic of ``w (M, K) @ x (K, N)`` on a ``rows x cols`` PE array, with
    the ``x`` chunk broadcast to all rows (input sharing) versus fetched by each row.

    Parameters
    ----------
    m, k, n : int
        M, K, N (>= 1); ``n = 1`` is a GEMV.
    rows, cols : int
        PE array shape, 1..256 each.
    in_bits : int
        Width of an ``x`` element, 1..64.
    weight_bits : int, optional
        Width of a weight; default ``in_bits``.
    out_bits : int
        Width of a written result (the accumulator), 1..64.

    Returns
    -------
    dict
        The common result (module docstring: ``optimized`` = shared, ``baseline`` = one copy
        per row), and ``transactions``, ``row_blocks``, ``chunks``, ``x_bytes_read``
        (``{"optimized", "baseline"}``), ``weight_bytes_read``, ``x_ratio``.
    """
    m, k, n = (_integer(name, v, 1) for name, v in (("M", m), ("K", k), ("N", n)))
    rows = _integer("rows", rows, 1, MAX_ARRAY_SIDE)
    cols = _integer("cols", cols, 1, MAX_ARRAY_SIDE)
    x_b = element_bytes(in_bits)
    w_b = element_bytes(in_bits if weight_bits is None else weight_bits)
    o_b = element_bytes(out_bits)
    row_blocks, chunks = math.ceil(m / rows), math.ceil(k / cols)
    # Per column of x and per K chunk: every row block fetches the chunk once (shared) or
    # once per active row (its own copy); the active rows over all blocks are M.
    x_shared = n * row_blocks * k * x_b
    x_private = n * m * k * x_b
    weights = n * m * k * w_b
    written = m * n * o_b
    result = _compare((weights + x_shared, written), (weights + x_private, written))
    result.update({
        "transactions": n * row_blocks * chunks,
        "row_blocks": row_blocks,
        "chunks": chunks,
        "x_bytes_read": {"optimized": x_shared, "baseline": x_private},
        "weight_bytes_read": weights,
        "x_ratio": x_private / x_shared,
    })
    return result


def _arities(ops: Sequence) -> list[int]:
    if isinstance(ops, str) or not isinstance(ops, Sequence) or not ops:
        raise ValueError(f"ops must be a non-empty sequence of op names ({', '.join(ARITY)}) "
                         f"or arities, got {ops!r}")
    arities = []
    for op in ops:
        if isinstance(op, str):
            if op not in ARITY:
                raise ValueError(f"unknown element-wise op {op!r}; known: {', '.join(ARITY)}")
            arities.append(ARITY[op])
        else:
            arities.append(_integer("an op's arity", op, 1, 8))
    return arities


def elementwise_traffic(elements: int, ops: Sequence = MAMBA_CHAIN, *, data_bits: int = 16,
                        scratchpad_bytes: int = 32 * 1024) -> dict:
    """External-memory traffic of a chain of element-wise ops over ``elements`` elements, with
    the intermediates kept in a scratchpad (tiled) versus a round trip after every op.

    Parameters
    ----------
    elements : int
        Tensor size E (>= 1).
    ops : sequence of str or int
        The chain, first op first: names from :data:`ARITY` or arities (1..8).
    data_bits : int
        Width of every tensor element (inputs, intermediates, result), 1..64.
    scratchpad_bytes : int
        Scratchpad size S (>= 1).

    Returns
    -------
    dict
        The common result (module docstring: ``optimized`` = scratchpad reuse, ``baseline`` =
        round trips), and ``ops`` (the arities), ``tile_elements``, ``tiles`` and
        ``working_set_bytes`` (of one tile).
    """
    elements = _integer("elements", elements, 1)
    arities = _arities(ops)
    size = element_bytes(data_bits)
    scratchpad_bytes = _integer("scratchpad_bytes", scratchpad_bytes, 1)
    live = 1 + max(a - 1 for a in arities)  # running result + the largest op's extra operands
    tile = min(scratchpad_bytes // (size * live), elements)
    if tile < 1:
        raise ValueError(f"a scratchpad of {scratchpad_bytes} bytes cannot hold one element of "
                         f"each of the {live} live tensors ({live * size} bytes needed)")
    tensor = elements * size
    extra_inputs = sum(a - 1 for a in arities)
    result = _compare(((1 + extra_inputs) * tensor, tensor),
                      (sum(arities) * tensor, len(arities) * tensor))
    result.update({
        "ops": arities,
        "tile_elements": tile,
        "tiles": math.ceil(elements / tile),
        "working_set_bytes": tile * size * live,
    })
    return result


def chain(length: int) -> tuple[str, ...]:
    """A Mamba-style chain of ``length`` ops: :data:`MAMBA_CHAIN` repeated and cut."""
    length = _integer("length", length, 1)
    return tuple(MAMBA_CHAIN[i % len(MAMBA_CHAIN)] for i in range(length))
