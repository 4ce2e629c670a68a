"""Checks that run through a :class:`~boards.host.HostClient`, so the same check runs on a board
(serial port) and in simulation (cocotb UART link).

Each check drives seeded random work through the design, compares every output entry with the
golden model, measures cycles with the top's own counters and returns a JSON-ready dict.
``CHECKS`` maps generator names to their check.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from golden.fixed_point import QFormat, dequantize, quantize
from golden.pe import Op
from golden.pe_array import Mode, PEArrayConfig, gemm_reference, gemm_schedule, pe_array
from hw.pe_array import pe_array_layouts
from sim.payload import PayloadCodec

from .host import HostClient

__all__ = ["run_transactions", "check_pe_array", "CHECKS"]


def run_transactions(client: HostClient, in_codec: PayloadCodec, out_codec: PayloadCodec,
                     inputs: dict, emitted: np.ndarray, expected: dict) -> tuple[dict, list]:
    """Send a stream of input transactions in runs of at most the buffer depth and compare
    every output with ``expected`` (the golden model's outputs, ``emitted[j]`` the input that
    produced output ``j``). Returns counts, cycles and the first mismatch, if any, and the
    output words received."""
    words = in_codec.encode(inputs)
    expected_words = out_codec.encode(expected, count=len(emitted))
    depth = client.buffer.depth
    received, mismatches, first_mismatch = [], 0, None
    cycles = first_output = 0
    for start in range(0, len(words), depth):
        stop = min(start + depth, len(words))
        expect = int(np.count_nonzero((emitted >= start) & (emitted < stop)))
        run = client.run(words[start:stop], expect)
        if run.overflow or run.received != expect or run.sent != stop - start:
            raise AssertionError(f"run of inputs {start}..{stop - 1}: sent {run.sent}, "
                                 f"received {run.received} of {expect}, overflow {run.overflow}")
        cycles += run.cycles
        first_output = first_output or run.first_output
        received += run.outputs
    for j, (want, got) in enumerate(zip(expected_words, received)):
        if want != got:
            mismatches += 1
            if first_mismatch is None:
                first_mismatch = (f"output {j} (from input {int(emitted[j])}): "
                                  f"{out_codec.describe_difference(want, got)}")
    summary = {"inputs": len(words), "outputs": len(received), "mismatches": mismatches,
               "first_mismatch": first_mismatch, "bit_exact": mismatches == 0,
               "cycles": cycles, "first_output": first_output}
    return summary, received


def _concat(codec: PayloadCodec, *streams: dict) -> dict:
    """One stream of transactions from several (each field broadcast to its full shape)."""
    sizes = [len(np.asarray(s["last"]).reshape(-1)) for s in streams]
    return {f.name: np.concatenate([np.broadcast_to(np.asarray(s[f.name]), (n, *f.dims))
                                    for s, n in zip(streams, sizes)])
            for f in codec.fields}


def _slice(outputs: dict, emitted: np.ndarray, start: int, stop: int):
    keep = (emitted >= start) & (emitted < stop)
    return {k: v[keep] for k, v in outputs.items()}, emitted[keep] - start


def check_pe_array(client: HostClient, config: PEArrayConfig, *, seed: int = 0, m: int = 16,
                   k: int = 37, mixed: int = 48) -> dict:
    """GEMV ``y = W x`` (``W``: ``m x k`` uniform in [-1, 1) quantized to Q0.(in_width-1)),
    then ``mixed`` random transactions of every built op in both modes, on the PE array behind
    ``client``.

    The golden model runs over both parts as one stream from reset (the accumulators carry
    over between runs, as they do in the design). Returns per part: bit-exactness, cycles as
    the top counted them, latency; for the GEMV also MACs per cycle and the error against
    float64 ``W @ x``.
    """
    if not config.signed:
        raise ValueError("check_pe_array needs a signed array (its GEMV data is in [-1, 1))")
    rng = np.random.default_rng(seed)
    in_layout, out_layout = pe_array_layouts(config)
    in_codec, out_codec = PayloadCodec.from_shape(in_layout), PayloadCodec.from_shape(out_layout)
    client.check_design()

    fmt = QFormat(config.in_width, config.in_width - 1, config.signed)
    w_real, x_real = rng.uniform(-1, 1, (m, k)), rng.uniform(-1, 1, (k, 1))
    schedule = gemm_schedule(config, quantize(w_real, fmt), quantize(x_real, fmt))

    lo, hi = config.operand_range
    shape = (mixed, config.rows, config.cols)
    op = rng.choice(np.array([int(code) for code in config.op_codes]), mixed)
    shift = np.isin(op, [Op.SHL, Op.SHR])[:, None, None]
    stream = {
        "op": op, "mode": rng.choice([int(Mode.LINEAR), int(Mode.ELEMENTWISE)], mixed),
        "last": (rng.random(mixed) < 0.3).astype(np.int64),
        "a": rng.integers(lo, hi + 1, shape),
        "b": np.where(shift, rng.integers(0, config.output_width + 1, shape).clip(lo, hi),
                      rng.integers(lo, hi + 1, shape)),
        "c": rng.integers(lo, hi + 1, shape),
    }
    inputs = _concat(in_codec, schedule, stream)
    expected, emitted = pe_array(config, **inputs)
    split = len(inputs["last"]) - mixed
    results, received = {}, {}
    for name, start, stop in (("gemv", 0, split), ("mixed", split, split + mixed)):
        part = {key: value[start:stop] for key, value in inputs.items()}
        part_expected, part_emitted = _slice(expected, emitted, start, stop)
        results[name], received[name] = run_transactions(client, in_codec, out_codec, part,
                                                         part_emitted, part_expected)
    y_hw = out_codec.decode(received["gemv"])["acc"].reshape(-1)[:m]
    y = dequantize(y_hw, QFormat(64, 2 * fmt.frac))
    reference = gemm_reference(w_real, x_real)[:, 0]
    gemv = results["gemv"]
    gemv.update(m=m, k=k, macs_per_cycle=m * k / gemv["cycles"] if gemv["cycles"] else 0.0,
                max_abs_error=float(np.max(np.abs(y - reference))))
    return {**results, "bit_exact": all(r["bit_exact"] for r in results.values())}


#: generator name -> check(client, config, seed=...) for the designs that have one.
CHECKS: dict[str, Callable] = {"pe-array": check_pe_array}
