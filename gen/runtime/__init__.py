"""The runtime: run a compiled program on a backend (the golden machine or the RTL under
Verilator) and report its outputs and cycles."""

from .accelerator import *  # noqa: F403
from .accelerator import __all__ as __all__
