"""Input sharing: one x chunk per transaction, fanned out to every PE row, feeding the array."""

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring

from golden.memory.buffer_management import linear_traffic
from golden.memory.input_share import input_share, share_words
from golden.pe_array import PEArrayConfig, gemm_schedule, gemv, pe_array
from hw.memory.input_share import InputShare
from hw.pe_array import PEArray
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


class SharedLinear(wiring.Component):
    """Test top: the adapter feeding a PE array, as a design would compose them."""

    def __init__(self, config):
        self.share, self.array = InputShare(config), PEArray(config)
        self.latency = self.array.latency
        super().__init__({"i": self.share.signature.members["i"],
                          "o": self.array.signature.members["o"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.share, m.submodules.array = self.share, self.array
        wiring.connect(m, wiring.flipped(self.i), self.share.i)
        wiring.connect(m, self.share.o, self.array.i)
        wiring.connect(m, self.array.o, wiring.flipped(self.o))
        return m


def problem(config, rng, m, k):
    lo, hi = config.operand_range
    return rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, k)


def test_golden_reproduces_the_gemm_schedule(rng):
    config = PEArrayConfig(rows=3, cols=5, in_width=8)
    w, x = problem(config, rng, 7, 13)
    schedule = gemm_schedule(config, w, x.reshape(-1, 1))
    words = share_words(schedule)
    shared = input_share(config, **words)
    assert all(np.array_equal(shared[f], schedule[f]) for f in schedule)
    # The words carry one x chunk per transaction instead of rows copies.
    assert words["x"].size * config.rows == schedule["b"].size


def test_amaranth_sim_adapter_and_array_with_stalls(rng):
    config = PEArrayConfig(rows=3, cols=5, in_width=6)
    w, x = problem(config, rng, 9, 22)
    schedule = gemm_schedule(config, w, x.reshape(-1, 1))
    words = share_words(schedule)
    expected, source = pe_array(config, **input_share(config, **words))
    simulate_stream(SharedLinear(config), words, expected, source, valid_prob=0.6,
                    ready_prob=0.5)


def test_verilator_gemv_through_the_shared_input(rng, measure):
    # 2x4: the 4x8 array's Verilog (LUT4-netlist lanes) cost 5 CPU-minutes to compile, for
    # the same fan-out and tiling checks.
    config = PEArrayConfig(rows=2, cols=4, in_width=8)
    m, k = 19, 50
    w, x = problem(config, rng, m, k)
    schedule = gemm_schedule(config, w, x.reshape(-1, 1))
    words = share_words(schedule)
    expected, source = pe_array(config, **schedule)
    assert np.array_equal(expected["acc"].reshape(-1)[:m], gemv(config, w, x))
    dut = SharedLinear(config)
    run_stream_test(dut, "shared_linear", words, expected, source, valid_prob=0.7,
                    ready_prob=0.6, seed=2)
    free = run_stream_test(dut, "shared_linear", words, expected, source, seed=2)
    interval = (free.in_cycles[-1] - free.in_cycles[0]) / (len(words["last"]) - 1)
    saved = linear_traffic(m, k, rows=config.rows, cols=config.cols, in_bits=8)
    measure(f"GEMV {m}x{k} through input sharing: II {interval:.3f}, x traffic "
            f"{saved['x_ratio']:.0f}x less, total {saved['ratio']:.2f}x less")
    assert interval == 1.0
