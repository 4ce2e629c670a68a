"""Compile a BERT-style sentence encoder (all-MiniLM-L6-v2) into ONE accelerator program.

What runs where
---------------
- Host: tokenization, the embedding lookup (word + position + token type: a table gather, no
  arithmetic beyond one sum), and at the end mean pooling over the real tokens and the L2
  normalisation (as the issue allows).
- Accelerator, one program for the whole encoder: the embedding LayerNorm, then per layer the
  Q/K/V projections, 12 attention heads (scores, the padding mask, softmax, context) sharing
  the softmax unit, the output projection, bias and residual adds, both LayerNorms (opcode
  ``LAYERNORM``), the FFN with exact-erf GELU (the GELU unit), and the final LayerNorm
  affine. Weights live in DRAM and are DMA'd into the scratchpad layer by layer.

Rewrites (exact in real arithmetic; :func:`folded_forward` checks them against
:mod:`golden.minilm` in float64):

- A LayerNorm's affine ``gamma * y + beta`` is folded into the matrices that read it
  (``W diag(gamma)``, bias ``W beta + b``); only the residual path multiplies by ``gamma`` (an
  element-wise MUL) and its ``beta`` joins the next bias.
- Biases are a column of the weight matrix that multiplies a constant-1 element appended to
  the input vector (element ``hidden`` of ``y`` and of the context, element ``ffn`` of the
  GELU output), so a GEMV adds them for one more chunk of cycles.
- The key bias only shifts every score of a query by the same amount: softmax ignores it, so
  it is dropped. The value bias passes through attention unchanged (probabilities sum to 1)
  and joins the output projection's bias. ``1/sqrt(head_dim)`` is folded into ``W_q``.

Layouts on the 8x8 array (line of 64 int16)
-------------------------------------------
Each token's vectors are dense (a token is a run of lines). Per token one GEMV computes every
head's ``[k_h ; q_h]`` (64 rows, one line per head). Scores need each head's keys as a tile
matrix with tokens on its rows: 12 element-wise ``MADD`` per token place ``k_h`` (a ``COL``
broadcast run) on the token's row (a ``ROW`` one-hot mask). That tile matrix is
``(T, 64)`` with ``K_h`` in its right half and zeros in the left, so the scores GEMV reads the
whole ``[k_h ; q_h]`` line as its ``x`` and the zeros cancel ``k_h``. Values are written by
GEMV column writes straight into, per head pair, a block-diagonal ``(64, T64 + T)`` tile
matrix: the context GEMV of a pair multiplies it with ``[p_2l ; p_2l+1]`` (the two softmax
outputs, ``p_2l+1`` from element ``T64``, the next line boundary) and writes 64 dense context
values, so the context vector comes out dense for the output projection.

Padding and the mask: a sentence's tokens are padded to a multiple of 8 (``T``); the mask
(0 for a real key, int16 minimum for a padded one) is added to the scores before softmax,
so padded keys get probability 0. It is an input in DRAM, so one program serves any sentence
of its padded length; padded queries produce rows that the host's pooling leaves out.

Quantization: per-tensor int16 formats; weights from their range, activations from the
float64 folded forward of a few calibration sentences (2x headroom); the units' formats
are fixed (LayerNorm and GELU Q5.10, softmax Q6.9 -> UQ0.15).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np

from golden.accelerator import (
    AcceleratorConfig,
    NLUnit,
    Opcode,
    OperandMode,
    pack_vector,
    tile_matrix,
    unpack_vector,
    vector_lines,
)
from golden.fixed_point import QFormat, dequantize, quantize
from golden.minilm import BertDims
from golden.nonlinear.baselines import gelu_exact
from golden.pe import Op

from ..compiler.layers import HEADROOM, frac_for
from ..compiler.program import Program, _Builder

__all__ = ["MODEL_CONFIG", "FoldedLayer", "FoldedModel", "fold", "folded_forward",
           "QuantizedModel", "quantize_model", "EncoderProgram", "compile_encoder",
           "padded_length"]

#: The accelerator the model runs on: the 8x8 array, a scratchpad that holds one layer's
#: weights and the activations of 128 tokens, a program memory for the whole encoder.
MODEL_CONFIG = AcceleratorConfig(rows=8, cols=8, depth=32768, max_program=65536,
                                 softmax_max_len=512, decoupled=True)

#: Fixed formats of the units (fraction bits).
LN_FRAC, GELU_IN_FRAC, GELU_OUT_FRAC, SM_IN_FRAC, SM_OUT_FRAC = 10, 10, 10, 9, 15
_INT16_MIN = -(1 << 15)


def padded_length(tokens: int) -> int:
    """A sentence's tokens padded to the tile height 8."""
    return -(-tokens // 8) * 8


# --- folding -------------------------------------------------------------------------------------


@dataclass
class FoldedLayer:
    """One encoder layer in the accelerator's form (float64). ``W*`` carry their bias as the
    last column where the input has a constant-1 element."""

    wkq: np.ndarray    # (heads * 64, hidden + 1): per head [W_k diag g ; W_q diag g / sqrt d]
    wv: np.ndarray     # (hidden, hidden): W_v diag(g_in)
    wo: np.ndarray     # (hidden, hidden + 1): W_o, bias b_o + W_o b_v' + beta_in
    g_in: np.ndarray   # (hidden,): gamma of the layer input (residual path)
    w1: np.ndarray     # (ffn, hidden + 1): W_1 diag(g_1), bias W_1 beta_1 + b_1
    w2: np.ndarray     # (hidden, ffn + 1): W_2, bias b_2 + beta_1
    g1: np.ndarray     # (hidden,): gamma of the attention LayerNorm (residual path)


@dataclass
class FoldedModel:
    """The encoder in the accelerator's form: layers and the last LayerNorm's affine."""

    dims: BertDims
    layers: list[FoldedLayer]
    g_out: np.ndarray
    b_out: np.ndarray
    weights: dict = field(repr=False, default_factory=dict)


def fold(weights, dims: BertDims) -> FoldedModel:
    """Fold a BERT checkpoint's float weights into the accelerator's form (module docstring)."""
    h, d, heads = dims.hidden, dims.head_dim, dims.heads
    if d > 32 or 64 % d and d != 32:
        raise ValueError(f"head_dim must be 32 (two heads per 64-element line), got {d}")
    if h % 64:
        raise ValueError(f"hidden must be a multiple of 64 (the line), got {h}")
    g_in = weights["embeddings.LayerNorm.weight"]
    b_in = weights["embeddings.LayerNorm.bias"]
    layers = []
    scale = 1 / math.sqrt(d)
    for i in range(dims.layers):
        w = {k[len(f"encoder.layer.{i}."):]: v for k, v in weights.items()
             if k.startswith(f"encoder.layer.{i}.")}
        wq, bq = w["attention.self.query.weight"], w["attention.self.query.bias"]
        wk = w["attention.self.key.weight"]
        wv, bv = w["attention.self.value.weight"], w["attention.self.value.bias"]
        wo, bo = w["attention.output.dense.weight"], w["attention.output.dense.bias"]
        g1, b1n = w["attention.output.LayerNorm.weight"], w["attention.output.LayerNorm.bias"]
        w1, b1 = w["intermediate.dense.weight"], w["intermediate.dense.bias"]
        w2, b2 = w["output.dense.weight"], w["output.dense.bias"]
        g2, b2n = w["output.LayerNorm.weight"], w["output.LayerNorm.bias"]
        q = np.hstack([wq * g_in * scale, ((wq @ b_in + bq) * scale)[:, None]])
        k = np.hstack([wk * g_in, np.zeros((h, 1))])  # the key bias cancels in softmax
        wkq = np.concatenate([np.concatenate([k[hd * d:(hd + 1) * d], q[hd * d:(hd + 1) * d]])
                              for hd in range(heads)])
        bv_folded = wv @ b_in + bv
        layers.append(FoldedLayer(
            wkq=wkq, wv=wv * g_in,
            wo=np.hstack([wo, (bo + wo @ bv_folded + b_in)[:, None]]), g_in=g_in.copy(),
            w1=np.hstack([w1 * g1, (w1 @ b1n + b1)[:, None]]),
            w2=np.hstack([w2, (b2 + b1n)[:, None]]), g1=g1.copy()))
        g_in, b_in = g2, b2n
    return FoldedModel(dims, layers, g_in.copy(), b_in.copy(), weights)


def _normalize(x) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True))


