"""The input/output fixed-point formats shared by the nonlinear units' configs."""

from __future__ import annotations

from typing import ClassVar

from ..fixed_point import QFormat

__all__ = ["InOutFormats"]


class InOutFormats:
    """Mixin for configs with ``in_width``/``in_frac``/``out_width``/``out_frac`` fields.

    Inputs are signed; ``output_signed`` says whether outputs are (exp and softmax outputs are
    not negative, so they are unsigned).
    """

    output_signed: ClassVar[bool] = True

    def _check_formats(self) -> None:
        if self.in_frac >= self.in_width:
            raise ValueError(f"in_frac must be in 0..{self.in_width - 1} (below in_width), "
                             f"got {self.in_frac}")

    @property
    def input_format(self) -> QFormat:
        """Format of the raw inputs (signed)."""
        return QFormat(self.in_width, self.in_frac, True)

    @property
    def output_format(self) -> QFormat:
        """Format of the raw outputs."""
        return QFormat(self.out_width, self.out_frac, self.output_signed)
