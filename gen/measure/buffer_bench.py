"""Benchmark of MARCA's buffer management: external-memory traffic with and without it.

Every figure comes from the traffic model in ``golden.memory.buffer_management`` (its module
docstring defines what is counted): input sharing for GEMV / GEMM tiled onto the PE array as
``golden.pe_array.gemm_schedule`` does, and scratchpad reuse of intermediates across chains
of element-wise ops. The report is a JSON file and one PNG bar chart.
"""

from __future__ import annotations

import json
from pathlib import Path

from golden.memory.buffer_management import chain, elementwise_traffic, linear_traffic
from golden.memory.scratchpad import ScratchpadConfig, conflict_rate, strided_addresses

from ..emit import atomic_write, tool_versions
from .figures import pyplot, save_figure

__all__ = ["LINEAR_CASES", "CHAIN_LENGTHS", "buffer_report", "write_buffer_report"]

# Report key -> linear_traffic arguments: GEMV 256x256 and GEMM 64x64x64 on an 8x8 array,
# 16-bit operands, 32-bit results.
LINEAR_CASES = {
    "GEMV 256x256, 8x8 array": dict(m=256, k=256, n=1, rows=8, cols=8, in_bits=16,
                                    out_bits=32),
    "GEMM 64x64x64, 8x8 array": dict(m=64, k=64, n=64, rows=8, cols=8, in_bits=16,
                                     out_bits=32),
}

CHAIN_LENGTHS = (2, 3, 4, 5, 6)
CHAIN_ELEMENTS = 64 * 1024
CHAIN_BITS = 16
SCRATCHPAD_BYTES = 32 * 1024


def buffer_report() -> dict:
    """The report's data (JSON-ready): the cases, their traffic, and tool versions."""
    linear = {name: {"parameters": args, **linear_traffic(**args)}
              for name, args in LINEAR_CASES.items()}
    elementwise = {}
    for length in CHAIN_LENGTHS:
        ops = chain(length)
        elementwise[f"{length} ops: {', '.join(ops)}"] = {
            "parameters": {"elements": CHAIN_ELEMENTS, "ops": list(ops),
                           "data_bits": CHAIN_BITS, "scratchpad_bytes": SCRATCHPAD_BYTES},
            **elementwise_traffic(CHAIN_ELEMENTS, ops, data_bits=CHAIN_BITS,
                                  scratchpad_bytes=SCRATCHPAD_BYTES)}
    return {
        "definitions": {
            "optimized / baseline": "external-memory bytes with / without the technique",
            "ratio": "baseline bytes_total / optimized bytes_total (traffic reduction factor)",
            "linear": "input sharing: one fetched x chunk broadcast to every PE row, versus "
                      "each active row fetching its own copy; tiled as "
                      "golden.pe_array.gemm_schedule, operands fetched per transaction",
            "elementwise": "inter-operation reuse: intermediates kept in the scratchpad "
                           "(tiled so one tile's working set fits), versus a round trip to "
                           "external memory after every op",
            "element size": "ceil(bits / 8) bytes",
        },
        "linear": linear,
        "elementwise": elementwise,
        "tools": tool_versions(),
    }


def _plot(data: dict, path: Path) -> None:
    plt = pyplot()
    import numpy as np

    panels = [("input sharing (linear ops)", data["linear"], lambda k: k.replace(", ", "\n")),
              ("inter-op reuse (element-wise chains, 64k x 16-bit, 32 KiB scratchpad)",
               data["elementwise"], lambda k: k.split(":")[0])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 5]})
    for ax, (title, cases, label) in zip(axes, panels):
        x = np.arange(len(cases))
        base = [c["baseline"]["bytes_total"] / 1024 for c in cases.values()]
        opt = [c["optimized"]["bytes_total"] / 1024 for c in cases.values()]
        ax.bar(x - 0.2, base, 0.4, label="baseline")
        bars = ax.bar(x + 0.2, opt, 0.4, label="with buffer management")
        for bar, case in zip(bars, cases.values()):
            ax.annotate(f"{case['ratio']:.2f}x", (bar.get_x() + bar.get_width() / 2,
                                                  bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, [label(k) for k in cases], fontsize=8)
        ax.set_ylabel("external-memory traffic (KiB)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.set_ylim(0, max(base) * 1.2)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, path)


def conflict_table(banks: int = 4, length: int = 1024) -> dict:
    """Scratchpad bank-conflict rate of strided vector reads (strides 1, 2, N, N+1), both
    interleavings, 2 and 4 ports: the fraction of cycles in which a port stalled. From the
    golden arbitration schedule, which the hardware's accept cycles match exactly in
    tests/test_scratchpad.py."""
    table = {}
    for interleave in ("low-order", "xor"):
        for ports in (2, 4):
            config = ScratchpadConfig(banks=banks, ports=ports, interleave=interleave)
            table[f"{interleave}, {banks} banks, {ports} ports"] = {
                f"stride {stride}": conflict_rate(config,
                                                  strided_addresses(config, stride, length))
                for stride in (1, 2, banks, banks + 1)}
    return table


def write_buffer_report(out_dir: str | Path) -> list[Path]:
    """Write ``buffer_management.json`` and ``buffer_management.png`` into ``out_dir``;
    return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**buffer_report(), "scratchpad_conflict_rate": conflict_table()}
    paths = [out_dir / "buffer_management.json", out_dir / "buffer_management.png"]
    atomic_write(paths[0], json.dumps(data, indent=2) + "\n")
    _plot(data, paths[1])
    return paths
