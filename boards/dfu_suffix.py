"""Append a USB DFU suffix to a file, as dfu-util's ``dfu-suffix -v VID -p PID -a FILE`` does.

The OrangeCrab's build flow ends with ``dfu-suffix`` so that ``dfu-util`` accepts the bitstream.
dfu-util is not on PyPI; this stands in for it when it is not installed (DFU 1.1 suffix:
bcdDevice, idProduct, idVendor, bcdDFU, "UFD", length 16, then the CRC-32 of everything before
it, complemented, as the DFU specification defines).
"""

from __future__ import annotations

import argparse
import struct
import zlib
from pathlib import Path

__all__ = ["dfu_suffix", "add_dfu_suffix", "main"]


def dfu_suffix(data: bytes, vendor: int, product: int, device: int = 0xFFFF) -> bytes:
    """The 16-byte suffix for ``data``."""
    body = struct.pack("<HHHH3sB", device, product, vendor, 0x0100, b"UFD", 16)
    crc = zlib.crc32(data + body) ^ 0xFFFFFFFF  # dfu-util stores the raw (uncomplemented) CRC
    return body + struct.pack("<I", crc)


def add_dfu_suffix(path: str | Path, vendor: int, product: int) -> None:
    """Append the suffix to the file at ``path`` (once: an existing suffix is an error)."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) >= 16 and data[-8:-5] == b"UFD":
        raise ValueError(f"{path} already has a DFU suffix")
    path.write_bytes(data + dfu_suffix(data, vendor, product))


def main(argv: list[str] | None = None) -> int:
    """``python -m boards.dfu_suffix -v 1209 -p 5af0 -a FILE``."""
    parser = argparse.ArgumentParser(prog="dfu-suffix")
    parser.add_argument("-v", "--vid", required=True, type=lambda s: int(s, 16))
    parser.add_argument("-p", "--pid", required=True, type=lambda s: int(s, 16))
    parser.add_argument("-a", "--add", required=True, metavar="FILE")
    args = parser.parse_args(argv)
    add_dfu_suffix(args.add, args.vid, args.pid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
