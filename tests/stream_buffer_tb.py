"""cocotb tests of an emitted stream buffer, and the test plan shared with the Amaranth tests.

The simulator-independent parts are used by both levels (``tests/test_stream_buffer.py`` runs
them in the Amaranth simulator):

- :class:`ToyDesign`: the design under the buffer, each input word giving ``fanouts[k]``
  (0, 1 or 2) output words of a mixing function, so ``expect`` can differ from ``count``;
- :class:`DesignSide`: that design's stream behaviour cycle by cycle, with random ``o.ready``
  and ``i.valid`` stalls and a minimum latency; it checks every word it is sent against the
  model's inputs and records the handshake cycles, ``busy`` rises and ``done`` pulses;
- :func:`plan_runs` and :func:`do_run`: a sequence of runs (host writes the inputs through the
  bus in random order, starts, optionally reads the input region while busy, then checks the
  counters, timing and every output entry read back against
  ``golden.memory.stream_buffer.StreamBufferModel``), written once against a small host
  interface (``write_block``, ``read_block``, ``start``, ``status``, ``tick``).

``tests/test_stream_buffer.py`` writes a spec (config, seed, AXI pause probability, report
path) and points ``ACCELGEN_STREAM_BUFFER_SPEC`` at it; here cocotbext-axi's ``AxiLiteMaster``
(random pauses on all five channels) is the host.
"""

import itertools
import json
import logging
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from golden.memory.stream_buffer import (
    OKAY,
    SLVERR,
    StreamBufferConfig,
    StreamBufferModel,
    from_lanes,
    input_address,
    output_address,
    to_lanes,
)

__all__ = ["ToyDesign", "DesignSide", "plan_runs", "do_run", "check_bus_errors",
           "check_back_to_back"]


class ToyDesign:
    """Input word ``k`` gives ``fanouts[k]`` output words ``mix(word, k, j)``."""

    def __init__(self, out_width: int, fanouts: list[int]):
        self.mask = (1 << out_width) - 1
        self.fanouts = list(fanouts)

    def outputs(self, word: int, index: int) -> list[int]:
        return [((word * 0x9E37_79B9_7F4A_7C15) ^ (word >> 7) ^ (index << 5)
                 ^ (j * 0x5DEE_CE66_D) ^ (index * 0x1F)) & self.mask
                for j in range(self.fanouts[index])]

    def __call__(self, inputs: list[int]) -> list[int]:
        return [y for k, w in enumerate(inputs) for y in self.outputs(w, k)]


class DesignSide:
    """The toy design on the buffer's streams, one cycle per :meth:`drive` / :meth:`sample`.

    ``o.ready`` is high with probability ``ready_prob``; a pending output word is offered on
    ``i`` with probability ``valid_prob`` once ``latency`` cycles passed since its input was
    taken, and then held until taken. Between runs it keeps offering its leftover words, and
    :meth:`sample` checks the buffer refuses them (``i.ready == busy``).
    """

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.cycle = 0
        self.busy_rises: list[int] = []
        self.done_cycles: list[int] = []
        self.queue: deque = deque()
        self._valid = self._ready = self._busy = False
        self.new_run([], ToyDesign(1, []))

    def new_run(self, inputs, design, *, ready_prob=1.0, valid_prob=1.0, latency=1):
        """Expect ``inputs`` on ``o`` next; forget the previous run's records."""
        self.inputs, self.design = list(inputs), design
        self.ready_prob, self.valid_prob, self.latency = ready_prob, valid_prob, latency
        self.taken, self.o_cycles = [], []
        self.accepted, self.i_cycles = [], []
        self.busy_rises.clear()
        self.done_cycles.clear()

    def flush(self) -> int:
        """Drop the words the buffer did not take (the design is reset); return how many."""
        left = len(self.queue)
        self.queue.clear()
        self._valid = False
        return left

    def drive(self) -> tuple[bool, bool, int]:
        """``(o_ready, i_valid, i_payload)`` for this cycle."""
        if not self._valid and self.queue and self.queue[0][0] <= self.cycle:
            self._valid = self.valid_prob >= 1 or self.rng.random() < self.valid_prob
        self._ready = self.ready_prob >= 1 or self.rng.random() < self.ready_prob
        return self._ready, self._valid, self.queue[0][1] if self._valid else 0

    def sample(self, o_valid: bool, o_payload, i_ready: bool, busy: bool, done: bool) -> None:
        """Record this cycle's handshakes; ``o_payload`` is called only on a transfer."""
        c = self.cycle
        assert i_ready == busy, f"cycle {c}: i.ready {i_ready} while busy {busy}"
        assert busy or not o_valid, f"cycle {c}: o.valid while idle"
        if busy and not self._busy:
            self.busy_rises.append(c)
        self._busy = busy
        if done:
            self.done_cycles.append(c)
        if self._ready and o_valid:
            word, k = o_payload(), len(self.taken)
            assert k < len(self.inputs), f"cycle {c}: input word {k} beyond count"
            assert word == self.inputs[k], (f"cycle {c}: input word {k} is {word:#x}, "
                                            f"expected {self.inputs[k]:#x}")
            self.taken.append(word)
            self.o_cycles.append(c)
            self.queue.extend((c + self.latency, y) for y in self.design.outputs(word, k))
        if self._valid and i_ready:
            self.accepted.append(self.queue.popleft()[1])
            self.i_cycles.append(c)
            self._valid = False
        self.cycle = c + 1


