"""Host bridge: a byte stream (UART, USB FIFO, ...) drives an AXI4-Lite master. The protocol,
its encoders and parsers (the public API of a host-side client), the parameters and the model.

Pure Python (no Amaranth): ``hw.host_bridge.HostBridge`` is the hardware, and the tests check
its response bytes and AXI transactions against :func:`host_bridge`.

Protocol
--------
All multi-byte fields are little-endian. The host sends command frames; the bridge answers
each one, in order:

=========  ========================================  ===========================================
command    frame (host -> bridge)                     response (bridge -> host)
=========  ========================================  ===========================================
WRITE      ``0x57`` ('W'), addr (4 bytes),            1 status byte, after the last write's B
           ``count - 1`` (1 byte), ``count`` words     response
           of 4 bytes
READ       ``0x52`` ('R'), addr (4 bytes),            ``count`` words of 4 bytes (each sent as
           ``count - 1`` (1 byte)                      soon as it is read), then 1 status byte
PING       ``0x50`` ('P')                             status ``0x00``, then :data:`PING_MAGIC`
                                                      as 4 bytes LE: ``b"GCCA"``
other      any other first byte                       status ``0x02``; the byte is dropped
=========  ========================================  ===========================================

- ``addr`` is a byte address; its low 2 bits are ignored (word aligned), and so are the bits
  above the bridge's ``addr_width``. Word ``k`` of a command goes to ``addr + 4 * k``, wrapping
  around the top of the ``addr_width``-bit address space.
- ``count`` is 1..256 words. Each word is one AXI4-Lite transaction (``wstrb`` all ones,
  ``prot`` 0), one at a time.
- Status: :data:`STATUS_OK` (every response OKAY), :data:`STATUS_BUS_ERROR` (some response was
  not OKAY: every write is still performed, every read word still sent as read),
  :data:`STATUS_UNKNOWN_COMMAND`. After a ``0x02`` the host resynchronizes by sending PINGs
  until it sees :data:`PING_RESPONSE`.
- The bridge has no AXI timeout: the slave must answer every transaction (put
  ``hw.memory.axil_decoder.AXILiteDecoder`` in front of the slaves; it answers unmapped
  addresses itself).
- A WRITE cut short (the stream ends mid-command) has performed the writes of its complete
  words and sends no status; a READ or WRITE whose 6-byte header is incomplete does nothing.

A host client::

    port.write(encode_read(0x1000, 4))
    words, status = parse_read_response(port.read(read_response_length(4)), 4)
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from .params import BlockConfig, param

__all__ = [
    "CMD_WRITE", "CMD_READ", "CMD_PING", "MAX_WORDS",
    "STATUS_OK", "STATUS_BUS_ERROR", "STATUS_UNKNOWN_COMMAND",
    "PING_MAGIC", "PING_MAGIC_BYTES", "PING_RESPONSE", "OKAY", "SLVERR",
    "HostBridgeConfig",
    "encode_write", "encode_read", "encode_ping",
    "write_response_length", "read_response_length", "ping_response_length",
    "parse_status", "parse_write_response", "parse_read_response", "parse_ping_response",
    "WordMemory", "host_bridge",
]

#: Command bytes.
CMD_WRITE, CMD_READ, CMD_PING = 0x57, 0x52, 0x50
#: Most words in one READ or WRITE (the count byte holds ``count - 1``).
MAX_WORDS = 256
#: Status bytes.
STATUS_OK, STATUS_BUS_ERROR, STATUS_UNKNOWN_COMMAND = 0x00, 0x01, 0x02
#: The PING answer's magic number ("ACCG" read as a big-endian word). It is sent
#: little-endian like every word, so the bytes on the wire are :data:`PING_MAGIC_BYTES`.
PING_MAGIC = 0x4143_4347
#: ``PING_MAGIC`` as sent: ``b"GCCA"``.
PING_MAGIC_BYTES = PING_MAGIC.to_bytes(4, "little")
#: The complete PING response: status 0x00, then the magic.
PING_RESPONSE = bytes([STATUS_OK]) + PING_MAGIC_BYTES
#: AXI response codes.
OKAY, SLVERR = 0, 2

_STATUS_NAMES = {STATUS_OK: "ok", STATUS_BUS_ERROR: "bus error",
                 STATUS_UNKNOWN_COMMAND: "unknown command"}


@dataclass(frozen=True, kw_only=True)
class HostBridgeConfig(BlockConfig):
    """Parameters of the host bridge.

    Parameters
    ----------
    addr_width : int
        AXI4-Lite byte address width, 8..32 (the command's address field is always 4 bytes;
        the bits above ``addr_width`` are ignored).
    """

    addr_width: int = param(32, help="AXI4-Lite byte address width", range=(8, 32))


# --- encoders ---------------------------------------------------------------------------------


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo:#x}..{hi:#x}, got {value:#x}")
    return value


def _check_addr(addr, addr_width: int) -> int:
    _check_int("addr_width", addr_width, 8, 32)
    return _check_int("addr", addr, 0, (1 << addr_width) - 1)


def _check_count(count) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"count must be an integer, got {count!r}")
    if not 1 <= count <= MAX_WORDS:
        raise ValueError(f"count must be in 1..{MAX_WORDS}, got {count}")
    return count


def encode_write(addr: int, words: Iterable[int], *, addr_width: int = 32) -> bytes:
    """The WRITE frame storing ``words`` (1..256 values in 0..2**32 - 1) from byte address
    ``addr`` (0..2**addr_width - 1; its low 2 bits are ignored by the bridge)."""
    _check_addr(addr, addr_width)
    words = list(words)
    if not 1 <= len(words) <= MAX_WORDS:
        raise ValueError(f"words must hold 1..{MAX_WORDS} words, got {len(words)}")
    for k, word in enumerate(words):
        _check_int(f"words[{k}]", word, 0, 0xFFFF_FFFF)
    return (bytes([CMD_WRITE]) + addr.to_bytes(4, "little") + bytes([len(words) - 1])
            + b"".join(w.to_bytes(4, "little") for w in words))


def encode_read(addr: int, count: int, *, addr_width: int = 32) -> bytes:
    """The READ frame for ``count`` (1..256) words from byte address ``addr``."""
    _check_addr(addr, addr_width)
    _check_count(count)
    return bytes([CMD_READ]) + addr.to_bytes(4, "little") + bytes([count - 1])


def encode_ping() -> bytes:
    """The PING frame (one byte)."""
    return bytes([CMD_PING])


def write_response_length(count: int = 1) -> int:
    """Bytes the bridge answers to a WRITE of ``count`` words: 1 (the status)."""
    _check_count(count)
    return 1


def read_response_length(count: int) -> int:
    """Bytes the bridge answers to a READ of ``count`` words: ``4 * count + 1``."""
    return 4 * _check_count(count) + 1


def ping_response_length() -> int:
    """Bytes the bridge answers to a PING: 5."""
    return len(PING_RESPONSE)


# --- parsers ----------------------------------------------------------------------------------


def _check_length(what: str, data: bytes, length: int) -> bytes:
    data = bytes(data)
    if len(data) != length:
        raise ValueError(f"{what} must be {length} bytes, got {len(data)}")
    return data


def parse_status(status: int) -> int:
    """Return a READ/WRITE status byte (:data:`STATUS_OK` or :data:`STATUS_BUS_ERROR`);
    ``ValueError`` for :data:`STATUS_UNKNOWN_COMMAND` (host and bridge are out of step:
    resynchronize with PING) or any other value."""
    if status in (STATUS_OK, STATUS_BUS_ERROR):
        return status
    if status == STATUS_UNKNOWN_COMMAND:
        raise ValueError("status 0x02: the bridge did not recognise a command byte; "
                         "resynchronize with PING")
    raise ValueError(f"status must be 0x00 or 0x01, got {status:#04x}")


def parse_write_response(data: bytes) -> int:
    """The status of a WRITE response (exactly 1 byte)."""
    return parse_status(_check_length("a WRITE response", data, 1)[0])


def parse_read_response(data: bytes, count: int) -> tuple[list[int], int]:
    """``(words, status)`` of the response to a READ of ``count`` words (exactly
    ``read_response_length(count)`` bytes). With :data:`STATUS_BUS_ERROR`, the words whose
    response was not OKAY hold what the slave sent (0 from the decoder)."""
    data = _check_length("a READ response", data, read_response_length(count))
    words = [int.from_bytes(data[4 * k:4 * k + 4], "little") for k in range(count)]
    return words, parse_status(data[-1])


def parse_ping_response(data: bytes) -> int:
    """Check a PING response (exactly 5 bytes: status 0x00 and the magic); returns
    :data:`STATUS_OK` or raises ``ValueError`` saying what differs."""
    data = _check_length("a PING response", data, len(PING_RESPONSE))
    if data[0] != STATUS_OK:
        raise ValueError(f"PING response status must be 0x00, got {data[0]:#04x}")
    if data[1:] != PING_MAGIC_BYTES:
        raise ValueError(f"PING response magic must be {PING_MAGIC_BYTES!r}, got {data[1:]!r}")
    return STATUS_OK


# --- model ------------------------------------------------------------------------------------


class WordMemory:
    """An AXI4-Lite slave as the bridge sees it: 32-bit words by byte address, dict-backed.

    Parameters
    ----------
    words : mapping of int to int, optional
        Initial contents by word-aligned byte address; every other word reads 0.
    mapped : container of int, optional
        Byte addresses that answer OKAY (a ``set``, a ``range``, anything with ``in``); every
        address when omitted.
    unmapped : container of int, optional
        Byte addresses that answer SLVERR even if ``mapped`` holds them (e.g. a ``range``
        making a hole). An unmapped write answers SLVERR and stores nothing; an unmapped read
        answers SLVERR with data 0.

    Attributes
    ----------
    words : dict of int to int
        The contents written so far (and the initial ones).
    transactions : list of (str, int, int)
        ``("W", addr, data)`` or ``("R", addr, data returned)``, in order.
    """

    def __init__(self, words: Mapping[int, int] | None = None, *,
                 mapped: Container[int] | None = None, unmapped: Container[int] | None = None):
        self.words = dict(words or {})
        self.mapped, self.unmapped = mapped, unmapped
        self.transactions: list[tuple[str, int, int]] = []

    def is_mapped(self, addr: int) -> bool:
        """Whether ``addr`` answers OKAY."""
        return ((self.mapped is None or addr in self.mapped)
                and (self.unmapped is None or addr not in self.unmapped))

    def write(self, addr: int, data: int) -> int:
        """A full-word write; returns the response (OKAY or SLVERR)."""
        self.transactions.append(("W", addr, data))
        if not self.is_mapped(addr):
            return SLVERR
        self.words[addr] = data
        return OKAY

    def read(self, addr: int) -> tuple[int, int]:
        """A word read: ``(data, response)``."""
        data, resp = (self.words.get(addr, 0), OKAY) if self.is_mapped(addr) else (0, SLVERR)
        self.transactions.append(("R", addr, data))
        return data, resp


def host_bridge(commands: bytes, memory, config: HostBridgeConfig | None = None) -> bytes:
    """The bytes the bridge sends back for the command stream ``commands``.

    Parameters
    ----------
    commands : bytes
        The host's byte stream: any mix of frames and stray bytes (see the module docstring).
    memory :
        The AXI slave: ``write(addr, data) -> resp`` and ``read(addr) -> (data, resp)``, called
        once per AXI transaction in the bridge's order, e.g. a :class:`WordMemory` (whose
        ``transactions`` then record them).
    config : HostBridgeConfig, optional
        Default ``HostBridgeConfig()``.
    """
    cfg = HostBridgeConfig.coerce(config)
    data = bytes(commands)
    mask = (1 << cfg.addr_width) - 1
    out = bytearray()
    pos = 0
    while pos < len(data):
        command = data[pos]
        pos += 1
        if command == CMD_PING:
            out += PING_RESPONSE
            continue
        if command not in (CMD_WRITE, CMD_READ):
            out.append(STATUS_UNKNOWN_COMMAND)
            continue
        header = data[pos:pos + 5]
        if len(header) < 5:
            break
        pos += 5
        base = int.from_bytes(header[:4], "little") & mask & ~3
        error = False
        for k in range(header[4] + 1):
            addr = (base + 4 * k) & mask
            if command == CMD_READ:
                word, resp = memory.read(addr)
                out += word.to_bytes(4, "little")
            else:
                chunk = data[pos:pos + 4]
                if len(chunk) < 4:
                    return bytes(out)
                pos += 4
                resp = memory.write(addr, int.from_bytes(chunk, "little"))
            error |= resp != OKAY
        out.append(STATUS_BUS_ERROR if error else STATUS_OK)
    return bytes(out)
