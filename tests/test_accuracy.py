"""`accelgen accuracy`: the report's figures meet the targets and its files are written."""

import json

from gen.cli import main


def test_accuracy_report_meets_targets(tmp_path, capsys, measure):
    assert main(["accuracy", "-o", str(tmp_path)]) == 0
    capsys.readouterr()
    data = json.loads((tmp_path / "accuracy.json").read_text())
    assert data["exp"]["ours, order 1"]["max_rel_error"] <= 0.031
    assert data["exp"]["ours, order 2"]["max_rel_error"] <= 0.003
    gelu = data["gelu"]["ours, ReLU - correction: hardware output"]
    assert gelu["max_abs_error_lsb"] <= 2 and gelu["approximation_max_abs_error"] <= 1e-4
    assert gelu["table_words"] < data["gelu"]["Edge-MoE table"]["table_words"] == 177
    assert data["silu"]["ours, 8 segments: hardware output"]["max_abs_error"] <= 5e-3
    for row, methods in data["softmax"].items():
        assert methods["ours, exp order 2"]["max_abs_error"] <= 2 ** -9, row
        assert methods["ours, exp order 2"]["max_sum_error"] <= 0.01, row
    for row, summary in data["layernorm"].items():
        assert summary["max_error_lsb"] <= 0.51, row
    # Ours beats each published baseline on its own function.
    assert data["exp"]["ours, order 1"]["max_rel_error"] < \
        data["exp"]["Schraudolph, c = 60801"]["max_rel_error"]
    assert gelu["approximation_max_abs_error"] < data["gelu"]["Edge-MoE table"]["max_abs_error"]
    for name in ("exp", "gelu", "silu", "softmax"):
        assert (tmp_path / f"{name}_error.png").stat().st_size > 10_000
    measure(f"accuracy report: exp o1 {data['exp']['ours, order 1']['max_rel_error']:.4f}, "
            f"o2 {data['exp']['ours, order 2']['max_rel_error']:.5f}; GELU "
            f"{gelu['max_abs_error_lsb']:.2f} LSB, approximation "
            f"{gelu['approximation_max_abs_error']:.2e}, {gelu['table_words']} words")
