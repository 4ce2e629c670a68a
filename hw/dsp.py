"""A registered multiplier, held by the FPGA's DSP block with the block's own registers.

Yosys maps ``x * y`` to an ECP5 ``MULT18X18D`` but leaves the registers around it in the fabric,
so every product pays two routes between the DSP column and the logic in one cycle (measured on
an 8x8 PE array: 3.5 ns in, 3.9 ns through, 2.9 ns out, 91 MHz). On ECP5 (``platform.family ==
"ecp5"``) :func:`registered_product` instantiates the ``MULT18X18D`` with its output register
and, with ``input_register``, its input registers; everywhere else (simulation, other
families) it builds the same registers around ``x * y``. Both load on ``en`` and reset to 0 with
the domain's reset, so the two are cycle for cycle the same; the tests simulate the ECP5 netlist
against a behavioural model of the primitive (``sim/models/MULT18X18D.v``).

:func:`lut4` is the same idea for logic: one function of up to four bits, a ``LUT4`` with its
truth table computed here on ECP5 (simulated by ``sim/models/LUT4.v``), elsewhere the same
function as an expression in a submodule of its own, named ``lut4_*``, which the emitted Verilog
marks ``keep_hierarchy`` (:func:`gen.emit.verilog_text`): synthesis then maps each function
alone, as one LUT4, where it would otherwise merge them into wider, duplicated functions (an
int8 PE lane: 144 LUTs with the functions on kept wires, 226 with none, 94 as submodules).
"""

from __future__ import annotations

from amaranth.hdl import (
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    Mux,
    ResetSignal,
    Signal,
    Value,
    signed,
)

__all__ = ["DSP_WIDTH", "SHIFT_ADD_WIDTH", "LUT4_PREFIX", "dsp_family", "registered_product",
           "shift_add_product", "lut4", "lut4_init", "kept_register"]

#: Operand width of the ECP5 multiplier (signed).
DSP_WIDTH = 18

#: A product with an operand of at most this many bits is built from shifted copies of the
#: other operand and at most ``SHIFT_ADD_WIDTH - 1`` adders (:func:`shift_add_product`), not a
#: multiplier: the nonlinear units' add, subtract and shift PEs multiply by a 1- or 2-bit y,
#: and each took a whole DSP block on the ECP5 (Yosys's ``mul2dsp`` maps every product from
#: 2x2 bits up, and :func:`registered_product` instantiated a ``MULT18X18D`` for any operands
#: that fit): 50 blocks of the 8x8 accelerator with 4 unit lanes.
SHIFT_ADD_WIDTH = 4


def dsp_family(platform) -> str | None:
    """The family whose DSP primitive :func:`registered_product` instantiates, or None."""
    return "ecp5" if getattr(platform, "family", None) == "ecp5" else None


def _fits(value: Value) -> bool:
    shape = value.shape()
    return shape.width + (0 if shape.signed else 1) <= DSP_WIDTH


def shift_add_product(x, y) -> Value:
    """``x * y`` with no multiplier: each bit of the narrower operand selects a shifted copy of
    the wider one, and the copies are added (the sign bit's subtracted, for a signed operand).

    Meant for an operand of a few bits (:data:`SHIFT_ADD_WIDTH`), where a DSP block would be
    wasted; exact for any widths and signedness.
    """
    x, y = Value.cast(x), Value.cast(y)
    if len(y) > len(x):
        x, y = y, x
    total = Const(0)
    for k in range(len(y)):
        term = Mux(y[k], x << k, 0)
        if k == len(y) - 1 and y.shape().signed:
            total = total - term
        else:
            total = term if k == 0 else total + term
    return total


def registered_product(m: Module, platform, x, y, *, en, input_register: bool,
                       name: str, reset: bool = True) -> Signal:
    """``x * y`` through an input register (if ``input_register``) and an output register.

    Parameters
    ----------
    m : Module
    platform : Platform or None
        The elaboration's platform: ECP5 gets a ``MULT18X18D`` holding the registers, when both
        operands fit its 18-bit signed inputs. A product with an operand of at most
        :data:`SHIFT_ADD_WIDTH` bits is :func:`shift_add_product` in the fabric everywhere.
    x, y : Value
        Operands (signed or unsigned).
    en : Value
        Load enable of every register.
    input_register : bool
        Register the operands before the multiplier (latency 2 instead of 1).
    name : str
        Name of the product signal (and of the instance).
    reset : bool
        Whether the domain's reset clears the registers (False: data registers whose valid
        bit is kept elsewhere, with no reset net to route to them).

    Returns
    -------
    Signal
        The product, ``signed(len(x) + len(y) + 1)``, ``1 + input_register`` cycles of ``en``
        after its operands.
    """
    x, y = Value.cast(x), Value.cast(y)
    product = Signal(signed(len(x) + len(y) + 1), name=name, reset_less=not reset)
    narrow = min(len(x), len(y)) <= SHIFT_ADD_WIDTH
    if dsp_family(platform) == "ecp5" and not narrow and _fits(x) and _fits(y):
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
            "i_CLK0": ClockSignal(), "i_CE0": en,
            "i_RST0": ResetSignal() if reset else Const(0, 1),
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
        x_reg = Signal.like(x, name=f"{name}_x", reset_less=not reset)
        y_reg = Signal.like(y, name=f"{name}_y", reset_less=not reset)
        with m.If(en):
            m.d.sync += [x_reg.eq(x), y_reg.eq(y)]
        x, y = x_reg, y_reg
    with m.If(en):
        m.d.sync += product.eq(shift_add_product(x, y) if narrow else x * y)
    return product



