"""Random stimulus for the PE and the PE array, weighted toward corner values."""

import numpy as np

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
