"""UART (8N1): the golden encoder/decoder and receiver model, parameter checks, both directions
cycle-exact against the golden model in the Amaranth simulator (random gaps, glitches, framing
errors, overruns, ready/valid stalls), and the emitted Verilog under Verilator through
``sim.uart.UartLink`` (random stalls, full duplex, +-2 % baud error, breaks, overruns)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from gen.emit import ports
from golden.uart import (
    SYNC_STAGES,
    Frame,
    UARTConfig,
    divisor_for,
    uart_decode,
    uart_encode,
    uart_frames,
    uart_receive,
)
from hw.uart import UART
from sim.runner import build, new_test_dir, run_cocotb_spec

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the cocotb module uart_tb lives here; the runner passes sys.path
    sys.path.insert(0, str(TESTS))


def random_gaps(rng, n, divisor):
    """Idle cycles before each byte: zero 40 % of the time, else up to two frames."""
    return [0 if rng.random() < 0.4 else int(rng.integers(1, 20 * divisor)) for _ in range(n)]


def idle(cycles):
    return np.ones(cycles, dtype=np.int8)


# --- golden model -----------------------------------------------------------------------------


def test_golden_encode_frame_layout():
    line = uart_encode(b"\x35", 4, gaps=[3])
    bits = [0, 1, 0, 1, 0, 1, 1, 0, 0, 1]  # start, 0x35 LSB first, stop
    assert line.tolist() == [1] * 3 + [b for b in bits for _ in range(4)]
    assert len(uart_encode(b"abc", 7)) == 3 * 10 * 7
    assert uart_encode(b"", 5).size == 0
    with pytest.raises(ValueError, match="gaps must give one non-negative count per byte"):
        uart_encode(b"ab", 8, gaps=[1])
    with pytest.raises(ValueError, match=r"data must be bytes"):
        uart_encode([256], 8)


@pytest.mark.parametrize("divisor", [4, 5, 8, 13, 104])
def test_golden_round_trip_with_gaps(divisor, rng):
    data = rng.integers(0, 256, 60, dtype=np.uint8).tobytes()
    gaps = random_gaps(rng, len(data), divisor)
    line = np.concatenate([uart_encode(data, divisor, gaps), idle(divisor)])
    assert uart_decode(line, divisor) == (data, 0)
    assert uart_decode(uart_encode(data, divisor), divisor) == (data, 0)  # back to back
    frames = uart_frames(line, divisor)
    starts = np.cumsum(gaps) + 10 * divisor * np.arange(len(data))
    assert [f.start for f in frames] == starts.tolist()
    assert [f.stop for f in frames] == (starts + divisor // 2 + 9 * divisor).tolist()


def test_golden_decode_stop_bit_glitches_and_truncation():
    d = 8
    line = np.concatenate([uart_encode(b"\xa7\x11\x42", d, gaps=[2, 30, 30]), idle(2 * d)])
    first_stop = 2 + 9 * d
    bad = line.copy()
    bad[first_stop:first_stop + d] = 0  # the first frame's stop bit
    assert uart_decode(bad, d) == (b"\x11\x42", 1)
    assert [f.ok for f in uart_frames(bad, d)] == [False, True, True]
    glitch = line.copy()
    glitch[40 + 10 * d:40 + 10 * d + d // 2] = 0  # a low pulse shorter than half a bit, idle
    assert uart_decode(glitch, d) == (b"\xa7\x11\x42", 0)
    assert uart_decode(line[:-2 * d - 5], d) == (b"\xa7\x11", 0)  # last stop sample cut off
    # A line low from the start counts as a falling edge (the receiver resets to idle, 1);
    # a break is one framing error, and nothing starts until the line has been high again.
    low = np.zeros(25 * d, dtype=np.int8)
    brk = np.concatenate([low, uart_encode(b"\x99", d, gaps=[1]), idle(d)])
    assert uart_frames(brk, d)[0] == Frame(0, d // 2 + 9 * d, 0, False)
    assert uart_decode(brk, d) == (b"\x99", 1)
    # Straight from the break into a start bit: no falling edge, so that frame is missed.
    assert uart_decode(np.concatenate([low, uart_encode(b"\x99", d), idle(d)]), d) == (b"", 1)


def test_golden_receiver_outputs_and_overrun():
    d = 4
    line = np.concatenate([uart_encode(b"\x01\x02\x03", d), idle(20)])
    stops = [f.stop for f in uart_frames(line, d)]
    assert stops == [d // 2 + 9 * d + 10 * d * k for k in range(3)]
    decided = [s + SYNC_STAGES for s in stops]
    always = uart_receive(line, d, np.ones(len(line), dtype=bool))
    assert always.data == b"\x01\x02\x03"
    assert always.out_cycles == [c + 1 for c in decided]  # on o the cycle after the decision
    never = uart_receive(line, d, np.zeros(len(line), dtype=bool))
    assert never.data == b"" and never.overrun_cycles == [decided[1] + 1, decided[2] + 1]
    late = np.zeros(len(line), dtype=bool)
    late[decided[1]:] = True  # taken in the very cycle the second byte is decided: no overrun
    result = uart_receive(line, d, late)
    assert result.data == b"\x01\x02\x03" and result.overrun_cycles == []
    assert result.out_cycles == [decided[1], decided[1] + 1, decided[2] + 1]


def test_divisor_for():
    assert divisor_for(12_000_000, 115_200) == 104
    assert divisor_for(100_000_000, 115_200) == 868
    assert divisor_for(12_000_000, 3_000_000) == 4
    with pytest.raises(ValueError, match=r"baud 1500000 is -4.76 % off .*at most 2 %"):
        divisor_for(10_000_000, 1_500_000)
    with pytest.raises(ValueError, match=r"baud 9600 needs a divisor of 104166.7 .*4..65535"):
        divisor_for(1_000_000_000, 9_600)
    with pytest.raises(ValueError, match=r"baud 6000000 needs a divisor of 2.0"):
        divisor_for(12_000_000, 6_000_000)
    with pytest.raises(ValueError, match="baud must be positive, got 0"):
        divisor_for(12_000_000, 0)
    with pytest.raises(TypeError, match="baud must be an integer"):
        divisor_for(12_000_000, 115200.0)


def test_golden_uart_never_imports_the_hardware():
    code = ("import sys, golden.uart; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('hw', 'amaranth', 'sim')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [0, 3, 70_000, -8])
def test_bad_divisor_values_are_rejected(divisor):
    with pytest.raises(ValueError, match=f"divisor must be in 4..65535, got {divisor}"):
        UART(divisor=divisor)


@pytest.mark.parametrize("divisor", [8.0, "104", True, None])
def test_bad_divisor_types_are_rejected(divisor):
    with pytest.raises(TypeError, match="divisor must be an integer"):
        UART(divisor=divisor)


def test_config_and_ports():
    dut, nine = UART(), UART(UARTConfig(divisor=9))
    assert dut.config == UARTConfig(divisor=104) and dut.config.frame_cycles == 1040
    assert dut.latency is None and nine.config.divisor == 9
    for block in (dut, nine):
        Fragment.get(block, None)  # and they elaborate
    assert [(p["name"], p["direction"][0], p["width"]) for p in ports(dut)] == [
        ("clk", "i", 1), ("rst", "i", 1), ("rx", "i", 1), ("tx", "o", 1),
        ("i__payload", "i", 8), ("i__valid", "i", 1), ("i__ready", "o", 1),
        ("o__payload", "o", 8), ("o__valid", "o", 1), ("o__ready", "i", 1),
        ("frame_error", "o", 1), ("overrun", "o", 1)]
    assert dut.signature.members["rx"].init == 1 and dut.signature.members["tx"].init == 1
    with pytest.raises(TypeError, match="not both"):
        UART(UARTConfig(), divisor=8)
    with pytest.raises(ValueError, match="divisor must be in 4..65535"):
        uart_encode(b"x", 3)


# --- Amaranth simulator -----------------------------------------------------------------------


def simulate(dut, cycles, per_cycle):
    """Run ``per_cycle(ctx, cycle)`` before each of ``cycles`` clock edges."""

    async def testbench(ctx):
        for cycle in range(cycles):
            per_cycle(ctx, cycle)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def run_receiver(divisor, line, ready):
    """Drive ``line`` on rx and ``ready`` on o.ready, one entry per cycle; return what came
    out, in the golden model's terms."""
    dut = UART(divisor=divisor)
    out = {"data": bytearray(), "out_cycles": [], "frame_error_cycles": [],
           "overrun_cycles": []}

    def per_cycle(ctx, cycle):
        ctx.set(dut.rx, int(line[cycle]))
        ctx.set(dut.o.ready, int(ready[cycle]))
        if ready[cycle] and ctx.get(dut.o.valid):
            out["data"].append(ctx.get(dut.o.payload))
            out["out_cycles"].append(cycle)
        if ctx.get(dut.frame_error):
            out["frame_error_cycles"].append(cycle)
        if ctx.get(dut.overrun):
            out["overrun_cycles"].append(cycle)
        assert ctx.get(dut.tx) == 1 and not ctx.get(dut.i.valid)

    simulate(dut, len(line), per_cycle)
    return out


