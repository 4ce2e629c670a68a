"""Processing element (PE): parameters, op encoding and the bit-exact element-wise model.

A PE computes one op on integer operands ``a``, ``b``, ``c`` and saturates the exact result
to the output width. ``hw.pe.PE`` implements it; :func:`pe_op` is its golden model.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .fixed_point import (
    ROUNDING_MODES,
    int_array,
    int_range,
    saturate,
    shift_left_saturate,
    shift_right,
)
from .params import BlockConfig, param

__all__ = ["Op", "OP_NAMES", "MULTIPLIER_WIDTH", "SHL_STEP", "PEConfig", "pe_op",
           "pe_op_reference"]


class Op(IntEnum):
    """PE operations and their 3-bit encoding in the hardware's ``op`` field.

    Shift amounts come from ``b`` (negative counts as 0): ``SHL`` shifts ``a`` left and
    saturates; ``SHR`` shifts ``a`` right with the configured rounding. The hardware clamps
    the amount to ``out_width`` (SHL) and ``in_width + 1`` (SHR; ``PEConfig.shr_scale + 1``
    on the multiplier), beyond which every result is the same (saturated, or rounded to
    0 / -1), so results equal the unclamped shift.
    """

    MUL = 0   # a * b
    ADD = 1   # a + b
    SUB = 2   # a - b
    MADD = 3  # a * b + c
    MAX = 4   # max(a, b)
    MIN = 5   # min(a, b)
    SHL = 6   # a << b, saturating
    SHR = 7   # a >> b, rounded


OP_NAMES = tuple(op.name.lower() for op in Op)

#: Operand width (signed) of the multiplier the ``multiplier`` shifter is derived for: the
#: ECP5's MULT18X18D (Xilinx's DSP48 take 25 or 27 x 18, so a lane that fits here fits there).
MULTIPLIER_WIDTH = 18

#: The ``multiplier`` shifter's shl into results wider than ``MULTIPLIER_WIDTH - 1`` bits: the
#: multiplier takes ``2**(n mod SHL_STEP)`` and the result is shifted by ``SHL_STEP * (n //
#: SHL_STEP)`` after it (a 2:1 mux per bit for 32-bit results), so the factor stays 17 bits.
SHL_STEP = 16


@dataclass(frozen=True, kw_only=True)
class PEConfig(BlockConfig):
    """Parameters of one PE lane (and of every lane of a PE array).

    Parameters
    ----------
    in_width : int
        Operand width of ``a``, ``b`` and ``c`` in bits, 2..32.
    signed : bool
        Two's complement operands and results if true, unsigned otherwise.
    out_width : int or None
        Result width, 2..64; results saturate to it (narrower than ``in_width`` is allowed: a
        saturating narrow). ``None``: ``2 * in_width``, which holds any product exactly.
    rounding : str
        Rounding of ``SHR``: ``nearest_even``, ``half_up`` or ``truncate`` (floor).
    ops : tuple of str
        The ops built into the hardware (names of :class:`Op`, lower case). An op left out costs
        no logic; the PE returns 0 for it.
    multiplier_stages : int
        Register stages around the lane's multiplier, 1 to 4 (hardware only: the PE's latency
        is ``2 + multiplier_stages + sum_register``). 2 also registers the multiplier's inputs,
        the DSP's input register; 3 registers the product again in the fabric, so that the
        route out of the DSP column has a cycle of its own; 4 also registers the operands in
        the fabric before the DSP's input register, so that the route into the DSP column has
        one too: for arrays whose DSPs are spread over a large die.
    sum_register : bool
        Register the sum ``a * y + z`` before it saturates (hardware only: one more stage), so
        that the adder and the saturation each have a cycle.
    shifter : str or None
        How the hardware shifts (results are the same): ``multiplier`` computes ``a << n`` as
        ``a * 2**n`` and ``a >> n`` as ``(a * 2**(K-n) + rounding) >> K`` on the lane's
        multiplier (a decoder, no barrel shifter); ``logic`` builds shifters. ``K`` is
        :attr:`shr_scale`. Where ``2**n`` would be wider than the multiplier (results wider
        than 17 bits), the multiplier takes ``2**(n mod 16)`` and the result is shifted by
        ``16 * (n // 16)`` after it (:data:`SHL_STEP`: a 2:1 mux per bit into 32 bits), its
        saturation read from the sum's top bits. ``None``: ``multiplier`` when the lane's
        operands, shr's factor ``2**K`` included, fit an 18 x 18 signed multiplier
        (:data:`MULTIPLIER_WIDTH`: ``in_width <= 16`` signed, ``<= 15`` unsigned), so the
        lane keeps one ECP5 MULT18X18D (or one Xilinx DSP48); ``logic`` otherwise. The
        iCE40's SB_MAC16 is 16 x 16: ``synth_ice40 -dsp`` puts an int16 lane's 16 x 17
        product on one block and the factor's top bit's partial product in logic (one
        int16-into-32 lane: 1 SB_MAC16 and 285 LUT4s, 534 with ``logic``).
    """

    in_width: int = param(8, help="operand width of a, b, c in bits", range=(2, 32))
    signed: bool = param(True, help="two's complement (true) or unsigned (false) arithmetic")
    out_width: int | None = param(None, help="result width, results saturate to it "
                                  "(derived: 2*in_width)", range=(2, 64))
    rounding: str = param("half_up", help="rounding of the shr op", choices=ROUNDING_MODES)
    ops: tuple = param(OP_NAMES, help="ops built into each PE", choices=OP_NAMES)
    multiplier_stages: int = param(1, help="register stages around the multiplier: 2 adds the "
                                   "DSP input register, 3 also a fabric register after the "
                                   "DSP, 4 also one before it (for arrays spread over the "
                                   "die)", range=(1, 4))
    sum_register: bool = param(False, help="register the sum before it saturates (one more "
                               "stage: the adder and the saturation a cycle each)")
    shifter: str | None = param(None, help="shl/shr on the multiplier or in logic (derived: "
                                "multiplier when it stays within an 18x18 DSP)",
                                choices=("multiplier", "logic"))

    def _check(self):
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"ops must not repeat an op, got {self.ops!r}")

    @property
    def output_width(self) -> int:
        """Resolved result width."""
        return 2 * self.in_width if self.out_width is None else self.out_width

    @property
    def shift_unit(self) -> str:
        """Resolved ``shifter``."""
        if self.shifter is not None:
            return self.shifter
        return "multiplier" if self.shr_scale <= MULTIPLIER_WIDTH - 2 else "logic"

    @property
    def shr_scale(self) -> int:
        """``K`` of the ``multiplier`` shifter's shr, ``(a * 2**(K-n) + rounding) >> K``: the
        least ``2**m - 1`` from which on every shift gives the same result, at least
        ``in_width - 1`` signed, ``in_width`` unsigned (so ``K - n`` is ``n ^ K``)."""
        return (1 << (self.in_width - (1 if self.signed else 0)).bit_length()) - 1

    @property
    def op_codes(self) -> tuple[Op, ...]:
        """The built ops as :class:`Op` members, in encoding order."""
        return tuple(op for op in Op if op.name.lower() in self.ops)

    @property
    def operand_range(self) -> tuple[int, int]:
        """Inclusive range of an operand."""
        return int_range(self.in_width, self.signed)

    @property
    def output_range(self) -> tuple[int, int]:
        """Inclusive range of a result."""
        return int_range(self.output_width, self.signed)


# The ops that are plain algebra, shared by the integer model and the float reference.
_ALGEBRA = {
    Op.MUL: lambda a, b, c: a * b,
    Op.ADD: lambda a, b, c: a + b,
    Op.SUB: lambda a, b, c: a - b,
    Op.MADD: lambda a, b, c: a * b + c,
    Op.MAX: lambda a, b, c: np.maximum(a, b),
    Op.MIN: lambda a, b, c: np.minimum(a, b),
}


def pe_op(config: PEConfig, op, a, b, c) -> np.ndarray:
    """Bit-exact model of PE results.

    Parameters
    ----------
    config : PEConfig
    op : array_like of int
        :class:`Op` codes, broadcast against the operands.
    a, b, c : array_like of int
        Operands, each within ``config.operand_range``.

    Returns
    -------
    numpy.ndarray
        Results saturated to ``config.output_width`` bits (0 for ops not in ``config.ops``).
    """
    w, out_w = config.in_width, config.output_width
    # Widest exact intermediate: a*b + c needs 2*w + 1 bits; shl is computed saturating.
    bits = max(2 * w + 2, out_w + 1)
    a, b, c = (int_array(x, bits) for x in (a, b, c))
    for name, x in (("a", a), ("b", b), ("c", c)):
        lo, hi = config.operand_range
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"operand {name} must be in {lo}..{hi}")
    op = np.asarray(op)
    unknown = set(np.unique(op).tolist()) - {int(o) for o in Op}
    if unknown:
        raise ValueError(f"op must be one of {sorted(int(o) for o in Op)}, got {sorted(unknown)}")
    op, a, b, c = np.broadcast_arrays(op, a, b, c)

    shifts = {
        Op.SHL: lambda: shift_left_saturate(a, np.maximum(b, 0), out_w, config.signed),
        Op.SHR: lambda: shift_right(a, np.minimum(np.maximum(b, 0), w + 1), config.rounding),
    }
    out = int_array(np.zeros(op.shape, dtype=np.int64), bits)
    for code in config.op_codes:
        where = op == code
        if np.any(where):
            exact = shifts[code]() if code in shifts else _ALGEBRA[code](a, b, c)
            out = np.where(where, exact, out)
    return saturate(int_array(out, bits), out_w, config.signed)


def pe_op_reference(op: Op, a, b, c) -> np.ndarray:
    """Float64 reference of an op: the real result before rounding and saturation.

    ``SHL`` is ``a * 2**b`` and ``SHR`` is ``a / 2**b`` (negative ``b`` counts as 0).
    """
    a, b, c = (np.asarray(x, dtype=np.float64) for x in (a, b, c))
    op = Op(op)
    if op is Op.SHL:
        return a * 2.0 ** np.maximum(b, 0)
    if op is Op.SHR:
        return a / 2.0 ** np.maximum(b, 0)
    return _ALGEBRA[op](a, b, c)
