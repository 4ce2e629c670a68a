"""PLLs for board tops: divider search for iCE40 and ECP5, and the Amaranth primitive around it.

:func:`ice40_pll_params` is Project IceStorm's ``icepll`` search (``SB_PLL40`` in SIMPLE
feedback mode) and :func:`ecp5_pll_params` is Project Trellis's ``ecppll`` search
(``EHXPLLL``, primary output CLKOP fed back), with the tools' limits and tie-breaking, so
they choose the dividers the tools print. ``ecppll`` computes in single precision and so does
this (NumPy ``float32``): its ties and its ``CLKOP_CPHASE`` depend on the rounding.

:func:`add_pll` defines a clock domain in a module and adds a :class:`PLL`, which instantiates
the primitive, clocks the domain from it and holds the domain's reset until the PLL reports
lock and a few cycles more.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import ClockDomain, Const, Elaboratable, Instance, Module, Signal, Value
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

__all__ = [
    "FAMILIES",
    "ICE40_LIMITS_MHZ",
    "ECP5_LIMITS_MHZ",
    "MAX_ERROR",
    "ice40_pll_params",
    "ecp5_pll_params",
    "pll_params",
    "PLL",
    "add_pll",
]

#: Accepted ``platform_family`` values.
FAMILIES = ("ice40", "ecp5")

#: icepll's frequency limits in MHz (``limit_in``, ``limit_pfd``, ``limit_vco``, ``limit_out``).
ICE40_LIMITS_MHZ = {"in": (10.0, 133.0), "pfd": (10.0, 133.0), "vco": (533.0, 1066.0),
                    "out": (16.0, 275.0)}

#: ecppll's frequency limits in MHz (``INPUT_*``, ``PFD_*``, ``VCO_*``, ``OUTPUT_*``).
ECP5_LIMITS_MHZ = {"in": (8.0, 400.0), "pfd": (3.125, 400.0), "vco": (400.0, 800.0),
                   "out": (10.0, 400.0)}

#: Largest accepted relative difference between the requested and the achieved frequency.
MAX_ERROR = 0.01

_NAMES = {"ice40": "iCE40 PLL (SB_PLL40)", "ecp5": "ECP5 PLL (EHXPLLL)"}


def _mhz(hz: float) -> str:
    return f"{hz / 1e6:.6g} MHz"


def _check_range(family: str, what: str, name: str, hz) -> None:
    limits = ICE40_LIMITS_MHZ if family == "ice40" else ECP5_LIMITS_MHZ
    if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not math.isfinite(hz):
        raise TypeError(f"{name} must be a frequency in Hz (a number), got {hz!r}")
    lo, hi = limits[what]
    if not lo <= hz / 1e6 <= hi:
        raise ValueError(f"{name} must be in {lo:g}..{hi:g} MHz for the {_NAMES[family]}, "
                         f"got {_mhz(hz)}")


def _check_error(family: str, f_in_hz: float, f_out_hz: float, achieved_hz: float) -> None:
    error = abs(achieved_hz - f_out_hz) / f_out_hz
    if error > MAX_ERROR:
        raise ValueError(f"f_out_hz={_mhz(f_out_hz)} cannot be reached within {MAX_ERROR:.0%} "
                         f"by the {_NAMES[family]} from f_in_hz={_mhz(f_in_hz)}: the nearest "
                         f"achievable frequency is {_mhz(achieved_hz)} ({error:.2%} off)")


def ice40_pll_params(f_in_hz: float, f_out_hz: float) -> dict:
    """Dividers of an iCE40 ``SB_PLL40`` (SIMPLE feedback) for ``f_out_hz`` from ``f_in_hz``.

    The search of ``icepll``: ``f_pfd = f_in / (DIVR + 1)`` in 10..133 MHz,
    ``f_vco = f_pfd * (DIVF + 1)`` in 533..1066 MHz, ``f_out = f_vco / 2**DIVQ``; over
    ``DIVR`` 0..15, ``DIVF`` 0..127 and ``DIVQ`` 1..6 in that loop order, the first setting
    with the smallest ``|f_out - f_out_hz|`` wins. ``FILTER_RANGE`` follows ``f_pfd``.

    Parameters
    ----------
    f_in_hz : float
        Reference clock, 10..133 MHz.
    f_out_hz : float
        Requested output clock, 16..275 MHz.

    Returns
    -------
    dict
        ``DIVR``, ``DIVF``, ``DIVQ``, ``FILTER_RANGE`` (ints) and the achieved ``f_out_hz``,
        ``f_vco_hz`` and ``f_pfd_hz`` (floats, Hz).

    Raises
    ------
    ValueError
        A frequency outside its range, or no setting within 1 % of ``f_out_hz`` (the message
        gives the nearest achievable frequency).
    """
    _check_range("ice40", "in", "f_in_hz", f_in_hz)
    _check_range("ice40", "out", "f_out_hz", f_out_hz)
    result = _ice40_search(f_in_hz, f_out_hz)
    _check_error("ice40", f_in_hz, f_out_hz, result["f_out_hz"])
    return result


def _ice40_search(f_in_hz: float, f_out_hz: float) -> dict:
    """icepll's ``analyze`` (SIMPLE feedback) and filter range, in double precision as the
    tool computes; no range or error checks."""
    f_in, f_out = f_in_hz / 1e6, f_out_hz / 1e6
    (pfd_lo, pfd_hi), (vco_lo, vco_hi) = ICE40_LIMITS_MHZ["pfd"], ICE40_LIMITS_MHZ["vco"]
    best = None  # (error, divr, divf, divq): icepll replaces only on a strictly smaller error
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if f_pfd < pfd_lo or f_pfd > pfd_hi:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if f_vco < vco_lo or f_vco > vco_hi:
                continue
            for divq in range(1, 7):
                error = abs(f_vco * 2.0 ** -divq - f_out)
                if best is None or error < best[0]:
                    best = (error, divr, divf, divq)
    if best is None:  # no f_pfd in range: only for an input below 10 MHz
        raise ValueError(f"no iCE40 PLL setting for f_in_hz={_mhz(f_in_hz)}")
    _, divr, divf, divq = best
    f_pfd = f_in / (divr + 1)
    filter_range = (1 if f_pfd < 17 else 2 if f_pfd < 26 else 3 if f_pfd < 44 else
                    4 if f_pfd < 66 else 5 if f_pfd < 101 else 6)
    f_pfd_hz = f_in_hz / (divr + 1)
    f_vco_hz = f_pfd_hz * (divf + 1)
    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range,
            "f_out_hz": f_vco_hz / 2**divq, "f_vco_hz": f_vco_hz, "f_pfd_hz": f_pfd_hz}


def _ecp5_search(f_in: np.float32, f_out: np.float32):
    """ecppll's ``calc_pll_params`` on all divider triples at once, in float32.

    The tool walks ``CLKI_DIV`` 1..128, ``CLKFB_DIV`` 1..80, ``CLKOP_DIV`` 1..128 and takes a
    setting if its error is smaller, or equal with ``f_vco`` nearer 600 MHz. So the winner is,
    among the settings of least error, the first (in loop order) of those nearest 600 MHz.
    """
    f32 = np.float32
    (pfd_lo, pfd_hi), (vco_lo, vco_hi) = ((f32(lo), f32(hi)) for lo, hi in
                                          (ECP5_LIMITS_MHZ["pfd"], ECP5_LIMITS_MHZ["vco"]))
    clki = np.arange(1, 129, dtype=f32)
    clkfb = np.arange(1, 81, dtype=f32)
    clkop = np.arange(1, 129, dtype=f32)
    f_pfd = f_in / clki
    # fpfd * feedback_div * output_div, left to right, each product rounded to float32.
    f_vco = (f_pfd[:, None, None] * clkfb[None, :, None]) * clkop[None, None, :]
    usable = ((f_pfd >= pfd_lo) & (f_pfd <= pfd_hi))[:, None, None] & \
        (f_vco >= vco_lo) & (f_vco <= vco_hi)
    if not usable.any():
        return None
    f_outs = f_vco / clkop[None, None, :]
    error = np.where(usable, np.abs(f_outs - f_out), f32(np.inf))
    tied = error == error.min()
    distance = np.where(tied, np.abs(f_vco - f32(600)), f32(np.inf))
    index = np.unravel_index(np.argmin(distance), distance.shape)  # argmin: first of equals
    return tuple(int(k) + 1 for k in index), f_outs[index], f_vco[index]


def ecp5_pll_params(f_in_hz: float, f_out_hz: float) -> dict:
    """Dividers of an ECP5 ``EHXPLLL`` (CLKOP fed back) for ``f_out_hz`` from ``f_in_hz``.

    The search of ``ecppll``: ``f_pfd = f_in / CLKI_DIV`` in 3.125..400 MHz,
    ``f_vco = f_pfd * CLKFB_DIV * CLKOP_DIV`` in 400..800 MHz, ``f_out = f_vco / CLKOP_DIV``;
    least ``|f_out - f_out_hz|``, ties to ``f_vco`` nearest 600 MHz, then to the first in loop
    order (``CLKI_DIV`` 1..128, ``CLKFB_DIV`` 1..80, ``CLKOP_DIV`` 1..128), all in float32 as
    the tool computes. ``CLKOP_CPHASE`` is ecppll's 180-degree shift, ``CLKOP_DIV / 2`` as
    its float arithmetic truncates it (often one less); ``CLKOP_FPHASE`` is 0.

    Parameters
    ----------
    f_in_hz : float
        Reference clock, 8..400 MHz.
    f_out_hz : float
        Requested output clock, 10..400 MHz.

    Returns
    -------
    dict
        ``CLKI_DIV``, ``CLKFB_DIV``, ``CLKOP_DIV``, ``CLKOP_CPHASE``, ``CLKOP_FPHASE`` (ints),
        the achieved ``f_out_hz``, ``f_vco_hz``, ``f_pfd_hz`` (floats, Hz), and ``f_in_mhz_text``
        / ``f_out_mhz_text``: the frequencies as ecppll writes them in ``FREQUENCY_PIN_CLKI`` /
        ``FREQUENCY_PIN_CLKOP``.

    Raises
    ------
    ValueError
        A frequency outside its range, or no setting within 1 % of ``f_out_hz`` (the message
        gives the nearest achievable frequency).
    """
    _check_range("ecp5", "in", "f_in_hz", f_in_hz)
    _check_range("ecp5", "out", "f_out_hz", f_out_hz)
    result = _ecp5_params(f_in_hz, f_out_hz)
    _check_error("ecp5", f_in_hz, f_out_hz, result["f_out_hz"])
    return result


def _ecp5_params(f_in_hz: float, f_out_hz: float) -> dict:
    """ecppll's ``calc_pll_params`` result; no range or error checks."""
    f_in, f_out = np.float32(f_in_hz / 1e6), np.float32(f_out_hz / 1e6)
    found = _ecp5_search(f_in, f_out)
    if found is None:  # no f_vco in range: only far outside the input range
        raise ValueError(f"no ECP5 PLL setting for f_in_hz={_mhz(f_in_hz)}")
    (clki, clkfb, clkop), fout32, fvco32 = found
    # ecppll: ns_phase = 1/(fout*1e6)*0.5 stored in a float, times fvco*1e6 in double,
    # truncated to int: half the output period in VCO cycles.
    ns_phase = np.float32(1.0 / (float(fout32) * 1e6) * 0.5)
    cphase = int(float(ns_phase) * (float(fvco32) * 1e6))
    f_pfd_hz = f_in_hz / clki
    f_vco_hz = f_pfd_hz * clkfb * clkop
    return {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop,
            "CLKOP_CPHASE": cphase, "CLKOP_FPHASE": 0,
            "f_out_hz": f_vco_hz / clkop, "f_vco_hz": f_vco_hz, "f_pfd_hz": f_pfd_hz,
            "f_in_mhz_text": f"{float(f_in):.6g}", "f_out_mhz_text": f"{float(fout32):.6g}"}


