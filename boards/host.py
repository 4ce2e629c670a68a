"""The host client: one API to a design behind ``hw.host_top.HostTop``, on a board over a serial
port or in simulation over a cocotb UART link (``sim.uart.UartTransport``).

The client only needs a *transport* with two blocking calls, ``write(data: bytes)`` and
``read(n: int) -> bytes`` (raising ``TimeoutError``), so the same code and the same checks run
on hardware and in simulation::

    client = HostClient.from_build("build/icebreaker", SerialTransport("/dev/ttyUSB1"))
    client.check_design()
    run = client.run(input_words, expect=len(input_words))
    run.outputs, run.cycles, run.first_output
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from golden.host_bridge import (
    MAX_WORDS,
    STATUS_OK,
    encode_ping,
    encode_read,
    encode_write,
    parse_ping_response,
    parse_read_response,
    parse_write_response,
    ping_response_length,
    read_response_length,
    write_response_length,
)
from golden.host_top import BUFFER_BASE, CSR_BASE, MAGIC
from golden.memory.csr import RegisterMap, regmap_from_dict, regmap_to_dict
from golden.memory.stream_buffer import (
    StreamBufferConfig,
    from_lanes,
    input_address,
    output_address,
    to_lanes,
)

__all__ = ["Transport", "SerialTransport", "HostError", "RunResult", "HostClient",
           "describe_top"]


def describe_top(top) -> dict:
    """What a host needs to know about a ``HostTop`` (written as a build's ``build.json``):
    the design's generator and parameters, its fingerprint, the register map and the stream
    buffers' parameters."""
    from golden.host_top import design_id

    return {"generator": top.generator, "parameters": top.design.config.to_dict(),
            "design_id": design_id(top.generator, top.design.config),
            "host": top.config.to_dict(), "divisor": top.divisor,
            "regmap": regmap_to_dict(top.regmap), "buffer": top.buffer_config.to_dict()}


class Transport(Protocol):
    """A byte pipe to the top's UART."""

    def write(self, data: bytes) -> None: ...

    def read(self, n: int) -> bytes: ...


class HostError(RuntimeError):
    """The top answered something other than what the protocol says (or nothing)."""


class SerialTransport:
    """A serial port (pyserial): the board's USB-UART.

    Parameters
    ----------
    port : str
        E.g. ``/dev/ttyUSB1`` (iCEBreaker and ULX3S: the FTDI's UART channel).
    baud : int
        Must equal the top's ``baud``.
    timeout : float
        Seconds to wait for a response before ``TimeoutError``.
    """

    def __init__(self, port: str, baud: int = 115_200, timeout: float = 2.0):
        import serial

        self.serial = serial.Serial(port, baud, timeout=timeout)

    def write(self, data: bytes) -> None:
        self.serial.write(data)

    def read(self, n: int) -> bytes:
        data = self.serial.read(n)
        if len(data) != n:
            raise TimeoutError(f"expected {n} bytes from {self.serial.port}, got {len(data)}")
        return data

    def close(self) -> None:
        self.serial.close()


@dataclass(frozen=True)
class RunResult:
    """One run of the design, as the top measured it.

    Attributes
    ----------
    outputs : list of int
        The captured output entries (payload bits), in arrival order.
    sent, received : int
        Inputs the design accepted, outputs captured.
    cycles : int
        Clock cycles from start to the end of the run.
    first_output : int
        Cycles from the first input handshake to the first output handshake.
    overflow : bool
        The design gave more outputs than expected (the extra ones were dropped).
    """

    outputs: list[int]
    sent: int
    received: int
    cycles: int
    first_output: int
    overflow: bool


class HostClient:
    """Registers, buffers and runs of a :class:`~hw.host_top.HostTop` through its bridge.

    Parameters
    ----------
    transport : Transport
        The byte pipe (serial port or simulation).
    regmap : golden.memory.csr.RegisterMap
        The top's register map (``HostTop.regmap``; a build's ``build.json`` records it).
    buffer_config : golden.memory.stream_buffer.StreamBufferConfig
        The stream buffers' parameters (``HostTop.buffer_config``).
    """

    def __init__(self, transport: Transport, regmap: RegisterMap,
                 buffer_config: StreamBufferConfig, *, generator: str | None = None,
                 design_id: int | None = None):
        self.transport = transport
        self.regmap = regmap
        self.buffer = buffer_config
        self.generator = generator
        self.design_id = design_id

    @classmethod
    def from_description(cls, info: dict, transport: Transport) -> HostClient:
        """A client for the top that :func:`describe_top` described."""
        return cls(transport, regmap_from_dict(info["regmap"]),
                   StreamBufferConfig.from_dict(info["buffer"]), generator=info["generator"],
                   design_id=info["design_id"])

    @classmethod
    def from_build(cls, directory: str | Path, transport: Transport) -> HostClient:
        """A client for the bitstream in an ``accelgen build`` directory (its ``build.json``)."""
        path = Path(directory) / "build.json"
        try:
            info = json.loads(path.read_text())
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror}") from None
        return cls.from_description(info, transport)

    # --- bus -------------------------------------------------------------------------------

    def ping(self) -> None:
        """Check the link: the bridge answers a PING with its magic number."""
        self.transport.write(encode_ping())
        try:
            parse_ping_response(self.transport.read(ping_response_length()))
        except ValueError as error:
            raise HostError(str(error)) from None

    def read_words(self, addr: int, count: int) -> list[int]:
        """``count`` 32-bit words from byte address ``addr`` on (bursts of up to 256)."""
        words = []
        for start in range(0, count, MAX_WORDS):
            n = min(MAX_WORDS, count - start)
            self.transport.write(encode_read(addr + 4 * start, n))
            chunk, status = parse_read_response(self.transport.read(read_response_length(n)), n)
            if status != STATUS_OK:
                raise HostError(f"bus error reading {n} words at {addr + 4 * start:#010x}")
            words += chunk
        return words

    def write_words(self, addr: int, words: Sequence[int]) -> None:
        """Write 32-bit words from byte address ``addr`` on (bursts of up to 256)."""
        words = list(words)
        for start in range(0, len(words), MAX_WORDS):
            chunk = words[start:start + MAX_WORDS]
            self.transport.write(encode_write(addr + 4 * start, chunk))
            status = parse_write_response(self.transport.read(write_response_length(len(chunk))))
            if status != STATUS_OK:
                raise HostError(f"bus error writing {len(chunk)} words at "
                                f"{addr + 4 * start:#010x}")

    # --- registers -------------------------------------------------------------------------

    def read_register(self, name: str) -> int:
        """The whole word of register ``name``."""
        return self.read_words(CSR_BASE + self.regmap.register(name).address, 1)[0]

    def write_register(self, name: str, value: int) -> None:
        self.write_words(CSR_BASE + self.regmap.register(name).address, [value])

    def read_field(self, register: str, field: str) -> int:
        f = self.regmap.register(register).field(field)
        return (self.read_register(register) >> f.lsb) & ((1 << f.width) - 1)

    def check_design(self) -> None:
        """Check that the top is the design this client was made for (magic number, design
        fingerprint and buffer geometry); ``HostError`` says what differs."""
        self.ping()
        expected = {"id": MAGIC, "depth": self.buffer.depth, "in_width": self.buffer.in_width,
                    "out_width": self.buffer.out_width}
        if self.design_id is not None:
            expected["design"] = self.design_id
        for name, value in expected.items():
            got = self.read_register(name)
            if got != value:
                raise HostError(f"register {name} reads {got:#x}, expected {value:#x}: the "
                                f"board holds a different design")

    # --- runs ------------------------------------------------------------------------------

    def _write_bursts(self, pairs: list[tuple[int, int]]) -> None:
        """Write (address, word) pairs, merging consecutive addresses into bursts."""
        start, run = None, []
        for addr, word in pairs:
            if run and addr == start + 4 * len(run):
                run.append(word)
                continue
            if run:
                self.write_words(start, run)
            start, run = addr, [word]
        if run:
            self.write_words(start, run)

    def load_inputs(self, inputs: Sequence[int]) -> None:
        """Write input entries 0.. of the input buffer."""
        if len(inputs) > self.buffer.depth:
            raise ValueError(f"inputs must be at most depth = {self.buffer.depth} entries, "
                             f"got {len(inputs)}")
        pairs = []
        for entry, word in enumerate(inputs):
            for lane, value in enumerate(to_lanes(int(word), self.buffer.in_width)):
                pairs.append((BUFFER_BASE + input_address(self.buffer, entry, lane), value))
        self._write_bursts(pairs)

    def read_outputs(self, count: int) -> list[int]:
        """Output entries ``0 .. count - 1``."""
        lanes = self.buffer.out_lanes
        stride_words = self.buffer.out_stride // 4
        if count == 0:
            return []
        base = BUFFER_BASE + output_address(self.buffer, 0)
        words = self.read_words(base, (count - 1) * stride_words + lanes)
        return [from_lanes(words[e * stride_words:e * stride_words + lanes],
                           self.buffer.out_width) for e in range(count)]

    def run(self, inputs: Sequence[int], expect: int, *, timeout: float = 10.0,
            poll_interval: float = 0.0) -> RunResult:
        """Send ``inputs`` through the design and capture ``expect`` outputs.

        ``timeout`` is in seconds of host time (wall clock); a run that has not ended by then
        raises ``HostError`` with the counters so far.
        """
        if not 0 <= expect <= self.buffer.depth:
            raise ValueError(f"expect must be in 0..{self.buffer.depth}, got {expect}")
        self.load_inputs(inputs)
        self.write_register("done", 1)  # clear a previous run's flag (w1c)
        self.write_register("count", len(inputs))
        self.write_register("expect", expect)
        self.write_register("control", 1)
        self.write_register("control", 0)
        deadline = time.monotonic() + timeout
        while not self.read_field("done", "done"):
            if time.monotonic() > deadline:
                raise HostError(f"run did not end within {timeout} s: sent "
                                f"{self.read_register('sent')}/{len(inputs)}, received "
                                f"{self.read_register('received')}/{expect}")
            if poll_interval:
                time.sleep(poll_interval)
        received = self.read_register("received")
        status = self.read_register("status")
        overflow = bool(status >> self.regmap.register("status").field("overflow").lsb & 1)
        return RunResult(outputs=self.read_outputs(min(received, expect)),
                         sent=self.read_register("sent"), received=received,
                         cycles=self.read_register("cycles"),
                         first_output=self.read_register("first_output"), overflow=overflow)
