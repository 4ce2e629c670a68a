"""The verification harness catches what it must: wrong, lost and extra words; waves on demand."""

import numpy as np
import pytest

from hw.pipeline import StreamPipeline
from hw.reduction_tree import ReductionTree
from sim.amaranth_sim import simulate_stream
from sim.runner import SimulationError, fst_supported, run_stream_test
from sim.scoreboard import MismatchError


def tree_case(n_vectors=50):
    values = np.arange(n_vectors * 3, dtype=np.int64).reshape(n_vectors, 3) % 100
    return StreamPipeline(ReductionTree(n=3, width=8)), {"value": values}, \
        {"value": values.sum(axis=1)}


def test_amaranth_level_reports_first_mismatch_with_index_and_values():
    dut, inputs, expected = tree_case()
    expected["value"][17] += 1
    with pytest.raises(MismatchError, match=r"output #17 .*value: expected \d+, got \d+"):
        simulate_stream(dut, inputs, expected, valid_prob=0.5, ready_prob=0.5)


def test_amaranth_level_reports_lost_and_extra_words():
    dut, inputs, expected = tree_case()
    with pytest.raises(MismatchError, match="received 50 of 51 expected outputs"):
        simulate_stream(dut, inputs, {"value": np.append(expected["value"], 0)})
    dut, inputs, expected = tree_case()
    with pytest.raises(MismatchError, match="extra output #49"):
        simulate_stream(dut, inputs, {"value": expected["value"][:49]})


def test_verilator_level_reports_mismatch_and_names_the_wave_file():
    dut, inputs, expected = tree_case()
    expected["value"][30] = 0
    with pytest.raises(SimulationError) as error:
        run_stream_test(dut, "tree3", inputs, expected, valid_prob=0.8, ready_prob=0.8,
                        waves=True)
    message = str(error.value)
    assert "output #30" in message and "differs from the golden model" in message
    wave_file = message.split("waves: ")[1].strip()
    assert wave_file.endswith("dump.fst" if fst_supported() else "dump.vcd")
    with open(wave_file, "rb") as f:
        content = f.read()
    assert len(content) > 100  # a real wave file was written
    if not fst_supported():
        assert b"$var" in content and b"o__payload" in content


def test_verilator_level_reports_lost_words(monkeypatch):
    monkeypatch.setenv("ACCELGEN_WAVES_ON_FAILURE", "0")  # no traced rerun needed here
    dut, inputs, expected = tree_case()
    with pytest.raises(SimulationError, match="received 50 of 51 expected outputs"):
        run_stream_test(dut, "tree3", inputs, {"value": np.append(expected["value"], 7)})


def test_failing_run_without_waves_names_the_wave_file_of_a_rerun(monkeypatch):
    """Waves off (the default): the failure is rerun with the same seed on a traced build,
    and the error names that run's wave file (FST where lz4.h is installed, else VCD)."""
    monkeypatch.delenv("ACCELGEN_WAVES", raising=False)
    dut, inputs, expected = tree_case()
    expected["value"][12] += 1
    with pytest.raises(SimulationError) as error:
        run_stream_test(dut, "tree3", inputs, expected, valid_prob=0.7, ready_prob=0.7, seed=4)
    message = str(error.value)
    assert "output #12" in message
    wave_file = message.split("waves (rerun, same seed): ")[1].strip()
    assert wave_file.endswith("dump.fst" if fst_supported() else "dump.vcd")
    with open(wave_file, "rb") as f:
        assert len(f.read()) > 100


def test_rerun_with_waves_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("ACCELGEN_WAVES_ON_FAILURE", "0")
    dut, inputs, expected = tree_case()
    with pytest.raises(SimulationError, match=r"rerun with waves=True"):
        run_stream_test(dut, "tree3", inputs, {"value": np.append(expected["value"], 7)})
