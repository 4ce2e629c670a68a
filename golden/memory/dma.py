"""AXI4 DMA between external memory and a local scratchpad: parameters and the exact model.

A command moves ``length`` bytes between external byte address ``ext_addr`` and local word
address ``local_addr`` of a scratchpad of ``local_depth`` words of ``data_width`` bits:

- ``write = 0`` (read): external -> local, bytes ``ext_addr ..`` fill words ``local_addr ..``;
- ``write = 1`` (write): local -> external.

Byte ``k`` of a transfer is byte lane ``k % B`` of local word ``local_addr + k // B``, with
``B = data_width // 8`` bytes per beat (little-endian lanes, as on the AXI data bus).

A command is valid when ``length`` is a non-zero multiple of ``B``, ``ext_addr`` is a multiple
of ``B``, the local words fit (``local_addr + length // B <= local_depth``) and the external
range does not wrap (``ext_addr + length <= 2**addr_width``). :func:`check_command` raises
``ValueError`` otherwise; the hardware then moves nothing and reports ``done.error = 1``.

The transfer is split into INCR bursts of full-width beats (:func:`burst_plan`): each burst is
as long as possible, limited by ``max_burst`` beats, the remaining beats, and the next 4 KiB
boundary, which no AXI burst may cross.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import BlockConfig, param

__all__ = ["DMAConfig", "PAGE_BYTES", "burst_plan", "check_command", "execute"]

PAGE_BYTES = 4096
"""No AXI burst crosses a multiple of this many bytes."""


@dataclass(frozen=True, kw_only=True)
class DMAConfig(BlockConfig):
    """Parameters of the AXI4 DMA master.

    Parameters
    ----------
    data_width : int
        AXI data bus and scratchpad word width in bits: a power of two, 32..512.
    addr_width : int
        AXI byte address width, 16..64.
    max_burst : int
        Longest burst in beats, 1..256 (AXI4 INCR).
    outstanding : int
        Bursts in flight per direction, 1..16: read bursts whose last beat has not arrived,
        write bursts whose response has not arrived.
    local_depth : int
        Words in the local scratchpad, 16..65536.
    """

    data_width: int = param(64, help="AXI data bus and scratchpad word width in bits "
                            "(power of two)", range=(32, 512))
    addr_width: int = param(32, help="AXI byte address width", range=(16, 64))
    max_burst: int = param(16, help="longest burst in beats", range=(1, 256))
    outstanding: int = param(4, help="bursts in flight per direction", range=(1, 16))
    local_depth: int = param(1024, help="words in the local scratchpad", range=(16, 65536))

    def _check(self):
        if self.data_width & (self.data_width - 1):
            raise ValueError(f"data_width must be a power of two in 32..512, "
                             f"got {self.data_width}")

    @property
    def beat_bytes(self) -> int:
        """Bytes per beat (and per scratchpad word)."""
        return self.data_width // 8

    @property
    def beat_shift(self) -> int:
        """log2 of :attr:`beat_bytes` (the AXI ``AxSIZE``)."""
        return self.beat_bytes.bit_length() - 1

    @property
    def local_addr_width(self) -> int:
        """Width of the command's ``local_addr`` field (word address)."""
        return max(1, (self.local_depth - 1).bit_length())

    @property
    def length_width(self) -> int:
        """Width of the command's ``length`` field (bytes); holds ``local_depth * B``."""
        return (self.local_depth * self.beat_bytes).bit_length()


def check_command(config: DMAConfig, *, ext_addr: int, local_addr: int, length: int) -> int:
    """Validate a command; return its number of beats.

    Raises
    ------
    ValueError
        If the length is zero or not a multiple of the bus width in bytes, ``ext_addr`` is
        misaligned or the external range leaves the address space, or the local words do not
        fit in the scratchpad.
    """
    b = config.beat_bytes
    if length <= 0 or length % b:
        raise ValueError(f"length must be a positive multiple of {b} bytes, got {length}")
    if ext_addr < 0 or ext_addr % b:
        raise ValueError(f"ext_addr must be a multiple of {b}, got {ext_addr:#x}")
    if ext_addr + length > 1 << config.addr_width:
        raise ValueError(f"ext_addr {ext_addr:#x} + length {length} leaves the "
                         f"{config.addr_width}-bit address space")
    beats = length // b
    if local_addr < 0 or local_addr + beats > config.local_depth:
        raise ValueError(f"local words {local_addr}..{local_addr + beats - 1} do not fit in "
                         f"{config.local_depth} words")
    return beats


def burst_plan(config: DMAConfig, ext_addr: int, nbytes: int) -> list[tuple[int, int]]:
    """The INCR bursts of a transfer: ``(address, beats)`` in issue order.

    Each burst takes ``min(max_burst, beats left, beats to the next 4 KiB boundary)`` beats.
    ``ext_addr`` and ``nbytes`` must be multiples of the beat size (``ValueError`` otherwise).
    """
    b = config.beat_bytes
    if nbytes <= 0 or nbytes % b or ext_addr % b:
        raise ValueError(f"ext_addr {ext_addr:#x} and nbytes {nbytes} must be multiples of {b}, "
                         f"nbytes > 0")
    plan = []
    addr, left = ext_addr, nbytes // b
    while left:
        beats = min(config.max_burst, left, (PAGE_BYTES - addr % PAGE_BYTES) // b)
        plan.append((addr, beats))
        addr += beats * b
        left -= beats
    return plan


def execute(config: DMAConfig, ext: np.ndarray, local: np.ndarray, *, write: int,
            ext_addr: int, local_addr: int, length: int) -> bool:
    """Apply one command to the memories in place; return its error flag.

    Parameters
    ----------
    ext : ndarray of uint8
        External memory: byte ``a`` is ``ext[a]`` (a window from address 0 is enough).
    local : ndarray of uint8, shape (local_depth, data_width // 8)
        The scratchpad, one row of little-endian byte lanes per word.
    write : int
        0: external -> local; 1: local -> external.
    """
    try:
        beats = check_command(config, ext_addr=ext_addr, local_addr=local_addr, length=length)
    except ValueError:
        return True
    words = local[local_addr:local_addr + beats]
    if write:
        ext[ext_addr:ext_addr + length] = words.reshape(-1)
    else:
        words[...] = ext[ext_addr:ext_addr + length].reshape(beats, -1)
    return False
