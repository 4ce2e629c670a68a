"""Shared fixtures: seeded RNGs and measurements printed in the pytest summary."""

import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A NumPy generator seeded from the test's name, so every test is reproducible."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def measure(record_property):
    """Record a measured figure; all of them are listed at the end of the run (with xdist too)."""

    def record(text: str) -> None:
        record_property("measured", text)

    return record


def pytest_terminal_summary(terminalreporter):
    lines = [(report.nodeid, value)
             for report in terminalreporter.stats.get("passed", [])
             for key, value in getattr(report, "user_properties", []) if key == "measured"]
    if lines:
        terminalreporter.section("measured in simulation")
        for nodeid, value in sorted(lines):
            terminalreporter.write_line(f"{nodeid.split('::')[-1]}: {value}")
