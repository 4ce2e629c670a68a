"""The stream contract of every streaming block: its in/out word ratio, in one table.

Each :class:`FormalTarget` says how to build a block at a small configuration (small enough
that a proof takes seconds), which of its channels pair up, how many output words an input
word owes (:class:`sim.formal.Contract`), how deep to prove it bounded and, where the proof
holds for all time, the k of its k-induction and the invariants the design keeps that make
the induction converge (each a documented property of the block). ``make verify``
(``accelgen verify``, gen/measure/verify.py) proves every row and its long-run mutant;
``tests/test_formal.py`` a fast subset (all of them with ``make test-slow``). A registered
generator with stream ports must have a row (tests/test_structure.py).

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
softmax,           i -> o              1, due when its vector ends (``last`` or ``max_len``
layernorm                              words): out within ``latency - 1 + banks * max_len``
                                       quiet cycles; proven for all time with the banks'
                                       and pipelines' state in the invariants
scratchpad         req[k] -> resp[k]   1 per read request, 0 per write
dma                cmd -> done         1, once the AXI slave answers: a drain counts the
                                       cycles in which it answers at once (ready on AR, AW
                                       and W; R and B whenever owed), other cycles it may
                                       stall; the slave is assumed legal, the master's AXI
                                       channels keep their contract; for all time, with the
                                       slave's state and the work left in the invariants
csr                AR -> R;            1 R per AR; 1 B per write (the harness pairs the n-th
                   AW + W -> B         AW with the n-th W), due 2 cycles after both are in
uart (loopback,    i -> o              1 or an ``overrun`` pulse: ``tx`` wired to ``rx``; a
divisor 4)                             byte that completes while ``o`` holds one is dropped
                                       by design and reported; every byte is back
                                       (unchanged) or reported a frame + 8 cycles after
                                       it left
uart-ready         i -> o              1 with the consumer always ready (no overrun then):
                                       every byte back, unchanged, within a frame + 8
                                       cycles
stream-buffer      (handshakes only)   its words come from bus writes, not from a stream
host-bridge        (handshakes only)   responses depend on the command bytes' protocol
=================  ==================  =======================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from amaranth.hdl import Assume, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

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
from golden.uart import SYNC_STAGES, UARTConfig

from .formal import Channel, ChannelPair, Contract, ContractHarness, stream_pairs

__all__ = ["FormalTarget", "FORMAL_TARGETS", "MARGIN", "axi_channels", "DirectSum",
           "tree_invariants", "banked_harness", "banked_invariants"]

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


def _legal_axi_slave(m: Module, axi) -> dict:
    """Assume the AXI4 slave behind a master with one burst in flight per direction plays by
    the rules: R beats only for an accepted AR, RLAST on its ``len``-th beat; B only after
    the burst's AW and its W beat with WLAST. Returns the model's state (for invariants):
    ``reads`` (an AR accepted, its last R beat not yet), ``address`` and ``data`` (the AW /
    the last W beat of the burst whose B is due)."""
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
    return {"reads": reads, "beat": beat, "length": length, "address": address, "data": data}


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name)


def _axi_slave_answers(harness) -> Value:
    """The AXI slave answers at once: ready on AR, AW and W, an R beat whenever a read burst
    is owed, a B whenever one is."""
    axi, slave = harness.dut.axi, harness.slave
    return (axi.arready & axi.awready & axi.wready & (axi.rvalid | ~slave["reads"])
            & (axi.bvalid | ~(slave["address"] & slave["data"])))


def _dma_drain(dut) -> int:
    """An upper bound of :func:`_dma_work` (5 per beat of a full scratchpad, plus the
    burst under way and ``done``): the cycles a command takes with a slave that answers at
    once."""
    return 5 * dut.config.local_depth + 8


def _dma_work(harness) -> Value:
    """What is left of a command, in steps of which each cycle with a slave answering at
    once takes at least one: 5 per beat not yet in a burst (a burst of ``n`` beats takes
    ``n + 2`` cycles from its issue); 1 to issue the next burst; reading, ``n + 1`` for a
    burst whose AR is offered and the beats left of the one answered; writing, 2 for an AW
    offered, ``n + 2`` for a burst issued whose W has not started, the beats left + 1 of
    the W burst under way, 1 for a B owed; plus 1 while the command runs and 1 for its
    ``done``. (W may start before its AW is taken: the DMA counts a burst for W at its
    issue.)"""
    st, slave, dut = harness.dut.state, harness.slave, harness.dut
    reading, writing, a_valid = st["reading"], st["writing"], st["a_valid"]
    n = st["a_len"] + 1
    to_issue = (reading | writing) & (st["in_flight"] == 0) & (st["addr_left"] != 0)
    read_stage = (Mux(a_valid, n + 1, 0)
                  + Mux(slave["reads"], slave["length"] - slave["beat"] + 1, 0))
    write_stage = (Mux(a_valid, 2, 0) + Mux(st["aw_ahead"] != 0, n + 2, 0)
                   + Mux(st["w_valid"], st["w_burst"] + 2, 0)
                   + (slave["address"] & slave["data"]))
    # (A rejected command leaves its beats in addr_left: counted only while one runs.)
    return (Mux(reading | writing, 5 * st["addr_left"], 0) + to_issue
            + Mux(reading, read_stage, 0)
            + Mux(writing, write_stage, 0) + reading + writing + dut.done.valid)


def _dma_invariants(harness) -> list:
    """One command at a time: owed while it moves data or its ``done`` waits; one address
    channel (AR or AW) and the W register only while a transfer of that kind runs; with one
    burst in flight, a new address waits until the slave has answered the previous burst
    (its last R beat, its B), and no W beat follows a burst's last one before its B."""
    st, c, slave = harness.dut.state, harness.counters[0], harness.slave
    reading, writing, a_valid = st["reading"], st["writing"], st["a_valid"]
    done = harness.dut.done.valid
    return [(c.pending == reading + writing + done, "owed = the command running or done"),
            (~(reading & writing), "one direction at a time"),
            (~((reading | writing) & done), "done waits only after the transfer"),
            (~a_valid | reading | writing, "an address only during a transfer"),
            (~st["w_valid"] | writing, "W beats only while writing"),
            (~reading | (st["in_flight"] == a_valid + slave["reads"]),
             "reading: the bursts in flight are the AR offered and the one answered"),
            (~writing | (st["in_flight"] == a_valid + slave["address"]),
             "writing: the bursts in flight are the AW offered and the one accepted"),
            (reading | ~slave["reads"], "R beats owed only while reading"),
            (writing | ~(slave["address"] | slave["data"]), "a B owed only while writing"),
            (reading | writing | (st["in_flight"] == 0), "no burst in flight between transfers"),
            (writing | (st["aw_ahead"] == 0), "AW bursts wait for data only while writing"),
            (~(a_valid & reading & slave["reads"]), "no AR while a read burst is answered"),
            (~reading | (st["r_left"] == st["addr_left"] + Mux(a_valid, st["a_len"] + 1, 0)
                         + Mux(slave["reads"], slave["length"] - slave["beat"] + 1, 0)),
             "reading: the beats to come are those of the bursts to issue, offered and "
             "answered"),
            (~slave["reads"] | (slave["beat"] <= slave["length"]),
             "the slave's beat within its burst"),
            (~(writing & slave["data"]) | (~st["w_valid"] & (st["w_burst"] == 0)
                                            & (st["aw_ahead"] == 0)),
             "no W beat between WLAST and B"),
            (~writing | (st["w_burst"] == 0) | (st["w_valid"] & ~st["w_last"]),
             "a W burst under way has its beat on W, not the last"),
            (~st["w_valid"] | (st["w_last"] == (st["w_burst"] == 0)),
             "WLAST on the burst's last beat"),
            (st["w_burst"] < harness.dut.config.max_burst, "a W burst within max_burst"),
            (~writing | (st["in_flight"] == st["aw_ahead"] + st["w_valid"] + slave["data"]),
             "writing: the burst in flight waits for its data, sends it, or waits for B"),
            (st["a_len"] < harness.dut.config.max_burst, "a burst within max_burst"),
            *_dma_write_lag(harness), *_dma_progress(harness)]


