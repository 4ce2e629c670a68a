"""RT-NeRF's bi-directional adder & search tree: rank and select over a bitmap block.

Parameters and the golden model are in ``golden.sparse.search_tree``; its module docstring
defines what each query computes.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.sparse.search_tree import SearchOp, SearchTreeConfig

from ..config import configure

__all__ = ["SearchTreeOp", "SearchTree"]

#: The op field's Amaranth enum, with the encoding of :class:`golden.sparse.search_tree.SearchOp`.
SearchTreeOp = enum.Enum("SearchTreeOp", [(op.name, op.value) for op in SearchOp])


class SearchTree(wiring.Component):
    """One adder tree used twice: popcounts upward, then a root-to-leaf search downward.

    The bitmap is padded with zero leaves to ``2**levels``; padded nodes are constants and
    cost nothing. The **upward pass** is an adder tree of popcounts (level 0: the bits; each
    node adds its two children) that keeps every level's partial sums. The **downward pass**
    walks from the root to a leaf over those sums, one level per step, looking at the left
    child's count ``left``:

    - SELECT (``k`` starts at ``arg``): go right if ``k >= left``, then ``k -= left``; the path
      bits are the position. ``arg >= popcount`` (the root) is "not found".
    - RANK: go right where ``arg``'s bit for this level is set, adding ``left`` to the count.
      ``arg == 2**levels`` (only when ``bits`` is a power of two) starts the count at the root.
      ``arg > bits`` is an error.

    After each step only the chosen child's subtree of partial sums travels on, so the
    downward registers halve at every level. An error gives ``error = 1`` and ``result = 0``.

    Both passes take a register stage every ``levels_per_stage`` levels and after their last
    level (the last one is the output register). One global stall enable advances the whole
    pipeline when the output register is empty or being taken: one query per cycle while
    ``o.ready`` is high.

    Parameters
    ----------
    config : golden.sparse.search_tree.SearchTreeConfig, optional
        The tree's parameters; or pass them as keywords (``bits=64, levels_per_stage=1``).

    Attributes
    ----------
    config : golden.sparse.search_tree.SearchTreeConfig
    latency : int
        Cycles from an accepted query to its result with no stall:
        ``2 * ceil(levels / levels_per_stage)`` (upward plus downward pass).
    input_layout, output_layout : data.StructLayout
        Payload layouts of ``i`` and ``o``.

    Members
    -------
    i : In(stream.Signature(input_layout))
        ``op`` (SearchTreeOp), ``bitmap`` (``ArrayLayout(unsigned(1), bits)``, element ``k``
        is position ``k``) and ``arg`` (``unsigned(index_width)``).
    o : Out(stream.Signature(output_layout))
        ``result`` (``unsigned(index_width)``) and ``error`` (1 bit).
    """

    def __init__(self, config: SearchTreeConfig | None = None, **params):
        self.config = cfg = configure(self, SearchTreeConfig, config, params)
        self.latency = self.latency_of(cfg)
        self.input_layout = data.StructLayout({
            "op": SearchTreeOp,
            "bitmap": data.ArrayLayout(unsigned(1), cfg.bits),
            "arg": unsigned(cfg.index_width),
        })
        self.output_layout = data.StructLayout({"result": unsigned(cfg.index_width),
                                                "error": unsigned(1)})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    @staticmethod
    def latency_of(config: SearchTreeConfig) -> int:
        """Register stages of a tree with these parameters (without building one)."""
        return 2 * config.stages_per_pass

    def elaborate(self, platform):
        m = Module()
        cfg, i, o = self.config, self.i.payload, self.o.payload
        levels, per_stage, width = cfg.levels, cfg.levels_per_stage, cfg.index_width

        advance = Signal()  # the global stall enable
        stage_valid = [Signal(name=f"stage{k}_valid") for k in range(1, self.latency + 1)]
        self.stage_valid = stage_valid  # for the formal proofs' invariants
        m.d.comb += [
            self.o.valid.eq(stage_valid[-1]),
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [dst.eq(src) for dst, src in
                         zip(stage_valid, [self.i.valid, *stage_valid[:-1]])]

        def wire(value, name, *, registered=False):
            """``value`` as a signal: a register loading on ``advance``, or a combinational
            wire (so an expression used several times is built once)."""
            signal = Signal(Value.cast(value).shape(), name=name)
            if registered:
                with m.If(advance):
                    m.d.sync += signal.eq(value)
            else:
                m.d.comb += signal.eq(value)
            return signal

        def pack(row, name, *, registered=False):
            """A row of node counts (``None``: a padded, constant zero node) through one wide
            signal; returns the row re-sliced from it."""
            real = [(k, v) for k, v in enumerate(row) if v is not None]
            if not real:
                return row
            packed = wire(Cat(*(v for _, v in real)), name, registered=registered)
            out, offset = list(row), 0
            for k, v in real:
                out[k] = packed[offset:offset + len(v)]
                offset += len(v)
            return out

        # Upward pass: tree[l][j] is the popcount of leaves j*2**l .. (j+1)*2**l - 1.
        op, arg = i.op, i.arg
        tree = [[i.bitmap[k] for k in range(cfg.bits)] + [None] * (cfg.leaves - cfg.bits)]
        for level in range(1, levels + 1):
            below = tree[-1]
            row = [_add(below[2 * j], below[2 * j + 1]) for j in range(len(below) // 2)]
            tree.append(pack(row, f"up{level}_sums"))
            if level % per_stage == 0 or level == levels:
                tree = [pack(r, f"up{level}_level{lvl}", registered=True)
                        for lvl, r in enumerate(tree)]
                op = wire(op, f"up{level}_op", registered=True)
                arg = wire(arg, f"up{level}_arg", registered=True)

        # Downward pass. Start: check the query against the root, initialise the count.
        root = tree[levels][0]
        is_select = wire(op == SearchTreeOp.SELECT, "is_select")
        error = wire(Mux(is_select, arg >= root, arg > cfg.bits), "error")
        full = arg[levels] if width > levels else Const(0, 1)  # RANK of all 2**levels leaves
        count = wire(Mux(is_select, arg, Mux(full, root, 0))[:width], "count0")
        subtree = tree[:levels]  # levels 0..h-1 below the current node at level h
        position = Cat()  # the walk's directions so far, the latest in bit 0: SELECT's result
        for step in range(levels):
            h = levels - step  # level of the current node
            left = subtree[h - 1][0]  # never padding: the left child holds the leftmost leaf
            go_right = wire(Mux(is_select, count >= left, arg[h - 1]), f"down{step}_right")
            count = wire(Mux(go_right, Mux(is_select, count - left, count + left),
                             count)[:width], f"down{step}_count")
            position = Cat(go_right, position)
            subtree = [[_mux(go_right, r[len(r) // 2 + j], r[j]) for j in range(len(r) // 2)]
                       for r in subtree[:h - 1]]
            last = step == levels - 1
            if (step + 1) % per_stage == 0 and not last:
                subtree = [pack(r, f"down{step}_level{lvl}", registered=True)
                           for lvl, r in enumerate(subtree)]
                is_select, error, count, arg = (
                    wire(v, f"down{step}_{name}", registered=True)
                    for v, name in ((is_select, "is_select"), (error, "error"),
                                    (count, "count"), (arg, "arg")))
                position = wire(position, f"down{step}_position", registered=True)

        # The output stage is the downward pass's last register.
        result = Mux(error, 0, Mux(is_select, position, count))
        with m.If(advance):
            m.d.sync += [o.result.eq(result), o.error.eq(error)]
        return m


def _add(a, b):
    """Sum of two node counts, ``None`` being a padded (zero) node."""
    if b is None:
        return a
    return a + b  # padding is at the end: ``a`` is real when ``b`` is


def _mux(sel, a, b):
    """``Mux(sel, a, b)`` over node counts, ``None`` being a padded (zero) node."""
    if a is None and b is None:
        return None
    return Mux(sel, 0 if a is None else a, 0 if b is None else b)
