"""The stream contract of every streaming block: its in/out word ratio, in one table.

Each :class:`FormalTarget` says how to build a block at a small configuration (small enough
that a bounded proof takes seconds), which of its channels pair up, how many output words an
input word owes (:class:`sim.formal.Contract`) and how deep to prove. ``tests/test_formal.py``
proves every row; ``make verify`` proves the rows marked ``deep`` too.

=================  ==================  =======================================================
block              channels            words out per accepted word in
=================  ==================  =======================================================
pe, reduction-     i -> o              1 (a pipeline; due after ``latency`` cycles)
tree, exp, gelu,
silu, search-tree,
input-share
pe-array           i -> o              1 if ``mode`` is element-wise or ``last`` is set, else 0
                                       (linear chunks accumulate until ``last``)
sparse-search,     i -> o              1 per query (``kind`` = query), 0 per load word
sparse-decoder
addrgen            i -> o              1 ``last`` word per descriptor (the words of a
                                       descriptor are counted by their ``last`` flag)
pingpong           i -> o              1, due when a fill ends (``last`` or ``depth`` words)
softmax,           i -> o              at most 1 (outputs start ~50 / ~40 cycles after a
layernorm                              vector ends, too deep for the no-loss check)
scratchpad         req[k] -> resp[k]   1 per read request, 0 per write
dma                cmd -> done         at most 1 (a transfer waits on the AXI slave, which
                                       may stall forever; the slave is assumed legal, the
                                       master's AXI channels keep their contract)
csr                AR -> R; AW, W -> B 1; at most 1 (B waits for both AW and W)
uart (loopback)    i -> o              at most 1: ``tx`` wired to ``rx``; no drain check
                                       (a frame is 40 cycles, too deep for the no-loss check)
stream-buffer      (handshakes only)   its words come from bus writes, not from a stream
host-bridge        (handshakes only)   responses depend on the command bytes' protocol
=================  ==================  =======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import Assume, Cat, Module, Signal

from golden.memory.addrgen import AddrGenConfig
from golden.memory.csr import CSRConfig
from golden.memory.dma import DMAConfig
from golden.memory.pingpong import PingPongConfig
from golden.memory.scratchpad import ScratchpadConfig
from golden.memory.stream_buffer import StreamBufferConfig
from golden.nonlinear.exp import ExpConfig
from golden.nonlinear.gelu import GELUConfig
from golden.nonlinear.layernorm import LayerNormConfig
from golden.nonlinear.silu import SiLUConfig
from golden.nonlinear.softmax import SoftmaxConfig
from golden.pe import PEConfig
from golden.pe_array import Mode, PEArrayConfig
from golden.reduction_tree import ReductionTreeConfig
from golden.sparse.search_tree import SearchTreeConfig
from golden.sparse.sparse_decoder import SparseDecoderConfig, WordKind
from golden.sparse.sparse_search import SparseSearchConfig
from golden.uart import UARTConfig

from .formal import Channel, ChannelPair, Contract, ContractHarness, stream_pairs

__all__ = ["FormalTarget", "FORMAL_TARGETS", "MARGIN", "axi_channels"]

#: Cycles a default proof runs beyond a block's drain time: room for words to go in first.
MARGIN = 4


def axi_channels(bus, names: tuple[str, ...], prefix: str) -> list[Channel]:
    """Channels of an AXI4 or AXI4-Lite interface: ``names`` like ``("aw", "w")``; each
    channel's payload is every member ``<name>*`` other than its valid and ready."""
    members = bus.signature.members
    channels = []
    for name in names:
        fields = [getattr(bus, f) for f in members
                  if f.startswith(name) and f not in (f"{name}valid", f"{name}ready")]
        channels.append(Channel(f"{prefix}{name}", getattr(bus, f"{name}valid"),
                                getattr(bus, f"{name}ready"), Cat(*fields)))
    return channels


def _legal_axi_slave(m: Module, axi) -> None:
    """Assume the AXI4 slave behind a master with one burst in flight per direction plays by
    the rules: R beats only for an accepted AR, RLAST on its ``len``-th beat; B only after
    the burst's AW and its W beat with WLAST."""
    reads, beat, length = Signal(), Signal(8), Signal(8)
    with m.If(axi.arvalid & axi.arready):
        m.d.sync += [reads.eq(1), beat.eq(0), length.eq(axi.arlen)]
    with m.If(axi.rvalid & axi.rready):
        m.d.sync += beat.eq(beat + 1)
        with m.If(axi.rlast):
            m.d.sync += reads.eq(0)
    with m.If(axi.rvalid):
        m.d.comb += Assume(reads & (axi.rlast == (beat == length)))
    address, data = Signal(), Signal()
    with m.If(axi.awvalid & axi.awready):
        m.d.sync += address.eq(1)
    with m.If(axi.wvalid & axi.wready & axi.wlast):
        m.d.sync += data.eq(1)
    with m.If(axi.bvalid & axi.bready):
        m.d.sync += [address.eq(0), data.eq(0)]
    with m.If(axi.bvalid):
        m.d.comb += Assume(address & data)


