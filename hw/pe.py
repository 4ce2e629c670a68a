"""Processing element: one configurable-op ALU lane with saturation (a pipelined core).

Parameters, op encoding and the golden model are in ``golden.pe``. The default lane (signed int8
into int16, every op, ``half_up``) is built by :func:`mapped_lane` as a netlist of 4-input
functions (:func:`hw.dsp.lut4`: ECP5 ``LUT4`` primitives, or the same functions as kept wires
elsewhere); every other configuration by the generic description in :class:`PE`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed_point import bits_for_range, int_range, product_range
from golden.pe import MULTIPLIER_WIDTH, OP_NAMES, SHL_STEP, Op, PEConfig

from .arith import clamp_amount, saturate, shape_of, shift_left_saturate, shift_right_rounded
from .config import configure
from .dsp import lut4, registered_product
from .pipeline import delay

__all__ = ["PEOp", "PE", "add_pe", "pe_latency", "OP_DECODE_LAYOUT", "decode_op",
           "lane_is_mapped", "mapped_lane"]

#: The op field's Amaranth enum, with the encoding of :class:`golden.pe.Op`.
PEOp = enum.Enum("PEOp", [(op.name, op.value) for op in Op])


@dataclass(frozen=True)
class _Decoded:
    """One op as ``a * y + z + carry``: the values (expressions of the inputs or constants),
    the inclusive ranges of ``y``, ``z`` and of the sum, whether the result is the sum
    shifted right (``shr`` on the multiplier) rather than the sum saturated, and the shift
    left by ``SHL_STEP * post`` after the sum (``shl`` on the multiplier into wide results)."""

    y: object
    z: object
    carry: int
    y_range: tuple[int, int]
    z_range: tuple[int, int]
    sum_range: tuple[int, int]
    shifted: bool = False
    post: object = 0
    post_range: tuple[int, int] = (0, 0)


def pe_latency(config: PEConfig) -> int:
    """Register stages of a PE with this config: ``2 + multiplier_stages + sum_register``."""
    return 2 + config.multiplier_stages + int(config.sum_register)


class PE(wiring.Component):
    """One PE lane: ``o = saturate(op(a, b, c))``, pipelined (3 to 6 stages), one multiplier.

    Every op is computed as ``a * y + z (+ 1)`` by the lane's one multiplier and one adder (the
    reuse MARCA builds its nonlinear functions on). The multiplier's first operand is always
    ``a``, so nothing selects it; ``y`` and ``z`` are chosen per op:

    ====  ===================  ==================================================================
    op    ``y``                ``z`` (and the carry into the adder)
    ====  ===================  ==================================================================
    mul   ``b``                0
    madd  ``b``                ``c``
    add   1                    ``b``
    sub   1                    ``~b`` and carry 1: ``a + ~b + 1 = a - b``
    max   ``a > b``            ``b`` if ``a <= b``, else 0: ``a * 1 + 0`` or ``a * 0 + b``
    min   ``a <= b``           ``b`` if ``a > b``, else 0 (max and min share one comparator)
    shl   ``2**n``             0 (``n = b`` clamped to where every nonzero ``a`` saturates)
    shr   ``2**(K - n)``       the rounding bias; the result is the sum ``>> K``
                               (``K = PEConfig.shr_scale = 2**m - 1``; 0 past ``n = K``)
    ====  ===================  ==================================================================

    A shift costs a decoder (the one-hot factor), not a barrel shifter: one for both, as
    ``2**(K - n)`` is bit ``n ^ K``. Into results wider than 17 bits, shl's factor ``2**n``
    would not fit the multiplier: ``y`` is then ``2**(n mod 16)`` and the sum is shifted left
    by ``16 * (n // 16)`` after the adder, saturating when the sum's bits above ``out_width -
    1 - 16 * (n // 16)`` are not all equal; each result bit is then one 4-input function of
    two sum bits and two lane-wide selects. With the ``logic`` shifter (operands too wide
    for one DSP) the shifted value is computed in stage 1 and enters as ``z`` with ``y = 0``.

    Stage 1 decodes the op into ``y``, ``z`` and the carry and registers ``a``; stage 2
    registers the product (a DSP with its output register); stage 3 adds ``z`` and saturates,
    with clamps only where the built ops' results can leave the output range (none for int8
    operands into 16 bits without ``shl``). ``multiplier_stages=2`` adds a
    register in front of the multiplier (the DSP's input register), so that the route into a
    DSP does not share a cycle with logic; ``multiplier_stages=3`` also registers the product
    in the fabric, so that the route out of it does not either; ``multiplier_stages=4`` also
    registers the operands in the fabric before the DSP's input register, so that the route
    into the DSP column has a cycle of its own (the operand logic's register can then sit
    beside the logic, wherever the DSP is); ``sum_register`` registers the sum before it
    saturates.

    The default lane (signed int8 into int16, every op, ``half_up``, the multiplier shifter;
    see :func:`lane_is_mapped`) is built by :func:`mapped_lane`, the same ops cut into 4-input
    functions, LUT4 primitives on ECP5: cycle for cycle and bit for bit the same results.

    Parameters
    ----------
    config : golden.pe.PEConfig, optional
        The PE's parameters; or pass them as keywords (``in_width=8, signed=True, ...``).
    decoded_op : bool
        The mapped lane only: take the op decoded (:func:`decode_op`, shared by a row of
        lanes) on ``decoded`` instead of decoding ``i.op`` itself.

    Attributes
    ----------
    config : golden.pe.PEConfig
    latency : int
        Register stages from ``i`` to ``o``: ``2 + multiplier_stages + sum_register`` (3 by
        default, the class attribute).
    mapped : bool
        Whether the lane is :func:`mapped_lane`'s.
    decode_delay : int
        With ``decoded_op``: ``decoded`` must be the decode of the op ``decode_delay`` cycles
        of ``en`` after it was on ``i`` (1 from 2 multiplier stages on, when the lane's first
        stage registers its inputs as they come; the array registers each copy of its decode
        with them).

    Members
    -------
    en : In(1)
        Stall enable: all registers load when high.
    i : In(StructLayout({"op": PEOp, "a": operand, "b": operand, "c": operand}))
    o : Out(signed or unsigned ``output_width``)
    decoded : In(OP_DECODE_LAYOUT)
        With ``decoded_op`` only.
    """

    latency = 3

    def __init__(self, config: PEConfig | None = None, *, decoded_op: bool = False, **params):
        self.config = configure(self, PEConfig, config, params)
        self.latency = pe_latency(self.config)
        self.mapped = lane_is_mapped(self.config)
        if not isinstance(decoded_op, bool) or (decoded_op and not self.mapped):
            self._MustUse__silence = True  # rejected, never built (as hw.config.configure)
            if not isinstance(decoded_op, bool):
                raise TypeError(f"decoded_op must be a bool, got {decoded_op!r}")
            raise ValueError("decoded_op needs the mapped lane (signed int8 into int16, every "
                             "op, half_up rounding, the multiplier shifter)")
        self.decoded_op = decoded_op
        #: With ``decoded_op``: en-cycles from ``i`` to the op that ``decoded`` must decode.
        self.decode_delay = int(self.config.multiplier_stages >= 2)
        operand = shape_of(self.config.in_width, self.config.signed)
        self.operand_shape = operand
        self.result_shape = shape_of(self.config.output_width, self.config.signed)
        members = {
            "en": In(1),
            "i": In(data.StructLayout({"op": PEOp, "a": operand, "b": operand, "c": operand})),
            "o": Out(self.result_shape),
        }
        if decoded_op:
            members["decoded"] = In(OP_DECODE_LAYOUT)
        super().__init__(members)

    def _decode(self, i) -> dict[Op, _Decoded]:
        """The :class:`_Decoded` row of each built op."""
        cfg = self.config
        operand, result = cfg.operand_range, cfg.output_range
        one, zero = (1, 1), (0, 0)
        w, k = cfg.output_width, cfg.in_width + 1  # shr: every shift past k is the same
        # ~b as a signed value, -b - 1: unsigned operands gain a bit so that it stays exact.
        not_b = ~(i.b if cfg.signed else Cat(i.b, Const(0, 1)).as_signed())
        not_b_range = (-operand[1] - 1, -operand[0] - 1)
        difference = (operand[0] - operand[1], operand[1] - operand[0])
        products = product_range(operand, operand)
        # max and min share one row (and one case): b is taken when the comparison and the
        # op agree.
        a_le_b = i.a <= i.b
        built = set(cfg.op_codes)
        take_b = (Mux(i.op == PEOp.MAX, a_le_b, ~a_le_b) if {Op.MAX, Op.MIN} <= built
                  else a_le_b if Op.MAX in built else ~a_le_b)
        pick = _Decoded(~take_b, Mux(take_b, i.b, 0), 0, (0, 1), operand, operand)
        table = {
            Op.MUL: _Decoded(i.b, 0, 0, operand, zero, products),
            Op.MADD: _Decoded(i.b, i.c, 0, operand, operand,
                              (products[0] + operand[0], products[1] + operand[1])),
            Op.ADD: _Decoded(1, i.b, 0, one, operand, (2 * operand[0], 2 * operand[1])),
            Op.SUB: _Decoded(1, not_b, 1, one, not_b_range, difference),
            Op.MAX: pick,
            Op.MIN: pick,
        }
        if cfg.shift_unit == "logic":
            shl = shift_left_saturate(i.a, clamp_amount(i.b, w), self.result_shape)
            shr = shift_right_rounded(i.a, clamp_amount(i.b, k), cfg.rounding)
            table[Op.SHL] = _Decoded(0, shl, 0, zero, result, result)
            table[Op.SHR] = _Decoded(0, shr, 0, zero, operand, operand)
        else:
            table.update(self._multiplier_shifts(i.b, (i.op[0] if {Op.SHL, Op.SHR} <= built
                                                       else Const(Op.SHR in built, 1))))
        return {op: table[op] for op in cfg.op_codes}

    def _multiplier_shifts(self, b, is_shr) -> dict[Op, _Decoded]:
        """The rows of shl and shr on the multiplier: each ``y`` a one-hot factor, both from
        one decoder of ``b``'s low bits (shr's bit index is ``n ^ K``, ``K = 2**m - 1``:
        ``is_shr``, the op's low bit, selects the direction)."""
        cfg = self.config
        operand, zero, k = cfg.operand_range, (0, 0), cfg.shr_scale
        assert Op.SHL ^ Op.SHR == 1  # the op's low bit tells them apart
        # shl: a << n for n up to the last amount that matters (beyond it every nonzero a
        # saturates): w - 1 signed, w unsigned. If 2**limit does not fit the multiplier, it
        # takes 2**(n mod SHL_STEP) and the sum is shifted on by SHL_STEP * (n // SHL_STEP)
        # (post).
        limit = cfg.output_width - 1 if cfg.signed else cfg.output_width
        split = limit > MULTIPLIER_WIDTH - 2  # 2**limit does not fit the multiplier
        low_top = min(limit, SHL_STEP - 1)
        # The decoder: bit j of 2**sel, sel = b's low bits (^ K for shr). Valid while b is in
        # the range the low bits cover; the amounts outside it set constant bits.
        top = max(low_top, k)
        sel = b[:bits_for_range(0, top, False)] ^ Mux(is_shr, k, 0)
        onehot = [sel == j for j in range(top + 1)]
        negative = b < 0

        def factor(inside, width, below_bit, above_bit):
            above = ~negative & ~inside
            return Cat(*(Mux(inside, onehot[j] if j < len(onehot) else 0,
                             (negative if j == below_bit else 0)
                             | (above if j == above_bit else 0)) for j in range(width)))

        rows = {}
        shl_inside = ~negative & (b <= (limit if split else low_top))
        if split:
            post_top = limit // SHL_STEP
            post = Mux(shl_inside, b[bits_for_range(0, low_top, False):
                                    bits_for_range(0, limit, False)],
                       Mux(negative, 0, post_top))
            steps = (1, 1 << low_top)
            rows[Op.SHL] = _Decoded(factor(shl_inside, SHL_STEP, 0, limit % SHL_STEP), 0, 0,
                                    steps, zero, product_range(operand, steps), post=post,
                                    post_range=(0, post_top))
        else:
            rows[Op.SHL] = _Decoded(factor(shl_inside, limit + 1, 0, limit), 0, 0,
                                    (1, 1 << limit), zero, product_range(operand, (1, 1 << limit)))
        # shr: (a * 2**(K - n) + bias) >> K for n in 0..K; past K every result is the same:
        # y = 0 gives it (0), but for signed truncation (a's sign: y = 1, as n = K).
        half = (1 << (k - 1)) if cfg.rounding != "truncate" else 0
        bias = half if cfg.rounding == "half_up" else 0
        past = 0 if cfg.rounding == "truncate" and cfg.signed else None
        shr_inside = ~negative & (b <= k)
        products = product_range(operand, (0, 1 << k))
        rows[Op.SHR] = _Decoded(factor(shr_inside, k + 1, k, past), bias, 0, (0, 1 << k),
                                (bias, bias), (products[0], products[1] + half), shifted=True)
        return rows

    def elaborate(self, platform):
        if self.mapped:
            return mapped_lane(self, platform)
        m = Module()
        cfg, i, en = self.config, self.i, self.en
        k = cfg.shr_scale
        table = self._decode(i)
        shifts = any(row.shifted for row in table.values())
        post_top = max(row.post_range[1] for row in table.values())

        def register(name, ranges):
            lo, hi = min(0, *(r[0] for r in ranges)), max(0, *(r[1] for r in ranges))
            is_signed = lo < 0 or cfg.signed
            return Signal(shape_of(bits_for_range(lo, hi, is_signed), is_signed), name=name)

        # Stage 1: a, and the op decoded into y, z and the carry. An op not built clears them
        # (result 0) with the registers' synchronous reset, which the FPGA flip-flop has for
        # free (ECP5's LSR wins over its clock enable, so the reset is qualified by en here).
        x = Signal(self.operand_shape, name="x")
        y = register("y", [row.y_range for row in table.values()])
        z = register("z", [row.z_range for row in table.values()])
        carry, is_shr = Signal(name="carry"), Signal(name="is_shr")
        post = register("post", [row.post_range for row in table.values()])
        with m.If(en):
            m.d.sync += x.eq(i.a)
        fields = [(y, "y"), (z, "z"), (carry, "carry")]
        fields += [(is_shr, "shifted")] if shifts else []
        fields += [(post, "post")] if post_top else []
        decoded = [target for target, _ in fields]
        not_built = ~Cat(i.op == PEOp[code.name] for code in table).any()
        # Ops with the same row share one case.
        cases = {}
        for code, row in table.items():
            cases.setdefault(id(row), (row, []))[1].append(PEOp[code.name])
        *others, (last_row, _) = cases.values()

        def assign(row):
            return [target.eq(getattr(row, field)) for target, field in fields]

        with m.If(en & not_built):
            m.d.sync += [value.eq(0) for value in decoded]
        with m.Elif(en):
            with m.Switch(i.op):
                for row, codes in others:
                    with m.Case(*codes):
                        m.d.sync += assign(row)
                with m.Default():  # the last built op: the others are cleared above
                    m.d.sync += assign(last_row)

        # Stage 2: the product, in the DSP's output register (after its input register with
        # multiplier_stages >= 2, and registered again in the fabric, near the adder, from 3;
        # with 4 the operands are registered in the fabric before the DSP too); z, the carry
        # and the shift flags wait beside it.
        if cfg.multiplier_stages == 4:
            x, y = (delay(m, value, 1, en=en, name=f"{value.name}_far") for value in (x, y))
        product = registered_product(m, platform, x, y, en=en, name="product",
                                     input_register=cfg.multiplier_stages >= 2)
        if cfg.multiplier_stages >= 3:
            product = delay(m, product, 1, en=en, name="product_near")
        z2, carry2, is_shr2, post2 = (delay(m, target, cfg.multiplier_stages, en=en,
                                            name=target.name)
                                      if any(target is d for d in decoded) else None
                                      for target in (z, carry, is_shr, post))

        # Stage 3: add, then saturate (only as far as the built ops need), drop shr's
        # fraction bits or shift shl's sum left by SHL_STEP * post; with sum_register, the sum
        # is registered in between.
        def span(ranges):
            ranges = list(ranges) or [(0, 0)]
            return min(0, *(r[0] for r in ranges)), max(0, *(r[1] for r in ranges))

        sum_range = span(row.sum_range for row in table.values() if not row.shifted)
        addend = z2
        if shifts and cfg.rounding == "nearest_even":
            # Half minus one, plus the truncated result's LSB: a tie rounds to even only.
            half = 1 << (k - 1)
            addend = Mux(is_shr2, Mux(product[k], half, half - 1), z2)
        total = product + addend + carry2
        if not shifts and not post_top:
            if cfg.sum_register:
                total = delay(m, total, 1, en=en, name="total")
            with m.If(en):
                m.d.sync += self.o.eq(saturate(total, self.result_shape, value_range=sum_range))
            return m
        # Only the bits that every op's sum fits: the output's muxes and the saturation tests
        # read no copies of the sign bit.
        total = Value.cast(total)
        total = total[:bits_for_range(*span(row.sum_range for row in table.values()), True)]
        total = total.as_signed()
        if cfg.sum_register:
            total = delay(m, total, 1, en=en, name="total")
            is_shr2, post2 = (None if flag is None else delay(m, flag, 1, en=en, name=name)
                              for flag, name in ((is_shr2, "is_shr_sum"), (post2, "post_sum")))
        # The result is the sum read at an offset: the sum itself (0), shr's (+K), shl's
        # post-shifts (-SHL_STEP * h); each saturates where its range needs it.
        normal = Const(1, 1) if not shifts else ~is_shr2
        sources = [(normal if not post_top else normal & (post2 == 0), 0, sum_range)]
        if shifts:
            sources.append((is_shr2, k, None))
        if post_top:
            lo, hi = table[Op.SHL].sum_range
            sources += [(post2 == h, -SHL_STEP * h, (lo, hi)) for h in range(1, post_top + 1)]
        m.d.comb += self.o.eq(_select_output(m, platform, en, total, sources, self.result_shape,
                                             cfg.operand_range))
        return m


def _select_output(m: Module, platform, en, total: Value, sources, shape,
                   operand_range) -> Signal:
    """The output register of a lane whose result is its sum read at one of several offsets.

    ``sources`` are ``(active, offset, value_range)``: while ``active`` (one at a time),
    result bit ``j`` is ``total[j + offset]`` (the sign past the top, 0 below bit 0),
    saturated to ``shape``; ``value_range`` is that of ``total`` for the source (``None``:
    shr's, whose shifted result is in ``operand_range``). Per result bit, the sources that
    read a constant there (0, the sign) and the saturation value are folded into two
    lane-wide selects shared by the bits of the same pattern, so that a bit with two data
    sources is one 4-input function (:func:`hw.dsp.lut4`: synthesis would merge the selects
    into every bit's function otherwise, 5 to 7 inputs wide), ``Mux(s1, s0, Mux(s0, d1,
    d0))``: ``s1`` a constant, then ``s0`` its value, else ``s0`` picks the data bit.
    """
    width, signed_ = shape.width, shape.signed
    lo, hi = int_range(width, signed_)
    sign = total[-1]
    # Overflow of each source, from the bits that leave the result (as hw.arith.saturate).
    overflows = []
    for active, offset, value_range in sources:
        if value_range is None:
            value_range = (operand_range[0] << offset, operand_range[1] << offset)
        vlo, vhi = ((value_range[0] >> offset, value_range[1] >> offset) if offset >= 0 else
                    (value_range[0] << -offset, value_range[1] << -offset))
        if vlo >= lo and vhi <= hi:
            continue
        first = max(0, width - (1 if signed_ else 0) + offset)  # the bits that must match
        top = total[first:] if first < len(total) else total[-1:]
        fits = ((top == 0) | top.all()) if signed_ else ~sign & (top == 0)
        overflows.append(active & ~fits)
    saturating = Cat(*overflows).any() if overflows else Const(0, 1)

    patterns = {}
    bits = []
    for j in range(width):
        # What each source reads at bit j: a bit of the sum (its index), 0 or the sign.
        kinds = ["zero" if j + offset < 0 else "sign" if j + offset >= len(total) - 1
                 else j + offset for _, offset, _ in sources]
        data_bits = [kind for kind in kinds if isinstance(kind, int)]
        sat_bit = signed_ and j == width - 1  # saturated: ~sign, but the sign bit itself
        key = (tuple(isinstance(kind, int) for kind in kinds), sat_bit)
        if key not in patterns:
            n = len(patterns)
            constant_on = Cat(Const(0, 1), *(active for (active, _, _), kind in zip(sources, kinds)
                                             if not isinstance(kind, int))).any()
            constant = Cat(Const(0, 1), *(active & sign for (active, _, _), kind
                                          in zip(sources, kinds) if kind == "sign")).any()
            s1, s0 = Signal(name=f"out_p{n}_s1"), Signal(name=f"out_p{n}_s0")
            value = Mux(saturating, sign if sat_bit else ~sign, constant)
            picks = [active for (active, _, _), kind in zip(sources, kinds)
                     if isinstance(kind, int)]
            m.d.comb += [s1.eq(saturating | constant_on),
                         s0.eq(Mux(s1, value, picks[1]) if len(picks) == 2 else value)]
            patterns[key] = (s1, s0, picks)
        s1, s0, picks = patterns[key]
        data_ = [total[index] for index in data_bits]
        if not data_:
            bits.append(s0)
        elif len(data_) == 1:
            bits.append(lut4(m, platform, lambda s1, s0, d0: (s1 & s0) | (~s1 & d0),
                             s1, s0, data_[0], name=f"out{j}"))
        elif len(data_) == 2:
            bits.append(lut4(m, platform,
                             lambda s1, s0, d1, d0: (s1 & s0) | (~s1 & ((s0 & d1) | (~s0 & d0))),
                             s1, s0, data_[1], data_[0], name=f"out{j}"))
        else:
            chosen = data_[0]
            for pick, bit in zip(picks[1:], data_[1:]):
                chosen = Mux(pick, bit, chosen)
            bits.append(Mux(s1, s0, chosen))
    out = Signal(shape, name="result")
    with m.If(en):
        m.d.sync += out.eq(Cat(*bits))
    return out


def add_pe(m: Module, name: str, config: PEConfig, *, en, op, a, b, c=0):
    """Instantiate a PE as submodule ``name`` of ``m``, wire its inputs, return its output.

    ``op`` is a :class:`PEOp` member or a signal; operands are values or integer constants.
    The output follows the inputs by :attr:`PE.latency` cycles of ``en``.

    A constant ``op`` builds the PE with that op alone (the same result: an op's saturation
    and rounding do not depend on the others built beside it), so its y register holds only
    what that op needs: a subtract's y is the constant 1, and its product needs no multiplier
    (:func:`hw.dsp.shift_add_product`), where with a multiply beside it y would be b's width
    and the product a DSP block's (LayerNorm's Newton subtractions: 4 blocks each on the ECP5).
    """
    if isinstance(op, PEOp) and op.name.lower() in config.ops and len(config.ops) > 1:
        config = replace(config, ops=(op.name.lower(),))
    pe = m.submodules[name] = PE(config)
    m.d.comb += [pe.en.eq(en), pe.i.op.eq(op), pe.i.a.eq(a), pe.i.b.eq(b), pe.i.c.eq(c)]
    return pe.o


# --- The mapped lane: signed int8 into int16, every op, half_up, on the multiplier ----------
#
# Every op is ``a * y + z + carry`` as in :class:`PE`, cut into 4-input functions (one LUT4
# each on ECP5), with the levers that bring a lane near a hand-written one:
# - saturation only where the ranges need it: only shl can leave int16 (every other op's sum
#   fits), so the adder is 16 bits wide and the overflow test reads product bits [22:15];
# - one shift decoder for both directions: shl is ``a * 2**n``, shr is
#   ``(a * 2**(7 - n) + 63 + 1) >> 7`` (half up), so the one-hot factor is bit ``n`` or bit
#   ``7 - n`` = ``n ^ 7``: the decoder's select is the op's low bit;
# - the op's effect on the adder operand through the register's synchronous reset (z is 0 for
#   mul and shl, and for max/min when a is taken), which the FPGA flip-flop has for free;
# - the op decoded once for several lanes (:func:`decode_op`, ``PE(decoded_op=True)``): 8 of
#   its functions are of the op alone;
# - the output a 4-way choice per bit, each one LUT4: the sum, the sum shifted right by 7
#   (shr), or a saturation value.

#: The op decoded for the mapped lane: the op's bits, and functions of the op alone that a row
#: of lanes shares.
OP_DECODE_LAYOUT = data.StructLayout({
    "op": 3,      # the op itself (its bits select inside the lanes' functions)
    "mm": 1,      # mul or madd: y is b
    "mmshr": 1,   # mul, madd or shr: y bit 7 when b < 0
    "shl": 1,
    "zs1": 1,     # (zs1, zs0) select z: b, ~b (sub), c (madd), 63 (shr); zs0 is the carry
    "zs0": 1,
    "k0": 1,      # with op[2], y bit 0: b0 (mul, madd), 1 (add, sub), a > b (max), a <= b (min)
    "q1": 1,      # (q1, q0) the z register's reset: never, always (mul, shl), when a > b
    "q0": 1,      # (max), when a <= b (min)
})


def lane_is_mapped(config: PEConfig) -> bool:
    """Whether :class:`PE` builds ``config`` as the mapped lane (:func:`mapped_lane`)."""
    return (config.in_width == 8 and config.signed and config.output_width == 16
            and config.rounding == "half_up" and config.shift_unit == "multiplier"
            and set(config.ops) == set(OP_NAMES))


def decode_op(m: Module, platform, op, *, name: str) -> Signal:
    """The op decode of the mapped lane (:data:`OP_DECODE_LAYOUT`), as 4-input functions of
    ``op``: one shared by many lanes."""
    o0, o1, o2 = op[0], op[1], op[2]
    decoded = Signal(OP_DECODE_LAYOUT, name=name)

    def cell(field, function, *inputs):
        m.d.comb += decoded[field].eq(lut4(m, platform, function, *inputs,
                                           name=f"{name}_{field}"))

    m.d.comb += decoded.op.eq(op)
    cell("mm", lambda o2, o1, o0: ~o2 & ~(o1 ^ o0), o2, o1, o0)
    cell("mmshr", lambda o2, o1, o0: ~(o1 ^ o0) & (~o2 | o0), o2, o1, o0)
    cell("shl", lambda o2, o1, o0: o2 & o1 & ~o0, o2, o1, o0)
    cell("zs1", lambda o1, o0: o1 & o0, o1, o0)
    cell("zs0", lambda o2, o1, o0: o1 & ~(o2 ^ o0), o2, o1, o0)
    cell("k0", lambda o2, o1, o0: (o2 & o0) | (~o2 & (o1 ^ o0)), o2, o1, o0)
    cell("q1", lambda o2, o1: o2 & ~o1, o2, o1)
    cell("q0", lambda o2, o1, o0: (~o2 & ~o1 & ~o0) | (o2 & o1 & ~o0) | (o2 & ~o1 & o0),
         o2, o1, o0)
    return decoded


def _compare(m: Module, platform, a, b, style: str):
    """``a <= b`` for signed int8: ``chain`` (7 LUT4s, 7 deep: 2 bits, then one bit each, the
    sign bit compared the other way round), ``tree`` (11 LUT4s, 3 deep: 2-bit groups, then
    their greater-than and equal bits combined) or ``carry`` (Yosys's carry chain)."""

    def cell(name, function, *inputs):
        return lut4(m, platform, function, *inputs, name=name)

    if style == "carry":
        le = Signal(name="a_le_b")
        m.d.comb += le.eq(a <= b)
        return le
    if style == "chain":
        le = cell("a_le_b1", lambda a0, a1, b0, b1: ~((a1 & ~b1) | (~(a1 ^ b1) & a0 & ~b0)),
                  a[0], a[1], b[0], b[1])
        for k in range(2, 8):
            le = cell(f"a_le_b{k}",
                      (lambda ak, bk, le: (ak & ~bk) | (~(ak ^ bk) & le)) if k == 7 else
                      (lambda ak, bk, le: (~ak & bk) | (~(ak ^ bk) & le)), a[k], b[k], le)
        return le
    # tree: per 2-bit group, a > b and a == b (the top group signed: a's sign bit set is less)
    gt, eq = [], []
    for g in range(4):
        lo, hi = 2 * g, 2 * g + 1
        sign = 1 if g == 3 else 0
        gt.append(cell(f"a_gt_b_g{g}", lambda a0, a1, b0, b1, s=sign:
                       ((a1 ^ s) & ~(b1 ^ s)) | (~(a1 ^ b1) & a0 & ~b0),
                       a[lo], a[hi], b[lo], b[hi]))
        if g:
            eq.append(cell(f"a_eq_b_g{g}", lambda a0, a1, b0, b1: ~(a0 ^ b0) & ~(a1 ^ b1),
                           a[lo], a[hi], b[lo], b[hi]))
    gt_hi = cell("a_gt_b_hi", lambda g3, e3, g2, e2: g3 | (e3 & g2), gt[3], eq[2], gt[2], eq[1])
    eq_hi = cell("a_eq_b_hi", lambda e3, e2: e3 & e2, eq[2], eq[1])
    gt_lo = cell("a_gt_b_lo", lambda g1, e1, g0: g1 | (e1 & g0), gt[1], eq[0], gt[0])
    return cell("a_le_b", lambda gh, eh, gl: ~(gh | (eh & gl)), gt_hi, eq_hi, gt_lo)


def _lane_operands(m: Module, platform, a, b, c, d, en, *, compare: str):
    """The multiplier's second operand ``y`` (17 bits), the adder operand ``z`` before its
    register, and that register's reset ``rz``, from the operands and the decoded op ``d``."""

    def cell(name, function, *inputs):
        return lut4(m, platform, function, *inputs, name=name)

    o2, o1, o0 = d.op[2], d.op[1], d.op[0]
    le = _compare(m, platform, a, b, compare)

    # The shift decoder: shl sets bit n of y, shr bit 7 - n = n ^ 7 (for n in 0..7), so
    # e[k] = (b[2:0] ^ {3{op0}}) == k serves both.
    hz4 = cell("b_7_4_zero", lambda b4, b5, b6, b7: ~(b4 | b5 | b6 | b7), *b[4:8])
    t = cell("b_ge_16", lambda b4, b5, b6, b7: ~b7 & (b4 | b5 | b6), *b[4:8])
    lo_sh = cell("shift_lo", lambda o2, o1, hz4, b3: o2 & o1 & hz4 & ~b3, o2, o1, hz4, b[3])
    hi_sh = cell("shift_hi", lambda shl, hz4, b3: shl & hz4 & b3, d.shl, hz4, b[3])
    e = [cell(f"shift_dec{k}",
              lambda b0, b1, b2, o0, k=k: (~((b0 ^ o0) ^ (k & 1)) & ~((b1 ^ o0) ^ (k >> 1 & 1))
                                           & ~((b2 ^ o0) ^ (k >> 2 & 1))),
              b[0], b[1], b[2], o0) for k in range(8)]
    ge15 = cell("b_ge_15", lambda t, hz4, b3, e7: t | (hz4 & b3 & e7), t, hz4, b[3], e[7])

    # y: b (mul, madd), 1 (add, sub), the comparison (max, min), 2**n (shl), 2**(7-n) (shr).
    w0 = cell("y0_shift", lambda o0, b7, lo, e0: (~o0 & b7) | (lo & e0), o0, b[7], lo_sh, e[0])
    g1 = cell("y0_other", lambda o2, k0, b0, le: (~o2 & (k0 | b0)) | (o2 & ~(k0 ^ le)),
              o2, d.k0, b[0], le)
    bits = [cell("y0", lambda o2, o1, w0, g1: (o2 & o1 & w0) | (~(o2 & o1) & g1),
                 o2, o1, w0, g1)]
    bits += [cell(f"y{k}", lambda mm, bk, lo, ek: (mm & bk) | (lo & ek), d.mm, b[k], lo_sh, e[k])
             for k in range(1, 7)]
    bits.append(cell("y7", lambda b7, mmshr, lo, e7: (b7 & mmshr) | (~b7 & lo & e7),
                     b[7], d.mmshr, lo_sh, e[7]))
    # b's sign extension (mul, madd) from mm and b7 in each bit's own LUT, not through the
    # shared mm & b7: one LUT level less from the row's decode, the same count.
    bits += [cell(f"y{k}", lambda mm, b7, hi, ek: (mm & b7) | (hi & ek), d.mm, b[7], hi_sh,
                  e[k - 8]) for k in range(8, 15)]
    bits.append(cell("y15", lambda mm, b7, shl, ge15: (mm & b7) | (shl & ge15), d.mm, b[7],
                     d.shl, ge15))
    bits.append(cell("y16", lambda mm, b7: mm & b7, d.mm, b[7]))
    y = Signal(signed(17), name="y")
    m.d.comb += y.eq(Cat(*bits))

    # z: b (add, and max/min taking b), ~b (sub, with the carry), c (madd), 63 (shr, with the
    # carry: the rounding bias 64); 0 by the register's reset.
    z = Signal(signed(8), name="z_next")
    m.d.comb += z.eq(Cat(*(cell(f"z{k}", lambda zs1, zs0, ck, bk, k=k:
                                (~zs1 & (bk ^ zs0)) | (zs1 & ~zs0 & ck)
                                | (zs1 & zs0 & (1 if k < 6 else 0)),
                                d.zs1, d.zs0, c[k], b[k]) for k in range(8))))
    # Qualified by en here, not in the row's decode: the stall enable, the array's widest net,
    # then passes one LUT on its way to the reset, as it passes none to the clock enables.
    rz = cell("z_reset", lambda en, q1, q0, le: en & ((~q1 & q0) | (q1 & ~q0 & ~le)
                                                      | (q1 & q0 & le)),
              en, d.q1, d.q0, le)
    return y, z, rz


def mapped_lane(pe: PE, platform) -> Module:
    """The elaboration of a :class:`PE` whose config :func:`lane_is_mapped`.

    Stages as :class:`PE` describes, with one difference from ``multiplier_stages=2`` on: the
    first stage registers the operands (and the op) as they come, and the operand logic sits
    between it and the DSP's input register (with 4, the fabric register before it), so the
    inputs' routes (a wide array's longest) carry no logic; the comparison is then a tree.
    """
    m = Module()
    cfg, i, en = pe.config, pe.i, pe.en
    early = cfg.multiplier_stages >= 2

    # Every register of the lane holds data whose valid bit is the caller's (a stream
    # wrapper's or the array's stage bits), so none takes the domain's reset: in an array that
    # would be one net to every flip-flop and DSP (its longest, 8.6 ns of route in an 8x8).
    def register(value, name):
        reg = Signal(value.shape(), name=name, reset_less=True)
        with m.If(en):
            m.d.sync += reg.eq(value)
        return reg

    def delay_(value, cycles, name):
        return delay(m, value, cycles, en=en, name=name, reset_less=True)

    if early:
        a, b, c = (register(i[k], f"{k}_in") for k in "abc")
        d = pe.decoded if pe.decoded_op else decode_op(
            m, platform, register(Value.cast(i.op), "op_in"), name="op")
    else:
        a, b, c = i.a, i.b, i.c
        d = pe.decoded if pe.decoded_op else decode_op(m, platform, Value.cast(i.op),
                                                       name="op")
    # The comparison in 7 LUT4s in a chain, or, where the multiplier stages say timing matters,
    # in 11 as a 3-deep tree.
    y, z_next, rz = _lane_operands(m, platform, a, b, c, d, en,
                                   compare="tree" if early else "chain")

    # The operands' register: the DSP's input register from 2 multiplier stages on; with 4, a
    # fabric register before it, so the route to the DSP (as far as the placer puts it) has a
    # cycle to itself and the operand logic's cycle ends beside the logic.
    far = cfg.multiplier_stages >= 4
    if far:
        a, y = register(a, "a_far"), register(y, "y_far")
    if early:
        product = registered_product(m, platform, a, y, en=en, name="product",
                                     input_register=True, reset=False)
    else:
        product = registered_product(m, platform, register(a, "x"), register(y, "y_reg"),
                                     en=en, name="product", input_register=False, reset=False)
    # z's reset is the op's (and the comparison's) doing; the domain's reset is not needed by
    # a data register, and would cost a LUT to merge with it.
    z = Signal(signed(8), name="z", reset_less=True)
    with m.If(rz):
        m.d.sync += z.eq(0)
    with m.Elif(en):
        m.d.sync += z.eq(z_next)
    flags = register(Cat(d.shl, d.zs1, d.zs0), "flags")
    # Beside the DSP's output register (and its input register, with the fabric's before it).
    z, flags = (delay_(value, 1 + far, value.name) for value in (z, flags))
    if cfg.multiplier_stages >= 3:
        # The product again in the fabric, near the adder: the route out of the DSP has the
        # cycle to itself, the saturation test comes after it (with it before, its LUTs sat
        # beside the DSP and their result took a 4.2 ns route back to the output logic).
        product, z, flags = (delay_(value, 1, f"{name}_near") for value, name in
                             ((product, "product"), (z, "z"), (flags, "flags")))
    shl, zs1, carry = flags[0], flags[1], flags[2]

    def cell(name, function, *inputs):
        return lut4(m, platform, function, *inputs, name=name)

    # Saturation: only shl overflows int16, when product bits [22:15] are not all equal;
    # (c1, c0): the sum, the sum >> 7 (shr), int16 max, int16 min.
    p = product
    eq_hi = cell("sat_eq_hi", lambda x, y, z, w: (x & y & z & w) | ~(x | y | z | w), *p[19:23])
    eq_lo = cell("sat_eq_lo", lambda x, y, z, w: (x & y & z & w) | ~(x | y | z | w), *p[16:20])
    fits = cell("sat_fits", lambda eh, el, p16, p15: eh & el & ~(p16 ^ p15),
                eq_hi, eq_lo, p[16], p[15])
    c1 = cell("out_c1", lambda shl, fits: shl & ~fits, shl, fits)
    c0 = cell("out_c0", lambda zs1, zs0, c1, p22: (zs1 & zs0) | (c1 & p22), zs1, carry, c1, p[22])
    total = Signal(16, name="total")
    m.d.comb += total.eq(product[:16] + z + carry)
    if cfg.sum_register:
        total, c1, c0 = (delay_(value, 1, f"{name}_sum")
                         for value, name in ((total, "total"), (c1, "c1"), (c0, "c0")))

    def out_bit(k):
        # Saturated, bits 0..14 are 1 for int16 max (c0 = 0) and 0 for min; bit 15 the reverse.
        return lambda c1, c0, sk, sh: ((~c1 & ~c0 & sk) | (~c1 & c0 & sh)
                                       | (c1 & (c0 if k == 15 else ~c0)))

    out = [cell(f"out{k}", out_bit(k), c1, c0, total[k], total[min(k + 7, 14)])
           for k in range(16)]
    m.d.comb += pe.o.eq(register(Cat(*out), "o_reg"))
    return m
