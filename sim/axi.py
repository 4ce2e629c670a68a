"""Reusable AXI4 testbench parts for cocotb: a protocol checker and a RAM with wait states.

:class:`AxiProtocolChecker` watches the five channels of an AXI4 port (signals
``<prefix>_awvalid`` etc., the naming of cocotbext-axi's ``from_prefix``; with Amaranth's port
flattening, a member ``axi`` gives prefix ``"axi_"`` and ports ``axi__awvalid``) and fails the
test on:

- a valid that drops, or a payload that changes, while valid is high and ready low (every
  channel, both directions);
- an AW/AR burst that crosses a 4 KiB boundary, is longer than ``max_burst`` beats, is not
  INCR, or (when ``data_width`` is given) is not full-width or not aligned to it;
- ``WLAST``/``RLAST`` anywhere but on the last beat of each burst (write data is matched to
  the AW bursts in order, also when it runs ahead of its address);
- a B response before its burst's last data beat;
- more bursts in flight than allowed (optional, per direction).

It records every AW and AR burst as ``(address, beats)``, for comparison with a model.

:func:`attach_axi_ram` connects a cocotbext-axi ``AxiRam`` and :func:`set_axi_stalls` gives each
of its channels seeded random wait states through the channels' pause generators (a paused
sink holds ready low; a paused source does not start a new beat). :func:`inject_slave_errors`
makes an address range answer SLVERR.

Only the handshake and sampled values are read, in cocotb's read-only phase of each cycle, so
the checker sees what the flops see at the next rising edge.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Iterator, Mapping

__all__ = ["AxiProtocolError", "AxiProtocolChecker", "random_pauses", "attach_axi_ram",
           "set_axi_stalls", "inject_slave_errors", "AXI_CHANNELS", "PAGE_BYTES"]

PAGE_BYTES = 4096
AXI_CHANNELS = ("aw", "w", "b", "ar", "r")

# Payload signals held stable while a channel waits (optional ones are used when present).
_PAYLOADS = {
    "aw": ("awid", "awaddr", "awlen", "awsize", "awburst", "awlock", "awcache", "awprot",
           "awqos"),
    "w": ("wdata", "wstrb", "wlast"),
    "b": ("bid", "bresp"),
    "ar": ("arid", "araddr", "arlen", "arsize", "arburst", "arlock", "arcache", "arprot",
           "arqos"),
    "r": ("rid", "rdata", "rresp", "rlast"),
}


class AxiProtocolError(AssertionError):
    """An AXI4 rule was broken; the message names the channel, the rule and the cycle."""


class _Channel:
    """Valid/ready handshake of one channel, with the stability rule."""

    def __init__(self, dut, prefix: str, name: str):
        self.name = name
        self.valid = getattr(dut, f"{prefix}_{name}valid")
        self.ready = getattr(dut, f"{prefix}_{name}ready")
        self.fields = {}
        for sig in _PAYLOADS[name]:
            handle = getattr(dut, f"{prefix}_{sig}", None)
            if handle is not None:
                self.fields[sig[len(name):]] = handle
        self.waiting: dict[str, int] | None = None  # payload while valid and not ready

    def sample(self, cycle: int) -> dict[str, int] | None:
        """Return the payload on a handshake this cycle, else None; check stability."""
        valid = bool(self.valid.value)
        if not valid:
            if self.waiting is not None:
                raise AxiProtocolError(f"{self.name}valid dropped before {self.name}ready "
                                       f"(cycle {cycle})")
            return None
        payload = {k: int(h.value) for k, h in self.fields.items()}
        if self.waiting is not None and payload != self.waiting:
            changed = [k for k in payload if payload[k] != self.waiting[k]]
            raise AxiProtocolError(f"{self.name} payload changed while waiting for "
                                   f"{self.name}ready: {', '.join(changed)} (cycle {cycle})")
        if bool(self.ready.value):
            self.waiting = None
            return payload
        self.waiting = payload
        return None


class AxiProtocolChecker:
    """Checks the AXI4 rules listed in the module docstring on every cycle.

    Parameters
    ----------
    dut : cocotb handle
    prefix : str
        Signal prefix as for cocotbext-axi's ``from_prefix`` (``"axi_"`` for ``axi__awvalid``).
    clock, reset : cocotb handles
        The clock, and an active-high reset during which nothing is checked.
    max_burst : int
        Longest allowed burst in beats.
    data_width : int, optional
        Data bus width; if given, every burst must be full-width (``AxSIZE``) and aligned.
    max_reads, max_writes : int, optional
        Most bursts in flight: reads from AR handshake to last R beat, writes from AW
        handshake to B response.

    Attributes
    ----------
    ar_bursts, aw_bursts : list of (int, int)
        ``(address, beats)`` of every burst, in handshake order.
    r_beats, w_beats, b_responses : int
        Data beats and write responses seen.
    errors : list of str
        Rule violations (the first also raises, failing the test).
    """

    def __init__(self, dut, prefix: str, clock, reset=None, *, max_burst: int = 256,
                 data_width: int | None = None, max_reads: int | None = None,
                 max_writes: int | None = None):
        self.clock, self.reset = clock, reset
        self.max_burst = max_burst
        self.size = None if data_width is None else (data_width // 8).bit_length() - 1
        self.max_reads, self.max_writes = max_reads, max_writes
        self.channels = {n: _Channel(dut, prefix, n) for n in AXI_CHANNELS}
        self.ar_bursts: list[tuple[int, int]] = []
        self.aw_bursts: list[tuple[int, int]] = []
        self.r_beats = self.w_beats = self.b_responses = 0
        self.errors: list[str] = []
        self.cycle = 0
        self._r_open: deque[int] = deque()   # beats of AR bursts whose data is incomplete
        self._r_count = 0                    # beats of the oldest open read burst seen
        self._w_count = 0                    # beats of the current write burst
        self._w_bursts: list[int] = []       # lengths of completed write data bursts
        self._task = None

    def start(self):
        """Start checking in the background (returns the cocotb task)."""
        import cocotb

        self._task = cocotb.start_soon(self._run())
        return self._task

    def _fail(self, message: str):
        self.errors.append(message)
        raise AxiProtocolError(message)

    async def _run(self):
        from cocotb.triggers import ReadOnly, RisingEdge

        edge, read_only = RisingEdge(self.clock), ReadOnly()
        while True:
            await read_only
            if self.reset is not None and bool(self.reset.value):
                for channel in self.channels.values():
                    channel.waiting = None
            else:
                try:
                    self._step()
                except AxiProtocolError as error:
                    if str(error) not in self.errors:
                        self.errors.append(str(error))
                    raise
            self.cycle += 1
            await edge

    def _step(self):
        ch, cycle = self.channels, self.cycle
        if (aw := ch["aw"].sample(cycle)) is not None:
            self.aw_bursts.append(self._check_address("aw", aw))
            index = len(self.aw_bursts) - 1
            if index < len(self._w_bursts):  # its data came first
                self._check_write_burst(index, self._w_bursts[index])
            if self.max_writes is not None and index + 1 - self.b_responses > self.max_writes:
                self._fail(f"more than {self.max_writes} write bursts in flight (cycle {cycle})")
        if (w := ch["w"].sample(cycle)) is not None:
            self.w_beats += 1
            self._w_count += 1
            index = len(self._w_bursts)
            if index < len(self.aw_bursts):
                beats = self.aw_bursts[index][1]
                if bool(w["last"]) != (self._w_count == beats):
                    self._fail(f"wlast={w['last']} on beat {self._w_count} of a {beats}-beat "
                               f"write burst (cycle {cycle})")
            elif self._w_count > self.max_burst:
                self._fail(f"write data burst longer than {self.max_burst} beats (cycle {cycle})")
            if w["last"]:
                self._w_bursts.append(self._w_count)
                self._w_count = 0
                if index < len(self.aw_bursts):
                    self._check_write_burst(index, self._w_bursts[index])
        if ch["b"].sample(cycle) is not None:
            self.b_responses += 1
            if self.b_responses > min(len(self._w_bursts), len(self.aw_bursts)):
                self._fail(f"write response {self.b_responses} before its burst's address "
                           f"and last data beat (cycle {cycle})")
        if (ar := ch["ar"].sample(cycle)) is not None:
            self.ar_bursts.append(self._check_address("ar", ar))
            self._r_open.append(self.ar_bursts[-1][1])
            if self.max_reads is not None and len(self._r_open) > self.max_reads:
                self._fail(f"more than {self.max_reads} read bursts in flight (cycle {cycle})")
        if (r := ch["r"].sample(cycle)) is not None:
            self.r_beats += 1
            if not self._r_open:
                self._fail(f"read data without a read burst (cycle {cycle})")
            self._r_count += 1
            beats = self._r_open[0]
            if bool(r["last"]) != (self._r_count == beats):
                self._fail(f"rlast={r['last']} on beat {self._r_count} of a {beats}-beat read "
                           f"burst (cycle {cycle})")
            if r["last"]:
                self._r_open.popleft()
                self._r_count = 0

    def _check_address(self, name: str, a: dict[str, int]) -> tuple[int, int]:
        addr, beats, cycle = a["addr"], a["len"] + 1, self.cycle
        size = a["size"]
        if a["burst"] != 1:
            self._fail(f"{name}burst={a['burst']}, expected INCR (1) (cycle {cycle})")
        if beats > self.max_burst:
            self._fail(f"{name} burst of {beats} beats, more than {self.max_burst} "
                       f"(cycle {cycle})")
        if self.size is not None:
            if size != self.size:
                self._fail(f"{name}size={size}, expected full width {self.size} (cycle {cycle})")
            if addr % (1 << size):
                self._fail(f"{name}addr {addr:#x} not aligned to {1 << size} bytes "
                           f"(cycle {cycle})")
        start = addr & ~((1 << size) - 1)
        if start % PAGE_BYTES + (beats << size) > PAGE_BYTES:
            self._fail(f"{name} burst at {addr:#x} of {beats} x {1 << size} bytes crosses a "
                       f"4 KiB boundary (cycle {cycle})")
        return addr, beats

    def _check_write_burst(self, index: int, data_beats: int):
        beats = self.aw_bursts[index][1]
        if data_beats != beats:
            self._fail(f"write burst {index}: wlast after {data_beats} beats, awlen says "
                       f"{beats} (cycle {self.cycle})")

    def check_complete(self):
        """Raise unless every burst has finished: all data beats and write responses seen."""
        if self.errors:
            raise AxiProtocolError(self.errors[0])
        if self._r_open:
            raise AxiProtocolError(f"{len(self._r_open)} read bursts without all their data")
        if self._w_count or len(self._w_bursts) != len(self.aw_bursts):
            raise AxiProtocolError(f"{len(self.aw_bursts)} write bursts but "
                                   f"{len(self._w_bursts)} complete data bursts"
                                   f"{' and a partial one' if self._w_count else ''}")
        if self.b_responses != len(self.aw_bursts):
            raise AxiProtocolError(f"{len(self.aw_bursts)} write bursts but "
                                   f"{self.b_responses} responses")


def random_pauses(probability: float, rng: random.Random) -> Iterator[bool]:
    """An endless pause pattern: each cycle paused with ``probability``."""
    if probability <= 0:
        while True:
            yield False
    while True:
        yield rng.random() < probability


def _ram_channels(ram) -> dict:
    return {"aw": ram.write_if.aw_channel, "w": ram.write_if.w_channel,
            "b": ram.write_if.b_channel, "ar": ram.read_if.ar_channel,
            "r": ram.read_if.r_channel}


def set_axi_stalls(ram, stall: float | Mapping[str, float], seed: int = 0) -> None:
    """Give a cocotbext-axi ``AxiRam`` (or slave) random wait states on every channel.

    Parameters
    ----------
    stall : float or mapping of channel name ("aw", "w", "b", "ar", "r") to float
        Probability that a channel is paused on a cycle: the RAM holds ``awready``,
        ``wready``, ``arready`` low, or does not start a ``bvalid``/``rvalid`` beat. 0 (or a
        missing channel) clears the pause generator.
    seed : int
        Each channel draws from its own generator seeded from ``seed`` and its name.
    """
    for index, (name, channel) in enumerate(_ram_channels(ram).items()):
        p = stall.get(name, 0.0) if isinstance(stall, Mapping) else stall
        if p > 0:
            channel.set_pause_generator(random_pauses(p, random.Random(seed * 8 + index)))
        else:
            channel.clear_pause_generator()


def attach_axi_ram(dut, prefix: str, clock, reset=None, *, size: int,
                   stall: float | Mapping[str, float] = 0.0, seed: int = 0,
                   quiet: bool = True):
    """Connect a cocotbext-axi ``AxiRam`` of ``size`` bytes to the AXI4 port ``prefix``.

    ``reset`` is active high. With ``quiet``, the RAM's per-burst INFO logging is silenced
    (it costs time on long runs). Returns the RAM; its ``read``/``write`` methods access
    the memory directly, without simulation time.
    """
    from cocotbext.axi import AxiBus, AxiRam

    ram = AxiRam(AxiBus.from_prefix(dut, prefix), clock, reset, size=size)
    if quiet:
        for interface in (ram.write_if, ram.read_if):
            interface.log.setLevel(logging.WARNING)
        for channel in _ram_channels(ram).values():
            channel.log.setLevel(logging.WARNING)
    set_axi_stalls(ram, stall, seed)
    return ram


def inject_slave_errors(ram, start: int, end: int) -> None:
    """Make a cocotbext-axi ``AxiRam`` answer SLVERR for beats at addresses in [start, end).

    The slave models turn an exception of their memory access into SLVERR: a faulted read
    beat returns zeros, a faulted write beat is not written.
    """
    def guard(access):
        async def guarded(address, argument):
            if start <= address < end:
                raise OSError(f"injected slave error at {address:#x}")
            return await access(address, argument)
        return guarded

    ram.read_if._read = guard(ram.read_if._read)
    ram.write_if._write = guard(ram.write_if._write)
