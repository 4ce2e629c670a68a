"""Project structure rules that keep the golden models honest and the layout navigable."""

import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.lib import stream
from fuzz_cases import CHECKS, NO_FUZZ_CHECK

from boards import BOARDS, get_platform
from gen.registry import GENERATORS
from sim.contracts import FORMAL_TARGETS

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


def _stream_members(signature) -> list[str]:
    """Names of a signature's stream members (arrays of streams included), nested too."""
    found = []
    for name, member in signature.members.items():
        if not member.is_signature:
            continue
        if isinstance(member.signature, stream.Signature):
            found.append(name)
        else:
            found += [f"{name}.{inner}" for inner in _stream_members(member.signature)]
    return found


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_streaming_generator_has_a_contract_and_a_fuzz_check(name):
    # A block added by the README's "Adding a block" guide is linted, fuzz-built and CLI-tested
    # by default; its formal proof and its golden-model fuzz check need a row in each table.
    generator = GENERATORS[name]
    streams = _stream_members(generator.build(generator.config_class()).signature)
    if not streams:
        return  # no stream ports (an AXI-only slave, the whole accelerator): no stream contract
    assert name in FORMAL_TARGETS, (
        f"{name} has stream ports {streams} but no row in FORMAL_TARGETS (sim/contracts.py): "
        f"add a FormalTarget at a small configuration (see README 'Adding a block')")
    assert name in CHECKS or name in NO_FUZZ_CHECK, (
        f"{name} has stream ports {streams} but no golden-model check in CHECKS "
        f"(tests/fuzz_cases.py): add one (see README 'Adding a block')")
    assert not (name in CHECKS and name in NO_FUZZ_CHECK)
