"""Fast biased exponential on PE lanes (a pipelined core).

Parameters and the bit-exact model are in ``golden.nonlinear.exp``, whose docstring describes
the arithmetic. Per lane: one PE multiplies by log2(e), ``order`` pairs of PEs (multiply, add)
evaluate the polynomial of ``2**f`` by Horner's rule, and one PE shifts by the integer part into
the output format, saturating. The extras beyond the PE lanes are the shift-amount logic and
the registers that carry it beside the polynomial.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.nonlinear.exp import LOG2E_FRAC, ExpConfig

from ..config import configure
from ..pe import PE, PEOp, add_pe
from ..pipeline import delay

__all__ = ["Exp"]


class Exp(wiring.Component):
    """``lanes`` parallel ``exp(x)`` evaluations per cycle, built from PE lanes.

    Parameters
    ----------
    config : golden.nonlinear.exp.ExpConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        ``PE.latency * (2 + 2 * order)``: scale, Horner steps, shift.

    Members
    -------
    en : In(1)
        Stall enable.
    i : In(ArrayLayout(signed(in_width), lanes))
    o : Out(ArrayLayout(unsigned(out_width), lanes))
    """

    def __init__(self, config: ExpConfig | None = None, **params):
        self.config = cfg = configure(self, ExpConfig, config, params)
        self.latency = PE.latency * (2 + 2 * cfg.order)
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(signed(cfg.in_width), cfg.lanes)),
            "o": Out(data.ArrayLayout(unsigned(cfg.out_width), cfg.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        for lane in range(self.config.lanes):
            m.d.comb += self.o[lane].eq(self._lane(m, lane, self.i[lane]))
        return m

    def _lane(self, m, lane, x):
        cfg, en = self.config, self.en
        frac, point = cfg.poly_frac, cfg.in_frac + LOG2E_FRAC
        t = add_pe(m, f"scale{lane}", cfg.scale_pe, en=en, op=PEOp.MUL, a=x, b=cfg.log2e)
        n = t >> point  # floor(x * log2(e))
        f = Signal(unsigned(frac), name=f"f{lane}")
        m.d.comb += f.eq(t >> (point - frac))

        # The final shift: left by s = n + out_frac - frac if s >= 0, else right by -s.
        s = Signal(signed(len(n) + 2), name=f"s{lane}")
        m.d.comb += s.eq(n + (cfg.out_frac - frac))
        magnitude = Mux(s < 0, -s, s)
        amount = Signal(range(cfg.max_shift + 1), name=f"amount{lane}")
        m.d.comb += amount.eq(Mux(magnitude > cfg.max_shift, cfg.max_shift, magnitude))
        op = Signal(PEOp, name=f"shift_op{lane}")
        m.d.comb += op.eq(Mux(s < 0, PEOp.SHR, PEOp.SHL))

        # Horner's rule on PE pairs; f travels beside the polynomial.
        p = cfg.coefficients[-1]
        for step, coefficient in enumerate(reversed(cfg.coefficients[:-1])):
            product = add_pe(m, f"mul{lane}_{step}", cfg.poly_mul_pe, en=en, op=PEOp.MUL,
                             a=p, b=f)
            p = add_pe(m, f"add{lane}_{step}", cfg.poly_add_pe, en=en, op=PEOp.ADD,
                       a=product >> frac, b=coefficient)
            f = delay(m, f, 2 * PE.latency, en=en, name=f"f{lane}_{step}")

        poly_cycles = 2 * PE.latency * cfg.order
        op = delay(m, op, poly_cycles, en=en, name=f"shift_op{lane}")
        amount = delay(m, amount, poly_cycles, en=en, name=f"amount{lane}")
        return add_pe(m, f"shift{lane}", cfg.shift_pe, en=en, op=op, a=p, b=amount)
