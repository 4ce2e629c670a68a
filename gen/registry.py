"""Registry of generators: CLI name -> config class and component builder.

A new block registers itself with one :func:`register` call at the bottom of this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.lib import wiring

from golden.accelerator import AcceleratorConfig
from golden.memory.addrgen import AddrGenConfig
from golden.memory.csr import CSRConfig, write_regmap_files
from golden.memory.dma import DMAConfig
from golden.memory.pingpong import PingPongConfig
from golden.memory.scratchpad import ScratchpadConfig
from golden.nonlinear.exp import ExpConfig
from golden.nonlinear.gelu import GELUConfig
from golden.nonlinear.layernorm import LayerNormConfig
from golden.nonlinear.silu import SiLUConfig
from golden.nonlinear.softmax import SoftmaxConfig
from golden.params import BlockConfig
from golden.pe import PEConfig
from golden.pe_array import PEArrayConfig
from golden.reduction_tree import ReductionTreeConfig
from golden.sparse.search_tree import SearchTreeConfig
from golden.sparse.sparse_decoder import SparseDecoderConfig
from golden.sparse.sparse_search import SparseSearchConfig
from hw.accelerator_top import AcceleratorTop
from hw.memory.addrgen import AddrGen
from hw.memory.csr import CSRBlock
from hw.memory.dma import DMA
from hw.memory.input_share import InputShare
from hw.memory.pingpong import PingPong
from hw.memory.scratchpad import Scratchpad
from hw.nonlinear.exp import Exp
from hw.nonlinear.gelu import GELU
from hw.nonlinear.layernorm import LayerNorm
from hw.nonlinear.silu import SiLU
from hw.nonlinear.softmax import Softmax
from hw.pe import PE
from hw.pe_array import PEArray
from hw.pipeline import StreamPipeline
from hw.reduction_tree import ReductionTree
from hw.sparse.search_tree import SearchTree
from hw.sparse.sparse_decoder import SparseDecoder
from hw.sparse.sparse_search import SparseSearch

__all__ = ["Generator", "GENERATORS", "register", "get_generator"]


@dataclass(frozen=True)
class Generator:
    """A registered generator.

    Attributes
    ----------
    name : str
        CLI name, e.g. ``pe-array``.
    config_class : type
        Its :class:`~golden.params.BlockConfig` subclass.
    build : callable
        Makes the component from a config (a stream block has stream ports ``i`` and ``o``).
    summary : str
        One line for ``accelgen list``.
    extra_files : callable, optional
        ``(component, out_dir) -> list of paths``: files ``accelgen emit`` writes beside the
        Verilog and manifest (e.g. a register map).
    """

    name: str
    config_class: type[BlockConfig]
    build: Callable[[BlockConfig], wiring.Component]
    summary: str
    extra_files: Callable | None = None

    @property
    def module_name(self) -> str:
        """Default Verilog module name and TOML table name: ``pe_array`` for ``pe-array``."""
        return self.name.replace("-", "_")


GENERATORS: dict[str, Generator] = {}


def register(name: str, config_class: type[BlockConfig],
             build: Callable[[BlockConfig], wiring.Component], summary: str,
             extra_files: Callable | None = None) -> None:
    """Add a generator under a CLI name."""
    if name in GENERATORS:
        raise ValueError(f"generator {name!r} is already registered")
    GENERATORS[name] = Generator(name, config_class, build, summary, extra_files)


def get_generator(name: str) -> Generator:
    """Return the generator called ``name``; ``ValueError`` lists the known ones."""
    try:
        return GENERATORS[name]
    except KeyError:
        raise ValueError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}") from None


def _regmap_files(component, out_dir) -> list:
    """A component's register map as JSON, C header and Python module."""
    return list(write_regmap_files(component.regmap, out_dir).values())


register("pe-array", PEArrayConfig, PEArray,
         "reconfigurable PE array, per-row reduction trees (linear) or bypass (element-wise)")
register("reduction-tree", ReductionTreeConfig, lambda c: StreamPipeline(ReductionTree(c)),
         "pipelined adder tree over any number of inputs, with stream ports")
register("pe", PEConfig, lambda c: StreamPipeline(PE(c)),
         "one PE lane (mul, add, sub, madd, max, min, shl, shr; saturating), with stream ports")
register("exp", ExpConfig, lambda c: StreamPipeline(Exp(c)),
         "fast biased exp on PE lanes: 2**f by a minimax polynomial, 2**n by a shift")
register("softmax", SoftmaxConfig, Softmax,
         "single-pass softmax: online max and sum, reciprocal, output pass from a buffer")
register("layernorm", LayerNormConfig, LayerNorm,
         "LayerNorm (no affine): one-pass sums, 1/sqrt by table, line and a Newton step on PE "
         "lanes, output pass from a buffer")
register("gelu", GELUConfig, lambda c: StreamPipeline(GELU(c)),
         "GELU on PE lanes: ReLU minus a piecewise-polynomial correction, or a piecewise poly")
register("silu", SiLUConfig, lambda c: StreamPipeline(SiLU(c)),
         "SiLU on PE lanes: range detection plus a piecewise polynomial")
register("search-tree", SearchTreeConfig, SearchTree,
         "bi-directional adder & search tree: rank (prefix count) or select over a bitmap")
register("sparse-search", SparseSearchConfig, SparseSearch,
         "coordinate-format search unit: P stored coordinates compared per cycle")
register("sparse-decoder", SparseDecoderConfig, SparseDecoder,
         "hybrid sparse front-end: lookups on bitmap or coordinate blocks through one interface")
register("addrgen", AddrGenConfig, AddrGen,
         "tiled address generator: up to 4 nested loops, one address per cycle, bounds checked")
register("csr", CSRConfig, CSRBlock,
         "control/status registers from a register-map description, AXI4-Lite slave",
         extra_files=_regmap_files)
register("dma", DMAConfig, DMA,
         "AXI4 DMA master: tiles between external memory and a local scratchpad, INCR bursts")
register("input-share", PEArrayConfig, InputShare,
         "input sharing for linear ops: one x chunk fanned out to every PE row of the array")
register("scratchpad", ScratchpadConfig, Scratchpad,
         "banked scratchpad: N banks, low-order or XOR interleaving, ports stall on conflicts")
register("pingpong", PingPongConfig, PingPong,
         "ping-pong buffer: fill one half while the other drains, swap by handshake")
register("accelerator", AcceleratorConfig, AcceleratorTop,
         "the whole accelerator: sequencer, scratchpad, PE array, nonlinear units, AXI4 DMA, "
         "behind AXI4-Lite control/status registers", extra_files=_regmap_files)
