"""The accelerator: program memory, scratchpad, sequencer, PE array, units and AXI4 DMA.

The architecture, the ISA and the bit-exact model are in ``golden.accelerator`` (its module
docstring is the specification); the per-instruction cycle counts are those of
``golden.accelerator_cycles``, which this hardware meets exactly.

Sequencer timing, per instruction (``issue_cycles`` >= 2, the model's defaults otherwise):

- Decoder: a pipeline of :attr:`AcceleratorCore.decode_stages` register stages runs ahead of
  the issue logic (programs have no branches), from the program memory's read to its head, the
  instruction at ``pc``: every check of ``check_instruction`` but ``EXT_RANGE`` and the ranges
  of ``golden.accelerator.access`` (products and the ``lines / tcols`` division included) are
  computed there, a few adders per stage, so none of them is on the issue path. It advances
  when its head dispatches, and fills while the machine is idle.
- FETCH (``issue_cycles - 1`` cycles): the head is the instruction at ``pc`` (it moved in at
  the previous dispatch); ``EXT_RANGE`` (it reads the ``ext_lines`` input) and the interlock's
  comparisons of the head's ranges with each engine's instruction in flight are registered
  from it. A ``pc`` past the program stops with ``PC_RANGE`` (once the engines are idle).
- DECODE (1 cycle or more): the first failing check (in the model's order) stops the machine
  with its code and ``pc`` once the engines are idle; otherwise the instruction waits here
  until its engine (compute, load or store) is free and the interlock finds no conflict (a
  registered comparison of its ranges with those of an engine still busy), and dispatches. An
  engine is free in its instruction's last cycle (its last write), so a dependent instruction
  dispatches in that cycle and reads the next. ``HALT`` waits for all engines. Decoupled: the
  next FETCH follows the dispatch; serial (``decoupled=False``): it follows the engine's last
  cycle.
- Compute engine: STREAM (the model's streaming cycles, one read step per cycle on ports 0
  and 1), then DRAIN (the model's pipeline latency: the last results reach the write port).
- Load and store engines: one :class:`hw.memory.dma.DMA` each, from the command to the done
  response.

Scratchpad: 3R1W -- compute reads ports 0 and 1, the store engine reads its own (replicated
read ports: Yosys builds a block RAM copy per read port, each a simple dual-port RAM behind the
one write port). Compute and the load engine share the write port, compute first: in a cycle
in which the compute engine writes, the AXI R channel is held (``rready`` low) and the load's
beat waits (``c_write``). The interlock keeps the engines' ranges apart, so the two never
need one line.

Datapath: read data (one cycle after the address) is shaped into the PE array's ``a``, ``b``,
``c`` grids by each operand's mode (``LINE``: the line; ``COL``: a run of ``C`` elements down
every row; ``ROW``: a run of ``R`` elements, element ``r`` across row ``r``). ``MADD`` reads
``a`` and ``b`` in its first cycle and ``c`` in its second, holding ``a`` and ``b``. ``GEMV`` is
the same stream with ``a`` the tile (``LINE``) and ``b`` the chunk of ``x`` (``COL``), ``MUL`` in
``LINEAR`` mode. PE results pass the requantizer register (:class:`~hw.requantizer.Requantizer`:
shift with the PE rounding, saturate to int16) to the write port, whose per-element enables
place ``GEMV`` results (dense, or one column of a tile matrix). ``NL`` lines go through the
selected unit straight to the write port; with ``nl_lanes`` below ``L`` a line is read
``L / nl_lanes`` times, one chunk of ``nl_lanes`` elements per cycle, and each chunk is
written with its elements' enables. ``SOFTMAX`` feeds
the :class:`~hw.nonlinear.softmax.Softmax` one element per cycle (selected from the line on
port 0) and writes each result, through an output register, with a one-element enable;
``LAYERNORM`` does the same through the :class:`~hw.nonlinear.layernorm.LayerNorm`. A batch
(``more`` further vectors) feeds its vectors back to back, the read line stepping by
``sstride`` at each vector's end and the write line by ``dstride``: the units take the next
vector in while they normalize and output the previous one (three input banks each).

DMA: two :class:`hw.memory.dma.DMA` run the AXI4 side (bursts, 4 KiB boundaries, outstanding
bursts, completion) of a command ``{ext * line_bytes, line * beats, lines * line_bytes}``: the
load engine's owns the read channels (AR, R), the store engine's the write channels (AW, W, B),
so a load and a store run at once on the one AXI4 port. Their data beats bypass their own
buffers: every R beat is written into the scratchpad (load port) as it arrives (element enables
select the beat's part of a line), and ``wdata`` is driven from the store read port, addressed
so that it always holds the beat the W channel presents (the count of W beats taken so far,
plus the one taken this cycle). A DMA instruction takes ``issue + lines * beats`` plus the
memory's latency (5 cycles for a load, 6 for a store with a wait-free cocotbext-axi
``AxiRam``; the model's ``dma_latency``), and a load one cycle more per compute write during
its beats (the write-port rule of ``golden.accelerator_cycles``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.accelerator import (
    ELEM_WIDTH,
    FIELDS,
    INSTRUCTION_BITS,
    AcceleratorConfig,
    ErrorCode,
    NLUnit,
    Opcode,
    OperandMode,
    YLayout,
)
from golden.pe import Op

from .config import configure
from .memory.dma import DMA, axi4_signature
from .nonlinear.exp import Exp
from .nonlinear.gelu import GELU
from .nonlinear.layernorm import LayerNorm
from .nonlinear.silu import SiLU
from .nonlinear.softmax import Softmax
from .pe import PEOp, pe_latency
from .pe_array import ArrayMode, PEArray
from .requantizer import Requantizer

__all__ = ["DECODE_STAGES", "DIVIDE_BITS_PER_STAGE", "AcceleratorCore"]


def _log2(value: int) -> int:
    return value.bit_length() - 1


#: Quotient bits the decoder's divider (``lines // tcols`` and ``lines % tcols`` of ``EW``)
#: settles per pipeline stage: each bit is a 17-bit subtraction and a multiplexer in series.
DIVIDE_BITS_PER_STAGE = 4

#: Register stages of the decoder (:meth:`AcceleratorCore._decoder`), the program memory's
#: read included: the checks without products, the divider's stages (the products in the
#: last), the range ends, the head.
DECODE_STAGES = 4 + -(-16 // DIVIDE_BITS_PER_STAGE)


class _Stages:
    """Pipeline registers that all advance on one enable.

    ``reg(value, stage)`` registers a value computed from stage ``stage - 1`` (its shape kept,
    so no value is cut); ``at(signal, stage)`` is a registered value delayed to a later stage
    (each copy made once)."""

    def __init__(self, m: Module, advance):
        self.m, self.advance = m, advance
        self._stage: dict[int, tuple[Signal, int]] = {}
        self._copies: dict[tuple[int, int], Signal] = {}

    def reg(self, value, stage: int, name: str) -> Signal:
        value = Value.cast(value)
        sig = Signal(value.shape(), name=f"dec{stage}_{name}")
        with self.m.If(self.advance):
            self.m.d.sync += sig.eq(value)
        self._stage[id(sig)] = (sig, stage)
        return sig

    def at(self, sig: Signal, stage: int) -> Signal:
        source, have = self._stage[id(sig)]
        if have > stage:
            raise ValueError(f"{sig.name} is at stage {have}, after {stage}")
        while have < stage:
            key = (id(source), have + 1)
            if key not in self._copies:
                self._copies[key] = self.reg(source, have + 1, sig.name.split("_", 1)[1])
            source, have = self._copies[key], have + 1
        return source


class _Decoded:
    """The decoder's head: an instruction word with everything the issue logic needs of it,
    all in registers (see :meth:`AcceleratorCore._decoder`)."""

    word: Signal
    failing: Signal      # a check of check_instruction fails, EXT_RANGE aside
    code: Signal         # the first failing one's ErrorCode
    ext_end: Signal      # ext + lines of a DMA (EXT_RANGE: > ext_lines)
    is_dma: Signal
    gemv_steps: Signal   # ceil(m/R) * ceil(k/C)
    gemv_kcs: Signal     # ceil(k/C)
    reads: list          # the ranges of golden.accelerator.access, (valid, first, last)
    write: tuple
    dram_read: tuple
    dram_write: tuple


class AcceleratorCore(wiring.Component):
    """The accelerator of :class:`golden.accelerator.AcceleratorConfig`.

    Load a program through ``prog_*`` (and, optionally, the scratchpad through ``host_*``)
    while idle, set ``prog_len`` and ``ext_lines`` and pulse ``start``; the machine runs until
    HALT (``done``) or an error (``error`` with ``code`` and ``pc``), counting its cycles in
    ``cycles``, reaching DRAM through ``axi``.

    Parameters
    ----------
    config : golden.accelerator.AcceleratorConfig, optional
        Or its fields as keywords. The hardware needs ``issue_cycles >= 2``,
        ``read_latency == 1`` and ``pe_latency`` equal to its PE lanes' (3); ``decoupled``
        chooses the concurrent engines (the default) or the serial machine.

    Attributes
    ----------
    config : golden.accelerator.AcceleratorConfig
    latency : None
        Instructions take their modelled cycles; a program has no single latency.
    decode_stages : int
        :data:`DECODE_STAGES`, the decoder's register stages: the decoder fills
        while idle, so ``start`` meets the cycle model exactly when it comes at least this many
        cycles after the last program write (or the end of the previous run); earlier, the
        first instruction waits for its decode.
    pe_array : PEArray
    units : dict of NLUnit to Exp, GELU or SiLU
        The nonlinear units of ``config.nl_units``, ``config.nl_unit_lanes`` lanes each.
    softmax : Softmax
    layernorm : LayerNorm
    load_dma, store_dma : DMA
        The load engine's (AXI read channels) and the store engine's (write channels).
    drain : dict of str to int
        Pipeline latency (after the last streaming cycle) per instruction kind.

    Members
    -------
    prog_we, prog_addr, prog_data : In
        Program memory write port (one 128-bit word per cycle).
    prog_len : In
        Words in the program (running to it is ``PC_RANGE``).
    ext_lines : In(32)
        DRAM size in lines, for the DMA range check.
    host_we, host_addr, host_wdata, host_rdata
        Scratchpad access while idle (``host_rdata``: the line at the previous cycle's
        ``host_addr``).
    start : In(1)
        Starts the program at pc 0 (ignored while busy).
    busy, done, error : Out(1)
    code : Out(4)
        The :class:`golden.accelerator.ErrorCode`.
    pc : Out
        The pc of the HALT or of the failing instruction.
    cycles : Out(32)
        Cycles since ``start`` (stops when the machine stops).
    axi : Out(hw.memory.dma.axi4_signature(32, min(line_bits, 512)))
        AXI4 master to DRAM (``axi__awvalid`` etc.).
    """

    def __init__(self, config: AcceleratorConfig | None = None, **params):
        self.config = cfg = configure(self, AcceleratorConfig, config, params)
        lanes = pe_latency(cfg.pe_array_config.pe)
        for name, ok, need in (("issue_cycles", cfg.issue_cycles >= 2, "at least 2"),
                               ("read_latency", cfg.read_latency == 1, "1"),
                               ("pe_latency", cfg.pe_latency == lanes, str(lanes))):
            if not ok:
                self._MustUse__silence = True
                raise ValueError(f"{name} must be {need} for the hardware, got "
                                 f"{getattr(cfg, name)}")
        self.latency = None
        self.decode_stages = DECODE_STAGES
        self.pe_array = PEArray(cfg.pe_array_config)
        makers = {NLUnit.EXP: lambda: Exp(cfg.exp_config),
                  NLUnit.GELU: lambda: GELU(cfg.gelu_config),
                  NLUnit.SILU: lambda: SiLU(cfg.silu_config)}
        self.units = {unit: makers[unit]() for unit in cfg.built_units}
        self.softmax = Softmax(cfg.softmax_config)
        self.layernorm = LayerNorm(cfg.layernorm_config)
        self.load_dma = DMA(cfg.dma_config)   # AR / R: DMA_LOAD
        self.store_dma = DMA(cfg.dma_config)  # AW / W / B: DMA_STORE
        self.drain = {"pe": cfg.read_latency + self.pe_array.latency + 1,
                      **{unit.name: cfg.read_latency + block.latency
                         for unit, block in self.units.items()}}
        self.line_shape = unsigned(cfg.line * ELEM_WIDTH)
        super().__init__({
            "prog_we": In(1),
            "prog_addr": In(range(cfg.max_program)),
            "prog_data": In(INSTRUCTION_BITS),
            "prog_len": In(range(cfg.max_program + 1)),
            "ext_lines": In(32),
            "host_we": In(1),
            "host_addr": In(range(cfg.depth)),
            "host_wdata": In(self.line_shape),
            "host_rdata": Out(self.line_shape),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "code": Out(4),
            "pc": Out(range(cfg.max_program + 1)),
            "cycles": Out(32),
            "axi": Out(axi4_signature(32, cfg.dma_config.data_width)),
        })

    # --- decode ----------------------------------------------------------------------------

    def _decoder(self, m: Module, word, advance) -> _Decoded:
        """The decode pipeline: the program memory's read data ``word`` (stage 1) through
        register stages to the head (stage :attr:`decode_stages`), all advancing on
        ``advance``. Every check of ``check_instruction`` but ``EXT_RANGE`` (which reads the
        ``ext_lines`` input: the issue logic registers it from the head's ``ext_end``) and the
        ranges of :func:`golden.accelerator.access` (the interlock's) are computed here, a few
        adders, a product or a divider step per stage: stage 2 the checks without products and
        ``ceil(m/R)``, ``ceil(k/C)``; 3 .. 2 + ``16 /`` :data:`DIVIDE_BITS_PER_STAGE` the
        quotient and remainder of ``lines / tcols`` (``EW``'s row blocks); in the last of those
        the products (``ceil(m/R) * ceil(k/C)``, ``(ceil(m/R) - 1) * ystride``,
        ``more * sstride``, ``more * dstride``); then every range end (``ROW`` operands' with
        the quotient); then, in the head, the comparisons with ``depth``, the first failing
        check and the ranges chosen by opcode."""
        cfg = self.config
        r, c = cfg.rows, cfg.cols
        r_log, c_log, l_log = _log2(r), _log2(c), _log2(cfg.line)
        p = _Stages(m, advance)
        ld, st, g, ew, nl, sm, ln = (Opcode.DMA_LOAD, Opcode.DMA_STORE, Opcode.GEMV, Opcode.EW,
                                     Opcode.NL, Opcode.SOFTMAX, Opcode.LAYERNORM)

        def f(op, name, w):
            lsb, width = FIELDS[op][name]
            return w[lsb:lsb + width]

        # Stage 2: the checks without products or quotients. Fields with one meaning share a
        # place: dst (and DMA line) 8..23, first source 24..39, count (lines, GEMV m,
        # SOFTMAX / LAYERNORM n) 72..87.
        is1 = {op: word[:4] == op for op in Opcode}
        zero = Const(0, 1)
        for op, names in ((ld, ("lines",)), (st, ("lines",)), (g, ("m", "k")),
                          (ew, ("lines", "tcols")), (nl, ("lines",)), (sm, ("n",)),
                          (ln, ("n",))):
            zero = zero | (is1[op] & Cat(f(op, n, word) == 0 for n in names).any())
        ew_op = f(ew, "op", word)
        valid_op = Cat(ew_op == code for code in cfg.pe_array_config.op_codes).any()
        bad_mode = ((f(ew, "amode", word) == 3) | (f(ew, "bmode", word) == 3)
                    | ((ew_op == Op.MADD) & (f(ew, "cmode", word) == 3)))
        bad = ((is1[ew] & (~valid_op | bad_mode))
               | (is1[nl] & ~Cat(f(nl, "unit", word) == int(u) for u in self.units).any())
               | (is1[g] & (f(g, "ycol", word) >= c))
               | (is1[sm] & (f(sm, "n", word) > cfg.softmax_max_len))
               | (is1[ln] & (f(ln, "n", word) > cfg.layernorm_max_len)))
        w2 = p.reg(word, 2, "word")
        is2 = {op: p.reg(is1[op], 2, f"is_{op.name.lower()}") for op in Opcode}
        known2 = p.reg(Cat(is1.values()).any(), 2, "known")
        zero2, bad2 = p.reg(zero, 2, "zero"), p.reg(bad, 2, "bad")
        rbs2 = p.reg((f(g, "m", word) + r - 1) >> r_log, 2, "rbs")
        kcs2 = p.reg((f(g, "k", word) + c - 1) >> c_log, 2, "kcs")
        sm_last2 = p.reg((f(sm, "n", word) - 1) >> l_log, 2, "sm_last")

        # The products one stage before the head's inputs, the range ends that add them (and
        # the others) in the stage of the head's inputs (``at``), so that few wide values ride
        # the pipeline beside the word.
        at = self.decode_stages - 1
        w, rbs, kcs, sm_last = (p.at(v, at - 2) for v in (w2, rbs2, kcs2, sm_last2))
        more, sstride, dstride = (f(sm, n, w) for n in ("more", "sstride", "dstride"))
        w_tiles = p.reg(rbs * kcs, at - 1, "w_tiles")
        y_span = p.reg((rbs - 1) * f(g, "ystride", w), at - 1, "y_span")
        src_span = p.reg(more * sstride, at - 1, "src_span")
        dst_span = p.reg(more * dstride, at - 1, "dst_span")
        # a batch's strides below a vector's lines (BAD_FIELD)
        bad_stride = p.reg((more != 0) & ((sstride <= sm_last) | (dstride <= sm_last)), at - 1,
                           "bad_stride")
        w, kcs, sm_last = (p.at(v, at - 1) for v in (w2, kcs2, sm_last2))
        lines, m_ = w[72:88], f(g, "m", w)
        tc = (f(ew, "tcols", w) - 1) >> r_log
        values = {
            "w": f(g, "w", w) + w_tiles - 1,
            "x": f(g, "x", w) + ((kcs - 1) >> r_log),
            "y_dense": f(g, "y", w) + (((f(g, "ycol", w) << r_log) + m_ - 1) >> l_log),
            "y_column": f(g, "y", w) + y_span,
            "sm_src": f(sm, "src", w) + src_span + sm_last,
            "sm_dst": f(sm, "dst", w) + dst_span + sm_last,
            "dst": w[8:24] + lines - 1,  # DMA line, EW and NL dst
            # EW operands (a is NL's src too) in LINE and COL mode
            **{f"{n}_lines": f(ew, n, w) + lines - 1 for n in "abc"},
            **{f"{n}_col": f(ew, n, w) + tc for n in "abc"}}
        v = {name: p.reg(value, at, f"{name}_last") for name, value in values.items()}

        # Stages 3 ..: lines / tcols, restoring division, a quotient bit per step.
        stage, rem, quo = 2, Const(0, 16), Cat()
        for b in range(16):
            w_at = p.at(w2, stage)
            t = Cat(f(ew, "lines", w_at)[15 - b], rem)
            ge = t >= f(ew, "tcols", w_at)
            rem, quo = Mux(ge, t - f(ew, "tcols", w_at), t)[:16], Cat(ge, quo)
            if (b + 1) % DIVIDE_BITS_PER_STAGE == 0 or b == 15:
                stage += 1
                rem, quo = p.reg(rem, stage, "remainder"), p.reg(quo, stage, "quotient")
        # Then the ROW operands' last lines (lines % tcols == 0 is checked: no rounding).
        w_at = p.at(w2, stage)
        row = {name: p.reg(f(ew, name, w_at) + ((quo - 1) >> c_log), stage + 1,
                           f"{name}_row_last") for name in "abc"}
        uneven = p.reg(rem != 0, stage + 1, "uneven")  # lines % tcols (BAD_FIELD)

        # The head: the comparisons with depth, the first failing check, the ranges.
        head = stage + 2
        assert head == self.decode_stages
        w, is_op = p.at(w2, at), {op: p.at(is2[op], at) for op in Opcode}
        v.update({f"{n}_row": row[n] for n in "abc"})
        beyond = {name: value >= cfg.depth for name, value in v.items()}

        def by_mode(name, table):  # an EW operand's last line (or its flag) by its mode
            mode = f(ew, f"{name}mode", w)
            return Mux(mode == OperandMode.LINE, table[f"{name}_lines"],
                       Mux(mode == OperandMode.COL, table[f"{name}_col"], table[f"{name}_row"]))

        dense = f(g, "ylayout", w) == YLayout.DENSE
        madd = f(ew, "op", w) == Op.MADD
        vector = is_op[sm] | is_op[ln]  # LAYERNORM has SOFTMAX's fields
        dma = is_op[ld] | is_op[st]
        out_of_range = (
            (dma & beyond["dst"])
            | (is_op[g] & (beyond["w"] | beyond["x"]
                           | Mux(dense, beyond["y_dense"], beyond["y_column"])))
            | (is_op[ew] & (beyond["dst"] | by_mode("a", beyond) | by_mode("b", beyond)
                            | (madd & by_mode("c", beyond))))
            | (is_op[nl] & (beyond["a_lines"] | beyond["dst"]))
            | (vector & (beyond["sm_src"] | beyond["sm_dst"])))
        checks = [(ErrorCode.UNKNOWN_OPCODE, ~p.at(known2, at)),
                  (ErrorCode.ZERO_LENGTH, p.at(zero2, at)),
                  (ErrorCode.BAD_FIELD, p.at(bad2, at) | (is_op[ew] & uneven)
                   | (vector & p.at(bad_stride, at))),
                  (ErrorCode.ADDRESS_RANGE, out_of_range)]
        code = Const(ErrorCode.NONE, 4)
        for err, cond in reversed(checks):  # the first failing check wins
            code = Mux(cond, err, code)

        compute = is_op[g] | is_op[ew] | is_op[nl] | vector
        src_last = Mux(is_op[g], v["w"], Mux(is_op[ew], by_mode("a", v),
                                             Mux(is_op[nl], v["a_lines"],
                                                 Mux(vector, v["sm_src"], v["dst"]))))
        y_last = Mux(dense, v["y_dense"], v["y_column"])
        dst_last = Mux(is_op[g], y_last, Mux(vector, v["sm_dst"], v["dst"]))
        # A valid instruction's lines are below depth (<= 65536): 16 bits hold them, and no
        # failing instruction dispatches. GEMV x and EW b share 40..55.
        reads = [(compute | is_op[st], Mux(is_op[st], w[8:24], w[24:40]), src_last),
                 (is_op[g] | is_op[ew], w[40:56], Mux(is_op[g], v["x"], by_mode("b", v))),
                 (is_op[ew] & madd, w[56:72], by_mode("c", v))]
        write = (compute | is_op[ld], w[8:24], dst_last)

        def keep(rng, name, width=16):
            valid, first, last = rng
            return (p.reg(valid, head, f"{name}_valid"), p.reg(first, head, f"{name}_first"),
                    p.reg(last[:width], head, f"{name}_last"))

        out = _Decoded()
        out.word = p.at(w2, head)
        out.failing = p.reg(Cat(cond for _, cond in checks).any(), head, "failing")
        out.code = p.reg(code, head, "code")
        ext_end = f(ld, "ext", w) + f(ld, "lines", w)  # DMA_LOAD's fields = DMA_STORE's
        out.ext_end, out.is_dma = p.reg(ext_end, head, "ext_end"), p.reg(dma, head, "is_dma")
        out.gemv_steps = p.at(w_tiles, head)
        out.gemv_kcs = p.reg((f(g, "k", w) + c - 1) >> c_log, head, "kcs")
        out.reads = [keep(rng, f"read{j}") for j, rng in enumerate(reads)]
        out.write = keep(write, "write")
        ext_range = (f(ld, "ext", w), ext_end - 1)
        out.dram_read = keep((is_op[ld], *ext_range), "dram_read", 32)
        out.dram_write = keep((is_op[st], *ext_range), "dram_write", 32)
        return out

    # --- datapath helpers ------------------------------------------------------------------

    def _grid(self, name, line, mode, chunk):
        """The ``R x C`` operand grid of a read line for an operand mode and run index."""
        cfg = self.config
        r, c = cfg.rows, cfg.cols
        elem = signed(ELEM_WIDTH)
        grid = data.ArrayLayout(data.ArrayLayout(elem, c), r)
        as_rows = data.View(grid, line)                                   # chunk of C: row
        as_cols = data.View(data.ArrayLayout(data.ArrayLayout(elem, r), c), line)  # chunk of R
        col_run = as_rows[chunk[:_log2(r)]] if r > 1 else as_rows[0]
        row_run = as_cols[chunk[:_log2(c)]]
        out = Signal(grid, name=name)
        return out, [out[i][j].eq(Mux(mode == OperandMode.LINE, as_rows[i][j],
                                      Mux(mode == OperandMode.COL, col_run[j], row_run[i])))
                     for i in range(r) for j in range(c)]

    # --- elaborate -------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        r, c, line = cfg.rows, cfg.cols, cfg.line
        r_log, c_log, l_log = _log2(r), _log2(c), _log2(line)

        m.submodules.program = program = Memory(shape=INSTRUCTION_BITS, depth=cfg.max_program,
                                                init=[])
        prog_wr, prog_rd = program.write_port(), program.read_port()
        m.submodules.spad = spad = Memory(shape=self.line_shape, depth=cfg.depth, init=[])
        # 3R1W: compute reads two lines, the store engine reads one; compute and the load
        # engine share the one write port (compute first). One write port is what lets Yosys
        # map the scratchpad to block RAM (a copy per read port, each a simple dual-port RAM
        # written by the write port).
        wr = spad.write_port(granularity=ELEM_WIDTH)
        rd0, rd1, rd_store = spad.read_port(), spad.read_port(), spad.read_port()
        m.submodules.pe_array = pe = self.pe_array
        for unit, block in self.units.items():
            m.submodules[unit.name.lower()] = block
        m.d.comb += [prog_wr.en.eq(self.prog_we & ~self.busy), prog_wr.addr.eq(self.prog_addr),
                     prog_wr.data.eq(self.prog_data), self.host_rdata.eq(rd0.data)]

        # --- sequencer state ---------------------------------------------------------------
        pc = Signal(range(cfg.max_program + 1))
        wait = Signal(range(max(2, cfg.issue_cycles)))
        code = Signal(4)
        m.d.comb += [self.pc.eq(pc), self.code.eq(code)]

        # --- the decoder runs ahead of the issue logic (the program has no branches): it
        # fetches from ``fpc`` and advances when its head (the instruction at ``pc``)
        # dispatches or is empty. It fills while idle, from word 0, so the first instruction is
        # decoded at ``start``; a program write or the end of a run empties it.
        fpc = Signal(range(cfg.max_program))
        advance, flush, stop = Signal(), Signal(), Signal()
        filled = [Signal(name=f"dec{s + 1}_valid") for s in range(self.decode_stages)]
        head_valid = filled[-1]
        dec = self._decoder(m, prog_rd.data, advance)
        m.d.comb += [prog_rd.addr.eq(fpc), prog_rd.en.eq(advance),
                     flush.eq((self.prog_we & ~self.busy) | stop)]
        with m.If(flush):
            m.d.sync += [fpc.eq(0), *(v.eq(0) for v in filled)]
        with m.Elif(advance):
            m.d.sync += [fpc.eq(Mux(fpc == cfg.max_program - 1, 0, fpc + 1)), filled[0].eq(1),
                         *(v.eq(u) for u, v in zip(filled, filled[1:]))]
        word = dec.word

        kind = Signal(Opcode)
        op = Signal(PEOp)
        linear = Signal()
        madd = Signal()
        shift = Signal(6)
        unit = Signal(2)
        modes = [Signal(2, name=f"{n}mode") for n in "abc"]
        bases = [Signal(16, name=f"{n}base") for n in "abc"]
        dst = Signal(16)
        tcols = Signal(16)
        steps = Signal(32)      # streaming cycles left
        phase = Signal()        # MADD: 0 reads a and b, 1 reads c
        i = Signal(32)          # line (EW) or tile (GEMV) index
        cb = Signal(16)         # column block (EW) / chunk (GEMV)
        rb = Signal(16)         # row block
        drain = Signal(range(max(self.drain.values()) + 1))
        ylayout = Signal()
        ycol = Signal(8)
        ystride = Signal(16)
        m_left = Signal(17)     # GEMV rows not yet written
        w_index = Signal(32)    # write side: line (EW/NL) or row block (GEMV)
        y_line = Signal(32)     # GEMV COLUMN: line of the next row block

        def fld(opcode, name):
            lsb, width = FIELDS[opcode][name]
            return word[lsb:lsb + width]

        # SOFTMAX and LAYERNORM (vector units): elements fed (sm_in), results written (sm_out).
        m.submodules.softmax = sm = self.softmax
        m.submodules.layernorm = ln = self.layernorm
        vec_ln = Signal()  # the vector instruction is LAYERNORM
        sm_in = Signal(16)      # element of the vector being fed
        sm_out = Signal(16)     # element of the vector being written
        sm_rows_in = Signal(17)   # vectors of the batch fed
        sm_rows_out = Signal(17)  # vectors of the batch written
        sm_feed = Signal()
        sm_primed = Signal()
        sm_written = Signal()
        # DMA: the DMA moves the bursts; its data beats go to and from this scratchpad.
        m.submodules.load_dma = ldma = self.load_dma
        m.submodules.store_dma = sdma = self.store_dma
        l_cmd, s_cmd = Signal(ldma.command_layout), Signal(sdma.command_layout)
        l_count, s_count = Signal(32), Signal(32)  # beats moved
        l_base, s_base = Signal(16), Signal(16)
        beats = cfg.dma_beats_per_line
        beat_log = _log2(beats)
        beat_width = cfg.dma_config.data_width
        line_shift = _log2(beats * cfg.dma_config.beat_bytes)
        m.d.comb += [ldma.cmd.payload.eq(l_cmd), sdma.cmd.payload.eq(s_cmd)]

        # Registered from the head while it waits (it cannot dispatch in its first cycle,
        # FETCH's): ``EXT_RANGE`` (the last check) and the interlock's comparisons. ``late_ok``:
        # they are the head's (it was there a cycle ago).
        late_ok, ext_bad = Signal(), Signal()
        m.d.sync += [late_ok.eq(head_valid & ~advance & ~flush),
                     ext_bad.eq(dec.is_dma & (dec.ext_end > self.ext_lines))]
        failing = Signal()
        failing_code = Signal(4)
        m.d.comb += [failing.eq(dec.failing | ext_bad),
                     failing_code.eq(Mux(dec.failing, dec.code, ErrorCode.EXT_RANGE))]

        issue = Signal()  # a read step this cycle
        m.d.sync += self.cycles.eq(self.cycles + self.busy)

        # --- engines: each runs one instruction; ``*_last`` marks its last cycle, in which
        # the next instruction for it (or one waiting on it) may already dispatch.
        c_busy, c_last, l_busy, l_last, s_busy, s_last = (
            Signal(name=n) for n in ("c_busy", "c_last", "l_busy", "l_last", "s_busy",
                                     "s_last"))
        c_free, l_free, s_free = ~c_busy | c_last, ~l_busy | l_last, ~s_busy | s_last
        all_free = c_free & l_free & s_free
        dispatch_c, dispatch_l, dispatch_s = Signal(), Signal(), Signal()
        c_vector = Signal()  # the compute instruction dispatched is a SOFTMAX or LAYERNORM

        with m.FSM(name="compute"):
            def start():
                with m.If(dispatch_c):
                    m.next = "VECTOR"
                    with m.If(~c_vector):
                        m.next = "STREAM"

            with m.State("IDLE"):
                start()
            with m.State("STREAM"):
                m.d.comb += [c_busy.eq(1), issue.eq(1)]
                m.d.sync += steps.eq(steps - 1)
                with m.If(steps == 1):
                    m.next = "DRAIN"
            with m.State("VECTOR"):  # steps: n, tcols: more; feed (more + 1) * n elements
                # while writing the results
                m.d.comb += [c_busy.eq(1), sm_feed.eq(1)]
                with m.If(sm_written & (sm_out == steps - 1) & (sm_rows_out == tcols)):
                    m.d.comb += c_last.eq(1)
                    m.next = "IDLE"
                    start()
            with m.State("DRAIN"):
                m.d.comb += c_busy.eq(1)
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.d.comb += c_last.eq(1)
                    m.next = "IDLE"
                    start()

        for name, dma, busy, last, dispatch in (("load", ldma, l_busy, l_last, dispatch_l),
                                                ("store", sdma, s_busy, s_last, dispatch_s)):
            with m.FSM(name=name):
                with m.State("IDLE"):
                    with m.If(dispatch):
                        m.next = "CMD"
                with m.State("CMD"):
                    m.d.comb += [busy.eq(1), dma.cmd.valid.eq(1)]
                    with m.If(dma.cmd.ready):
                        m.next = "WAIT"
                with m.State("WAIT"):
                    m.d.comb += [busy.eq(1), dma.done.ready.eq(1)]
                    with m.If(dma.done.valid):  # an AXI error response is not an ISA error
                        m.d.comb += last.eq(1)
                        m.next = "IDLE"
                        with m.If(dispatch):
                            m.next = "CMD"

        # --- the interlock: the ranges of each engine's instruction in flight --------------
        def slot(name, dram_width=32):
            return {"reads": [(Signal(name=f"{name}_r{j}_v"), Signal(16, name=f"{name}_r{j}_f"),
                               Signal(16, name=f"{name}_r{j}_l")) for j in range(3)],
                    "write": (Signal(name=f"{name}_w_v"), Signal(16, name=f"{name}_w_f"),
                              Signal(16, name=f"{name}_w_l")),
                    "dram_read": (Signal(name=f"{name}_dr_v"), Signal(dram_width),
                                  Signal(dram_width)),
                    "dram_write": (Signal(name=f"{name}_dw_v"), Signal(dram_width),
                                   Signal(dram_width))}

        reads, write, dram_read, dram_write = dec.reads, dec.write, dec.dram_read, dec.dram_write
        slots = {"c": slot("c"), "l": slot("l"), "s": slot("s")}

        def overlap(a, b):
            return a[0] & b[0] & (a[1] <= b[2]) & (b[1] <= a[2])

        def conflict(old):
            new_spad = [*reads, write]
            return Cat(
                *(overlap(old["write"], x) for x in new_spad),
                *(overlap(x, write) for x in old["reads"]),
                overlap(old["dram_write"], dram_read), overlap(old["dram_write"], dram_write),
                overlap(old["dram_read"], dram_write)).any()

        hazard = Signal()
        if cfg.decoupled:  # serial: every engine is idle (or in its last cycle) at a dispatch,
            # so nothing can conflict and the scoreboard is left out. The slots change only at
            # a dispatch, so the head's comparisons with them hold while it waits.
            conflicts = {name: Signal(name=f"{name}_conflict") for name in slots}
            m.d.sync += [conflicts[name].eq(conflict(slots[name])) for name in slots]
            m.d.comb += hazard.eq((c_busy & ~c_last & conflicts["c"])
                                  | (l_busy & ~l_last & conflicts["l"])
                                  | (s_busy & ~s_last & conflicts["s"]))

        # --- issue: fetch, decode and check, wait for the engine and the interlock ----------
        opcode = word[:4]
        is_load, is_store = opcode == Opcode.DMA_LOAD, opcode == Opcode.DMA_STORE
        engine_free = Mux(is_load, l_free, Mux(is_store, s_free, c_free))
        dispatch = Signal()
        m.d.comb += advance.eq(dispatch | ~head_valid)
        with m.FSM(name="issue"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(0), self.done.eq(0), self.error.eq(0), code.eq(0),
                                 self.cycles.eq(0), wait.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += self.busy.eq(1)
                with m.If(pc >= Mux(self.prog_len < cfg.max_program, self.prog_len,
                                    cfg.max_program)):
                    with m.If(all_free):  # the instructions before it complete first
                        m.d.comb += stop.eq(1)
                        m.d.sync += [self.error.eq(1), code.eq(ErrorCode.PC_RANGE)]
                        m.next = "IDLE"
                with m.Elif(wait == cfg.issue_cycles - 2):
                    m.next = "DECODE"
                with m.Else():
                    m.d.sync += wait.eq(wait + 1)
            with m.State("DECODE"):
                m.d.comb += self.busy.eq(1)
                with m.If(~late_ok):  # started before the decoder filled: wait for it
                    pass
                with m.Elif(failing):
                    with m.If(all_free):
                        m.d.comb += stop.eq(1)
                        m.d.sync += [self.error.eq(1), code.eq(failing_code)]
                        m.next = "IDLE"
                with m.Elif(opcode == Opcode.HALT):
                    with m.If(all_free):
                        m.d.comb += stop.eq(1)
                        m.d.sync += self.done.eq(1)
                        m.next = "IDLE"
                with m.Elif(engine_free & ~hazard):
                    m.d.comb += dispatch.eq(1)
                    m.d.sync += [pc.eq(pc + 1), wait.eq(0)]
                    m.next = "FETCH" if cfg.decoupled else "WAIT"
            with m.State("WAIT"):  # the serial machine: the next fetch after the last cycle
                m.d.comb += self.busy.eq(1)
                with m.If(all_free):
                    m.next = "FETCH"
        m.d.comb += [dispatch_c.eq(dispatch & ~is_load & ~is_store),
                     dispatch_l.eq(dispatch & is_load), dispatch_s.eq(dispatch & is_store),
                     c_vector.eq((opcode == Opcode.SOFTMAX) | (opcode == Opcode.LAYERNORM))]

        # --- read side: addresses of this step, shaping info for the next cycle ------------
        def address(n):
            mode, base = modes[n], bases[n]
            return Mux(mode == OperandMode.LINE, base + i,
                       Mux(mode == OperandMode.COL, base + (cb >> r_log), base + (rb >> c_log)))

        def chunk(n):
            return Mux(modes[n] == OperandMode.COL, cb, rb)

        second = madd & phase  # MADD's second step reads c on port 0
        is_nl = kind == Opcode.NL
        # SOFTMAX / LAYERNORM batches: bases[0] is the line of the vector being fed, bases[1]
        # sstride, dst the line of the vector being written, bases[2] dstride, tcols more.
        sm_take = (sm.i.valid & sm.i.ready) | (ln.i.valid & ln.i.ready)
        sm_wrap = sm_take & (sm_in == steps - 1)  # the vector's last element is taken
        sm_next = Mux(sm_wrap, 0, sm_in + sm_take)
        sm_base = Mux(sm_wrap, bases[0] + bases[1], bases[0])
        w_take = self.axi.wvalid & self.axi.wready
        s_next = s_count + w_take
        m.d.comb += [
            rd0.addr.eq(Mux(~self.busy, self.host_addr,
                            Mux((kind == Opcode.SOFTMAX) | (kind == Opcode.LAYERNORM),
                                sm_base + (sm_next >> l_log),
                                Mux(is_nl, bases[0] + (i >> _log2(cfg.nl_passes)
                                                       if cfg.nl_passes > 1 else i),
                                    Mux(second, address(2), address(0)))))),
            rd1.addr.eq(address(1)),
            rd1.en.eq(~second),
            # DMA_STORE: the line of the beat the W channel presents next.
            rd_store.addr.eq(s_base + (s_next >> beat_log)),
        ]
        got = Signal()              # read data of a step arrives this cycle
        got_last = Signal()         # ... of a GEMV row block's last chunk
        got_second = Signal()
        got_mode = [Signal(2, name=f"got_mode{p}") for p in range(2)]
        got_chunk = [Signal(16, name=f"got_chunk{p}") for p in range(2)]
        m.d.sync += [got.eq(issue), got_last.eq(cb == tcols - 1), got_second.eq(second),
                     got_mode[0].eq(Mux(second, modes[2], modes[0])), got_mode[1].eq(modes[1]),
                     got_chunk[0].eq(Mux(second, chunk(2), chunk(0))), got_chunk[1].eq(chunk(1))]
        with m.If(issue):
            advance_line = ~madd | phase
            m.d.sync += phase.eq(madd & ~phase)
            with m.If(advance_line):
                m.d.sync += i.eq(i + 1)
                with m.If(cb == tcols - 1):
                    m.d.sync += [cb.eq(0), rb.eq(rb + 1)]
                with m.Else():
                    m.d.sync += cb.eq(cb + 1)

        grid0, shape0 = self._grid("grid0", rd0.data, got_mode[0], got_chunk[0])
        grid1, shape1 = self._grid("grid1", rd1.data, got_mode[1], got_chunk[1])
        m.d.comb += shape0 + shape1
        hold_a, hold_b = Signal.like(grid0, name="hold_a"), Signal.like(grid1, name="hold_b")
        with m.If(got & ~got_second):
            m.d.sync += [hold_a.eq(grid0), hold_b.eq(grid1)]
        pi = pe.i.payload
        m.d.comb += [
            pe.i.valid.eq(got & ((kind == Opcode.EW) | (kind == Opcode.GEMV))
                          & (~madd | got_second)),
            pi.op.eq(op), pi.mode.eq(Mux(linear, ArrayMode.LINEAR, ArrayMode.ELEMENTWISE)),
            pi.last.eq(~linear | got_last),
            pi.a.eq(Mux(madd, hold_a, grid0)), pi.b.eq(Mux(madd, hold_b, grid1)),
            pi.c.eq(Mux(madd, grid0, 0)),
        ]

        # --- requantizer: one register of L lanes, the first R also taking the accumulators
        # (a block of their width; the others take the 32-bit PE results). `shift` is written
        # when an instruction starts, cycles before its first result: it leads, as the
        # requantizer's shift decode register needs. ------------------------------------
        po = pe.o.payload
        rq = Signal(data.ArrayLayout(signed(ELEM_WIDTH), line))
        rq_valid = Signal()
        m.d.sync += rq_valid.eq(pe.o.valid)
        elem_width = cfg.pe_array_config.output_width
        wide_width = max(elem_width, cfg.pe_array_config.accumulator_width)
        rq_units = [Requantizer(lanes=r, width=wide_width, out_width=ELEM_WIDTH,
                                rounding=cfg.rounding),
                    Requantizer(lanes=line - r, width=elem_width, out_width=ELEM_WIDTH,
                                rounding=cfg.rounding)]
        m.submodules.rq_acc, m.submodules.rq_elem = rq_units
        for e in range(line):
            value = po.elem[e // c][e % c]
            block, k = (rq_units[0], e) if e < r else (rq_units[1], e - r)
            if e < r:
                value = Mux(po.mode == ArrayMode.LINEAR, po.acc[e], value)
            m.d.comb += [block.i[k].eq(value), rq[e].eq(block.o[k])]
        m.d.comb += [block.shift.eq(shift) for block in rq_units]

        # --- nonlinear units: free running, a valid bit beside each --------------------------
        lanes, passes = cfg.nl_unit_lanes, cfg.nl_passes
        p_log = _log2(passes)
        nl_in = rd0.data
        if passes > 1:  # the chunk of the line read this cycle
            got_nl_chunk = Signal(p_log)
            m.d.sync += got_nl_chunk.eq(i[:p_log])
            nl_in = rd0.data.word_select(got_nl_chunk, lanes * ELEM_WIDTH)
        nl_out = Signal(lanes * ELEM_WIDTH)
        nl_valid = Signal()
        for u, block in self.units.items():
            m.d.comb += [block.en.eq(1), block.i.eq(nl_in)]
            valid = got & is_nl & (unit == u)
            for stage in range(block.latency):
                nxt = Signal(name=f"{u.name.lower()}_valid{stage + 1}")
                m.d.sync += nxt.eq(valid)
                valid = nxt
            with m.If(valid):
                m.d.comb += nl_valid.eq(1)
                for e in range(lanes):  # exp's unsigned lanes are zero extended
                    m.d.comb += nl_out.word_select(e, ELEM_WIDTH).eq(block.o[e])

        # --- softmax and LayerNorm: one element per cycle in, results through an output
        # register -------------------------------------------------------------------------
        feed = sm_feed & (sm_rows_in <= tcols) & sm_primed
        element = rd0.data.word_select(sm_in[:l_log] if l_log else 0, ELEM_WIDTH)
        for vunit, selected in ((sm, ~vec_ln), (ln, vec_ln)):
            m.d.comb += [
                vunit.i.valid.eq(feed & selected),
                vunit.i.payload.x.eq(element),
                vunit.i.payload.last.eq(sm_in == steps - 1),
                vunit.o.ready.eq(1),
            ]
        sm_p = Signal(ELEM_WIDTH)
        m.d.sync += sm_in.eq(sm_next)
        with m.If(sm_wrap):
            m.d.sync += [bases[0].eq(sm_base), sm_rows_in.eq(sm_rows_in + 1)]
        # the first line arrives a cycle after the start (also of a vector op right after one)
        m.d.sync += sm_primed.eq(sm_feed & ~c_last)
        m.d.sync += [sm_written.eq((sm.o.valid | ln.o.valid) & sm_feed),
                     sm_p.eq(Mux(vec_ln, ln.o.payload.y, sm.o.payload.p))]
        with m.If(sm_written):
            m.d.sync += sm_out.eq(sm_out + 1)
            with m.If(sm_out == steps - 1):  # the vector's last result: on to the next
                m.d.sync += [sm_out.eq(0), dst.eq(dst + bases[2]),
                             sm_rows_out.eq(sm_rows_out + 1)]
        sm_en = Signal(line)
        m.d.comb += sm_en.eq(1 << (sm_out[:l_log] if l_log else 0))

        # The compute engine writes the scratchpad this cycle (a load's beat waits).
        c_write = Signal()
        m.d.comb += c_write.eq(self.busy & (sm_written | nl_valid | rq_valid))

        # --- DMA: AXI passes through, but W data comes from (and R data goes to) the
        # scratchpad; a beat is 1 / beats of a line.
        # The load engine owns the read channels (AR, R), the store engine the write
        # channels (AW, W, B); each DMA's other channels stay idle.
        for name, member in self.axi.signature.members.items():
            theirs = getattr((ldma if name.startswith(("ar", "r")) else sdma).axi, name)
            ours = getattr(self.axi, name)
            if name == "wdata":
                beat = s_count[:beat_log] if beat_log else 0
                m.d.comb += ours.eq(rd_store.data.word_select(beat, beat_width))
            elif name == "rvalid":  # an R beat waits while compute holds the write port
                m.d.comb += theirs.eq(ours & ~c_write)
            elif name == "rready":
                m.d.comb += ours.eq(theirs & ~c_write)
            elif member.flow == Out:
                m.d.comb += ours.eq(theirs)
            else:
                m.d.comb += theirs.eq(ours)
        r_take = self.axi.rvalid & self.axi.rready
        with m.If(w_take):
            m.d.sync += s_count.eq(s_count + 1)
        with m.If(r_take):
            m.d.sync += l_count.eq(l_count + 1)
        beat_elems = beat_width // ELEM_WIDTH
        beat_en = Signal(line)
        m.d.comb += beat_en.eq(((1 << beat_elems) - 1) << (
            (l_count[:beat_log] * beat_elems) if beat_log else 0))

        # --- write port ----------------------------------------------------------------------
        rq_bits = Value.cast(rq)
        dense_chunk = w_index[:max(1, c_log)] if c > 1 else 0
        dense_en = Cat((e // r == dense_chunk) & ((e % r) < m_left) for e in range(line))
        column_en = Cat((e % c == ycol) & ((e // c) < m_left) for e in range(line))
        dense_data = Cat(rq[e % r] for e in range(line))
        column_data = Cat(rq[e // c] for e in range(line))
        all_en = Const((1 << line) - 1, line)
        with m.If(~self.busy):
            m.d.comb += [wr.en.eq(Mux(self.host_we, all_en, 0)), wr.addr.eq(self.host_addr),
                         wr.data.eq(self.host_wdata)]
        with m.Elif(sm_written):
            m.d.comb += [wr.en.eq(sm_en), wr.addr.eq(dst + (sm_out >> l_log)),
                         wr.data.eq(Cat([sm_p] * line))]
        with m.Elif(nl_valid):
            if passes == 1:  # a line per cycle
                m.d.comb += [wr.en.eq(all_en), wr.addr.eq(dst + w_index), wr.data.eq(nl_out)]
            else:  # chunk w_index % passes of line w_index // passes
                chunk = w_index[:p_log]
                m.d.comb += [wr.en.eq(Cat((e // lanes == chunk) for e in range(line))),
                             wr.addr.eq(dst + (w_index >> p_log)),
                             wr.data.eq(Cat([nl_out] * passes))]
            m.d.sync += w_index.eq(w_index + 1)
        with m.Elif(rq_valid & ~linear):
            m.d.comb += [wr.en.eq(all_en), wr.addr.eq(dst + w_index), wr.data.eq(rq_bits)]
            m.d.sync += w_index.eq(w_index + 1)
        with m.Elif(rq_valid):
            with m.If(ylayout == YLayout.DENSE):
                m.d.comb += [wr.en.eq(dense_en), wr.addr.eq(dst + (w_index >> c_log)),
                             wr.data.eq(dense_data)]
            with m.Else():
                m.d.comb += [wr.en.eq(column_en), wr.addr.eq(y_line), wr.data.eq(column_data)]
            m.d.sync += [w_index.eq(w_index + 1), y_line.eq(y_line + ystride),
                         m_left.eq(Mux(m_left > r, m_left - r, 0))]
        with m.Elif(r_take):  # a load's R beat, in a cycle without a compute write
            m.d.comb += [wr.en.eq(beat_en), wr.addr.eq(l_base + (l_count >> beat_log)),
                         wr.data.eq(Cat([self.axi.rdata] * beats))]

        # --- dispatch: an engine takes its instruction's fields (last in program order: an
        # engine's final write in its last cycle updates some of these registers too) --------
        ew, g, nl, d = Opcode.EW, Opcode.GEMV, Opcode.NL, Opcode.DMA_LOAD
        is_gemv = opcode == g
        kcs = dec.gemv_kcs
        ew_madd = fld(ew, "op") == Op.MADD
        with m.If(dispatch_c):
            m.d.sync += [
                kind.eq(opcode), phase.eq(0), i.eq(0), cb.eq(0), rb.eq(0),
                # a dense GEMV writes from row block ycol of its first line on
                w_index.eq(Mux(is_gemv & (fld(g, "ylayout") == YLayout.DENSE),
                               fld(g, "ycol"), 0)),
                linear.eq(is_gemv), madd.eq(~is_gemv & ew_madd),
                op.eq(Mux(is_gemv, Op.MUL, fld(ew, "op"))),
                shift.eq(fld(ew, "shift")),  # GEMV and EW share the field
                unit.eq(fld(nl, "unit")),
                modes[0].eq(Mux(is_gemv, OperandMode.LINE, fld(ew, "amode"))),
                modes[1].eq(Mux(is_gemv, OperandMode.COL, fld(ew, "bmode"))),
                modes[2].eq(fld(ew, "cmode")),
                bases[0].eq(Mux(is_gemv, fld(g, "w"), fld(ew, "a"))),
                bases[1].eq(Mux(is_gemv, fld(g, "x"), fld(ew, "b"))),
                bases[2].eq(fld(ew, "c")),
                dst.eq(fld(ew, "dst")),  # also GEMV y, NL dst
                tcols.eq(Mux(is_gemv, kcs, fld(ew, "tcols"))),
                ylayout.eq(fld(g, "ylayout")), ycol.eq(fld(g, "ycol")),
                ystride.eq(fld(g, "ystride")), m_left.eq(fld(g, "m")),
                y_line.eq(fld(g, "y")),
            ]
            with m.If(is_gemv):
                m.d.sync += [steps.eq(dec.gemv_steps), drain.eq(self.drain["pe"] - 1)]
            with m.Elif(opcode == ew):
                m.d.sync += [steps.eq(Mux(ew_madd, fld(ew, "lines") << 1, fld(ew, "lines"))),
                             drain.eq(self.drain["pe"] - 1)]
            with m.Elif(opcode == nl):
                with m.Switch(fld(nl, "unit")):
                    for u in self.units:
                        with m.Case(u):
                            m.d.sync += drain.eq(self.drain[u.name] - 1)
                if cfg.nl_passes == 1:
                    m.d.sync += steps.eq(fld(nl, "lines"))
                else:
                    m.d.sync += steps.eq(fld(nl, "lines") << _log2(cfg.nl_passes))
            with m.Else():  # SOFTMAX, LAYERNORM
                m.d.sync += [steps.eq(fld(Opcode.SOFTMAX, "n")), sm_in.eq(0), sm_out.eq(0),
                             sm_rows_in.eq(0), sm_rows_out.eq(0),
                             vec_ln.eq(opcode == Opcode.LAYERNORM)]
        for dispatch_e, cmd, count, base in ((dispatch_l, l_cmd, l_count, l_base),
                                             (dispatch_s, s_cmd, s_count, s_base)):
            with m.If(dispatch_e):
                m.d.sync += [
                    count.eq(0), base.eq(fld(d, "line")),
                    cmd.write.eq(opcode == Opcode.DMA_STORE),
                    cmd.ext_addr.eq(fld(d, "ext") << line_shift),
                    cmd.local_addr.eq(fld(d, "line") << beat_log),
                    cmd.length.eq(fld(d, "lines") << line_shift),
                ]
        for name, dispatch_e in (("c", dispatch_c), ("l", dispatch_l), ("s", dispatch_s)):
            sl = slots[name]
            with m.If(dispatch_e):
                for ours, new in [*zip(sl["reads"], reads), (sl["write"], write),
                                  (sl["dram_read"], dram_read), (sl["dram_write"], dram_write)]:
                    m.d.sync += [a.eq(b) for a, b in zip(ours, new)]
        return m

