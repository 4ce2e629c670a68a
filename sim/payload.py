"""Packing stream payloads to and from integers, derived from the Amaranth layout.

A :class:`PayloadCodec` flattens a payload shape into *fields*: a name, a bit offset, an
element width and signedness, and the array dimensions (``()`` for a scalar). ``a`` of
``ArrayLayout(ArrayLayout(signed(8), cols), rows)`` is one field with dims ``(rows, cols)``.
Whole batches of transactions are packed with NumPy, so a testbench pays per transaction only
for assigning one integer. A codec round-trips through JSON, so a cocotb process can rebuild it
without importing the hardware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Field", "PayloadCodec", "stream_codecs"]


@dataclass(frozen=True)
class Field:
    """One flattened payload field."""

    name: str
    offset: int
    width: int
    signed: bool
    dims: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        """Number of elements."""
        return int(np.prod(self.dims, dtype=np.int64)) if self.dims else 1


def _fields_of(shape) -> list[Field]:
    # The layout walk is gen.interface's, the one the manifest and the headers use.
    from gen.interface import payload_fields

    return [Field(f.name, f.offset, f.width, f.signed, f.dims) for f in payload_fields(shape)]


class PayloadCodec:
    """Packs dicts of integer arrays into payload words and back.

    Parameters
    ----------
    fields : list of Field
        Use :meth:`from_shape` to derive them from an Amaranth shape or layout.
    width : int
        Payload width in bits.
    """

    def __init__(self, fields: list[Field], width: int):
        self.fields = list(fields)
        self.width = width

    @classmethod
    def from_shape(cls, shape) -> PayloadCodec:
        """Codec for a payload shape: a ``StructLayout`` (a field per member), an
        ``ArrayLayout`` or a plain shape (one field named ``value``)."""
        from amaranth.hdl import Shape

        return cls(_fields_of(shape), Shape.cast(shape).width)

    def to_json(self) -> dict:
        """A JSON-compatible description (see :meth:`from_json`)."""
        return {"width": self.width, "fields": [asdict(f) for f in self.fields]}

    @classmethod
    def from_json(cls, description: Mapping) -> PayloadCodec:
        """Rebuild a codec from :meth:`to_json` output."""
        return cls([Field(**{**f, "dims": tuple(f["dims"])}) for f in description["fields"]],
                   description["width"])

    def encode(self, values: Mapping[str, object], count: int | None = None) -> list[int]:
        """Pack a batch of transactions into payload words.

        Parameters
        ----------
        values : mapping of field name to array_like of int
            Each of shape ``(N, *field.dims)``, or broadcastable to it (a scalar sets a field in
            every transaction). Every field must be given.
        count : int, optional
            N, when no value has a leading batch axis.
        """
        packed = self._pack(values, count)
        return [int.from_bytes(row.tobytes(), "little") for row in packed]

    def encode_words(self, values: Mapping[str, object], count: int | None = None
                     ) -> np.ndarray:
        """Pack a batch like :meth:`encode`, as an ``(N, ceil(width / 32))`` array of
        little-endian uint32 (word 0 least significant, as C and Verilator hold a payload)."""
        packed = self._pack(values, count)
        words = (self.width + 31) // 32
        out = np.zeros((packed.shape[0], 4 * words), dtype=np.uint8)
        out[:, :packed.shape[1]] = packed
        return out.view("<u4")

    def _pack(self, values: Mapping[str, object], count: int | None) -> np.ndarray:
        """The payloads as rows of little-endian bytes."""
        missing = [f.name for f in self.fields if f.name not in values]
        extra = sorted(set(values) - {f.name for f in self.fields})
        if missing or extra:
            raise ValueError(f"payload fields missing: {missing}, unknown: {extra}")
        if count is None:
            count = max(np.shape(values[f.name])[0] if np.ndim(values[f.name]) > len(f.dims)
                        else 1 for f in self.fields)
        # Each element is OR-ed into the one or two 64-bit words it spans: a NumPy operation
        # over the whole batch per element, not per bit (a bit matrix costs ~10x more).
        out = np.zeros((count, self.width // 64 + 2), dtype=np.uint64)
        for f in self.fields:
            raw = np.broadcast_to(np.asarray(values[f.name]), (count, *f.dims))
            lo = -(1 << (f.width - 1)) if f.signed else 0
            hi = (1 << (f.width - 1)) - 1 if f.signed else (1 << f.width) - 1
            if raw.size and (raw.min() < lo or raw.max() > hi):
                raise ValueError(f"payload field {f.name!r} must be in {lo}..{hi}")
            unsigned = _to_uint64(raw.reshape(count, f.count), f.width)
            for k in range(f.count):
                word, shift = divmod(f.offset + k * f.width, 64)
                column = unsigned[:, k]
                out[:, word] |= column << np.uint64(shift)
                if shift + f.width > 64:
                    out[:, word + 1] |= column >> np.uint64(64 - shift)
        nbytes = (self.width + 7) // 8
        return out.astype("<u8").view(np.uint8).reshape(count, -1)[:, :nbytes]

    def decode(self, words: list[int]) -> dict[str, np.ndarray]:
        """Unpack payload words into a dict of arrays of shape ``(N, *field.dims)``."""
        count = len(words)
        nbytes = (self.width + 7) // 8
        raw = np.frombuffer(b"".join(int(w).to_bytes(nbytes, "little") for w in words),
                            dtype=np.uint8).reshape(count, nbytes)
        bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :self.width]
        out = {}
        for f in self.fields:
            field_bits = bits[:, f.offset:f.offset + f.count * f.width]
            field_bits = field_bits.reshape(count, f.count, f.width).astype(np.uint64)
            unsigned = (field_bits << np.arange(f.width, dtype=np.uint64)).sum(
                axis=-1, dtype=np.uint64)
            out[f.name] = _from_uint64(unsigned, f.width, f.signed).reshape(count, *f.dims)
        return out

    def describe_difference(self, expected: int, actual: int) -> str:
        """Name the fields (and elements) where two payload words differ."""
        exp, act = (self.decode([w]) for w in (expected, actual))
        parts = []
        for f in self.fields:
            e, a = exp[f.name][0], act[f.name][0]
            for index in zip(*np.nonzero(np.atleast_1d(e != a))):
                at = "".join(f"[{k}]" for k in index) if f.dims else ""
                parts.append(f"{f.name}{at}: expected {np.atleast_1d(e)[index]}, "
                             f"got {np.atleast_1d(a)[index]}")
        return "; ".join(parts[:8]) + (f"; ... ({len(parts)} elements differ)"
                                       if len(parts) > 8 else "")


def stream_codecs(component) -> tuple[PayloadCodec, PayloadCodec]:
    """Codecs of a component's ``i`` and ``o`` stream payloads."""
    members = component.signature.members
    return tuple(PayloadCodec.from_shape(members[port].signature.members["payload"].shape)
                 for port in ("i", "o"))


def _to_uint64(values: np.ndarray, width: int) -> np.ndarray:
    """Two's complement bit patterns of ``values`` as uint64 (width <= 64)."""
    if width > 64:
        raise ValueError(f"fields wider than 64 bits are not supported, got {width}")
    mask = (1 << width) - 1
    if values.dtype == object:
        return np.array([int(v) & mask for v in values.ravel()],
                        dtype=np.uint64).reshape(values.shape)
    return values.astype(np.int64).astype(np.uint64) & np.uint64(mask)


def _from_uint64(values: np.ndarray, width: int, signed: bool) -> np.ndarray:
    """Integers from ``width``-bit patterns: int64, or Python ints for unsigned 64-bit."""
    if not signed:
        return values.astype(object) if width == 64 else values.astype(np.int64)
    as_int = values.view(np.int64) if width == 64 else values.astype(np.int64)
    if width < 64:
        as_int = np.where(as_int >= (1 << (width - 1)), as_int - (1 << width), as_int)
    return as_int
