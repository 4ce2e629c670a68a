"""Banked multi-port scratchpad: parameters, address interleaving, arbitration and the model.

Storage is ``banks`` (N) banks of ``depth`` words of ``width`` bits, ``N * depth`` words in all,
addressed ``0 .. N*depth - 1`` through ``addr_width`` address bits. An address maps to a bank
and a row in that bank by the ``interleave`` rule:

- ``"low-order"`` (any N): ``bank = addr mod N``, ``row = addr div N``. Consecutive addresses
  sit in consecutive banks, so unit-stride streams never conflict; strides sharing a factor with
  N use only ``N / gcd(stride, N)`` banks (a stride of N hits one bank).
- ``"xor"`` (N a power of two, ``k = log2 N``): ``row = addr >> k`` and
  ``bank = (addr mod N) XOR (row mod N)``: the low k address bits XOR the next k bits (missing
  bits of a short address are 0). Still a bijection, since the row carries the hashed bits.
  Power-of-two strides up to N (2, 4, ..., N) now spread over all banks.

Addresses ``>= N * depth`` (the address field can hold them when ``N * depth`` is not a power
of two) have ``row >= depth``: a read returns 0, a write is dropped. They still use their bank
for the cycle. The data reset value of every word is 0.

Arbitration (the hardware's, exactly). Each of the ``ports`` request ports executes its
requests in order, one per cycle at most. Each cycle every port with a pending request presents
its oldest one, and port p is granted iff no lower-numbered presenting port targets the same
bank; the others stall (never dropped, never reordered). :func:`schedule` gives the grant cycle
of every request when all ports present continuously (no stalls), :func:`conflict_rate` the
fraction of those cycles in which some port was stalled by a bank conflict.

Semantics. Requests take effect in grant order. The granted requests of one cycle hit distinct
banks, hence distinct addresses, so accesses by two ports to the same address in one cycle are
ordered "lower port first" (it is granted, the other waits). :func:`scratchpad` executes the
no-stall schedule and returns each port's read data in order (writes get no response). With
stalls the interleaving of the ports changes, so a program's result is timing-independent only
when no address written by one port is accessed by another (disjoint address sets, reads of
never-written words, or a single port): the tests keep to such programs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import BlockConfig, param

__all__ = ["ScratchpadConfig", "INTERLEAVES", "REQUEST_FIELDS", "bank_of", "row_of",
           "schedule", "conflict_rate", "scratchpad", "strided_addresses"]

INTERLEAVES = ("low-order", "xor")
#: Request word fields, in the order of the hardware's payload layout.
REQUEST_FIELDS = ("write", "addr", "data")


@dataclass(frozen=True, kw_only=True)
class ScratchpadConfig(BlockConfig):
    """Parameters of the banked scratchpad.

    Parameters
    ----------
    banks : int
        Number of banks N, 1..64.
    width : int
        Data width in bits, 1..512.
    depth : int
        Words per bank, 1..65536.
    ports : int
        Request ports, 1..8; port 0 has the highest priority.
    interleave : str
        ``"low-order"`` or ``"xor"`` (N a power of two); see the module docstring.
    """

    banks: int = param(4, help="number of banks N", range=(1, 64))
    width: int = param(16, help="data width in bits", range=(1, 512))
    depth: int = param(256, help="words per bank", range=(1, 65536))
    ports: int = param(2, help="request ports (port 0 has priority)", range=(1, 8))
    interleave: str = param("low-order", help="address to bank mapping: low-order (addr mod "
                            "N) or xor (low log2 N bits XOR the next ones; N a power of two)",
                            choices=INTERLEAVES)

    def _check(self):
        if self.interleave == "xor" and self.banks & (self.banks - 1):
            raise ValueError(f"interleave 'xor' needs banks to be a power of two, "
                             f"got {self.banks}")

    @property
    def size(self) -> int:
        """Words in all banks: ``banks * depth``."""
        return self.banks * self.depth

    @property
    def addr_width(self) -> int:
        """Bits of a request address (at least 1)."""
        return max(1, (self.size - 1).bit_length())

    @property
    def bank_bits(self) -> int:
        """``log2 N`` when N is a power of two (the bank is the low address bits), else 0."""
        return self.banks.bit_length() - 1 if self.banks & (self.banks - 1) == 0 else 0


def _addresses(config: ScratchpadConfig, addr) -> np.ndarray:
    a = np.asarray(addr, dtype=np.int64)
    if a.size and (a.min() < 0 or a.max() >= 1 << config.addr_width):
        raise ValueError(f"addresses must be in 0..{(1 << config.addr_width) - 1} "
                         f"({config.addr_width} bits)")
    return a


def row_of(config: ScratchpadConfig, addr) -> np.ndarray:
    """Row inside its bank of each address (``>= depth`` for an address out of range)."""
    return _addresses(config, addr) // config.banks


def bank_of(config: ScratchpadConfig, addr) -> np.ndarray:
    """Bank of each address under the config's interleaving."""
    a = _addresses(config, addr)
    n = config.banks
    if config.interleave == "xor":
        return (a % n) ^ ((a // n) % n)
    return a % n


def _arbitrate(config: ScratchpadConfig, addresses_per_port) -> tuple[list[np.ndarray], int]:
    """Grant cycles of every request of every port (no stalls), and the conflict cycles."""
    if len(addresses_per_port) != config.ports:
        raise ValueError(f"need address streams for {config.ports} ports, "
                         f"got {len(addresses_per_port)}")
    banks = [bank_of(config, a).tolist() for a in addresses_per_port]
    grants = [[] for _ in banks]
    heads = [0] * len(banks)
    cycle = conflicts = 0
    while any(h < len(b) for h, b in zip(heads, banks)):
        taken, stalled = set(), False
        for p, b in enumerate(banks):
            if heads[p] == len(b):
                continue
            bank = b[heads[p]]
            if bank in taken:
                stalled = True
            else:
                grants[p].append(cycle)
                heads[p] += 1
            taken.add(bank)
        conflicts += stalled
        cycle += 1
    return [np.array(g, dtype=np.int64) for g in grants], conflicts


def schedule(config: ScratchpadConfig, addresses_per_port) -> list[np.ndarray]:
    """Cycle (from 0) in which each request is granted when every port presents its requests
    back to back from cycle 0 and nothing stalls but bank conflicts.

    Parameters
    ----------
    addresses_per_port : sequence of array_like of int
        One address stream per port (``config.ports`` of them; an empty one for an idle port).
    """
    return _arbitrate(config, addresses_per_port)[0]


def conflict_rate(config: ScratchpadConfig, addresses_per_port) -> float:
    """Fraction of the cycles of :func:`schedule` in which some port was stalled by a bank
    conflict (0 for conflict-free streams, 0 with no requests)."""
    grants, conflicts = _arbitrate(config, addresses_per_port)
    cycles = max((int(g[-1]) + 1 for g in grants if len(g)), default=0)
    return conflicts / cycles if cycles else 0.0


def strided_addresses(config: ScratchpadConfig, stride: int, length: int,
                      start: int = 0) -> list[np.ndarray]:
    """The ports reading one strided vector together: element ``j`` is at address
    ``(start + j * stride) mod size`` and is read by port ``j mod ports``, so in a conflict-free
    cycle the ports read ``ports`` consecutive elements. Returns the address stream per port."""
    addr = (start + np.arange(length, dtype=np.int64) * stride) % config.size
    return [addr[p::config.ports] for p in range(config.ports)]


def _requests(config: ScratchpadConfig, port: int, requests) -> dict[str, np.ndarray]:
    missing = [f for f in REQUEST_FIELDS if f not in requests]
    if missing:
        raise ValueError(f"port {port} requests lack fields {missing}")
    write = np.asarray(requests["write"], dtype=np.int64)
    addr = _addresses(config, requests["addr"])
    data = np.asarray(requests["data"])
    if not write.shape == addr.shape == data.shape[:1] or write.ndim != 1:
        raise ValueError(f"port {port}: write, addr and data must be 1-D of one length")
    if write.size and not np.isin(write, (0, 1)).all():
        raise ValueError(f"port {port}: write must be 0 or 1")
    values = [int(v) for v in data.tolist()]
    if any(v < 0 or v >> config.width for v in values):
        raise ValueError(f"port {port}: data must be in 0..2**{config.width} - 1")
    return {"write": write, "addr": addr, "data": values}


def scratchpad(config: ScratchpadConfig, requests_per_port) -> list[dict[str, np.ndarray]]:
    """Read responses of each port, in request order.

    Parameters
    ----------
    requests_per_port : sequence of dict
        Per port, arrays ``write`` (1 = write, 0 = read), ``addr`` and ``data`` (ignored by a
        read), one element per request.

    Returns
    -------
    list of dict
        Per port, ``{"data": array}`` with one element per read (int64, or Python ints in an
        object array for ``width > 63``).
    """
    reqs = [_requests(config, p, r) for p, r in enumerate(requests_per_port)]
    grants = schedule(config, [r["addr"] for r in reqs])
    # Replay in (cycle, port) order; a cycle's grants touch distinct banks and addresses.
    order = sorted((int(c), p, k) for p, g in enumerate(grants) for k, c in enumerate(g))
    memory: dict[int, int] = {}
    reads = [[] for _ in reqs]
    for _, p, k in order:
        addr = int(reqs[p]["addr"][k])
        if reqs[p]["write"][k]:
            if addr < config.size:
                memory[addr] = reqs[p]["data"][k]
        else:
            reads[p].append(memory.get(addr, 0))
    dtype = object if config.width > 63 else np.int64
    return [{"data": np.array(r, dtype=dtype)} for r in reads]
