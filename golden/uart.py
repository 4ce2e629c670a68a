"""UART (8N1): parameters, a line encoder, and a cycle-exact model of the hardware receiver.

The frame is fixed: one start bit (0), 8 data bits least significant first, no parity, one
stop bit (1); the idle line is 1. Every bit lasts ``divisor`` clock cycles, so the baud rate
is ``clock_hz / divisor`` (:func:`divisor_for` picks the divisor).

Line levels are arrays with one entry per clock cycle: entry ``t`` is the line during cycle
``t``. :func:`uart_encode` makes them; :func:`uart_frames` / :func:`uart_decode` read them the
way ``hw.uart.UART``'s receiver does:

- Edge search. A falling edge at ``t`` (``levels[t] == 0`` and the previous level 1; before
  the first entry the line counts as idle, 1) starts a frame. Edges are looked for only while
  the receiver is idle.
- The start bit is sampled at ``t + divisor // 2``: a 1 there was a glitch, and the search
  resumes at the next cycle. Otherwise data bit ``k`` is sampled at
  ``t + divisor // 2 + (k + 1) * divisor`` and the stop bit at ``t + divisor // 2 +
  9 * divisor`` (mid-bit each time).
- A stop bit of 1 delivers the byte; a stop bit of 0 is a framing error and the byte is
  dropped. Either way the edge search resumes at the cycle after the stop sample, so a line
  held low after a framing error starts nothing until it has been high again.
- A frame whose stop sample falls past the end of ``levels`` is not reported (pad with idle).

The hardware sees the line :data:`SYNC_STAGES` cycles late (its synchronizer), so a frame
whose stop bit is sampled at level index ``s`` is decided in the hardware's cycle
``s + SYNC_STAGES`` and shows on its outputs one cycle later; :func:`uart_receive` adds the
output register and its ``ready`` handshake (overruns) to give every output cycle-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .params import BlockConfig, param

__all__ = ["UARTConfig", "SYNC_STAGES", "FRAME_BITS", "MAX_BAUD_ERROR", "divisor_for",
           "uart_encode", "Frame", "uart_frames", "uart_decode", "RxResult", "uart_receive"]

SYNC_STAGES = 2
"""Flip-flops between the ``rx`` pin and the receiver (the metastability synchronizer)."""

FRAME_BITS = 10
"""Bits per frame: start, 8 data, stop."""

MAX_BAUD_ERROR = 0.02
"""Largest relative baud-rate error :func:`divisor_for` accepts."""

DIVISOR_RANGE = (4, 65535)


@dataclass(frozen=True, kw_only=True)
class UARTConfig(BlockConfig):
    """Parameters of the UART. The frame is fixed at 8N1 (8 data bits, no parity, 1 stop bit).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, 4..65535 (104: 115200 baud from a 12 MHz clock). At least 4 so
        the receiver's mid-bit sample is at least 2 cycles from either edge.
    """

    divisor: int = param(104, help="clock cycles per bit (clock_hz / baud; 8N1 frames)",
                         range=DIVISOR_RANGE)

    def _check(self) -> None:
        if self.divisor is None:  # the base class lets None through as "derived"; not here
            raise TypeError("divisor must be an integer, got None")

    @property
    def frame_cycles(self) -> int:
        """Cycles per frame (10 bits)."""
        return FRAME_BITS * self.divisor


def divisor_for(clock_hz: int, baud: int) -> int:
    """The divisor (cycles per bit) nearest to ``clock_hz / baud``.

    Raises
    ------
    ValueError
        Naming ``baud`` if the divisor is outside 4..65535 or the baud rate it gives is more
        than 2 % off; naming ``clock_hz`` or ``baud`` if one is not a positive integer.
    """
    for name, value in (("clock_hz", clock_hz), ("baud", baud)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    divisor = (2 * clock_hz + baud) // (2 * baud)  # round half up, in integers
    lo, hi = DIVISOR_RANGE
    if not lo <= divisor <= hi:
        raise ValueError(f"baud {baud} needs a divisor of {clock_hz / baud:.1f} at "
                         f"{clock_hz} Hz; the divisor must be in {lo}..{hi}")
    error = clock_hz / divisor / baud - 1
    if abs(error) > MAX_BAUD_ERROR:
        raise ValueError(f"baud {baud} is {100 * error:+.2f} % off at {clock_hz} Hz with "
                         f"divisor {divisor}; at most {100 * MAX_BAUD_ERROR:.0f} % is allowed")
    return divisor


def _check_divisor(divisor) -> int:
    UARTConfig(divisor=divisor)  # the same checks and messages as the block's
    return divisor


def uart_encode(data, divisor: int, gaps=None) -> np.ndarray:
    """Line levels (one per clock cycle) of 8N1 frames carrying ``data``.

    Parameters
    ----------
    data : bytes or sequence of int
        The bytes, each 0..255.
    divisor : int
        Cycles per bit.
    gaps : sequence of int, optional
        Idle cycles (line 1) before each byte; none by default, so frames are back to back.

    Returns
    -------
    numpy.ndarray of int8
        ``sum(gaps) + 10 * divisor * len(data)`` levels, 0 or 1.
    """
    _check_divisor(divisor)
    values = [int(b) for b in data]
    if any(not 0 <= b <= 255 for b in values):
        raise ValueError("data must be bytes (each 0..255)")
    gaps = [0] * len(values) if gaps is None else [int(g) for g in gaps]
    if len(gaps) != len(values) or any(g < 0 for g in gaps):
        raise ValueError("gaps must give one non-negative count per byte")
    pieces = []
    for gap, byte in zip(gaps, values):
        bits = [0] + [(byte >> k) & 1 for k in range(8)] + [1]
        pieces += [np.ones(gap, dtype=np.int8), np.repeat(np.array(bits, dtype=np.int8),
                                                          divisor)]
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int8)


@dataclass(frozen=True)
class Frame:
    """One frame as the receiver decided it.

    Attributes
    ----------
    start : int
        Level index of the falling edge that began it.
    stop : int
        Level index of the stop-bit sample.
    value : int
        The 8 data bits.
    ok : bool
        The stop bit was 1 (otherwise a framing error: the byte is dropped).
    """

    start: int
    stop: int
    value: int
    ok: bool


def _levels(levels) -> np.ndarray:
    line = np.asarray(levels)
    if line.ndim != 1 or (line.size and not np.isin(line, (0, 1)).all()):
        raise ValueError("levels must be a 1-D array of 0 and 1")
    return line.astype(np.int8)


def uart_frames(levels, divisor: int) -> list[Frame]:
    """Every frame the receiver decides on the line ``levels`` (see the module docstring),
    including framing errors; glitches (start bit 1 at its sample) are not frames."""
    _check_divisor(divisor)
    line = _levels(levels)
    n = len(line)
    previous = np.concatenate(([1], line[:-1])) if n else line
    edges = np.flatnonzero((previous == 1) & (line == 0))
    half = divisor // 2
    frames, search = [], 0
    while True:
        k = np.searchsorted(edges, search)
        if k == len(edges):
            return frames
        start = int(edges[k])
        if start + half >= n:
            return frames
        if line[start + half]:  # glitch: the start bit did not last to its middle
            search = start + half + 1
            continue
        stop = start + half + 9 * divisor
        if stop >= n:
            return frames
        bits = line[start + half + divisor:stop:divisor]
        value = int(np.dot(bits.astype(np.int64), 1 << np.arange(8)))
        frames.append(Frame(start, stop, value, bool(line[stop])))
        search = stop + 1


def uart_decode(levels, divisor: int) -> tuple[bytes, int]:
    """The bytes the receiver delivers from ``levels``, and how many framing errors it saw.

    Overruns are not modelled here (they depend on the consumer; see :func:`uart_receive`).
    """
    frames = uart_frames(levels, divisor)
    return bytes(f.value for f in frames if f.ok), sum(not f.ok for f in frames)


@dataclass
class RxResult:
    """Receiver outputs, in the hardware's clock cycles (see :func:`uart_receive`).

    Attributes
    ----------
    data : bytes
        Bytes transferred on ``o``, in order.
    out_cycles : list of int
        The cycle of each transfer (``o.valid`` and ``o.ready`` both high).
    frame_error_cycles, overrun_cycles : list of int
        Cycles in which ``frame_error`` / ``overrun`` pulse.
    """

    data: bytes = b""
    out_cycles: list[int] = field(default_factory=list)
    frame_error_cycles: list[int] = field(default_factory=list)
    overrun_cycles: list[int] = field(default_factory=list)


def uart_receive(levels, divisor: int, ready) -> RxResult:
    """Cycle-exact outputs of the hardware receiver.

    Cycle ``c`` is the hardware's clock cycle in which ``levels[c]`` is on ``rx`` and
    ``ready[c]`` on ``o.ready``; the model runs for ``len(ready)`` cycles. A frame whose stop
    bit is at level index ``s`` is decided in cycle ``d = s + SYNC_STAGES``:

    - framing error: ``frame_error`` pulses in cycle ``d + 1``, the byte is dropped;
    - ``o`` holds a byte not taken in cycle ``d`` (``o.valid`` high, ``o.ready`` low):
      ``overrun`` pulses in cycle ``d + 1``, the new byte is dropped, the old one stays;
    - otherwise the byte is on ``o`` (``o.valid`` high) from cycle ``d + 1`` until taken.
    """
    take_ready = np.asarray(ready).astype(bool)
    decided = {f.stop + SYNC_STAGES: f for f in uart_frames(levels, divisor)}
    result, data = RxResult(), bytearray()
    valid, value = False, 0
    for cycle, ready_now in enumerate(take_ready.tolist()):
        taken = valid and ready_now
        if taken:
            data.append(value)
            result.out_cycles.append(cycle)
            valid = False
        frame = decided.get(cycle)
        if frame is None:
            continue
        if not frame.ok:
            result.frame_error_cycles.append(cycle + 1)
        elif valid:  # still holding a byte nobody took this cycle
            result.overrun_cycles.append(cycle + 1)
        else:
            valid, value = True, frame.value
    result.data = bytes(data)
    return result
