"""The streaming bench: PE utilization, DMA overlap and DRAM traffic of real-sized layers.

Layers (random weights; the cycle model does not depend on their values):

- a Mamba-130m-sized block (d_model 768, d_inner 1536, d_state 16, seq_len 64);
- a MiniLM-sized MLP (384 -> 1536 -> 384, GELU, seq_len 64).

Each is compiled for the 8x8 array with the default scratchpad (4096 lines) and timed by the
golden cycle model (:func:`golden.accelerator_cycles.program_cycles`) on the decoupled machine,
with the serial machine beside it. DRAM bytes are :meth:`gen.compiler.Program.dram_bytes` of the
token-batched plan (each weight tile serves every token of a block) and of the unbatched plan
(``token_block=1``: the weights cross the DRAM port once per token).
"""

from __future__ import annotations

import numpy as np

from golden.accelerator import AcceleratorConfig
from golden.accelerator_cycles import program_cycles

from .provenance import measured_with

__all__ = ["STREAMING_CONFIG", "streaming_layers", "streaming_bench"]

#: The array the targets are measured on (program memory large enough for the whole block).
STREAMING_CONFIG = dict(rows=8, cols=8, max_program=65535, decoupled=True)


def streaming_layers(config: AcceleratorConfig, *, mamba=(768, 1536, 16, 64),
                     mlp=(384, 1536, 64), seed: int = 0, **options) -> dict:
    """``{name: (program, description)}`` of the bench's layers compiled for ``config``
    (``options``: the builder's ``weight_region`` / ``token_block``)."""
    from ..compiler import (
        MambaDims,
        MLPDims,
        compile_mamba_block,
        compile_mlp,
        quantize_mamba_weights,
        random_mamba_weights,
    )

    rng = np.random.default_rng(seed)
    dims = MambaDims(*mamba)
    wq = quantize_mamba_weights(random_mamba_weights(dims, rng), config=config)
    d, f, t = mlp
    w1 = rng.integers(-2048, 2048, (f, d))
    w2 = rng.integers(-2048, 2048, (d, f))
    return {
        "mamba": (compile_mamba_block(dims, wq, config, **options),
                  f"Mamba block d_model {dims.d_model}, d_inner {dims.d_inner}, d_state "
                  f"{dims.d_state}, seq_len {dims.seq_len}"),
        "mlp": (compile_mlp(MLPDims(d, f, t), w1, w2, (11, 11), config, **options),
                f"MLP {d} -> {f} -> {d} (GELU), seq_len {t}"),
    }


def streaming_bench(*, mamba=(768, 1536, 16, 64), mlp=(384, 1536, 64),
                    on_step=None) -> dict:
    """Measure the streaming targets; returns the bench section (JSON-ready)."""
    config = AcceleratorConfig(**STREAMING_CONFIG)
    serial_config = AcceleratorConfig(**{**STREAMING_CONFIG, "decoupled": False})
    batched = streaming_layers(config, mamba=mamba, mlp=mlp)
    unbatched = streaming_layers(config, mamba=mamba, mlp=mlp, token_block=1)
    rows = []
    for name, (prog, label) in batched.items():
        if on_step:
            on_step(f"streaming: {label}")
        report = program_cycles(config, prog.instructions, prog.phases)
        serial = program_cycles(serial_config, prog.instructions, prog.phases)
        flat = unbatched[name][0]
        rows.append({
            "layer": name, "description": label, "instructions": len(prog.instructions),
            "cycles": report.cycles, "pe_utilization": report.utilization,
            "serial_cycles": serial.cycles, "serial_pe_utilization": serial.utilization,
            "dma_cycles": report.total.dma_cycles,
            "dma_overlap": report.total.dma_overlap,
            "dram_bytes": prog.dram_bytes(), "dram_bytes_unbatched": flat.dram_bytes(),
            "unbatched_cycles": program_cycles(config, flat.instructions,
                                               flat.phases).cycles,
            "spad_lines": prog.spad_lines,
            "phases": [{"phase": p.name, "instructions": p.instructions, "cycles": p.cycles,
                        "pe_utilization": p.utilization, "dma_cycles": p.dma_cycles,
                        "dma_overlap": p.dma_overlap if p.dma_cycles else None}
                       for p in report.phases.values()],
            "table": report.table(),
        })
    return {"method": "golden cycle model (decoupled load/compute/store engines under the "
                      "interlock) of the compiled, streamed programs; DRAM bytes from their DMA "
                      "instructions, batched plan and token_block=1",
            "config": {k: getattr(config, k) for k in ("rows", "cols", "depth", "decoupled",
                                                       "dma_latency", "issue_cycles")},
            "target_pe_utilization": 0.85, "rows": rows, **measured_with([])}


def markdown(data: dict) -> list[str]:
    """The bench report's table for this section."""
    out = ["**Streaming** (golden cycle model, 8x8 array, decoupled engines; weights streamed "
           "from DRAM through ping-pong regions; DRAM bytes read + written)", "",
           "| layer | cycles | PE utilization | serial machine | DMA hidden | DRAM MB batched "
           "| DRAM MB unbatched |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in data["rows"]:
        out.append(f"| {r['description']} | {r['cycles']} | {r['pe_utilization']:.1%} | "
                   f"{r['serial_pe_utilization']:.1%} | {r['dma_overlap']:.1%} | "
                   f"{r['dram_bytes']['total'] / 1e6:.2f} | "
                   f"{r['dram_bytes_unbatched']['total'] / 1e6:.2f} |")
    out += ["", "Per phase (PE utilization; DMA hidden = DMA busy cycles with the PE array at "
            "work):", ""]
    for r in data["rows"]:
        out.append(f"- {r['description']}: " + ", ".join(
            f"{p['phase']} {p['pe_utilization']:.0%}"
            + (f" (DMA {p['dma_overlap']:.0%} hidden)" if p["dma_overlap"] is not None else "")
            for p in r["phases"] if p["cycles"]))
    return out
