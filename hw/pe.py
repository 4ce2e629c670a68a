"""Processing element: one configurable-op ALU lane with saturation (a pipelined core).

Parameters, op encoding and the golden model are in ``golden.pe``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from golden.pe import Op, PEConfig

from .arith import clamp_amount, saturate, shape_of, shift_left_saturate, shift_right_rounded
from .config import configure

__all__ = ["PEOp", "PE", "add_pe"]

#: The op field's Amaranth enum, with the encoding of :class:`golden.pe.Op`.
PEOp = enum.Enum("PEOp", [(op.name, op.value) for op in Op])


class PE(wiring.Component):
    """One PE lane: ``o = saturate(op(a, b, c))``, two register stages.

    Stage 1 registers the operands and the product ``a * b`` (so synthesis can use a DSP's
    output register); stage 2 selects the op's exact result and saturates it.

    Parameters
    ----------
    config : golden.pe.PEConfig, optional
        The PE's parameters; or pass them as keywords (``in_width=8, signed=True, ...``).

    Attributes
    ----------
    config : golden.pe.PEConfig
    latency : int
        Register stages from ``i`` to ``o``: 2.

    Members
    -------
    en : In(1)
        Stall enable: all registers load when high.
    i : In(StructLayout({"op": PEOp, "a": operand, "b": operand, "c": operand}))
    o : Out(signed or unsigned ``output_width``)
    """

    latency = 2

    def __init__(self, config: PEConfig | None = None, **params):
        self.config = configure(self, PEConfig, config, params)
        operand = shape_of(self.config.in_width, self.config.signed)
        self.operand_shape = operand
        self.result_shape = shape_of(self.config.output_width, self.config.signed)
        super().__init__({
            "en": In(1),
            "i": In(data.StructLayout({"op": PEOp, "a": operand, "b": operand, "c": operand})),
            "o": Out(self.result_shape),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, i = self.config, self.i
        ops = set(cfg.op_codes)
        # Stage 1: operands and the product.
        op = Signal(PEOp)
        a, b, c = (Signal(self.operand_shape, name=n) for n in "abc")
        stage1 = [op.eq(i.op), a.eq(i.a), b.eq(i.b), c.eq(i.c)]
        product = None
        if ops & {Op.MUL, Op.MADD}:
            product = Signal(shape_of(2 * cfg.in_width, cfg.signed))
            stage1.append(product.eq(i.a * i.b))
        with m.If(self.en):
            m.d.sync += stage1

        # Stage 2: the selected op's exact result, saturated once.
        results = {
            Op.MUL: lambda: product,
            Op.MADD: lambda: product + c,
            Op.ADD: lambda: a + b,
            Op.SUB: lambda: a - b,
            Op.MAX: lambda: Mux(a > b, a, b),
            Op.MIN: lambda: Mux(a < b, a, b),
            Op.SHL: lambda: shift_left_saturate(a, clamp_amount(b, cfg.output_width),
                                                self.result_shape),
            Op.SHR: lambda: shift_right_rounded(a, clamp_amount(b, cfg.in_width + 1),
                                                cfg.rounding),
        }
        exact = Signal(signed(max(2 * cfg.in_width, cfg.output_width) + 2))
        with m.Switch(op):
            for code in cfg.op_codes:
                with m.Case(PEOp[code.name]):
                    m.d.comb += exact.eq(results[code]())
            with m.Default():  # ops not built into this PE
                m.d.comb += exact.eq(0)
        with m.If(self.en):
            m.d.sync += self.o.eq(saturate(exact, self.result_shape))
        return m


def add_pe(m: Module, name: str, config: PEConfig, *, en, op, a, b, c=0):
    """Instantiate a PE as submodule ``name`` of ``m``, wire its inputs, return its output.

    ``op`` is a :class:`PEOp` member or a signal; operands are values or integer constants.
    The output follows the inputs by :attr:`PE.latency` cycles of ``en``.
    """
    pe = m.submodules[name] = PE(config)
    m.d.comb += [pe.en.eq(en), pe.i.op.eq(op), pe.i.a.eq(a), pe.i.b.eq(b), pe.i.c.eq(c)]
    return pe.o
