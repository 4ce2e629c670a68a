"""The accelgen command line: list, emit (files, manifest, errors), config files."""

import json
import re

import pytest

from gen.cli import main
from gen.lint import lint_verilog
from gen.registry import GENERATORS, get_generator


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_list_shows_every_generator_and_parameter(capsys):
    status, out, _ = run(capsys, "list")
    assert status == 0
    for generator in GENERATORS.values():
        assert f"{generator.name}: " in out
    assert "--rows" in out and "(1..256)" in out and "--tree-levels-per-stage" in out


def test_emit_writes_verilog_and_manifest(tmp_path, capsys):
    status, out, _ = run(capsys, "emit", "pe-array", "--rows", "3", "--cols", "5",
                         "--in-width", "6", "--no-signed", "--ops", "mul", "add",
                         "-o", str(tmp_path))
    assert status == 0 and "latency 7 cycles" in out
    verilog = (tmp_path / "pe_array.v").read_text()
    assert re.search(r"module pe_array\s*\(", verilog)
    manifest = json.loads((tmp_path / "pe_array.json").read_text())
    assert manifest["parameters"]["rows"] == 3 and manifest["parameters"]["signed"] is False
    assert manifest["parameters"]["ops"] == ["mul", "add"]
    assert manifest["latency"] == 7 and manifest["derived"]["output_width"] == 12
    ports = {p["name"]: p for p in manifest["ports"]}
    assert ports["i__payload"]["direction"] == "input"
    assert ports["o__valid"] == {"name": "o__valid", "direction": "output", "width": 1}
    # Widths in the manifest are the emitted module's.
    declared = re.search(r"input \[(\d+):0\] i__payload;", verilog)
    assert int(declared.group(1)) + 1 == ports["i__payload"]["width"]
    assert {"amaranth", "python"} <= set(manifest["tools"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pe_array.json", "pe_array.v"]


@pytest.mark.parametrize("name", list(GENERATORS))
def test_every_registered_generator_emits_lint_clean_verilog(name, tmp_path, capsys):
    # Every generator's default configuration as users get it: the file `accelgen emit` wrote,
    # through Verilator's front end with -Wall and the documented allowlist (gen/lint.py). The
    # C++ build of each block's Verilog is the business of its own tests (they simulate it);
    # compiling every default here (the 8x8 PE array alone: 5 CPU-minutes) proved nothing more.
    module = get_generator(name).module_name
    status, _, _ = run(capsys, "emit", name, "-o", str(tmp_path / "out"))
    assert status == 0
    report = lint_verilog((tmp_path / "out" / f"{module}.v").read_text(), module,
                          tmp_path / "lint")
    assert report.clean, "\n".join(map(str, report.findings[:20]))
    assert sum(report.allowed.values()) > 0  # Verilator did run and report


@pytest.mark.parametrize("argv,message", [
    (["emit", "pe-array", "--rows", "0"], "rows must be in 1..256, got 0"),
    (["emit", "pe-array", "--in-width", "40"], "in_width must be in 2..32, got 40"),
    (["emit", "pe-array", "--acc-width", "4"], "acc_width must be in 8..64"),
    (["emit", "pe", "--out-width", "1"], "out_width must be in 2..64, got 1"),
    (["emit", "pe-array", "--ops", "mul", "div"], "ops must be drawn from"),
    (["emit", "pe-array", "--rows", "abc"], "argument --rows: invalid int value: 'abc'"),
    (["emit", "pe-array", "--name", "3bad"], "name must be a Verilog identifier"),
    (["emit", "nonesuch"], "invalid choice: 'nonesuch'"),
])
def test_bad_input_is_one_line_nonzero_exit_no_files(argv, message, tmp_path, capsys):
    out_dir = tmp_path / "out"
    try:
        status = main(argv + ["-o", str(out_dir)])
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    _, err = capsys.readouterr()
    assert status != 0
    assert len(err.strip().splitlines()) == 1 and err.startswith("accelgen: error:")
    assert message in err
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_config_file_with_flag_overrides(tmp_path, capsys):
    config = tmp_path / "design.toml"
    config.write_text('[pe_array]\nrows = 2\ncols = 3\nin_width = 4\nops = ["mul", "max"]\n')
    status, _, _ = run(capsys, "emit", "pe-array", "--config", str(config), "--cols", "7",
                       "-o", str(tmp_path))
    assert status == 0
    parameters = json.loads((tmp_path / "pe_array.json").read_text())["parameters"]
    assert (parameters["rows"], parameters["cols"], parameters["in_width"]) == (2, 7, 4)
    assert parameters["ops"] == ["mul", "max"]


@pytest.mark.parametrize("text,message", [
    ("[pe_array]\nrows = \n", "malformed config file"),
    ("[reduction_tree]\nn = 4\n", "has no [pe_array] table"),
    ("[pe_array]\nrowz = 4\n", "unknown parameter 'rowz'"),
    ("[pe_array]\nrows = 999\n", "rows must be in 1..256, got 999"),
    ("[pe_array]\nsigned = \"yes\"\n", "signed must be a bool"),
])
def test_malformed_config_files_are_rejected(text, message, tmp_path, capsys):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    status, _, err = run(capsys, "emit", "pe-array", "--config", str(config),
                         "-o", str(tmp_path / "out"))
    assert status == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path, capsys):
    status, _, err = run(capsys, "emit", "pe-array", "--config", str(tmp_path / "none.toml"))
    assert status == 2 and "cannot read config file" in err


def test_emit_csr_also_writes_the_register_map(tmp_path, capsys):
    status, out, _ = run(capsys, "emit", "csr", "-o", str(tmp_path))
    assert status == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["accel_csr.h", "accel_csr.py", "accel_csr_regmap.json", "csr.json", "csr.v"]
    assert "accel_csr.h" in out


def test_demo_runs_the_gemv_and_both_layers(capsys, tmp_path):
    """`accelgen demo` (small sizes; the layers on the golden machine, their RTL runs are the
    slow tests of tests/test_accelerator.py): measured figures printed and written as JSON."""
    status, out, _ = run(capsys, "demo", "--rows", "2", "--cols", "4", "--m", "9", "--k", "13",
                         "--layers", "golden", "--no-minilm", "-o", str(tmp_path))
    assert status == 0, out
    assert out.count("bit-exact: yes") == 2
    gemv = json.loads((tmp_path / "gemv.json").read_text())
    assert [r["bit_exact"] for r in gemv["runs"]] == [True, True]
    assert gemv["runs"][0]["cycles"] >= gemv["runs"][0]["vectors"] > 0
    layers = json.loads((tmp_path / "layers.json").read_text())
    assert [r["layer"] for r in layers["runs"]] == ["mamba", "attention"]
    for r in layers["runs"]:
        assert r["bit_exact"] is None and r["cycles_measured"] is None  # golden backend
        assert r["max_abs_error"] < 0.01 and r["rel_error"] < 0.03   # gen/compiler/'s bounds
        assert r["cycles_model"] == sum(p["cycles"] for p in r["phases"].values())
        assert 0 < r["utilization"] < 1
    assert "mamba (d_model 16, d_inner 32, d_state 4, seq_len 8)" in out


def test_demo_layer_names_are_checked():
    from gen.demo import run_layer

    with pytest.raises(ValueError, match="layer must be mamba or attention"):
        run_layer("conv", backend="golden")
