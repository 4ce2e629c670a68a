"""MAC array (the PE array's fixed-function baseline): golden model against NumPy and the PE
array's model, parameter checks, and the hardware cycle by cycle in the Amaranth simulator and
as emitted Verilog under Verilator, with random valid gaps and random ``last``."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Fragment, Module, Value
from amaranth.lib import data
from amaranth.sim import Simulator
from stimulus import operands

from gen.emit import ports
from golden.mac_array import MACArrayConfig, mac_array, mac_array_reference
from golden.pe import Op
from golden.pe_array import Mode, PEArrayConfig, pe_array
from hw.mac_array import MACArray
from hw.pe_array import PEArray
from sim.payload import PayloadCodec
from sim.runner import build, new_test_dir, run_cocotb_spec
from sim.scoreboard import MismatchError, Scoreboard

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the cocotb module mac_array_tb lives here; the runner passes
    sys.path.insert(0, str(TESTS))  # sys.path on as PYTHONPATH

# --- golden model ------------------------------------------------------------------------------


def dot_products(a, b, last):
    """Exact per-row dot products with Python integers: one row per ``last``."""
    out, acc = [], [0] * a.shape[1]
    for t in range(a.shape[0]):
        acc = [acc[r] + sum(int(x) * int(y) for x, y in zip(a[t, r], b[t, r]))
               for r in range(a.shape[1])]
        if last[t]:
            out.append(acc)
            acc = [0] * a.shape[1]
    return out


@pytest.mark.parametrize("rows,cols,in_width,signed", [(8, 8, 8, True), (3, 5, 4, False),
                                                       (1, 1, 2, True), (2, 7, 18, True),
                                                       (4, 3, 18, False)])
def test_golden_equals_numpy_dot_products(rows, cols, in_width, signed, rng):
    config = MACArrayConfig(rows=rows, cols=cols, in_width=in_width, signed=signed)
    n = 60
    a, b = (operands(config, rng, (n, rows, cols)) for _ in range(2))
    last = (rng.random(n) < 0.3).astype(np.int64)
    last[-1] = 1
    got = mac_array(config, a, b, last)
    ends = np.flatnonzero(last)
    assert got.shape == (len(ends), rows)
    # Each output: the row-wise dot products of its inputs, as a matrix product.
    starts = np.concatenate([[0], ends[:-1] + 1])
    for k, (s, e) in enumerate(zip(starts, ends)):
        flat_a = a[s:e + 1].transpose(1, 0, 2).reshape(rows, -1).astype(object)
        flat_b = b[s:e + 1].transpose(1, 0, 2).reshape(rows, -1).astype(object)
        assert got[k].tolist() == [int(x) for x in (flat_a * flat_b).sum(axis=1)]
    assert got.tolist() == dot_products(a, b, last)
    if in_width <= 8:  # small enough to be exact in float64
        assert np.array_equal(got, mac_array_reference(a, b, last))


def test_golden_wraps_and_restarts():
    config = MACArrayConfig(rows=2, cols=1, in_width=4, acc_width=6)
    # Row 0: 7*7 three times = 147 = 2*64 + 19 -> 19. Row 1: -8*7 = -56 three times = -168
    # = -3*64 + 24 -> 24. Then a new dot product of one input starts from 0.
    a = np.array([[[7], [-8]]] * 3 + [[[1], [-1]]])
    b = np.array([[[7], [7]]] * 3 + [[[5], [5]]])
    assert mac_array(config, a, b, [0, 0, 1, 1]).tolist() == [[19, 24], [5, -5]]
    unsigned = MACArrayConfig(rows=1, cols=2, in_width=4, signed=False, acc_width=8)
    assert mac_array(unsigned, [[[15, 15]]] * 2, [[[15, 15]]] * 2, [0, 1]).tolist() == \
        [[(4 * 225) % 256]]


def test_golden_unfinished_and_wide():
    config = MACArrayConfig(rows=1, cols=1)
    assert mac_array(config, [[[3]]] * 2, [[[4]]] * 2, [0, 0]).shape == (0, 1)
    # Inputs after the final last belong to an unfinished dot product and emit nothing.
    assert mac_array(config, [[[3]]] * 3, [[[4]]] * 3, [1, 0, 0]).tolist() == [[12]]
    wide = MACArrayConfig(rows=1, cols=1, in_width=18, signed=False, acc_width=64)
    big = (1 << 18) - 1
    out = mac_array(wide, [[[big]]] * 3, [[[big]]] * 3, [0, 0, 1])
    assert out.dtype == object and out.tolist() == [[3 * big * big]]
    with pytest.raises(ValueError, match="operand a must be in -128..127"):
        mac_array(config, [[[128]]], [[[1]]], [1])
    with pytest.raises(ValueError, match=r"b must have shape \(N, 1, 1\)"):
        mac_array(config, [[[1]]], [[[1, 2]]], [1])
    with pytest.raises(ValueError, match="last must be 0 or 1"):
        mac_array(config, [[[1]]], [[[1]]], [2])


@pytest.mark.parametrize("in_width,signed,max_k", [(8, True, 4096), (4, False, 37), (2, True, 9),
                                                   (16, True, 64), (18, False, 1 << 24)])
def test_accumulator_width_equals_the_pe_arrays(in_width, signed, max_k):
    mac = MACArrayConfig(in_width=in_width, signed=signed, max_k=max_k)
    pe = PEArrayConfig(in_width=in_width, signed=signed, max_k=max_k)
    assert mac.accumulator_width == pe.accumulator_width
    assert MACArrayConfig(acc_width=20).accumulator_width == 20


def test_golden_equals_pe_array_linear_mode(rng):
    # The baseline computes what the PE array computes in linear mode with the mul op.
    mac = MACArrayConfig(rows=4, cols=8)
    pe = PEArrayConfig(rows=4, cols=8)
    n = 200
    a, b = (operands(mac, rng, (n, 4, 8)) for _ in range(2))
    last = (rng.random(n) < 0.2).astype(np.int64)
    outputs, _ = pe_array(pe, Op.MUL, Mode.LINEAR, last, a, b, np.zeros_like(a))
    assert np.array_equal(mac_array(mac, a, b, last), outputs["acc"])


@pytest.mark.parametrize("kwargs,message", [
    ({"rows": 0}, "rows must be in 1..64, got 0"),
    ({"rows": 65}, "rows must be in 1..64, got 65"),
    ({"cols": 65}, "cols must be in 1..64, got 65"),
    ({"in_width": 1}, "in_width must be in 2..18, got 1"),
    ({"in_width": 19}, "in_width must be in 2..18, got 19"),
    ({"acc_width": 1}, "acc_width must be in 2..64, got 1"),
    ({"acc_width": 65}, "acc_width must be in 2..64, got 65"),
    ({"max_k": 0}, "max_k must be in 1..16777216, got 0"),
    ({"tree_levels_per_stage": 0}, "tree_levels_per_stage must be in 1..16, got 0"),
])
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MACArray(**kwargs)
    with pytest.raises(ValueError, match=message):
        MACArrayConfig(**kwargs)


def test_bad_parameter_types_are_rejected():
    with pytest.raises(TypeError, match="signed must be a bool"):
        MACArray(signed=1)
    with pytest.raises(TypeError, match="rows must be an integer"):
        MACArray(rows="8")
    with pytest.raises(TypeError, match="not both"):
        MACArray(MACArrayConfig(), rows=2)
    with pytest.raises(TypeError, match="config must be a MACArrayConfig"):
        MACArray(PEArrayConfig())


# --- hardware -----------------------------------------------------------------------------------


def test_ports_latency_and_operands_match_the_pe_array():
    dut = MACArray()
    by_name = {p["name"]: p for p in ports(dut)}
    assert list(by_name) == ["clk", "rst", "a", "b", "valid", "last", "out_valid", "acc"]
    assert by_name["a"] == {"name": "a", "direction": "input", "width": 8 * 8 * 8}
    assert by_name["acc"] == {"name": "acc", "direction": "output", "width": 8 * 28}
    pe = PEArray(rows=8, cols=8)
    # Same operand grid and accumulators, so the two designs are compared like for like.
    assert dut.operand_layout == pe.input_layout["a"].shape
    assert dut.acc_layout == pe.output_layout["acc"].shape
    assert dut.latency == 6  # operands, products, 3 tree levels, accumulator
    assert pe.latency == dut.latency + 1  # the PE's own adder stage (op decode, x * y + z)
    shapes = {(1, 1): 4, (8, 2): 5, (64, 3): 5}  # (cols, levels per stage): latency
    others = [MACArray(cols=c, tree_levels_per_stage=k) for c, k in shapes]
    assert [other.latency for other in others] == list(shapes.values())
    wide = MACArray(rows=2, cols=3, in_width=18, signed=False, acc_width=64)
    for block in (dut, pe, wide, *others):
        Fragment.get(block, None)  # and they elaborate


def schedule(dut, rng, n, *, valid_prob, last_prob):
    """A cycle-by-cycle stimulus for ``dut`` of ``n`` valid inputs with random gaps, and what
    must come out.

    Invalid cycles carry random operands and a random ``last`` too. Returns the per-cycle
    ports (packed words), the expected ``acc`` words, the input index behind each and the
    cycle each must appear on.
    """
    config = dut.config
    shape = (config.rows, config.cols)
    a, b = (operands(config, rng, (n, *shape)) for _ in range(2))
    last = (rng.random(n) < last_prob).astype(np.int64)
    last[-1] = 1
    gaps = rng.geometric(valid_prob, n) - 1  # idle cycles before each input
    input_cycle = np.cumsum(gaps + 1) - 1
    total = int(input_cycle[-1]) + 1
    valid = np.zeros(total, dtype=np.int64)
    valid[input_cycle] = 1
    cycle_a, cycle_b = (operands(config, rng, (total, *shape)) for _ in range(2))
    cycle_a[input_cycle], cycle_b[input_cycle] = a, b
    cycle_last = rng.integers(0, 2, total)
    cycle_last[input_cycle] = last

    # Named one-member layouts: the same bits as the ports, and reports name the field.
    a_codec, b_codec, acc_codec = (PayloadCodec.from_shape(data.StructLayout({name: layout}))
                                   for name, layout in (("a", dut.operand_layout),
                                                        ("b", dut.operand_layout),
                                                        ("acc", dut.acc_layout)))
    ends = np.flatnonzero(last)
    return {
        "a": a_codec.encode({"a": cycle_a}),
        "b": b_codec.encode({"b": cycle_b}),
        "valid": valid.tolist(),
        "last": cycle_last.tolist(),
        "acc_codec": acc_codec,
        "expected": acc_codec.encode({"acc": mac_array(config, a, b, last)}),
        "sources": ends.tolist(),
        "expected_cycles": (input_cycle[ends] + dut.latency).tolist(),
    }


def simulate(dut, sched, drain_cycles=8):
    """Replay a schedule in the Amaranth simulator; check every output and its cycle."""
    scoreboard = Scoreboard(sched["expected"], sched["acc_codec"], sched["sources"])
    a_port, b_port, acc_port = (Value.cast(port) for port in (dut.a, dut.b, dut.acc))
    out_cycles = []

    async def testbench(ctx):
        total = len(sched["valid"])
        for cycle in range(total + dut.latency + drain_cycles):
            if cycle < total:
                ctx.set(a_port, sched["a"][cycle])
                ctx.set(b_port, sched["b"][cycle])
                ctx.set(dut.valid, sched["valid"][cycle])
                ctx.set(dut.last, sched["last"][cycle])
            else:
                ctx.set(dut.valid, 0)
            if ctx.get(dut.out_valid):
                out_cycles.append(cycle)
                scoreboard.check(ctx.get(acc_port), cycle)
            await ctx.tick()
        scoreboard.check_complete(total + dut.latency + drain_cycles)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    if out_cycles != sched["expected_cycles"]:
        raise MismatchError(f"outputs on cycles {out_cycles[:8]}..., expected "
                            f"{sched['expected_cycles'][:8]}...")
    return out_cycles


@pytest.mark.parametrize("params,n,valid_prob,last_prob", [
    ({}, 300, 0.7, 0.25),                                                    # 8x8 int8
    ({"rows": 3, "cols": 5, "in_width": 4, "signed": False, "acc_width": 9}, 400, 0.5, 0.1),
    ({"rows": 1, "cols": 1, "in_width": 2, "acc_width": 3}, 400, 0.8, 0.2),  # wraps a lot
    ({"rows": 2, "cols": 3, "in_width": 18, "tree_levels_per_stage": 2}, 300, 1.0, 0.3),
    ({"rows": 2, "cols": 7, "in_width": 6, "acc_width": 64, "tree_levels_per_stage": 3},
     300, 0.6, 0.5),
])
def test_amaranth_sim_every_output_and_its_cycle(params, n, valid_prob, last_prob, rng):
    config = MACArrayConfig(**params)
    dut = MACArray(config)
    sched = schedule(dut, rng, n, valid_prob=valid_prob, last_prob=last_prob)
    assert len(simulate(dut, sched)) == len(sched["expected"]) > 10


def test_amaranth_sim_one_input_per_cycle_and_reset_restarts():
    # Back to back, every input its own dot product: one output per cycle after the latency.
    config = MACArrayConfig(rows=2, cols=2, in_width=4)
    dut = MACArray(config)
    rng = np.random.default_rng(3)
    sched = schedule(dut, rng, 50, valid_prob=1.0, last_prob=1.0)
    assert simulate(dut, sched) == list(range(dut.latency, dut.latency + 50))

    # A reset in the middle of a dot product discards the partial sums.
    dut = MACArray(config)
    m = Module()
    m.domains.sync = sync = ClockDomain()
    m.submodules.dut = dut

    async def testbench(ctx):
        ctx.set(Value.cast(dut.a), 0x1111)  # every operand 1
        ctx.set(Value.cast(dut.b), 0x3333)  # every operand 3
        ctx.set(dut.valid, 1)
        await ctx.tick().repeat(3)  # three inputs of a dot product that never finishes
        ctx.set(dut.valid, 0)
        await ctx.tick().repeat(dut.latency)
        ctx.set(sync.rst, 1)
        await ctx.tick()
        ctx.set(sync.rst, 0)
        ctx.set(dut.valid, 1)
        ctx.set(dut.last, 1)
        await ctx.tick()
        ctx.set(dut.valid, 0)
        await ctx.tick().repeat(dut.latency - 1)
        assert ctx.get(dut.out_valid)
        assert [ctx.get(dut.acc[r]) for r in range(2)] == [6, 6]  # 2 * (1 * 3), nothing older

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def run_verilator(dut, sched, name, seed):
    spec_sched = {**sched, "acc_codec": sched["acc_codec"].to_json()}
    sim_build = build(dut, name)
    test_dir = new_test_dir(name)
    spec = {
        **spec_sched,
        "a": [hex(w) for w in sched["a"]],
        "b": [hex(w) for w in sched["b"]],
        "expected": [hex(w) for w in sched["expected"]],
        "latency": dut.latency,
        "drain_cycles": dut.latency + 8,
        "report": str(test_dir / "report.json"),
    }
    report = run_cocotb_spec(sim_build, "mac_array_tb", spec, env_var="ACCELGEN_MAC_ARRAY_SPEC",
                             test_dir=test_dir, seed=seed)
    shutil.rmtree(test_dir, ignore_errors=True)
    return report


@pytest.mark.parametrize("params,n,valid_prob,last_prob", [
    ({}, 2000, 0.7, 0.2),                                                    # 8x8 int8
    ({"rows": 3, "cols": 5, "in_width": 5, "signed": False, "acc_width": 11}, 2000, 0.5, 0.05),
])
def test_verilator_every_output_and_its_cycle(params, n, valid_prob, last_prob, rng, measure):
    config = MACArrayConfig(**params)
    dut = MACArray(config)
    sched = schedule(dut, rng, n, valid_prob=valid_prob, last_prob=last_prob)
    name = f"mac_array_{config.rows}x{config.cols}_{config.in_width}"
    report = run_verilator(dut, sched, name, seed=1)
    assert report["error"] is None
    assert report["out_cycles"] == sched["expected_cycles"]
    measure(f"{name}: {n} inputs with {1 - valid_prob:.0%} idle cycles, "
            f"{len(sched['expected'])} outputs, each {dut.latency} cycles after its last input")
