"""Compile a BERT-style sentence encoder (all-MiniLM-L6-v2) for the accelerator, its weights
streamed from DRAM through a scratchpad of the default size (4096 lines).

What runs where
---------------
- Host: tokenization, the embedding lookup (word + position + token type: a table gather, no
  arithmetic beyond one sum), and at the end mean pooling over the real tokens and the L2
  normalisation (as the issue allows).
- Accelerator, the whole encoder: the embedding LayerNorm, then per layer the Q/K/V
  projections, 12 attention heads (scores, the padding mask, softmax, context) sharing the
  softmax unit, the output projection, bias and residual adds, both LayerNorms (opcode
  ``LAYERNORM``), the FFN with exact-erf GELU (the GELU unit), and the final LayerNorm
  affine.

Streaming
---------
Weights and activations live in DRAM. Every weight matrix is cut into tiles of whole row
blocks that stream through two ping-pong regions at the top of the scratchpad
(:class:`gen.compiler.program.WeightStream`: the next tile loads while the PE array runs the
current one, across matrices and layers). Attention runs per sentence and head pair: the
pair's ``[k; q]`` and values for every token of the sentence (its LN outputs staged on chip),
the scores, mask, softmax and context; each token's context line of the pair goes to DRAM.
The output projection, residuals, LayerNorms and the FFN then run per block of tokens, every
weight tile serving the whole block. The vector units run batches: one ``SOFTMAX`` normalizes
the score rows of both heads of ``SOFTMAX_TOKENS`` tokens, one ``LAYERNORM`` every token of a
block (the unit takes a vector in while it outputs the previous one, so a batch costs about
``n`` cycles per vector instead of ``2n`` plus the unit's latency). The instruction stream is
cut into programs of at most ``max_program`` words where nothing on chip is live (between
head pairs and token blocks); a program that starts at a cut first reloads the constants, the
staged tokens and the prefetched weight tile.

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

Layouts (an ``R x C`` array, lines of ``L = R * C`` int16; head dim ``d``)
--------------------------------------------------------------------------
Any array whose line holds a head's ``[k; q]`` in whole lines (``L`` divides ``2d``), whose
columns divide ``d`` and whose rows divide the token padding 8: for ``d = 32``, from 2x2 to
8x8 (the 8x8's line is one head's ``[k; q]``). Each token's vectors are dense (a token is a run
of lines). Per token and head pair the GEMVs of the pair's tiles compute ``[k_h ; q_h]`` of its
two heads (``4d`` rows, ``2d / L`` lines per head). Scores need each head's keys as a tile
matrix with tokens on its rows: an element-wise ``MADD`` per token and head places ``k_h`` (a
``COL`` broadcast run) on the token's row (a ``ROW`` one-hot mask). That tile matrix is
``(T, 2d)`` with ``K_h`` in its right half and zeros in the left, so the scores GEMV reads the
whole ``[k_h ; q_h]`` vector as its ``x`` and the zeros cancel ``k_h``. Values are written by
GEMV column writes straight into, per head pair, a block-diagonal ``(2d, TL + T)`` tile
matrix (``TL``: ``T`` rounded up to whole lines): the context GEMV of a pair multiplies it with
``[p_2l ; p_2l+1]`` (the two softmax outputs, ``p_2l+1`` from element ``TL``, a line boundary)
and writes ``2d`` dense context values, so the context vector comes out dense for the output
projection.

Padding and the mask: a sentence's tokens are padded to a multiple of 8 (``T``); the mask
(0 for a real key, int16 minimum for a padded one) is added to the scores before softmax,
so padded keys get probability 0. It is an input in DRAM, so the programs serve any sentence
of their padded length; padded queries produce rows that the host's pooling leaves out.

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
    unpack_vector,
    vector_lines,
)
from golden.fixed_point import QFormat, dequantize, quantize
from golden.minilm import BertDims
from golden.nonlinear.baselines import gelu_exact
from golden.pe import Op

from ..compiler.layers import HEADROOM, frac_for
from ..compiler.program import Matrix, Program, WeightStream, _Builder

__all__ = ["MODEL_CONFIG", "SOFTMAX_TOKENS", "FoldedLayer", "FoldedModel", "fold",
           "folded_forward", "QuantizedModel", "quantize_model", "EncoderProgram",
           "check_array", "compile_encoder", "padded_length"]

#: The accelerator the model runs on: the 8x8 array with the default scratchpad (4096 lines of
#: 64 int16) and program memory (4096 words); the weights stream from DRAM, the encoder runs
#: as a sequence of programs. A 128-token sentence's attention buffers need the depth.
MODEL_CONFIG = AcceleratorConfig(rows=8, cols=8, depth=4096, max_program=4096,
                                 softmax_max_len=128, decoupled=True)

#: Tokens whose attention rows (two heads each) one SOFTMAX batch normalizes: the unit takes
#: a row in while it outputs the previous one, so a batch costs about a row's cycles per row.
SOFTMAX_TOKENS = 8

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
    """The compiled encoder for sentences of padded lengths ``lengths``: programs that run one
    after the other on the same DRAM (each at most ``max_program`` words).

    Attributes
    ----------
    programs : list of Program
        Instructions and phases of each; all share one DRAM image (weights, constants).
    lengths : tuple of int
        Padded token count of each sentence (multiples of 8).
    fracs : dict of int
        Resolved formats (see :class:`QuantizedModel`).
    model_macs : int
        Multiply-accumulates of the float model for these padded lengths (projections,
        scores and context), the work the utilization figures count as useful.
    plan : dict
        The scratchpad plan: ``weight_region`` (lines of each of the two ping-pong weight
        regions), ``token_block`` (tokens per block of the output projection and FFN),
        ``spad_lines`` (lines used).
    """

    programs: list[Program]
    lengths: tuple[int, ...]
    fracs: dict[str, int]
    model_macs: int
    plan: dict = field(default_factory=dict)
    _masks: list = field(default_factory=list)

    @property
    def config(self) -> AcceleratorConfig:
        return self.programs[0].config

    @property
    def image(self) -> np.ndarray:
        return self.programs[0].image

    @property
    def segments(self) -> dict:
        return self.programs[0].segments

    @property
    def instructions(self) -> int:
        """Instruction words of all the programs."""
        return sum(len(p.instructions) for p in self.programs)

    def dram(self, embeddings, valid) -> np.ndarray:
        """The DRAM image with the embedding sums (float, one ``(T_i, hidden)`` array per
        sentence, padded) and the masks (``valid[i]`` real tokens of sentence ``i``)."""
        cfg = self.config
        image = self.image.copy()
        rows = np.concatenate(list(embeddings))
        x_q = quantize(rows, QFormat(16, self.fracs["act_emb"]))
        seg = self.segments["x"]
        image[seg.ext:seg.ext + seg.lines] = np.concatenate([pack_vector(cfg, r) for r in x_q])
        for (seg_name, lines_per_head, t_pad), n in zip(self._masks, valid):
            seg = self.segments[seg_name]
            mask = np.where(np.arange(t_pad) < n, 0, _INT16_MIN)
            block = np.concatenate([pack_vector(cfg, mask)] * (seg.lines // lines_per_head))
            image[seg.ext:seg.ext + seg.lines] = block
        return image

    def output(self, dram) -> list[np.ndarray]:
        """The last hidden states (float) of each sentence, padded rows included."""
        cfg = self.config
        seg = self.segments["y"]
        hidden = seg.shape[1]
        per = vector_lines(cfg, hidden)
        lines = np.asarray(dram)[seg.ext:seg.ext + seg.lines]
        rows = np.stack([unpack_vector(cfg, lines[t * per:(t + 1) * per], hidden)
                         for t in range(seg.shape[0])])
        out = dequantize(rows, QFormat(16, self.fracs["act_out"]))
        return np.split(out, np.cumsum(self.lengths)[:-1])


def _shift(have: int, want: int, what: str) -> int:
    """Shift of a requantization; the calibrated formats always leave enough fraction bits
    (checked)."""
    if have < want:
        raise ValueError(f"format: {what} needs {want} fraction bits but its producer gives "
                         f"only {have}")
    if have - want > 63:
        raise ValueError(f"format: {what} shift {have - want} exceeds 63")
    return have - want


def _attention_lines(cfg: AcceleratorConfig, dims, t_pad: int) -> int:
    """Scratchpad lines of one sentence's attention buffers (one head pair at a time): the
    staged inputs, ``[k; q]``, the two key tile matrices, the values, the mask, a group's
    scores and probabilities, the contexts (the allocations of :func:`_emit`)."""
    vl = functools.partial(vector_lines, cfg)
    d = dims.head_dim
    t_lines = -(-t_pad // cfg.line) * cfg.line
    group = min(t_pad, SOFTMAX_TOKENS)
    return (t_pad * vl(dims.hidden + 1) + t_pad * vl(4 * d) + 2 * t_pad * vl(2 * d)
            + (2 * d // cfg.rows) * ((t_lines + t_pad) // cfg.cols) + 2 * vl(t_pad)
            + group * (2 * vl(t_pad) + vl(t_lines + t_pad)) + t_pad * vl(2 * d))


def check_array(cfg: AcceleratorConfig, dims) -> None:
    """Raise a ValueError unless the encoder's layouts (module docstring) fit the array: ``L``
    divides ``2 * head_dim``, ``cols`` divides ``head_dim``, ``rows`` divides 8."""
    d = dims.head_dim
    if (2 * d) % cfg.line or d % cfg.cols or 8 % cfg.rows:
        raise ValueError(
            f"rows x cols: the encoder needs rows dividing 8, cols dividing head_dim={d} and "
            f"rows * cols dividing {2 * d} (a head's [k; q] in whole lines), got "
            f"{cfg.rows}x{cfg.cols}")


#: Lines per token of the token-block buffers (ctx, y, a, r, y1, g) at hidden 384, FFN 1536.
def _block_lines(cfg: AcceleratorConfig, dims) -> int:
    vl = functools.partial(vector_lines, cfg)
    h1 = vl(dims.hidden + 1)
    return 3 * h1 + 2 * vl(dims.hidden) + h1 + vl(dims.ffn + 1)


def compile_encoder(qm: QuantizedModel, lengths, config: AcceleratorConfig | None = None,
                    *, weight_region: int | None = None,
                    token_block: int | None = None) -> EncoderProgram:
    """Compile the whole encoder for sentences padded to ``lengths`` tokens (multiples of 8).

    Every weight matrix streams from DRAM through two ping-pong regions of ``weight_region``
    lines (default: what the scratchpad leaves, see :class:`WeightStream`); activations live
    in DRAM between the steps. Per layer: per sentence and head pair, ``[k; q]`` and ``v`` of
    the pair's two heads for every token, the scores, mask, softmax and context (the pair's
    context line of each token goes to DRAM); then per block of ``token_block`` tokens the
    output projection, residual, LayerNorm, FFN, residual, LayerNorm (and after the last
    layer the final affine). The instructions are cut into programs of at most
    ``max_program`` words at the points where nothing on chip is live (each head pair, each
    token block): :attr:`EncoderProgram.programs`.

    Raises
    ------
    ValueError
        Lengths that are not positive multiples of 8, an array the layouts do not fit
        (:func:`check_array`), a sentence too long for the softmax unit, or a batch that does
        not fit the scratchpad or the program memory (token blocks shrink until a block's
        stretch of the program fits ``max_program``).
    """
    cfg = AcceleratorConfig.check_instance(config or MODEL_CONFIG)
    lengths = tuple(int(t) for t in lengths)
    if not lengths or any(t < 8 or t % 8 for t in lengths):
        raise ValueError(f"lengths must be positive multiples of 8, got {lengths}")
    dims = qm.folded.dims
    check_array(cfg, dims)
    if max(lengths) > cfg.softmax_max_len:
        raise ValueError(f"a sentence of {max(lengths)} tokens exceeds softmax_max_len="
                         f"{cfg.softmax_max_len}")
    n_tok = sum(lengths)
    # the one-hot and zero lines, the gammas, one sentence's attention buffers
    fixed = cfg.rows + 1 + 4 * vector_lines(cfg, dims.hidden) \
        + _attention_lines(cfg, dims, max(lengths))
    per_token = _block_lines(cfg, dims)
    kc_max = -(-(dims.ffn + 1) // cfg.cols)
    # The largest tile: a row block of W2, or a head's rows of W_v (a head's values are
    # written as whole columns), the larger on arrays of few rows.
    v_tile = (dims.head_dim // cfg.rows) * -(-dims.hidden // cfg.cols)
    tile = max(kc_max, v_tile)
    tb = min(n_tok, token_block or 16)
    if token_block is None:  # the most tokens that leave regions of 2 (or at least 1) of
        # W2's row blocks: each weight tile serves a whole token block
        fits = [n for need in (2, 1) for n in range(tb, 0, -1)
                if (cfg.depth - fixed - n * per_token) // 2 >= max(need * kc_max, v_tile)]
        tb = fits[0] if fits else 1
    while True:
        region = (cfg.depth - fixed - tb * per_token) // 2
        if weight_region is not None:
            region = min(region, weight_region)
        if region < tile:
            raise ValueError(f"buffer overflow: the encoder for lengths {lengths} needs "
                             f"{fixed + tb * per_token + 2 * tile} scratchpad lines (two "
                             f"weight regions of a {tile}-line tile, a W2 row block or a "
                             f"head's W_v), more than depth={cfg.depth}")
        plan = None
        for _ in range(2):  # the first pass records the order of the weight tiles
            b, ws, masks = _emit(qm, lengths, cfg, region, tb, plan)
            plan = ws.used
        # A token block is one stretch between cuts: fewer tokens if it outgrows the
        # program memory (on small arrays, whose weights take more tiles).
        if token_block is not None or tb == 1 or b.longest_piece() <= cfg.max_program:
            break
        tb -= 1
    programs = b.split(dict(qm.fracs))
    hid, ffn = dims.hidden, dims.ffn
    model_macs = sum(t_pad * (dims.layers * (4 * hid * hid + 2 * hid * ffn + 2 * t_pad * hid))
                     for t_pad in lengths)
    return EncoderProgram(programs, lengths, dict(qm.fracs), model_macs,
                          {"weight_region": region, "token_block": tb,
                           "spad_lines": programs[0].spad_lines}, masks)


def _emit(qm: QuantizedModel, lengths, cfg: AcceleratorConfig, region: int, tb: int, plan):
    """One compilation pass (see :func:`compile_encoder`)."""
    dims = qm.folded.dims
    hid, ffn, heads, d = dims.hidden, dims.ffn, dims.heads, dims.head_dim
    pairs = heads // 2
    fr = qm.fracs
    vl = functools.partial(vector_lines, cfg)
    line = cfg.line
    n_tok = sum(lengths)
    h1, hv, gl = vl(hid + 1), vl(hid), vl(ffn + 1)
    b = _Builder(cfg, "encoder", dims)
    if plan is None:  # the first pass only records the weight tiles' order: emit nothing
        b.emit = lambda opcode, **fields: None  # type: ignore[method-assign]

    # --- scratchpad, from line 0: constants and token-block buffers (restored by every
    # program), then one sentence's attention buffers; the weight regions at the top.
    onehot = b.alloc("onehot", cfg.rows)       # line r: 1 at element r (ROW masks)
    zero = b.alloc("zero", 1)
    ctxb = b.alloc("ctx", tb * h1)             # context + the constant 1 at hid
    yb = b.alloc("y", tb * h1)                 # layer input / LN output + the constant 1
    ab = b.alloc("a", tb * hv)                 # projection outputs
    rb = b.alloc("r", tb * hv)                 # residual sums
    y1b = b.alloc("y1", tb * h1)               # attention LN output + the constant 1
    gb = b.alloc("g", tb * gl)                 # FFN hidden / GELU output + the constant 1
    gam = b.alloc("gammas", 4 * hv)            # g_in, g1 (or g_out, b_out)
    init_lines = b.spad_next
    attn = b.spad_next
    ws = WeightStream(b, region, plan)
    if b.spad_next + _attention_lines(cfg, dims, max(lengths)) > ws.bufs[0]:
        raise ValueError("buffer overflow: attention buffers and weight regions exceed "
                         f"depth={cfg.depth}")
    init = np.zeros((init_lines, line), dtype=np.int64)
    for r in range(cfg.rows):
        init[onehot + r, r] = 1
    for t in range(tb):
        init[yb + t * h1 + hid // line, hid % line] = 1 << LN_FRAC
        init[y1b + t * h1 + hid // line, hid % line] = 1 << LN_FRAC
        init[ctxb + t * h1 + hid // line, hid % line] = 1 << fr["act_ctx"]
        init[gb + t * gl + ffn // line, ffn % line] = 1 << GELU_OUT_FRAC

    # --- DRAM: constants, input, masks, activations, per-layer weights, output -----------
    init_seg = b.segment("init", init_lines, data=init)
    x_seg = b.segment("x", n_tok * hv, "rows", (n_tok, hid))
    masks = []
    for i, t_pad in enumerate(lengths):
        b.segment(f"mask{i}", 2 * vl(t_pad))
        masks.append((f"mask{i}", vl(t_pad), t_pad))

    def const_rows(name, value):
        data = np.zeros((n_tok * h1, line), dtype=np.int64)
        data[hid // line::h1, hid % line] = value
        return b.segment(name, n_tok * h1, "rows", (n_tok, hid + 1), data=data)

    y_seg = const_rows("act_y", 1 << LN_FRAC)
    ctx_seg = const_rows("act_ctx", 1 << fr["act_ctx"])
    weights = []
    for i, q in enumerate(qm.layers):
        weights.append({name: b.matrix(f"{i}.{name}", q[name])
                        for name in ("wkq", "wv", "wo", "w1", "w2")})
        weights[-1]["gammas"] = b.segment(f"{i}.gammas", 2 * hv, data=np.concatenate(
            [pack_vector(cfg, q["g_in"]), pack_vector(cfg, q["g1"])]))
    fin_seg = b.segment("final", 2 * hv, data=np.concatenate(
        [pack_vector(cfg, qm.g_out), pack_vector(cfg, qm.b_out)]))
    out_seg = b.segment("y", n_tok * hv, "rows", (n_tok, hid))
    consts = [(0, init_seg.ext, init_lines)]

    def cut(*more):
        b.cut(consts + list(more) + ws.pending())

    def gemvs(tiles_of, x: tuple, y: tuple, t_count, k, shift, phase):
        """``y_t = W x_t`` for ``t < t_count`` (``x``, ``y``: first line and lines per
        token), tile by tile through the weight stream."""
        for row0, rows, ext, lines in tiles_of:
            buf = ws.use(ext, lines)
            b.phase = phase
            for t in range(t_count):
                b.emit(Opcode.GEMV, y=y[0] + t * y[1] + row0 // line, w=buf, x=x[0] + t * x[1],
                       m=rows, k=k, shift=shift, ycol=(row0 % line) // cfg.rows)

    def layernorms(dst, src, t_count):
        """One LAYERNORM batch over a block's tokens: ``src`` strided by ``hv`` lines,
        ``dst`` by ``h1`` (the constant 1 after each token's ``hid`` elements)."""
        b.emit(Opcode.LAYERNORM, dst=dst, src=src, n=hid, more=t_count - 1, sstride=hv,
               dstride=h1)

    # --- embedding LayerNorm, by token blocks: X -> Y -----------------------------------
    for t0 in range(0, n_tok, tb):
        cut()
        nb = min(tb, n_tok - t0)
        b.phase = "load"
        b.dma(Opcode.DMA_LOAD, ab, x_seg.ext + t0 * hv, nb * hv)
        b.phase = "layernorm"
        layernorms(yb, ab, nb)
        b.phase = "store"
        b.dma(Opcode.DMA_STORE, yb, y_seg.ext + t0 * h1, nb * h1)

    for li, w in enumerate(weights):
        f = {k.split(".", 1)[1]: v for k, v in fr.items() if k.startswith(f"{li}.")}
        f_kq, f_v, f_ctx = fr["act_kq"], fr["act_v"], fr["act_ctx"]
        f_r1, f_r2 = fr["act_r1"], fr["act_r2"]
        wv_kc = -(-hid // cfg.cols)
        # --- attention, per sentence and head pair -------------------------------------
        tok = 0
        r_, c_ = cfg.rows, cfg.cols
        hl, pl = vl(2 * d), vl(4 * d)  # lines of a head's [k; q] (and context), of a pair's
        for si, t_pad in enumerate(lengths):
            t_lines = -(-t_pad // line) * line  # T rounded up to whole lines: p_2l+1's start
            nk = (t_lines + t_pad) // c_      # tiles per row block of the value matrix
            sl, pls = vl(t_pad), vl(t_lines + t_pad)
            kt_lines = t_pad * hl             # one head's (T, 2d) key tile matrix
            b.release(attn)
            ys = b.alloc("ys", t_pad * h1)
            kq = b.alloc("kq", t_pad * pl)
            kt = b.alloc("K", 2 * kt_lines)
            vb = b.alloc("V", (2 * d // r_) * nk)
            group = min(t_pad, SOFTMAX_TOKENS)
            mk = b.alloc("mask", 2 * sl)
            sc = b.alloc("s", 2 * group * sl)
            px = b.alloc("p", group * pls)
            cx = b.alloc("ctxp", t_pad * hl)
            loads = [(ys, y_seg.ext + tok * h1, t_pad * h1),
                     (mk, b.segments[f"mask{si}"].ext, 2 * sl)]
            cut()
            b.phase = "load"
            for ld in loads:
                b.dma(Opcode.DMA_LOAD, *ld)
            for p in range(pairs):
                if p:
                    cut(*loads)
                b.phase = "k_tiles"  # the MADDs add into zeroed tiles; V's zero blocks
                b.ew(Op.MUL, kt, kt, zero, 2 * kt_lines, bmode=OperandMode.COL)
                b.ew(Op.MUL, vb, vb, zero, (2 * d // r_) * nk, bmode=OperandMode.COL)
                rb0 = p * 2 * 2 * d // r_  # the pair's row blocks of W_kq
                kc_kq = -(-(hid + 1) // c_)
                pair_tiles = ws.tiles(Matrix("wkq_p", w["wkq"].ext + rb0 * kc_kq, 4 * d,
                                             hid + 1))
                gemvs(pair_tiles, (ys, h1), (kq, pl), t_pad, hid + 1,
                      _shift(f["wkq"] + LN_FRAC, f_kq, "kq"), "qk_proj")
                b.phase = "k_tiles"
                k_chunks = d // c_  # k_h: the right half of token t's row of K_h
                for t in range(t_pad):
                    for j in range(2):
                        dst = kt + j * kt_lines + (t // r_) * 2 * k_chunks + k_chunks
                        b.emit(Opcode.EW, op=int(Op.MADD), dst=dst, a=kq + t * pl + j * hl,
                               b=onehot + t % r_, c=dst, lines=k_chunks, tcols=k_chunks,
                               shift=0, amode=int(OperandMode.COL),
                               bmode=int(OperandMode.ROW), cmode=int(OperandMode.LINE))
                for j in range(2):
                    hd = 2 * p + j
                    rows_h = d // r_
                    buf = ws.use(w["wv"].ext + hd * rows_h * wv_kc, rows_h * wv_kc)
                    b.phase = "v_proj"
                    for t in range(t_pad):
                        b.gemv(vb + j * rows_h * nk, buf, ys + t * h1, d, hid,
                               _shift(f["wv"] + LN_FRAC, f_v, "v"), column=t + j * t_lines,
                               ystride=nk)
                # Per group of tokens: the scores of both heads (row 2u + j of the group's
                # score rows, sl lines apart), the mask, one SOFTMAX batch over the rows, and
                # each token's context from its [p_2l ; p_2l+1] (pls = 2 sl lines).
                for g0 in range(0, t_pad, group):
                    tokens = range(g0, min(t_pad, g0 + group))
                    for t in tokens:
                        row = sc + 2 * (t - g0) * sl
                        b.phase = "scores"
                        for j in range(2):
                            b.gemv(row + j * sl, kt + j * kt_lines, kq + t * pl + j * hl,
                                   t_pad, 2 * d, _shift(2 * f_kq, SM_IN_FRAC, "scores"))
                        b.phase = "mask"
                        b.ew(Op.ADD, row, row, mk, 2 * sl)
                    b.phase = "softmax"
                    b.emit(Opcode.SOFTMAX, dst=px, src=sc, n=t_pad, more=2 * len(tokens) - 1,
                           sstride=sl, dstride=sl)
                    b.phase = "context"
                    for t in tokens:
                        b.gemv(cx + t * hl, vb, px + (t - g0) * pls, 2 * d, t_lines + t_pad,
                               _shift(f_v + SM_OUT_FRAC, f_ctx, "ctx"))
                b.phase = "store"
                for t in range(t_pad):
                    b.dma(Opcode.DMA_STORE, cx + t * hl, ctx_seg.ext + (tok + t) * h1 + p * hl,
                          hl)
            tok += t_pad
        b.release(attn)
        # --- output projection, LayerNorm, FFN, LayerNorm: per token block ---------------
        last = li == len(weights) - 1
        gam_seg = w["gammas"]
        for t0 in range(0, n_tok, tb):
            nb = min(tb, n_tok - t0)
            gam_loads = [(gam, gam_seg.ext, 2 * hv)] + ([(gam + 2 * hv, fin_seg.ext, 2 * hv)]
                                                        if last else [])
            cut()
            b.phase = "load"
            for ld in gam_loads:
                b.dma(Opcode.DMA_LOAD, *ld)
            b.dma(Opcode.DMA_LOAD, ctxb, ctx_seg.ext + t0 * h1, nb * h1)
            b.dma(Opcode.DMA_LOAD, yb, y_seg.ext + t0 * h1, nb * h1)
            gemvs(ws.tiles(w["wo"]), (ctxb, h1), (ab, hv), nb,
                  hid + 1, _shift(f["wo"] + f_ctx, f_r1, "a"), "out_proj")
            b.phase = "residual"
            for t in range(nb):
                b.ew(Op.MUL, rb + t * hv, gam, yb + t * h1, hv,
                     _shift(f["g_in"] + LN_FRAC, f_r1, "t1"))
                b.ew(Op.ADD, rb + t * hv, rb + t * hv, ab + t * hv, hv)
            b.phase = "layernorm"
            layernorms(y1b, rb, nb)
            up = ws.tiles(w["w1"])
            gemvs(up, (y1b, h1), (gb, gl), nb, hid + 1,
                  _shift(f["w1"] + LN_FRAC, GELU_IN_FRAC, "m"), "ffn_up")
            b.phase = "gelu"
            for t in range(nb):
                b.nl(NLUnit.GELU, gb + t * gl, gb + t * gl, vl(ffn))
            gemvs(ws.tiles(w["w2"]), (gb, gl), (ab, hv), nb,
                  ffn + 1, _shift(f["w2"] + GELU_OUT_FRAC, f_r2, "o2"), "ffn_down")
            b.phase = "residual"
            for t in range(nb):
                b.ew(Op.MUL, rb + t * hv, gam + hv, y1b + t * h1, hv,
                     _shift(f["g1"] + LN_FRAC, f_r2, "t2"))
                b.ew(Op.ADD, rb + t * hv, rb + t * hv, ab + t * hv, hv)
            b.phase = "layernorm"
            layernorms(yb, rb, nb)
            for t in range(nb):
                if last:
                    b.phase = "affine"
                    out_t = ab + t * hv
                    b.ew(Op.MUL, out_t, gam + 2 * hv, yb + t * h1, hv,
                         _shift(fr["g_out"] + LN_FRAC, fr["act_out"], "out"))
                    b.ew(Op.ADD, out_t, out_t, gam + 3 * hv, hv)
            b.phase = "store"
            if last:
                b.dma(Opcode.DMA_STORE, ab, out_seg.ext + t0 * hv, nb * hv)
            else:
                b.dma(Opcode.DMA_STORE, yb, y_seg.ext + t0 * h1, nb * h1)
    return b, ws, masks
