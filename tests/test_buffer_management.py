"""MARCA buffer management traffic model: hand-computed cases, the linear model against the
PE array's own schedule, monotonicity of the element-wise savings, parameter checks and the
benchmark report."""

import json

import numpy as np
import pytest

from gen.measure.buffer_bench import CHAIN_LENGTHS, LINEAR_CASES, write_buffer_report
from golden.memory.buffer_management import (
    ARITY,
    MAMBA_CHAIN,
    chain,
    element_bytes,
    elementwise_traffic,
    linear_traffic,
)
from golden.pe_array import PEArrayConfig, gemm_schedule

# --- linear ops: input sharing ---------------------------------------------------------------


def test_linear_hand_computed_small_case():
    # w 5x4, x 4x1 on a 2x3 array: 3 row blocks (the last one half padding) x 2 K chunks.
    r = linear_traffic(5, 4, 1, rows=2, cols=3, in_bits=8, out_bits=32)
    assert (r["transactions"], r["row_blocks"], r["chunks"]) == (6, 3, 2)
    assert r["weight_bytes_read"] == 20                      # every weight once
    assert r["x_bytes_read"] == {"optimized": 12, "baseline": 20}  # 3 blocks x 4 / 5 rows x 4
    assert r["optimized"] == {"bytes_read": 32, "bytes_written": 20, "bytes_total": 52}
    assert r["baseline"] == {"bytes_read": 40, "bytes_written": 20, "bytes_total": 60}
    assert r["ratio"] == 60 / 52 and r["x_ratio"] == 20 / 12
    assert r["saved_bytes"] == 8 and r["saved_fraction"] == 8 / 60


def test_linear_benchmark_shapes_by_hand():
    # GEMV 256x256, 8x8, 16-bit: x fetched once per row block (32 x 256 x 2 B) instead of once
    # per row (256 x 256 x 2 B); weights 256 x 256 x 2 B; 256 results x 4 B.
    r = linear_traffic(256, 256, 1, rows=8, cols=8, in_bits=16, out_bits=32)
    assert r["x_bytes_read"] == {"optimized": 16384, "baseline": 131072}
    assert r["optimized"]["bytes_total"] == 131072 + 16384 + 1024
    assert r["baseline"]["bytes_total"] == 131072 + 131072 + 1024
    assert r["x_ratio"] == 8  # = rows, as M is a multiple of rows
    # GEMM 64x64x64: the schedule streams the weights again for every column of x.
    r = linear_traffic(64, 64, 64, rows=8, cols=8, in_bits=16, out_bits=32)
    assert r["weight_bytes_read"] == 64 ** 3 * 2 and r["x_bytes_read"]["optimized"] == 65536
    assert r["optimized"]["bytes_written"] == r["baseline"]["bytes_written"] == 64 * 64 * 4


@pytest.mark.parametrize("rows,cols,m,k,n", [(1, 1, 3, 4, 2), (2, 3, 5, 4, 1), (3, 5, 7, 13, 3),
                                             (4, 16, 9, 40, 2), (8, 8, 8, 8, 4)])
def test_linear_counts_match_the_pe_array_schedule(rows, cols, m, k, n):
    """Count the fetched elements in golden.pe_array.gemm_schedule itself (all-ones operands,
    so padding shows as zeros): weights and x per active row, x once per transaction."""
    schedule = gemm_schedule(PEArrayConfig(rows=rows, cols=cols, in_width=8),
                             np.ones((m, k), dtype=np.int64), np.ones((k, n), dtype=np.int64))
    active = (schedule["a"] != 0).any(axis=2)  # (T, rows): rows holding real weights
    weights = int((schedule["a"] != 0).sum())
    x_shared = int((schedule["b"][:, 0, :] != 0).sum())  # one chunk per transaction
    x_private = int(((schedule["b"] != 0) & active[:, :, None]).sum())
    r = linear_traffic(m, k, n, rows=rows, cols=cols, in_bits=8, out_bits=8)
    assert r["transactions"] == len(schedule["op"])
    assert r["weight_bytes_read"] == weights
    assert r["x_bytes_read"] == {"optimized": x_shared, "baseline": x_private}
    # One result per active row of every transaction that ends a dot product.
    assert r["optimized"]["bytes_written"] == int(active[schedule["last"] == 1].sum()) == m * n