def check_receiver(divisor, line, ready):
    """The hardware's every output, cycle by cycle, equals the golden receiver's."""
    line = np.concatenate([line, idle(12 * divisor + 8)])  # lets the last frame finish
    ready = np.concatenate([ready, np.ones(len(line) - len(ready), dtype=bool)])
    got = run_receiver(divisor, line, ready)
    expected = uart_receive(line, divisor, ready)
    assert bytes(got["data"]) == expected.data
    assert got["out_cycles"] == expected.out_cycles
    assert got["frame_error_cycles"] == expected.frame_error_cycles
    assert got["overrun_cycles"] == expected.overrun_cycles
    return expected


@pytest.mark.parametrize("divisor", [4, 5, 8, 13])
def test_amaranth_receiver_random_bytes_gaps_and_ready_stalls(divisor, rng):
    data = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    line = uart_encode(data, divisor, random_gaps(rng, len(data), divisor))
    ready = rng.random(len(line)) < 0.5
    expected = check_receiver(divisor, line, ready)
    assert expected.data == uart_decode(line, divisor)[0] == data  # stalls lost nothing
    assert not expected.overrun_cycles and not expected.frame_error_cycles


@pytest.mark.parametrize("divisor", [4, 7, 10])
def test_amaranth_receiver_glitches_framing_errors_breaks_and_noise(divisor, rng):
    """Frames with corrupted stop bits, short low glitches in idle time, breaks, and runs of
    random levels: every decision matches the golden receiver's."""
    pieces, half = [], divisor // 2
    for _ in range(30):
        kind = rng.integers(5)
        byte = bytes([int(rng.integers(256))])
        frame = uart_encode(byte, divisor)
        if kind == 1:  # stop bit forced low (all of it, or around its middle)
            lo = 9 * divisor if rng.random() < 0.5 else 9 * divisor + half - 1
            frame[lo:lo + (divisor if lo == 9 * divisor else 3)] = 0
        elif kind == 2:  # a glitch shorter than half a bit, then idle
            frame = np.concatenate([idle(2), np.zeros(int(rng.integers(1, half)), np.int8),
                                    idle(2 * divisor)])
        elif kind == 3:  # a break of one to three frames
            frame = np.zeros(int(rng.integers(10, 30)) * divisor, dtype=np.int8)
        elif kind == 4:  # noise: random runs of random length
            runs = rng.integers(1, 2 * divisor, int(rng.integers(3, 12)))
            frame = np.repeat(np.arange(len(runs), dtype=np.int8) % 2, runs)
        gap = 0 if rng.random() < 0.3 else int(rng.integers(1, 3 * divisor))
        pieces += [idle(gap), frame]
    line = np.concatenate(pieces)
    expected = check_receiver(divisor, line, rng.random(len(line)) < 0.7)
    assert len(expected.frame_error_cycles) >= 5 and len(expected.data) >= 5
    frames = uart_frames(np.concatenate([line, idle(12 * divisor + 8)]), divisor)
    assert len(expected.data) == sum(f.ok for f in frames)  # no overruns at this ready rate


