"""AXI4 DMA: golden burst plan and command rules; cocotb on Verilator against an AxiRam.

The hardware runs random command sequences (1 beat .. several KiB, starting near 4 KiB
boundaries, some invalid) with random wait states on every AXI channel and on ``cmd`` and
``done``. Every byte of the external memory window and of the scratchpad is compared with
``golden.memory.dma.execute`` applied in order, the AR and AW burst sequences with
``burst_plan`` of the valid commands, and ``sim.axi.AxiProtocolChecker`` checks every cycle.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden.memory.dma import PAGE_BYTES, DMAConfig, burst_plan, check_command, execute
from hw.memory.dma import DMA
from sim.payload import PayloadCodec
from sim.runner import build, new_test_dir, run_cocotb_spec

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the cocotb runner passes sys.path on as PYTHONPATH
    sys.path.insert(0, str(TESTS))

KIB = 1024


# --- Golden model ---------------------------------------------------------------------------

def test_burst_plan_examples():
    config = DMAConfig()  # 8-byte beats, 16-beat bursts
    assert burst_plan(config, 0, 8) == [(0, 1)]
    assert burst_plan(config, 0, 300 * 8) == [(k * 128, 16) for k in range(18)] + [(2304, 12)]
    # 4 KiB boundary: 2 beats before it, then full bursts.
    assert burst_plan(config, 0x1FF0, 40 * 8) == [(0x1FF0, 2), (0x2000, 16), (0x2080, 16),
                                                  (0x2100, 6)]
    wide = DMAConfig(data_width=512, max_burst=256)  # 64-byte beats: 64 beats per 4 KiB
    assert burst_plan(wide, 0xFC0, 130 * 64) == [(0xFC0, 1), (0x1000, 64), (0x2000, 64),
                                                 (0x3000, 1)]
    with pytest.raises(ValueError):
        burst_plan(config, 4, 8)
    with pytest.raises(ValueError):
        burst_plan(config, 0, 0)


@settings(max_examples=300, deadline=None)
@given(width=st.sampled_from([32, 64, 128, 256, 512]), max_burst=st.integers(1, 256),
       page=st.integers(0, 1000), offset=st.integers(0, PAGE_BYTES - 1),
       beats=st.integers(1, 3000))
def test_burst_plan_covers_range_in_legal_bursts(width, max_burst, page, offset, beats):
    config = DMAConfig(data_width=width, max_burst=max_burst)
    b = config.beat_bytes
    start = page * PAGE_BYTES + offset // b * b
    plan = burst_plan(config, start, beats * b)
    addr = start
    for burst_addr, n in plan:
        assert burst_addr == addr  # contiguous, in order, covering the range exactly
        assert 1 <= n <= max_burst
        assert burst_addr // PAGE_BYTES == (burst_addr + n * b - 1) // PAGE_BYTES
        addr += n * b
    assert addr == start + beats * b
    # Greedy: a burst is short only at the end of the range or at a 4 KiB boundary.
    for burst_addr, n in plan[:-1]:
        assert n == max_burst or (burst_addr + n * b) % PAGE_BYTES == 0


def test_check_command_rejects_bad_commands():
    config = DMAConfig(addr_width=16, local_depth=64)  # 8-byte beats
    assert check_command(config, ext_addr=0xFFC0, local_addr=56, length=64) == 8  # fits
    bad = [dict(ext_addr=0, local_addr=0, length=0),          # empty
           dict(ext_addr=0, local_addr=0, length=12),         # not whole beats
           dict(ext_addr=4, local_addr=0, length=8),          # misaligned address
           dict(ext_addr=0xFFC0, local_addr=0, length=72),    # leaves the address space
           dict(ext_addr=0, local_addr=60, length=40),        # past the scratchpad
           dict(ext_addr=0, local_addr=-1, length=8)]
    for command in bad:
        with pytest.raises(ValueError):
            check_command(config, **command)


def test_execute_moves_bytes_in_lane_order():
    config = DMAConfig(data_width=32, local_depth=16)
    ext = np.arange(64, dtype=np.uint8)
    local = np.zeros((16, 4), dtype=np.uint8)
    assert not execute(config, ext, local, write=0, ext_addr=8, local_addr=2, length=8)
    assert local[2].tolist() == [8, 9, 10, 11] and local[3].tolist() == [12, 13, 14, 15]
    assert not execute(config, ext, local, write=1, ext_addr=40, local_addr=2, length=8)
    assert ext[40:48].tolist() == list(range(8, 16))
    before = ext.copy()
    assert execute(config, ext, local, write=1, ext_addr=2, local_addr=0, length=8)
    assert np.array_equal(ext, before)


@pytest.mark.parametrize("params, message", [
    (dict(data_width=48), "power of two"),
    (dict(data_width=1024), r"data_width must be in 32\.\.512"),
    (dict(data_width=16), r"data_width must be in 32\.\.512"),
    (dict(addr_width=12), r"addr_width must be in 16\.\.64"),
    (dict(max_burst=0), r"max_burst must be in 1\.\.256"),
    (dict(max_burst=257), r"max_burst must be in 1\.\.256"),
    (dict(outstanding=17), r"outstanding must be in 1\.\.16"),
    (dict(local_depth=8), r"local_depth must be in 16\.\.65536"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        DMAConfig(**params)
    with pytest.raises(ValueError, match=message):
        DMA(**params)


def test_non_integer_parameter():
    with pytest.raises(TypeError):
        DMAConfig(max_burst=4.0)


# --- Hardware under Verilator ---------------------------------------------------------------

def execute_with_fault(config, ext, local, fault, command):
    """``golden.memory.dma.execute``, plus the AxiRam's answer to addresses in ``fault``:
    SLVERR (so ``error``), zeros for a read beat, no write for a write beat."""
    error = execute(config, ext, local, **command)
    if error or fault is None:
        return error
    start, end = command["ext_addr"], command["ext_addr"] + command["length"]
    lo, hi = max(start, fault[0]), min(end, fault[1])
    if lo >= hi:
        return False
    if command["write"]:
        ext[lo:hi] = fault[2][lo:hi]
    else:
        b = config.beat_bytes
        first = command["local_addr"] + (lo - start) // b
        local[first:first + (hi - lo) // b] = 0
    return True


def run_dma(config, name, commands, *, ext_init, local_init=None, stall=0.0,
            cmd_valid_prob=1.0, done_ready_prob=1.0, seed=0, dump_local=True, fault=None):
    """Run ``commands`` on the DMA under cocotb; check everything against the golden model.

    ``fault`` is an external address range ``(start, end)`` answering SLVERR. Returns the
    testbench report (accept/done cycles, error flags, bursts).
    """
    dut = DMA(config)
    codec = PayloadCodec.from_shape(dut.command_layout)
    sim_build = build(dut, name)
    test_dir = new_test_dir(name)
    (test_dir / "ext_init.bin").write_bytes(ext_init.tobytes())
    if local_init is not None:
        (test_dir / "local_init.bin").write_bytes(local_init.tobytes())
    beats = sum(c["length"] // config.beat_bytes for c in commands)
    worst = max(stall.values()) if isinstance(stall, dict) else stall
    spec = {
        "config": config.to_dict(),
        "cmd_codec": codec.to_json(),
        "commands": commands,
        "ram_size": 1 << config.addr_width,
        "ext_init": str(test_dir / "ext_init.bin"),
        "ext_out": str(test_dir / "ext_out.bin"),
        "local_init": None if local_init is None else str(test_dir / "local_init.bin"),
        "local_out": str(test_dir / "local_out.bin") if dump_local else None,
        "stall": stall,
        "cmd_valid_prob": cmd_valid_prob,
        "done_ready_prob": done_ready_prob,
        "fault": None if fault is None else list(fault),
        "seed": seed,
        "max_cycles": 200 * len(commands) + int(beats / (1 - worst) ** 3 * 4) + 1000,
        "report": str(test_dir / "report.json"),
    }
    report = run_cocotb_spec(sim_build, "dma_tb", spec, env_var="ACCELGEN_DMA_SPEC",
                             test_dir=test_dir, seed=seed, error_key="failure")

    # The golden model, command by command.
    ext = ext_init.copy()
    local = (np.zeros((config.local_depth, config.beat_bytes), dtype=np.uint8)
             if local_init is None else local_init.copy())
    errors, ar, aw = [], [], []
    faulted = None if fault is None else (*fault, ext_init)  # faulted bytes keep their value
    for c in commands:
        try:
            check_command(config, **{k: v for k, v in c.items() if k != "write"})
        except ValueError:
            pass
        else:
            (aw if c["write"] else ar).extend(burst_plan(config, c["ext_addr"], c["length"]))
        errors.append(int(execute_with_fault(config, ext, local, faulted, c)))
    assert report["errors"] == errors
    assert [tuple(b) for b in report["ar_bursts"]] == ar
    assert [tuple(b) for b in report["aw_bursts"]] == aw
    got_ext = np.frombuffer((test_dir / "ext_out.bin").read_bytes(), dtype=np.uint8)
    wrong = np.flatnonzero(got_ext != ext)
    assert wrong.size == 0, f"{wrong.size} external bytes differ, first at {wrong[0]:#x}"
    if dump_local:
        got_local = np.frombuffer((test_dir / "local_out.bin").read_bytes(),
                                  dtype=np.uint8).reshape(local.shape)
        wrong = np.flatnonzero((got_local != local).any(axis=1))
        assert wrong.size == 0, f"{wrong.size} scratchpad words differ, first {wrong[0]}"
    return report


def random_commands(config, rng, count, window, max_bytes):
    """Random valid commands in an external window [0, window), about one in eight invalid.

    Lengths are log-uniform from 1 beat to ``max_bytes``; starts are mostly a few beats
    before or after a 4 KiB boundary.
    """
    b, depth = config.beat_bytes, config.local_depth
    top = 1 << config.addr_width
    commands = []
    while len(commands) < count:
        beats = int(np.exp(rng.uniform(0, np.log(min(max_bytes // b, depth) + 1))))
        beats = max(1, min(beats, max_bytes // b, depth))
        length = beats * b
        if rng.random() < 0.7:  # near a 4 KiB boundary
            boundary = int(rng.integers(1, window // PAGE_BYTES)) * PAGE_BYTES
            ext_addr = boundary + int(rng.integers(-4, 5)) * b
        else:
            ext_addr = int(rng.integers(0, window // b)) * b
        ext_addr = min(max(ext_addr, 0), window - length)
        command = dict(write=int(rng.integers(0, 2)), ext_addr=ext_addr,
                       local_addr=int(rng.integers(0, depth - beats + 1)), length=length)
        if rng.random() < 0.12:
            kind = rng.integers(0, 5)
            if kind == 0:
                command["ext_addr"] += int(rng.integers(1, b))
            elif kind == 1:
                command["length"] += int(rng.integers(1, b))
            elif kind == 2:
                command["length"] = 0
            elif kind == 3:
                over = depth - beats + int(rng.integers(1, min(beats, 4) + 1))
                command["local_addr"] = min(over, (1 << config.local_addr_width) - 1)
            else:  # runs past the top of the address space
                back = int(rng.integers(1, beats)) if beats > 1 else 1
                command["ext_addr"] = top - back * b
                command["length"] = max(length, 2 * b)
        commands.append(command)
    return commands


RANDOM_CONFIGS = {
    # Default bus, burst and outstanding; a 64 KiB scratchpad (also the benchmark build).
    "dma64": DMAConfig(local_depth=8192),
    # Narrow bus, long bursts cut by 4 KiB boundaries, one burst in flight, a 64 KiB address
    # space whose top is reachable.
    "dma32": DMAConfig(data_width=32, addr_width=16, max_burst=256, outstanding=1,
                       local_depth=2048),
    # Wide bus (64-byte beats: 64 per 4 KiB page), odd burst length, 16 in flight.
    "dma512": DMAConfig(data_width=512, addr_width=40, max_burst=5, outstanding=16,
                        local_depth=128),
}


STALLS = {
    "light": (0.3, 0.5, 0.5),   # every AXI channel, cmd offered, done taken (probabilities)
    "heavy": (0.7, 0.3, 0.3),
    # Slow address and response channels, fast data.
    "skewed": ({"aw": 0.8, "w": 0.1, "b": 0.9, "ar": 0.8, "r": 0.1}, 0.8, 0.2),
}


@pytest.mark.parametrize("stalls", sorted(STALLS))
@pytest.mark.parametrize("name", sorted(RANDOM_CONFIGS))
def test_random_transfers_with_wait_states(name, stalls, rng):
    config = RANDOM_CONFIGS[name]
    stall, cmd_valid_prob, done_ready_prob = STALLS[stalls]
    window = min(64 * KIB, 1 << config.addr_width)
    commands = random_commands(config, rng, 40, window, max_bytes=6 * KIB)
    # Where the address space is small enough, also a transfer ending at its very top.
    if config.addr_width == 16:
        commands.insert(3, dict(write=1, ext_addr=window - 64 * config.beat_bytes,
                                local_addr=0, length=64 * config.beat_bytes))
    ext_init = rng.integers(0, 256, window, dtype=np.uint8)
    local_init = rng.integers(0, 256, (config.local_depth, config.beat_bytes), dtype=np.uint8)
    report = run_dma(config, name, commands, ext_init=ext_init, local_init=local_init,
                     stall=stall, cmd_valid_prob=cmd_valid_prob,
                     done_ready_prob=done_ready_prob, seed=len(name + stalls))
    assert 0 < sum(report["errors"]) < len(commands)
    assert report["ar_bursts"] and report["aw_bursts"]


def test_bandwidth_zero_wait_memory(rng, measure):
    config = RANDOM_CONFIGS["dma64"]
    b = config.beat_bytes
    long_bytes, short_bytes, shorts = 64 * KIB, 64, 32
    window = 4 * long_bytes
    commands = [dict(write=0, ext_addr=long_bytes, local_addr=0, length=long_bytes),
                dict(write=1, ext_addr=3 * long_bytes, local_addr=0, length=long_bytes)]
    for direction in (0, 1):
        for k in range(shorts):
            commands.append(dict(write=direction, ext_addr=(2 * long_bytes if direction else 0)
                                 + k * 2 * short_bytes, local_addr=k * 8, length=short_bytes))
    ext_init = rng.integers(0, 256, window, dtype=np.uint8)
    report = run_dma(config, "dma64", commands, ext_init=ext_init, dump_local=False)
    accept, done = report["accept_cycles"], report["done_cycles"]

    def fraction(first, last, nbytes):
        return nbytes / b / (done[last] - accept[first])

    long_read, long_write = fraction(0, 0, long_bytes), fraction(1, 1, long_bytes)
    short_read = fraction(2, 1 + shorts, shorts * short_bytes)
    short_write = fraction(2 + shorts, 1 + 2 * shorts, shorts * short_bytes)
    measure(f"DMA {config.data_width}-bit, {config.max_burst}-beat bursts, "
            f"{config.outstanding} outstanding, zero-wait AxiRam: bandwidth / bus peak: "
            f"64 KiB read {long_read:.3f}, write {long_write:.3f}; "
            f"64 B back-to-back read {short_read:.3f}, write {short_write:.3f}")
    assert long_read >= 0.9 and long_write >= 0.9


def test_slave_errors_set_done_error(rng):
    """A transfer touching an address that answers SLVERR completes with error = 1; the rest
    of its data still moves, and the next commands are unaffected."""
    config = RANDOM_CONFIGS["dma64"]
    window = 32 * KIB
    fault = (0x3000, 0x3040)  # 8 beats
    commands = [
        dict(write=0, ext_addr=0x2F00, local_addr=0, length=512),     # reads across it
        dict(write=0, ext_addr=0x1000, local_addr=100, length=256),   # clean read
        dict(write=1, ext_addr=0x3020, local_addr=200, length=1024),  # writes across it
        dict(write=1, ext_addr=0x5000, local_addr=0, length=512),     # clean write
    ]
    ext_init = rng.integers(0, 256, window, dtype=np.uint8)
    local_init = rng.integers(0, 256, (config.local_depth, config.beat_bytes), dtype=np.uint8)
    report = run_dma(config, "dma64", commands, ext_init=ext_init, local_init=local_init,
                     stall=0.2, fault=fault)
    assert report["errors"] == [1, 0, 1, 0]
