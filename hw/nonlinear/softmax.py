"""Single-pass softmax with an online normalizer, a reciprocal, and a two-bank input buffer.

Parameters and the bit-exact model are in ``golden.nonlinear.softmax``, whose docstring gives
the arithmetic. The hardware has three parts that run concurrently:

1. **Input pass**: each accepted element is written to the buffer bank being filled, compared
   with the running maximum, and ``exp(-|x - m|)`` is computed on PE lanes (an :class:`Exp`).
   When it leaves the exp pipeline it updates the running sum (``d += e``, or ``d = d*e +
   exp(0)`` when the maximum rose).
2. **Reciprocal**: at the end of a vector, a restoring divider computes ``floor(2**R / d)``, one
   quotient bit per cycle, then marks the bank ready.
3. **Output pass**: reads the ready bank, computes ``exp(x - m)`` on a second :class:`Exp` and
   multiplies it by the reciprocal on a PE lane; this pipeline stalls as a whole on ``o.ready``.

The buffer has ``banks`` banks used in turn: vector ``k + 1`` arrives while vector ``k`` is
normalized and output; with three banks, back-to-back vectors stream at one element per cycle.
A vector's last element is accepted only when the previous vector's sum has reached the divider
and the divider is free, so vectors shorter than the exp and divider latencies wait for it.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from golden.nonlinear.softmax import SoftmaxConfig
from golden.pe import PEConfig

from ..arith import saturate, shift_right_rounded
from ..config import configure
from ..pe import PE, PEOp, add_pe
from ..pipeline import delay
from .exp import Exp

__all__ = ["Softmax"]


class Softmax(wiring.Component):
    """Softmax over vectors streamed one element per cycle, ended by ``last``.

    Parameters
    ----------
    config : golden.nonlinear.softmax.SoftmaxConfig, optional
        Or its fields as keywords.

    Attributes
    ----------
    latency : int
        Cycles from accepting a vector's last element to its first output, with no stall.
    input_layout, output_layout : data.StructLayout
    state : dict
        After elaboration, the control registers (the banks' free and ready bits and
        lengths, the fill and output pointers, the pass-1 tags, the divider's progress, the
        pass-2 valid bits), for the formal invariants in ``sim.contracts``.

    Members
    -------
    i : In(stream.Signature(StructLayout({"x": signed(in_width), "last": 1})))
    o : Out(stream.Signature(StructLayout({"p": unsigned(out_width), "last": 1})))
    """

    def __init__(self, config: SoftmaxConfig | None = None, **params):
        self.config = cfg = configure(self, SoftmaxConfig, config, params)
        self.exp_latency = PE.latency * (2 + 2 * cfg.exp_order)
        # Pass-1 exp, the divider (loaded as the sum leaves the exp, then a cycle per quotient
        # bit), then the output pass: read, exp, multiply, output register.
        self.latency = (self.exp_latency + 1 + cfg.recip_width
                        + 1 + self.exp_latency + PE.latency + 1)
        self.input_layout = data.StructLayout({"x": signed(cfg.in_width), "last": 1})
        self.output_layout = data.StructLayout({"p": unsigned(cfg.out_width), "last": 1})
        super().__init__({
            "i": In(stream.Signature(self.input_layout)),
            "o": Out(stream.Signature(self.output_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        depth = cfg.max_len
        banks = cfg.banks
        m.submodules.buffer = buffer = Memory(shape=signed(cfg.in_width), depth=banks * depth,
                                              init=[])
        write, read = buffer.write_port(), buffer.read_port()

        # Per-bank state. free: may be filled; ready: normalized, waiting to be output.
        free = Signal(banks, init=(1 << banks) - 1)
        ready = Signal(banks)
        bank_max = Array(Signal(signed(cfg.in_width), name=f"bank{b}_max") for b in range(banks))
        bank_recip = Array(Signal(cfg.recip_width, name=f"bank{b}_recip") for b in range(banks))
        bank_len = Array(Signal(range(depth + 1), name=f"bank{b}_len") for b in range(banks))

        def next_bank(bank):
            return Mux(bank == banks - 1, 0, bank + 1)

        # --- Pass 1: buffer, running maximum, one exp per element ------------------------------
        in_bank = Signal(range(banks))
        count = Signal(range(depth + 1))
        running_max = Signal(signed(cfg.in_width))
        pending = Signal()   # a vector ended; its sum has not reached the divider yet
        dividing = Signal()
        x, first = self.i.payload.x, count == 0
        ends = self.i.payload.last | (count == depth - 1)
        bank_open = Mux(first, free.bit_select(in_bank, 1), 1)
        m.d.comb += self.i.ready.eq(bank_open & ~(ends & (pending | dividing)))
        accepted = self.i.valid & self.i.ready

        previous = Mux(first, x, running_max)
        rises = x > previous
        difference = Mux(rises, previous - x, x - previous)  # -|x - m| <= 0
        lowest = cfg.input_format.min_int
        m.d.comb += [
            write.addr.eq(in_bank * depth + count),
            write.data.eq(x),
            write.en.eq(accepted),
        ]
        with m.If(accepted):
            new_max = Mux(rises, x, previous)
            m.d.sync += [running_max.eq(new_max), count.eq(count + 1)]
            with m.If(first):
                m.d.sync += free.bit_select(in_bank, 1).eq(0)
            with m.If(ends):
                m.d.sync += [count.eq(0), in_bank.eq(next_bank(in_bank)), pending.eq(1),
                             bank_max[in_bank].eq(new_max), bank_len[in_bank].eq(count + 1)]

        m.submodules.exp_in = exp_in = Exp(cfg.exp)
        m.d.comb += [exp_in.en.eq(1),
                     exp_in.i[0].eq(Mux(difference < lowest, lowest, difference))]
        tag = Signal(data.StructLayout({"valid": 1, "first": 1, "rises": 1, "ends": 1,
                                        "bank": range(banks)}))
        m.d.comb += [tag.valid.eq(accepted), tag.first.eq(first), tag.rises.eq(rises),
                     tag.ends.eq(ends), tag.bank.eq(in_bank)]
        pass1 = []
        tag = delay(m, tag, self.exp_latency, en=1, name="pass1", taps=pass1)

        # The running sum, one update per element leaving the exp pipeline.
        e, e0, frac = exp_in.o[0], cfg.exp_zero, cfg.exp_frac
        total = Signal(cfg.sum_width)
        updated = Signal(cfg.sum_width)
        m.d.comb += updated.eq(Mux(tag.first, e0,
                                   Mux(tag.rises, ((total * e) >> frac) + e0, total + e)))
        divisor = Signal(cfg.sum_width)
        divide_bank = Signal(range(banks))
        remainder = Signal(cfg.sum_width + 1)
        quotient = Signal(cfg.recip_width)
        step = Signal(range(cfg.recip_width + 1))
        with m.If(tag.valid):
            m.d.sync += total.eq(updated)
            with m.If(tag.ends):  # hand the sum to the divider
                m.d.sync += [pending.eq(0), dividing.eq(1), divisor.eq(updated),
                             divide_bank.eq(tag.bank), step.eq(0), quotient.eq(0),
                             remainder.eq(1 << (cfg.recip_shift - cfg.recip_width))]

        # --- Reciprocal: restoring division of 2**recip_shift by the sum ----------------------
        with m.If(dividing):
            doubled = remainder << 1
            fits = doubled >= divisor
            m.d.sync += [remainder.eq(Mux(fits, doubled - divisor, doubled)),
                         quotient.eq((quotient << 1) | fits), step.eq(step + 1)]
            with m.If(step == cfg.recip_width - 1):
                m.d.sync += [dividing.eq(0), ready.bit_select(divide_bank, 1).eq(1),
                             bank_recip[divide_bank].eq((quotient << 1) | fits)]

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
        # What an element needs later travels with it: its vector's maximum and reciprocal.
        stage1 = Signal(data.StructLayout({"valid": 1, "last": 1,
                                           "max": signed(cfg.in_width),
                                           "recip": unsigned(cfg.recip_width)}))
        with m.If(advance):
            m.d.sync += [stage1.valid.eq(issue), stage1.last.eq(final),
                         stage1.max.eq(bank_max[out_bank]),
                         stage1.recip.eq(bank_recip[out_bank])]
        m.submodules.exp_out = exp_out = Exp(cfg.exp)
        offset = read.data - stage1.max
        m.d.comb += [exp_out.en.eq(advance),
                     exp_out.i[0].eq(Mux(offset < lowest, lowest, offset))]
        pass2 = [stage1]
        carried = delay(m, stage1, self.exp_latency, en=advance, name="pass2", taps=pass2)
        # Both operands must fit: the reciprocal, and exp(0) = 2**exp_frac (wider than the
        # reciprocal when max_len < 8).
        scale = PEConfig(in_width=max(cfg.recip_width, cfg.exp_frac + 1), signed=False,
                         ops=("mul",))
        product = add_pe(m, "normalize", scale, en=advance, op=PEOp.MUL, a=exp_out.o[0],
                         b=carried.recip)
        carried = delay(m, carried, PE.latency, en=advance, name="pass2_mul", taps=pass2)
        probability = shift_right_rounded(product, cfg.out_shift, cfg.rounding)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(carried.valid),
                self.o.payload.last.eq(carried.last),
                self.o.payload.p.eq(saturate(probability, unsigned(cfg.out_width))),
            ]
        # The control registers, for the formal proofs' invariants (sim/contracts.py).
        self.state = {"free": free, "ready": ready, "bank_len": bank_len, "in_bank": in_bank,
                      "count": count, "pending": pending, "pass1": pass1,
                      "engine": {"busy": dividing, "bank": divide_bank, "elapsed": step,
                                 "cycles": cfg.recip_width},
                      "out_bank": out_bank, "index": index,
                      "pass2": [*(stage.valid for stage in pass2), self.o.valid]}
        return m

