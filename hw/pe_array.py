"""Reconfigurable PE array with a reduction tree per row (MARCA's reduction-alternative array).

Parameters, the transaction-level golden model and the GEMV/GEMM schedules are in
``golden.pe_array``; its module docstring defines what each transaction computes.
"""

from __future__ import annotations

from amaranth.hdl import Module, ResetSignal, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.pe_array import Mode, PEArrayConfig

from .arith import saturate, shape_of
from .config import configure
from .dsp import kept_register, lut4
from .pe import PE, PEOp, decode_op, lane_is_mapped, pe_latency
from .pipeline import delay
from .reduction_tree import ReductionTree

__all__ = ["ArrayMode", "PEArray", "pe_array_layouts", "LANE_GROUP"]

#: With the mapped lanes, the lanes of a row that share one stall enable (a LUT4 of their own
#: copy of ``o.valid`` and of ``o.ready``) and one copy of the registered op decode (2
#: multiplier stages on): the nets to the lanes' clock enables and decode inputs stay local.
LANE_GROUP = 2

#: The mode field's Amaranth enum, with the encoding of :class:`golden.pe_array.Mode`.
ArrayMode = enum.Enum("ArrayMode", [(mode.name, mode.value) for mode in Mode])


def pe_array_layouts(config: PEArrayConfig) -> tuple[data.StructLayout, data.StructLayout]:
    """The input and output payload layouts of a PE array with this config."""

    def grid(shape):
        return data.ArrayLayout(data.ArrayLayout(shape, config.cols), config.rows)

    operand = shape_of(config.in_width, config.signed)
    inputs = data.StructLayout({
        "op": PEOp, "mode": ArrayMode, "last": 1,
        "a": grid(operand), "b": grid(operand), "c": grid(operand),
    })
    outputs = data.StructLayout({
        "mode": ArrayMode, "last": 1,
        "elem": grid(shape_of(config.output_width, config.signed)),
        "acc": data.ArrayLayout(shape_of(config.accumulator_width, config.signed), config.rows),
    })
    return inputs, outputs


