"""Tiled address generator: golden versus plain nested loops, defined errors for descriptors
that leave the address space, bit-exact hardware with stalls (Amaranth and Verilator), one
address per cycle across descriptors."""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.memory.addrgen import (
    LATENCY,
    AddrGenConfig,
    addrgen,
    check_descriptor,
    descriptor_error,
    descriptor_extent,
    descriptor_words,
    word_counts,
)
from hw.memory.addrgen import AddrGen
from sim.amaranth_sim import simulate_stream
from sim.runner import run_stream_test


def nested_loops(base, bounds, strides):
    """The descriptor's addresses by plain nested loops (outermost level first)."""
    addresses = []

    def walk(level, addr):
        if level == len(bounds):
            addresses.append(addr)
            return
        for i in range(bounds[level]):
            walk(level + 1, addr + i * strides[level])

    walk(0, base)
    return addresses


def reference(config, descriptors):
    """Expected words from nested loops: the addresses, or one error word."""
    addr, last, error = [], [], []
    for base, bounds, strides in descriptors:
        walk = nested_loops(base, bounds, strides)
        if not walk or min(walk) < 0 or max(walk) >= config.address_limit:
            addr, last, error = addr + [0], last + [1], error + [1]
        else:
            addr += walk
            last += [0] * (len(walk) - 1) + [1]
            error += [0] * len(walk)
    return addr, last, error


def sources_of(config, words):
    counts = word_counts(config, words)
    return np.repeat(np.arange(len(counts)), counts)


def random_descriptors(config, rng, n, *, error_prob=0.2, max_bound=4):
    """``n`` descriptors: bound-1 levels, corner strides, bases at the edges of the valid range,
    and about ``error_prob`` invalid ones (just outside the address space, or a bound of 0)."""
    s_lo, s_hi = config.stride_range
    limit, base_max = config.address_limit, config.base_range[1]
    top = min(max_bound, config.bound_range[1])
    corners = np.array([s_lo, s_hi, 0, 1, -1])
    result = []
    for _ in range(n):
        bounds = np.where(rng.random(config.levels) < 0.3, 1,
                          rng.integers(1, top + 1, config.levels))
        strides = np.where(rng.random(config.levels) < 0.3,
                           rng.choice(corners, config.levels),
                           rng.integers(s_lo, s_hi + 1, config.levels))
        spans = [(int(b) - 1) * int(s) for b, s in zip(bounds, strides)]
        first = -sum(min(s, 0) for s in spans)  # the valid bases are first..final
        final = min(limit - 1 - sum(max(s, 0) for s in spans), base_max)
        pick = int(rng.integers(0, 1 << 62))
        if rng.random() < error_prob:
            choices = [b for b in (final + 1, first - 1) if 0 <= b <= base_max]
            if not choices or rng.random() < 0.2:
                bounds[rng.integers(config.levels)] = 0
                choices = [pick % (base_max + 1)]
            base = choices[pick % len(choices)]
        elif first <= final:
            base = [first, final, first + pick % (final - first + 1)][pick % 3]
        else:
            base = pick % (base_max + 1)  # no valid base: an error
        result.append((base, bounds.tolist(), strides.tolist()))
    return result


def run_golden(config, descriptors):
    words = descriptor_words(config, descriptors)
    return words, addrgen(config, words), sources_of(config, words)


# --- golden model --------------------------------------------------------------------------------


@st.composite
def config_and_descriptors(draw):
    addr_width = draw(st.sampled_from([8, 9, 12, 16, 64]))
    config = AddrGenConfig(
        levels=draw(st.integers(1, 4)), addr_width=addr_width,
        count_width=draw(st.integers(1, 3)), stride_width=draw(st.integers(2, 10)),
        limit=draw(st.one_of(st.none(), st.integers(1, 1 << addr_width))))
    b_hi, (s_lo, s_hi), a_hi = config.bound_range[1], config.stride_range, config.base_range[1]
    base = st.one_of(st.integers(0, a_hi), st.integers(max(0, a_hi - 40), a_hi),
                     st.integers(0, min(a_hi, 40)))
    bound = st.one_of(st.integers(1, b_hi), st.integers(1, b_hi), st.integers(0, b_hi))
    stride = st.one_of(st.integers(s_lo, s_hi), st.integers(max(s_lo, -3), min(s_hi, 3)))
    descriptor = st.tuples(base, st.lists(bound, min_size=config.levels, max_size=config.levels),
                           st.lists(stride, min_size=config.levels, max_size=config.levels))
    return config, draw(st.lists(descriptor, min_size=1, max_size=6))


