"""Fast biased exponential: parameters and the bit-exact model.

``exp(x) = 2**(x * log2(e))``. With ``t = x * log2(e)`` split into ``n = floor(t)`` and
``f = t - n``, ``2**f`` on [0, 1) is a polynomial of order 1 or 2 whose coefficients minimize the
maximum *relative* error (order 1 is Schraudolph's trick with the bias folded into the
coefficients), and ``2**n`` is a shift. Every multiply and add runs on a PE lane
(``golden.pe``); this model composes the same PE ops the hardware instantiates, so it is
bit-exact by construction of the same arithmetic, and :func:`exp_reference` is the float64
truth it is measured against.

Out of range behaves as the PE shift does: inputs whose result is below half an output LSB give
0, and results above the output range saturate.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..fixed_point import ROUNDING_MODES, int_array
from ..params import BlockConfig, param
from ..pe import Op, PEConfig, pe_op
from .fit import minimax_poly
from .formats import InOutFormats

__all__ = ["ExpConfig", "exp", "exp_reference", "LOG2E_FRAC"]

#: Fraction bits of the log2(e) constant.
LOG2E_FRAC = 16


@functools.cache
def _poly_coefficients(order: int, frac: int) -> tuple[int, ...]:
    real, _ = minimax_poly(lambda f: 2.0 ** f, 0.0, 1.0, order, relative=True)
    return tuple(int(round(c * 2 ** frac)) for c in real)


@dataclass(frozen=True, kw_only=True)
class ExpConfig(InOutFormats, BlockConfig):
    """Parameters of the exponential unit.

    Parameters
    ----------
    in_width, in_frac : int
        Signed input format: ``in_width`` bits (4..24), ``in_frac`` of them fraction bits.
    out_width, out_frac : int
        Unsigned output format (2..32 bits, 0..32 fraction bits).
    order : int
        Polynomial order for ``2**f``, 1 or 2.
    poly_frac : int
        Fraction bits of ``f``, the coefficients and the polynomial datapath (8..16); the
        polynomial PEs are ``poly_frac + 1`` bits wide.
    rounding : str
        Rounding of the final shift to the output format.
    lanes : int
        Elements per cycle (one PE chain each), 1..256.
    """

    in_width: int = param(16, help="input width in bits (signed)", range=(4, 24))
    in_frac: int = param(10, help="input fraction bits", range=(0, 23))
    out_width: int = param(16, help="output width in bits (unsigned)", range=(2, 32))
    out_frac: int = param(8, help="output fraction bits", range=(0, 32))
    order: int = param(2, help="polynomial order of 2**f on [0, 1)", range=(1, 2))
    poly_frac: int = param(15, help="fraction bits of the polynomial datapath", range=(8, 16))
    rounding: str = param("half_up", help="rounding of the output", choices=ROUNDING_MODES)
    lanes: int = param(1, help="elements per cycle", range=(1, 256))

    output_signed = False

    def _check(self):
        self._check_formats()

    @property
    def log2e(self) -> int:
        """``log2(e)`` with :data:`LOG2E_FRAC` fraction bits."""
        return round(math.log2(math.e) * 2 ** LOG2E_FRAC)

    @property
    def coefficients(self) -> tuple[int, ...]:
        """``c[0] .. c[order]`` of ``2**f ~ sum(c[k] * f**k)``, with ``poly_frac`` fraction bits."""
        return _poly_coefficients(self.order, self.poly_frac)

    @functools.cached_property  # built once: config validation is slow
    def scale_pe(self) -> PEConfig:
        """PE computing ``t = x * log2(e)`` exactly (18 bits fits a DSP multiplier)."""
        return PEConfig(in_width=max(self.in_width, 18), signed=True, ops=("mul",))

    @functools.cached_property  # built once: config validation is slow
    def poly_mul_pe(self) -> PEConfig:
        return PEConfig(in_width=self.poly_frac + 1, signed=False, ops=("mul",))

    @functools.cached_property  # built once: config validation is slow
    def poly_add_pe(self) -> PEConfig:
        return PEConfig(in_width=self.poly_frac + 1, signed=False,
                        out_width=self.poly_frac + 1, ops=("add",))

    @functools.cached_property  # built once: config validation is slow
    def shift_pe(self) -> PEConfig:
        """PE scaling ``2**f`` by ``2**n`` into the output format, saturating."""
        return PEConfig(in_width=self.poly_frac + 1, signed=False, out_width=self.out_width,
                        ops=("shl", "shr"), rounding=self.rounding, shifter="logic")

    @property
    def max_shift(self) -> int:
        """Largest shift amount passed to the shift PE (larger ones give the same result)."""
        return (1 << (self.poly_frac + 1)) - 1


def split_exponent(config: ExpConfig, t):
    """``n = floor(t)`` and the top ``poly_frac`` bits of the fraction, from ``t = x*log2(e)``."""
    point = config.in_frac + LOG2E_FRAC
    n = t >> point
    f = (t >> (point - config.poly_frac)) & ((1 << config.poly_frac) - 1)
    return n, f


def final_shift(config: ExpConfig, n):
    """Op and amount that scale ``2**f`` (``poly_frac`` fraction bits) by ``2**n`` into the
    output format: shift left by ``s = n + out_frac - poly_frac`` if ``s >= 0``, else right."""
    s = n + config.out_frac - config.poly_frac
    op = np.where(s >= 0, int(Op.SHL), int(Op.SHR))
    return op, np.minimum(np.abs(s), config.max_shift)


def exp(config: ExpConfig, x) -> np.ndarray:
    """Bit-exact model: raw unsigned outputs for raw signed inputs ``x`` (any shape)."""
    x = int_array(x)
    fmt = config.input_format
    if x.size and (x.min() < fmt.min_int or x.max() > fmt.max_int):
        raise ValueError(f"x must be in {fmt.min_int}..{fmt.max_int} ({fmt})")
    t = pe_op(config.scale_pe, int(Op.MUL), x, config.log2e, 0)
    n, f = split_exponent(config, t)
    frac = config.poly_frac
    c = config.coefficients
    p = np.full_like(f, c[-1])
    for coefficient in reversed(c[:-1]):  # Horner: p = p * f + c
        product = pe_op(config.poly_mul_pe, int(Op.MUL), p, f, 0)
        p = pe_op(config.poly_add_pe, int(Op.ADD), product >> frac, coefficient, 0)
    op, amount = final_shift(config, n)
    return pe_op(config.shift_pe, op, p, amount, 0)


def exp_reference(config: ExpConfig, x) -> np.ndarray:
    """Float64 ``exp`` of the real values of raw inputs ``x``."""
    return np.exp(np.asarray(x, dtype=np.float64) * 2.0 ** -config.in_frac)
