"""Every emitted design passes ``verilator --lint-only -Wall`` but for the documented
allowlist (gen/lint.py), for a matrix of configurations of every generator."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from gen.cli import main
from gen.lint import LINT_ALLOWLIST, lint_design
from gen.registry import GENERATORS
from sim.config_strategies import SIM_LIMITS, parameter_sets

DEEP = [pytest.mark.slow, pytest.mark.verify]
DRAWN = settings(max_examples=1, deadline=None, derandomize=True, database=None,
                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def _assert_clean(generator, config, design, tmp_path):
    report = lint_design(design, generator.module_name, tmp_path)
    assert report.clean, (f"{generator.name} {config.to_dict()}: {len(report.findings)} "
                          "findings:\n" + "\n".join(map(str, report.findings[:20])))
    assert sum(report.allowed.values()) > 0  # Verilator did run and report


# Every generator's default configuration is linted as the CLI writes it
# (tests/test_cli.py::test_every_registered_generator_emits_lint_clean_verilog).


def _drawn(name, data, tmp_path):
    generator = GENERATORS[name]
    params = data.draw(parameter_sets(generator.config_class, SIM_LIMITS))
    try:
        config = generator.config_class(**params)
        # Some fields are the cycle model's alone (the accelerator's read_latency, pe_latency):
        # the hardware refuses other values with its own ValueError, before building anything.
        design = generator.build(config)
    except (ValueError, TypeError):
        assume(False)
    _assert_clean(generator, config, design, tmp_path)


@pytest.mark.parametrize("name", list(GENERATORS))
@DRAWN
@given(data=st.data())
def test_drawn_config_is_lint_clean(name, data, tmp_path_factory):
    _drawn(name, data, tmp_path_factory.mktemp("lint"))


@pytest.mark.parametrize("name", [pytest.param(n, marks=DEEP) for n in GENERATORS])
@settings(DRAWN, max_examples=12, derandomize=False)
@given(data=st.data())
def test_drawn_configs_are_lint_clean_deep(name, data, tmp_path_factory):
    _drawn(name, data, tmp_path_factory.mktemp("lint"))


class IgnoresAnInput(wiring.Component):
    """A design that never reads its input ``b``: a finding, not an allowlisted warning."""

    a: In(4)
    b: In(4)
    y: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(self.a)
        return m


def test_an_unused_top_level_input_is_a_finding(tmp_path):
    report = lint_design(IgnoresAnInput(), "ignores_an_input", tmp_path)
    assert [(f.code, f.top_input) for f in report.findings] == [("UNUSEDSIGNAL", True)]
    assert "'b'" in report.findings[0].message


def test_every_allowlist_entry_has_a_reason():
    assert all(len(entry.reason) > 40 for entry in LINT_ALLOWLIST)


def test_cli_lint(capsys, tmp_path):
    assert main(["lint", "pe-array", "--rows", "2", "--cols", "3", "--explain",
                 "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pe-array: verilator --lint-only -Wall" in out and "0 findings" in out
    assert "allowed WIDTHEXPAND" in out and (tmp_path / "pe_array.v").exists()
    assert main(["lint", "pe-array", "--rows", "0"]) == 2
    assert "rows must be in 1..256, got 0" in capsys.readouterr().err