@settings(max_examples=300, deadline=None)
@given(config_and_descriptors())
def test_golden_equals_nested_loops(case):
    config, descriptors = case
    out = addrgen(config, descriptor_words(config, descriptors))
    addr, last, error = reference(config, descriptors)
    assert [int(a) for a in out["addr"]] == addr
    assert out["last"].tolist() == last and out["error"].tolist() == error
    for d in descriptors:  # the Python side rejects exactly what the hardware flags
        walk = nested_loops(*d)
        if not walk or min(walk) < 0 or max(walk) >= config.address_limit:
            with pytest.raises(ValueError, match="invalid descriptor"):
                check_descriptor(config, *d)
        else:
            check_descriptor(config, *d)
            assert descriptor_extent(config, *d) == (min(walk), max(walk))


def test_golden_levels_are_outermost_first_with_bound_one_and_negative_strides():
    config = AddrGenConfig(levels=3, addr_width=8)
    # A 2x3 tile of a row-major matrix with 10 columns, walked column by column (transposed),
    # the middle level unused (bound 1).
    out = addrgen(config, descriptor_words(config, [(20, (3, 1, 2), (1, 99, 10))]))
    assert out["addr"].tolist() == [20, 30, 21, 31, 22, 32]
    assert out["last"].tolist() == [0, 0, 0, 0, 0, 1] and not out["error"].any()
    # Negative strides walk backwards, down to address 0 exactly.
    out = addrgen(config, descriptor_words(config, [(7, (1, 2, 4), (5, -1, -2))]))
    assert out["addr"].tolist() == [7, 5, 3, 1, 6, 4, 2, 0]
    # All bounds 1: one word, last.
    out = addrgen(config, descriptor_words(config, [(255, (1, 1, 1), (-128, 127, 0))]))
    assert out["addr"].tolist() == [255] and out["last"].tolist() == [1]


@pytest.mark.parametrize("limit,base,bounds,strides,message", [
    (200, 190, (1, 10), (0, 1), None),                  # highest address 200 - 1: valid
    (200, 190, (1, 11), (0, 1), "addresses 190..200 leave the address space 0..199"),
    (None, 250, (2, 3), (-100, 3),
     r"addresses 150..256 leave the address space 0..255 \(they would wrap the address width"),
    (None, 0, (2, 2), (-1, 1), "addresses -1..1 leave the address space 0..255"),
    (None, 3, (4, 1), (-1, 0), None),                   # down to 0 exactly
    (None, 0, (1, 0), (1, 1), r"bounds\[1\] is 0"),
])
def test_golden_out_of_bounds_descriptors_are_flagged(limit, base, bounds, strides, message):
    config = AddrGenConfig(levels=2, addr_width=8, count_width=4, stride_width=8, limit=limit)
    words = descriptor_words(config, [(base, bounds, strides)])
    walk = nested_loops(base, bounds, strides)
    out = addrgen(config, words)
    if message is None:
        assert descriptor_error(config, base, bounds, strides) is None
        assert out["addr"].tolist() == walk and not out["error"].any()
    else:
        with pytest.raises(ValueError, match=message):
            check_descriptor(config, base, bounds, strides)
        assert {k: v.tolist() for k, v in out.items()} == {"addr": [0], "last": [1],
                                                          "error": [1]}


def test_golden_64_bit_addresses_and_wrap():
    config = AddrGenConfig(levels=2, addr_width=64, count_width=8, stride_width=32)
    top = (1 << 64) - 1
    words = descriptor_words(config, [(top - 3, (2, 2), (2, 1)), (top - 3, (2, 3), (2, 1)),
                                      (top, (2, 1), (-(1 << 31), 0))])
    out = addrgen(config, words)
    assert out["addr"].tolist() == [top - 3, top - 2, top - 1, top, 0, top, top - (1 << 31)]
    assert out["error"].tolist() == [0, 0, 0, 0, 1, 0, 0]


