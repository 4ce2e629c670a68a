"""A short golden-model check per generator, for any legal config (used by test_fuzz.py).

Each case builds the generator's component from the config and makes a short random stimulus
with the block's own test helpers and its golden model's expected outputs (``CASES``: a
``StreamCase``, which test_interface.py also runs on the named-port wrapper). Each check runs
a case in the Amaranth simulator under random stalls against the golden model and returns the
number of output words compared, so a test can tell that the check did compare something.
"""

from typing import NamedTuple

import numpy as np
from stimulus import array_transactions, operands, shift_amounts
from test_addrgen import random_descriptors, run_golden
from test_pingpong import mixed_lengths, stream_of
from test_scratchpad import disjoint_program, run_amaranth
from test_search_tree import expected_for, random_queries
from test_sparse_decoder import hybrid_stream, malformed_words, random_tensor
from test_sparse_search import mixed_stream

from golden.fixed_point import int_range
from golden.memory.input_share import input_share
from golden.memory.pingpong import pingpong
from golden.memory.scratchpad import scratchpad
from golden.nonlinear.exp import exp
from golden.nonlinear.gelu import gelu
from golden.nonlinear.layernorm import layernorm
from golden.nonlinear.silu import silu
from golden.nonlinear.softmax import softmax
from golden.pe import pe_op
from golden.pe_array import pe_array
from golden.reduction_tree import reduction_tree
from golden.sparse.sparse_decoder import concat, sparse_decoder
from golden.sparse.sparse_search import sparse_search
from sim.amaranth_sim import simulate_stream
from sim.payload import stream_codecs

STALLS = {"valid_prob": 0.7, "ready_prob": 0.6}


def _values(component, rng, lo, hi, n):
    """``n`` random input values for a component whose input payload is one field."""
    (field,) = stream_codecs(component)[0].fields
    return rng.integers(lo, hi + 1, (n, *field.dims))


class StreamCase(NamedTuple):
    """A component with stream ports ``i`` and ``o``, its inputs and the golden outputs."""

    component: object
    inputs: dict
    expected: dict
    sources: object = None


def _stream(component, inputs, expected, sources=None) -> StreamCase:
    return StreamCase(component, inputs, expected, sources)


def _run(case):
    def check(generator, config, rng):
        c = case(generator, config, rng)
        stalls = dict(STALLS)
        if c.component.o.signature.always_ready:  # no backpressure to apply
            stalls["ready_prob"] = 1.0
        result = simulate_stream(c.component, c.inputs, c.expected, c.sources, seed=0,
                                 **stalls)
        return len(result.out_words)
    return check


def check_pe(generator, config, rng):
    n = 24
    op = rng.choice(np.array([int(o) for o in config.op_codes]), n)
    a, b, c = (operands(config, rng, n) for _ in range(3))
    b = np.where(np.isin(op, [6, 7]), shift_amounts(config, rng, n), b)
    return _stream(generator.build(config), {"op": op, "a": a, "b": b, "c": c},
                   {"value": pe_op(config, op, a, b, c)})


def check_reduction_tree(generator, config, rng):
    dut = generator.build(config)
    values = _values(dut, rng, *int_range(config.width, config.signed), 20)
    values[0] = int_range(config.width, config.signed)[0]  # the most negative sum
    return _stream(dut, {"value": values}, {"value": reduction_tree(config, values)})


def _unary(model):
    def check(generator, config, rng):
        dut = generator.build(config)
        fmt = config.input_format
        x = _values(dut, rng, fmt.min_int, fmt.max_int, 30)
        x[0], x[1] = fmt.min_int, fmt.max_int  # both saturation ends
        return _stream(dut, {"value": x}, {"value": model(config, x)})
    return check


def check_softmax(generator, config, rng):
    fmt = config.input_format
    x = rng.integers(fmt.min_int, fmt.max_int + 1, 3 * config.max_len + 2)
    last = (rng.random(len(x)) < 0.3).astype(np.int64)
    last[-1] = 1
    return _stream(generator.build(config), {"x": x, "last": last}, softmax(config, x, last))