def _dma_write_lag(harness) -> list:
    """With one burst in flight, the W side is at most one burst behind the address side:
    the burst issued (its AW offered or taken) whose data has not started."""
    st, cfg = harness.dut.state, harness.dut.config
    behind = st["aw_ahead"] != 0
    n = st["a_len"] + 1
    if cfg.outstanding != 1:
        raise ValueError(f"outstanding: the DMA's invariants are for 1, got {cfg.outstanding}")
    return [(~st["writing"] | (st["w_left"] == st["addr_left"] + Mux(behind, n, 0)),
             "writing: the W beats not yet in a burst are the address side's and the burst "
             "it is ahead by"),
            (~st["writing"] | (st["w_addr"] == (st["next_addr"] - Mux(behind, n << cfg.beat_shift,
                                                                       0))[:cfg.addr_width]),
             "writing: the W side's next burst address trails the address side's by that "
             "burst"),
            (st["aw_ahead"] <= 1, "at most one AW ahead of its data"),
            (~(st["reading"] | st["writing"]) | (st["addr_left"] != 0) | (st["in_flight"] != 0),
             "a transfer running has a burst to issue or one in flight")]


def _dma_progress(harness) -> list:
    """Each cycle with ``done`` ready, no command in and the slave answering at once takes
    a step of :func:`_dma_work`, so ``q`` such cycles leave at most ``drain - q``."""
    work, quiet, drain = _dma_work(harness), harness.quiet, _dma_drain(harness.dut)
    return [(work <= drain, "the work of a command within the drain"),
            *((~(quiet >= q) | (work <= drain - q),
               f"{q} cycles with the slave answering leave at most {drain - q} steps")
              for q in range(1, drain + 1))]


class DirectSum(wiring.Component):
    """The reduction tree's specification: ``sum(i)`` delayed by the tree's latency.

    Attributes
    ----------
    chain : list of Signal
        After elaboration, the delay registers of the sum, first to last.
    """

    def __init__(self, config: ReductionTreeConfig, latency: int):
        from hw.arith import shape_of

        self.config, self.latency = config, latency
        super().__init__({
            "en": In(1),
            "i": In(data.ArrayLayout(shape_of(config.width, config.signed), config.n)),
            "o": Out(shape_of(config.output_width, config.signed)),
        })

    def elaborate(self, platform):
        from hw.pipeline import delay

        m = Module()
        total = sum(self.i[k] for k in range(self.config.n))
        self.chain = []
        m.d.comb += self.o.eq(delay(m, total, self.latency, en=self.en, name="sum",
                                    taps=self.chain, reset_less=True))  # as the tree's
        return m