def test_golden_rejects_fields_that_do_not_fit():
    config = AddrGenConfig(levels=2, addr_width=8, count_width=3, stride_width=4)
    for descriptor, message in [((256, (1, 1), (0, 0)), "base must be in 0..255, got 256"),
                                ((0, (8, 1), (0, 0)), r"bounds\[0\] must be in 0..7, got 8"),
                                ((0, (1, 1), (0, 8)), r"strides\[1\] must be in -8..7, got 8"),
                                ((0, (1, 1, 1), (0, 0)), "bounds must have 2 entries"),
                                ((0.5, (1, 1), (0, 0)), "base must be an integer")]:
        with pytest.raises(ValueError, match=message):
            descriptor_words(config, [descriptor])
        with pytest.raises(ValueError, match=message):
            check_descriptor(config, *descriptor)
    with pytest.raises(ValueError, match=r"bounds must have shape \(1, 2\)"):
        addrgen(config, {"base": [0], "bounds": [[1, 1, 1]], "strides": [[0, 0]]})
    with pytest.raises(ValueError, match="descriptors miss fields"):
        addrgen(config, {"base": [0]})
    with pytest.raises(ValueError, match="more than the golden model enumerates"):
        big = AddrGenConfig(levels=2, count_width=16)
        addrgen(big, descriptor_words(big, [(0, (65535, 65535), (0, 0))]))


@pytest.mark.parametrize("kwargs,error,message", [
    ({"levels": 0}, ValueError, "levels must be in 1..4, got 0"),
    ({"levels": 5}, ValueError, "levels must be in 1..4, got 5"),
    ({"addr_width": 7}, ValueError, "addr_width must be in 8..64, got 7"),
    ({"addr_width": 65}, ValueError, "addr_width must be in 8..64, got 65"),
    ({"count_width": 0}, ValueError, "count_width must be in 1..32, got 0"),
    ({"count_width": 33}, ValueError, "count_width must be in 1..32, got 33"),
    ({"stride_width": 1}, ValueError, "stride_width must be in 2..32, got 1"),
    ({"stride_width": 33}, ValueError, "stride_width must be in 2..32, got 33"),
    ({"limit": 0}, ValueError, "limit must be in 1..18446744073709551616, got 0"),
    ({"addr_width": 8, "limit": 257}, ValueError, r"limit must be in 1..256 \(2\*\*addr_width\)"),
    ({"levels": 2.0}, TypeError, "levels must be an integer"),
    ({"limit": True}, TypeError, "limit must be an integer"),
    ({"bogus": 1}, TypeError, "unexpected keyword argument 'bogus'"),
])
def test_bad_parameters_are_rejected_before_building(kwargs, error, message):
    with pytest.raises(error, match=message):
        AddrGen(**kwargs)


def test_config_object_or_keywords_but_not_both():
    config = AddrGenConfig(levels=2, addr_width=16)
    dut = AddrGen(config)
    assert dut.config is config and dut.latency == LATENCY == 3
    Fragment.get(dut, None)
    with pytest.raises(TypeError, match="either a AddrGenConfig or keyword parameters"):
        AddrGen(config, levels=3)
    with pytest.raises(TypeError, match="config must be a AddrGenConfig"):
        AddrGen({"levels": 2})


# --- Amaranth simulator ---------------------------------------------------------------------------

SIM_CONFIGS = [
    dict(levels=1, addr_width=8, count_width=1, stride_width=2),  # one word per descriptor
    dict(levels=2, addr_width=8, count_width=3, stride_width=5, limit=200),
    dict(levels=3, addr_width=12, count_width=2, stride_width=12, limit=3001),
    dict(levels=4, addr_width=64, count_width=3, stride_width=32),
]