@dataclass(frozen=True)
class FormalTarget:
    """One row of the table: a block at a small configuration and its contract.

    Attributes
    ----------
    name : str
        The block (a registry name where it has one).
    build : callable
        ``() -> component``.
    harness : callable
        ``(component) -> ContractHarness``.
    depth : int or None
        BMC depth of the default proof; ``None``: the harness's drain time plus
        :data:`MARGIN` cycles, so the no-loss check sees words go in before the drain. The
        solver's time grows steeply with depth, so this is kept as small as that allows.
    deep : bool
        Proven only by ``make verify`` (a long proof even at the smallest depth).
    """

    name: str
    build: Callable
    harness: Callable
    depth: int | None = None
    deep: bool = False

    def make(self, extra_depth: int = 0) -> tuple[ContractHarness, int]:
        """The harness around a fresh component, and the depth to prove it to (plus
        ``extra_depth``: ``make verify`` proves every target deeper)."""
        harness = self.harness(self.build())
        return harness, (self.depth or harness.drain + MARGIN) + extra_depth


def _pipeline(core_class, config):
    from hw.pipeline import StreamPipeline

    return lambda: StreamPipeline(core_class(config))


def _streams(contract: Contract | None = None, **channels) -> Callable:
    contract = contract or Contract()
    return lambda dut: ContractHarness(dut, stream_pairs(dut, contract, **channels))


def _addrgen(levels: int) -> Callable:
    from hw.memory.addrgen import AddrGen

    return lambda: AddrGen(AddrGenConfig(levels=levels, addr_width=8, count_width=2,
                                         stride_width=3))


def _addrgen_contract(levels: int) -> Callable:
    # Up to three descriptors of 3**levels words in flight: the walker's and the check stages'.
    words = 3 ** levels
    return _streams(Contract(drain=lambda dut: dut.latency + 3 * words + 2,
                             counts=lambda p: p.last, note="one last word per descriptor"))


