"""Load a BERT-style checkpoint directory: ``config.json``, ``model.safetensors`` and
``tokenizer.json`` (the Hugging Face layout), with NumPy and ``tokenizers``, without torch.

The dimensions come from ``config.json``, the weights by their names (``embeddings.*`` and
``encoder.layer.<i>.*``, optionally under a ``bert.`` prefix). Needs the ``models`` extra:
``pip install 'accelgen[models]'`` (``safetensors`` and ``tokenizers``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.minilm import BertDims, layer_weight_names

__all__ = ["MODELS_EXTRA", "Checkpoint", "load_checkpoint", "require_models_extra"]

#: How to install what this module needs.
MODELS_EXTRA = "pip install 'accelgen[models]'"

_EMBEDDINGS = ("word_embeddings.weight", "position_embeddings.weight",
               "token_type_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias")


def require_models_extra(module: str):
    """Import ``safetensors.numpy`` or ``tokenizers``; an ``ImportError`` that says how to
    install them if they are missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{module.split('.')[0]} is not installed: model checkpoints need "
                          f"the models extra ({MODELS_EXTRA})") from None


@dataclass
class Checkpoint:
    """A loaded BERT-style checkpoint.

    Attributes
    ----------
    path : Path
        The checkpoint directory.
    dims : golden.minilm.BertDims
        Dimensions from ``config.json``.
    weights : dict of numpy.ndarray
        float64 weights by their canonical names (no ``bert.`` prefix).
    tokenizer : tokenizers.Tokenizer
        The fast tokenizer of ``tokenizer.json`` (padding and truncation turned off).
    max_tokens : int
        Longest input in tokens, ``[CLS]`` and ``[SEP]`` included: the
        ``sentence_bert_config.json`` ``max_seq_length`` if present, else
        ``max_position_embeddings``.
    """

    path: Path
    dims: BertDims
    weights: dict[str, np.ndarray]
    tokenizer: object
    max_tokens: int

    def tokenize(self, sentences, max_tokens: int | None = None) -> list[np.ndarray]:
        """Token ids of each sentence (``[CLS] ... [SEP]``).

        Raises
        ------
        ValueError
            No sentences, a sentence that is not a non-empty string, or one longer than
            ``max_tokens`` (default :attr:`max_tokens`) tokens.
        """
        limit = self.max_tokens if max_tokens is None else min(max_tokens, self.max_tokens)
        if isinstance(sentences, str):
            sentences = [sentences]
        sentences = list(sentences)
        if not sentences:
            raise ValueError("sentences: give at least one sentence")
        out = []
        for i, text in enumerate(sentences):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"sentence {i + 1} must be a non-empty string, got {text!r:.40}")
            ids = np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)
            if len(ids) > limit:
                raise ValueError(f"sentence {i + 1} has {len(ids)} tokens, more than the "
                                 f"maximum of {limit} ({text[:40]!r}...)")
            out.append(ids)
        return out


def _read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"checkpoint {path.parent} has no {path.name} ({what})") from None
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"checkpoint file {path} is unreadable: {error}") from None


def _dims(config: dict, directory: Path) -> BertDims:
    kind = config.get("model_type")
    archs = config.get("architectures") or []
    if kind != "bert" and not any("Bert" in a for a in archs):
        raise ValueError(f"checkpoint {directory} is not BERT-style: config.json model_type is "
                         f"{kind!r} (expected 'bert')")
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise ValueError(f"checkpoint {directory}: hidden_act must be 'gelu' (exact erf), "
                         f"got {act!r}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"checkpoint {directory}: position_embedding_type must be 'absolute'")
    keys = {"hidden": "hidden_size", "heads": "num_attention_heads",
            "layers": "num_hidden_layers", "ffn": "intermediate_size"}
    values = {}
    for field, key in keys.items():
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"checkpoint {directory}: config.json {key} must be a positive "
                             f"integer, got {value!r}")
        values[field] = value
    if values["hidden"] % values["heads"]:
        raise ValueError(f"checkpoint {directory}: hidden_size {values['hidden']} is not a "
                         f"multiple of num_attention_heads {values['heads']}")
    return BertDims(**values, eps=float(config.get("layer_norm_eps", 1e-12)))


def load_checkpoint(path) -> Checkpoint:
    """Load the BERT-style checkpoint in directory ``path``.

    Raises
    ------
    ValueError
        A missing directory or file, a config that is not BERT-style, or missing or misshapen
        tensors (named).
    ImportError
        If the ``models`` extra is not installed (the message says how to install it).
    """
    directory = Path(path)
    if not directory.is_dir():
        raise ValueError(f"checkpoint {directory} is not a directory (fetch MiniLM with "
                         f"`accelgen fetch-model minilm`)")
    dims = _dims(_read_json(directory / "config.json", "the model's dimensions"), directory)
    st = require_models_extra("safetensors.numpy")
    tokenizers = require_models_extra("tokenizers")
    weights_file = directory / "model.safetensors"
    if not weights_file.is_file():
        raise ValueError(f"checkpoint {directory} has no model.safetensors")
    try:
        raw = st.load_file(str(weights_file))
    except Exception as error:  # safetensors raises its own error types
        raise ValueError(f"checkpoint file {weights_file} is unreadable: {error}") from None
    raw = {name.removeprefix("bert."): value for name, value in raw.items()}
    h, f = dims.hidden, dims.ffn
    shapes = {f"embeddings.{n}": None for n in _EMBEDDINGS}
    for i in range(dims.layers):
        shapes.update(layer_weight_names(i, h, f))
    missing = [name for name in shapes if name not in raw]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(f"checkpoint {directory} is missing tensors {', '.join(missing[:3])}"
                         f"{more}")
    weights = {}
    for name, shape in shapes.items():
        value = np.asarray(raw[name], dtype=np.float64)
        if shape is not None and value.shape != shape:
            raise ValueError(f"checkpoint {directory}: tensor {name} has shape {value.shape}, "
                             f"expected {shape}")
        weights[name] = value
    for name in ("LayerNorm.weight", "LayerNorm.bias"):
        if weights[f"embeddings.{name}"].shape != (h,):
            raise ValueError(f"checkpoint {directory}: tensor embeddings.{name} has shape "
                             f"{weights[f'embeddings.{name}'].shape}, expected ({h},)")
    for name in ("word_embeddings.weight", "position_embeddings.weight",
                 "token_type_embeddings.weight"):
        shape = weights[f"embeddings.{name}"].shape
        if len(shape) != 2 or shape[1] != h:
            raise ValueError(f"checkpoint {directory}: tensor embeddings.{name} has shape "
                             f"{shape}, expected (n, {h})")
    token_file = directory / "tokenizer.json"
    if not token_file.is_file():
        raise ValueError(f"checkpoint {directory} has no tokenizer.json")
    try:
        tokenizer = tokenizers.Tokenizer.from_file(str(token_file))
    except Exception as error:  # tokenizers raises a bare Exception
        raise ValueError(f"checkpoint file {token_file} is unreadable: {error}") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    max_tokens = weights["embeddings.position_embeddings.weight"].shape[0]
    st_config = directory / "sentence_bert_config.json"
    if st_config.is_file():
        max_tokens = min(max_tokens, int(_read_json(st_config, "").get("max_seq_length",
                                                                       max_tokens)))
    return Checkpoint(directory, dims, weights, tokenizer, max_tokens)