def check_layernorm(generator, config, rng):
    fmt = config.input_format
    x = rng.integers(fmt.min_int, fmt.max_int + 1, 3 * config.max_len + 2)
    x[:2] = fmt.min_int  # a constant vector (variance 0) when max_len <= 2
    last = (rng.random(len(x)) < 0.3).astype(np.int64)
    last[-1] = 1
    return _stream(generator.build(config), {"x": x, "last": last},
                   layernorm(config, x, last))


def check_pe_array(generator, config, rng):
    inputs = array_transactions(config, rng, 16)
    inputs["last"][-1] = 1
    expected, source = pe_array(config, **inputs)
    return _stream(generator.build(config), inputs, expected, source)


def check_input_share(generator, config, rng):
    n = 12
    lo, hi = config.operand_range
    words = {"w": rng.integers(lo, hi + 1, (n, config.rows, config.cols)),
             "x": rng.integers(lo, hi + 1, (n, config.cols)),
             "last": rng.integers(0, 2, n)}
    return _stream(generator.build(config), words, input_share(config, **words))


def check_search_tree(generator, config, rng):
    inputs = random_queries(config, rng, 30)
    return _stream(generator.build(config), inputs, expected_for(config, inputs))


def check_sparse_search(generator, config, rng):
    inputs = mixed_stream(config, rng)
    return _stream(generator.build(config), inputs, sparse_search(config, **inputs),
                   np.flatnonzero(inputs["kind"]))


def check_sparse_decoder(generator, config, rng):
    words, _ = hybrid_stream(config, rng, random_tensor(config, rng, (config.block,), 0.3))
    if config.value_width >= 4:  # malformed_words stores values up to 7
        words = concat(words, malformed_words(config))
    return _stream(generator.build(config), words, sparse_decoder(config, words))


def check_addrgen(generator, config, rng):
    words, expected, source = run_golden(config, random_descriptors(config, rng, 12))
    return _stream(generator.build(config), words, expected, source)


def check_pingpong(generator, config, rng):
    lengths, ended = mixed_lengths(config, rng)
    inputs = stream_of(config, rng, lengths[:6], ended)
    return _stream(generator.build(config), inputs,
                   pingpong(config, inputs["data"], inputs["last"]))


def check_scratchpad(generator, config, rng):
    programs = disjoint_program(config, rng, 20)
    results, _ = run_amaranth(generator.build(config), programs, scratchpad(config, programs),
                              valid_prob=0.7, ready_prob=0.6)
    return sum(len(r.out_words) for r in results)


#: The stream case of each generator with stream ports ``i`` and ``o``.
CASES = {
    "pe": check_pe,
    "reduction-tree": check_reduction_tree,
    "exp": _unary(exp),
    "gelu": _unary(gelu),
    "silu": _unary(silu),
    "softmax": check_softmax,
    "layernorm": check_layernorm,
    "pe-array": check_pe_array,
    "input-share": check_input_share,
    "search-tree": check_search_tree,
    "sparse-search": check_sparse_search,
    "sparse-decoder": check_sparse_decoder,
    "addrgen": check_addrgen,
    "pingpong": check_pingpong,
}

#: The check for each registered generator. DMA and CSR talk AXI: their checks are the
#: cocotbext-axi tests in test_dma.py and test_csr.py; here they are built and elaborated.
#: Every generator with stream ports needs a row here or in :data:`NO_FUZZ_CHECK`
#: (tests/test_structure.py fails otherwise).
CHECKS = {**{name: _run(case) for name, case in CASES.items()}, "scratchpad": check_scratchpad}

#: Generators with stream ports whose golden-model check lives elsewhere, and where.
NO_FUZZ_CHECK = {
    "dma": "an AXI4 master: its commands move bytes through an AXI slave and a scratchpad, "
           "checked against golden.memory.dma by the cocotbext-axi tests in tests/test_dma.py "
           "(random transfers under wait states); test_fuzz.py builds and emits drawn configs",
}
