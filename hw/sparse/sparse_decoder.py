"""Hybrid sparse decoder front-end: one stream interface over both sparse formats.

Parameters, the word protocol and the bit-exact model are in ``golden.sparse.sparse_decoder``.
Bitmap blocks are held here (the bitmap in a register, the values in a memory) and their
lookups go through a :class:`SearchTree` for the rank; coordinate blocks and their queries are
forwarded to a :class:`SparseSearch`. Per-query flags (position out of range, incomplete bitmap
block, the bitmap bit) travel in a small FIFO beside whichever unit answers. Load words wait
until no query is outstanding, so the current block's format, bitmap and values never change
under an answer in flight and answers leave in query order without reordering.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.sparse.search_tree import SearchOp
from golden.sparse.sparse_decoder import SparseDecoderConfig, Tag, WordKind

from ..config import configure
from .search_tree import SearchTree, SearchTreeOp
from .sparse_search import SparseSearch

__all__ = ["SparseDecoder", "DecoderTag", "DecoderWordKind"]

#: Amaranth enums with the encodings of :class:`golden.sparse.sparse_decoder.Tag` / ``WordKind``.
DecoderTag = enum.Enum("DecoderTag", [(t.name, t.value) for t in Tag])
DecoderWordKind = enum.Enum("DecoderWordKind", [(k.name, k.value) for k in WordKind])


class SparseDecoder(wiring.Component):
    """Lookup queries against a hybrid (bitmap / coordinate) encoded block stream.

    Parameters
    ----------
    config : golden.sparse.sparse_decoder.SparseDecoderConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        Cycles from accepting a query on a bitmap block to its answer, with no stall (the
        search tree's latency); coordinate blocks take the coordinate unit's time.
    input_layout, output_layout : data.StructLayout

    Members
    -------
    i : In(stream.Signature(StructLayout({"kind", "tag", "bitmap": ArrayLayout(1, block),
        "coord", "value", "last", "empty"})))
    o : Out(stream.Signature(StructLayout({"hit": 1, "value": signed(value_width),
        "error": 1})))
    """

    def __init__(self, config: SparseDecoderConfig | None = None, **params):
        self.config = cfg = configure(self, SparseDecoderConfig, config, params)
        self.latency = SearchTree.latency_of(cfg.search_tree)
        self.input_layout = data.StructLayout({
            "kind": DecoderWordKind, "tag": DecoderTag,
            "bitmap": data.ArrayLayout(unsigned(1), cfg.block),
            "coord": unsigned(cfg.query_width), "value": signed(cfg.value_width),
            "last": 1, "empty": 1,
        })
        self.output_layout = data.StructLayout({"hit": 1, "value": signed(cfg.value_width),
                                                "error": 1})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, word = self.config, self.i.payload
        m.submodules.tree = tree = SearchTree(cfg.search_tree)
        m.submodules.search = search = SparseSearch(cfg.sparse_search)
        m.submodules.values = values = Memory(shape=signed(cfg.value_width), depth=cfg.block,
                                              init=[])
        write, read = values.write_port(), values.read_port(domain="comb")
        flags = data.StructLayout({"error": 1, "bit": 1})
        m.submodules.flags = fifo = SyncFIFO(width=flags.size, depth=self.latency + 4)

        # The current block: its format, and for a bitmap block its bitmap and values.
        tag = Signal(DecoderTag)
        bitmap = Signal(cfg.block)
        popcount = Signal(range(cfg.block + 1))
        count = Signal(range(cfg.block + 1))
        overflow = Signal()

        is_load = word.kind == DecoderWordKind.LOAD
        to_bitmap = word.tag == DecoderTag.BITMAP
        idle = fifo.level == 0  # no query outstanding
        to_search = (is_load & ~to_bitmap) | (~is_load & (tag == DecoderTag.COORDINATE))
        to_tree = ~is_load & (tag == DecoderTag.BITMAP)
        # Each path's valid excludes that path's own ready (stream rule).
        m.d.comb += [
            search.i.valid.eq(self.i.valid & to_search & Mux(is_load, idle, fifo.w_rdy)),
            search.i.payload.kind.eq(~is_load),
            search.i.payload.coord.eq(word.coord),
            search.i.payload.value.eq(word.value),
            search.i.payload.last.eq(word.last),
            search.i.payload.empty.eq(word.empty),
            tree.i.valid.eq(self.i.valid & to_tree & fifo.w_rdy),
            tree.i.payload.op.eq(SearchTreeOp[SearchOp.RANK.name]),
            tree.i.payload.bitmap.eq(bitmap),
            tree.i.payload.arg.eq(word.coord),
            self.i.ready.eq(Mux(is_load & to_bitmap, idle,
                                 Mux(to_search, search.i.ready & Mux(is_load, idle, fifo.w_rdy),
                                      tree.i.ready & fifo.w_rdy))),
        ]
        accepted = self.i.valid & self.i.ready

        # Bitmap-block loads.
        header = accepted & is_load & to_bitmap & word.empty
        value_word = accepted & is_load & to_bitmap & ~word.empty
        m.d.comb += [write.addr.eq(count), write.data.eq(word.value),
                     write.en.eq(value_word & (count < cfg.block))]
        with m.If(accepted & is_load):
            m.d.sync += tag.eq(word.tag)
        with m.If(header):
            m.d.sync += [bitmap.eq(word.bitmap.as_value()), count.eq(0), overflow.eq(0),
                         popcount.eq(sum(word.bitmap[k] for k in range(cfg.block)))]
        with m.If(value_word):
            with m.If(count < cfg.block):
                m.d.sync += count.eq(count + 1)
            with m.Else():
                m.d.sync += overflow.eq(1)

        # Per-query flags, in query order.
        out_of_range = word.coord >= cfg.block
        incomplete = overflow | (count != popcount)
        pushed = Signal(flags)
        m.d.comb += [
            pushed.error.eq(out_of_range | ((tag == DecoderTag.BITMAP) & incomplete)),
            pushed.bit.eq(bitmap.bit_select(word.coord[:max(1, (cfg.block - 1).bit_length())],
                                            1)),
            fifo.w_data.eq(pushed.as_value()),
            fifo.w_en.eq(accepted & ~is_load),
        ]

        # Answers: from the tree (bitmap blocks) or the search unit (coordinate blocks); only
        # one of them can hold answers at a time.
        popped = data.View(flags, fifo.r_data)
        answer = self.o.payload
        m.d.comb += [read.addr.eq(tree.o.payload.result)]
        with m.If(tree.o.valid):
            hit = popped.bit & ~popped.error
            m.d.comb += [answer.hit.eq(hit), answer.error.eq(popped.error),
                         answer.value.eq(Mux(hit, read.data, 0))]
        with m.Else():
            error = popped.error | search.o.payload.error
            m.d.comb += [answer.hit.eq(search.o.payload.hit & ~error), answer.error.eq(error),
                         answer.value.eq(Mux(error, 0, search.o.payload.value))]
        # An answer leaves together with its flags (pushed when its query was accepted).
        m.d.comb += [
            self.o.valid.eq((tree.o.valid | search.o.valid) & fifo.r_rdy),
            tree.o.ready.eq(self.o.ready & fifo.r_rdy),
            search.o.ready.eq(self.o.ready & fifo.r_rdy),
            fifo.r_en.eq(self.o.valid & self.o.ready),
        ]
        # Kept for the formal proofs' invariants (sim/contracts.py).
        self.state = {"fifo": fifo, "tree": tree, "search": search, "tag": tag}
        return m