def plan_runs(config: StreamBufferConfig, seed: int) -> list[dict]:
    """Runs exercising full depth, count != expect both ways, excess words (overflow),
    zero-length runs and a one-word run, with stalls on both streams."""
    rng = random.Random(seed)
    depth = config.depth

    def run(count, fanouts, expect, *, ready_prob, valid_prob, latency=1, poll=True):
        return {"count": count, "fanouts": fanouts, "expect": expect,
                "words": [rng.getrandbits(config.in_width) for _ in range(count)],
                "ready_prob": ready_prob, "valid_prob": valid_prob, "latency": latency,
                "poll": poll}

    runs = []
    fan = [rng.choices((0, 1, 2), (1, 5, 2))[0] for _ in range(depth)]
    runs.append(run(depth, fan, min(sum(fan), depth), ready_prob=0.6, valid_prob=0.7))
    count = rng.randint((depth + 1) // 2, depth)
    fan = [2] * count
    # Two words per input, fewer expected, coming back faster than the inputs leave: the
    # excess is dropped (overflow) until the last input is taken, the rest stays in the design.
    runs.append(run(count, fan, rng.randint(1, count), ready_prob=0.4, valid_prob=1.0,
                    latency=2))
    runs.append(run(0, [], 0, ready_prob=0.5, valid_prob=0.5))
    count = rng.randint(1, depth)
    runs.append(run(count, [0] * count, 0, ready_prob=0.4, valid_prob=1.0))
    runs.append(run(1, [1], 1, ready_prob=1.0, valid_prob=1.0, latency=3, poll=False))
    count = rng.randint(1, depth)
    fan = [rng.choice((0, 1)) for _ in range(count)]
    runs.append(run(count, fan, sum(fan), ready_prob=0.3, valid_prob=0.4, latency=4))
    return runs


async def write_entries(host, model, entries: dict[int, int]) -> None:
    """Write input entries, in random order, a whole entry per block write."""
    cfg = model.config
    order = list(entries)
    host.rng.shuffle(order)
    for entry in order:
        address = input_address(cfg, entry, 0)
        lanes = to_lanes(entries[entry], cfg.in_width)
        expected = [model.write(address + 4 * k, lane) for k, lane in enumerate(lanes)]
        resp = await host.write_block(address, lanes)
        assert resp == max(expected), f"write of input entry {entry}: response {resp}"


async def read_entry(host, model, region: str, entry: int) -> None:
    """Read an entry back lane by lane and compare it with the model."""
    cfg = model.config
    if region == "input":
        address, lanes, width = input_address(cfg, entry), cfg.in_lanes, cfg.in_width
        expected = model.inputs[entry]
    else:
        address, lanes, width = output_address(cfg, entry), cfg.out_lanes, cfg.out_width
        expected = model.outputs[entry]
    words, resp = await host.read_block(address, lanes)
    assert resp == OKAY, f"read of {region} entry {entry}: response {resp}"
    got = from_lanes(words, width)
    assert got == expected, f"{region} entry {entry}: expected {expected:#x}, got {got:#x}"


async def do_run(host, model, side: DesignSide, plan: dict, stats: dict,
                 max_cycles: int = 20000) -> dict:
    """One run of the plan: write, start, wait for done, check everything. Returns what the
    design side measured (for the caller's own assertions)."""
    cfg = model.config
    count, expect = plan["count"], plan["expect"]
    await write_entries(host, model, dict(enumerate(plan["words"])))
    design = ToyDesign(cfg.out_width, plan["fanouts"])
    result = model.run(count, expect, design)
    side.new_run(result.inputs, design, ready_prob=plan["ready_prob"],
                 valid_prob=plan["valid_prob"], latency=plan["latency"])
    await host.start(count, expect)
    waited = 0
    while not side.done_cycles:
        assert waited < max_cycles, (f"no done after {max_cycles} cycles: sent "
                                     f"{len(side.taken)}/{count}, captured "
                                     f"{len(side.accepted)}/{expect}")
        if plan["poll"] and host.rng.random() < 0.2:  # the bus takes the input read port
            await read_entry(host, model, "input", host.rng.randrange(cfg.depth))
            stats["reads_during_runs"] += 1
        else:
            await host.tick()
        waited += 1
    status = await host.status()
    dropped = len(side.accepted) - expect
    assert len(side.done_cycles) == 1, f"done pulsed at cycles {side.done_cycles}"
    assert side.taken == result.inputs
    assert side.accepted[:expect] == result.captured, "captured words differ from the model"
    assert 0 <= dropped <= result.excess
    counters = {k: status[k] for k in ("busy", "sent", "received", "overflow")}
    assert counters == {"busy": 0, "sent": count, "received": expect,
                        "overflow": int(dropped > 0)}, counters
    done = side.done_cycles[0]
    if count == 0 and expect == 0:
        assert not side.busy_rises and status["cycles"] == 1
    else:
        assert len(side.busy_rises) == 1
        assert status["cycles"] == done - (side.busy_rises[0] - 1), (status, done,
                                                                     side.busy_rises)
    if side.o_cycles and side.i_cycles and side.i_cycles[0] >= side.o_cycles[0]:
        assert status["first_output"] == side.i_cycles[0] - side.o_cycles[0]
    else:
        assert status["first_output"] == 0
    left = side.flush()
    assert dropped + left == result.excess
    stats["runs"] += 1
    stats["dropped"] += dropped
    stats["left_in_design"] += left
    stats["overflow_runs"] += dropped > 0
    for entry in range(cfg.depth):
        await read_entry(host, model, "output", entry)
    return {"o_cycles": list(side.o_cycles), "i_cycles": list(side.i_cycles),
            "busy_rise": side.busy_rises[0] if side.busy_rises else None, "done": done,
            **status}


async def check_bus_errors(host, model) -> int:
    """SLVERR for output-region writes and any entry beyond depth; unused lanes of the input
    stride ignored (OKAY); unused lanes/bits read 0. Returns the number of SLVERRs seen."""
    cfg = model.config
    rng = host.rng
    seen = 0
    addresses = [output_address(cfg, rng.randrange(cfg.depth), rng.randrange(cfg.out_lanes))]
    for stride, base in ((cfg.in_stride, 0), (cfg.out_stride, cfg.region_bytes)):
        last = base + cfg.region_bytes - 4
        if base + cfg.depth * stride <= last:  # entries beyond depth inside the region
            addresses += [base + cfg.depth * stride, last]
    addresses += [4 * lane for lane in range(cfg.in_lanes, cfg.in_stride // 4)]
    addresses += [cfg.region_bytes + 4 * lane for lane in range(cfg.out_lanes,
                                                                cfg.out_stride // 4)]
    for address in addresses:
        data = rng.getrandbits(32)
        expected = model.write(address, data)
        resp = await host.write_block(address, [data])
        assert resp == expected, f"write {address:#x}: response {resp}, expected {expected}"
        words, resp = await host.read_block(address, 1)
        assert (words[0], resp) == model.read(address), (
            f"read {address:#x}: got {words[0]:#x}/{resp}, expected {model.read(address)}")
        seen += (resp == SLVERR) + (expected == SLVERR)
    # The top lane of an entry keeps only the bits below in_width.
    address = input_address(cfg, 0, cfg.in_lanes - 1)
    assert await host.write_block(address, [0xFFFF_FFFF]) == model.write(address, 0xFFFF_FFFF)
    await read_entry(host, model, "input", 0)
    return seen


async def check_back_to_back(host, model, side: DesignSide, latency: int) -> dict:
    """A full-depth run with no stalls: one word per cycle on ``o``, the first three cycles
    after start, and ``cycles`` / ``first_output`` as documented. Returns the measurements."""
    cfg = model.config
    rng = host.rng
    plan = {"count": cfg.depth, "fanouts": [1] * cfg.depth, "expect": cfg.depth,
            "words": [rng.getrandbits(cfg.in_width) for _ in range(cfg.depth)],
            "ready_prob": 1.0, "valid_prob": 1.0, "latency": latency, "poll": False}
    stats = {"runs": 0, "dropped": 0, "left_in_design": 0, "overflow_runs": 0,
             "reads_during_runs": 0}
    got = await do_run(host, model, side, plan, stats)
    o_cycles, i_cycles = got["o_cycles"], got["i_cycles"]
    assert o_cycles == list(range(o_cycles[0], o_cycles[0] + cfg.depth)), "o has bubbles"
    assert o_cycles[0] == got["busy_rise"] + 2, "first o word not 3 cycles after start"
    assert i_cycles == [c + latency for c in o_cycles]
    assert got["first_output"] == latency
    assert got["cycles"] == cfg.depth + latency + 3
    assert got["done"] == i_cycles[-1] + 1
    return got


# --- cocotb ---------------------------------------------------------------------------------

class CocotbHost:
    """The host interface of :func:`do_run` on cocotbext-axi's AxiLiteMaster."""

    def __init__(self, dut, spec):
        from cocotbext.axi import AxiLiteBus, AxiLiteMaster

        self.dut = dut
        self.rng = random.Random(spec["seed"])
        logging.getLogger(f"cocotb.{dut._name}.bus_").setLevel(logging.WARNING)
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "bus_"), dut.clk, dut.rst)
        channels = (self.master.write_if.aw_channel, self.master.write_if.w_channel,
                    self.master.write_if.b_channel, self.master.read_if.ar_channel,
                    self.master.read_if.r_channel)
        for k, channel in enumerate(channels):
            rng = random.Random(spec["seed"] * 10 + k)
            pause = spec["pause"]
            channel.set_pause_generator(rng.random() < pause for _ in itertools.count())

    async def tick(self):
        await RisingEdge(self.dut.clk)

    async def write_block(self, address, words):
        data = b"".join(w.to_bytes(4, "little") for w in words)
        return int((await self.master.write(address, data)).resp)

    async def read_block(self, address, count):
        response = await self.master.read(address, 4 * count)
        data = response.data
        return [int.from_bytes(data[4 * k:4 * k + 4], "little") for k in range(count)], \
            int(response.resp)

    async def start(self, count, expect):
        self.dut.count.value = count
        self.dut.expect.value = expect
        self.dut.start.value = 1
        await RisingEdge(self.dut.clk)
        self.dut.start.value = 0

    async def status(self):
        await ReadOnly()
        dut = self.dut
        values = {name: int(getattr(dut, name).value) for name in
                  ("busy", "sent", "received", "overflow", "cycles", "first_output")}
        await RisingEdge(dut.clk)
        return values


async def design_loop(dut, side: DesignSide):
    """Drive the design side of the buffer forever (ports set after each edge, the handshakes
    sampled in the read-only phase)."""
    last = None
    while True:
        ready, valid, payload = side.drive()
        dut.o__ready.value = int(ready)
        dut.i__valid.value = int(valid)
        if valid and payload != last:
            dut.i__payload.value = payload
            last = payload
        await ReadOnly()
        side.sample(bool(dut.o__valid.value), lambda: dut.o__payload.value.to_unsigned(),
                    bool(dut.i__ready.value), bool(dut.busy.value), bool(dut.done.value))
        await RisingEdge(dut.clk)


async def setup(dut):
    with open(os.environ["ACCELGEN_STREAM_BUFFER_SPEC"]) as f:
        spec = json.load(f)
    config = StreamBufferConfig(**spec["config"])
    Clock(dut.clk, 10, unit="ns").start()
    host = CocotbHost(dut, spec)
    dut.rst.value = 1
    dut.start.value = 0
    dut.o__ready.value = 0
    dut.i__valid.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    side = DesignSide(spec["seed"] + 1)
    cocotb.start_soon(design_loop(dut, side))
    return spec, config, host, StreamBufferModel(config), side


# The memories keep their contents across the tests below (reset does not clear them) while
# each test starts a fresh model: bus_errors, which changes no output entry, comes first, and
# every later run writes the input entries it sends. cocotb runs them in this order.


def report(spec, name, values):
    with open(f"{spec['report']}.{name}.json", "w") as f:
        json.dump(values, f)


@cocotb.test()
async def bus_errors(dut):
    """SLVERR and ignored lanes through the AXI master."""
    spec, config, host, model, side = await setup(dut)
    report(spec, "bus_errors", {"slverr": await check_bus_errors(host, model)})


@cocotb.test()
async def random_runs(dut):
    """The planned runs with stalls on both streams and on every AXI channel."""
    spec, config, host, model, side = await setup(dut)
    stats = {"runs": 0, "dropped": 0, "left_in_design": 0, "overflow_runs": 0,
             "reads_during_runs": 0}
    for plan in plan_runs(config, spec["seed"]):
        await do_run(host, model, side, plan, stats)
    report(spec, "random_runs", stats)


@cocotb.test()
async def back_to_back_without_stalls(dut):
    """II = 1 on ``o``, and the documented start-to-first-word, cycles and first_output."""
    spec, config, host, model, side = await setup(dut)
    got = await check_back_to_back(host, model, side, latency=2)
    report(spec, "back_to_back_without_stalls",
           {"cycles": got["cycles"], "first_output": got["first_output"],
            "words": len(got["o_cycles"]),
            "o_span": got["o_cycles"][-1] - got["o_cycles"][0] + 1})
