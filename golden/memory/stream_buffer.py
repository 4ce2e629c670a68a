"""Stream buffer: parameters, the host address map and the bus/run model.

A stream buffer holds two memories behind one AXI4-Lite slave: an *input buffer* of ``depth``
entries of ``in_width`` bits that a run streams, entry by entry, into a design, and an *output
buffer* of ``depth`` entries of ``out_width`` bits that captures the design's output words in
arrival order. The host fills the input buffer, starts a run of ``count`` inputs and ``expect``
outputs, and reads the captured outputs back.

Address map (byte addresses, ``addr_width`` bits). Entries are split into 32-bit *lanes*,
little-endian (lane 0 holds bits 31..0). An entry occupies ``stride`` bytes: 4 times the
number of lanes rounded up to a power of two, so an entry's address is ``entry * stride`` and
its lane ``l`` is at ``+ 4 * l``. The top address bit selects the region: 0 the input buffer,
1 the output buffer (base ``region_bytes``); each region is ``region_bytes`` long, the larger
of the two buffers' ``depth * stride`` rounded up to a power of two. The low two address bits
are ignored, and so is ``wstrb``: every write writes a whole lane.

Bus semantics (``OKAY`` = 0, ``SLVERR`` = 2):

- input region, entry < depth: a write sets one lane of the entry (bits beyond ``in_width`` are
  dropped; a lane ``>= in_lanes`` inside the stride is ignored), a read returns it (unused lanes
  and bits read 0); both answer OKAY;
- output region, entry < depth: a read returns a lane of the captured entry (unused bits 0),
  OKAY; a write answers SLVERR and changes nothing;
- any entry ``>= depth`` (either region): SLVERR, reads return 0.

A run (:meth:`StreamBufferModel.run`) sends input entries ``0 .. count - 1`` to the design and
stores the design's first ``expect`` output words in output entries ``0 .. expect - 1``; the
rest of the output buffer keeps its contents. Output words beyond ``expect`` that the design
delivers while the run still waits for inputs to be taken are dropped and set the hardware's
``overflow`` flag; those it delivers later stay in the design (the buffer no longer takes
words once the run has ended). Which of the two happens depends on the design's timing, so the
model reports how many excess words there were (``excess``) and no flag: no excess words means
no overflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..params import BlockConfig, param
from .csr import OKAY, SLVERR

__all__ = ["StreamBufferConfig", "StreamBufferModel", "StreamBufferRun", "OKAY", "SLVERR",
           "LANE_BITS", "input_address", "output_address", "decode_address", "to_lanes",
           "from_lanes"]

#: Bits of one bus lane (the AXI4-Lite data width).
LANE_BITS = 32


def _lanes(width: int) -> int:
    return -(-width // LANE_BITS)


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


@dataclass(frozen=True, kw_only=True)
class StreamBufferConfig(BlockConfig):
    """Parameters of the stream buffer.

    Parameters
    ----------
    in_width : int
        Bits of the words sent to the design (the ``o`` stream), 1..4096.
    out_width : int
        Bits of the words captured from the design (the ``i`` stream), 1..4096.
    depth : int
        Entries of each buffer, 1..65536.
    """

    in_width: int = param(32, help="bits of the words sent to the design", range=(1, 4096))
    out_width: int = param(32, help="bits of the words captured from the design",
                           range=(1, 4096))
    depth: int = param(256, help="entries per buffer (input and output)", range=(1, 65536))

    @property
    def in_lanes(self) -> int:
        """32-bit lanes of an input entry."""
        return _lanes(self.in_width)

    @property
    def out_lanes(self) -> int:
        """32-bit lanes of an output entry."""
        return _lanes(self.out_width)

    @property
    def in_stride(self) -> int:
        """Bytes between input entries (4 * lanes rounded up to a power of two)."""
        return 4 * _pow2_at_least(self.in_lanes)

    @property
    def out_stride(self) -> int:
        """Bytes between output entries."""
        return 4 * _pow2_at_least(self.out_lanes)

    @property
    def region_bytes(self) -> int:
        """Bytes of each region; also the output region's base address."""
        return _pow2_at_least(self.depth * max(self.in_stride, self.out_stride))

    @property
    def addr_width(self) -> int:
        """Bits of the block's byte address; the top one selects the region."""
        return (self.region_bytes - 1).bit_length() + 1


