"""AXI4-Lite address decoder (one master, N slaves): the region map, its checks, the
parameters and the model.

Pure Python (no Amaranth): ``hw.memory.axil_decoder.AXILiteDecoder`` is the hardware.

Regions
-------
Region ``k`` is ``(base, size)`` in bytes: ``size`` a power of two, at least 4 (one word);
``base`` a multiple of ``size``; the region inside the ``addr_width``-bit address space; no two
regions overlapping. A transaction to an address inside region ``k`` goes to port ``k`` with
the local address ``addr - base`` (the port's address is ``log2(size)`` bits wide); a
transaction outside every region never reaches a port: the decoder answers it itself with
:data:`SLVERR` (and read data 0), as the CSR block does for its unmapped words.

The block's parameters are flat (the command line and TOML need that), so
:class:`AXILiteDecoderConfig` writes each region as a ``"BASE:SIZE"`` string
(``"0x1000:0x100"``; any Python integer literal); ``(base, size)`` pairs are accepted too and
normalized to that form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..params import BlockConfig, param

__all__ = ["OKAY", "SLVERR", "AXILiteDecoderConfig", "check_regions", "parse_region",
           "format_region", "decode", "RegionMemory", "AXILiteDecoderModel"]

#: AXI response codes: the decoder answers unmapped addresses with SLVERR.
OKAY, SLVERR = 0, 2


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_regions(regions: Sequence[tuple[int, int]], addr_width: int = 32
                  ) -> tuple[tuple[int, int], ...]:
    """Return ``regions`` as a tuple of ``(base, size)`` pairs, or raise ``ValueError`` naming
    the region (``regions[k]``) and the problem (see the module docstring for the rules)."""
    if not _is_int(addr_width) or not 2 <= addr_width <= 32:
        raise ValueError(f"addr_width must be in 2..32, got {addr_width!r}")
    if isinstance(regions, (str, bytes)) or not isinstance(regions, Sequence):
        raise ValueError(f"regions must be a sequence of (base, size) pairs, got {regions!r}")
    if not regions:
        raise ValueError("regions must hold at least one region")
    checked = []
    for k, region in enumerate(regions):
        where = f"regions[{k}]"
        if (isinstance(region, (str, bytes)) or not isinstance(region, Sequence)
                or len(region) != 2 or not all(_is_int(v) for v in region)):
            raise ValueError(f"{where} must be a (base, size) pair of integers, got {region!r}")
        base, size = region
        if size < 4 or size & (size - 1):
            raise ValueError(f"{where}: size {size:#x} must be a power of two >= 4")
        if base < 0 or base % size:
            raise ValueError(f"{where}: base {base:#x} must be a multiple of its size "
                             f"{size:#x}")
        if base + size > 1 << addr_width:
            raise ValueError(f"{where}: {base:#x}..{base + size - 1:#x} does not fit the "
                             f"{addr_width}-bit address space")
        for j, (other_base, other_size) in enumerate(checked):
            if base < other_base + other_size and other_base < base + size:
                raise ValueError(f"{where} ({base:#x}..{base + size - 1:#x}) overlaps "
                                 f"regions[{j}] ({other_base:#x}.."
                                 f"{other_base + other_size - 1:#x})")
        checked.append((base, size))
    return tuple(checked)


def parse_region(text: str, index: int = 0) -> tuple[int, int]:
    """``"BASE:SIZE"`` (integer literals, e.g. ``"0x1000:0x100"``) -> ``(base, size)``."""
    where = f"regions[{index}]"
    if not isinstance(text, str):
        raise ValueError(f"{where} must be a 'BASE:SIZE' string or a (base, size) pair, "
                         f"got {text!r}")
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        return int(parts[0].strip(), 0), int(parts[1].strip(), 0)
    except ValueError:
        raise ValueError(f"{where} must be 'BASE:SIZE' with integer literals "
                         f"(e.g. '0x1000:0x100'), got {text!r}") from None


def format_region(base: int, size: int) -> str:
    """``(base, size)`` -> ``"0x<base>:0x<size>"``, the config's form."""
    return f"{base:#x}:{size:#x}"


def _canonical(region):
    """A region as ``format_region`` writes it; left alone if malformed (``_check`` says why)."""
    if isinstance(region, (list, tuple)) and len(region) == 2 and all(map(_is_int, region)):
        return format_region(*region)
    if isinstance(region, str):
        try:
            return format_region(*parse_region(region))
        except ValueError:
            pass
    return region