def test_linear_sharing_never_hurts_and_one_row_gains_nothing():
    r = linear_traffic(37, 50, 3, rows=1, cols=4)
    assert r["ratio"] == 1.0 and r["saved_bytes"] == 0
    previous = 1.0
    for rows in (1, 2, 4, 8, 16, 32):  # more rows share each fetched chunk
        r = linear_traffic(64, 64, 1, rows=rows, cols=8)
        assert r["ratio"] > previous or rows == 1
        previous = r["ratio"]


# --- element-wise chains: inter-operation reuse ---------------------------------------------------


def test_elementwise_hand_computed_mamba_chain():
    # mul, add, exp, mul on 1000 16-bit elements: arities 2, 2, 1, 2.
    r = elementwise_traffic(1000, MAMBA_CHAIN, data_bits=16, scratchpad_bytes=32 * 1024)
    assert r["baseline"] == {"bytes_read": 7 * 2000, "bytes_written": 4 * 2000,
                             "bytes_total": 22000}
    # Read: the input and the three extra operands once; written: the final result once.
    assert r["optimized"] == {"bytes_read": 4 * 2000, "bytes_written": 2000,
                              "bytes_total": 10000}
    assert r["ratio"] == 2.2 and r["saved_bytes"] == 12000 and r["ops"] == [2, 2, 1, 2]
    assert (r["tile_elements"], r["tiles"]) == (1000, 1)  # it all fits


def test_elementwise_tiling_fits_the_scratchpad():
    # 64k 16-bit elements, 32 KiB: a binary op needs 2 live tiles -> 8192 elements, 8 tiles.
    r = elementwise_traffic(65536, ("mul", "add"), data_bits=16, scratchpad_bytes=32768)
    assert (r["tile_elements"], r["tiles"], r["working_set_bytes"]) == (8192, 8, 32768)
    r = elementwise_traffic(65536, ("exp", "silu"), data_bits=16, scratchpad_bytes=32768)
    assert (r["tile_elements"], r["tiles"]) == (16384, 4)  # unary: one live tile
    r = elementwise_traffic(1001, (3, 1), data_bits=12, scratchpad_bytes=100)
    assert r["tile_elements"] == 100 // (2 * 3) and r["working_set_bytes"] <= 100
    # Traffic does not depend on the scratchpad size once a tile fits.
    small = elementwise_traffic(4096, MAMBA_CHAIN, scratchpad_bytes=4)
    large = elementwise_traffic(4096, MAMBA_CHAIN, scratchpad_bytes=1 << 20)
    assert small["tiles"] == 4096 and large["tiles"] == 1
    assert small["optimized"] == large["optimized"] and small["ratio"] == large["ratio"]


def test_more_ops_save_more(rng):
    # Every op saves one read and one write of the tensor; the Mamba chain's ratio grows.
    elements, size = 65536, element_bytes(16)
    results = [elementwise_traffic(elements, chain(length)) for length in range(1, 9)]
    saved = [r["saved_bytes"] for r in results]
    assert saved[0] == 0 and np.all(np.diff(saved) == 2 * elements * size)
    assert np.all(np.diff([r["ratio"] for r in results]) > 0)
    assert [round(r["ratio"], 3) for r in results[1:6]] == [1.5, 2.0, 2.2, 2.333, 2.429]
    # Any chain: appending any op saves more bytes.
    for _ in range(50):
        ops = list(rng.choice(list(ARITY), rng.integers(1, 7)))
        before = elementwise_traffic(1000, ops, data_bits=8)["saved_bytes"]
        after = elementwise_traffic(1000, ops + [str(rng.choice(list(ARITY)))],
                                    data_bits=8)["saved_bytes"]
        assert after == before + 2000


