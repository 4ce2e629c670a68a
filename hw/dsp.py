"""A registered multiplier, held by the FPGA's DSP block with the block's own registers.

Yosys maps ``x * y`` to an ECP5 ``MULT18X18D`` but leaves the registers around it in the fabric,
so every product pays two routes between the DSP column and the logic in one cycle (measured on
an 8x8 PE array: 3.5 ns in, 3.9 ns through, 2.9 ns out, 91 MHz). On ECP5 (``platform.family ==
"ecp5"``) :func:`registered_product` instantiates the ``MULT18X18D`` with its output register
and, with ``input_register``, its input registers; everywhere else (simulation, other
families) it builds the same registers around ``x * y``. Both load on ``en`` and reset to 0 with
the domain's reset, so the two are cycle for cycle the same; the tests simulate the ECP5 netlist
against a behavioural model of the primitive (``sim/models/MULT18X18D.v``).
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Signal, Value, signed

__all__ = ["DSP_WIDTH", "dsp_family", "registered_product"]

#: Operand width of the ECP5 multiplier (signed).
DSP_WIDTH = 18


def dsp_family(platform) -> str | None:
    """The family whose DSP primitive :func:`registered_product` instantiates, or None."""
    return "ecp5" if getattr(platform, "family", None) == "ecp5" else None


def _fits(value: Value) -> bool:
    shape = value.shape()
    return shape.width + (0 if shape.signed else 1) <= DSP_WIDTH


def registered_product(m: Module, platform, x, y, *, en, input_register: bool,
                       name: str) -> Signal:
    """``x * y`` through an input register (if ``input_register``) and an output register.

    Parameters
    ----------
    m : Module
    platform : Platform or None
        The elaboration's platform: ECP5 gets a ``MULT18X18D`` holding the registers, when both
        operands fit its 18-bit signed inputs.
    x, y : Value
        Operands (signed or unsigned).
    en : Value
        Load enable of every register.
    input_register : bool
        Register the operands before the multiplier (latency 2 instead of 1).
    name : str
        Name of the product signal (and of the instance).

    Returns
    -------
    Signal
        The product, ``signed(len(x) + len(y) + 1)``, ``1 + input_register`` cycles of ``en``
        after its operands.
    """
    x, y = Value.cast(x), Value.cast(y)
    product = Signal(signed(len(x) + len(y) + 1), name=name)
    if dsp_family(platform) == "ecp5" and _fits(x) and _fits(y):
        a, b = Signal(signed(DSP_WIDTH)), Signal(signed(DSP_WIDTH))
        p = Signal(2 * DSP_WIDTH)
        # The product's own bits, sign-extended here: taken from P, the bits above would be
        # opaque to Yosys, which then saturates each of them (an int8 PE lane with every op:
        # 253 LUTs, 173 with this).
        bits = len(x) + len(y) + (0 if x.shape().signed or y.shape().signed else 1)
        m.d.comb += [a.eq(x), b.eq(y), product.eq(p[:bits].as_signed())]
        registered = "CLK0" if input_register else "NONE"
        ports = {
            **{f"i_A{k}": a[k] for k in range(DSP_WIDTH)},
            **{f"i_B{k}": b[k] for k in range(DSP_WIDTH)},
            **{f"i_C{k}": Const(0, 1) for k in range(DSP_WIDTH)},
            **{f"o_P{k}": p[k] for k in range(2 * DSP_WIDTH)},
            "i_SIGNEDA": Const(1, 1), "i_SIGNEDB": Const(1, 1),
            "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
            "i_CLK0": ClockSignal(), "i_CE0": en, "i_RST0": ResetSignal(),
            **{f"i_CLK{k}": Const(0, 1) for k in (1, 2, 3)},
            **{f"i_CE{k}": Const(1, 1) for k in (1, 2, 3)},
            **{f"i_RST{k}": Const(0, 1) for k in (1, 2, 3)},
        }
        m.submodules[f"{name}_dsp"] = Instance(
            "MULT18X18D",
            p_REG_INPUTA_CLK=registered, p_REG_INPUTA_CE="CE0", p_REG_INPUTA_RST="RST0",
            p_REG_INPUTB_CLK=registered, p_REG_INPUTB_CE="CE0", p_REG_INPUTB_RST="RST0",
            p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE",
            p_REG_OUTPUT_CLK="CLK0", p_REG_OUTPUT_CE="CE0", p_REG_OUTPUT_RST="RST0",
            p_GSR="DISABLED", p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT",
            p_MULT_BYPASS="DISABLED", p_CAS_MATCH_REG="FALSE", p_HIGHSPEED_CLK="NONE",
            **ports)
        return product
    if input_register:
        x_reg, y_reg = Signal.like(x, name=f"{name}_x"), Signal.like(y, name=f"{name}_y")
        with m.If(en):
            m.d.sync += [x_reg.eq(x), y_reg.eq(y)]
        x, y = x_reg, y_reg
    with m.If(en):
        m.d.sync += product.eq(x * y)
    return product

