"""Requantizer: bit-exact with the golden model (Amaranth sim) for every shift and rounding;
its ECP5 netlist proven equal to the portable one."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from boards import get_board
from gen.build import toolchain_env
from golden.accelerator import AcceleratorConfig, requantize
from golden.fixed_point import ROUNDING_MODES, int_range
from golden.requantizer import RequantizerConfig, requantizer
from hw.requantizer import Requantizer

MODELS = Path(__file__).resolve().parent.parent / "sim" / "models"


def corner_values(config, shift, rng, count):
    """``count`` values: for this shift the ones that decide the result
    (the saturation edges ``+-2**(out_width - 1 + shift)`` and their neighbours, exact ties of
    the rounding with odd and even quotients, the extremes, the values around 0), then random
    values of every magnitude."""
    lo, hi = int_range(config.width, True)
    edge = 1 << (config.out_width - 1 + shift)
    step = 1 << shift
    picks = [lo, hi, 0, -1, 1, edge, edge - 1, -edge, -edge - 1, edge - step // 2,
             edge - step // 2 - 1, -edge - step // 2, -edge - step // 2 - 1]
    if shift:
        half = step // 2
        picks += [q * step + half + d for q in (-3, -2, -1, 0, 1, 2, 5) for d in (-1, 0, 1)]
    picks = [min(hi, max(lo, v)) for v in picks]
    width = rng.integers(1, config.width + 1, count - len(picks))  # every magnitude
    randoms = [int.from_bytes(rng.bytes(8), "little") % (1 << b) - (1 << (b - 1))
               for b in map(int, width)]
    values = np.array(picks + randoms, dtype=np.int64)
    rng.shuffle(values)
    return values


def run(config, batches):
    """Drive ``batches`` (``(shift, values)`` with ``lanes`` values each) through the
    requantizer, each shift a cycle ahead of its values; return the outputs per batch."""
    dut = Requantizer(config)
    lanes, width, out = config.lanes, config.width, config.out_width
    mask = (1 << width) - 1
    results = []

    async def bench(ctx):
        previous = None
        for shift, values in batches:
            if shift != previous:  # the decode register takes the amount a cycle ahead
                ctx.set(dut.shift, shift)
                await ctx.tick()
                previous = shift
            ctx.set(dut.i.as_value(), sum((int(v) & mask) << (k * width)
                                          for k, v in enumerate(values)))
            await ctx.tick()
            bits = ctx.get(dut.o.as_value())
            row = [(bits >> (k * out)) & ((1 << out) - 1) for k in range(lanes)]
            results.append([r - (1 << out) if r >> (out - 1) else r for r in row])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(results, dtype=np.int64)


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("width", [32, 44])
def test_every_shift_matches_golden(rounding, width, rng):
    # The accelerator's two widths: PE results (32 bits) and row accumulators (44 at max_k 4096).
    config = RequantizerConfig(lanes=32, width=width, rounding=rounding)
    batches = []
    for shift in range(1 << config.shift_width):
        values = corner_values(config, shift, rng, 3 * config.lanes)
        batches += [(shift, chunk) for chunk in values.reshape(-1, config.lanes)]
    got = run(config, batches)
    for (shift, values), row in zip(batches, got, strict=True):
        expected = requantizer(config, values, shift)
        assert np.array_equal(row, expected), (shift, values[row != expected],
                                               row[row != expected], expected[row != expected])


@pytest.mark.parametrize("width,out_width,shift_width", [(8, 16, 4), (16, 16, 5), (17, 8, 3),
                                                         (64, 16, 7)])
def test_other_widths_match_golden(width, out_width, shift_width, rng):
    # Inputs narrower than the output never saturate; amounts may stop short of the width or
    # pass it; a 64-bit input with 7-bit amounts has every case.
    for rounding in ROUNDING_MODES:
        config = RequantizerConfig(lanes=8, width=width, out_width=out_width,
                                   shift_width=shift_width, rounding=rounding)
        batches = [(shift, chunk) for shift in range(1 << shift_width)
                   for chunk in corner_values(config, min(shift, width), rng, 40)
                   .reshape(-1, config.lanes)]
        got = run(config, batches)
        expected = np.array([requantizer(config, v, s) for s, v in batches])
        assert np.array_equal(got, expected), rounding


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
def test_accelerator_requantize_is_this_model(rounding, rng):
    config = RequantizerConfig(width=44, rounding=rounding)
    for shift in range(64):
        values = corner_values(config, shift, rng, 64)
        assert np.array_equal(requantize(AcceleratorConfig(rounding=rounding), values, shift),
                              requantizer(config, values, shift))


@pytest.mark.parametrize("width,rounding", [(32, "half_up"), (44, "nearest_even"),
                                            (17, "truncate")])
def test_ecp5_netlist_equals_the_portable_one(width, rounding, tmp_path):
    """The ECP5 build (its shifters LUT4 instances, simulated by sim/models/LUT4.v) against
    the portable netlist, which the tests above check against the golden model: Yosys's SAT
    solver proves their outputs equal in every cycle for every input sequence from reset (3
    cycles reach every state: the shift decode register, then the output register)."""
    config = RequantizerConfig(lanes=2, width=width, rounding=rounding)
    gold = verilog.convert(Requantizer(config), name="gold", emit_src=False)
    gate = verilog.convert(Requantizer(config), name="gate", emit_src=False,
                           platform=get_board("ulx3s-85f").platform())
    assert "LUT4 " in gate and "LUT4 " not in gold
    (tmp_path / "gold.v").write_text(gold)
    (tmp_path / "gate.v").write_text(gate)
    # Beside the others: YoWASP's Yosys does not see every host path (a checkout under /tmp).
    (tmp_path / "LUT4.v").write_text((MODELS / "LUT4.v").read_text())
    # gate's hierarchy first: its LUT4 instances become the model's parametrized copies
    script = ("read_verilog LUT4.v gate.v; hierarchy -top gate; proc; flatten; "
              "read_verilog gold.v; proc; miter -equiv -flatten -make_outputs gold gate miter; "
              "hierarchy -top miter; flatten; opt -fast; "
              "sat -verify -prove trigger 0 -set-init-zero -seq 3 miter")
    done = subprocess.run([toolchain_env("ecp5")["YOSYS"], "-q", "-l", "sat.log", "-p", script],
                          cwd=tmp_path, capture_output=True, text=True)
    log = (tmp_path / "sat.log").read_text()
    assert done.returncode == 0 and "no model found: SUCCESS" in log, log[-3000:]


class AcceleratorLanes(wiring.Component):
    """The 8x8 accelerator's requantizer: 64 lanes of 32-bit PE results, the first 8 taking
    the 44-bit accumulators in linear mode; as this block (``hw.accelerator``'s use) or as
    the per-lane expression it replaced (``former``: ``hw.arith``'s bias add, shift and
    saturation)."""

    def __init__(self, former: bool):
        self.former = former
        super().__init__({"shift": In(6), "linear": In(1),
                          "elem": In(data.ArrayLayout(signed(32), 64)),
                          "acc": In(data.ArrayLayout(signed(44), 8)),
                          "o": Out(data.ArrayLayout(signed(16), 64))})

    def elaborate(self, platform):
        from hw.arith import saturate, shift_right_rounded

        m = Module()
        values = [Mux(self.linear, self.acc[e], self.elem[e]) if e < 8 else self.elem[e]
                  for e in range(64)]
        if self.former:
            for e, value in enumerate(values):
                m.d.sync += self.o[e].eq(saturate(shift_right_rounded(value, self.shift,
                                                                      "half_up"), signed(16)))
            return m
        m.submodules.wide = wide = Requantizer(lanes=8, width=44)
        m.submodules.narrow = narrow = Requantizer(lanes=56, width=32)
        for e, value in enumerate(values):
            block, k = (wide, e) if e < 8 else (narrow, e - 8)
            m.d.comb += [block.i[k].eq(value), self.o[e].eq(block.o[k])]
        m.d.comb += [wide.shift.eq(self.shift), narrow.shift.eq(self.shift)]
        return m


@pytest.mark.slow
def test_ecp5_luts_of_the_accelerators_lanes(tmp_path, measure):
    """Yosys ``synth_ecp5`` of the 8x8 accelerator's requantizer alone, LUT4 + 2 per CCU2C
    (``gen.measure.fpga_bench``): this block in under 60 % of the LUTs of the expression it
    replaced (measured: 11,324 against 21,751; about 2 minutes of CPU)."""
    from boards.harness import CORE_NAME
    from gen.measure.fpga_bench import core_resources, synthesize_verilog

    platform = get_board("ulx3s-85f").platform()
    luts = {}
    for former in (True, False):
        text = verilog.convert(AcceleratorLanes(former), name=CORE_NAME, platform=platform,
                               emit_src=False)
        cells = synthesize_verilog(text, tmp_path / ("former" if former else "block"))
        luts[former] = core_resources(cells)["luts"]
    measure(f"8x8 requantizer, 64 lanes, synth_ecp5: {luts[False]} LUTs "
            f"(the former per-lane expression: {luts[True]})")
    assert luts[False] < 0.6 * luts[True]


def test_latency_and_parameter_checks():
    assert Requantizer.latency == 1
    with pytest.raises(ValueError, match="width must be in 2..64"):
        Requantizer(width=65)
    with pytest.raises(ValueError, match="rounding must be one of"):
        Requantizer(rounding="up")
    with pytest.raises(ValueError, match="shift must be in 0..63"):
        requantizer(RequantizerConfig(), [0], 64)
