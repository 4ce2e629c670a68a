"""Processing element: one configurable-op ALU lane with saturation (a pipelined core).

Parameters, op encoding and the golden model are in ``golden.pe``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed_point import bits_for_range, product_range
from golden.pe import Op, PEConfig

from .arith import clamp_amount, saturate, shape_of, shift_left_saturate, shift_right_rounded
from .config import configure
from .pipeline import delay

__all__ = ["PEOp", "PE", "add_pe", "pe_latency"]

#: The op field's Amaranth enum, with the encoding of :class:`golden.pe.Op`.
PEOp = enum.Enum("PEOp", [(op.name, op.value) for op in Op])


def pe_latency(config: PEConfig) -> int:
    """Register stages of a PE with this config: ``2 + multiplier_stages``."""
    return 2 + config.multiplier_stages


class PE(wiring.Component):
    """One PE lane: ``o = saturate(op(a, b, c))``, three register stages, one multiplier.

    Every op is computed as ``x * y + z`` by the lane's one multiplier and one adder (the
    reuse MARCA builds its nonlinear functions on): ``add`` is ``a * 1 + b``, ``sub`` is
    ``b * -1 + a``, ``max``/``min`` pass the larger/smaller operand times 1. With the
    ``multiplier`` shifter, ``shl`` by ``n`` is ``a * 2**n`` and ``shr`` by ``n`` is
    ``(a * 2**(K - n) + bias) >> K`` (``K = in_width + 1``, the rounding in ``bias``), so a
    shift costs a decoder, not a barrel shifter; with the ``logic`` shifter the shifted value
    is computed in stage 1 and enters as ``z``.

    Stage 1 decodes the op into ``x``, ``y`` and ``z``; stage 2 registers the product (a DSP
    with its output register); stage 3 adds ``z`` and saturates, with clamps only where the
    built ops' results can leave the output range (none for int8 operands into 16 bits
    without ``shl``). ``multiplier_stages=2`` adds a register in front of the multiplier
    (the DSP's input register), so that neither the route into a DSP nor the one out of it
    shares a cycle with logic: large arrays spread their DSPs over the whole die.

    Parameters
    ----------
    config : golden.pe.PEConfig, optional
        The PE's parameters; or pass them as keywords (``in_width=8, signed=True, ...``).

    Attributes
    ----------
    config : golden.pe.PEConfig
    latency : int
        Register stages from ``i`` to ``o``: ``2 + multiplier_stages`` (3 by default, the
        class attribute).

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

    def _decode(self, i):
        """Per built op: ``(x, y, z)`` expressions of the inputs and the inclusive ranges of
        ``x``, ``y``, ``z`` and of the sum (``None`` for ``shr`` on the multiplier, whose sum is
        shifted before use)."""
        cfg = self.config
        operand, result = cfg.operand_range, cfg.output_range
        product = product_range(operand, operand)
        w, k = cfg.output_width, cfg.in_width + 1
        b_not_less = i.a <= i.b  # max takes b, min keeps a; on equal operands either is right
        table = {
            Op.MUL: ((i.a, i.b, 0), operand, operand, (0, 0), product),
            Op.MADD: ((i.a, i.b, i.c), operand, operand, operand,
                      (product[0] + operand[0], product[1] + operand[1])),
            Op.ADD: ((i.a, 1, i.b), operand, (1, 1), operand, (2 * operand[0], 2 * operand[1])),
            Op.SUB: ((i.b, -1, i.a), operand, (-1, -1), operand,
                     (operand[0] - operand[1], operand[1] - operand[0])),
            Op.MAX: ((Mux(b_not_less, i.b, i.a), 1, 0), operand, (1, 1), (0, 0), operand),
            Op.MIN: ((Mux(b_not_less, i.a, i.b), 1, 0), operand, (1, 1), (0, 0), operand),
        }
        if cfg.shift_unit == "logic":
            shl = shift_left_saturate(i.a, clamp_amount(i.b, w), self.result_shape)
            shr = shift_right_rounded(i.a, clamp_amount(i.b, k), cfg.rounding)
            table[Op.SHL] = ((0, 0, shl), (0, 0), (0, 0), result, result)
            table[Op.SHR] = ((0, 0, shr), (0, 0), (0, 0), operand, operand)
        else:
            # a << n for n up to the last amount that matters (beyond it every nonzero a
            # saturates): w - 1 signed, w unsigned. The largest factor is taken as 2 * a times
            # 2**(limit - 1), so y stays within w bits.
            limit = w - 1 if cfg.signed else w
            b = i.b
            doubled = b >= limit
            # 2**clamp(b) one-hot, each bit compared with b itself (clamping first would make
            # every bit a function of the clamp's muxes too).
            factor = (Cat(b <= 0, *(b == j for j in range(1, limit - 1)), b >= limit - 1)
                      if limit > 1 else Const(1, 1))
            table[Op.SHL] = ((Mux(doubled, i.a << 1, i.a), factor, 0),
                             (2 * operand[0], 2 * operand[1]), (1, 1 << (limit - 1)), (0, 0),
                             product_range(operand, (1, 1 << limit)))
            bias = (1 << (k - 1)) if cfg.rounding == "half_up" else 0
            # 2**(k - clamp(b)): bit k - j set for b == j.
            factor = Cat(b >= k, *(b == k - j for j in range(1, k)), b <= 0)
            table[Op.SHR] = ((i.a, factor, bias), operand, (1, 1 << k), (bias, bias), None)
        return {op: table[op] for op in cfg.op_codes}

    def elaborate(self, platform):
        m = Module()
        cfg, i = self.config, self.i
        k = cfg.in_width + 1
        table = self._decode(i)
        shr_on_multiplier = Op.SHR in table and cfg.shift_unit == "multiplier"

        def register(name, index):
            lo = min(0, *(row[index][0] for row in table.values()))
            hi = max(0, *(row[index][1] for row in table.values()))
            is_signed = lo < 0 or cfg.signed
            return Signal(shape_of(bits_for_range(lo, hi, is_signed), is_signed), name=name)

        # Stage 1: decode into x * y + z. An op not built clears x, y and z (result 0) with
        # the registers' synchronous reset, which the FPGA flip-flop has for free (ECP5's LSR
        # wins over its clock enable, so the reset is qualified by en here).
        x, y, z = register("x", 1), register("y", 2), register("z", 3)
        is_shr = Signal()
        built = [PEOp[code.name] for code in table]
        not_built = ~Cat(i.op == code for code in built).any()
        *others, (last_code, ((x_last, y_last, z_last), *_)) = table.items()
        with m.If(self.en & not_built):
            m.d.sync += [x.eq(0), y.eq(0), z.eq(0)]
        with m.Elif(self.en):
            with m.Switch(i.op):
                for code, ((x_value, y_value, z_value), *_) in others:
                    with m.Case(PEOp[code.name]):
                        m.d.sync += [x.eq(x_value), y.eq(y_value), z.eq(z_value)]
                with m.Default():  # the last built op: the others are cleared above
                    m.d.sync += [x.eq(x_last), y.eq(y_last), z.eq(z_last)]
        if shr_on_multiplier:
            with m.If(self.en):
                m.d.sync += is_shr.eq(i.op == PEOp.SHR)

        if cfg.multiplier_stages == 2:  # the DSP's input register
            x, y, z, is_shr = (delay(m, value, 1, en=self.en, name=value.name)
                               for value in (x, y, z, is_shr))

        # Stage 2: the product, in the DSP's output register.
        product = Signal(signed(len(x) + len(y) + 1), name="product")
        z2, is_shr2 = Signal.like(z, name="z2"), Signal(name="is_shr2")
        with m.If(self.en):
            m.d.sync += [product.eq(x * y), z2.eq(z), is_shr2.eq(is_shr)]

        # Stage 3: add, then saturate (only as far as the built ops need) or drop shr's
        # fraction bits.
        sums = [row[4] for row in table.values() if row[4] is not None] or [(0, 0)]
        sum_range = (min(0, *(r[0] for r in sums)), max(0, *(r[1] for r in sums)))
        addend = z2
        if shr_on_multiplier and cfg.rounding == "nearest_even":
            # Half minus one, plus the truncated result's LSB: a tie rounds to even only.
            half = 1 << (k - 1)
            addend = Mux(is_shr2, Mux(product[k], half, half - 1), z2)
        total = product + addend
        result = saturate(total, self.result_shape, value_range=sum_range)
        if shr_on_multiplier:
            shifted = saturate(total >> k, self.result_shape, value_range=cfg.operand_range)
            result = Mux(is_shr2, shifted, result)
        with m.If(self.en):
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