def pll_params(platform_family: str, f_in_hz: float, f_out_hz: float) -> dict:
    """:func:`ice40_pll_params` or :func:`ecp5_pll_params` by family (``"ice40"``, ``"ecp5"``)."""
    if platform_family not in FAMILIES:
        raise ValueError(f"platform_family must be one of {', '.join(FAMILIES)}, "
                         f"got {platform_family!r}")
    search = ice40_pll_params if platform_family == "ice40" else ecp5_pll_params
    return search(f_in_hz, f_out_hz)


class PLL(Elaboratable):
    """A PLL driving clock domain ``domain`` at ``f_out_hz`` from the board clock ``clk_in``.

    The PLL drives the clock and reset of :attr:`clock_domain`, which the module using the
    domain must define (``m.domains += pll.clock_domain``; Amaranth 0.6 no longer lets a
    submodule define a domain for its parents). :func:`add_pll` does both.

    - ``"ice40"``: ``SB_PLL40_CORE`` fed from an already-buffered board clock on REFERENCECLK,
      or ``SB_PLL40_PAD`` fed straight from the clock pin on PACKAGEPIN when ``clk_in`` is
      the pin itself; FEEDBACK_PATH SIMPLE, PLLOUT_SELECT GENCLK, and the domain's clock is
      PLLOUTGLOBAL (a global net). Use the pin where the PLL shares its I/O site with the
      clock pin: the iCE40UP5K's only PLL does with pin 35, the iCEBreaker's 12 MHz clock, so
      nextpnr cannot place a CORE PLL there once that pin has an input buffer ("conflicts with
      input ... on pin '35'"), while the PAD PLL takes the pin as its input.
    - ``"ecp5"``: ``EHXPLLL`` with CLKOP fed back on CLKFB (FEEDBK_PATH CLKOP), and the
      attributes ``ecppll`` writes: FREQUENCY_PIN_CLKI / FREQUENCY_PIN_CLKOP (in ecppll's
      number format), ICP_CURRENT 12, LPF_RESISTOR 8, MFG_ENABLE_FILTEROPAMP 1,
      MFG_GMCREF_SEL 2 (the loop filter settings the bitstream needs).

    The domain's reset is asserted (asynchronously) while LOCK is low or ``reset`` is high and
    released synchronously ``reset_stages`` clock edges after both are clear
    (``amaranth.lib.cdc.ResetSynchronizer``).

    No clock constraint is added for the output: nextpnr derives it from the board clock's
    constraint and the dividers (its log says "Derived frequency constraint of ... MHz"), and
    a constraint by net name would have to guess the name the net keeps after flattening.

    Parameters
    ----------
    platform_family : str
        ``"ice40"`` or ``"ecp5"``.
    clk_in : Value or amaranth.lib.io.PortLike
        The board clock: either already buffered (a 1-bit value, e.g. the ``i`` of an
        ``io.Buffer("i", platform.request("clk25", dir="-"))``), or the clock pin itself
        (``platform.request("clk12", dir="-")``): the iCE40 then uses ``SB_PLL40_PAD`` on it,
        the ECP5 an input buffer.
    f_in_hz, f_out_hz : float
        Board clock and requested domain frequency; see :func:`ice40_pll_params` and
        :func:`ecp5_pll_params` for the ranges. Checked when the PLL is constructed.
    domain : str
        Name of the clock domain created.
    reset : Value, optional
        An extra reset request (e.g. a button), active high.
    reset_stages : int
        Clock edges the reset lasts after lock, at least 2.

    Attributes
    ----------
    params : dict
        The divider search result.
    clock_domain : ClockDomain
        The domain named ``domain``, clocked by the PLL output.
    f_out_hz : float
        The achieved output frequency (within 1 % of the request).
    locked : Signal
        The PLL's LOCK output.
    """

    def __init__(self, platform_family: str, clk_in, f_in_hz: float, f_out_hz: float, *,
                 domain: str = "sync", reset=None, reset_stages: int = 4):
        try:
            if isinstance(reset_stages, bool) or not isinstance(reset_stages, int) or \
                    reset_stages < 2:
                raise ValueError(f"reset_stages must be an integer >= 2, got {reset_stages!r}")
            self.params = pll_params(platform_family, f_in_hz, f_out_hz)
            if isinstance(clk_in, io.PortLike):
                if len(clk_in) != 1 or any(clk_in.invert):
                    raise ValueError(f"clk_in must be a 1-bit, non-inverted clock pin, got "
                                     f"{clk_in!r}")
            elif len(Value.cast(clk_in)) != 1:
                raise ValueError(f"clk_in must be a 1-bit clock, got {clk_in!r}")
        except (TypeError, ValueError):
            self._MustUse__silence = True  # rejected, so never built: no "unused" warning
            raise
        self.family = platform_family
        self.clk_in = clk_in
        self.f_in_hz = f_in_hz
        self.f_out_hz = self.params["f_out_hz"]
        self.clock_domain = ClockDomain(domain)
        self.reset = reset
        self.reset_stages = reset_stages
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        cd, p = self.clock_domain, self.params
        pin = isinstance(self.clk_in, io.PortLike)
        if self.family == "ice40":
            # The PAD PLL takes the pin as its own input; the CORE PLL a fabric or global net.
            source = {"i_PACKAGEPIN": self.clk_in.io} if pin else \
                {"i_REFERENCECLK": self.clk_in}
            m.submodules.pll = Instance(
                "SB_PLL40_PAD" if pin else "SB_PLL40_CORE",
                p_FEEDBACK_PATH="SIMPLE",
                p_PLLOUT_SELECT="GENCLK",
                # Sized as icepll writes them (4'b, 7'b, 3'b, 3'b).
                p_DIVR=Const(p["DIVR"], 4),
                p_DIVF=Const(p["DIVF"], 7),
                p_DIVQ=Const(p["DIVQ"], 3),
                p_FILTER_RANGE=Const(p["FILTER_RANGE"], 3),
                **source,
                i_RESETB=Const(1),
                i_BYPASS=Const(0),
                o_PLLOUTGLOBAL=cd.clk,
                o_LOCK=self.locked,
            )
        else:
            clk_in = self.clk_in
            if pin:
                m.submodules.clk_in_buffer = buffer = io.Buffer("i", self.clk_in)
                clk_in = buffer.i
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=p["f_in_mhz_text"],
                a_FREQUENCY_PIN_CLKOP=p["f_out_mhz_text"],
                a_ICP_CURRENT="12",
                a_LPF_RESISTOR="8",
                a_MFG_ENABLE_FILTEROPAMP="1",
                a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC",
                p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=p["CLKI_DIV"],
                p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_CPHASE"],
                p_CLKOP_FPHASE=p["CLKOP_FPHASE"],
                p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p["CLKFB_DIV"],
                i_RST=Const(0),
                i_STDBY=Const(0),
                i_CLKI=clk_in,
                i_CLKFB=cd.clk,  # the feedback path closes through the output net
                i_PHASESEL0=Const(0),
                i_PHASESEL1=Const(0),
                i_PHASEDIR=Const(1),
                i_PHASESTEP=Const(1),
                i_PHASELOADREG=Const(1),
                i_PLLWAKESYNC=Const(0),
                i_ENCLKOP=Const(0),
                o_CLKOP=cd.clk,
                o_LOCK=self.locked,
            )
        hold = ~self.locked if self.reset is None else ~self.locked | self.reset
        m.submodules.reset_sync = ResetSynchronizer(hold, domain=cd.name,
                                                    stages=self.reset_stages)
        return m


def add_pll(m: Module, platform_family: str, clk_in, f_in_hz: float, f_out_hz: float, *,
            domain: str = "sync", reset=None, reset_stages: int = 4) -> PLL:
    """Define clock domain ``domain`` in ``m``, clocked by a new :class:`PLL` (submodule
    ``pll_<domain>``), and return the PLL.

    ``platform_family`` is ``"ice40"`` or ``"ecp5"`` (anything else raises ``ValueError``);
    the other arguments are :class:`PLL`'s.
    """
    pll = PLL(platform_family, clk_in, f_in_hz, f_out_hz, domain=domain, reset=reset,
              reset_stages=reset_stages)
    m.domains += pll.clock_domain
    m.submodules[f"pll_{domain}"] = pll
    return pll
