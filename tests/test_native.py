"""The native stream soak runner (sim.native): a C++ Verilator harness generated from the
manifest checks every output word, fails loudly at the first wrong one, and agrees with the
cocotb bench cycle for cycle."""

import os

import numpy as np
import pytest
from stimulus import array_transactions
from test_pe_array import VERILATOR_CONFIGS, expected_for

from golden.pe_array import PEArrayConfig, pe_array
from hw.pe_array import PEArray
from sim.backends import run_stream
from sim.native import native_harness, soak_stream
from sim.runner import SimulationError, run_stream_test

SMALL = PEArrayConfig(rows=2, cols=2)


def _transactions(config, rng, n):
    inputs = array_transactions(config, rng, n)
    inputs["last"][-1] = 1
    expected, sources = pe_array(config, **inputs)
    return inputs, expected, sources


def test_native_agrees_with_cocotb_cycle_for_cycle(rng):
    # Without stalls both benches see the same handshakes, so every transfer cycle and every
    # received word must coincide.
    config = PEArrayConfig(**VERILATOR_CONFIGS["2x3-u12"])
    inputs = array_transactions(config, rng, 200)
    expected, source = expected_for(config, inputs)
    cocotb = run_stream_test(PEArray(config), "pe_array", inputs, expected, source)
    native = run_stream(PEArray(config), "pe_array", inputs, expected, source,
                        simulator="native")
    assert native.in_cycles == cocotb.in_cycles and native.out_cycles == cocotb.out_cycles
    assert native.cycles == cocotb.cycles
    assert native.out_words == cocotb.out_words and len(native.out_words) == len(source)


def test_native_passes_under_stalls_and_reports_transfers(rng):
    inputs, expected, sources = _transactions(SMALL, rng, 400)
    result = run_stream(PEArray(SMALL), "pe_array", inputs, expected, sources,
                        simulator="native", valid_prob=0.6, ready_prob=0.5, seed=7)
    assert result.inputs == 400 and result.outputs == len(sources) == len(result.out_words)
    assert result.cycles > 400 / 0.6  # the stalls were real


def test_wrong_expected_word_fails_loudly_naming_field_and_element(rng):
    inputs, expected, sources = _transactions(SMALL, rng, 300)
    linear = np.flatnonzero(expected["mode"] == 1)
    index = int(linear[len(linear) // 2])
    true = int(expected["acc"][index][1])
    wrong = {k: v.copy() for k, v in expected.items()}
    wrong["acc"][index][1] = true + 1 if true < 0 else true - 1
    with pytest.raises(SimulationError) as failure:
        run_stream(PEArray(SMALL), "pe_array", inputs, wrong, sources, simulator="native",
                   valid_prob=0.7, ready_prob=0.6, seed=1)
    message = str(failure.value)
    assert message.startswith(f"output #{index} (from input #{sources[index]}) at cycle ")
    assert (f"differs from the golden model: acc[1]: expected {wrong['acc'][index][1]}, got "
            f"{true}") in message


def test_lost_and_extra_words_fail(rng):
    inputs, expected, sources = _transactions(SMALL, rng, 100)
    n = len(sources)
    fewer = {k: v[:-1] for k, v in expected.items()}
    with pytest.raises(SimulationError, match=rf"extra output #{n - 1} at cycle \d+: only "
                                              rf"{n - 1} expected"):
        run_stream(PEArray(SMALL), "pe_array", inputs, fewer, sources[:-1],
                   simulator="native")
    more = {k: np.concatenate([v, v[-1:]]) for k, v in expected.items()}
    from sim.native import run_native_stream

    with pytest.raises(SimulationError, match=rf"received {n} outputs .* 1 more expected "
                                              r"\(a lost word or a hang\?\)"):
        run_native_stream(PEArray(SMALL), "pe_array", inputs, more,
                          np.append(sources, sources[-1]), timeout=500)


def test_harness_is_generated_from_the_manifest_map():
    from gen.emit import manifest

    streams = manifest(PEArray(SMALL), "pe_array", "pe-array")["streams"]
    text = native_harness("pe_array", streams)
    assert '{"acc[1]", 94u, 28u, true}' in text and "IN_WORDS = 4, OUT_WORDS = 4" in text
    assert "top->i___05Fpayload" in text


#: Transactions of the soak (``ACCELGEN_SOAK_TRANSACTIONS`` overrides).
SOAK = int(os.environ.get("ACCELGEN_SOAK_TRANSACTIONS", 2_000_000))


def _soak_chunks(config, total, chunk, seed, modes=(0, 1)):
    """Chunks of random transactions with their golden outputs, as if from one long run.

    The accumulators carry state across chunks (element-wise outputs show them), so each chunk
    ends with two linear ``last`` transactions (the second a group of one), and the next
    chunk's golden run starts with that second one again, whose output is dropped: the
    accumulators then hold the same sum in the model as in the hardware.
    """
    rng = np.random.default_rng(seed)
    carry = None
    for start in range(0, total, chunk):
        inputs = array_transactions(config, rng, min(chunk, total - start), modes=modes)
        inputs["last"][-2:] = 1
        inputs["mode"][-2:] = 1
        if carry is None:
            expected, sources = pe_array(config, **inputs)
        else:
            joined = {k: np.concatenate([carry[k], v]) for k, v in inputs.items()}
            expected, sources = pe_array(config, **joined)
            expected, sources = {k: v[1:] for k, v in expected.items()}, sources[1:] - 1
        carry = {k: v[-1:] for k, v in inputs.items()}
        yield inputs, expected, sources


@pytest.mark.slow
def test_soak_16x16_millions_of_transactions_under_stalls(measure):
    config = PEArrayConfig(rows=16, cols=16)
    result = soak_stream(PEArray(config), "pe_array", _soak_chunks(config, SOAK, 10000, 19),
                         valid_prob=0.8, ready_prob=0.7, seed=19, opt="-O2")
    measure(f"16x16 soak: {result.inputs} transactions, {result.outputs} outputs checked, "
            f"{result.cycles} cycles in {result.loop_seconds:.0f} s "
            f"({result.cycles / result.loop_seconds:.3g} cycles/s)")
    assert result.inputs == SOAK and result.outputs > SOAK // 2


@pytest.mark.slow
def test_soak_16x16_gemv_linear_mode(measure):
    config = PEArrayConfig(rows=16, cols=16)
    result = soak_stream(PEArray(config), "pe_array",
                         _soak_chunks(config, SOAK // 2, 10000, 23, modes=(1,)),
                         valid_prob=0.9, ready_prob=0.5, seed=23, opt="-O2")
    measure(f"16x16 linear soak: {result.inputs} transactions, {result.outputs} outputs, "
            f"{result.cycles} cycles in {result.loop_seconds:.0f} s")
    assert result.inputs == SOAK // 2 and result.outputs > 0
