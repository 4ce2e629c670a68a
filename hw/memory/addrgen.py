"""Tiled address generator (a DMA descriptor walker): one address per cycle.

Parameters, the descriptor format (levels outermost first), the error rule and the bit-exact
model are in ``golden.memory.addrgen``. The hardware is a check pipeline feeding a walker:

- **Check stage 1** registers the descriptor with its spans ``(bounds[k] - 1) * strides[k]``
  (one multiplier per level).
- **Check stage 2** registers the descriptor's extent test and the walker's per-level
  increments: ``error = any(bounds == 0) | lowest < 0 | highest >= limit`` with
  ``lowest / highest = base + sum(min / max(span_k, 0))`` (exact, wide enough never to wrap),
  and ``inc_k = strides[k] - sum(span_j for j > k)``: the address step when loop ``k``
  advances and every loop inside it wraps.
- **Walker**: the output payload is its register. It keeps a down-counter per level (the
  iterations left); each step advances the innermost level with iterations left, reloads the
  levels inside it and adds that level's increment (one adder and a mux: no multiplier in the
  loop). The step that takes a descriptor's last word loads the next checked descriptor in the
  same cycle, so descriptors follow each other without a bubble. An invalid descriptor is
  loaded as the single word ``{addr: 0, last: 1, error: 1}``.
- **Handshakes**: the walker advances when its output register is empty or being taken
  (``advance = ~o.valid | o.ready``); the check pipeline advances when its stage 2 is empty or
  being loaded into the walker, and that is ``i.ready``. Stage 2 holds the next descriptor
  while the walker runs, so the walker never waits for a check.

Timing without stalls: first word :data:`golden.memory.addrgen.LATENCY` (3) cycles after the
descriptor is accepted; one word per cycle for as long as descriptors arrive in time.
"""

from __future__ import annotations

from functools import reduce
from operator import and_, or_

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.memory.addrgen import LATENCY, AddrGenConfig

from ..config import configure

__all__ = ["AddrGen"]