def lut4_init(function, n_inputs: int) -> int:
    """The 16-bit truth table of ``function`` of ``n_inputs`` (<= 4) bits, as ECP5's LUT4
    ``INIT``: bit ``{D, C, B, A}`` is the value for inputs ``A, B, C, D`` (the inputs past
    ``n_inputs`` are tied to 0 and do not matter)."""
    if not 0 <= n_inputs <= 4:
        raise ValueError(f"n_inputs must be in 0..4, got {n_inputs}")
    init = 0
    for index in range(16):
        bits = [(index >> k) & 1 for k in range(n_inputs)]
        init |= (int(function(*bits)) & 1) << index
    return init


def lut4(m: Module, platform, function, *inputs, name: str) -> Signal:
    """One bit, ``function(*inputs)`` of up to four 1-bit values: a ``LUT4`` on ECP5, a wire
    marked ``keep`` elsewhere.

    Parameters
    ----------
    m : Module
    platform : Platform or None
        ECP5 (``platform.family == "ecp5"``) gets the primitive.
    function : callable
        Of as many arguments as ``inputs``, written with ``&``, ``|``, ``^`` and ``~`` only, so
        that it evaluates both on 0/1 integers (the truth table; ``~`` is taken modulo 2) and on
        Amaranth values (the expression).
    inputs : Value
        One bit each, at most four.
    name : str
        Name of the output signal (and of the instance).

    Returns
    -------
    Signal
        The function's value, combinational.
    """
    if len(inputs) > 4:
        raise ValueError(f"a LUT4 takes at most 4 inputs, got {len(inputs)}")
    inputs = [Value.cast(value) for value in inputs]
    if any(len(value) != 1 for value in inputs):
        raise ValueError("every LUT4 input must be one bit")
    out = Signal(name=name)
    if dsp_family(platform) == "ecp5":
        init = lut4_init(function, len(inputs))
        padded = [*inputs, *[Const(0, 1)] * (4 - len(inputs))]
        m.submodules[f"{name}_lut"] = Instance(
            "LUT4", p_INIT=Const(init, 16), a_keep=1,
            **{f"i_{port}": value for port, value in zip("ABCD", padded)}, o_Z=out)
    else:
        cell = m.submodules[f"{LUT4_PREFIX}{name}"] = _Function(function, len(inputs))
        m.d.comb += [port.eq(value) for port, value in zip(cell.inputs, inputs)]
        m.d.comb += out.eq(cell.out)
    return out


#: Name prefix of :func:`lut4`'s generic submodules (marked ``keep_hierarchy`` on emission).
LUT4_PREFIX = "lut4_"


def kept_register(m: Module, platform, value, *, en, name: str, reset: bool = True) -> Signal:
    """``value`` registered (loading when ``en`` is high, cleared by the domain's reset if
    ``reset``) where synthesis cannot merge it with an identical register: ``TRELLIS_FF``
    primitives on ECP5 (simulated by ``sim/models/TRELLIS_FF.v``), elsewhere a register alone
    in a ``lut4_`` submodule (kept as :func:`lut4`'s). A copy per group of an array's lanes
    stays the group's."""
    value = Value.cast(value)
    out = Signal(len(value), name=name)
    if dsp_family(platform) == "ecp5":
        for k in range(len(value)):
            m.submodules[f"{name}_ff{k}"] = Instance(
                "TRELLIS_FF", p_GSR="DISABLED", p_CEMUX="CE", p_CLKMUX="CLK", p_LSRMUX="LSR",
                p_REGSET="RESET", p_SRMODE="LSR_OVER_CE", a_keep=1,
                i_CLK=ClockSignal(), i_CE=en, i_LSR=ResetSignal() if reset else Const(0, 1),
                i_DI=value[k], o_Q=out[k])
    else:
        cell = m.submodules[f"{LUT4_PREFIX}{name}"] = _Register(len(value), reset)
        m.d.comb += [cell.d.eq(value), cell.en.eq(en), out.eq(cell.q)]
    return out


class _Register(Elaboratable):
    """A register alone in its module (:func:`kept_register`'s generic path)."""

    def __init__(self, width: int, reset: bool = True):
        self.d = Signal(width, name="d")
        self.q = Signal(width, name="q", reset_less=not reset)
        self.en = Signal(name="en")

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.d)
        return m


class _Function(Elaboratable):
    """One function of up to four bits, alone in its module (:func:`lut4`'s generic path)."""

    def __init__(self, function, n_inputs: int):
        self.function = function
        self.inputs = [Signal(name=f"in{k}") for k in range(n_inputs)]
        self.out = Signal(name="out")

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.out.eq(self.function(*self.inputs))
        return m