def _softmax(s) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def folded_forward(model: FoldedModel, emb, mask=None, *, values: dict | None = None):
    """Float64 forward of the folded model on embedding sums ``emb`` ``(T, hidden)``; the
    output equals :func:`golden.minilm.encode` (up to the LayerNorm ``eps``). With a dict
    ``values``, the largest magnitude of every activation is merged into it (calibration)."""
    dims = model.dims
    d, heads = dims.head_dim, dims.heads
    t_len = len(emb)
    keep = np.ones(t_len, bool) if mask is None else np.asarray(mask).astype(bool)

    def seen(name, v):
        if values is not None:
            values[name] = max(values.get(name, 0.0), float(np.max(np.abs(v))))

    seen("emb", emb)
    y = _normalize(emb)
    one = np.ones((t_len, 1))
    for lay in model.layers:
        y1a = np.hstack([y, one])
        kq = (y1a @ lay.wkq.T).reshape(t_len, heads, 2 * d)
        seen("kq", kq)
        v = y @ lay.wv.T
        seen("v", v)
        ctx = np.empty((t_len, dims.hidden))
        for hd in range(heads):
            k, q = kq[:, hd, :d], kq[:, hd, d:]
            s = q @ k.T
            seen("s", s[:, keep])
            p = _softmax(np.where(keep[None, :], s, -np.inf))
            ctx[:, hd * d:(hd + 1) * d] = p @ v[:, hd * d:(hd + 1) * d]
        seen("ctx", ctx)
        a = np.hstack([ctx, one]) @ lay.wo.T
        t1 = lay.g_in * y
        seen("r1", np.concatenate([a, t1, a + t1]))
        y1 = _normalize(a + t1)
        m = np.hstack([y1, one]) @ lay.w1.T
        seen("m", m)
        g = gelu_exact(m)
        o2 = np.hstack([g, one]) @ lay.w2.T
        t2 = lay.g1 * y1
        seen("r2", np.concatenate([o2, t2, o2 + t2]))
        y = _normalize(o2 + t2)
    out = model.g_out * y + model.b_out
    seen("out", np.concatenate([out, model.g_out * y]))
    return out


