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

__all__ = ["STREAMING_CONFIG", "RTL_CONFIG", "streaming_layers", "rtl_streaming", "streaming_bench"]

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


#: The RTL row: a streamed MLP on the default suite's small accelerator (2x4, 512 lines; W1
#: of 1024 lines streams through its ping-pong regions), Verilator, zero wait states.
RTL_CONFIG = dict(rows=2, cols=4, depth=512, max_program=512, dma_latency=5)


def rtl_streaming(mlp=(128, 32, 2), *, seed: int = 0) -> dict:
    """Run a streamed MLP on the decoupled RTL (Verilator, the fast DRAM model, no wait
    states) and on the golden machine: measured and modelled cycles, bit-exactness."""
    from ..compiler import MLPDims, compile_mlp
    from ..runtime import Accelerator

    config = AcceleratorConfig(**RTL_CONFIG)
    d, f, t = mlp
    rng = np.random.default_rng(seed)
    w1, w2 = rng.integers(-2048, 2048, (f, d)), rng.integers(-2048, 2048, (d, f))
    prog = compile_mlp(MLPDims(d, f, t), w1, w2, (12, 12), config)
    x = rng.normal(0, 1, (t, d))
    acc = Accelerator(config)
    golden = acc.run(prog, x)
    rtl = acc.run(prog, x, backend="verilator")
    return {"layer": f"MLP {d} -> {f} -> {d} (GELU), seq_len {t}",
            "array": f"{config.rows}x{config.cols}", "depth": config.depth,
            "decoupled": config.decoupled, "instructions": len(prog.instructions),
            "measured_cycles": rtl.measured_cycles, "model_cycles": golden.cycles.cycles,
            "bit_exact": bool(np.array_equal(rtl.output_q, golden.output_q)),
            "dram_bytes": prog.dram_bytes()["total"]}


def streaming_bench(*, mamba=(768, 1536, 16, 64), mlp=(384, 1536, 64),
                    rtl_mlp=(128, 32, 2), on_step=None) -> dict:
    """Measure the streaming targets; returns the bench section (JSON-ready). ``rtl_mlp``
    (``None``: skipped) is the layer run on the RTL (:func:`rtl_streaming`)."""
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
                      "interlock, the RTL's default machine; the tests hold the RTL to this model "
                      "within 2 % on every layer they run) of the compiled, streamed programs; "
                      "DRAM bytes from their DMA instructions, batched plan and token_block=1",
            "config": {k: getattr(config, k) for k in ("rows", "cols", "depth", "decoupled",
                                                       "dma_latency", "issue_cycles")},
            "target_pe_utilization": 0.85, "rows": rows,
            "rtl": [] if rtl_mlp is None else [rtl_streaming(rtl_mlp)],
            **measured_with(["verilator"] if rtl_mlp is not None else [])}


def markdown(data: dict) -> list[str]:
    """The bench report's table for this section."""
    out = ["**Streaming** (golden cycle model, 8x8 array, decoupled engines as the RTL builds "
           "them by default; weights streamed from DRAM through ping-pong regions; DRAM bytes "
           "read + written)", "",
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
    for r in data.get("rtl", []):
        out += ["", f"RTL (Verilator, {r['array']} array, {r['depth']} lines, decoupled="
                f"{r['decoupled']}, no wait states): {r['layer']}, {r['instructions']} "
                f"instructions: {r['measured_cycles']} cycles measured, {r['model_cycles']} "
                f"modelled ({r['measured_cycles'] / r['model_cycles'] - 1:+.2%}), "
                f"{'bit-exact' if r['bit_exact'] else 'NOT bit-exact'} against the golden "
                f"machine."]
    return out
