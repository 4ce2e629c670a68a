"""Piecewise-polynomial engine on PE lanes, shared by the GELU and SiLU units (pipelined cores).

Parameters and the bit-exact model are in ``golden.nonlinear.piecewise``, whose docstring
describes the arithmetic. Per lane:

* a registered *front* stage (extras): ``|x|`` for folded units, ``d = u - lo_q``, the segment
  ``k``, the local coordinate ``r``, the ``below``/``above`` flags and ``x`` in the output
  format (its ReLU for the relu-correction style);
* ``order`` pairs of PEs (multiply, add) evaluating the polynomial by Horner's rule; the segment
  index travels beside the polynomial and each add stage reads its coefficient from its own
  column of the coefficient ROM (a ``Switch`` on the delayed ``k``);
* one PE shifting the result into the output format (rounded, saturated);
* a registered *combine* stage (extras) choosing 0, ``x`` or the polynomial, or subtracting the
  correction from ``max(x, 0)``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed_point import bits_for_range
from golden.nonlinear.piecewise import PiecewiseConfig

from ..arith import saturate
from ..config import configure
from ..pe import PE, PEOp, add_pe
from ..pipeline import delay

__all__ = ["PiecewiseUnit", "piecewise_latency", "add_piecewise_lane"]


def piecewise_latency(config: PiecewiseConfig) -> int:
    """Register stages of one lane: ``2 + PE.latency * (2 * order + 1)``.

    One front stage, ``order`` Horner steps of two PEs, the output-shift PE and one combine
    stage (16 cycles for order 3).
    """
    return 2 + PE.latency * (2 * config.order + 1)


def _rom(m: Module, name: str, values, index, shape):
    """Combinational ROM: ``values[index]`` as a signal of ``shape`` (a ``Switch``)."""
    word = Signal(shape, name=name)
    with m.Switch(index):
        for address, value in enumerate(values):
            with m.Case(address):
                m.d.comb += word.eq(value)
    return word


def add_piecewise_lane(m: Module, config: PiecewiseConfig, *, en, x, name: str):
    """Build one lane of the engine in ``m`` for input ``x``; return its output.

    The output follows ``x`` by :func:`piecewise_latency` cycles of ``en``.
    """
    cfg = config
    fmt, segments, frac = cfg.input_format, cfg.segment_count, cfg.frac_bits

    # Front (extras): range detection and x in the output format, registered.
    if cfg.fold:
        u = Signal(signed(cfg.in_width), name=f"{name}_u")
        m.d.comb += u.eq(Mux(x < 0, saturate(-x, signed(cfg.in_width)), x))
        u_lo = 0
    else:
        u, u_lo = x, fmt.min_int
    d = Signal(signed(bits_for_range(u_lo - cfg.lo_raw, fmt.max_int - cfg.lo_raw, True)),
               name=f"{name}_d")
    m.d.comb += d.eq(u - cfg.lo_raw)
    k_raw = d >> cfg.segment_shift
    below, above = d < 0, k_raw >= segments
    shift = cfg.out_frac - cfg.in_frac
    x_out = saturate(x << shift if shift >= 0 else x >> -shift, signed(cfg.out_width))
    if cfg.style == "relu-correction":
        x_out = Mux(x_out < 0, 0, x_out)

    k = Signal(range(max(segments, 2)), name=f"{name}_k")
    r = Signal(unsigned(frac), name=f"{name}_r")
    flags = Signal(data.StructLayout({"below": 1, "above": 1}), name=f"{name}_flags")
    through = Signal(signed(cfg.out_width), name=f"{name}_through")
    with m.If(en):
        m.d.sync += [
            k.eq(Mux(below, 0, Mux(above, segments - 1, k_raw))),
            r.eq(d[:cfg.segment_shift] << cfg.r_shift if cfg.segment_shift else 0),
            flags.below.eq(below),
            flags.above.eq(above),
            through.eq(x_out),
        ]

    # Horner's rule on PE pairs; k and r travel beside the polynomial.
    columns = list(zip(*cfg.table))  # columns[j][segment] = c[j]
    word = signed(cfg.poly_width)
    p = _rom(m, f"{name}_c{cfg.order}", columns[cfg.order], k, word)
    for step in range(cfg.order):
        j = cfg.order - 1 - step
        product = add_pe(m, f"{name}_mul{step}", cfg.mul_pe, en=en, op=PEOp.MUL, a=p, b=r)
        k = delay(m, k, PE.latency, en=en, name=f"{name}_k{step}m")
        coefficient = _rom(m, f"{name}_c{j}", columns[j], k, word)
        p = add_pe(m, f"{name}_add{step}", cfg.add_pe, en=en, op=PEOp.ADD,
                   a=product >> frac, b=coefficient)
        if step < cfg.order - 1:
            k = delay(m, k, PE.latency, en=en, name=f"{name}_k{step}a")
            r = delay(m, r, 2 * PE.latency, en=en, name=f"{name}_r{step}")
    q = add_pe(m, f"{name}_out", cfg.out_pe, en=en, op=PEOp.SHR, a=p, b=cfg.out_shift)

    # Combine (extras), registered.
    beside = PE.latency * (2 * cfg.order + 1)
    flags = delay(m, flags, beside, en=en, name=f"{name}_flags")
    through = delay(m, through, beside, en=en, name=f"{name}_through")
    if cfg.style == "relu-correction":
        result = saturate(through - Mux(flags.above, 0, q), signed(cfg.out_width))
    else:
        result = Mux(flags.below, 0, Mux(flags.above, through, q))
    y = Signal(signed(cfg.out_width), name=f"{name}_y")
    with m.If(en):
        m.d.sync += y.eq(result)
    return y


class PiecewiseUnit(wiring.Component):
    """Base of the piecewise-polynomial units: ``lanes`` elements per cycle, one engine lane
    each. A unit sets :attr:`config_class` (a :class:`PiecewiseConfig` subclass).

    Parameters
    ----------
    config : golden.nonlinear.piecewise.PiecewiseConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    config : golden.nonlinear.piecewise.PiecewiseConfig
    latency : int
        :func:`piecewise_latency`: ``2 + PE.latency * (2 * order + 1)``.

    Members
    -------
    en : In(1)
        Stall enable.
    i : In(ArrayLayout(signed(in_width), lanes))
    o : Out(ArrayLayout(signed(out_width), lanes))
    """

    config_class: type[PiecewiseConfig] = PiecewiseConfig

    def __init__(self, config: PiecewiseConfig | None = None, **params):
        self.config = cfg = configure(self, self.config_class, config, params)
        self.latency = piecewise_latency(cfg)
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(signed(cfg.in_width), cfg.lanes)),
            "o": Out(data.ArrayLayout(signed(cfg.out_width), cfg.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for lane in range(self.config.lanes):
            m.d.comb += self.o[lane].eq(add_piecewise_lane(m, self.config, en=self.en,
                                                           x=self.i[lane], name=f"lane{lane}"))
        return m