# --- quantization --------------------------------------------------------------------------------


@dataclass
class QuantizedModel:
    """Int16 weights (raw, int64 arrays) and the fraction bits of every tensor.

    ``layers`` holds one dict per layer (``wkq``, ``wv``, ``wo``, ``g_in``, ``w1``, ``w2``,
    ``g1``); ``fracs`` the weights' fraction bits per layer and name (``"3.w1"``) and the
    activations' (``act_kq``, ``act_v``, ``act_ctx``, ``act_r1``, ``act_r2``, ``act_out``,
    ``act_emb``)."""

    folded: FoldedModel
    layers: list[dict[str, np.ndarray]]
    g_out: np.ndarray
    b_out: np.ndarray
    fracs: dict[str, int]


def quantize_model(model: FoldedModel, calibration) -> QuantizedModel:
    """Quantize the folded model; activation formats from ``calibration``, a list of
    embedding-sum arrays ``(T, hidden)`` (a few sentences)."""
    calibration = list(calibration)
    if not calibration:
        raise ValueError("calibration: give at least one sentence")
    values: dict[str, float] = {}
    for emb in calibration:
        folded_forward(model, emb, values=values)
    fracs = {f"act_{k}": frac_for(v, headroom=HEADROOM, name=k) for k, v in values.items()}
    # The constant 1 of a biased input must fit its format.
    fracs["act_ctx"] = min(fracs["act_ctx"], 14)
    layers = []
    for i, lay in enumerate(model.layers):
        q = {}
        for name in ("wkq", "wv", "wo", "g_in", "w1", "w2", "g1"):
            value = getattr(lay, name)
            f = frac_for(float(np.max(np.abs(value))), name=f"{i}.{name}")
            fracs[f"{i}.{name}"] = f
            q[name] = quantize(value, QFormat(16, f))
        layers.append(q)
    for name, value in (("g_out", model.g_out), ("b_out", model.b_out)):
        fracs[name] = frac_for(float(np.max(np.abs(value))), name=name)
    fracs["b_out"] = fracs["act_out"]  # added to the output as it is
    return QuantizedModel(model, layers,
                          quantize(model.g_out, QFormat(16, fracs["g_out"])),
                          quantize(model.b_out, QFormat(16, fracs["b_out"])), fracs)


