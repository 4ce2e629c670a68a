"""Functional coverage of the PE array's runs, with cocotb-coverage.

:func:`pe_array_coverage` samples a finished Verilator run (the input transactions, the output
words the RTL produced, and the stall runs the bench saw, from
``sim.runner.run_stream_test(..., stalls="bursty", report=...)``) into cocotb-coverage bins:

- ``op``, ``mode`` and their cross: every built op in both modes;
- ``shift_past_width``: shl/shr amounts beyond the width (the saturating and rounding ends);
- ``valid_gap`` and ``ready_stall``: input gaps and output stalls of 1, 2-3, 4-8 and 9 or more
  cycles;
- ``corner``: a PE result at the output range's maximum and minimum, an accumulator at its
  saturation maximum and minimum.

Sampling after the run rather than inside the cocotb process keeps the testbench generic; the
values sampled are the ones the RTL produced (every one also checked against the golden model).
:func:`coverage_report` turns the database into JSON with every bin's hits and the missed bins.
"""

from __future__ import annotations

import itertools

import numpy as np
from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from golden.fixed_point import int_range
from golden.pe import Op
from golden.pe_array import Mode, PEArrayConfig

from .payload import PayloadCodec

__all__ = ["RUN_BINS", "run_bin", "pe_array_coverage", "coverage_report"]

#: Stall-run length bins: (label, shortest, longest).
RUN_BINS = (("1", 1, 1), ("2-3", 2, 3), ("4-8", 4, 8), ("9+", 9, None))

_serial = itertools.count()


def run_bin(length: int) -> str:
    """The bin label of a stall run of ``length`` cycles."""
    return next(label for label, lo, hi in RUN_BINS if length >= lo and (hi is None
                                                                       or length <= hi))


def pe_array_coverage(config: PEArrayConfig, inputs: dict, out_codec: PayloadCodec,
                      report: dict) -> str:
    """Sample one run into a fresh coverage group; return the group's name."""
    group = f"pe_array_{next(_serial)}"
    ops = [op.name.lower() for op in config.op_codes]
    modes = [m.name.lower() for m in Mode]
    corners = ["elem max", "elem min", "acc max", "acc min"]

    @CoverPoint(f"{group}.op", xf=lambda op, mode: Op(op).name.lower(), bins=ops)
    @CoverPoint(f"{group}.mode", xf=lambda op, mode: Mode(mode).name.lower(), bins=modes)
    @CoverCross(f"{group}.op_x_mode", items=[f"{group}.op", f"{group}.mode"])
    def transaction(op, mode):
        pass

    @CoverPoint(f"{group}.shift_past_width", bins=["shl", "shr"])
    def shift(kind):
        pass

    @CoverPoint(f"{group}.valid_gap", bins=[b[0] for b in RUN_BINS])
    def valid_gap(label):
        pass

    @CoverPoint(f"{group}.ready_stall", bins=[b[0] for b in RUN_BINS])
    def ready_stall(label):
        pass

    @CoverPoint(f"{group}.corner", bins=corners)
    def corner(name):
        pass

    for op, mode in zip(inputs["op"], inputs["mode"], strict=True):
        transaction(int(op), int(mode))
    for op, b in zip(inputs["op"], np.asarray(inputs["b"]).reshape(len(inputs["op"]), -1),
                     strict=True):
        if op == Op.SHL and b.max() >= config.output_width:
            shift("shl")
        if op == Op.SHR and b.max() > config.in_width:
            shift("shr")
    for length in report["stall_runs"]["valid_gaps"]:
        valid_gap(run_bin(length))
    for length in report["stall_runs"]["ready_stalls"]:
        ready_stall(run_bin(length))

    out = out_codec.decode([int(w, 16) for w in report["out_words"]])
    elem_lo, elem_hi = config.output_range
    acc_lo, acc_hi = int_range(config.accumulator_width, config.signed)
    elementwise = out["mode"] == Mode.ELEMENTWISE
    linear_last = (out["mode"] == Mode.LINEAR) & (out["last"] == 1)
    for hit, name in ((out["elem"][elementwise] == elem_hi, "elem max"),
                      (out["elem"][elementwise] == elem_lo, "elem min"),
                      (out["acc"][linear_last] == acc_hi, "acc max"),
                      (out["acc"][linear_last] == acc_lo, "acc min")):
        for _ in range(int(np.count_nonzero(hit))):
            corner(name)
    return group


def coverage_report(group: str) -> dict:
    """Every coverage point of ``group``: bins with hit counts, coverage, missed bins."""
    points = {}
    for name, item in coverage_db.items():
        if not name.startswith(group + ".") or name.count(".") != 1:
            continue
        bins = {(" x ".join(k) if isinstance(k, tuple) else str(k)): int(v)
                for k, v in item.detailed_coverage.items()}
        points[name.split(".", 1)[1]] = {
            "bins": bins, "hit": item.coverage, "size": item.size,
            "missed": [k for k, v in bins.items() if v == 0]}
    return {"points": points,
            "bins": sum(p["size"] for p in points.values()),
            "bins_hit": sum(p["hit"] for p in points.values()),
            "complete": all(not p["missed"] for p in points.values())}