class PEArray(wiring.Component):
    """A ``rows x cols`` grid of PEs; per row, a reduction tree and an accumulator.

    Every transaction selects its op and mode, so linear (dot product, GEMV/GEMM) and
    element-wise operations follow each other back to back. Both modes take the same path
    length: in element-wise mode the PE results travel through delay registers beside the
    trees, so outputs stay in order across mode changes and nothing drains. One global stall
    enable advances the pipeline when its output register is empty or being taken: one
    transaction per cycle (II = 1) while ``o.ready`` is high. Without backpressure
    (``config.backpressure`` false) both streams are always ready, have no ``ready`` port, and
    the pipeline never stalls: the consumer takes every output the cycle it is valid.

    Parameters
    ----------
    config : golden.pe_array.PEArrayConfig, optional
        The array's parameters; or pass them as keywords (``rows=4, cols=8, in_width=8``).

    Attributes
    ----------
    config : golden.pe_array.PEArrayConfig
    latency : int
        Cycles from an accepted input to its output with no stall:
        PE (``pe_latency``: ``2 + multiplier_stages + sum_register``) + reduction tree + 1
        (accumulator/output register).
    input_layout, output_layout : data.StructLayout
        Payload layouts of ``i`` and ``o``.

    Members
    -------
    i : In(stream.Signature(input_layout))
        ``op`` (PEOp), ``mode`` (ArrayMode), ``last``, and ``a``, ``b``, ``c``: arrays of
        ``rows`` arrays of ``cols`` operands.
    o : Out(stream.Signature(output_layout))
        ``mode``, ``last``, ``elem`` (``rows x cols`` PE results) and ``acc`` (``rows``
        accumulators). Linear transactions emit only when ``last`` is set.
    """

    def __init__(self, config: PEArrayConfig | None = None, **params):
        self.config = cfg = configure(self, PEArrayConfig, config, params)
        self.tree_latency = ReductionTree.latency_of(cfg.tree)
        self.pe_latency = pe_latency(cfg.pe)
        self.latency = self.pe_latency + self.tree_latency + 1

        self.result_shape = shape_of(cfg.output_width, cfg.signed)
        self.acc_shape = shape_of(cfg.accumulator_width, cfg.signed)
        self.input_layout, self.output_layout = pe_array_layouts(cfg)
        always_ready = not cfg.backpressure
        super().__init__({
            "i": In(stream.Signature(self.input_layout, always_ready=always_ready)),
            "o": Out(stream.Signature(self.output_layout, always_ready=always_ready)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, i = self.config, self.i.payload
        # The output register carries data only (o.valid says when it holds a word): no reset,
        # whose net to its 1 000-odd flip-flops crossed the die (9 ns) once nothing else did.
        o = Signal(self.output_layout, name="o_payload", reset_less=True)
        m.d.comb += self.o.payload.eq(o)
        # The global stall enable, one LUT from flip-flops (o.valid is a register): it reaches
        # every register's clock enable in the array, the longest route of a large one.
        advance = Signal()
        stage_valid = [Signal(name=f"stage{k}_valid") for k in range(1, self.latency)]
        # Kept for the formal proofs' invariants: each stage's valid bit, mode and last.
        self.stage_valid, self.stage_mode, self.stage_last = stage_valid, [], []
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)  # 1 without backpressure
        if cfg.backpressure:
            m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [dst.eq(src) for dst, src in
                         zip(stage_valid, [self.i.valid, *stage_valid[:-1]])]

        # PEs, then one reduction tree per row. The mapped lanes share one op decode per
        # two rows (decoded once for the array, the op would reach every lane over one
        # die-wide route); from 2 multiplier stages on the decoded signals are registered with
        # the operands, a copy per LANE_GROUP lanes: no LUT between a register and its route
        # to a lane, and each route short. Each group computes the stall enable again for its
        # own registers from its own copy of o.valid (the same register, kept apart): one net
        # to every clock enable was the 8x8 array's longest route (11.4 ns), one per row
        # still 7 ns (a row's DSPs are spread over the die).
        pe_results = Signal(self.output_layout["elem"].shape)
        row_sums = []
        shared = lane_is_mapped(cfg.pe)
        registered = cfg.pe.multiplier_stages >= 2
        valid_next = Signal()  # o.valid's next value, when the output stage advances
        lane_advance = {}  # (row, column): the stall enable of the lane's registers
        for r in range(cfg.rows):
            tree = m.submodules[f"tree{r}"] = ReductionTree(cfg.tree)
            groups = range(0, cfg.cols, LANE_GROUP if shared else cfg.cols)
            group_advance = {g: advance for g in groups}
            if shared:
                for g in groups if cfg.backpressure else ():
                    group_advance[g] = Signal(name=f"advance{r}_{g}")
                    valid = kept_register(m, platform, valid_next, en=group_advance[g],
                                          name=f"valid{r}_{g}")
                    m.d.comb += group_advance[g].eq(
                        lut4(m, platform, lambda valid, ready: ~valid | ready, valid,
                             self.o.ready, name=f"advance{r}_{g}_lut"))
                if r % 2 == 0:
                    decoded = decode_op(m, platform, Value.cast(i.op),
                                        name=f"rows{r}_op_decode")
                copies = {g: kept_register(m, platform, decoded.as_value(),
                                           en=group_advance[g], name=f"decode{r}_{g}",
                                           reset=False) if registered else decoded
                          for g in groups}
            m.d.comb += tree.en.eq(group_advance[0])
            for c in range(cfg.cols):
                group = groups[c // groups.step]
                pe = m.submodules[f"pe{r}_{c}"] = PE(cfg.pe, decoded_op=shared)
                lane_advance[r, c] = group_advance[group]
                if shared:
                    assert pe.decode_delay == int(registered)
                    m.d.comb += pe.decoded.eq(copies[group])
                m.d.comb += [
                    pe.en.eq(group_advance[group]),
                    pe.i.op.eq(i.op), pe.i.a.eq(i.a[r][c]), pe.i.b.eq(i.b[r][c]),
                    pe.i.c.eq(i.c[r][c]),
                    pe_results[r][c].eq(pe.o),
                    tree.i[c].eq(pe.o),
                ]
            row_sums.append(tree.o)

        # Everything else reaches the output stage as the tree sums do.
        to_output = self.pe_latency + self.tree_latency
        mode = delay(m, i.mode, to_output, en=advance, name="mode", taps=self.stage_mode)
        last = delay(m, i.last, to_output, en=advance, name="last", taps=self.stage_last)
        if shared:
            # Each lane's result waits beside the trees and enters the output register under
            # the lane's own stall enable (the same value as advance): the global one, to
            # every such register, was the next longest route (8.4 ns). Data only: no reset
            # net to them either (the stages' valid bits are the transactions').
            for (r, c), en in lane_advance.items():
                late = delay(m, pe_results[r][c], self.tree_latency, en=en,
                             name=f"elem{r}_{c}", reset_less=True)
                with m.If(en):
                    m.d.sync += o.elem[r][c].eq(late)
            elem = []
        else:
            elem = [o.elem.eq(delay(m, pe_results, self.tree_latency, en=advance,
                                    name="elem"))]
        arriving = stage_valid[-1]  # latency >= 5: PE (>= 3) + tree (>= 1) + output stage

        # Output stage: the output payload is its register; linear transactions emit on last.
        m.d.comb += valid_next.eq(arriving & ((mode == ArrayMode.ELEMENTWISE) | last))
        # Each row's running sum lives in two registers loaded with the same saturated total:
        # the output's ``acc`` and a feedback copy that the adder reads. The feedback copy is
        # cleared by its flip-flops' synchronous reset when a dot product ends, so nothing
        # selects between it and 0 at the adder's input: a "continuing" flag's route to every
        # bit's input mux, then the carry chain and the saturation, was the 8x8 array's
        # longest path (9.4 ns).
        with m.If(advance):
            m.d.sync += [o.mode.eq(mode), o.last.eq(last), *elem, self.o.valid.eq(valid_next)]
        linear_next = stage_valid[-2] & (self.stage_mode[-2] == ArrayMode.LINEAR)
        for r in range(cfg.rows):
            # A copy per row of "a linear transaction arrives" and of its last bit, registered
            # from the stage before (the same values as arriving, mode and last): one signal to
            # every row's accumulator enables and clears was the longest route (3.2 ns).
            row_advance = lane_advance[r, 0]
            arrives = kept_register(m, platform, linear_next, en=row_advance,
                                    name=f"linear{r}")
            ends = kept_register(m, platform, self.stage_last[-2], en=row_advance,
                                 name=f"last{r}", reset=False)
            accumulate = arrives & row_advance
            # The feedback copy must start a dot product after reset too; its clear comes from
            # a copy of the reset per row, a cycle late (no linear transaction arrives that
            # early: the stages' valid bits are reset), so the reset net stays local.
            restart = kept_register(m, platform, ResetSignal(), en=1, name=f"reset{r}",
                                    reset=False)
            feedback = Signal(self.acc_shape, name=f"acc_feedback{r}", reset_less=True)
            total = saturate(feedback + row_sums[r], self.acc_shape)
            with m.If(restart | (accumulate & ends)):
                m.d.sync += feedback.eq(0)
            with m.Elif(accumulate):
                m.d.sync += feedback.eq(total)
            with m.If(accumulate):
                m.d.sync += o.acc[r].eq(total)
        return m
