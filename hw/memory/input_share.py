"""Input sharing for linear ops: one x chunk fanned out to every PE row (MARCA's buffer
management). The model and the traffic it saves are in ``golden.memory.input_share`` and
``golden.memory.buffer_management``."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.pe_array import PEArrayConfig

from ..arith import shape_of
from ..config import configure
from ..pe import PEOp
from ..pe_array import ArrayMode, pe_array_layouts

__all__ = ["InputShare"]


class InputShare(wiring.Component):
    """Stream adapter in front of a :class:`~hw.pe_array.PEArray` for GEMV/GEMM.

    Takes a weight tile and a single ``cols``-long x chunk per word and emits the array's
    linear-mode multiply transaction with the chunk on every row: the x operand is fetched
    once, not ``rows`` times. Pure wiring: no registers, no latency, full backpressure.

    Parameters
    ----------
    config : golden.pe_array.PEArrayConfig, optional
        The array's config (or its fields as keywords); the adapter matches its layouts.

    Attributes
    ----------
    latency : int
        0 (combinational).

    Members
    -------
    i : In(stream.Signature(StructLayout({"w": rows x cols operands, "x": cols operands,
        "last": 1})))
    o : Out(stream.Signature(the PE array's input layout))
    """

    latency = 0

    def __init__(self, config: PEArrayConfig | None = None, **params):
        self.config = cfg = configure(self, PEArrayConfig, config, params)
        operand = shape_of(cfg.in_width, cfg.signed)
        self.input_layout = data.StructLayout({
            "w": data.ArrayLayout(data.ArrayLayout(operand, cfg.cols), cfg.rows),
            "x": data.ArrayLayout(operand, cfg.cols),
            "last": 1,
        })
        self.output_layout, _ = pe_array_layouts(cfg)
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        i, o = self.i.payload, self.o.payload
        m.d.comb += [
            o.op.eq(PEOp.MUL), o.mode.eq(ArrayMode.LINEAR), o.last.eq(i.last), o.a.eq(i.w),
            *(o.b[r].eq(i.x) for r in range(self.config.rows)),  # one chunk, every row
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
        ]
        return m
