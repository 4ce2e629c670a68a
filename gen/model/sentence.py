"""A sentence-embedding model ready for the accelerator: a checkpoint, its folded and
quantized form, and the host's parts (tokens, embedding lookup, pooling, L2 norm)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.minilm import BertDims, cosine_matrix, encode, l2_normalize, mean_pool

from .checkpoint import Checkpoint, load_checkpoint
from .encoder import (
    MODEL_CONFIG,
    EncoderProgram,
    QuantizedModel,
    compile_encoder,
    fold,
    padded_length,
    quantize_model,
)

__all__ = ["CALIBRATION", "SentenceModel", "load_model"]

#: Sentences the activation formats are calibrated on (none is in the test sets).
CALIBRATION = (
    "A man is playing a guitar on the stage.",
    "The new movie is awesome and everyone should see it!",
    "Quantum computers use qubits, which can be in superposition, to solve problems.",
    "Where is the nearest train station?",
)


@dataclass
class SentenceModel:
    """A BERT-style sentence encoder for the accelerator.

    Attributes
    ----------
    checkpoint : Checkpoint
    quantized : QuantizedModel
    layers : int
        Encoder layers that run (all by default; fewer for tests).
    max_tokens : int
        Longest sentence accepted, ``[CLS]`` and ``[SEP]`` included (128: what the 8x8
        accelerator's 4096-line scratchpad holds the attention buffers of).
    """

    checkpoint: Checkpoint
    quantized: QuantizedModel
    layers: int
    max_tokens: int = 128

    @property
    def dims(self) -> BertDims:
        return self.quantized.folded.dims

    def tokenize(self, sentences) -> list[np.ndarray]:
        """Token ids per sentence (errors: see :meth:`Checkpoint.tokenize`)."""
        return self.checkpoint.tokenize(sentences, self.max_tokens)

    def embeddings_in(self, ids) -> np.ndarray:
        """The host's embedding lookup: word + position + token-type rows ``(T, hidden)``."""
        w = self.checkpoint.weights
        ids = np.asarray(ids, dtype=np.int64)
        return (w["embeddings.word_embeddings.weight"][ids]
                + w["embeddings.position_embeddings.weight"][:len(ids)]
                + w["embeddings.token_type_embeddings.weight"][0])

    def compile(self, lengths, config=None, **options) -> EncoderProgram:
        """The programs for sentences padded to ``lengths`` tokens (``options``: see
        :func:`compile_encoder`)."""
        return compile_encoder(self.quantized, lengths, config or MODEL_CONFIG, **options)

    def reference(self, ids_list) -> np.ndarray:
        """Float64 sentence embeddings (``golden.minilm``), unit norm, one row per sentence."""
        dims = self.dims
        return np.stack([l2_normalize(mean_pool(encode(self.checkpoint.weights, dims, ids)))
                         for ids in ids_list])

    def inputs(self, ids_list) -> tuple[list[int], list[np.ndarray]]:
        """Padded lengths and padded embedding sums of each sentence."""
        lengths, embs = [], []
        for ids in ids_list:
            t_pad = padded_length(len(ids))
            padded = np.concatenate([ids, np.zeros(t_pad - len(ids), dtype=np.int64)])
            lengths.append(t_pad)
            embs.append(self.embeddings_in(padded))
        return lengths, embs

    @staticmethod
    def pool(hidden_states, ids_list) -> np.ndarray:
        """The host's mean pooling over the real tokens and L2 normalisation."""
        return np.stack([l2_normalize(mean_pool(h[:len(ids)]))
                         for h, ids in zip(hidden_states, ids_list)])

    similarities = staticmethod(cosine_matrix)


def load_model(path, *, layers: int | None = None, calibration=CALIBRATION) -> SentenceModel:
    """Load a BERT-style checkpoint directory and prepare it for the accelerator.

    ``layers`` runs only the first layers (tests); ``calibration`` are the sentences the
    activation formats come from.
    """
    ck = path if isinstance(path, Checkpoint) else load_checkpoint(Path(path))
    dims = ck.dims
    if layers is not None:
        if not 1 <= layers <= dims.layers:
            raise ValueError(f"layers must be in 1..{dims.layers}, got {layers}")
        dims = BertDims(dims.hidden, dims.heads, layers, dims.ffn, dims.eps)
        ck = Checkpoint(ck.path, dims, ck.weights, ck.tokenizer, ck.max_tokens)
    model = SentenceModel(ck, None, dims.layers)  # type: ignore[arg-type]
    folded = fold(ck.weights, dims)
    ids = ck.tokenize(list(calibration))
    model.quantized = quantize_model(folded, [model.embeddings_in(i) for i in ids])
    return model
