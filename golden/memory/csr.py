"""Control/status registers from a Python description: the register map, its loaders, its
emitted views (JSON, C header, Python module), the block's parameters and its golden model.

Pure Python (no Amaranth): ``hw.memory.csr.CSRBlock`` builds the AXI4-Lite slave from a
:class:`RegisterMap`, and the tests check it against :class:`CSRModel`.

Description
-----------
A :class:`RegisterMap` is a list of :class:`Register` s, each a list of :class:`Field` s::

    RegisterMap("accel_csr", [
        Register("ctrl", [Field("enable", 1, "rw"), Field("mode", 2, "rw", reset=1)]),
        Register("status", [Field("busy", 1, "ro")], address=0x10),
    ], data_width=32)

- Field access: ``"rw"`` (read/write, an output of the block to the design), ``"ro"``
  (read-only, an input from the design: reads return the input), ``"w1c"`` (an input "set"
  pulse from the design sets bits, a bus write of 1 clears them; set wins over a clear in the
  same cycle; the current value is an output).
- Fields are packed from bit 0 in the order given unless they give an ``offset``; registers
  get addresses in order, ``data_width // 8`` bytes apart (4 for 32-bit data), unless they
  give an ``address`` (the next unaddressed register follows the last one).
- ``addr_width`` (bits of ``awaddr``/``araddr``) defaults to the fewest that reach every
  register; an address inside that space but outside the map answers SLVERR.
- Names: a letter, then letters, digits and single underscores (they become Amaranth members,
  Verilog ports ``<register>__<field>`` (w1c: ``<register>__<field>__value`` and ``__set``),
  C macros and Python attributes); no Python keyword; register names unique and field names
  unique per register, ignoring case; not one of :data:`RESERVED_REGISTER_NAMES` /
  :data:`RESERVED_FIELD_NAMES`; no pair of names that makes two emitted identifiers equal
  (``a_b.c`` and ``a.b_c`` would both give ``<MAP>_A_B_C_MASK``). Invalid descriptions raise
  ``ValueError`` saying what and where.

The same description as TOML (or JSON, with the same keys; ``regmap_json`` emits it)::

    name = "accel_csr"
    data_width = 32          # optional: 32 (default) or 64
    # addr_width = 8         # optional

    [[registers]]
    name = "ctrl"
    description = "control"
    # address = 0x0          # optional
    fields = [
        { name = "enable", width = 1, access = "rw", description = "start processing" },
        { name = "mode", width = 2, access = "rw", reset = 1 },
    ]

Block parameters
----------------
The CLI registry needs flat parameters, so :class:`CSRConfig` has one, ``spec``: a built-in map
name (see :data:`BUILTIN_MAPS`), a path to a ``.toml`` or ``.json`` description (relative to
the working directory), or the JSON description itself (what :meth:`CSRConfig.for_regmap`
makes, so a manifest records exactly the map that was built).
"""

from __future__ import annotations

import functools
import json
import keyword
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..params import BlockConfig, param

__all__ = [
    "ACCESS", "OKAY", "SLVERR", "RESERVED_REGISTER_NAMES", "RESERVED_FIELD_NAMES",
    "Field", "Register", "RegisterMap",
    "regmap_to_dict", "regmap_from_dict", "regmap_json", "regmap_from_json", "regmap_from_toml",
    "load_regmap", "resolve_spec", "BUILTIN_MAPS", "example_regmap",
    "c_header", "python_module", "regmap_file_names", "write_regmap_files",
    "CSRConfig", "CSRModel", "csr_model",
]

#: The field access types.
ACCESS = ("rw", "ro", "w1c")
#: AXI response codes the block uses.
OKAY, SLVERR = 0, 2
#: Register names the hardware needs for itself: the bus port and the component's attributes.
RESERVED_REGISTER_NAMES = frozenset({"axil", "signature", "config", "latency", "regmap",
                                     "elaborate"})
