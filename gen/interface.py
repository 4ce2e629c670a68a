"""What sits in which bits: the field maps of a component's stream payloads, derived from its
Amaranth layouts.

A payload shape flattens into :class:`PayloadField` s: a name (``a``, ``op``, ``s.b`` for a
nested struct member), a bit offset, an element width and signedness, the array shape (``()``
for a scalar) and, for an enum, every value's name and code. An array field's elements are
laid out row-major from its offset, element ``[0]...[0]`` in the lowest bits, exactly as
Amaranth's ``ArrayLayout`` places them; :meth:`PayloadField.elements` expands them into paths
like ``a[2][5]``. :func:`stream_maps` finds every stream port of a component and gives its
handshake port names and payload map: the manifest, the C and SystemVerilog headers
(:mod:`gen.headers`), the named-port wrapper and the simulators' packers all read it, so none
of them can drift from the hardware.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

from amaranth.hdl import Const, Shape
from amaranth.lib import data, wiring

__all__ = ["PayloadField", "Element", "StreamMap", "payload_fields", "stream_maps",
           "element_name"]


@dataclass(frozen=True)
class Element:
    """One scalar of a payload: its path (``a[2][5]``), bit offset, width and signedness."""

    path: str
    offset: int
    width: int
    signed: bool

    def to_json(self) -> dict:
        return {"path": self.path, "offset": self.offset, "width": self.width,
                "signed": self.signed}


@dataclass(frozen=True)
class PayloadField:
    """One flattened payload field (a scalar or an array of scalars).

    Attributes
    ----------
    name : str
        Member name; nested struct members are joined with ``.``; ``value`` when the whole
        payload is one scalar or array.
    offset : int
        Bit offset of element ``[0]...[0]`` (of the scalar).
    width : int
        Width of one element, in bits.
    signed : bool
        Whether an element is two's complement.
    dims : tuple of int
        Array shape, outermost first; ``()`` for a scalar.
    enum : tuple of (str, int), optional
        For an enum field, ``(name, code)`` of every value.
    enum_name : str, optional
        The enum's class name (``PEOp``).
    """

    name: str
    offset: int
    width: int
    signed: bool
    dims: tuple[int, ...] = ()
    enum: tuple[tuple[str, int], ...] | None = None
    enum_name: str | None = None

    @property
    def count(self) -> int:
        """Number of elements."""
        total = 1
        for d in self.dims:
            total *= d
        return total

    def elements(self) -> list[Element]:
        """Every element, row-major (last index fastest), with its path and offset."""
        return [Element(self.name + "".join(f"[{i}]" for i in index),
                        self.offset + k * self.width, self.width, self.signed)
                for k, index in enumerate(itertools.product(*(range(d) for d in self.dims)))]

    def to_json(self) -> dict:
        out = {"name": self.name, "offset": self.offset, "width": self.width,
               "signed": self.signed, "shape": list(self.dims), "stride": self.width,
               "bits": self.count * self.width}
        if self.enum is not None:
            out["enum"] = {"name": self.enum_name, "values": dict(self.enum)}
        return out


def payload_fields(shape) -> list[PayloadField]:
    """Flatten a payload shape (a ``StructLayout``, an ``ArrayLayout`` or a plain shape) into
    fields, in offset order.

    Raises
    ------
    TypeError
        For an array of structs (no generator has one; the map would need per-element structs).
    """
    fields = _fields_of(shape, "", 0)
    return sorted(fields, key=lambda f: f.offset)


def _fields_of(shape, name: str, offset: int) -> list[PayloadField]:
    if isinstance(shape, data.StructLayout):
        fields = []
        for member, field in shape:
            fields += _fields_of(field.shape, f"{name}.{member}" if name else member,
                                 offset + field.offset)
        return fields
    dims = []
    while isinstance(shape, data.ArrayLayout):
        dims.append(shape.length)
        shape = shape.elem_shape
    if isinstance(shape, data.Layout):
        raise TypeError(f"field {name!r}: arrays of {type(shape).__name__} are not supported")
    cast = Shape.cast(shape)
    values = enum_name = None
    if isinstance(shape, type) and issubclass(shape, enum.Enum):
        values = tuple((member.name, int(member.value)) for member in shape)
        enum_name = shape.__name__
    return [PayloadField(name or "value", offset, cast.width, cast.signed, tuple(dims), values,
                         enum_name)]


def element_name(path: str) -> str:
    """An identifier for an element path: ``a[2][5]`` -> ``a_2_5``, ``s.b`` -> ``s_b``."""
    return path.replace("][", "_").replace("[", "_").replace("]", "").replace(".", "_")


@dataclass(frozen=True)
class StreamMap:
    """A stream port of a component and the map of its payload.

    Attributes
    ----------
    name : str
        The port prefix in the emitted Verilog (``i``, ``req__0``).
    direction : str
        ``input`` (the component takes words) or ``output``.
    width : int
        Payload width in bits.
    fields : list of PayloadField
    always_ready : bool
        The stream has no backpressure and no ``ready`` port (:attr:`ready` is None): the
        receiver takes every word the cycle it is valid.
    """

    name: str
    direction: str
    width: int
    fields: tuple[PayloadField, ...]
    always_ready: bool = False

    @property
    def valid(self) -> str:
        return f"{self.name}__valid"

    @property
    def ready(self) -> str | None:
        return None if self.always_ready else f"{self.name}__ready"

    @property
    def payload(self) -> str:
        return f"{self.name}__payload"

    def elements(self) -> list[Element]:
        """Every scalar of the payload, in offset order."""
        return [e for f in self.fields for e in f.elements()]

    def to_json(self) -> dict:
        return {"name": self.name, "direction": self.direction, "valid": self.valid,
                "ready": self.ready, "payload": self.payload, "width": self.width,
                "fields": [f.to_json() for f in self.fields],
                "elements": [e.to_json() for e in self.elements()]}


def stream_maps(component: wiring.Component) -> list[StreamMap]:
    """Every stream port of ``component`` (a ``valid``/``ready``/``payload`` triple in its
    flattened signature, arrays of streams included), with its payload map."""
    groups: dict[tuple, dict] = {}
    constant_ready = set()  # the prefixes of always-ready streams (ready is Const(1))
    for path, member, value in component.signature.flatten(component):
        if path[-1] in ("valid", "ready", "payload"):
            groups.setdefault(tuple(path[:-1]), {})[path[-1]] = member
            if path[-1] == "ready" and isinstance(value, Const):
                constant_ready.add(tuple(path[:-1]))
    maps = []
    for prefix, members in groups.items():
        if set(members) != {"valid", "ready", "payload"}:
            continue
        valid, payload = members["valid"], members["payload"]
        if valid.flow != payload.flow or members["ready"].flow == valid.flow:
            continue
        direction = "input" if valid.flow == wiring.In else "output"
        maps.append(StreamMap("__".join(str(p) for p in prefix), direction,
                              Shape.cast(payload.shape).width,
                              tuple(payload_fields(payload.shape)),
                              prefix in constant_ready))
    return maps