class AddrGen(wiring.Component):
    """Nested-loop address generator with up-front bounds checking.

    Parameters
    ----------
    config : golden.memory.addrgen.AddrGenConfig, optional
        Or its fields as keywords (``levels=3, addr_width=32, ...``).

    Attributes
    ----------
    config : golden.memory.addrgen.AddrGenConfig
    latency : int
        Cycles from accepting a descriptor to its first word with no stall (3).
    input_layout, output_layout : data.StructLayout

    Members
    -------
    i : In(stream.Signature(StructLayout({"base": unsigned(addr_width),
        "bounds": ArrayLayout(unsigned(count_width), levels),
        "strides": ArrayLayout(signed(stride_width), levels)})))
    o : Out(stream.Signature(StructLayout({"addr": unsigned(addr_width), "last": 1,
        "error": 1})))
    """

    def __init__(self, config: AddrGenConfig | None = None, **params):
        self.config = cfg = configure(self, AddrGenConfig, config, params)
        self.latency = LATENCY
        self.input_layout = data.StructLayout({
            "base": unsigned(cfg.addr_width),
            "bounds": data.ArrayLayout(unsigned(cfg.count_width), cfg.levels),
            "strides": data.ArrayLayout(signed(cfg.stride_width), cfg.levels),
        })
        self.output_layout = data.StructLayout({
            "addr": unsigned(cfg.addr_width), "last": 1, "error": 1})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        levels, aw, cw = cfg.levels, cfg.addr_width, cfg.count_width
        span_shape = signed(cw + cfg.stride_width + 1)

        # --- Check pipeline -------------------------------------------------------------------
        take = Signal()  # the walker loads stage 2 this cycle
        s1_valid, s2_valid = Signal(), Signal()
        check_advance = Signal()
        m.d.comb += [check_advance.eq(~s2_valid | take), self.i.ready.eq(check_advance)]

        # Stage 1: the descriptor and its spans.
        s1 = Signal(self.input_layout)
        s1_spans = [Signal(span_shape, name=f"s1_span{k}") for k in range(levels)]
        s1_empty = Signal()
        word = self.i.payload
        with m.If(check_advance):
            m.d.sync += [s1_valid.eq(self.i.valid), s1.eq(word),
                         s1_empty.eq(reduce(or_, [word.bounds[k] == 0 for k in range(levels)]))]
            m.d.sync += [s1_spans[k].eq((word.bounds[k] - 1) * word.strides[k])
                         for k in range(levels)]

        # Stage 2: the error flag, the increments and the reload counts.
        s2_base = Signal(aw)
        s2_reload = [Signal(cw, name=f"s2_reload{k}") for k in range(levels)]
        s2_inc = [Signal(aw, name=f"s2_inc{k}") for k in range(levels)]
        s2_error = Signal()
        s2_single = Signal()  # one address only: every bound is 1
        lowest = s1.base + sum(Mux(s < 0, s, 0) for s in s1_spans)
        highest = s1.base + sum(Mux(s > 0, s, 0) for s in s1_spans)
        limit = Const(cfg.address_limit, unsigned(aw + 1))
        with m.If(check_advance):
            m.d.sync += [
                s2_valid.eq(s1_valid),
                s2_base.eq(s1.base),
                s2_error.eq(s1_empty | (lowest < 0) | (highest >= limit)),
                s2_single.eq(reduce(and_, [s1.bounds[k] == 1 for k in range(levels)])),
            ]
            for k in range(levels):
                inner = sum(s1_spans[k + 1:], Const(0, span_shape))
                m.d.sync += [s2_reload[k].eq(s1.bounds[k] - 1),
                             s2_inc[k].eq(s1.strides[k] - inner)]  # modulo 2**addr_width

        # --- Walker ---------------------------------------------------------------------------
        o = self.o.payload
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        left = [Signal(cw, name=f"left{k}") for k in range(levels)]      # iterations left
        reload = [Signal(cw, name=f"reload{k}") for k in range(levels)]  # bounds[k] - 1
        inc = [Signal(aw, name=f"inc{k}") for k in range(levels)]
        busy = [left[k] != 0 for k in range(levels)]
        more = self.o.valid & ~o.last  # the current descriptor has words to come
        m.d.comb += take.eq(advance & ~more & s2_valid)

        with m.If(advance):
            with m.If(more):
                # Advance the innermost level with iterations left; reload those inside it.
                for k in reversed(range(levels)):
                    with (m.If if k == levels - 1 else m.Elif)(busy[k]):
                        final = (left[k] == 1)
                        for j in range(k):
                            final &= ~busy[j]
                        for j in range(k + 1, levels):
                            final &= reload[j] == 0
                        m.d.sync += [o.addr.eq(o.addr + inc[k]), left[k].eq(left[k] - 1),
                                     o.last.eq(final)]
                        m.d.sync += [left[j].eq(reload[j]) for j in range(k + 1, levels)]
            with m.Elif(s2_valid):
                m.d.sync += [
                    self.o.valid.eq(1),
                    o.addr.eq(Mux(s2_error, 0, s2_base)),
                    o.error.eq(s2_error),
                    o.last.eq(s2_error | s2_single),
                ]
                m.d.sync += [left[k].eq(s2_reload[k]) for k in range(levels)]
                m.d.sync += [reload[k].eq(s2_reload[k]) for k in range(levels)]
                m.d.sync += [inc[k].eq(s2_inc[k]) for k in range(levels)]
            with m.Else():
                m.d.sync += self.o.valid.eq(0)
        # Kept for the formal proofs' invariants (sim/contracts.py).
        self.state = {"s1_valid": s1_valid, "s2_valid": s2_valid, "left": left, "s1": s1,
                      "s1_empty": s1_empty, "s2_error": s2_error, "s2_single": s2_single,
                      "s2_reload": s2_reload, "reload": reload}
        return m