def test_element_bytes_round_up():
    assert [element_bytes(b) for b in (1, 8, 9, 16, 17, 32, 64)] == [1, 1, 2, 2, 3, 4, 8]


@pytest.mark.parametrize("call,message", [
    (lambda: linear_traffic(0, 4, rows=2, cols=2), "M must be at least 1, got 0"),
    (lambda: linear_traffic(4, 4, 0, rows=2, cols=2), "N must be at least 1, got 0"),
    (lambda: linear_traffic(4, 4.0, rows=2, cols=2), "K must be an integer, got 4.0"),
    (lambda: linear_traffic(4, 4, rows=0, cols=2), "rows must be in 1..256, got 0"),
    (lambda: linear_traffic(4, 4, rows=2, cols=257), "cols must be in 1..256, got 257"),
    (lambda: linear_traffic(4, 4, rows=2, cols=2, in_bits=0), "bits must be in 1..64, got 0"),
    (lambda: linear_traffic(4, 4, rows=2, cols=2, out_bits=65), "bits must be in 1..64"),
    (lambda: elementwise_traffic(0), "elements must be at least 1, got 0"),
    (lambda: elementwise_traffic(8, ()), "ops must be a non-empty sequence"),
    (lambda: elementwise_traffic(8, "mul"), "ops must be a non-empty sequence"),
    (lambda: elementwise_traffic(8, ("mul", "tanh")), "unknown element-wise op 'tanh'"),
    (lambda: elementwise_traffic(8, (2, 0)), "an op's arity must be in 1..8, got 0"),
    (lambda: elementwise_traffic(8, data_bits=True), "bits must be an integer"),
    (lambda: elementwise_traffic(8, scratchpad_bytes=0), "scratchpad_bytes must be at least 1"),
    (lambda: elementwise_traffic(8, ("mul",), data_bits=16, scratchpad_bytes=3),
     r"a scratchpad of 3 bytes cannot hold one element of each of the 2 live tensors "
     r"\(4 bytes needed\)"),
    (lambda: chain(0), "length must be at least 1, got 0"),
])
def test_bad_parameters_raise_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- the benchmark report ----------------------------------------------------------------------


def test_report_is_written(tmp_path, measure):
    paths = write_buffer_report(tmp_path / "out")
    assert [p.name for p in paths] == ["buffer_management.json", "buffer_management.png"]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(paths[0].read_text())
    assert set(data) == {"definitions", "linear", "elementwise", "scratchpad_conflict_rate",
                         "tools"}
    conflicts = data["scratchpad_conflict_rate"]
    for ports in (2, 4):  # stride N hits one bank: 1 - 1/ports of cycles stall; XOR fixes it
        assert conflicts[f"low-order, 4 banks, {ports} ports"]["stride 4"] == 1 - 1 / ports
        assert conflicts[f"xor, 4 banks, {ports} ports"]["stride 4"] == 0
        assert conflicts[f"low-order, 4 banks, {ports} ports"]["stride 1"] == 0
    assert "numpy" in data["tools"] and "python" in data["tools"]
    assert list(data["linear"]) == list(LINEAR_CASES)
    for name, case in data["linear"].items():
        assert case["ratio"] == linear_traffic(**LINEAR_CASES[name])["ratio"] > 1
    chains = list(data["elementwise"].values())
    assert [len(c["parameters"]["ops"]) for c in chains] == list(CHAIN_LENGTHS)
    assert all(c["tile_elements"] == 8192 and c["tiles"] == 8 for c in chains)
    assert np.all(np.diff([c["ratio"] for c in chains]) > 0)
    measure("buffer management: " + "; ".join(
        f"{k}: {v['ratio']:.3f}x" for k, v in {**data["linear"], **data["elementwise"]}.items()))