@dataclass(frozen=True, kw_only=True)
class AXILiteDecoderConfig(BlockConfig):
    """Parameters of the AXI4-Lite decoder.

    Parameters
    ----------
    regions : tuple of str
        One ``"BASE:SIZE"`` per port, in port order. ``(base, size)`` pairs and other integer
        literals are accepted and normalized to :func:`format_region`'s hex form. Checked by
        :func:`check_regions`.
    addr_width : int
        Byte address width of the master side, 2..32.
    """

    regions: tuple[str, ...] = param(
        ("0x0:0x1000", "0x1000:0x1000"),
        help="address regions, one per port, as BASE:SIZE (size a power of two >= 4, base a "
             "multiple of it, no overlaps)")
    addr_width: int = param(32, help="byte address width of the master side", range=(2, 32))

    def __post_init__(self):
        if isinstance(self.regions, (list, tuple)):  # one canonical form, so configs compare
            object.__setattr__(self, "regions", tuple(_canonical(r) for r in self.regions))
        super().__post_init__()

    def _check(self) -> None:
        check_regions(self.region_list, self.addr_width)

    @property
    def region_list(self) -> tuple[tuple[int, int], ...]:
        """The regions as ``(base, size)`` pairs."""
        return tuple(parse_region(r, k) for k, r in enumerate(self.regions))

    @property
    def ports(self) -> int:
        """Number of slave ports."""
        return len(self.regions)

    @property
    def port_addr_widths(self) -> tuple[int, ...]:
        """Address width of each port: ``log2(size)``."""
        return tuple(size.bit_length() - 1 for _, size in self.region_list)


def decode(regions: Sequence[tuple[int, int]], addr: int) -> tuple[int, int] | None:
    """``(port, local address)`` of the region holding byte address ``addr``, or None."""
    for port, (base, size) in enumerate(regions):
        if base <= addr < base + size:
            return port, addr - base
    return None


class RegionMemory:
    """A slave behind one port: a word memory of ``size`` bytes that always answers OKAY
    (like cocotbext-axi's ``AxiLiteRam``; the low 2 address bits are ignored, bytes enabled
    by ``strb`` are written, unwritten words read 0)."""

    def __init__(self, size: int):
        self.size = size
        self.words: dict[int, int] = {}

    def write(self, addr: int, data: int, strb: int = 0xF) -> int:
        word = addr & ~3
        mask = sum(0xFF << 8 * k for k in range(4) if strb >> k & 1)
        self.words[word] = (self.words.get(word, 0) & ~mask) | (data & mask)
        return OKAY

    def read(self, addr: int) -> tuple[int, int]:
        return self.words.get(addr & ~3, 0), OKAY


class AXILiteDecoderModel:
    """The decoder and its slaves, transaction by transaction.

    Parameters
    ----------
    regions : sequence of (int, int)
        Checked by :func:`check_regions`.
    addr_width : int
    ports : sequence, optional
        One slave model per region: ``write(local, data, strb) -> resp`` and
        ``read(local) -> (data, resp)``. Default: a :class:`RegionMemory` per region.

    Attributes
    ----------
    transactions : list of list
        Per port, what reached it: ``("W", local, data, strb)`` or ``("R", local)``.
    """

    def __init__(self, regions: Sequence[tuple[int, int]], addr_width: int = 32,
                 ports: Sequence | None = None):
        self.regions = check_regions(regions, addr_width)
        self.addr_width = addr_width
        self.ports = list(ports) if ports is not None else [RegionMemory(size)
                                                            for _, size in self.regions]
        if len(self.ports) != len(self.regions):
            raise ValueError(f"ports must hold one slave per region ({len(self.regions)}), "
                             f"got {len(self.ports)}")
        self.transactions: list[list[tuple]] = [[] for _ in self.regions]

    def _route(self, addr: int):
        if not _is_int(addr) or not 0 <= addr < 1 << self.addr_width:
            raise ValueError(f"addr must be in 0..2**{self.addr_width} - 1, got {addr!r}")
        return decode(self.regions, addr)

    def write(self, addr: int, data: int, strb: int = 0xF) -> int:
        """A write from the master; returns the response it gets."""
        route = self._route(addr)
        if route is None:
            return SLVERR
        port, local = route
        self.transactions[port].append(("W", local, data, strb))
        return self.ports[port].write(local, data, strb)

    def read(self, addr: int) -> tuple[int, int]:
        """A read from the master: ``(data, response)``."""
        route = self._route(addr)
        if route is None:
            return 0, SLVERR
        port, local = route
        self.transactions[port].append(("R", local))
        return self.ports[port].read(local)
