"""Project structure rules that keep the golden models honest and the layout navigable."""

import subprocess
import sys
from pathlib import Path

import pytest

from boards import BOARDS, get_platform

ROOT = Path(__file__).resolve().parent.parent


def test_golden_models_never_import_the_hardware():
    # A golden model that used the hardware description would check the hardware against itself.
    code = ("import sys, golden.pe_array, golden.reduction_tree, golden.fixed_point; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('hw', 'amaranth', 'sim')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# Modules of shared machinery rather than blocks. ``dsp`` is the multiplier-register helper of
# the PE; its ECP5 netlist is checked against the PE's golden model in tests/test_pe.py.
NOT_BLOCKS = {"__init__", "arith", "config", "dsp", "pipeline", "piecewise"}


@pytest.mark.parametrize("module", sorted(str(p.relative_to(ROOT / "hw").with_suffix(""))
                                          for p in (ROOT / "hw").rglob("*.py")
                                          if p.stem not in NOT_BLOCKS))
def test_every_block_has_hardware_model_and_test_of_the_same_name(module):
    assert (ROOT / "golden" / f"{module}.py").exists()
    assert (ROOT / "tests" / f"test_{Path(module).name}.py").exists()


def test_boards_resolve_to_amaranth_boards_platforms():
    for name in BOARDS:
        assert type(get_platform(name)).__module__.startswith("amaranth_boards.")
    with pytest.raises(ValueError, match="board must be one of icebreaker, .*got 'de0'"):
        get_platform("de0")