def _targets() -> list[FormalTarget]:
    from hw.host_bridge import HostBridge
    from hw.memory.csr import CSRBlock
    from hw.memory.dma import DMA
    from hw.memory.input_share import InputShare
    from hw.memory.pingpong import PingPong
    from hw.memory.scratchpad import Scratchpad
    from hw.memory.stream_buffer import StreamBuffer
    from hw.nonlinear.exp import Exp
    from hw.nonlinear.gelu import GELU
    from hw.nonlinear.layernorm import LayerNorm
    from hw.nonlinear.silu import SiLU
    from hw.nonlinear.softmax import Softmax
    from hw.pe import PE
    from hw.pe_array import PEArray
    from hw.reduction_tree import ReductionTree
    from hw.sparse.search_tree import SearchTree
    from hw.sparse.sparse_decoder import SparseDecoder
    from hw.sparse.sparse_search import SparseSearch
    from hw.uart import UART

    queries = Contract(outputs=lambda p: p.kind == WordKind.QUERY,
                       drain=lambda dut: 2 * dut.latency + 4,
                       note="one word out per query, none per load word")
    pingpong = PingPongConfig(width=1, depth=2)
    softmax = SoftmaxConfig(in_width=8, in_frac=3, out_width=4, out_frac=4, max_len=2,
                            banks=2, exp_order=1)
    layernorm = LayerNormConfig(in_width=4, out_width=4, out_frac=1, max_len=2, banks=2)
    uart = UARTConfig(divisor=4)

    def uart_loopback(dut):
        def drive(m, dut):
            m.d.comb += dut.rx.eq(dut.tx)
        # No drain check: a byte takes a 40-cycle frame, and proving that every byte comes
        # back needs a bound past two frames, beyond what BMC reaches in minutes here.
        contract = Contract(drain=None, note="a byte out per byte in, never more")
        return ContractHarness(dut, stream_pairs(dut, contract), drive=drive, driven=("rx",),
                               cover_words=1)

    def axil_slave(dut):
        ar, aw, w = axi_channels(dut.axil, ("ar", "aw", "w"), "axil.")
        r, b = axi_channels(dut.axil, ("r", "b"), "axil.")
        at_most = Contract(drain=None, note="at most one word out per word in")
        return ContractHarness(dut, [ChannelPair(ar, r, Contract()),
                                     ChannelPair(aw, b, at_most), ChannelPair(w, b, at_most)],
                               cover_words=1)

    def dma(dut):
        ins = axi_channels(dut.axi, ("b", "r"), "axi.")
        outs = axi_channels(dut.axi, ("aw", "w", "ar"), "axi.")
        pairs = stream_pairs(dut, Contract(drain=None), into="cmd", out="done")
        return ContractHarness(dut, pairs, inputs=ins, outputs=outs, cover_words=1,
                               drive=lambda m, dut: _legal_axi_slave(m, dut.axi))

    def stream_buffer(dut):
        ins = [Channel.of_stream("i", dut.i), *axi_channels(dut.bus, ("aw", "w", "ar"), "bus.")]
        outs = [Channel.of_stream("o", dut.o), *axi_channels(dut.bus, ("b", "r"), "bus.")]
        return ContractHarness(dut, [], inputs=ins, outputs=outs)

    def host_bridge(dut):
        ins = [Channel.of_stream("i", dut.i), *axi_channels(dut.bus, ("b", "r"), "bus.")]
        outs = [Channel.of_stream("o", dut.o), *axi_channels(dut.bus, ("aw", "w", "ar"), "bus.")]
        return ContractHarness(dut, [], inputs=ins, outputs=outs)

    return [
        FormalTarget("pe", _pipeline(PE, PEConfig(in_width=4)), _streams()),
        FormalTarget("reduction-tree",
                     _pipeline(ReductionTree, ReductionTreeConfig(n=5, width=4)), _streams()),
        FormalTarget("exp", _pipeline(Exp, ExpConfig(in_width=6, in_frac=3, out_width=6,
                                                     out_frac=3, order=1, poly_frac=8)),
                     _streams()),
        FormalTarget("gelu", _pipeline(GELU, GELUConfig(in_width=6, in_frac=2, out_width=6,
                                                        out_frac=2, order=1, poly_width=10,
                                                        segments=4, range_max=4.0)),
                     _streams()),
        FormalTarget("silu", _pipeline(SiLU, SiLUConfig(in_width=6, in_frac=2, out_width=6,
                                                        out_frac=2, order=1, poly_width=10,
                                                        segments=4, range_max=4.0)),
                     _streams()),
        FormalTarget("search-tree", lambda: SearchTree(SearchTreeConfig(bits=8)), _streams()),
        FormalTarget("input-share",
                     lambda: InputShare(PEArrayConfig(rows=2, cols=2, in_width=3)), _streams()),
        FormalTarget("pe-array",
                     lambda: PEArray(PEArrayConfig(rows=2, cols=2, in_width=3,
                                                   ops=("mul", "add", "max"))),
                     _streams(Contract(
                         outputs=lambda p: (p.mode == Mode.ELEMENTWISE) | p.last,
                         note="one word out per element-wise word or last linear word"))),
        FormalTarget("sparse-search",
                     lambda: SparseSearch(SparseSearchConfig(coord_width=3, value_width=2,
                                                             max_nnz=4, parallel=2)),
                     _streams(queries)),
        FormalTarget("sparse-decoder",
                     lambda: SparseDecoder(SparseDecoderConfig(block=8, value_width=2,
                                                               parallel=4, levels_per_stage=3)),
                     _streams(queries)),
        FormalTarget("addrgen", _addrgen(levels=1), _addrgen_contract(levels=1)),
        FormalTarget("addrgen-nested", _addrgen(levels=2), _addrgen_contract(levels=2),
                     deep=True),
        FormalTarget("pingpong", lambda: PingPong(pingpong),
                     _streams(Contract(ends=lambda p, run: p.last | (run == pingpong.depth - 1),
                                       drain=lambda dut: dut.latency + 2 * pingpong.depth + 2,
                                       note="one word out per word in, when its fill ends"))),
        FormalTarget("scratchpad",
                     lambda: Scratchpad(ScratchpadConfig(banks=2, width=2, depth=2, ports=2)),
                     _streams(Contract(outputs=lambda p: ~p.write,
                                       drain=lambda dut: dut.latency + 4,
                                       note="one response per read request"),
                              into="req", out="resp")),
        FormalTarget("csr", lambda: CSRBlock(CSRConfig()), axil_slave),
        FormalTarget("dma", lambda: DMA(DMAConfig(data_width=32, addr_width=16, max_burst=2,
                                                  outstanding=1, local_depth=16)),
                     dma, depth=12),
        FormalTarget("stream-buffer",
                     lambda: StreamBuffer(StreamBufferConfig(in_width=4, out_width=4, depth=2)),
                     stream_buffer, depth=12),
        FormalTarget("host-bridge", lambda: HostBridge(addr_width=8), host_bridge, depth=16),
        FormalTarget("uart", lambda: UART(uart), uart_loopback,
                     depth=uart.frame_cycles + 12, deep=True),
        # The output pass starts ~50 cycles after a vector ends (two exp pipelines and a
        # divider), so the drain check is out of reach; handshakes, counts and reset are not.
        FormalTarget("softmax", lambda: Softmax(softmax),
                     _streams(Contract(drain=None, note="a word out per word in, never more")),
                     depth=60, deep=True),
        # Likewise: outputs start ~40 cycles after a vector ends (the serial n*Q - S*S and
        # the 1/sqrt chain).
        FormalTarget("layernorm", lambda: LayerNorm(layernorm),
                     _streams(Contract(drain=None, note="a word out per word in, never more")),
                     depth=60, deep=True),
    ]


#: Every streaming block's formal target, by name.
FORMAL_TARGETS: dict[str, FormalTarget] = {t.name: t for t in _targets()}