# --- program -------------------------------------------------------------------------------------


@dataclass
class EncoderProgram:
    """The compiled encoder for sentences of padded lengths ``lengths``.

    Attributes
    ----------
    program : Program
        Instructions, phases and the DRAM image (weights, constants).
    lengths : tuple of int
        Padded token count of each sentence (multiples of 8).
    fracs : dict of int
        Resolved formats (see :class:`QuantizedModel`).
    model_macs : int
        Multiply-accumulates of the float model for these padded lengths (projections,
        scores and context), the work the utilization figures count as useful.
    """

    program: Program
    lengths: tuple[int, ...]
    fracs: dict[str, int]
    model_macs: int
    _emb: object = None
    _masks: list = field(default_factory=list)
    _out: object = None

    @property
    def config(self) -> AcceleratorConfig:
        return self.program.config

    def dram(self, embeddings, valid) -> np.ndarray:
        """The DRAM image with the embedding sums (float, one ``(T_i, hidden)`` array per
        sentence, padded) and the masks (``valid[i]`` real tokens of sentence ``i``)."""
        cfg, prog = self.config, self.program
        image = prog.image.copy()
        rows = np.concatenate(list(embeddings))
        x_q = quantize(rows, QFormat(16, self.fracs["act_emb"]))
        seg = prog.segments["x"]
        image[seg.ext:seg.ext + seg.lines] = np.concatenate([pack_vector(cfg, r) for r in x_q])
        for (seg_name, lines_per_head, t_pad), n in zip(self._masks, valid):
            seg = prog.segments[seg_name]
            mask = np.where(np.arange(t_pad) < n, 0, _INT16_MIN)
            block = np.concatenate([pack_vector(cfg, mask)] * (seg.lines // lines_per_head))
            image[seg.ext:seg.ext + seg.lines] = block
        return image

    def output(self, dram) -> list[np.ndarray]:
        """The last hidden states (float) of each sentence, padded rows included."""
        cfg = self.config
        seg = self.program.segments["y"]
        hidden = seg.shape[1]
        per = vector_lines(cfg, hidden)
        lines = np.asarray(dram)[seg.ext:seg.ext + seg.lines]
        rows = np.stack([unpack_vector(cfg, lines[t * per:(t + 1) * per], hidden)
                         for t in range(seg.shape[0])])
        out = dequantize(rows, QFormat(16, self.fracs["act_out"]))
        return np.split(out, np.cumsum(self.lengths)[:-1])


class _Formats:
    """Shift of a requantization; lowers nothing: the calibrated formats always leave
    enough fraction bits (checked)."""

    @staticmethod
    def shift(have: int, want: int, what: str) -> int:
        if have < want:
            raise ValueError(f"format: {what} needs {want} fraction bits but its producer gives "
                             f"only {have}")
        if have - want > 63:
            raise ValueError(f"format: {what} shift {have - want} exceeds 63")
        return have - want


def _gemv(b: _Builder, y: int, w: int, x: int, m: int, k: int, shift: int, **column) -> None:
    """The one matrix-vector lowering every projection goes through (``y = W x``)."""
    b.gemv(y, w, x, m, k, shift, **column)


def compile_encoder(qm: QuantizedModel, lengths, config: AcceleratorConfig | None = None,
                    *, overlap: bool = True) -> EncoderProgram:
    """Compile the whole encoder for sentences padded to ``lengths`` tokens (multiples of 8).

    ``overlap``: two weight regions, so that (with ``decoupled`` engines) the DMA of the next
    weights runs while the PE array computes; ``False``: one region, loads not hidden (for
    batches whose activations leave no room for the second region).

    Raises
    ------
    ValueError
        Lengths that are not positive multiples of 8, or a batch that does not fit the
        scratchpad or the program memory.
    """
    cfg = AcceleratorConfig.check_instance(config or MODEL_CONFIG)
    if not hasattr(Opcode, "LAYERNORM"):
        raise ValueError("this accelerator has no LAYERNORM instruction (opcode 9) yet: the "
                         "encoder cannot compile")
    lengths = tuple(int(t) for t in lengths)
    if not lengths or any(t < 8 or t % 8 for t in lengths):
        raise ValueError(f"lengths must be positive multiples of 8, got {lengths}")
    if cfg.rows != 8 or cfg.cols != 8:
        raise ValueError("the encoder compiles for the 8x8 array (rows=8, cols=8)")
    dims = qm.folded.dims
    hid, ffn, heads, d = dims.hidden, dims.ffn, dims.heads, dims.head_dim
    pairs = heads // 2
    if max(lengths) > cfg.softmax_max_len:
        raise ValueError(f"a sentence of {max(lengths)} tokens exceeds softmax_max_len="
                         f"{cfg.softmax_max_len}")
    fr = dict(qm.fracs)
    vl = functools.partial(vector_lines, cfg)
    n_tok = sum(lengths)
    line = cfg.line
    b = _Builder(cfg, "encoder", dims)
    sh = _Formats.shift

    # --- scratchpad: weights region (one layer's), constants, activations ---------------
    def wlines(mat):
        return (-(-mat.shape[0] // cfg.rows)) * (-(-mat.shape[1] // cfg.cols))

    lay0 = qm.layers[0]
    phase_a = wlines(lay0["wkq"]) + wlines(lay0["wv"])
    phase_b = wlines(lay0["wo"]) + wlines(lay0["w1"]) + wlines(lay0["w2"]) + 2 * vl(hid)
    # Two weight regions: the attention weights (A) and the output/FFN weights (B). With
    # decoupled engines the next layer's A loads while B computes and B while A computes.
    if overlap:
        a_base = b.alloc("weights_a", phase_a)
        w_base = b.alloc("weights_b", phase_b)
    else:
        a_base = w_base = b.alloc("weights", max(phase_a, phase_b))
    init_start = b.spad_next
    onehot = b.alloc("onehot", 8)              # line r: 1 at element r (ROW masks)
    zero = b.alloc("zero", 1)
    y_in = b.alloc("y", n_tok * vl(hid + 1))   # LN outputs + the constant 1 at hid
    kq = b.alloc("kq", n_tok * heads)          # per token, per head [k_h ; q_h]
    k_tiles, vp, masks_at = [], [], []
    for t_pad in lengths:
        n_t = t_pad // 8
        k_tiles.append(b.alloc("K", heads * n_t * 8))
        t64 = -(-t_pad // line) * line
        nk = (t64 + t_pad) // 8
        vp.append((b.alloc("V", pairs * 8 * nk), nk, t64))
        masks_at.append(b.alloc("mask", heads * vl(t_pad)))
    s_lines = vl(max(lengths))
    scores = b.alloc("s", heads * s_lines)
    pl = max(vl(t64 + t) for (_, _, t64), t in zip(vp, lengths))
    px = b.alloc("p", pairs * pl)
    ctx = b.alloc("ctx", vl(hid + 1))
    a_buf, t_buf = b.alloc("a", vl(hid)), b.alloc("t", vl(hid))
    r_buf = b.alloc("r", vl(hid))
    y1 = b.alloc("y1", vl(hid + 1))
    m_buf, g_buf = b.alloc("m", vl(ffn)), b.alloc("g", vl(ffn + 1))
    o_rows = b.alloc("out", n_tok * vl(hid))
    init_lines = b.spad_next - init_start
    # Constants: one-hot lines, the 1s after y, ctx, y1, g; everything else starts at 0.
    init = np.zeros((init_lines, line), dtype=np.int64)
    for r in range(8):
        init[onehot - init_start + r, r] = 1
    for t in range(n_tok):
        init[y_in - init_start + t * vl(hid + 1) + hid // line, hid % line] = 1 << LN_FRAC
    init[ctx - init_start + hid // line, hid % line] = 1 << fr["act_ctx"]
    init[y1 - init_start + hid // line, hid % line] = 1 << LN_FRAC
    init[g_buf - init_start + ffn // line, ffn % line] = 1 << GELU_OUT_FRAC

    # --- DRAM: constants, input, masks, per-layer weights, output ----------------------
    init_seg = b.segment("init", init_lines, data=init)
    x_seg = b.segment("x", n_tok * vl(hid), "rows", (n_tok, hid))
    mask_segs = []
    for i, t_pad in enumerate(lengths):
        name = f"mask{i}"
        b.segment(name, heads * vl(t_pad))
        mask_segs.append((name, vl(t_pad), t_pad))
    layer_segs = []
    for i, q in enumerate(qm.layers):
        pa = [tile_matrix(cfg, q["wkq"]), tile_matrix(cfg, q["wv"])]
        pb = [tile_matrix(cfg, q["wo"]), tile_matrix(cfg, q["w1"]), tile_matrix(cfg, q["w2"]),
              pack_vector(cfg, q["g_in"]), pack_vector(cfg, q["g1"])]
        sa = b.segment(f"layer{i}a", sum(map(len, pa)), data=np.concatenate(pa))
        sb = b.segment(f"layer{i}b", sum(map(len, pb)), data=np.concatenate(pb))
        layer_segs.append((sa, sb))
    fin = [pack_vector(cfg, qm.g_out), pack_vector(cfg, qm.b_out)]
    fin_seg = b.segment("final", sum(map(len, fin)), data=np.concatenate(fin))
    y_seg = b.segment("y", n_tok * vl(hid), "rows", (n_tok, hid))

    wkq_at = a_base
    wv_at = wkq_at + wlines(lay0["wkq"])
    wo_at = w_base
    w1_at = wo_at + wlines(lay0["wo"])
    w2_at = w1_at + wlines(lay0["w1"])
    gin_at = w2_at + wlines(lay0["w2"])
    g1_at = gin_at + vl(hid)

    b.phase = "load"
    b.dma(Opcode.DMA_LOAD, init_start, init_seg.ext, init_seg.lines)
    b.dma(Opcode.DMA_LOAD, o_rows, x_seg.ext, x_seg.lines)  # embeddings, in the out rows
    for (name, _, _), at in zip(mask_segs, masks_at):
        seg = b.segments[name]
        b.dma(Opcode.DMA_LOAD, at, seg.ext, seg.lines)
    yl = vl(hid + 1)
    b.phase = "layernorm"
    for t in range(n_tok):
        b.emit(Opcode.LAYERNORM, dst=y_in + t * yl, src=o_rows + t * vl(hid), n=hid)

    for i, (sa, sb) in enumerate(layer_segs):
        f = {k.split(".", 1)[1]: v for k, v in fr.items() if k.startswith(f"{i}.")}
        f_kq, f_v, f_ctx = fr["act_kq"], fr["act_v"], fr["act_ctx"]
        f_r1, f_r2 = fr["act_r1"], fr["act_r2"]
        if i == 0 or not overlap:
            b.phase = "dma"
            b.dma(Opcode.DMA_LOAD, a_base, sa.ext, sa.lines)
        if i == 0 and overlap:
            b.dma(Opcode.DMA_LOAD, w_base, sb.ext, sb.lines)
        b.phase = "k_tiles"
        for si, t_pad in enumerate(lengths):  # the MADDs below add into zeroed tiles
            b.ew(Op.MUL, k_tiles[si], k_tiles[si], zero, heads * t_pad, bmode=OperandMode.COL)
        tok = 0
        for si, t_pad in enumerate(lengths):
            n_t = t_pad // 8
            vbase, nk, t64 = vp[si]
            for t in range(t_pad):
                yt = y_in + (tok + t) * yl
                kqt = kq + (tok + t) * heads
                b.phase = "qk_proj"
                _gemv(b, kqt, wkq_at, yt, heads * 2 * d, hid + 1,
                      sh(f["wkq"] + LN_FRAC, f_kq, "kq"))
                b.phase = "k_tiles"
                for hd in range(heads):
                    dst = k_tiles[si] + hd * n_t * 8 + (t // 8) * 8 + 4
                    b.emit(Opcode.EW, op=int(Op.MADD), dst=dst, a=kqt + hd, b=onehot + t % 8,
                           c=dst, lines=4, tcols=4, shift=0, amode=int(OperandMode.COL),
                           bmode=int(OperandMode.ROW), cmode=int(OperandMode.LINE))
                b.phase = "v_proj"
                for hd in range(heads):
                    odd = hd % 2
                    y_at = vbase + (hd // 2) * 8 * nk + odd * 4 * nk + (t + odd * t64) // 8
                    _gemv(b, y_at, wv_at + hd * 4 * (hid // 8), yt, d, hid,
                          sh(f["wv"] + LN_FRAC, f_v, "v"), column=t % 8, ystride=nk)
            tok += t_pad
        b.phase = "dma"
        if not overlap:
            b.dma(Opcode.DMA_LOAD, w_base, sb.ext, sb.lines)
        elif i + 1 < len(layer_segs):  # overlaps the output/FFN part of this layer
            nxt = layer_segs[i + 1][0]
            b.dma(Opcode.DMA_LOAD, a_base, nxt.ext, nxt.lines)
        tok = 0
        for si, t_pad in enumerate(lengths):
            n_t = t_pad // 8
            vbase, nk, t64 = vp[si]
            sl = vl(t_pad)
            pls = vl(t64 + t_pad)
            for t in range(t_pad):
                yt = y_in + (tok + t) * yl
                kqt = kq + (tok + t) * heads
                b.phase = "scores"
                for hd in range(heads):
                    _gemv(b, scores + hd * sl, k_tiles[si] + hd * n_t * 8, kqt + hd, t_pad,
                          2 * d, sh(2 * f_kq, SM_IN_FRAC, "scores"))
                b.phase = "mask"
                b.ew(Op.ADD, scores, scores, masks_at[si], heads * sl)
                b.phase = "softmax"
                for hd in range(heads):
                    dst = px + (hd // 2) * pls + (hd % 2) * (t64 // line)
                    b.emit(Opcode.SOFTMAX, dst=dst, src=scores + hd * sl, n=t_pad)
                b.phase = "context"
                for pair in range(pairs):
                    _gemv(b, ctx + pair, vbase + pair * 8 * nk, px + pair * pls, 2 * d,
                          t64 + t_pad, sh(f_v + SM_OUT_FRAC, f_ctx, "ctx"))
                b.phase = "out_proj"
                _gemv(b, a_buf, wo_at, ctx, hid, hid + 1, sh(f["wo"] + f_ctx, f_r1, "a"))
                b.phase = "residual"
                b.ew(Op.MUL, t_buf, gin_at, yt, vl(hid), sh(f["g_in"] + LN_FRAC, f_r1, "t1"))
                b.ew(Op.ADD, r_buf, t_buf, a_buf, vl(hid))
                b.phase = "layernorm"
                b.emit(Opcode.LAYERNORM, dst=y1, src=r_buf, n=hid)
                b.phase = "ffn_up"
                _gemv(b, m_buf, w1_at, y1, ffn, hid + 1,
                      sh(f["w1"] + LN_FRAC, GELU_IN_FRAC, "m"))
                b.phase = "gelu"
                b.nl(NLUnit.GELU, g_buf, m_buf, vl(ffn))
                b.phase = "ffn_down"
                _gemv(b, a_buf, w2_at, g_buf, hid, ffn + 1,
                      sh(f["w2"] + GELU_OUT_FRAC, f_r2, "o2"))
                b.phase = "residual"
                b.ew(Op.MUL, t_buf, g1_at, y1, vl(hid), sh(f["g1"] + LN_FRAC, f_r2, "t2"))
                b.ew(Op.ADD, r_buf, t_buf, a_buf, vl(hid))
                b.phase = "layernorm"
                b.emit(Opcode.LAYERNORM, dst=yt, src=r_buf, n=hid)
            tok += t_pad
        b.phase = "dma"  # overlaps the next layer's attention part
        if overlap or i + 1 == len(layer_segs):
            nxt = layer_segs[i + 1][1] if i + 1 < len(layer_segs) else fin_seg
            b.dma(Opcode.DMA_LOAD, w_base, nxt.ext, nxt.lines)
    # Projections q, k, v, o (hid x hid each) and the FFN per token, scores and context.
    model_macs = sum(t_pad * (dims.layers * (4 * hid * hid + 2 * hid * ffn + 2 * t_pad * hid))
                     for t_pad in lengths)
    b.phase = "affine"
    f_out = fr["act_out"]
    for t in range(n_tok):
        out_t = o_rows + t * vl(hid)
        b.ew(Op.MUL, out_t, w_base, y_in + t * yl, vl(hid),
             sh(fr["g_out"] + LN_FRAC, f_out, "out"))
        b.ew(Op.ADD, out_t, out_t, w_base + vl(hid), vl(hid))
    b.phase = "store"
    b.dma(Opcode.DMA_STORE, o_rows, y_seg.ext, y_seg.lines)
    program = b.finish(fr)
    return EncoderProgram(program, lengths, fr, model_macs, _masks=mask_segs)