def tree_invariants(tree, direct: DirectSum) -> list:
    """What the tree keeps, for the unbounded equivalence proof: each register stage's
    partial sums add up to the direct sum's register at the same depth."""
    return [(sum(stage) == direct.chain[k], f"stage {k + 1}'s partial sums add up to the sum")
            for k, stage in enumerate(tree.stages)]


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
    invariants : callable or None
        ``(harness) -> [(Value, message)]``: what the design keeps (its valid bits against
        the harness's count of words owed, ...), asserted so that k-induction converges.
    induction : int or None
        ``k`` of the unbounded proof (k-induction); ``None``: no unbounded proof (the
        report says bounded, to ``depth``).
    """

    name: str
    build: Callable
    harness: Callable
    depth: int | None = None
    deep: bool = False
    invariants: Callable | None = None
    induction: int | None = None

    def make(self, extra_depth: int = 0, mutant=None) -> tuple[ContractHarness, int]:
        """The harness around a fresh component, and the depth to prove it to (plus
        ``extra_depth``: ``make verify`` proves every target deeper); ``mutant``: a
        :class:`sim.formal.WrapMutant` to break it with."""
        harness = self.harness(self.build(), **({} if mutant is None else {"mutant": mutant}))
        harness.invariants = self.invariants
        return harness, (self.depth or harness.drain + MARGIN) + extra_depth

    def describe(self) -> dict:
        """``depth`` (of the BMC proof), ``pairs`` (channel pairs counted), ``lossless``
        (every pair has a drain check), ``reported`` (a pair counts the words the block
        drops and reports, :attr:`sim.formal.Contract.dropped`) and ``answering`` (a drain
        counts only the cycles in which an AXI slave answers at once), without proving
        anything."""
        harness, depth = self.make()
        for obj in (harness, harness.dut, getattr(harness.dut, "core", None)):
            if obj is not None:  # built only to be described: no unused-elaboratable warning
                obj._MustUse__used = True
        return {"depth": depth, "pairs": len(harness.pairs),
                "lossless": all(p.contract.drain is not None for p in harness.pairs),
                "reported": any(p.contract.dropped is not None for p in harness.pairs),
                "answering": harness.quiet_when is not None}


def _pipeline(core_class, config):
    from hw.pipeline import StreamPipeline

    return lambda: StreamPipeline(core_class(config))


def _streams(contract: Contract | None = None, **channels) -> Callable:
    contract = contract or Contract()
    return lambda dut, **kw: ContractHarness(dut, stream_pairs(dut, contract, **channels), **kw)


def _pipeline_invariants(harness) -> list:
    """A :class:`hw.pipeline.StreamPipeline` holds exactly the words owed: one per valid
    stage."""
    valid = harness.dut.stage_valid
    return [(harness.counters[0].pending == sum(valid), "one owed word per valid pipeline stage"),
            # With the output ready and nothing going in, stage k empties after k cycles.
            *((~(harness.quiet > k) | ~v, f"stage {k + 1} empty after {k + 1} quiet cycles")
              for k, v in enumerate(valid))]


def _no_words_held(harness) -> list:
    """A combinational block (latency 0) never holds a word."""
    return [(harness.counters[0].pending == 0, "no word held")]


def _pe_array_invariants(harness) -> list:
    """The array's pipeline owes a word per valid stage that is element-wise or ``last``,
    plus the output register's."""
    dut = harness.dut
    owes = [v & ((mode == Mode.ELEMENTWISE) | last)
            for v, mode, last in zip(dut.stage_valid, dut.stage_mode, dut.stage_last)]
    valid = [*dut.stage_valid, dut.o.valid]
    return [(harness.counters[0].pending == sum(owes) + dut.o.valid,
             "one owed word per owing valid stage and a valid output"),
            *((~(harness.quiet > k) | ~v, f"stage {k + 1} empty after {k + 1} quiet cycles")
              for k, v in enumerate(valid))]


def _pingpong_invariants(pingpong: PingPongConfig) -> Callable:
    return lambda harness: _pingpong_state(harness, pingpong)


def _pingpong_state(harness, pingpong: PingPongConfig) -> list:
    """The words owed are the open fill's, the unread words of the full halves and the output
    register's; the halves fill and drain in turn."""
    st, c = harness.dut.state, harness.counters[0]
    full, length, drain, fill = st["full"], st["length"], st["drain_half"], st["fill_half"]
    unread = [Mux(full[h], length[h] - Mux(drain == h, st["index"], 0), 0) for h in (0, 1)]
    return [
        (c.undue == st["count"], "the open fill's words are owed but not due"),
        (c.run == st["count"], "the words since the last fill ended are the open fill"),
        (c.pending == st["count"] + unread[0] + unread[1] + harness.dut.o.valid,
         "owed = open fill + unread words of full halves + the output register"),
        (Mux(fill == drain, full[0] == full[1], full[drain] & ~full[fill]),
         "the halves fill and drain in turn"),
        (~full[drain] | (st["index"] < length[drain]), "the read index is inside the half"),
        (full[drain] | (st["index"] == 0), "a drain starts at index 0"),
        *((~full[h] | (length[h] >= 1), f"a full half {h} holds a word") for h in (0, 1)),
        *((length[h] <= pingpong.depth, f"half {h} holds at most depth words")
          for h in (0, 1)),
        # Each cycle with the output ready and no input sends a finished word on (the first
        # only loads the output register): at most 2 * depth + 1 of them wait.
        *((~(harness.quiet >= q) | (c.pending - c.undue <= 2 * pingpong.depth + 2 - q),
           f"{q} quiet cycles leave at most {2 * pingpong.depth + 2 - q} finished words")
          for q in range(1, 2 * pingpong.depth + 3)),
    ]


def _sparse_search_invariants(harness) -> list:
    """A query is owed while it is scanned (``busy``) and while its answer waits."""
    st, c = harness.dut.state, harness.counters[0]
    busy, parallel = st["busy"], harness.dut.config.parallel
    return [(c.pending == busy + harness.dut.o.valid,
             "owed = the query being scanned + the answer waiting"),
            (~busy | (~st["error"] & (st["count"] != 0)), "a scan runs on a well-formed block"),
            (~busy | (st["remaining"] + st["row"] * parallel == st["count"]),
             "a scan's remaining entries are those from its row on"),
            (st["count"] <= harness.dut.config.max_nnz, "at most max_nnz entries stored")]


def _scratchpad_invariants(harness) -> list:
    """Per port, a read is owed while in flight, in the skid register or at the output;
    the skid fills only behind a held output."""
    checks = []
    for p, (st, c) in enumerate(zip(harness.dut.state, harness.counters)):
        valid = harness.dut.resp[p].valid
        checks += [(c.pending == valid + st["skid"] + st["flight"],
                    f"port {p}: owed = output + skid + read in flight"),
                   (~st["skid"] | valid, f"port {p}: the skid fills behind a held output")]
    return checks


def _addrgen(levels: int) -> Callable:
    from hw.memory.addrgen import AddrGen

    return lambda: AddrGen(AddrGenConfig(levels=levels, addr_width=8, count_width=2,
                                         stride_width=3))


def _addrgen_invariants(harness) -> list:
    """A descriptor is owed in each check stage and at the output until its last word; a
    word that is not the last has iterations left behind it."""
    dut, c = harness.dut, harness.counters[0]
    st, o = dut.state, dut.o
    more = o.valid & ~o.payload.last
    busy = Cat(*(left != 0 for left in st["left"])).any()
    top = 2 ** dut.config.count_width - 1  # bounds - 1 of a bound 0 (an error descriptor)
    return [(c.pending == st["s1_valid"] + st["s2_valid"] + o.valid,
             "owed = descriptors in the check stages + the one at the output"),
            (~more | busy, "a word that is not the last has iterations left"),
            # A walk never runs longer than its bounds: each level's counter within its
            # reload count, which a bound of at least 1 keeps below 2**count_width - 1.
            *((~more | ((left <= reload) & (reload != top)),
               f"level {k}'s iterations left within its bound")
              for k, (left, reload) in enumerate(zip(st["left"], st["reload"]))),
            *((~st["s2_valid"] | st["s2_error"] | (reload != top),
               f"stage 2's level {k} reload count from a bound of at least 1")
              for k, reload in enumerate(st["s2_reload"])),
            (~st["s1_valid"] | (st["s1_empty"] == Cat(*(b == 0 for b in st["s1"].bounds)).any()),
             "stage 1's empty flag matches its bounds"),
            (~st["s2_valid"] | st["s2_error"]
             | (st["s2_single"] == Cat(*(r == 0 for r in st["s2_reload"])).all()),
             "stage 2's single flag matches its reload counts")]


def _uart_bytes(m: Module, dut) -> dict:
    """Ghost registers of the loopback's bytes: ``sent`` (the byte of the transmitter's
    latest frame, taken on ``i``), ``before`` (the one before it) and ``out`` (the byte of
    the frame whose byte ``o`` last loaded)."""
    st = dut.state
    sent, before, out = (Signal(8, name=f"uart_{n}_byte") for n in ("sent", "before", "out"))
    with m.If(dut.i.valid & dut.i.ready):
        m.d.sync += [sent.eq(dut.i.payload), before.eq(sent)]
    frame = _uart_rx_frame_byte(dut, sent, before)
    loads = (st["rx_busy"] & (st["rx_bit"] == 9) & (st["rx_count"] == 0) & st["rx_line"]
             & ~(dut.o.valid & ~dut.o.ready))
    with m.If(loads):
        m.d.sync += out.eq(frame)
    return {"sent": sent, "before": before, "out": out, "frame": frame}


def _uart_rx_frame_byte(dut, sent, before) -> Value:
    """The byte of the frame the receiver is in: the transmitter's, or the one before it
    while the receiver finishes a frame the transmitter has left for a new one."""
    st = dut.state
    return Mux(st["tx_busy"] & (st["tx_bit"] == 0) & (st["tx_count"] == dut.config.divisor - 1)
               & st["rx_busy"] & (st["rx_bit"] == 9), before, sent)


def _uart_invariants(harness) -> list:
    """The loopback (``tx`` wired to ``rx``) at divisor 4. A byte taken in cycle ``t`` is
    at transmitter position ``tp = 4 * bit + 3 - count`` = 0 in cycle ``t + 1`` (0..39: the
    frame's cycle); the receiver, ``SYNC_STAGES`` + 1 cycles behind, finds the start bit's
    edge when ``tp`` = 2 and runs at ``rp = tp - 1``, to ``rp`` = 39 (the stop-bit sample)
    one cycle after the frame ends. The synchronizer has no reset, so a reset that cuts a
    frame may leave a stale falling edge on the line for the first two cycles: the receiver
    then checks a start bit that reads 1 (a glitch; back to idle) or, if a byte was taken
    in the reset's first cycle, receives that byte two cycles early (``rp = tp + 1``,
    sampling each bit in its first cycle). The harness's count of bytes owed is the frame
    the transmitter sends (unless the receiver already has it), the frame only the receiver
    still finishes, the byte at ``o`` and an overrun pulse (a byte dropped, reported); no
    part of a frame is older than the quiet cycles allow, so a drain empties it. The data
    (:func:`_uart_data_invariants`): the byte at ``o`` is the byte sent in its frame."""
    dut, c = harness.dut, harness.counters[0]
    st, d = dut.state, dut.config.divisor
    if d != 4:
        raise ValueError(f"divisor: the loopback invariants are for divisor 4, got {d}")
    tb, rb, tbit, rbit = st["tx_busy"], st["rx_busy"], st["tx_bit"], st["rx_bit"]
    tp = tbit * d + (d - 1) - st["tx_count"]
    rp = rbit * d + (d - 1) - st["rx_count"]
    last = 10 * d - 1
    lag = 1 + SYNC_STAGES + d // 2 - d  # rp = tp - lag in a frame received on time
    normal = tb & (rp + lag == tp)
    early = tb & (rp == tp + 2 - lag)
    tail = (rp == last) & (~tb | (tp == 0))
    glitch = (rbit == 0) & (~tb | (tp + 2 <= rp))
    tx_owed = tb & (rb | (tp != last))
    quiet = harness.quiet
    return [
        (~tb | (tbit <= 9), "the transmitter's bit within the frame"),
        (~rb | (rbit <= 9), "the receiver's bit within the frame"),
        (~rb | (rbit != 0) | (st["rx_count"] <= d // 2 - 1),
         "the start bit is checked half a bit in"),
        (tb | dut.tx, "tx idles at 1"),
        (~(tb & (tbit == 0)) | ~dut.tx, "the start bit is 0"),
        (~(tb & (tbit == 9)) | dut.tx, "the stop bit is 1"),
        *((~(tb & (tbit == b)) | st["tx_shift"][max(8 - b, 0):].all(),
           f"at bit {b} the shift register holds the stop bit and idle bits above the "
           f"{max(8 - b, 0)} data bits to send") for b in range(10)),
        (~rb | normal | early | tail | glitch,
         "the receiver's position against the transmitter's: on time, two cycles early "
         "after a reset, finishing the frame the transmitter has left, or checking a "
         "glitch"),
        (~tb | rb | (tp <= lag + 1) | (tp == last),
         "the receiver idle in a frame only before its start edge, or after an early frame"),
        (~(rb & (rbit == 9) & (st["rx_count"] == 0)) | st["rx_line"],
         "the stop bit reads 1"),
        (~dut.frame_error, "the loopback has no framing error"),
        (c.pending == tx_owed + (rb & tail) + dut.o.valid + dut.overrun,
         "owed = the frame sent, the frame only the receiver finishes, the byte at o and "
         "an overrun"),
        (~tb | (quiet <= tp), "a frame sent is younger than the quiet cycles"),
        (~rb | (quiet <= rp + 1), "a frame received is younger than the quiet cycles"),
        (~dut.o.valid | (quiet <= 10 * d + 1), "a byte at o is a frame + 1 cycles old"),
        (~dut.overrun | (quiet == 0), "an overrun follows a cycle with o not ready"),
        *_uart_data_invariants(harness),
    ]


def _uart_data_invariants(harness) -> list:
    """The bytes: the transmitter's shift register holds the data bits of its byte still
    to send and ``tx`` the one on the line; the receiver's shift register holds those
    received so far (LSB first, shifted in at the top); so the byte ``o`` loads, and holds,
    is the byte sent in its frame."""
    dut, ghost = harness.dut, harness.bytes
    st = dut.state
    tb, rb, tbit, rbit = st["tx_busy"], st["rx_busy"], st["tx_bit"], st["rx_bit"]
    sent, frame = ghost["sent"], ghost["frame"]
    checks = []
    for b in range(9):
        checks.append((~(tb & (tbit == b)) | (st["tx_shift"][:8 - b] == sent[b:]),
                       f"at bit {b} the transmitter's shift register holds data bits {b}..7"))
    for b in range(1, 9):
        checks.append((~(tb & (tbit == b)) | (dut.tx == sent[b - 1]),
                       f"at bit {b} tx is data bit {b - 1}"))
    for b in range(2, 10):
        checks.append((~(rb & (rbit == b)) | (st["rx_shift"][9 - b:] == frame[:b - 1]),
                       f"at bit {b} the receiver's shift register holds data bits 0..{b - 2}"))
    checks.append((~dut.o.valid | (dut.o.payload == ghost["out"]),
                   "the byte at o is the byte sent in its frame"))
    return checks


def _csr_invariants(harness) -> list:
    """A read is owed while R is valid; a write (an AW and a W) while both are held or its B
    is valid; an AW (a W) waits for its partner in its register."""
    bus, st = harness.dut.axil, harness.dut.state
    (r, write), (aw_ahead, w_ahead) = harness.counters, harness.unpaired
    aw_full, w_full = st["aw_full"], st["w_full"]
    return [(r.pending == bus.rvalid, "owed reads = the R word waiting"),
            (write.pending == (aw_full & w_full) + bus.bvalid,
             "owed writes = a held AW and W pair + the B waiting"),
            (aw_ahead == (aw_full & ~w_full), "an AW without its W waits in its register"),
            (w_ahead == (w_full & ~aw_full), "a W without its AW waits in its register")]


def _sparse_decoder_invariants(harness) -> list:
    """A query is owed from its flags' push to their pop: the flag FIFO holds one entry per
    query in the search tree's pipeline or the search unit, and only one of them holds
    queries at a time; each unit keeps its own invariants."""
    from hw.sparse.sparse_decoder import DecoderTag

    st, c = harness.dut.state, harness.counters[0]
    tree, search = st["tree"], st["search"]
    in_tree = sum(tree.stage_valid)
    in_search = search.state["busy"] + search.o.valid
    s = search.state
    return [(c.pending == st["fifo"].level, "owed = the flag FIFO's level"),
            (st["fifo"].level == in_tree + in_search, "a flag per query in either unit"),
            ((in_tree == 0) | (st["tag"] == DecoderTag.BITMAP), "the tree answers bitmap blocks"),
            ((in_search == 0) | (st["tag"] == DecoderTag.COORDINATE),
             "the search unit answers coordinate blocks"),
            (~s["busy"] | (~s["error"] & (s["count"] != 0)), "a scan runs on a good block"),
            (~s["busy"] | (s["remaining"] + s["row"] * search.config.parallel == s["count"]),
             "a scan's remaining entries are those from its row on"),
            (s["count"] <= search.config.max_nnz, "at most max_nnz entries stored")]


def banked_invariants(harness) -> list:
    """Softmax and LayerNorm: the same control around different arithmetic. Banks fill in
    turn (``in_bank``, ``count`` words of the open vector) and are output in turn
    (``out_bank``, ``index``); a complete bank's vector is on its way to the engine (its
    ``ends`` tag in pass 1, ``pending``), in the engine (the reciprocal, the statistics), or
    ready; the output pipeline (pass 2) stalls as a whole.

    Invariants: the words owed are the open vector's, the unread words of the complete
    banks and those in pass 2; the complete banks are those from ``out_bank`` up to
    ``in_bank``, the youngest of them the one in pass 1 or the engine, the others ready.
    Progress, for the no-loss check (``quiet`` cycles with the output ready and no input):
    pass 1 empties a stage a cycle, the engine's vector entered it at most ``len(pass 1)``
    cycles into the quiet, the ready words go out one a cycle after the engine is done, and
    pass 2 empties a stage a cycle behind them: ``drain = len(pass 1) + engine cycles +
    banks * max_len + len(pass 2)``."""
    dut, c, quiet = harness.dut, harness.counters[0], harness.quiet
    st, cfg = dut.state, dut.config
    banks, depth = cfg.banks, cfg.max_len
    free, ready, length = st["free"], st["ready"], st["bank_len"]
    in_bank, count, out_bank, index = st["in_bank"], st["count"], st["out_bank"], st["index"]
    engine, pass1, pass2 = st["engine"], st["pass1"], st["pass2"]
    steps = engine["cycles"]
    words = banks * depth
    if len(pass1) + steps + words + len(pass2) > harness.drain:
        raise ValueError("the drain is shorter than pass 1, the engine, the banks and pass 2")

    def offset(bank):  # age order: out_bank is the oldest bank
        return Mux(bank >= out_bank, bank - out_bank, bank + banks - out_bank)

    def before(b):
        return banks - 1 if b == 0 else b - 1

    ends = [t.valid & t.ends for t in pass1]
    filling = [(in_bank == b) & (count != 0) for b in range(banks)]
    full = (in_bank == out_bank) & (count == 0) & ~free.bit_select(in_bank, 1)
    complete = [full | (offset(b) < offset(in_bank)) for b in range(banks)]
    summing = [Cat(*(e & (t.bank == b) for e, t in zip(ends, pass1))).any()
               for b in range(banks)]
    computing = [engine["busy"] & (engine["bank"] == b) for b in range(banks)]
    ready_out = ready.bit_select(out_bank, 1)
    issued = Mux(ready_out, index, 0)  # words of the bank being output already in pass 2
    unread = sum(Mux(complete[b], length[b], 0) for b in range(banks)) - issued
    waiting = sum(Mux(ready[b], length[b], 0) for b in range(banks)) - issued
    checks = [
        (c.pending == count + unread + sum(pass2),
         "owed = the open vector + the unread words of complete banks + pass 2's words"),
        (c.undue == count, "the open vector's words are owed but not due"),
        (c.run == count, "the words since the last vector ended are the open vector"),
        (count < depth, "the open vector is shorter than max_len"),
        (in_bank < banks, "in_bank names a bank"), (out_bank < banks, "out_bank names a bank"),
        (st["pending"] == sum(ends), "pending = the vector end in pass 1"),
        (sum(ends) <= 1, "one vector end in pass 1 at a time"),
        (~(st["pending"] & engine["busy"]), "a vector end waits in pass 1 only for a free "
         "engine"),
        (~engine["busy"] | (engine["elapsed"] < steps), "the engine within its cycles"),
        (~ready_out | (index < length[out_bank]), "the output index inside its bank"),
        (ready_out | (index == 0), "the output index at 0 until its bank is ready"),
    ]
    for b in range(banks):
        checks += [
            (free[b] == ~(complete[b] | filling[b]), f"bank {b} free unless filling or complete"),
            (complete[b] == (summing[b] | computing[b] | ready[b]),
             f"complete bank {b}: its end in pass 1, in the engine or ready"),
            (summing[b] + computing[b] + ready[b] <= 1,
             f"bank {b} in one of pass 1, the engine, ready"),
            (~(summing[b] | computing[b])
             | (offset(b) + 1 == offset(in_bank) + Mux(full, banks, 0)),
             f"bank {b} in pass 1 or the engine is the youngest complete bank"),
            (~ready[b] | (out_bank == b) | ready[before(b)],
             f"bank {b} ready only after the bank before it"),
            (~complete[b] | ((length[b] >= 1) & (length[b] <= depth)),
             f"complete bank {b} holds 1..max_len words"),
        ]
    checks += [(~engine["busy"] | (engine["bank"] < banks), "the engine's bank names a bank"),
               *((~t.valid | (t.bank < banks), f"pass-1 stage {k}'s bank names a bank")
                 for k, t in enumerate(pass1, 1))]
    # Progress in quiet cycles.
    checks += [(~(quiet >= k) | ~t.valid, f"pass-1 stage {k} empty after {k} quiet cycles")
               for k, t in enumerate(pass1, 1)]
    checks.append((~engine["busy"] | (engine["elapsed"] + len(pass1) >= quiet),
                   "the engine took its vector at most len(pass 1) cycles into the quiet"))
    settled = len(pass1) + steps
    checks += [(~(quiet >= settled + j) | (waiting <= words - j),
                f"{settled + j} quiet cycles leave at most {words - j} ready words")
               for j in range(1, words + 1)]
    checks += [(~(quiet >= settled + words + k) | ~v,
                f"pass-2 stage {k} empty after {settled + words + k} quiet cycles")
               for k, v in enumerate(pass2, 1)]
    return checks


def _layernorm_invariants(harness) -> list:
    """:func:`banked_invariants`, and the statistics engine's phases: the serial multiply's
    step within its steps, the 1/sqrt chain's count 0 before its phase."""
    engine, cfg = harness.dut.state["engine"], harness.dut.config
    phase, chain = engine["phase"], engine["chain"]
    return [*banked_invariants(harness),
            (~engine["busy"] | (phase != 0) | (engine["step"] < cfg.multiply_steps),
             "the multiply within its steps"),
            (~engine["busy"] | (phase == 3) | (chain == 0), "the chain counts from phase 3 on"),
            (~engine["busy"] | (chain <= harness.dut.rsqrt_latency),
             "the chain within its latency")]


def _host_bridge_invariants(harness) -> list:
    """A read address is offered only while reading, a write address or data only while
    writing (the address and data registers hold meanwhile)."""
    bus, st = harness.dut.bus, harness.dut.state
    return [(~bus.arvalid | st["reading"], "AR valid only in READ"),
            (~(bus.awvalid | bus.wvalid) | st["writing"], "AW and W valid only in WRITE")]


def _addrgen_contract(levels: int) -> Callable:
    # Up to three descriptors of 3**levels words in flight: the walker's and the check stages'.
    words = 3 ** levels
    return _streams(Contract(drain=lambda dut: dut.latency + 3 * words + 2,
                             counts=lambda p: p.last, note="one last word per descriptor"))


def banked_harness(dut, **kw) -> ContractHarness:
    """The contract harness of a :class:`hw.nonlinear.softmax.Softmax` or
    :class:`hw.nonlinear.layernorm.LayerNorm` at any configuration, with its invariants: a
    word out per word in, due when its vector ends (``last`` or ``max_len`` words); every
    word of an ended vector out within the drain of :func:`banked_invariants`
    (``latency - 1 + banks * max_len`` cycles)."""
    max_len, banks = dut.config.max_len, dut.config.banks
    contract = Contract(ends=lambda p, run: p.last | (run == max_len - 1),
                        drain=lambda dut: dut.latency - 1 + banks * max_len,
                        note="a word out per word in, when its vector ends")
    return ContractHarness(dut, stream_pairs(dut, contract), invariants=_banked_block_invariants,
                           **kw)


def _banked_block_invariants(harness) -> list:
    """The invariants of the banked block in ``harness``: the LayerNorm's add its engine's."""
    if isinstance(harness.dut.config, LayerNormConfig):
        return _layernorm_invariants(harness)
    return banked_invariants(harness)


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

    def uart_loopback(dut, ready=False, **kw):
        # A byte that completes while o still holds one is dropped by design and reported by
        # an ``overrun`` pulse: counted as that byte's way out. Every byte comes back, or is
        # reported, within a frame + 8 cycles of o ready (the synchronizer and the half bit
        # to the start bit's middle).
        def drive(m, dut):
            m.d.comb += dut.rx.eq(dut.tx)
            if ready:  # the consumer always ready (the checked channel: past any mutant)
                m.d.comb += Assume(harness.pairs[0].out.ready)
            harness.bytes = _uart_bytes(m, dut)
        contract = Contract(drain=lambda dut: dut.config.frame_cycles + 8,
                            dropped=None if ready else (lambda dut: dut.overrun),
                            note="a byte out per byte in" + (
                                ", the consumer always ready" if ready else
                                ", or an overrun pulse for one dropped"))
        harness = ContractHarness(dut, stream_pairs(dut, contract), drive=drive,
                                  driven=("rx",), cover_words=1, **kw)
        return harness

    def uart_loopback_ready(dut, **kw):
        return uart_loopback(dut, ready=True, **kw)

    def axil_slave(dut, **kw):
        ar, aw, w = axi_channels(dut.axil, ("ar", "aw", "w"), "axil.")
        r, b = axi_channels(dut.axil, ("r", "b"), "axil.")
        # A write is an AW and a W, in either order: the harness pairs them up (the n-th AW
        # with the n-th W) and counts a write when both have been accepted; each owes a B.
        paired = Signal(name="axil_write_paired")
        write = Channel("axil.aw+w", paired, Const(1), Const(0, 1))

        def drive(m, dut):
            ahead = {ch.name: Signal(2, name=f"{_safe(ch.name)}_unpaired") for ch in (aw, w)}
            arrived = {ch.name: ahead[ch.name] + (ch.valid & ch.ready) for ch in (aw, w)}
            m.d.comb += paired.eq(Cat(*(a != 0 for a in arrived.values())).all())
            m.d.sync += [ahead[n].eq(a - paired) for n, a in arrived.items()]
            harness.unpaired = [ahead[aw.name], ahead[w.name]]

        harness = ContractHarness(
            dut, [ChannelPair(ar, r, Contract(note="an R per AR")),
                  ChannelPair(write, b, Contract(note="a B per AW and W pair"))],
            inputs=[aw, w], drive=drive, cover_words=1, **kw)
        return harness

    def dma(dut, **kw):
        ins = axi_channels(dut.axi, ("b", "r"), "axi.")
        outs = axi_channels(dut.axi, ("aw", "w", "ar"), "axi.")
        # No-loss needs the slave to answer: a drain counts the cycles in which it does at
        # once (ready on AR, AW and W; R and B valid whenever owed). Other cycles are free.
        pairs = stream_pairs(dut, Contract(drain=_dma_drain,
                                           note="a done per command, once the slave answers"),
                             into="cmd", out="done")
        harness = ContractHarness(dut, pairs, responses=ins, outputs=outs, cover_words=1,
                                  quiet_when=_axi_slave_answers,
                                  drive=lambda m, dut: setattr(
                                      harness, "slave", _legal_axi_slave(m, dut.axi)), **kw)
        return harness

    def stream_buffer(dut, **kw):
        ins = [Channel.of_stream("i", dut.i), *axi_channels(dut.bus, ("aw", "w", "ar"), "bus.")]
        outs = [Channel.of_stream("o", dut.o), *axi_channels(dut.bus, ("b", "r"), "bus.")]
        return ContractHarness(dut, [], inputs=ins, outputs=outs, **kw)

    def host_bridge(dut, **kw):
        ins = [Channel.of_stream("i", dut.i), *axi_channels(dut.bus, ("b", "r"), "bus.")]
        outs = [Channel.of_stream("o", dut.o), *axi_channels(dut.bus, ("aw", "w", "ar"), "bus.")]
        return ContractHarness(dut, [], inputs=ins, outputs=outs, **kw)

    return [
        FormalTarget("pe", _pipeline(PE, PEConfig(in_width=4)), _streams(),
                     invariants=_pipeline_invariants, induction=4),
        FormalTarget("reduction-tree",
                     _pipeline(ReductionTree, ReductionTreeConfig(n=5, width=4)), _streams(),
                     invariants=_pipeline_invariants, induction=4),
        FormalTarget("exp", _pipeline(Exp, ExpConfig(in_width=6, in_frac=3, out_width=6,
                                                     out_frac=3, order=1, poly_frac=8)),
                     _streams(), invariants=_pipeline_invariants, induction=4),
        FormalTarget("gelu", _pipeline(GELU, GELUConfig(in_width=6, in_frac=2, out_width=6,
                                                        out_frac=2, order=1, poly_width=10,
                                                        segments=4, range_max=4.0)),
                     _streams(), invariants=_pipeline_invariants, induction=4),
        FormalTarget("silu", _pipeline(SiLU, SiLUConfig(in_width=6, in_frac=2, out_width=6,
                                                        out_frac=2, order=1, poly_width=10,
                                                        segments=4, range_max=4.0)),
                     _streams(), invariants=_pipeline_invariants, induction=4),
        FormalTarget("search-tree", lambda: SearchTree(SearchTreeConfig(bits=8)), _streams(),
                     invariants=_pipeline_invariants, induction=4),
        FormalTarget("input-share",
                     lambda: InputShare(PEArrayConfig(rows=2, cols=2, in_width=3)), _streams(),
                     invariants=_no_words_held, induction=4),
        FormalTarget("pe-array",
                     lambda: PEArray(PEArrayConfig(rows=2, cols=2, in_width=3,
                                                   ops=("mul", "add", "max"))),
                     _streams(Contract(
                         outputs=lambda p: (p.mode == Mode.ELEMENTWISE) | p.last,
                         note="one word out per element-wise word or last linear word")),
                     invariants=_pe_array_invariants, induction=4),
        FormalTarget("sparse-search",
                     lambda: SparseSearch(SparseSearchConfig(coord_width=3, value_width=2,
                                                             max_nnz=4, parallel=2)),
                     _streams(queries), invariants=_sparse_search_invariants, induction=4),
        FormalTarget("sparse-decoder",
                     lambda: SparseDecoder(SparseDecoderConfig(block=8, value_width=2,
                                                               parallel=4, levels_per_stage=3)),
                     _streams(queries), invariants=_sparse_decoder_invariants, induction=4),
        FormalTarget("addrgen", _addrgen(levels=1), _addrgen_contract(levels=1),
                     invariants=_addrgen_invariants, induction=16),
        # k = the drain (32 cycles) + 2, as for one level: a shorter window lets a walk that
        # started before it look unfinished at the drain check.
        FormalTarget("addrgen-nested", _addrgen(levels=2), _addrgen_contract(levels=2),
                     deep=True, invariants=_addrgen_invariants, induction=34),
        FormalTarget("pingpong", lambda: PingPong(pingpong),
                     _streams(Contract(ends=lambda p, run: p.last | (run == pingpong.depth - 1),
                                       drain=lambda dut: dut.latency + 2 * pingpong.depth + 2,
                                       note="one word out per word in, when its fill ends")),
                     invariants=_pingpong_invariants(pingpong), induction=4),
        FormalTarget("scratchpad",
                     lambda: Scratchpad(ScratchpadConfig(banks=2, width=2, depth=2, ports=2)),
                     _streams(Contract(outputs=lambda p: ~p.write,
                                       drain=lambda dut: dut.latency + 4,
                                       note="one response per read request"),
                              into="req", out="resp"),
                     invariants=_scratchpad_invariants, induction=4),
        FormalTarget("csr", lambda: CSRBlock(CSRConfig()), axil_slave,
                     invariants=_csr_invariants, induction=4),
        FormalTarget("dma", lambda: DMA(DMAConfig(data_width=32, addr_width=16, max_burst=2,
                                                  outstanding=1, local_depth=16)),
                     dma, depth=12, invariants=_dma_invariants, induction=4),
        FormalTarget("stream-buffer",
                     lambda: StreamBuffer(StreamBufferConfig(in_width=4, out_width=4, depth=2)),
                     stream_buffer, depth=12, induction=4),
        FormalTarget("host-bridge", lambda: HostBridge(addr_width=8), host_bridge, depth=16,
                     invariants=_host_bridge_invariants, induction=4),
        # BMC depth (and cover): a frame and its drain, 52 cycles.
        FormalTarget("uart", lambda: UART(uart), uart_loopback,
                     invariants=_uart_invariants, induction=4),
        FormalTarget("uart-ready", lambda: UART(uart), uart_loopback_ready,
                     invariants=_uart_invariants, induction=4),
        # For all time with the no-loss check, k = 2 (the invariants of banked_invariants);
        # BMC (the long-run mutant's, the cover's) to depth 60, as when these were bounded.
        FormalTarget("softmax", lambda: Softmax(softmax), banked_harness, depth=60,
                     invariants=_banked_block_invariants, induction=2),
        FormalTarget("layernorm", lambda: LayerNorm(layernorm), banked_harness, depth=60,
                     invariants=_banked_block_invariants, induction=2),
    ]


#: Every streaming block's formal target, by name.
FORMAL_TARGETS: dict[str, FormalTarget] = {t.name: t for t in _targets()}
