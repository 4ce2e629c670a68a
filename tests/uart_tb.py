"""cocotb tests of the emitted UART through ``sim.uart.UartLink`` (the host's end of the line).

``tests/test_uart.py`` writes a spec (divisor, seed, byte counts, stall probabilities, report
path) and points ``ACCELGEN_UART_SPEC`` at it. Host-to-DUT bytes arrive on ``o`` under random
``o.ready`` stalls and are compared with the bytes sent (and with ``golden.uart`` for breaks);
DUT-to-host bytes are offered on ``i`` with random ``valid`` gaps and compared with what the
link decodes from ``tx``. Each test adds its figures to the JSON report; the first failure's
message goes to its ``error`` key.
"""

import functools
import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from golden.uart import SYNC_STAGES, uart_frames
from sim.uart import UartLink, UartTimeoutError


def load_spec():
    with open(os.environ["ACCELGEN_UART_SPEC"]) as f:
        return json.load(f)


def update_report(**entries):
    path = load_spec()["report"]
    report = {}
    if os.path.exists(path):
        with open(path) as f:
            report = json.load(f)
    if "error" in entries and report.get("error"):
        return  # keep the first failure's message
    report.update(entries)
    with open(path, "w") as f:
        json.dump(report, f)


def reported(test):
    """Record the failure message of ``test`` in the report (the runner puts it first)."""

    @functools.wraps(test)
    async def wrapper(dut):
        try:
            await test(dut)
        except Exception as error:  # not CancelledError: a failing task already reported
            update_report(error=f"{test.__name__}: {type(error).__name__}: {error}")
            raise

    return wrapper


def spawn(coroutine):
    """``cocotb.start_soon`` that reports the task's failure (cocotb then cancels the test)."""

    async def recorded():
        try:
            return await coroutine
        except Exception as error:
            update_report(error=f"{coroutine.__name__}: {type(error).__name__}: {error}")
            raise

    return cocotb.start_soon(recorded())


