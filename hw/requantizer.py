"""Requantizer: many lanes of a rounding right shift by one shared amount, then saturation.

Parameters and the golden model are in ``golden.requantizer``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed_point import int_range
from golden.requantizer import RequantizerConfig

from .config import configure
from .dsp import dsp_family, lut4

__all__ = ["Requantizer"]


class Requantizer(wiring.Component):
    """``saturate(shift_right(i[k], shift, rounding), out_width)`` for every lane, registered.

    All lanes share the amount, so what depends on it alone is decoded once, into a register:
    the shifter's select bits, ``shift >= width`` (the result is then 0, or the sign for
    ``truncate``), and two thermometer masks over the value's bit positions (which bits decide
    overflow, which are below the rounding bit). Each lane then

    - shifts ``2 * value`` right by ``shift`` into ``out_width + 1`` bits only: the result
      ``q`` and the rounding bit below it (a barrel shifter of ``out_width + 1`` outputs, not
      of the whole value; ``truncate`` reads no rounding bit, and shifts ``value`` into
      ``out_width`` bits);
    - rounds with an ``out_width``-bit increment of ``q`` (not a full-width bias add before
      the shift);
    - finds overflow from the value's bits under the shared mask (all equal to its sign when
      ``q`` fits), not from comparisons; the increment overflows only from the largest ``q``,
      where the clamp gives the same result.

    On ECP5 the shifters and the lane logic are ``LUT4`` instances around the increment's
    carry chain: ABC's depth-first LUT mapping spread the portable description over about
    1.5 times the LUT4s. The 8x8 accelerator's 64 lanes (8 of 44 bits, 56 of 32), Yosys 0.69
    ``synth_ecp5``, LUT4 + 2 per CCU2C: 11,324 LUTs; the portable description 16,154; the
    per-lane bias add, shift and saturation this block replaced 21,751 (61,167 with the
    fast LUT mapping of ``gen.measure.fpga_accelerator``, against 11,414 here).
    ``tests/test_requantizer.py`` proves the ECP5 netlist equal to the portable one.

    Parameters
    ----------
    config : golden.requantizer.RequantizerConfig, optional
        The parameters; or pass them as keywords (``lanes=64, width=32, ...``).

    Attributes
    ----------
    config : golden.requantizer.RequantizerConfig
    latency : int
        1: ``o`` holds the results of ``i`` a cycle later.
    shift_lead : int
        1: ``shift`` is decoded into a register, so it must hold its value from the cycle
        before the values it applies to (the accelerator writes it when an instruction starts,
        cycles before the instruction's first result).

    Members
    -------
    shift : In(unsigned(shift_width))
    i : In(ArrayLayout(signed(width), lanes))
    o : Out(ArrayLayout(signed(out_width), lanes))
    """

    latency = 1
    shift_lead = 1

    def __init__(self, config: RequantizerConfig | None = None, **params):
        self.config = cfg = configure(self, RequantizerConfig, config, params)
        super().__init__({
            "shift": In(unsigned(cfg.shift_width)),
            "i": In(data.ArrayLayout(signed(cfg.width), cfg.lanes)),
            "o": Out(data.ArrayLayout(signed(cfg.out_width), cfg.lanes)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        w, n, rounding = cfg.width, cfg.out_width, cfg.rounding
        shift = self.shift

        # --- shared decode, registered ------------------------------------------------------
        # Amounts of `width` and more leave nothing but the sign: the shifter covers the
        # amounts below `width` alone (it needs no stage for a higher bit).
        stages = max(1, (w - 1).bit_length())
        big_possible = (1 << cfg.shift_width) - 1 >= w
        amount = Signal(stages, name="amount")
        big = Signal(name="big")
        # overflow[j], j in n-1 .. w-2: value bit j is above the result (j >= shift + n - 1)
        over = Signal(max(0, w - n), name="over_mask")
        # below[j], j in 0 .. w-2: value bit j is below the rounding bit (j < shift - 1)
        below = Signal(w - 1, name="below_mask")
        m.d.sync += [
            amount.eq(shift[:stages]),
            big.eq(shift >= w if big_possible else 0),
            over.eq(Cat(shift + n - 1 <= j for j in range(n - 1, w - 1))),
        ]
        if rounding == "nearest_even":
            m.d.sync += below.eq(Cat(shift > j + 1 for j in range(w - 1)))

        # --- lanes ---------------------------------------------------------------------------
        lane = self._ecp5_lane if dsp_family(platform) == "ecp5" else self._lane
        for k in range(cfg.lanes):
            value = self.i[k]
            if rounding == "truncate":  # no rounding bit: nothing to build below q
                shifted = Cat(Const(0, 1),
                              self._shifter(m, platform, value, amount, n, name=f"shift{k}"))
            else:
                doubled = Cat(Const(0, 1), value).as_signed()  # the rounding bit of shift 0 is 0
                shifted = self._shifter(m, platform, doubled, amount, n + 1, name=f"shift{k}")
            total = Signal(n, name=f"total{k}")
            m.d.sync += self.o[k].eq(lane(m, platform, value, shifted, total, over, below,
                                           big, k))
        return m

    def _lane(self, m, platform, value, shifted, total, over, below, big, k):
        """The result of a lane from its shifted bits (the portable description)."""
        w, n, rounding = self.config.width, self.config.out_width, self.config.rounding
        sign = value[-1]
        half, q = shifted[0], shifted[1:]
        if rounding == "truncate":
            up = Const(0, 1)
        elif rounding == "half_up":
            up = half
        else:  # ties to even: up past the tie, or at it from an odd q
            up = half & ((value[:w - 1] & below).any() | q[0])
        m.d.comb += total.eq(q + up)
        fits_high = (((value[n - 1:w - 1] ^ sign.replicate(w - n)) & over) == 0
                     if w > n else Const(1, 1))
        # q = 2**(n-1) - 1 rounded up wraps: it clamps to that same largest value
        overflow = ~fits_high | (~q[n - 1] & total[n - 1])
        lo, hi = int_range(n, True)
        clamped = Mux(sign, Const(lo, signed(n)), Const(hi, signed(n)))
        tiny = sign.replicate(n) if rounding == "truncate" else Const(0, n)
        return Mux(big, tiny, Mux(overflow, clamped, total))

    def _ecp5_lane(self, m, platform, value, shifted, total, over, below, big, k):
        """:meth:`_lane` as ``LUT4`` instances (ABC's depth-first mapping spread the same
        logic over twice the LUT4s) and the carry chain of the rounding increment."""
        w, n, rounding = self.config.width, self.config.out_width, self.config.rounding
        sign = value[-1]
        half, q = shifted[0], shifted[1:]

        def lut(function, *inputs, name):
            return lut4(m, platform, function, *inputs, name=f"lane{k}_{name}")

        if rounding == "truncate":
            up = Const(0, 1)
        elif rounding == "half_up":
            up = half
        else:
            low = value[:w - 1]  # the bits the mask may select, two per LUT
            pairs = [lut(lambda a, ma, b, mb: (a & ma) | (b & mb),
                         *_pad(low[j], below[j], low[j + 1:j + 2], below[j + 1:j + 2]),
                         name=f"sticky_{j}") for j in range(0, w - 1, 2)]
            sticky = _or_tree(lut, pairs, name="sticky")
            up = lut(lambda h, st, q0: h & (st | q0), half, sticky, q[0], name="up")
        m.d.comb += total.eq(q + up)
        # Overflow: in chains of four value bits, each LUT ORs in one bit that differs from
        # the sign under the mask; then the wrap of q = 2**(n-1) - 1 rounded up.
        chains = []
        for first in range(n - 1, w - 1, 4):
            acc = Const(0, 1)
            for j in range(first, min(first + 4, w - 1)):
                acc = lut(lambda v, s, mask, a: a | ((v ^ s) & mask), value[j], sign,
                          over[j - (n - 1)], acc, name=f"over_{j}")
            chains.append(acc)
        wrapped = lut(lambda top, total_top, a: a | (~top & total_top), q[n - 1], total[n - 1],
                      chains.pop() if chains else Const(0, 1), name="wrap")
        overflow = _or_tree(lut, [wrapped, *chains], name="overflow")
        # Each result bit: 0 (the sign, truncating) for big amounts, else the clamp (its top
        # bit the sign, the others the complement), else the sum.
        tiny = (lambda s: s) if rounding == "truncate" else (lambda s: s & ~s)
        bits = []
        for b in range(n):
            clamp = (lambda s: s) if b == n - 1 else (lambda s: ~s)
            bits.append(lut(lambda t, s, o, g, clamp=clamp:
                            (g & tiny(s)) | (~g & ((o & clamp(s)) | (~o & t))),
                            total[b], sign, overflow, big, name=f"out_{b}"))
        return Cat(*bits)

    @staticmethod
    def _shifter(m, platform, value, amount, width, *, name):
        """``(value >> amount)[:width]``, arithmetic. On ECP5: stages of 2:1 multiplexers, the
        largest step first, each only as wide as the later stages read, one ``LUT4`` per
        multiplexer (:func:`hw.dsp.lut4`, as the lanes'). ABC's depth-first mapping of the
        same shifter (``synth_ecp5``, and ``abc -lut 4:7``) spends about twice the LUT4s on
        wide LUTs, and it cannot merge instances. Elsewhere the shift operator: the same
        function, faster to simulate (``tests/test_requantizer.py`` proves the two netlists
        equivalent)."""
        if dsp_family(platform) != "ecp5":
            shifted = Signal(signed(width), name=name)
            m.d.comb += shifted.eq(value >> amount)
            return shifted
        bits = list(value)
        sign = bits[-1]
        for stage in reversed(range(len(amount))):
            step = 1 << stage
            out = []
            for j in range(width + step - 1):  # the bits the smaller steps still select from
                hi = bits[j + step] if j + step < len(bits) else sign
                lo = bits[j] if j < len(bits) else sign
                if hi is lo:  # both past the top: the sign, whatever the select
                    out.append(sign)
                    continue
                out.append(lut4(m, platform, lambda sel, hi, lo: (sel & hi) | (~sel & lo),
                                amount[stage], hi, lo, name=f"{name}_s{stage}_{j}"))
            bits = out
        return Cat(*bits[:width])


def _pad(*bits):
    """One-bit values, an empty slice (past the top) as 0."""
    return [bit if len(bit) else Const(0, 1) for bit in bits]


def _or_tree(lut, bits, *, name):
    """The OR of one-bit values, four per LUT."""
    level = 0
    while len(bits) > 1:
        bits = [lut(lambda a, b=0, c=0, d=0: a | b | c | d, *bits[j:j + 4],
                    name=f"{name}_or{level}_{j}") if len(bits[j:j + 4]) > 1 else bits[j]
                for j in range(0, len(bits), 4)]
        level += 1
    return bits[0] if bits else Const(0, 1)
