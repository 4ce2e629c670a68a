"""Streaming: weights through ping-pong regions, token batching, the interlock's dependency rule
in the cycle model, the builder's ``linear`` and its errors (the RTL half is in
tests/test_streaming_rtl.py)."""

import numpy as np
import pytest
from stimulus import int16

from gen.compiler import (
    MambaDims,
    MLPDims,
    compile_mamba_block,
    compile_mlp,
    quantize_mamba_weights,
    random_mamba_weights,
)
from gen.compiler.program import Rows, _Builder
from golden.accelerator import (
    AcceleratorConfig,
    NLUnit,
    Opcode,
    YLayout,
    access,
    check_instruction,
    conflicts,
    engine,
    pack,
    pack_vector,
    requantize,
    run_golden,
    tile_matrix,
    unpack,
)
from golden.accelerator_cycles import program_cycles
from golden.nonlinear.exp import exp
from golden.nonlinear.gelu import gelu
from golden.nonlinear.silu import silu

CONFIG = AcceleratorConfig(depth=512, decoupled=True)
R, C, L = CONFIG.rows, CONFIG.cols, CONFIG.line


def ins(opcode, **fields):
    return unpack(pack(opcode, **fields))


def _unit(config, unit, v):
    return {NLUnit.EXP: lambda: exp(config.exp_config, v),
            NLUnit.GELU: lambda: gelu(config.gelu_config, v),
            NLUnit.SILU: lambda: silu(config.silu_config, v)}[unit]()


