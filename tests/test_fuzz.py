"""Configuration fuzzing: hypothesis draws parameter sets for every generator from its config's
``param`` metadata (``sim.config_strategies``).

- A set that a config rejects raises the documented ValueError or TypeError (naming a
  parameter) before any hardware is built: config classes live in ``golden``, which never
  imports ``hw``, and a component validates its config before anything else.
- A legal set builds, converts to Verilog, and passes a short golden-model check in the
  Amaranth simulator under random stalls (``fuzz_cases.CHECKS``).

``make verify`` runs the deep variants (many more examples, random seeds).
"""

import dataclasses
import re

import numpy as np
import pytest
from fuzz_cases import CHECKS
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gen.emit import verilog_text
from gen.registry import GENERATORS
from sim.config_strategies import SIM_LIMITS, illegal_parameter_sets, parameter_sets

DEEP = [pytest.mark.slow, pytest.mark.verify]
# The default suite: few examples, the same ones every run, no shrinking (a failure reports
# the drawn parameters as they are; simulation makes shrinking slow).
FAST = settings(max_examples=3, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck))
THOROUGH = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def _names_a_parameter(config_class, message: str) -> bool:
    return any(re.search(rf"\b{f.name}\b", message) for f in dataclasses.fields(config_class))


def _build_or_reject(name, params):
    """Build a legal set (returning the component and config), or check the rejection."""
    generator = GENERATORS[name]
    try:
        config = generator.config_class(**params)
        # A component may narrow a config's range to what its hardware implements (the
        # accelerator's cycle-model parameters): it too must name the parameter, before building.
        component = generator.build(config)
    except (ValueError, TypeError) as error:
        assert _names_a_parameter(generator.config_class, str(error)), (params, error)
        return None, None
    return component, config


def _fuzz_legal(name, data):
    generator = GENERATORS[name]
    params = data.draw(parameter_sets(generator.config_class, SIM_LIMITS), label="params")
    component, config = _build_or_reject(name, params)
    if component is None:
        return
    verilog = verilog_text(component, generator.module_name)
    assert f"module {generator.module_name}(" in verilog
    if name in CHECKS:
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        compared = CHECKS[name](generator, config, np.random.default_rng(seed))
        assert compared > 0


def _fuzz_illegal(name, data):
    generator = GENERATORS[name]
    params, field, error = data.draw(illegal_parameter_sets(generator.config_class))
    with pytest.raises(error) as raised:
        generator.config_class(**params)
    assert re.match(rf"{field}\b", str(raised.value)), (params, raised.value)


@pytest.mark.parametrize("name", list(GENERATORS))
@FAST
@given(data=st.data())
def test_drawn_parameter_sets_build_and_match_golden(name, data):
    _fuzz_legal(name, data)


@pytest.mark.parametrize("name", list(GENERATORS))
@settings(FAST, max_examples=25)
@given(data=st.data())
def test_broken_parameter_is_named_before_hardware(name, data):
    _fuzz_illegal(name, data)


@pytest.mark.parametrize("name", [pytest.param(n, marks=DEEP) for n in GENERATORS])
@THOROUGH
@given(data=st.data())
def test_drawn_parameter_sets_deep(name, data):
    _fuzz_legal(name, data)


@pytest.mark.parametrize("name", [pytest.param(n, marks=DEEP) for n in GENERATORS])
@settings(THOROUGH, max_examples=300)
@given(data=st.data())
def test_broken_parameter_deep(name, data):
    _fuzz_illegal(name, data)


def test_every_config_class_lives_in_golden():
    """Why a rejected set never reaches hardware: each generator's config class is in golden
    (which never imports hw: test_structure.py), and a component validates its config before
    it builds anything."""
    assert all(g.config_class.__module__.startswith("golden.") for g in GENERATORS.values())
