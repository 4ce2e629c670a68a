"""LayerNorm (without affine) over vectors streamed one element per cycle, with a banked buffer.

Parameters and the bit-exact model are in ``golden.nonlinear.layernorm``, whose docstring gives
the arithmetic. Three parts run concurrently, as in the softmax:

1. **Input pass**: each accepted element is written to the bank being filled; a register stage
   squares it, then ``S += x`` and ``Q += x*x``.
2. **Statistics**: at the end of a vector, ``D = n*Q - S*S`` by a bit-serial multiply (a bit
   of ``n`` and a bit of ``|S|`` per cycle, no DSP), then the range reduction (a priority
   encoder and a shift, a register each), then ``1/sqrt`` on a chain of PE lanes: the table's
   line (MUL, SUB) and one Newton step (MUL, MUL, SUB, MUL). The chain's operands are held for
   the whole computation, so it needs no delay lines. The bank is then marked ready.
3. **Output pass**: reads the ready bank; per element ``n*x``, ``- S``, ``* R`` on PE lanes
   and a rounding shift into the output format; this pipeline stalls as a whole on
   ``o.ready``.

A vector's last element is accepted only when the previous vector's sums have reached the
statistics engine and the engine is free.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.nonlinear.layernorm import (
    MANT_FRAC,
    SEG_BITS,
    Y_FRAC,
    LayerNormConfig,
    rsqrt_table,
)

from ..arith import saturate, shift_right_rounded
from ..config import configure
from ..pe import PEOp, add_pe, pe_latency
from ..pipeline import delay

__all__ = ["LayerNorm"]


class LayerNorm(wiring.Component):
    """LayerNorm over vectors streamed one element per cycle, ended by ``last``.

    Parameters
    ----------
    config : golden.nonlinear.layernorm.LayerNormConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        Cycles from accepting a vector's last element to its first output, with no stall.
    input_layout, output_layout : data.StructLayout
    state : dict
        After elaboration, the control registers (the banks' free and ready bits and
        lengths, the fill and output pointers, the pass-1 tags, the statistics engine's
        progress, the pass-2 valid bits), for the formal invariants in ``sim.contracts``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"x": signed(in_width), "last": 1})))
    o : Out(stream.Signature(StructLayout({"y": signed(out_width), "last": 1})))
    """

    def __init__(self, config: LayerNormConfig | None = None, **params):
        self.config = cfg = configure(self, LayerNormConfig, config, params)
        p = pe_latency(cfg.newton_pe)
        self.rsqrt_latency = 6 * p  # line: MUL, SUB; Newton: MUL, MUL, SUB, MUL
        # Square register, hand-over to the engine, the serial multiply, two reduction
        # registers, the PE chain and the register taking its result, the bank's ready
        # register; then the output pass: read, three PEs, output register.
        self.latency = (1 + 1 + cfg.multiply_steps + 2 + self.rsqrt_latency + 1
                        + 1 + 3 * p + 1)
        self.input_layout = data.StructLayout({"x": signed(cfg.in_width), "last": 1})
        self.output_layout = data.StructLayout({"y": signed(cfg.out_width), "last": 1})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        depth, banks = cfg.max_len, cfg.banks
        m.submodules.buffer = buffer = Memory(shape=signed(cfg.in_width), depth=banks * depth,
                                              init=[])
        write, read = buffer.write_port(), buffer.read_port()

        sum_shape = signed(cfg.sum_width)
        len_shape = unsigned(cfg.len_width)
        amount_shape = unsigned((Y_FRAC + cfg.max_e).bit_length())
        free = Signal(banks, init=(1 << banks) - 1)
        ready = Signal(banks)
        bank_len = Array(Signal(len_shape, name=f"bank{b}_len") for b in range(banks))
        bank_sum = Array(Signal(sum_shape, name=f"bank{b}_sum") for b in range(banks))
        bank_r = Array(Signal(Y_FRAC + 1, name=f"bank{b}_r") for b in range(banks))
        bank_amount = Array(Signal(amount_shape, name=f"bank{b}_amount") for b in range(banks))

        def next_bank(bank):
            return Mux(bank == banks - 1, 0, bank + 1)

        # --- Pass 1: buffer, then (a register later) the sums ----------------------------------
        in_bank = Signal(range(banks))
        count = Signal(range(depth + 1))
        pending = Signal()  # a vector ended; its sums have not reached the engine yet
        busy = Signal()     # the statistics engine works on a vector
        x, first = self.i.payload.x, count == 0
        ends = self.i.payload.last | (count == depth - 1)
        bank_open = Mux(first, free.bit_select(in_bank, 1), 1)
        m.d.comb += self.i.ready.eq(bank_open & ~(ends & (pending | busy)))
        accepted = self.i.valid & self.i.ready
        m.d.comb += [write.addr.eq(in_bank * depth + count), write.data.eq(x),
                     write.en.eq(accepted)]
        with m.If(accepted):
            m.d.sync += count.eq(count + 1)
            with m.If(first):
                m.d.sync += free.bit_select(in_bank, 1).eq(0)
            with m.If(ends):
                m.d.sync += [count.eq(0), in_bank.eq(next_bank(in_bank)), pending.eq(1),
                             bank_len[in_bank].eq(count + 1)]

        tag = Signal(data.StructLayout({"valid": 1, "first": 1, "ends": 1, "bank": range(banks),
                                        "n": len_shape, "x": signed(cfg.in_width),
                                        "square": unsigned(2 * cfg.in_width - 1)}))
        m.d.sync += [tag.valid.eq(accepted), tag.first.eq(first), tag.ends.eq(ends),
                     tag.bank.eq(in_bank), tag.n.eq(count + 1), tag.x.eq(x),
                     tag.square.eq(x * x)]
        total = Signal(sum_shape)
        squares = Signal(cfg.square_sum_width)
        new_total = Mux(tag.first, tag.x, total + tag.x)
        new_squares = Mux(tag.first, tag.square, squares + tag.square)

        # --- Statistics: D = n*Q - S*S, bit-serially -------------------------------------------
        steps = cfg.multiply_steps
        d_shape = signed(cfg.d_width + 2)
        acc = Signal(d_shape)
        q_shifted = Signal(cfg.d_width)   # Q << step
        s_shifted = Signal(cfg.d_width)   # |S| << step
        n_bits = Signal(len_shape)        # n >> step
        s_bits = Signal(cfg.sum_width)    # |S| >> step
        step = Signal(range(steps + 1))
        engine_bank = Signal(range(banks))
        phase = Signal(range(4))          # 0 multiply, 1 msb, 2 reduce, 3 rsqrt chain
        chain = Signal(range(self.rsqrt_latency + 1))
        with m.If(tag.valid):
            m.d.sync += [total.eq(new_total), squares.eq(new_squares)]
            with m.If(tag.ends):  # hand the sums to the engine
                magnitude = Mux(new_total < 0, -new_total, new_total)
                m.d.sync += [pending.eq(0), busy.eq(1), engine_bank.eq(tag.bank),
                             bank_sum[tag.bank].eq(new_total), acc.eq(0), step.eq(0),
                             phase.eq(0), chain.eq(0), q_shifted.eq(new_squares),
                             s_shifted.eq(magnitude), n_bits.eq(tag.n), s_bits.eq(magnitude)]

        d = Signal(cfg.d_width)
        msb = Signal(range(cfg.d_width))
        u = Signal(MANT_FRAC + 2)
        e = Signal(range(cfg.max_e + 1))
        final = acc[:cfg.d_width]
        top = Signal(range(cfg.d_width))  # a priority encoder: the highest set bit wins
        for bit in range(cfg.d_width):
            with m.If(final[bit]):
                m.d.comb += top.eq(bit)
        with m.If(busy):
            with m.Switch(phase):
                with m.Case(0):
                    add = Mux(n_bits[0], q_shifted, 0)
                    sub = Mux(s_bits[0], s_shifted, 0)
                    m.d.sync += [acc.eq(acc + add - sub), q_shifted.eq(q_shifted << 1),
                                 s_shifted.eq(s_shifted << 1), n_bits.eq(n_bits >> 1),
                                 s_bits.eq(s_bits >> 1), step.eq(step + 1)]
                    with m.If(step == steps - 1):
                        m.d.sync += phase.eq(1)
                with m.Case(1):  # D (0 taken as 1) and its most significant bit
                    m.d.sync += [d.eq(Mux(final == 0, 1, final)), msb.eq(top), phase.eq(2)]
                with m.Case(2):  # U = D * 2**F / 4**e
                    half = msb >> 1
                    m.d.sync += [u.eq(Cat(Const(0, MANT_FRAC), d) >> (half << 1)),
                                 e.eq(half), phase.eq(3)]
                with m.Case(3):
                    m.d.sync += chain.eq(chain + 1)

        # --- 1/sqrt(u): the table's line and one Newton step on PE lanes -----------------------
        c0_rom, c1_rom = rsqrt_table()
        local = MANT_FRAC - SEG_BITS
        segment = Signal(range(len(c0_rom)))
        m.d.comb += segment.eq((u >> local) - (1 << SEG_BITS))
        c0 = Array(Const(v, Y_FRAC + 2) for v in c0_rom)[segment]
        c1 = Array(Const(v, cfg.line_pe.in_width) for v in c1_rom)[segment]
        t = u[:local]
        line_pe, newton = cfg.line_pe, cfg.newton_pe
        slope = add_pe(m, "line_mul", line_pe, en=1, op=PEOp.MUL, a=c1, b=t)
        y0 = add_pe(m, "line_sub", newton, en=1, op=PEOp.SUB, a=c0, b=slope >> local)
        square = add_pe(m, "newton_square", newton, en=1, op=PEOp.MUL, a=y0, b=y0)
        product = add_pe(m, "newton_scale", newton, en=1, op=PEOp.MUL, a=u,
                         b=square >> Y_FRAC)
        h = add_pe(m, "newton_sub", newton, en=1, op=PEOp.SUB, a=3 << Y_FRAC,
                   b=product >> MANT_FRAC)
        y1 = add_pe(m, "newton_mul", newton, en=1, op=PEOp.MUL, a=y0, b=h)
        with m.If(busy & (phase == 3) & (chain == self.rsqrt_latency)):
            m.d.sync += [busy.eq(0), ready.bit_select(engine_bank, 1).eq(1),
                         bank_r[engine_bank].eq(y1 >> (Y_FRAC + 1)),
                         bank_amount[engine_bank].eq(Y_FRAC + e - cfg.out_frac)]

        # --- Pass 2: output, one global stall enable ------------------------------------------
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        out_bank = Signal(range(banks))
        index = Signal(range(depth))
        issue = ready.bit_select(out_bank, 1) & advance
        final = index == bank_len[out_bank] - 1
        m.d.comb += [read.addr.eq(out_bank * depth + index), read.en.eq(advance)]
        with m.If(issue):
            m.d.sync += index.eq(index + 1)
            with m.If(final):
                m.d.sync += [index.eq(0), out_bank.eq(next_bank(out_bank)),
                             ready.bit_select(out_bank, 1).eq(0),
                             free.bit_select(out_bank, 1).eq(1)]
        # What an element needs later travels with it: its vector's n, S, R and shift.
        stage1 = Signal(data.StructLayout({"valid": 1, "last": 1, "n": len_shape,
                                           "sum": sum_shape, "r": Y_FRAC + 1,
                                           "amount": amount_shape}))
        with m.If(advance):
            m.d.sync += [stage1.valid.eq(issue), stage1.last.eq(final),
                         stage1.n.eq(bank_len[out_bank]), stage1.sum.eq(bank_sum[out_bank]),
                         stage1.r.eq(bank_r[out_bank]),
                         stage1.amount.eq(bank_amount[out_bank])]
        p = pe_latency(cfg.scale_pe)
        nx = add_pe(m, "scale", cfg.scale_pe, en=advance, op=PEOp.MUL, a=read.data,
                    b=stage1.n)
        pass2 = [stage1]
        carried = delay(m, stage1, p, en=advance, name="scale", taps=pass2)
        centered = add_pe(m, "center", cfg.center_pe, en=advance, op=PEOp.SUB, a=nx,
                          b=carried.sum)
        carried = delay(m, carried, pe_latency(cfg.center_pe), en=advance, name="center",
                        taps=pass2)
        normed = add_pe(m, "norm", cfg.norm_pe, en=advance, op=PEOp.MUL, a=centered,
                        b=carried.r)
        carried = delay(m, carried, pe_latency(cfg.norm_pe), en=advance, name="norm",
                        taps=pass2)
        scaled = shift_right_rounded(normed, carried.amount, cfg.rounding)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(carried.valid),
                self.o.payload.last.eq(carried.last),
                self.o.payload.y.eq(saturate(scaled, signed(cfg.out_width))),
            ]
        # The control registers, for the formal proofs' invariants (sim/contracts.py). The
        # engine's cycles since it took a vector: the multiply's steps, the two reduction
        # phases, then the chain's count (0 before phase 3).
        self.state = {"free": free, "ready": ready, "bank_len": bank_len, "in_bank": in_bank,
                      "count": count, "pending": pending, "pass1": [tag],
                      "engine": {"busy": busy, "bank": engine_bank,
                                 "elapsed": Mux(phase == 0, step, steps + phase - 1 + chain),
                                 "cycles": steps + 2 + self.rsqrt_latency + 1,
                                 "phase": phase, "step": step, "chain": chain},
                      "out_bank": out_bank, "index": index,
                      "pass2": [*(stage.valid for stage in pass2), self.o.valid]}
        return m