def linear_program(config, m, k, tokens, shift, *, x_space, y_space, bias=None, epilogue=None,
                   rng, **options):
    """A program of one ``linear``: random int16 weights and inputs, DRAM in and out where
    asked, and the expected outputs from NumPy."""
    b = _Builder(config, "linear", None)
    w = int16(rng, (m, k)) // 4
    wm = b.matrix("w", w)
    x = int16(rng, (tokens, k))
    vx, vy = -(-k // config.line), -(-m // config.line)
    xseg = b.segment("x", tokens * vx, "rows", (tokens, k),
                     data=np.concatenate([pack_vector(config, row) for row in x]))
    bias_line = None
    if bias:
        bias_v = int16(rng, m) // 8
        bias_line = b.resident("bias", bias_v)
    if x_space == "spad":
        xr = Rows("spad", b.alloc("x", tokens * vx), vx)
        b.dma(Opcode.DMA_LOAD, xr.base, xseg.ext, xseg.lines)
    else:
        xr = Rows("dram", xseg.ext, vx)
    yr = b.rows("y", tokens, m, space=y_space)
    plan = b.linear(yr, xr, wm, tokens=tokens, shift=shift, bias=bias_line, epilogue=epilogue,
                    **options)
    if y_space == "spad":  # out through one DMA at the end
        yseg = b.segment("y_out", tokens * vy, "rows", (tokens, m))
        b.dma(Opcode.DMA_STORE, yr.base, yseg.ext, yseg.lines)
        yr = Rows("dram", yseg.ext, vy)
    prog = b.finish({})
    expected = requantize(config, x @ w.T, shift)
    if bias:
        expected = np.clip(expected + bias_v, -(1 << 15), (1 << 15) - 1)
    if epilogue is not None:
        expected = _unit(config, epilogue, expected)
    return prog, yr, expected, plan


def read_rows(config, dram, rows: Rows, tokens, n):
    flat = [dram[rows.line(t):rows.line(t) + -(-n // config.line)].reshape(-1)[:n]
            for t in range(tokens)]
    return np.stack(flat)


@pytest.mark.parametrize("m,k,tokens,x_space,y_space,options", [
    (40, 24, 5, "dram", "dram", {}),
    (40, 24, 5, "dram", "dram", {"weight_region": 3, "token_block": 2}),  # 1 row block a tile
    (33, 50, 3, "spad", "dram", {"weight_region": 14}),
    (70, 17, 4, "dram", "spad", {"token_block": 3}),
    (8, 96, 6, "spad", "spad", {"weight_region": 24, "token_block": 1}),
])
@pytest.mark.parametrize("extras", [{}, {"bias": True, "epilogue": NLUnit.SILU},
                                    {"epilogue": NLUnit.EXP}])
def test_linear_matches_numpy(m, k, tokens, x_space, y_space, options, extras, rng):
    prog, yr, expected, plan = linear_program(CONFIG, m, k, tokens, 9, x_space=x_space,
                                              y_space=y_space, rng=rng, **extras, **options)
    dram, stats = run_golden(CONFIG, prog.words, prog.image)
    assert stats.status.done, stats.status.message
    assert np.array_equal(read_rows(CONFIG, dram, yr, tokens, m), expected)
    if "weight_region" in options:
        assert plan["weight_region"] <= options["weight_region"]
    if "token_block" in options:
        assert plan["token_block"] == options["token_block"]
    # Padding past m stays zero in DRAM (a later GEMV or scan may read it).
    if y_space == "dram" and m % L and extras.get("epilogue") != NLUnit.EXP:
        lines = np.asarray(dram)[yr.base:yr.base + tokens * yr.stride]
        assert not lines.reshape(tokens, -1)[:, m:].any()


def test_token_batching_reads_each_weight_once_per_block(rng):
    dims = MLPDims(64, 128, 12)
    w1, w2 = int16(rng, (128, 64)) // 8, int16(rng, (64, 128)) // 8
    line_bytes = CONFIG.line_bits // 8
    weight_lines = 2 * len(tile_matrix(CONFIG, w1))
    act = {"x": 12 * 2, "hidden": 12 * 4}  # lines of x, of the hidden rows, of y (= x)
    outs = {}
    for block in (12, 5, 1):
        prog = compile_mlp(dims, w1, w2, (8, 8), CONFIG, token_block=block)
        blocks = -(-12 // block)
        read = weight_lines * blocks + act["x"] + act["hidden"]
        write = act["hidden"] + act["x"]
        assert prog.dram_bytes() == {"read": read * line_bytes, "write": write * line_bytes,
                                     "total": (read + write) * line_bytes}
        dram, stats = run_golden(CONFIG, prog.words, prog.dram(int16(rng, (12, 64))))
        outs[block] = prog.output(dram)
    # The plan changes the traffic, never the result (same input: reseeded).
    assert outs[12].shape == (12, 64)


def test_every_plan_computes_the_same(rng):
    dims = MLPDims(48, 80, 7)
    w1, w2 = int16(rng, (80, 48)) // 8, int16(rng, (48, 80)) // 8
    x = int16(rng, (7, 48))
    results = []
    for options in ({}, {"token_block": 1}, {"token_block": 3, "weight_region": 12},
                    {"hidden": "spad"}):
        prog = compile_mlp(dims, w1, w2, (10, 9), CONFIG, **options)
        dram, stats = run_golden(CONFIG, prog.words, prog.dram(x))
        assert stats.status.done
        results.append(prog.output(dram))
    h = requantize(CONFIG, x @ w1.T, 10)
    expected = requantize(CONFIG, gelu(CONFIG.gelu_config, h) @ w2.T, 9)
    for out in results:
        assert np.array_equal(out, expected)


def test_untileable_layers_and_bad_options_raise(rng):
    dims = MLPDims(64, 128, 4)
    w1, w2 = int16(rng, (128, 64)), int16(rng, (64, 128))
    with pytest.raises(ValueError, match="cannot tile W w2 \\(64 x 128\\): one row block needs "
                                         "k / cols = 16 lines, more than the 8-line weight "
                                         "region \\(k must be at most 64\\)"):
        compile_mlp(dims, w1, w2, (8, 8), CONFIG, weight_region=8)
    with pytest.raises(ValueError, match="cannot tile W w1 \\(128 x 1024\\): one row block "
                                         "needs k / cols = 128 lines, more than the 8-line"):
        compile_mlp(MLPDims(1024, 128, 2), int16(rng, (128, 1024)), int16(rng, (1024, 128)),
                    (8, 8), AcceleratorConfig(depth=16))
    with pytest.raises(ValueError, match="24 lines of token rows and two 8-line weight tiles "
                                         "need more than the 32 free scratchpad lines"):
        compile_mlp(dims, w1, w2, (8, 8), AcceleratorConfig(depth=32), token_block=4)
    with pytest.raises(ValueError, match="token_block must be a positive integer or None, "
                                         "got 0"):
        compile_mlp(dims, w1, w2, (8, 8), CONFIG, token_block=0)
    with pytest.raises(ValueError, match="weight_region must be a positive integer or None"):
        compile_mlp(dims, w1, w2, (8, 8), CONFIG, weight_region=-3)
    with pytest.raises(ValueError, match="shape mismatch: w2 has shape \\(128, 64\\)"):
        compile_mlp(dims, w1, w1, (8, 8), CONFIG)
    with pytest.raises(ValueError, match="space must be 'dram' or 'spad', got 'hbm'"):
        Rows("hbm", 0, 1)


def test_gemv_dense_row_block_offset(rng):
    cfg = AcceleratorConfig(depth=64)
    from golden.accelerator import Machine
    mach = Machine(cfg)
    w, x = int16(rng, (9, 20)), int16(rng, 20)
    mach.spad[:len(tile_matrix(cfg, w))] = tile_matrix(cfg, w)
    mach.spad.reshape(-1)[40 * L:40 * L + 20] = x
    # rows go to elements ycol * R + i: row block 5 of the dense vector at line 50
    assert mach.execute(ins(Opcode.GEMV, y=50, w=0, x=40, m=9, k=20, shift=4, ycol=5)) is None
    flat = mach.spad.reshape(-1)
    start = 50 * L + 5 * R
    assert np.array_equal(flat[start:start + 9], requantize(cfg, w @ x, 4))
    assert not np.delete(flat[50 * L:53 * L], range(5 * R, 5 * R + 9)).any()
    bad = ins(Opcode.GEMV, y=50, w=0, x=40, m=9, k=20, ycol=C, ylayout=int(YLayout.DENSE))
    assert "ycol=8 must be below cols=8" in check_instruction(cfg, bad)[1]


# --- the dependency rule in the cycle model -------------------------------------------------------


def _check_schedule(config, instructions, schedule):
    """Engines run one instruction at a time, in order; a conflicting later instruction
    dispatches after the earlier one finished; dispatch is in program order."""
    last = {}
    accs = [access(config, i) for i in instructions]
    for j, (ins_j, (d, f)) in enumerate(zip(instructions, schedule)):
        assert f >= d
        if j:
            assert d >= schedule[j - 1][0]
        unit = engine(ins_j.opcode)
        if unit is None:
            assert d >= max(fin for _, fin in schedule[:j])
            continue
        if unit in last:
            assert d >= last[unit]
        last[unit] = f
        for i in range(j):
            if engine(instructions[i].opcode) not in (None, unit) and conflicts(accs[i],
                                                                                  accs[j]):
                assert d >= schedule[i][1], (i, j)


def test_cycle_model_obeys_the_dependency_rule(rng):
    dims = MambaDims(32, 64, 8, 6)
    prog = compile_mamba_block(dims, quantize_mamba_weights(random_mamba_weights(dims, rng)),
                               CONFIG)
    report = program_cycles(CONFIG, prog.instructions, prog.phases)
    _check_schedule(CONFIG, prog.instructions, report.schedule)
    serial = program_cycles(AcceleratorConfig(depth=512, decoupled=False), prog.instructions,
                            prog.phases)
    assert report.cycles < serial.cycles


def test_hazards_are_ordered_and_the_result_is_sequential(rng):
    """A program whose instructions depend on each other in every way: the golden machine
    runs it one by one; the decoupled schedule waits exactly where the rule says."""
    cfg = CONFIG
    dram = int16(rng, (64, L))
    program = [
        ins(Opcode.DMA_LOAD, line=0, ext=0, lines=8),                  # 0
        ins(Opcode.DMA_LOAD, line=8, ext=8, lines=8),                  # 1 independent of 0
        ins(Opcode.EW, op=1, dst=16, a=0, b=8, lines=8, tcols=1),      # 2 RAW on 0 and 1
        ins(Opcode.DMA_LOAD, line=0, ext=16, lines=8),                 # 3 WAR on 2's a
        ins(Opcode.DMA_STORE, line=16, ext=32, lines=8),               # 4 RAW on 2's dst
        ins(Opcode.DMA_LOAD, line=24, ext=32, lines=8),                # 5 RAW on DRAM (4)
        ins(Opcode.EW, op=0, dst=16, a=0, b=24, lines=8, tcols=1),     # 6 RAW 3, 5; WAR 4
        ins(Opcode.DMA_STORE, line=16, ext=40, lines=8),               # 7
        ins(Opcode.DMA_STORE, line=0, ext=40, lines=4),                # 8 WAW on DRAM (7)
        ins(Opcode.HALT),
    ]
    out, stats = run_golden(cfg, [p.word for p in program], dram)
    assert stats.status.done
    # The sequential meaning, step by step in NumPy.
    d = dram.astype(np.int64)
    s16 = requantize(cfg, d[0:8] + d[8:16], 0)
    d2 = d.copy()
    d2[32:40] = s16
    prod = requantize(cfg, d[16:24] * s16, 0)
    d2[40:48] = prod
    d2[40:44] = d[16:20]
    assert np.array_equal(out, d2)
    report = program_cycles(cfg, program)
    sch = report.schedule
    _check_schedule(cfg, program, sch)
    assert sch[1][0] == sch[0][1]          # one load engine: 1 waits for 0
    assert sch[2][0] == max(sch[0][1], sch[1][1])
    assert sch[3][0] == sch[2][1]          # WAR
    assert sch[5][0] >= sch[4][1]          # RAW through DRAM
    assert sch[8][0] >= sch[7][1]          # WAW in DRAM (the same engine, too)
    assert report.cycles == sch[-1][1]


def test_dma_overlap_on_a_streamed_layer(rng, measure):
    cfg = AcceleratorConfig(rows=8, cols=8, decoupled=True, max_program=65535)
    dims = MLPDims(128, 512, 16)
    w1, w2 = int16(rng, (512, 128)) // 8, int16(rng, (128, 512)) // 8
    prog = compile_mlp(dims, w1, w2, (10, 10), cfg, weight_region=256)
    report = program_cycles(cfg, prog.instructions, prog.phases)
    _check_schedule(cfg, prog.instructions, report.schedule)
    assert report.utilization > 0.85 and report.total.dma_overlap > 0.5
    measure(f"MLP 128->512->128 x16 on 8x8, 256-line weight regions: PE util "
            f"{report.utilization:.1%}, DMA hidden {report.total.dma_overlap:.1%}")


# --- the RTL: streamed layers under Verilator, bit-exact, with DRAM wait states ----------------


def _rtl_layer(config, dims, rng, measure, **options):
    from gen.runtime import Accelerator

    w1 = int16(rng, (dims.d_hidden, dims.d_model)) // 16
    w2 = int16(rng, (dims.d_model, dims.d_hidden)) // 16
    prog = compile_mlp(dims, w1, w2, (12, 12), config)
    x = rng.normal(0, 1, (dims.seq_len, dims.d_model))
    acc = Accelerator(config)
    golden = acc.run(prog, x)
    rtl = acc.run(prog, x, backend="verilator", seed=int(rng.integers(1 << 16)), **options)
    assert np.array_equal(rtl.output_q, golden.output_q)
    assert rtl.stats.status == golden.stats.status and rtl.stats.status.done
    model = golden.cycles
    measure(f"streamed MLP {dims} on the {config.rows}x{config.cols} RTL "
            f"(decoupled={config.decoupled}, {options}): {rtl.measured_cycles} cycles measured, "
            f"{model.cycles} modelled ({rtl.measured_cycles / model.cycles - 1:+.2%}), PE util "
            f"{model.utilization:.1%}, DRAM {prog.dram_bytes()['total']} bytes, "
            f"{len(prog.words)} instructions")
    return rtl.measured_cycles, model.cycles


def test_streamed_layer_on_the_rtl_bit_exact(rng, measure):
    # d_model 128 on the suite's small accelerator (2 x 4, 512 lines): W1 alone is 1024 lines,
    # so it streams through the ping-pong regions; random wait states on the DRAM channels.
    from test_accelerator import SMALL

    measured, model = _rtl_layer(SMALL, MLPDims(128, 64, 2), rng, measure, stall=0.3)
    assert measured >= model - 3
    measured, model = _rtl_layer(SMALL, MLPDims(128, 32, 2), rng, measure)
    assert abs(measured - model) <= 0.02 * model


@pytest.mark.slow
@pytest.mark.parametrize("dims", [MLPDims(256, 512, 4), MLPDims(384, 256, 8)])
def test_larger_streamed_layers_on_the_rtl(dims, rng, measure):
    from test_accelerator import HW_DMA_LATENCY

    config = AcceleratorConfig(dma_latency=HW_DMA_LATENCY, depth=1024)
    measured, model = _rtl_layer(config, dims, rng, measure)
    assert abs(measured - model) <= 0.02 * model
