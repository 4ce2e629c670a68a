"""The compiler: float layers to quantized programs for the accelerator.

- :mod:`gen.compiler.program`: :class:`Program` (instructions and the DRAM image) and its builder;
- :mod:`gen.compiler.layers`: the float64 references, quantization and the layer compilers
  (a Mamba block, an attention head).
"""

from .layers import *  # noqa: F403
from .layers import __all__ as _layers_all
from .program import *  # noqa: F403
from .program import __all__ as _program_all

__all__ = [*_layers_all, *(n for n in _program_all if n not in _layers_all)]
