"""Float64 reference forward of a BERT-style sentence encoder (all-MiniLM-L6-v2).

Per sentence of token ids ``t_0 .. t_{T-1}`` (``[CLS] ... [SEP]``)::

    x = LayerNorm(word[t] + position[0..T-1] + token_type[0])         embeddings
    per layer:
        q, k, v = x W_q^T + b_q, x W_k^T + b_k, x W_v^T + b_v             (T, H) each
        per head h (d = H / heads columns): P = softmax(q_h k_h^T / sqrt(d) + mask)
        a = concat_h(P v_h) W_o^T + b_o
        x = LayerNorm(x + a)                                            attention output
        g = GELU(x W_1^T + b_1)                                         exact erf GELU
        x = LayerNorm(x + g W_2^T + b_2)                                output
    e = mean of x over the unmasked tokens; embedding = e / |e|_2       pooling, L2 norm

``mask`` holds 1 for a real token, 0 for padding: padded keys get ``-inf`` scores (zero
attention) and are left out of the mean. LayerNorm is ``(x - mean) / sqrt(var + eps) * gamma +
beta`` over the hidden dimension (biased variance). This is the forward of Hugging Face's
``BertModel`` with sentence-transformers' mean pooling and ``Normalize`` module, in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .nonlinear.baselines import gelu_exact

__all__ = ["BertDims", "layer_weight_names", "layer_norm", "embed", "encoder_layer", "encode",
           "mean_pool", "l2_normalize", "sentence_embeddings", "cosine_matrix"]


@dataclass(frozen=True)
class BertDims:
    """Dimensions of a BERT-style encoder: ``hidden`` size, attention ``heads``, ``layers``,
    ``ffn`` (intermediate) size and the LayerNorm ``eps``."""

    hidden: int
    heads: int
    layers: int
    ffn: int
    eps: float = 1e-12

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def layer_weight_names(i: int, hidden: int, ffn: int) -> dict[str, tuple[int, ...]]:
    """Names and shapes of encoder layer ``i``'s tensors (Hugging Face ``BertModel`` names)."""
    p, h, f = f"encoder.layer.{i}.", hidden, ffn
    return {
        p + "attention.self.query.weight": (h, h), p + "attention.self.query.bias": (h,),
        p + "attention.self.key.weight": (h, h), p + "attention.self.key.bias": (h,),
        p + "attention.self.value.weight": (h, h), p + "attention.self.value.bias": (h,),
        p + "attention.output.dense.weight": (h, h), p + "attention.output.dense.bias": (h,),
        p + "attention.output.LayerNorm.weight": (h,), p + "attention.output.LayerNorm.bias": (h,),
        p + "intermediate.dense.weight": (f, h), p + "intermediate.dense.bias": (f,),
        p + "output.dense.weight": (h, f), p + "output.dense.bias": (h,),
        p + "output.LayerNorm.weight": (h,), p + "output.LayerNorm.bias": (h,),
    }


def layer_norm(x, gamma, beta, eps: float) -> np.ndarray:
    """LayerNorm over the last axis (biased variance), float64."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def embed(weights, dims: BertDims, ids) -> np.ndarray:
    """Embeddings ``(T, hidden)`` of token ids ``ids`` (token type 0)."""
    ids = np.asarray(ids, dtype=np.int64)
    w = weights
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:len(ids)]
         + w["embeddings.token_type_embeddings.weight"][0])
    return layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                      dims.eps)


def encoder_layer(weights, dims: BertDims, i: int, x, mask=None, *,
                  intermediates: dict | None = None) -> np.ndarray:
    """Encoder layer ``i`` on ``x`` ``(T, hidden)``; ``mask`` ``(T,)`` 1 real, 0 padding.
    With a dict ``intermediates``, every intermediate tensor is stored in it by name."""
    p = f"encoder.layer.{i}."
    w = {name[len(p):]: value for name, value in weights.items() if name.startswith(p)}
    x = np.asarray(x, dtype=np.float64)
    t_len, d = len(x), dims.head_dim
    keep = np.ones(t_len, bool) if mask is None else np.asarray(mask).astype(bool)
    q = x @ w["attention.self.query.weight"].T + w["attention.self.query.bias"]
    k = x @ w["attention.self.key.weight"].T + w["attention.self.key.bias"]
    v = x @ w["attention.self.value.weight"].T + w["attention.self.value.bias"]
    ctx = np.empty_like(q)
    scores = []
    for h in range(dims.heads):
        cols = slice(h * d, (h + 1) * d)
        s = q[:, cols] @ k[:, cols].T / math.sqrt(d)
        s = np.where(keep[None, :], s, -np.inf)
        e = np.exp(s - s.max(axis=1, keepdims=True))
        prob = e / e.sum(axis=1, keepdims=True)
        ctx[:, cols] = prob @ v[:, cols]
        scores.append(s)
    a = ctx @ w["attention.output.dense.weight"].T + w["attention.output.dense.bias"]
    r1 = x + a
    x1 = layer_norm(r1, w["attention.output.LayerNorm.weight"],
                    w["attention.output.LayerNorm.bias"], dims.eps)
    m = x1 @ w["intermediate.dense.weight"].T + w["intermediate.dense.bias"]
    g = gelu_exact(m)
    o = g @ w["output.dense.weight"].T + w["output.dense.bias"]
    r2 = x1 + o
    y = layer_norm(r2, w["output.LayerNorm.weight"], w["output.LayerNorm.bias"], dims.eps)
    if intermediates is not None:
        intermediates.update({"x": x, "q": q, "k": k, "v": v, "s": np.stack(scores),
                              "ctx": ctx, "a": a, "r1": r1, "x1": x1, "m": m, "g": g, "o": o,
                              "r2": r2, "y": y})
    return y


def encode(weights, dims: BertDims, ids, mask=None, *, intermediates: list | None = None):
    """Last hidden states ``(T, hidden)`` of token ids ``ids``; with a list
    ``intermediates``, one dict of intermediate tensors per layer is appended to it."""
    x = embed(weights, dims, ids)
    for i in range(dims.layers):
        values = {} if intermediates is not None else None
        x = encoder_layer(weights, dims, i, x, mask, intermediates=values)
        if intermediates is not None:
            intermediates.append(values)
    return x


def mean_pool(hidden, mask=None) -> np.ndarray:
    """Mean of ``hidden`` ``(T, H)`` over the tokens whose ``mask`` is 1 (all by default)."""
    hidden = np.asarray(hidden, dtype=np.float64)
    keep = np.ones(len(hidden), bool) if mask is None else np.asarray(mask).astype(bool)
    return hidden[keep].mean(axis=0)


def l2_normalize(v) -> np.ndarray:
    """``v / |v|_2`` along the last axis."""
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def sentence_embeddings(weights, dims: BertDims, ids_list) -> np.ndarray:
    """Unit-norm sentence embeddings ``(n, hidden)`` of each sentence's token ids."""
    return np.stack([l2_normalize(mean_pool(encode(weights, dims, ids))) for ids in ids_list])


def cosine_matrix(a, b=None) -> np.ndarray:
    """Cosine similarities between the rows of ``a`` and of ``b`` (default ``a``)."""
    a = l2_normalize(a)
    b = a if b is None else l2_normalize(b)
    return a @ b.T
