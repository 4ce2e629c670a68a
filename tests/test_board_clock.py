"""Board clocks and resets: every board's top elaborates and passes ``platform.prepare`` at its
own clock and through the PLL (no synthesis: seconds each), its ``sync`` domain with a reset
that the design's registers and the ECP5 multipliers use; and the power-on reset, in
simulation, is held for its cycles after start and then released for good."""

import re

import pytest
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer
from amaranth.sim import Simulator

from boards import BOARDS
from boards.reset import POWER_ON_RESET_S, PowerOnReset, power_on_cycles
from boards.top import board_design, clock_frequency
from gen.registry import get_generator

# Every board at its own clock; the bitstream boards also at twice it, from the PLL.
CASES = [(name, None) for name in BOARDS] + [(name, 2) for name, board in BOARDS.items()
                                              if board.bitstream]


def prepared_top(name, multiple):
    """The files of a 1x1 PE array's board top for board ``name`` at ``multiple`` times its
    clock (``None``: the board clock itself), and the frequency it runs at."""
    board = BOARDS[name]
    base = board.platform().default_clk_frequency
    freq_hz = None if multiple is None else multiple * base
    generator = get_generator("pe-array")
    design = generator.build(generator.config_class(rows=1, cols=1))
    top = board_design(board, design, generator.name, freq_hz=freq_hz)
    return board.platform().prepare(top, name="top").files, clock_frequency(board, freq_hz)


def module(text, name):
    match = re.search(r"^module \\" + re.escape(name) + r"\n(.*?)^end\n", text, re.S | re.M)
    assert match, f"no module {name}"
    return match.group(1)


def cell(text, kind):
    match = re.search(r"^  cell \\" + re.escape(kind) + r" \S+\n(.*?)^  end\n", text,
                      re.S | re.M)
    assert match, f"no {kind} cell"
    return match.group(1)


@pytest.mark.parametrize("name, multiple", CASES,
                         ids=[f"{n}-{'board' if m is None else 'pll'}" for n, m in CASES])
def test_every_board_top_prepares_with_a_reset_sync_domain(name, multiple):
    files, clock_hz = prepared_top(name, multiple)
    board = BOARDS[name]
    if not board.bitstream:  # Vivado's files: the Verilog, where the same submodules show
        verilog = files["top.v"]
        for submodule in ("power_on_reset", "reset_sync", "rst_buffer"):  # the button too
            assert f"module \\top.{submodule} (" in verilog
        assert re.search(r"\\top\.reset_sync\s+reset_sync \([^;]*\.rst\(rst\)", verilog)
        return
    text = files["top.il"]
    top = module(text, "top")
    # The design's registers take the domain's reset, which the synchronizer drives: the
    # board top's own at the board clock, the PLL's (held until lock) from the PLL.
    assert re.search(r"connect \\rst \\rst\b", cell(top, "top.host"))
    if multiple is None:
        assert re.search(r"connect \\stage\d+ \\rst\b", cell(top, "top.reset_sync"))
    else:
        assert re.search(r"connect \\stage\d+ \\rst\b", cell(module(text, "top.pll_sync"),
                                                               "top.pll_sync.reset_sync"))
    # The power-on counter counts the domain's clock for POWER_ON_RESET_S.
    cycles = power_on_cycles(clock_hz)
    assert cycles == pytest.approx(POWER_ON_RESET_S * clock_hz, abs=1)
    counter = module(text, "top.power_on_reset")
    assert re.search(rf"wire width {max(1, (cycles - 1).bit_length())} \\timer\b", counter)
    if board.family == "ecp5":
        # The multipliers hold data only, so their registers are reset-less (issue 18): RST0
        # is tied low rather than left to a ResetSignal() (the crash of #15 came from there).
        resets = re.findall(r"^  cell \\MULT18X18D \S+\n.*?connect \\RST0 (\S+)\n", text,
                            re.S | re.M)
        assert resets and set(resets) == {"1'0"}


def test_power_on_cycles_and_bad_arguments():
    assert power_on_cycles(12e6) == 180 and power_on_cycles(25e6) == 375
    assert power_on_cycles(1.0) == 1
    for bad in (0, -12e6, "12MHz", True):
        with pytest.raises(ValueError, match="clock_hz must be a positive frequency in Hz"):
            power_on_cycles(bad)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"cycles must be an integer >= 1, got"):
            PowerOnReset(bad)
    with pytest.raises(TypeError, match="domain must be a clock domain name"):
        PowerOnReset(4, domain="")


@pytest.mark.parametrize("cycles, stages", [(1, 2), (7, 2), (12, 4)])
def test_power_on_reset_holds_the_domain_reset_for_its_cycles_then_releases_it(cycles,
                                                                               stages):
    """The board top's reset, as :func:`boards.top.add_board_clock` wires it at the board
    clock: the counter's ``busy`` (or the button) is the hold of the domain's reset
    synchronizer. Sampled before each clock edge: ``busy`` for exactly ``cycles`` edges, the
    domain's reset ``stages`` edges more, then a counter in the domain counts from zero. A
    button press later resets the domain again (at once) but not the power-on counter."""
    m = Module()
    m.domains.sync = sync = ClockDomain("sync")
    m.submodules.por = por = PowerOnReset(cycles)
    button = Signal()
    m.submodules.reset_sync = ResetSynchronizer(por.busy | button, domain="sync",
                                                stages=stages)
    count = Signal(16)
    m.d.sync += count.eq(count + 1)
    released = cycles + stages
    press, hold = released + 5, 3

    async def testbench(ctx):
        for k in range(press):
            assert ctx.get(por.busy) == (k < cycles), k
            assert ctx.get(sync.rst) == (k < released), k
            assert ctx.get(count) == max(0, k - released), k
            await ctx.tick()
        ctx.set(button, 1)
        await ctx.delay(1e-9)
        assert ctx.get(sync.rst)  # asynchronous assertion
        for _ in range(hold):
            await ctx.tick()
        ctx.set(button, 0)
        for k in range(stages + 10):
            assert not ctx.get(por.busy)
            assert ctx.get(sync.rst) == (k < stages), k
            assert ctx.get(count) == max(0, k - stages), k
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