class UartBench:
    """The DUT, the link, and stream-side drivers with random stalls."""

    def __init__(self, dut, name):
        self.spec = load_spec()
        self.dut, self.name = dut, name
        self.divisor = self.spec["divisor"]
        self.rng = random.Random(f"{self.spec['seed']}-{name}")
        self.frame = 10 * self.divisor
        Clock(dut.clk, 10, unit="ns").start()
        self.link = UartLink(dut.clk, dut.rx, dut.tx, self.divisor)
        self.received = bytearray()
        self.pulses = {"frame_error": 0, "overrun": 0}
        self.accept_cycles = []

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        await RisingEdge(dut.clk)
        self.link.start()

    def random_bytes(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def random_gaps(self, n):
        """Idle cycles before each byte: often none, sometimes up to two frames."""
        return [0 if self.rng.random() < 0.4 else self.rng.randrange(2 * self.frame)
                for _ in range(n)]

    async def consume(self, n, ready_prob, max_cycles):
        """Take ``n`` bytes from ``o`` with ``o.ready`` high with probability ``ready_prob``
        each cycle; count the error pulses meanwhile."""
        dut = self.dut
        for _ in range(max_cycles):
            ready = self.rng.random() < ready_prob
            dut.o__ready.value = int(ready)
            await ReadOnly()
            if ready and dut.o__valid.value:
                self.received.append(int(dut.o__payload.value))
            for name in self.pulses:
                self.pulses[name] += int(getattr(dut, name).value)
            await RisingEdge(dut.clk)
            if len(self.received) >= n:
                break
        dut.o__ready.value = 0

    async def produce(self, data, valid_prob):
        """Offer ``data`` on ``i``: each byte's ``valid`` rises with probability
        ``valid_prob`` per cycle and stays up until the byte is taken."""
        dut, cycle = self.dut, 0
        for byte in data:
            while self.rng.random() >= valid_prob:
                await RisingEdge(dut.clk)
                cycle += 1
            dut.i__valid.value = 1
            dut.i__payload.value = byte
            while True:
                await ReadOnly()
                taken = bool(dut.i__ready.value)
                await RisingEdge(dut.clk)
                cycle += 1
                if taken:
                    self.accept_cycles.append(cycle - 1)
                    break
            dut.i__valid.value = 0

    def check_clean(self):
        assert self.pulses == {"frame_error": 0, "overrun": 0}, f"error pulses: {self.pulses}"
        assert self.link.frame_errors == 0, f"{self.link.frame_errors} framing errors on tx"
        assert self.link.glitches == 0, f"{self.link.glitches} glitches on tx"


def compare(sent, got, what):
    if got == sent:
        return
    first = next((k for k, (a, b) in enumerate(zip(sent, got)) if a != b),
                 min(len(sent), len(got)))
    raise AssertionError(f"{what}: sent {len(sent)} bytes, got {len(got)}; first difference "
                         f"at byte {first}: sent {bytes(sent[first:first + 8]).hex(' ')}, "
                         f"got {bytes(got[first:first + 8]).hex(' ')}")


@cocotb.test()
@reported
async def host_to_dut_with_gaps_and_ready_stalls(dut):
    """Random bytes with random idle gaps (many zero) into rx; o.ready stalls at random."""
    bench = UartBench(dut, "host_to_dut")
    await bench.reset()
    n = bench.spec["bytes"]
    data, gaps = bench.random_bytes(n), bench.random_gaps(n)
    consumer = spawn(bench.consume(n, bench.spec["ready_prob"],
                                   sum(gaps) + (n + 4) * bench.frame))
    await bench.link.write(data, gaps)
    await consumer
    compare(data, bytes(bench.received), "host to DUT")
    bench.check_clean()
    update_report(host_to_dut={"bytes": n})


@cocotb.test()
@reported
async def dut_to_host_with_valid_gaps(dut):
    """Random bytes offered on i with random valid gaps, then back to back: the link decodes
    them all, and back-to-back bytes are taken exactly one frame apart (no idle bit)."""
    bench = UartBench(dut, "dut_to_host")
    await bench.reset()
    n = bench.spec["bytes"]
    data = bench.random_bytes(n)
    producer = spawn(bench.produce(data, bench.spec["valid_prob"]))
    got = await bench.link.read(n, timeout_cycles=40 * bench.frame * n)
    await producer
    compare(data, got, "DUT to host (valid gaps)")

    burst = bench.random_bytes(max(4, n // 4))
    bench.accept_cycles.clear()
    producer = spawn(bench.produce(burst, 1.0))
    got = await bench.link.read(len(burst), timeout_cycles=2 * bench.frame * len(burst))
    await producer
    compare(burst, got, "DUT to host (back to back)")
    steps = set(np.diff(bench.accept_cycles).tolist())
    assert steps == {bench.frame}, f"back-to-back bytes taken {steps} cycles apart"
    bench.check_clean()
    assert bench.link.pending() == 0
    update_report(dut_to_host={"bytes": n + len(burst)})


@cocotb.test()
@reported
async def full_duplex(dut):
    """Both directions at once, with stalls on both stream sides."""
    bench = UartBench(dut, "full_duplex")
    await bench.reset()
    n = bench.spec["bytes"] // 2
    down, up = bench.random_bytes(n), bench.random_bytes(n)
    gaps = bench.random_gaps(n)
    consumer = spawn(bench.consume(n, bench.spec["ready_prob"],
                                   sum(gaps) + (n + 4) * bench.frame))
    producer = spawn(bench.produce(up, bench.spec["valid_prob"]))
    writer = spawn(bench.link.write(down, gaps))
    got = await bench.link.read(n, timeout_cycles=40 * bench.frame * n)
    await writer
    await producer
    await consumer
    compare(down, bytes(bench.received), "full duplex, host to DUT")
    compare(up, got, "full duplex, DUT to host")
    bench.check_clean()
    update_report(full_duplex={"bytes": 2 * n})


@cocotb.test()
@reported
async def baud_error_tolerated(dut):
    """The host's bit time 2 % long and 2 % short, frames back to back (the worst case: no
    idle time to resynchronize); always ready."""
    bench = UartBench(dut, "baud_error")
    await bench.reset()
    n = bench.spec["baud_bytes"]
    consumer = spawn(bench.consume(2 * n, 1.0, (2 * n + 4) * bench.frame))
    sent = bytearray()
    for error in bench.spec["baud_errors"]:
        bench.link.baud_error = error
        data = bench.random_bytes(n)
        await bench.link.write(data)
        sent += data
    bench.link.baud_error = 0.0
    await consumer
    compare(bytes(sent), bytes(bench.received), f"baud errors {bench.spec['baud_errors']}")
    bench.check_clean()
    update_report(baud_error={"bytes": len(sent), "errors": bench.spec["baud_errors"]})


@cocotb.test()
@reported
async def break_and_overrun_pulses(dut):
    """A break (rx low for 1.5 frames) is one framing error and delivers nothing, as the
    golden receiver says; bytes arriving while o is not taken pulse overrun and the first is
    kept; afterwards traffic is clean."""
    bench = UartBench(dut, "pulses")
    await bench.reset()
    d = bench.divisor
    consumer = spawn(bench.consume(1, 1.0, 4 * bench.frame))
    await bench.link.send_break(15 * d)
    await consumer  # runs its full length: nothing arrives
    line = np.concatenate([np.zeros(15 * d, dtype=np.int8), np.ones(4 * bench.frame - 15 * d,
                                                                     dtype=np.int8)])
    frames = uart_frames(line, d)
    assert [f.ok for f in frames] == [False]  # the golden model: one framing error
    assert bench.received == bytearray() and bench.pulses == {"frame_error": 1, "overrun": 0}

    # o.ready low: the first byte waits on o, the next three each pulse overrun.
    data = bench.random_bytes(4)
    bench.pulses = {"frame_error": 0, "overrun": 0}
    consumer = spawn(bench.consume(1, 0.0, 4 * bench.frame + 2 * d))
    await bench.link.write(data)
    await consumer
    assert bench.pulses == {"frame_error": 0, "overrun": 3}, bench.pulses
    await bench.consume(1, 1.0, SYNC_STAGES + 2 * d)
    assert bytes(bench.received) == data[:1], f"kept {bytes(bench.received).hex()}"

    # Clean afterwards.
    bench.received.clear()
    more = bench.random_bytes(8)
    consumer = spawn(bench.consume(8, 0.5, 20 * bench.frame))
    await bench.link.write(more, 3)
    await consumer
    compare(more, bytes(bench.received), "after break and overruns")
    update_report(pulses={"frame_errors": 1, "overruns": 3})


@cocotb.test()
@reported
async def read_times_out(dut):
    """UartLink.read raises UartTimeoutError (a TimeoutError) naming what arrived."""
    bench = UartBench(dut, "timeout")
    await bench.reset()
    producer = spawn(bench.produce(b"\x5a", 1.0))
    try:
        await bench.link.read(2, timeout_cycles=3 * bench.frame)
    except UartTimeoutError as error:
        assert isinstance(error, TimeoutError) and "got 1: 5a" in str(error), str(error)
    else:
        raise AssertionError("read of 2 bytes when 1 was sent did not time out")
    await producer
    assert bench.link.pending() == 1 and bench.link.read_nowait() == b"\x5a"
    update_report(timeout={"ok": True})