@pytest.mark.parametrize("kwargs", SIM_CONFIGS)
def test_amaranth_sim_random_descriptors_under_stalls(kwargs, rng):
    config = AddrGenConfig(**kwargs)
    words, expected, source = run_golden(config, random_descriptors(config, rng, 300))
    assert expected["error"].any() and not expected["error"].all()
    simulate_stream(AddrGen(config), words, expected, source, valid_prob=0.6, ready_prob=0.5,
                    seed=11)


def test_amaranth_sim_one_word_per_cycle_and_latency(rng):
    config = AddrGenConfig(levels=3, addr_width=16, count_width=3, stride_width=8)
    words, expected, source = run_golden(config, random_descriptors(config, rng, 60,
                                                                     error_prob=0.1))
    result = simulate_stream(AddrGen(config), words, expected, source)
    assert np.all(np.diff(result.out_cycles) == 1)
    assert result.out_cycles[0] - result.in_cycles[0] == LATENCY


# --- cocotb on Verilator: the emitted Verilog -----------------------------------------------------

VERILATOR_CONFIGS = {
    # 4 levels, 32-bit addresses, 16-bit counts, 24-bit strides, no limit: wraps are errors.
    "default": dict(),
    # Wide: 64-bit addresses, 66-bit extent sums, a limit that is not a power of 2.
    "l3-a64": dict(levels=3, addr_width=64, count_width=5, stride_width=32,
                   limit=(1 << 64) - 12345),
}


@pytest.fixture(params=list(VERILATOR_CONFIGS), scope="module")
def addrgen_config(request):
    return AddrGenConfig(**VERILATOR_CONFIGS[request.param])


def test_verilator_random_descriptors_stalls_and_throughput(addrgen_config, rng, measure):
    config = addrgen_config
    words, expected, source = run_golden(config, random_descriptors(config, rng, 400))
    dut = AddrGen(config)
    stalled = run_stream_test(dut, "addrgen", words, expected, source, valid_prob=0.6,
                              ready_prob=0.5, seed=3)
    free = run_stream_test(dut, "addrgen", words, expected, source, seed=4)
    n_words = len(source)
    span = free.out_cycles[-1] - free.out_cycles[0] + 1
    bubbles = int(np.sum(np.diff(free.out_cycles) - 1))
    measure(f"addrgen {config.levels} levels, {config.addr_width}-bit: {n_words} words of "
            f"{len(words['base'])} descriptors ({int(expected['error'].sum())} invalid) in "
            f"{span} cycles = {n_words / span:.3f} addresses/cycle, {bubbles} bubbles; "
            f"first word {free.out_cycles[0] - free.in_cycles[0]} cycles after the descriptor; "
            f"{stalled.cycles} cycles with stalls")
    assert len(stalled.out_words) == len(free.out_words) == n_words
    assert span == n_words and bubbles == 0
    assert free.out_cycles[0] - free.in_cycles[0] == LATENCY


def test_verilator_long_descriptors_back_to_back(measure):
    # Two 4-level walks of 4096 addresses each, then a run of single-word and invalid ones.
    config = AddrGenConfig()
    descriptors = [(1 << 20, (8, 8, 8, 8), (4096, -512, 64, 4)),
                   ((1 << 32) - 4096, (16, 16, 4, 4), (-256, 16, 1, 0)),
                   *[((k * 97) % (1 << 32), (1, 1, 1, 1), (0, 0, 0, 0)) for k in range(50)],
                   ((1 << 32) - 1, (1, 1, 1, 2), (0, 0, 0, 1)),   # wraps: invalid
                   (0, (1, 1, 1, 2), (0, 0, 0, -1)),              # below 0: invalid
                   (5, (3, 0, 1, 1), (1, 1, 1, 1))]               # empty loop: invalid
    words, expected, source = run_golden(config, descriptors)
    assert expected["error"].sum() == 3
    result = run_stream_test(AddrGen(config), "addrgen", words, expected, source, seed=8)
    span = result.out_cycles[-1] - result.out_cycles[0] + 1
    measure(f"addrgen default config: {len(source)} words ({len(descriptors)} descriptors, "
            f"2 long) in {span} cycles = {len(source) / span:.3f} addresses/cycle")
    assert span == len(source)
