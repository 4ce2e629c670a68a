"""High-density sparse search unit for the coordinate format (RT-NeRF).

Parameters, the stream protocol, the error rules and the bit-exact model are in
``golden.sparse.sparse_search``. The hardware:

- **Storage**: one :class:`~amaranth.lib.memory.Memory` of ``ceil(max_nnz / P)`` rows, each
  row ``P`` entries (coordinate, value) wide, with a write enable per entry. A load word writes
  its entry into lane ``count % P`` of row ``count // P`` (one entry per cycle). A block's
  first load word resets the entry count and the sticky error flag (the old contents stay in
  memory, masked by the count); an entry out of order, duplicated, outside the block (``>=
  B``) or beyond ``max_nnz`` (not written) sets the flag.
- **Search**: an accepted query starts a scan. Each cycle one row is read and its ``P``
  coordinates are compared with the query in parallel (``==`` and ``>=``, the comparator
  array); lanes beyond the entry count are masked. The scan stops at the first row with a
  coordinate ``>= q`` or at the last occupied row. As the block's coordinates are strictly
  increasing, at most one lane matches, so the index and the value are OR-reductions of the
  matching lane (no priority encoder). An empty or malformed block is answered without a scan.
- **Handshakes**: the output register stalls as a whole (``advance = ~o.valid | o.ready``);
  the input is not ready while a scan is in progress or the output register holds an answer
  not taken (it is ready again in a scan's last cycle, so back-to-back queries lose no cycle).

Timing without stalls: a query scanning ``rows`` rows is answered ``query_latency(rows) = rows
+ 1`` cycles after it is accepted, and the next word is accepted ``max(1, rows)`` cycles after
it (``golden.sparse.sparse_search.cycles_per_query``).
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.sparse.sparse_search import SparseSearchConfig

from ..config import configure

__all__ = ["SparseSearch"]


class SparseSearch(wiring.Component):
    """Lookup of query coordinates in one stored coordinate-format block, P compares per cycle.

    Parameters
    ----------
    config : golden.sparse.sparse_search.SparseSearchConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        Worst-case cycles from accepting a query to its answer with no stall (a full block
        of ``max_nnz`` entries scanned): ``query_latency(config.rows)``.
    input_layout, output_layout : data.StructLayout

    Members
    -------
    i : In(stream.Signature(StructLayout({"kind": 1, "coord": unsigned(coord_width),
        "value": signed(value_width), "last": 1, "empty": 1})))
    o : Out(stream.Signature(StructLayout({"hit": 1, "index": unsigned(index_width),
        "value": signed(value_width), "error": 1})))
    """

    def __init__(self, config: SparseSearchConfig | None = None, **params):
        self.config = cfg = configure(self, SparseSearchConfig, config, params)
        self.latency = self.query_latency(cfg.rows)
        self.input_layout = data.StructLayout({
            "kind": 1, "coord": unsigned(cfg.coord_width), "value": signed(cfg.value_width),
            "last": 1, "empty": 1})
        self.output_layout = data.StructLayout({
            "hit": 1, "index": unsigned(cfg.index_width), "value": signed(cfg.value_width),
            "error": 1})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    @staticmethod
    def query_latency(rows: int) -> int:
        """Cycles from accepting a query to its answer (no stall) when it scans ``rows`` rows
        (0 for an empty or malformed block): ``rows + 1``."""
        return rows + 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        p, nnz, rows = cfg.parallel, cfg.max_nnz, cfg.rows
        entry = data.StructLayout({"coord": unsigned(cfg.coord_width),
                                   "value": signed(cfg.value_width)})
        m.submodules.store = store = Memory(shape=data.ArrayLayout(entry, p), depth=rows,
                                            init=[])
        write, read = store.write_port(granularity=1), store.read_port()

        word = self.i.payload
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # --- Block state ----------------------------------------------------------------------
        count = Signal(range(nnz + 1))      # entries stored
        error = Signal()                    # sticky: the block is malformed
        in_block = Signal()                 # a block's load words have begun, not ended
        previous = Signal(cfg.coord_width)  # the last entry's coordinate
        # (at least one bit wide: Verilog has no zero-width vectors)
        write_row = Signal(max(1, (rows - 1).bit_length()))
        write_lane = Signal(max(1, (p - 1).bit_length()))

        # --- Scan state -----------------------------------------------------------------------
        busy = Signal()
        query = Signal(cfg.coord_width)
        row = Signal(max(1, (rows - 1).bit_length()))  # the row whose data is on read.data
        remaining = Signal(range(nnz + 1))  # entries from that row on: count - row * P

        lanes = read.data
        occupied = [remaining > k for k in range(p)]
        matches = [occupied[k] & (lanes[k].coord == query) for k in range(p)]
        reached = [occupied[k] & (lanes[k].coord >= query) for k in range(p)]
        stop = reduce(or_, reached) | (remaining <= p)
        finishing = busy & stop

        m.d.comb += self.i.ready.eq(advance & (~busy | stop))
        accepted = self.i.valid & self.i.ready
        is_query = word.kind == 1

        # Memory read: row 0 for a query being accepted, else the next row of the scan. The
        # data holds while the final row waits for the output register.
        m.d.comb += [
            read.addr.eq(Mux(busy & ~stop, row + 1, 0)),
            read.en.eq(~finishing | advance),
        ]
        with m.If(busy & ~stop):
            m.d.sync += [row.eq(row + 1), remaining.eq(remaining - p)]

        # --- Loads ----------------------------------------------------------------------------
        starts = ~in_block
        stored = Mux(starts, 0, count)
        row_now = Mux(starts, 0, write_row)
        lane_now = Mux(starts, 0, write_lane)
        full = stored == nnz
        disorder = (stored != 0) & (word.coord <= previous)
        if cfg.coord_limit < 1 << cfg.coord_width:  # else the field cannot leave the block
            disorder |= word.coord >= cfg.coord_limit
        load = accepted & ~is_query
        takes = load & ~word.empty & ~full
        m.d.comb += [
            write.addr.eq(row_now),
            write.en.eq(Mux(takes, 1 << lane_now, 0)),
        ]
        for k in range(p):
            m.d.comb += [write.data[k].coord.eq(word.coord), write.data[k].value.eq(word.value)]
        with m.If(load):
            m.d.sync += [in_block.eq(~word.last), count.eq(stored), write_row.eq(row_now),
                         write_lane.eq(lane_now), error.eq(Mux(starts, 0, error))]
            with m.If(~word.empty):
                m.d.sync += previous.eq(word.coord)
                with m.If(full):
                    m.d.sync += error.eq(1)
                with m.Else():
                    m.d.sync += count.eq(stored + 1)
                    with m.If(lane_now == p - 1):
                        m.d.sync += [write_lane.eq(0), write_row.eq(row_now + 1)]
                    with m.Else():
                        m.d.sync += write_lane.eq(lane_now + 1)
                    with m.If(disorder):
                        m.d.sync += error.eq(1)

        # --- Queries --------------------------------------------------------------------------
        scans = (count != 0) & ~error
        direct = accepted & is_query & ~scans  # answered without a scan
        with m.If(finishing & advance):
            m.d.sync += busy.eq(0)
        with m.If(accepted & is_query & scans):
            m.d.sync += [busy.eq(1), query.eq(word.coord), row.eq(0), remaining.eq(count)]

        # --- Answer: OR-reduction of the (at most one) matching lane --------------------------
        hit = reduce(or_, matches)
        lane = reduce(or_, [Mux(matches[k], k, 0) for k in range(p)])
        value = reduce(or_, [Mux(matches[k], lanes[k].value.as_unsigned(), 0)
                             for k in range(p)])
        with m.If(advance):
            m.d.sync += self.o.valid.eq(finishing | direct)
            with m.If(finishing):
                m.d.sync += [self.o.payload.hit.eq(hit),
                             self.o.payload.index.eq(Mux(hit, row * p + lane, 0)),
                             self.o.payload.value.eq(value),
                             self.o.payload.error.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.hit.eq(0), self.o.payload.index.eq(0),
                             self.o.payload.value.eq(0), self.o.payload.error.eq(error)]
        # Kept for the formal proofs' invariants (sim/contracts.py).
        self.state = {"busy": busy, "remaining": remaining, "count": count, "row": row,
                      "error": error}
        return m