#: Field names the emitted Python register classes use for themselves.
RESERVED_FIELD_NAMES = frozenset({"address", "pack", "unpack"})
#: Version tag of the JSON description.
JSON_FORMAT = "accelgen-regmap/1"

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def _check_name(kind: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        raise ValueError(f"{kind} name must be a C/Python identifier: a letter, then letters, "
                         f"digits or single underscores; got {name!r}")
    if keyword.iskeyword(name):
        raise ValueError(f"{kind} name {name!r} is a Python keyword")


def _check_int(what: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")


def _check_str(what: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {value!r}")


# --- description ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """A bit field of a register.

    Parameters
    ----------
    name : str
        Identifier, unique in its register (ignoring case).
    width : int
        Bits, 1..data_width.
    access : str
        ``"rw"``, ``"ro"`` or ``"w1c"`` (see the module docstring).
    reset : int
        Value after reset, ``0..2**width - 1``; must be 0 for ``"ro"`` (the design drives it).
    description : str
        Free text for the emitted files.
    offset : int, optional
        Lowest bit; by default right above the previous field (0 for the first).
    """

    name: str
    width: int
    access: str
    reset: int = 0
    description: str = ""
    offset: int | None = None

    def __post_init__(self):
        _check_name("field", self.name)
        where = f"field {self.name!r}"
        _check_int(f"{where}: width", self.width)
        if self.width < 1:
            raise ValueError(f"{where}: width must be at least 1, got {self.width}")
        if self.access not in ACCESS:
            raise ValueError(f"{where}: access must be one of {', '.join(ACCESS)}, "
                             f"got {self.access!r}")
        _check_int(f"{where}: reset", self.reset)
        if not 0 <= self.reset < 1 << self.width:
            raise ValueError(f"{where}: reset {self.reset:#x} does not fit in {self.width} "
                             f"bits")
        if self.access == "ro" and self.reset:
            raise ValueError(f"{where}: an ro field takes its value from the design, so its "
                             f"reset must be 0, got {self.reset:#x}")
        _check_str(f"{where}: description", self.description)
        if self.offset is not None:
            _check_int(f"{where}: offset", self.offset)
            if self.offset < 0:
                raise ValueError(f"{where}: offset must be >= 0, got {self.offset}")

    @property
    def lsb(self) -> int:
        """Lowest bit (the offset, once placed)."""
        return self.offset

    @property
    def msb(self) -> int:
        """Highest bit."""
        return self.offset + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits within the register word."""
        return ((1 << self.width) - 1) << self.offset


@dataclass(frozen=True)
class Register:
    """A register: fields at one address.

    Parameters
    ----------
    name : str
        Identifier, unique in the map (ignoring case).
    fields : sequence of Field
        At least one; placed in order (see :class:`Field` ``offset``); must not overlap.
    description : str
        Free text for the emitted files.
    address : int, optional
        Byte address, a multiple of the register size; by default the previous register's
        address plus the register size (0 for the first).

    After construction ``fields`` is a tuple of fields with their offsets filled in.
    """

    name: str
    fields: tuple[Field, ...]
    description: str = ""
    address: int | None = None

    def __post_init__(self):
        _check_name("register", self.name)
        where = f"register {self.name!r}"
        if isinstance(self.fields, (str, Field)) or not isinstance(self.fields, Iterable):
            raise ValueError(f"{where}: fields must be a sequence of Field, got "
                             f"{self.fields!r}")
        fields = tuple(self.fields)
        if not fields:
            raise ValueError(f"{where} has no fields")
        placed, seen, next_offset = [], {}, 0
        for f in fields:
            if not isinstance(f, Field):
                raise ValueError(f"{where}: fields must be Field objects, got {f!r}")
            if f.name.lower() in seen:
                raise ValueError(f"{where}: duplicate field name {f.name!r} (names must "
                                 f"differ in more than case: they become C macros)")
            if f.name.lower() in RESERVED_FIELD_NAMES:
                raise ValueError(f"{where}: field name {f.name!r} is reserved (the emitted "
                                 f"Python class uses {', '.join(sorted(RESERVED_FIELD_NAMES))})")
            seen[f.name.lower()] = f
            if f.offset is None:
                f = replace(f, offset=next_offset)
            next_offset = f.offset + f.width
            placed.append(f)
        for a_index, a in enumerate(placed):
            for b in placed[:a_index]:
                if a.lsb <= b.msb and b.lsb <= a.msb:
                    raise ValueError(f"{where}: field {a.name!r} (bits {a.msb}..{a.lsb}) "
                                     f"overlaps field {b.name!r} (bits {b.msb}..{b.lsb})")
        object.__setattr__(self, "fields", tuple(placed))
        _check_str(f"{where}: description", self.description)
        if self.address is not None:
            _check_int(f"{where}: address", self.address)
            if self.address < 0:
                raise ValueError(f"{where}: address must be >= 0, got {self.address}")

    @property
    def reset_value(self) -> int:
        """The register word after reset (ro fields read 0 until the design drives them)."""
        return sum(f.reset << f.offset for f in self.fields)

    def field(self, name: str) -> Field:
        """The field called ``name``; ``KeyError`` if there is none."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name!r} has no field {name!r}")

    def mask(self, *access: str) -> int:
        """Bits of the fields with the given access types (all fields if none given)."""
        return sum(f.mask for f in self.fields if not access or f.access in access)


@dataclass(frozen=True)
class RegisterMap:
    """A register map: the registers behind one AXI4-Lite slave.

    Parameters
    ----------
    name : str
        Identifier: prefix of the C macros and name of the emitted files.
    registers : sequence of Register
        At least one; addresses assigned in order unless given; none may share an address.
    data_width : int
        Bus and register width: 32 or 64 (the AXI4-Lite widths). Registers are
        ``data_width // 8`` bytes apart.
    description : str
        Free text for the emitted files.
    addr_width : int, optional
        Address bits, up to 32; by default the fewest that reach every register.

    After construction ``registers`` is a tuple of registers with their addresses filled in
    and ``addr_width`` is set.
    """

    name: str
    registers: tuple[Register, ...]
    data_width: int = 32
    description: str = ""
    addr_width: int | None = None

    def __post_init__(self):
        _check_name("register map", self.name)
        where = f"register map {self.name!r}"
        _check_int(f"{where}: data_width", self.data_width)
        if self.data_width not in (32, 64):
            raise ValueError(f"{where}: data_width must be 32 or 64 (AXI4-Lite), got "
                             f"{self.data_width}")
        _check_str(f"{where}: description", self.description)
        if isinstance(self.registers, (str, Register)) or not isinstance(self.registers,
                                                                         Iterable):
            raise ValueError(f"{where}: registers must be a sequence of Register, got "
                             f"{self.registers!r}")
        registers = tuple(self.registers)
        if not registers:
            raise ValueError(f"{where} has no registers")
        stride = self.stride
        placed, names, at, next_address = [], {}, {}, 0
        for r in registers:
            if not isinstance(r, Register):
                raise ValueError(f"{where}: registers must be Register objects, got {r!r}")
            if r.name.lower() in names:
                raise ValueError(f"{where}: duplicate register name {r.name!r} (names must "
                                 f"differ in more than case: they become C macros)")
            if r.name.lower() in RESERVED_REGISTER_NAMES:
                raise ValueError(f"{where}: register name {r.name!r} is reserved (the block "
                                 f"uses {', '.join(sorted(RESERVED_REGISTER_NAMES))})")
            names[r.name.lower()] = r
            for f in r.fields:
                if f.msb >= self.data_width:
                    raise ValueError(f"{where}: register {r.name!r}: field {f.name!r} (bits "
                                     f"{f.msb}..{f.lsb}) is wider than the "
                                     f"{self.data_width}-bit register")
            if r.address is None:
                r = replace(r, address=next_address)
            if r.address % stride:
                raise ValueError(f"{where}: register {r.name!r} at {r.address:#x} is not "
                                 f"aligned to its size ({stride} bytes)")
            if r.address in at:
                raise ValueError(f"{where}: registers {at[r.address].name!r} and {r.name!r} "
                                 f"overlap at address {r.address:#x}")
            at[r.address] = r
            next_address = r.address + stride
            placed.append(r)
        object.__setattr__(self, "registers", tuple(placed))
        needed = max(self.stride_bits, (max(at) + stride - 1).bit_length())
        if self.addr_width is None:
            object.__setattr__(self, "addr_width", needed)
        else:
            _check_int(f"{where}: addr_width", self.addr_width)
            if not needed <= self.addr_width <= 32:
                raise ValueError(f"{where}: addr_width must be in {needed}..32 to reach "
                                 f"register {at[max(at)].name!r} at {max(at):#x}, got "
                                 f"{self.addr_width}")
        _check_identifiers(self)

    @property
    def stride(self) -> int:
        """Bytes per register: ``data_width // 8``."""
        return self.data_width // 8

    @property
    def stride_bits(self) -> int:
        """Address bits within a register word: ``log2(stride)``."""
        return self.stride.bit_length() - 1

    @property
    def strobe_width(self) -> int:
        """Byte lanes of the bus (bits of ``wstrb``)."""
        return self.data_width // 8

    def register(self, name: str) -> Register:
        """The register called ``name``; ``KeyError`` if there is none."""
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"register map {self.name!r} has no register {name!r}")

    def decode(self, address: int) -> Register | None:
        """The register a bus address selects (the low ``stride_bits`` ignored), or None."""
        word = address >> self.stride_bits << self.stride_bits
        for r in self.registers:
            if r.address == word:
                return r
        return None

    def unmapped_addresses(self) -> list[int]:
        """Word addresses inside the address space that select no register."""
        used = {r.address for r in self.registers}
        return [a for a in range(0, 1 << self.addr_width, self.stride) if a not in used]


# --- emitted identifiers ----------------------------------------------------------------------


def _class_name(register: Register) -> str:
    return "".join(part[:1].upper() + part[1:] for part in register.name.split("_"))


def _c_names(regmap: RegisterMap):
    """(macro, origin) of every macro the C header defines."""
    p = regmap.name.upper()
    yield f"{p}_H", "the include guard"
    yield f"{p}_DATA_WIDTH", "the map"
    yield f"{p}_ADDR_WIDTH", "the map"
    for r in regmap.registers:
        for suffix in ("OFFSET", "RESET"):
            yield f"{p}_{r.name.upper()}_{suffix}", f"register {r.name!r}"
        for f in r.fields:
            for suffix in ("SHIFT", "WIDTH", "MASK", "RESET", "GET", "SET"):
                yield f"{p}_{r.name.upper()}_{f.name.upper()}_{suffix}", \
                    f"field {r.name}.{f.name}"


def _python_names(regmap: RegisterMap):
    """(name, origin) of every top-level name the Python module defines."""
    for name in ("annotations", "dataclass", "NAME", "DATA_WIDTH", "ADDR_WIDTH", "REGISTERS"):
        yield name, "the module"
    for r in regmap.registers:
        yield _class_name(r), f"register {r.name!r} (its class)"
        for suffix in ("OFFSET", "RESET"):
            yield f"{r.name.upper()}_{suffix}", f"register {r.name!r}"
        for f in r.fields:
            for suffix in ("SHIFT", "WIDTH", "MASK", "RESET"):
                yield f"{r.name.upper()}_{f.name.upper()}_{suffix}", f"field {r.name}.{f.name}"


def _check_identifiers(regmap: RegisterMap) -> None:
    for kind, names in (("C macro", _c_names(regmap)), ("Python name", _python_names(regmap))):
        seen = {}
        for name, origin in names:
            if keyword.iskeyword(name):
                raise ValueError(f"register map {regmap.name!r}: {origin} gives the {kind} "
                                 f"{name}, a Python keyword; rename it")
            if name in seen:
                raise ValueError(f"register map {regmap.name!r}: {seen[name]} and {origin} "
                                 f"both give the {kind} {name}; rename one")
            seen[name] = origin


# --- loading and JSON -------------------------------------------------------------------------

_MAP_KEYS = {"name", "registers", "data_width", "description", "addr_width"}
_REGISTER_KEYS = {"name", "fields", "description", "address"}
_FIELD_KEYS = {"name", "width", "access", "reset", "description", "offset"}
# Derived values regmap_json adds for readers; a loader checks them against the description.
_DERIVED_MAP_KEYS = {"format"}
_DERIVED_REGISTER_KEYS = {"reset_value"}
_DERIVED_FIELD_KEYS = {"mask"}


def _table(what: str, value: Any, keys: set, derived: set, required=("name",)) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a table, got {value!r}")
    unknown = sorted(set(value) - keys - derived)
    if unknown:
        raise ValueError(f"{what}: unknown key {unknown[0]!r}; allowed: "
                         f"{', '.join(sorted(keys))}")
    for key in required:
        if key not in value:
            raise ValueError(f"{what} has no {key}")
    return {k: v for k, v in value.items() if k in keys}


def _list(what: str, value: Any) -> list:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, got {value!r}")
    return value


def regmap_from_dict(description: dict) -> RegisterMap:
    """Build a :class:`RegisterMap` from a parsed TOML or JSON description (see the module
    docstring). Unknown keys raise ``ValueError``; the derived keys ``regmap_json`` adds
    (``format``, ``reset_value``, ``mask``) must match the description when present."""
    top = _table("register map", description, _MAP_KEYS, _DERIVED_MAP_KEYS)
    if description.get("format", JSON_FORMAT) != JSON_FORMAT:
        raise ValueError(f"register map: unsupported format {description['format']!r}, "
                         f"expected {JSON_FORMAT!r}")
    registers = []
    for k, reg in enumerate(_list("register map: registers", top.get("registers", []))):
        values = _table(f"register #{k}", reg, _REGISTER_KEYS, _DERIVED_REGISTER_KEYS)
        fields = []
        for j, fld in enumerate(_list(f"register {values['name']!r}: fields",
                                      values.get("fields", []))):
            fields.append(Field(**_table(f"register {values['name']!r}: field #{j}", fld,
                                         _FIELD_KEYS, _DERIVED_FIELD_KEYS,
                                         required=("name", "width", "access"))))
        registers.append(Register(**{**values, "fields": fields}))
    regmap = RegisterMap(**{**top, "registers": registers})
    for reg, placed in zip(description.get("registers", []), regmap.registers):
        if "reset_value" in reg and reg["reset_value"] != placed.reset_value:
            raise ValueError(f"register {placed.name!r}: reset_value {reg['reset_value']!r} "
                             f"does not match its fields' resets ({placed.reset_value:#x})")
        for fld, f in zip(reg.get("fields", []), placed.fields):
            if "mask" in fld and fld["mask"] != f.mask:
                raise ValueError(f"field {placed.name}.{f.name}: mask {fld['mask']!r} does "
                                 f"not match its offset and width ({f.mask:#x})")
    return regmap


def regmap_to_dict(regmap: RegisterMap) -> dict:
    """The fully resolved description (addresses, offsets, ``addr_width``) plus the derived
    ``format``, ``reset_value`` and ``mask`` keys: what :func:`regmap_json` writes."""
    return {
        "format": JSON_FORMAT,
        "name": regmap.name,
        "description": regmap.description,
        "data_width": regmap.data_width,
        "addr_width": regmap.addr_width,
        "registers": [{
            "name": r.name,
            "address": r.address,
            "description": r.description,
            "reset_value": r.reset_value,
            "fields": [{"name": f.name, "offset": f.offset, "width": f.width,
                        "access": f.access, "reset": f.reset, "description": f.description,
                        "mask": f.mask} for f in r.fields],
        } for r in regmap.registers],
    }


def regmap_json(regmap: RegisterMap, indent: int | None = 2) -> str:
    """The register map as JSON; :func:`regmap_from_json` reads it back to an equal map."""
    text = json.dumps(regmap_to_dict(regmap), indent=indent,
                      separators=None if indent is not None else (",", ":"))
    return text + ("\n" if indent is not None else "")


def regmap_from_json(text: str) -> RegisterMap:
    """Parse a JSON description (``ValueError`` on malformed JSON or a bad description)."""
    try:
        description = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed register map JSON: {error}") from None
    return regmap_from_dict(description)


def regmap_from_toml(text: str) -> RegisterMap:
    """Parse a TOML description (``ValueError`` on malformed TOML or a bad description)."""
    try:
        description = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"malformed register map TOML: {error}") from None
    return regmap_from_dict(description)


def load_regmap(path: str | Path) -> RegisterMap:
    """Read a ``.toml`` or ``.json`` description file."""
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise ValueError(f"register description {path} must be a .toml or .json file")
    try:
        text = path.read_text()
    except OSError as error:
        raise ValueError(f"cannot read register description {path}: {error.strerror}") \
            from None
    try:
        return regmap_from_toml(text) if path.suffix == ".toml" else regmap_from_json(text)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def example_regmap() -> RegisterMap:
    """A small accelerator CSR map with every access type, partial-width fields, a full-width
    field and a register mixing rw, ro and w1c fields."""
    return RegisterMap("accel_csr", [
        Register("ctrl", [
            Field("enable", 1, "rw", description="start processing"),
            Field("mode", 2, "rw", reset=1, description="0: bypass, 1: linear, 2: element-wise"),
            Field("irq_enable", 1, "rw", offset=8, description="raise irq on done"),
            Field("length", 16, "rw", reset=0x40, offset=16, description="vector length"),
        ], "control"),
        Register("status", [
            Field("busy", 1, "ro", description="processing"),
            Field("count", 8, "ro", offset=8, description="vectors done"),
            Field("version", 8, "ro", offset=24, description="design version"),
        ], "status from the datapath"),
        Register("irq", [
            Field("done", 1, "w1c", description="a job finished"),
            Field("error", 1, "w1c", description="a job failed"),
            Field("overflow", 4, "w1c", offset=4, description="per-lane overflow"),
        ], "interrupt flags: set by the design, write 1 to clear"),
        Register("scratch", [Field("value", 32, "rw", reset=0x1234_5678)], "scratch word"),
        Register("mixed", [
            Field("threshold", 12, "rw", reset=0x100, description="alarm level"),
            Field("level", 12, "ro", description="current level"),
            Field("flags", 4, "w1c", offset=28, reset=0b0001, description="alarm flags"),
        ], "rw, ro and w1c fields in one register"),
    ], description="example accelerator control/status registers")


#: Built-in maps a :class:`CSRConfig` ``spec`` can name.
BUILTIN_MAPS = {"example": example_regmap}


def resolve_spec(spec: str) -> RegisterMap:
    """The register map a :class:`CSRConfig` ``spec`` names: a built-in map, inline JSON (a
    string starting with ``{``) or a ``.toml``/``.json`` file."""
    if spec in BUILTIN_MAPS:
        return BUILTIN_MAPS[spec]()
    if spec.lstrip().startswith("{"):
        return regmap_from_json(spec)
    if not spec.endswith((".toml", ".json")):
        raise ValueError(f"spec must be a built-in register map ({', '.join(BUILTIN_MAPS)}), "
                         f"a .toml or .json file, or inline JSON; got {spec!r}")
    return load_regmap(spec)


# --- C header and Python module ---------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _c_comment(text: str) -> str:
    return _one_line(text).replace("*/", "* /")


def c_header(regmap: RegisterMap) -> str:
    """A C header: for each register ``<MAP>_<REG>_OFFSET`` and ``_RESET``, for each field
    ``<MAP>_<REG>_<FIELD>_SHIFT``, ``_WIDTH``, ``_MASK``, ``_RESET`` and the function-like
    ``_GET(reg)`` / ``_SET(val)``; all names uppercase, with an include guard."""
    p = regmap.name.upper()
    word = "uint32_t" if regmap.data_width == 32 else "uint64_t"
    suffix = "u" if regmap.data_width == 32 else "ull"
    digits = regmap.data_width // 4

    def hexval(value):
        return f"0x{value:0{digits}x}{suffix}"

    lines = [
        f"/* Register map {regmap.name}: {_c_comment(regmap.description)}",
        " * Generated by accelgen from its description; do not edit. */",
        f"#ifndef {p}_H",
        f"#define {p}_H",
        "",
        "#include <stdint.h>",
        "",
        f"#define {p}_DATA_WIDTH {regmap.data_width}u",
        f"#define {p}_ADDR_WIDTH {regmap.addr_width}u",
    ]
    for r in regmap.registers:
        rp = f"{p}_{r.name.upper()}"
        lines += ["", f"/* {r.name}: {_c_comment(r.description)} */",
                  f"#define {rp}_OFFSET 0x{r.address:x}u",
                  f"#define {rp}_RESET {hexval(r.reset_value)}"]
        for f in r.fields:
            fp = f"{rp}_{f.name.upper()}"
            lines += [
                f"/* {r.name}.{f.name} [{f.msb}:{f.lsb}] {f.access}: "
                f"{_c_comment(f.description)} */",
                f"#define {fp}_SHIFT {f.offset}u",
                f"#define {fp}_WIDTH {f.width}u",
                f"#define {fp}_MASK {hexval(f.mask)}",
                f"#define {fp}_RESET 0x{f.reset:x}{suffix}",
                f"#define {fp}_GET(reg) ((({word})(reg) & {fp}_MASK) >> {fp}_SHIFT)",
                f"#define {fp}_SET(val) ((({word})(val) << {fp}_SHIFT) & {fp}_MASK)",
            ]
    lines += ["", f"#endif /* {p}_H */", ""]
    return "\n".join(lines)


def python_module(regmap: RegisterMap) -> str:
    """A Python module: ``NAME``, ``DATA_WIDTH``, ``ADDR_WIDTH``; for each register
    ``<REG>_OFFSET`` and ``<REG>_RESET``, for each field ``<REG>_<FIELD>_SHIFT``, ``_WIDTH``,
    ``_MASK`` and ``_RESET``; a dataclass per register (CamelCase name, one int attribute per
    field defaulting to its reset, ``ADDRESS``, ``pack()`` and ``unpack(word)``); and
    ``REGISTERS``, register name -> class."""
    digits = regmap.data_width // 4
    lines = [
        f'"""Register map {regmap.name}: {_one_line(regmap.description)}',
        "",
        'Generated by accelgen from its description; do not edit.',
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "",
        f"NAME = {regmap.name!r}",
        f"DATA_WIDTH = {regmap.data_width}",
        f"ADDR_WIDTH = {regmap.addr_width}",
    ]
    for r in regmap.registers:
        rp = r.name.upper()
        lines += ["", f"# {r.name}: {_one_line(r.description)}",
                  f"{rp}_OFFSET = 0x{r.address:x}",
                  f"{rp}_RESET = 0x{r.reset_value:0{digits}x}"]
        for f in r.fields:
            fp = f"{rp}_{f.name.upper()}"
            lines += [f"# {r.name}.{f.name} [{f.msb}:{f.lsb}] {f.access}: "
                      f"{_one_line(f.description)}",
                      f"{fp}_SHIFT = {f.offset}",
                      f"{fp}_WIDTH = {f.width}",
                      f"{fp}_MASK = 0x{f.mask:0{digits}x}",
                      f"{fp}_RESET = 0x{f.reset:x}"]
    for r in regmap.registers:
        cls = _class_name(r)
        doc = _one_line(f"{r.name} at 0x{r.address:x}: {r.description}")
        lines += ["", "", "@dataclass", f"class {cls}:", f"    {doc!r}", "",
                  f"    ADDRESS = 0x{r.address:x}", ""]
        lines += [f"    {f.name}: int = 0x{f.reset:x}" for f in r.fields]
        packed = " | ".join(f"((self.{f.name} << {f.offset}) & 0x{f.mask:x})"
                            for f in r.fields)
        lines += ["", "    def pack(self) -> int:",
                  '        """The register word."""',
                  f"        return {packed}",
                  "", "    @classmethod",
                  f"    def unpack(cls, word: int) -> {cls}:",
                  '        """The fields of a register word."""',
                  "        return cls(" + ", ".join(
                      f"{f.name}=(word >> {f.offset}) & 0x{(1 << f.width) - 1:x}"
                      for f in r.fields) + ")"]
    lines += ["", "", "REGISTERS = {" + ", ".join(f"{r.name!r}: {_class_name(r)}"
                                              for r in regmap.registers) + "}", ""]
    return "\n".join(lines)


def regmap_file_names(regmap: RegisterMap) -> dict[str, str]:
    """File names :func:`write_regmap_files` writes: ``<name>_regmap.json``, ``<name>.h`` and
    ``<name>.py`` (they never clash with the Verilog and manifest ``<module>.v/.json``)."""
    return {"json": f"{regmap.name}_regmap.json", "c": f"{regmap.name}.h",
            "python": f"{regmap.name}.py"}


def write_regmap_files(regmap: RegisterMap, out_dir: str | Path) -> dict[str, Path]:
    """Write the JSON description, the C header and the Python module into ``out_dir``, each
    through a temporary file and a rename (all three texts are made before any is written).

    Returns the paths by kind (``json``, ``c``, ``python``).
    """
    from gen.emit import atomic_write  # the project's one atomic writer; no Amaranth needed

    texts = {"json": regmap_json(regmap), "c": c_header(regmap),
             "python": python_module(regmap)}
    paths = {kind: Path(out_dir) / name for kind, name in regmap_file_names(regmap).items()}
    for kind, path in paths.items():
        atomic_write(path, texts[kind])
    return paths


# --- block parameters -------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CSRConfig(BlockConfig):
    """Parameters of a CSR block: which register map it implements.

    Parameters
    ----------
    spec : str
        A built-in map name (``example``), a path to a ``.toml`` or ``.json`` register
        description, or the JSON description itself. Checked (and loaded) on construction.
    """

    spec: str = param("example", help="register map: a built-in name (example), a .toml/.json "
                                      "description file, or inline JSON")

    def _check(self) -> None:
        self.regmap  # noqa: B018 (loading it is the check)

    @functools.cached_property
    def regmap(self) -> RegisterMap:
        """The register map ``spec`` names (loaded once)."""
        return resolve_spec(self.spec)

    @classmethod
    def for_regmap(cls, regmap: RegisterMap) -> CSRConfig:
        """A config whose ``spec`` is ``regmap`` as compact JSON."""
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, got {regmap!r}")
        return cls(spec=regmap_json(regmap, indent=None))

    @property
    def map_name(self) -> str:
        """The register map's name (prefix of its C macros, name of its files)."""
        return self.regmap.name

    @property
    def data_width(self) -> int:
        """AXI4-Lite data width."""
        return self.regmap.data_width

    @property
    def addr_width(self) -> int:
        """AXI4-Lite address width."""
        return self.regmap.addr_width

    @property
    def register_names(self) -> tuple[str, ...]:
        """The registers, in address order of declaration."""
        return tuple(r.name for r in self.regmap.registers)


# --- golden model -----------------------------------------------------------------------------


class CSRModel:
    """What the CSR block holds and answers, transaction by transaction.

    ``write`` and ``read`` take byte addresses inside the ``addr_width`` space (the low
    ``stride_bits`` bits are ignored, as on the bus); an address selecting no register answers
    :data:`SLVERR`, changes nothing and reads 0. ``set_status`` models the design's side:
    an ro field's input level, or a w1c field's set pulse.
    """

    def __init__(self, regmap: RegisterMap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, got {regmap!r}")
        self.regmap = regmap
        self.reset()

    def reset(self) -> None:
        """Every field back to its reset value (ro inputs to 0)."""
        self.values = {r.name: {f.name: f.reset for f in r.fields}
                       for r in self.regmap.registers}

    def _decode(self, address: int) -> Register | None:
        _check_int("address", address)
        if not 0 <= address < 1 << self.regmap.addr_width:
            raise ValueError(f"address {address:#x} is outside the {self.regmap.addr_width}-bit "
                             f"address space")
        return self.regmap.decode(address)

    def write(self, address: int, data: int, strb: int | None = None) -> int:
        """A bus write of ``data`` with byte enables ``strb`` (default all); returns the
        response. rw fields take the enabled bits, w1c fields clear the enabled 1 bits, ro
        fields ignore it."""
        register = self._decode(address)
        if register is None:
            return SLVERR
        lanes = (1 << self.regmap.strobe_width) - 1 if strb is None else strb
        enabled = sum(0xFF << 8 * k for k in range(self.regmap.strobe_width) if lanes >> k & 1)
        values = self.values[register.name]
        for f in register.fields:
            bits = (enabled & f.mask) >> f.offset
            new = (data >> f.offset) & ((1 << f.width) - 1)
            if f.access == "rw":
                values[f.name] = (values[f.name] & ~bits) | (new & bits)
            elif f.access == "w1c":
                values[f.name] &= ~(new & bits)
        return OKAY

    def read(self, address: int) -> tuple[int, int]:
        """A bus read: ``(data, response)``."""
        register = self._decode(address)
        if register is None:
            return 0, SLVERR
        return self.value(register.name), OKAY

    def value(self, register: str) -> int:
        """The register word a read returns now."""
        r = self.regmap.register(register)
        return sum(self.values[r.name][f.name] << f.offset for f in r.fields)

    def field(self, register: str, field: str) -> int:
        """A field's current value: the output of an rw or w1c field, the input of an ro one."""
        self.regmap.register(register).field(field)
        return self.values[register][field]

    def set_status(self, register: str, field: str, value: int) -> None:
        """The design's side: an ro field's input becomes ``value``; a w1c field's set input
        pulses ``value`` for a cycle (its 1 bits become set). ``ValueError`` for an rw field
        or a value wider than the field."""
        f = self.regmap.register(register).field(field)
        if f.access == "rw":
            raise ValueError(f"{register}.{field} is rw: the design cannot set it")
        _check_int("value", value)
        if not 0 <= value < 1 << f.width:
            raise ValueError(f"value {value:#x} does not fit {register}.{field} "
                             f"({f.width} bits)")
        if f.access == "ro":
            self.values[register][field] = value
        else:
            self.values[register][field] |= value


def csr_model(regmap: RegisterMap) -> CSRModel:
    """A fresh golden model of the CSR block for ``regmap``, in its reset state."""
    return CSRModel(regmap)
