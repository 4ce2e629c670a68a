"""The README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
EXAMPLES = re.findall(r"```python\n(.*?)```", README, re.S)


def test_readme_has_the_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_python_example_runs(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    from golden.accelerator import Opcode

    if "run_model" in EXAMPLES[index] and not hasattr(Opcode, "LAYERNORM"):
        pytest.skip("the accelerator has no LAYERNORM instruction yet")
    exec(compile(EXAMPLES[index], f"README.md example {index + 1}", "exec"), {})
    if index == 0:
        assert (tmp_path / "build" / "example" / "pe_array.v").exists()
    elif "run_model" in EXAMPLES[index]:  # MiniLM's first layer: similarities, cosine
        out = capsys.readouterr().out
        assert "cycles" not in out and float(out.split("]]")[1].split()[0]) >= 0.999
    else:  # the accelerator: the error printed, then the cycle table
        out = capsys.readouterr().out.splitlines()
        assert float(out[0]) < 0.01 and out[1].split()[:3] == ["phase", "instr", "cycles"]