def _check_entry_lane(config: StreamBufferConfig, entry: int, lane: int, lanes: int) -> None:
    for name, value, hi in (("entry", entry, config.depth), ("lane", lane, lanes)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if not 0 <= value < hi:
            raise ValueError(f"{name} must be in 0..{hi - 1}, got {value}")


def input_address(config: StreamBufferConfig, entry: int, lane: int = 0) -> int:
    """Byte address of lane ``lane`` of input entry ``entry``."""
    _check_entry_lane(config, entry, lane, config.in_lanes)
    return entry * config.in_stride + 4 * lane


def output_address(config: StreamBufferConfig, entry: int, lane: int = 0) -> int:
    """Byte address of lane ``lane`` of output entry ``entry``."""
    _check_entry_lane(config, entry, lane, config.out_lanes)
    return config.region_bytes + entry * config.out_stride + 4 * lane


def decode_address(config: StreamBufferConfig, addr: int) -> tuple[str, int, int]:
    """``(region, entry, lane)`` of a byte address; region is ``"input"`` or ``"output"``.

    The entry may be ``>= depth`` and the lane ``>= lanes`` (the bus answers those as the
    module docstring says); the low two bits are ignored.
    """
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError(f"address must be an integer, got {addr!r}")
    if not 0 <= addr < 1 << config.addr_width:
        raise ValueError(f"address must be in 0..{(1 << config.addr_width) - 1:#x}, "
                         f"got {addr:#x}")
    output = addr >= config.region_bytes
    offset = addr - config.region_bytes if output else addr
    stride = config.out_stride if output else config.in_stride
    return ("output" if output else "input"), offset // stride, offset % stride // 4


def to_lanes(word: int, width: int) -> list[int]:
    """The ``ceil(width / 32)`` 32-bit lanes of a ``width``-bit word, lane 0 = bits 31..0."""
    if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word < 1 << width:
        raise ValueError(f"word must be an integer in 0..2**{width} - 1, got {word!r}")
    return [(word >> (LANE_BITS * k)) & 0xFFFF_FFFF for k in range(_lanes(width))]


def from_lanes(lanes: Sequence[int], width: int) -> int:
    """The ``width``-bit word whose lanes are ``lanes`` (the inverse of :func:`to_lanes`)."""
    lanes = list(lanes)
    if len(lanes) != _lanes(width):
        raise ValueError(f"a {width}-bit word has {_lanes(width)} lanes, got {len(lanes)}")
    word = 0
    for k, lane in enumerate(lanes):
        if isinstance(lane, bool) or not isinstance(lane, int) or not 0 <= lane <= 0xFFFF_FFFF:
            raise ValueError(f"lane {k} must be a 32-bit unsigned integer, got {lane!r}")
        word |= lane << (LANE_BITS * k)
    if word >> width:
        raise ValueError(f"lanes hold bits beyond bit {width - 1}")
    return word


@dataclass(frozen=True)
class StreamBufferRun:
    """What one run moved.

    Attributes
    ----------
    inputs : list of int
        The input entries sent, in order (``count`` words).
    outputs : list of int
        Every word the design produced for them.
    captured : list of int
        The first ``expect`` of those: output entries ``0 .. expect - 1`` after the run.
    excess : int
        ``len(outputs) - expect``: words the buffer drops (``overflow``) or leaves in the
        design, depending on the design's timing.
    """

    inputs: list[int]
    outputs: list[int]
    captured: list[int]
    excess: int


class StreamBufferModel:
    """The buffers and status of a stream buffer, driven through bus accesses and runs.

    Parameters
    ----------
    config : StreamBufferConfig

    Attributes
    ----------
    inputs, outputs : list of int
        The ``depth`` entries of each buffer (0 after reset).
    sent, received : int
        Inputs taken by the design and outputs captured in the last run.
    """

    def __init__(self, config: StreamBufferConfig):
        self.config = StreamBufferConfig.check_instance(config)
        self.reset()

    def reset(self) -> None:
        """Clear both buffers and the counters (the hardware's memories start at 0)."""
        depth = self.config.depth
        self.inputs = [0] * depth
        self.outputs = [0] * depth
        self.sent = self.received = 0

    def write(self, addr: int, data: int) -> int:
        """A bus write of the 32-bit ``data``; returns the response (OKAY or SLVERR)."""
        if isinstance(data, bool) or not isinstance(data, int) or not 0 <= data <= 0xFFFF_FFFF:
            raise ValueError(f"data must be a 32-bit unsigned integer, got {data!r}")
        cfg = self.config
        region, entry, lane = decode_address(cfg, addr)
        if region == "output" or entry >= cfg.depth:
            return SLVERR
        if lane < cfg.in_lanes:
            shift = LANE_BITS * lane
            word = self.inputs[entry] & ~(0xFFFF_FFFF << shift) | data << shift
            self.inputs[entry] = word & ((1 << cfg.in_width) - 1)
        return OKAY

    def read(self, addr: int) -> tuple[int, int]:
        """A bus read: ``(data, response)``."""
        cfg = self.config
        region, entry, lane = decode_address(cfg, addr)
        if entry >= cfg.depth:
            return 0, SLVERR
        word = (self.inputs if region == "input" else self.outputs)[entry]
        return (word >> (LANE_BITS * lane)) & 0xFFFF_FFFF, OKAY

    def run(self, count: int, expect: int,
            design: Callable[[list[int]], list[int]]) -> StreamBufferRun:
        """Run ``count`` inputs through ``design`` and capture ``expect`` of its outputs.

        Parameters
        ----------
        count, expect : int
            In ``0..depth``.
        design : callable
            Maps the list of input words to the list of output words, in order.

        Raises
        ------
        ValueError
            For counts out of range, output words wider than ``out_width``, or a design that
            produces fewer than ``expect`` words (the hardware run would never end).
        """
        cfg = self.config
        for name, value in (("count", count), ("expect", expect)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, got {value!r}")
            if not 0 <= value <= cfg.depth:
                raise ValueError(f"{name} must be in 0..{cfg.depth}, got {value}")
        inputs = self.inputs[:count]
        outputs = [int(w) for w in design(list(inputs))]
        bad = [w for w in outputs if not 0 <= w < 1 << cfg.out_width]
        if bad:
            raise ValueError(f"design output {bad[0]:#x} does not fit in {cfg.out_width} bits")
        if len(outputs) < expect:
            raise ValueError(f"the design produces {len(outputs)} words, fewer than "
                             f"expect = {expect}: the run would never end")
        captured = outputs[:expect]
        self.outputs[:expect] = captured
        self.sent, self.received = count, expect
        return StreamBufferRun(inputs, outputs, captured, len(outputs) - expect)
