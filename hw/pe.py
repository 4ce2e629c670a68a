"""Processing element: one configurable-op ALU lane with saturation (a pipelined core).

Parameters, op encoding and the golden model are in ``golden.pe``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed_point import bits_for_range, product_range
from golden.pe import Op, PEConfig

from .arith import clamp_amount, saturate, shape_of, shift_left_saturate, shift_right_rounded
from .config import configure
from .dsp import registered_product
from .pipeline import delay

__all__ = ["PEOp", "PE", "add_pe", "pe_latency"]

#: The op field's Amaranth enum, with the encoding of :class:`golden.pe.Op`.
PEOp = enum.Enum("PEOp", [(op.name, op.value) for op in Op])


@dataclass(frozen=True)
class _Decoded:
    """One op as ``a * y + z + carry``: the values (expressions of the inputs or constants),
    the inclusive ranges of ``y``, ``z`` and of the sum, and whether the result is the sum
    shifted right (``shr`` on the multiplier) rather than the sum saturated."""

    y: object
    z: object
    carry: int
    y_range: tuple[int, int]
    z_range: tuple[int, int]
    sum_range: tuple[int, int]
    shifted: bool = False


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
    shr   ``2**(K - n)``       the rounding bias; the result is the sum ``>> K``, ``K = in_width+1``
    ====  ===================  ==================================================================

    A shift costs a decoder (the one-hot factor), not a barrel shifter. With the ``logic``
    shifter (operands too wide for one DSP) the shifted value is computed in stage 1 and
    enters as ``z`` with ``y = 0``.

    Stage 1 decodes the op into ``y``, ``z`` and the carry and registers ``a``; stage 2
    registers the product (a DSP with its output register); stage 3 adds ``z`` and saturates,
    with clamps only where the built ops' results can leave the output range (none for int8
    operands into 16 bits without ``shl``). ``multiplier_stages=2`` adds a
    register in front of the multiplier (the DSP's input register), so that the route into a
    DSP does not share a cycle with logic; ``multiplier_stages=3`` also registers the product
    in the fabric, so that the route out of it does not either; ``sum_register`` registers the
    sum before it saturates.

    Parameters
    ----------
    config : golden.pe.PEConfig, optional
        The PE's parameters; or pass them as keywords (``in_width=8, signed=True, ...``).

    Attributes
    ----------
    config : golden.pe.PEConfig
    latency : int
        Register stages from ``i`` to ``o``: ``2 + multiplier_stages + sum_register`` (3 by
        default, the class attribute).

    Members
    -------
    en : In(1)
        Stall enable: all registers load when high.
    i : In(StructLayout({"op": PEOp, "a": operand, "b": operand, "c": operand}))
    o : Out(signed or unsigned ``output_width``)
    """

    latency = 3

    def __init__(self, config: PEConfig | None = None, **params):
        self.config = configure(self, PEConfig, config, params)
        self.latency = pe_latency(self.config)
        operand = shape_of(self.config.in_width, self.config.signed)
        self.operand_shape = operand
        self.result_shape = shape_of(self.config.output_width, self.config.signed)
        super().__init__({
            "en": In(1),
            "i": In(data.StructLayout({"op": PEOp, "a": operand, "b": operand, "c": operand})),
            "o": Out(self.result_shape),
        })

    def _decode(self, i) -> dict[Op, _Decoded]:
        """The :class:`_Decoded` row of each built op."""
        cfg = self.config
        operand, result = cfg.operand_range, cfg.output_range
        one, zero = (1, 1), (0, 0)
        w, k = cfg.output_width, cfg.in_width + 1
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
            # a << n for n up to the last amount that matters (beyond it every nonzero a
            # saturates): w - 1 signed, w unsigned. 2**clamp(b) one-hot, each bit compared
            # with b itself (clamping first would make every bit a function of the clamp's
            # muxes too).
            limit = w - 1 if cfg.signed else w
            b = i.b
            factor = Cat(b <= 0, *(b == j for j in range(1, limit)), b >= limit)
            table[Op.SHL] = _Decoded(factor, 0, 0, (1, 1 << limit), zero,
                                     product_range(operand, (1, 1 << limit)))
            bias = (1 << (k - 1)) if cfg.rounding == "half_up" else 0
            # 2**(k - clamp(b)): bit k - j set for b == j.
            factor = Cat(b >= k, *(b == k - j for j in range(1, k)), b <= 0)
            table[Op.SHR] = _Decoded(factor, bias, 0, (1, 1 << k), (bias, bias), operand,
                                     shifted=True)
        return {op: table[op] for op in cfg.op_codes}

    def elaborate(self, platform):
        m = Module()
        cfg, i, en = self.config, self.i, self.en
        k = cfg.in_width + 1
        table = self._decode(i)
        shifts = any(row.shifted for row in table.values())

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
        with m.If(en):
            m.d.sync += x.eq(i.a)
        decoded = [y, z, carry, is_shr] if shifts else [y, z, carry]
        not_built = ~Cat(i.op == PEOp[code.name] for code in table).any()
        # Ops with the same row share one case.
        cases = {}
        for code, row in table.items():
            cases.setdefault(id(row), (row, []))[1].append(PEOp[code.name])
        *others, (last_row, _) = cases.values()

        def assign(row):
            return [target.eq(value) for target, value in
                    zip(decoded, [row.y, row.z, row.carry, row.shifted])]

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
        # multiplier_stages >= 2, and registered again in the fabric, near the adder, with 3);
        # z, the carry and the shr flag wait beside it.
        product = registered_product(m, platform, x, y, en=en, name="product",
                                     input_register=cfg.multiplier_stages >= 2)
        if cfg.multiplier_stages == 3:
            product = delay(m, product, 1, en=en, name="product_near")
        z2, carry2, is_shr2 = (delay(m, value, cfg.multiplier_stages, en=en, name=value.name)
                               for value in (z, carry, is_shr))

        # Stage 3: add, then saturate (only as far as the built ops need) or drop shr's
        # fraction bits; with sum_register, the sum is registered in between.
        sums = [row.sum_range for row in table.values() if not row.shifted] or [(0, 0)]
        sum_range = (min(0, *(r[0] for r in sums)), max(0, *(r[1] for r in sums)))
        addend = z2
        if shifts and cfg.rounding == "nearest_even":
            # Half minus one, plus the truncated result's LSB: a tie rounds to even only.
            half = 1 << (k - 1)
            addend = Mux(is_shr2, Mux(product[k], half, half - 1), z2)
        total = product + addend + carry2
        if cfg.sum_register:
            total = delay(m, total, 1, en=en, name="total")
            is_shr2 = delay(m, is_shr2, 1, en=en, name="is_shr_sum")
        result = saturate(total, self.result_shape, value_range=sum_range)
        if shifts:
            shifted = saturate(total >> k, self.result_shape, value_range=cfg.operand_range)
            result = Mux(is_shr2, shifted, result)
        with m.If(en):
            m.d.sync += self.o.eq(result)
        return m


def add_pe(m: Module, name: str, config: PEConfig, *, en, op, a, b, c=0):
    """Instantiate a PE as submodule ``name`` of ``m``, wire its inputs, return its output.

    ``op`` is a :class:`PEOp` member or a signal; operands are values or integer constants.
    The output follows the inputs by :attr:`PE.latency` cycles of ``en``.
    """
    pe = m.submodules[name] = PE(config)
    m.d.comb += [pe.en.eq(en), pe.i.op.eq(op), pe.i.a.eq(a), pe.i.b.eq(b), pe.i.c.eq(c)]
    return pe.o