@pytest.mark.parametrize("divisor", [4, 9])
def test_amaranth_receiver_overruns(divisor, rng):
    """o.ready low for stretches of several frames: each byte completing while one waits
    pulses overrun and is dropped; the waiting byte is kept."""
    data = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    line = uart_encode(data, divisor, random_gaps(rng, len(data), divisor))
    stretch = np.repeat(rng.random(len(line) // (15 * divisor) + 1) < 0.5, 15 * divisor)
    ready = stretch[:len(line)] & (rng.random(len(line)) < 0.8)
    expected = check_receiver(divisor, line, ready)
    assert len(expected.overrun_cycles) >= 3
    assert len(expected.data) + len(expected.overrun_cycles) == len(data)


def run_transmitter(divisor, data, valid_prob, rng, cycles):
    """Offer ``data`` on i (valid rises with probability ``valid_prob`` each cycle, then holds
    until taken); return tx, i.ready per cycle and the cycles bytes were taken."""
    dut = UART(divisor=divisor)
    tx, ready, taken = [], [], []
    state = {"valid": False}

    def per_cycle(ctx, cycle):
        k = len(taken)
        if not state["valid"] and k < len(data):
            state["valid"] = valid_prob >= 1 or rng.random() < valid_prob
        ctx.set(dut.i.valid, state["valid"])
        if state["valid"]:
            ctx.set(dut.i.payload, data[k])
        ctx.set(dut.rx, 1)
        tx.append(ctx.get(dut.tx))
        ready.append(ctx.get(dut.i.ready))
        if state["valid"] and ready[-1]:
            taken.append(cycle)
            state["valid"] = False
        assert not ctx.get(dut.o.valid)

    simulate(dut, cycles, per_cycle)
    return np.array(tx, dtype=np.int8), np.array(ready, dtype=bool), taken


@pytest.mark.parametrize("divisor,valid_prob", [(4, 0.05), (7, 0.02), (16, 0.3), (5, 1.0)])
def test_amaranth_transmitter_random_valid_gaps(divisor, valid_prob, rng):
    data = rng.integers(0, 256, 30, dtype=np.uint8).tobytes()
    frame = 10 * divisor
    tx, ready, taken = run_transmitter(divisor, data, valid_prob, rng,
                                       int(len(data) * (frame + 2 / valid_prob)) + 4 * frame)
    assert len(taken) == len(data)
    # Exactly the golden frame after each taken byte, idle everywhere else.
    expected = idle(len(tx))
    for cycle, byte in zip(taken, data):
        expected[cycle + 1:cycle + 1 + frame] = uart_encode(bytes([byte]), divisor)
    assert np.array_equal(tx, expected)
    assert uart_decode(tx, divisor) == (data, 0)
    # i.ready only while idle or in a stop bit's final cycle.
    busy = np.zeros(len(tx), dtype=bool)
    for cycle in taken:
        busy[cycle + 1:cycle + frame] = True
    assert np.array_equal(ready, ~busy)
    if valid_prob == 1.0:
        assert np.diff(taken).tolist() == [frame] * (len(data) - 1)
        first = taken[0] + 1
        assert np.array_equal(tx[first:first + len(data) * frame], uart_encode(data, divisor))
        assert tx[first + len(data) * frame:].all()  # exactly n * 10 * divisor cycles


def test_amaranth_default_divisor_both_directions(rng):
    data = rng.integers(0, 256, 3, dtype=np.uint8).tobytes()
    line = uart_encode(data, 104, [5, 0, 0])
    assert check_receiver(104, line, np.ones(len(line), dtype=bool)).data == data
    tx, _, taken = run_transmitter(104, data, 1.0, rng, 3 * 1040 + 10)
    assert uart_decode(tx, 104) == (data, 0) and np.diff(taken).tolist() == [1040, 1040]


# --- Verilator via cocotb ---------------------------------------------------------------------


@pytest.mark.parametrize("divisor", [8, 16])
def test_verilator_uart_link(divisor, measure):
    sim_build = build(UART(divisor=divisor), "uart")
    test_dir = new_test_dir(f"uart{divisor}")
    spec = {"divisor": divisor, "seed": divisor, "bytes": 48, "ready_prob": 0.5,
            "valid_prob": 0.3, "baud_bytes": 24, "baud_errors": [0.02, -0.02],
            "report": str(test_dir / "report.json")}
    report = run_cocotb_spec(sim_build, "uart_tb", spec, env_var="ACCELGEN_UART_SPEC",
                             test_dir=test_dir, seed=divisor)
    assert report is not None and "error" not in report, json.dumps(report)
    assert sorted(report) == ["baud_error", "dut_to_host", "full_duplex", "host_to_dut",
                              "pulses", "timeout"]
    measure(f"uart divisor {divisor}: {report['host_to_dut']['bytes']} bytes in, "
            f"{report['dut_to_host']['bytes']} out, {report['full_duplex']['bytes']} full duplex, "
            f"{report['baud_error']['bytes']} at baud errors {report['baud_error']['errors']}")
