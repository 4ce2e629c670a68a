"""Random stimulus for the PE and the PE array, weighted toward corner values, and random
programs for the accelerator."""

import numpy as np

from golden.accelerator import Opcode, OperandMode, overlaps_destination, pack, unpack
from golden.pe import Op


def operands(config, rng, shape, corner_prob=0.25):
    """Random operands in range, with about ``corner_prob`` of them at min, max, -1, 0 or 1."""
    lo, hi = config.operand_range
    values = rng.integers(lo, hi + 1, shape)
    corners = np.array(sorted({lo, hi, max(lo, -1), 0, min(hi, 1)}))
    pick = rng.random(shape) < corner_prob
    return np.where(pick, rng.choice(corners, shape), values)


def shift_amounts(config, rng, shape):
    """Shift amounts around the useful range, including negative and too-large ones."""
    lo, hi = config.operand_range
    return np.clip(rng.integers(-2, config.output_width + 3, shape), lo, hi)


def array_transactions(config, rng, n, *, ops=None, modes=(0, 1), last_prob=0.3):
    """``n`` random PE-array transactions (a dict of field arrays)."""
    shape = (n, config.rows, config.cols)
    op = rng.choice(np.array([int(o) for o in (ops or config.op_codes)]), n)
    b = operands(config, rng, shape)
    is_shift = np.isin(op, [Op.SHL, Op.SHR])[:, None, None]
    return {
        "op": op,
        "mode": rng.choice(np.array(modes), n),
        "last": (rng.random(n) < last_prob).astype(np.int64),
        "a": operands(config, rng, shape),
        "b": np.where(is_shift, shift_amounts(config, rng, shape), b),
        "c": operands(config, rng, shape),
    }


# --- accelerator programs ------------------------------------------------------------------------

#: Hardware parameters of the small accelerator the default suite builds under Verilator (once:
#: about 1.5 minutes), big enough for the small Mamba block and attention head of
#: tests/test_accelerator.py (the default 4 x 8 takes about 7 minutes to build).
SMALL_ACCELERATOR = {"rows": 2, "cols": 4, "depth": 512, "max_program": 512}


def int16(rng, shape, lo=-(1 << 15), hi=1 << 15):
    """Uniform random int16 values (or in ``lo .. hi - 1``)."""
    return rng.integers(lo, hi, shape)


def random_instruction(rng, config, kind=None):
    """A legal random GEMV, EW, NL, SOFTMAX or LAYERNORM instruction of ``config`` (``kind``: a
    number in [0, 1) choosing the opcode, default random), with no operand partially
    overlapping its destination (``golden.accelerator.overlaps_destination``: undefined)."""
    while True:
        word = _random_instruction(rng, config, kind)
        if not overlaps_destination(config, unpack(word)):
            return word


def _random_instruction(rng, config, kind):
    r, c, line, depth = config.rows, config.cols, config.line, config.depth
    kind = rng.random() if kind is None else kind
    if kind < 0.15:
        lines = int(rng.integers(1, 5))
        return pack(Opcode.NL, unit=int(rng.integers(0, 3)), lines=lines,
                    src=int(rng.integers(0, depth - lines)),
                    dst=int(rng.integers(0, depth - lines)))
    if kind < 0.32:
        opcode, max_len = ((Opcode.SOFTMAX, config.softmax_max_len) if kind < 0.25
                           else (Opcode.LAYERNORM, config.layernorm_max_len))
        n = int(rng.integers(1, min(3 * line, max_len + 1)))
        lines = (n - 1) // line + 1
        more = sstride = dstride = 0
        if rng.random() < 0.5 and 2 * lines <= depth:  # a batch of vectors
            sstride, dstride = (int(rng.integers(lines, lines + 3)) for _ in range(2))
            more = int(rng.integers(1, 4))
            while more and more * max(sstride, dstride) + lines > depth:
                more -= 1
        span_s, span_d = more * sstride + lines, more * dstride + lines
        return pack(opcode, n=n, src=int(rng.integers(0, depth - span_s + 1)),
                    dst=int(rng.integers(0, depth - span_d + 1)), more=more,
                    sstride=sstride, dstride=dstride)
    if kind < 0.55:
        m, k = int(rng.integers(1, 3 * r + 1)), int(rng.integers(1, 3 * c + 1))
        rb, kc = -(-m // r), -(-k // c)
        column = rng.random() < 0.5
        fields = dict(w=int(rng.integers(0, depth - rb * kc + 1)),
                      x=int(rng.integers(0, depth - (kc * c - 1) // line)),
                      m=m, k=k, shift=int(rng.integers(0, 20)))
        if column:
            stride = int(rng.integers(0, 4))
            fields.update(ylayout=1, ycol=int(rng.integers(0, c)), ystride=stride,
                          y=int(rng.integers(0, depth - (rb - 1) * stride)))
        else:  # a row-block offset: rows go to elements ycol * R + i
            ycol = int(rng.integers(0, c)) if rng.random() < 0.5 else 0
            fields.update(ycol=ycol, y=int(rng.integers(0, depth - (ycol * r + m - 1) // line)))
        return pack(Opcode.GEMV, **fields)
    op = Op(int(rng.choice(list(config.pe_array_config.op_codes))))
    tcols = int(rng.integers(1, 4))
    lines = tcols * int(rng.integers(1, 4))
    fields = dict(op=int(op), lines=lines, tcols=tcols, dst=int(rng.integers(0, depth - lines)),
                  shift=0 if op in (Op.MAX, Op.MIN) else int(rng.integers(0, 18)))
    for name in ("a", "b", "c"):
        mode = OperandMode(int(rng.integers(0, 3)))
        last = {OperandMode.LINE: lines - 1, OperandMode.COL: (tcols - 1) // r,
                OperandMode.ROW: (lines // tcols - 1) // c}[mode]
        fields[name] = int(rng.integers(0, depth - last))
        fields[f"{name}mode"] = int(mode)
    return pack(Opcode.EW, **fields)


def dma_program(rng, config, ext_lines):
    """Load random DRAM lines, run random instructions on them, store lines back."""
    depth = config.depth
    words = [pack(Opcode.DMA_LOAD, line=0, ext=int(rng.integers(0, ext_lines - depth // 2)),
                  lines=depth // 2),
             pack(Opcode.DMA_LOAD, line=depth // 2, ext=0, lines=depth // 2)]
    words += [random_instruction(rng, config) for _ in range(4)]
    for _ in range(3):
        lines = int(rng.integers(1, depth // 2))
        words.append(pack(Opcode.DMA_STORE, line=int(rng.integers(0, depth - lines)),
                          ext=int(rng.integers(0, ext_lines - lines)), lines=lines))
    return words + [pack(Opcode.HALT)]
