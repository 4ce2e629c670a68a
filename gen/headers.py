"""Integration files for an emitted design, from its payload maps (:mod:`gen.interface`).

- :func:`c_header`: per stream payload, offset/width macros for every field, a struct of its
  fields, and inline ``pack``/``unpack`` functions between the struct and the payload as an
  array of ``uint32_t`` (word 0 least significant, as Verilator and most buses hold it).
- :func:`sv_package`: a SystemVerilog package with a ``typedef struct packed`` per payload (in
  the same bit order as the flat port, so ``t_struct s = i__payload;`` is the whole cast) and
  a ``typedef enum`` per enum.
- :func:`verilog_wrapper`: a Verilog module with one port per payload element
  (``i_a_2_5``, ``i_op``, ``o_acc_3``) around the emitted core.

``accelgen emit NAME --headers`` writes the first two, ``--wrapper`` the third.
"""

from __future__ import annotations

import re

from .interface import PayloadField, StreamMap, element_name

__all__ = ["c_header", "sv_package", "verilog_wrapper", "integration_files", "core_ports",
           "wrapper_name", "package_name", "struct_name", "element_port"]


def _ident(text: str) -> str:
    return element_name(text).replace("__", "_")


def struct_name(module: str, stream: StreamMap) -> str:
    """Name of a payload's C and SystemVerilog struct type: ``pe_array_i_t``."""
    return f"{module}_{_ident(stream.name)}_t"


def package_name(module: str) -> str:
    """Name of the SystemVerilog package: ``pe_array_pkg``."""
    return f"{module}_pkg"


def wrapper_name(module: str) -> str:
    """Name of the named-port wrapper module: ``pe_array_wrapper``."""
    return f"{module}_wrapper"


def element_port(stream: StreamMap, path: str) -> str:
    """The wrapper's port for a payload element: ``i`` and ``a[2][5]`` give ``i_a_2_5``."""
    return f"{_ident(stream.name)}_{element_name(path)}"


def _words(width: int) -> int:
    return (width + 31) // 32


# --- C ---------------------------------------------------------------------------------------

_C_BITS = """\
#ifndef ACCELGEN_BITS_DEFINED
#define ACCELGEN_BITS_DEFINED
/* Bit fields of a payload held as uint32_t words, word 0 least significant. */
static inline void accelgen_put_bits(uint32_t *w, unsigned offset, unsigned width,
                                     uint64_t value)
{
    unsigned done = 0;
    while (done < width) {
        unsigned word = (offset + done) / 32u, bit = (offset + done) % 32u;
        unsigned n = 32u - bit;
        uint32_t mask;
        if (n > width - done)
            n = width - done;
        mask = n == 32u ? 0xffffffffu : ((1u << n) - 1u);
        w[word] = (w[word] & ~(mask << bit)) | (((uint32_t)(value >> done) & mask) << bit);
        done += n;
    }
}

static inline uint64_t accelgen_get_bits(const uint32_t *w, unsigned offset, unsigned width)
{
    uint64_t value = 0;
    unsigned done = 0;
    while (done < width) {
        unsigned word = (offset + done) / 32u, bit = (offset + done) % 32u;
        unsigned n = 32u - bit;
        uint32_t mask;
        if (n > width - done)
            n = width - done;
        mask = n == 32u ? 0xffffffffu : ((1u << n) - 1u);
        value |= (uint64_t)((w[word] >> bit) & mask) << done;
        done += n;
    }
    return value;
}

static inline int64_t accelgen_sign_extend(uint64_t value, unsigned width)
{
    if (width < 64u && ((value >> (width - 1u)) & 1u))
        value |= ~(uint64_t)0 << width;
    return (int64_t)value;
}
#endif
"""


def _c_type(f: PayloadField) -> str:
    if f.width > 64:
        raise ValueError(f"field {f.name!r}: elements wider than 64 bits have no C type, "
                         f"got {f.width}")
    bits = next(b for b in (8, 16, 32, 64) if f.width <= b)
    return f"{'int' if f.signed else 'uint'}{bits}_t"


def _c_stream(module: str, stream: StreamMap, enums_done: set) -> list[str]:
    prefix = f"{module}_{_ident(stream.name)}".upper()
    ctype = struct_name(module, stream)
    out = [f"/* {stream.payload}: {stream.direction} stream, {stream.width} bits. */",
           f"#define {prefix}_WIDTH {stream.width}",
           f"#define {prefix}_WORDS {_words(stream.width)}"]
    for f in stream.fields:
        m = f"{prefix}_{_ident(f.name).upper()}"
        out += [f"#define {m}_OFFSET {f.offset}", f"#define {m}_WIDTH {f.width}",
                f"#define {m}_SIGNED {int(f.signed)}"]
        if f.dims:
            index = " + ".join(f"(i{k})" + "".join(f" * {d}" for d in f.dims[k + 1:])
                               for k in range(len(f.dims)))
            args = ", ".join(f"i{k}" for k in range(len(f.dims)))
            out += [*(f"#define {m}_DIM{k} {d}" for k, d in enumerate(f.dims)),
                    f"#define {m}_COUNT {f.count}",
                    f"/* Bit offset of element [{']['.join(args.split(', '))}]. */",
                    f"#define {m}_OFFSET_AT({args}) ({m}_OFFSET + ({index}) * {m}_WIDTH)"]
        if f.enum is not None and f.enum_name not in enums_done:
            enums_done.add(f.enum_name)
            out += [f"/* enum {f.enum_name} */",
                    *(f"#define {module.upper()}_{f.enum_name.upper()}_{name.upper()} {code}"
                      for name, code in f.enum)]
    out += ["", "typedef struct {"]
    for f in stream.fields:
        dims = "".join(f"[{d}]" for d in f.dims)
        out.append(f"    {_c_type(f)} {_ident(f.name)}{dims};")
    out += [f"}} {ctype};", ""]
    words = f"{prefix}_WORDS"
    pack = [f"/* Pack a {ctype} into payload words (each value's low WIDTH bits). */",
            f"static inline void {ctype[:-2]}_pack(const {ctype} *p, uint32_t w[{words}])",
            "{", f"    memset(w, 0, sizeof(uint32_t) * {words});"]
    unpack = [f"/* Unpack payload words into a {ctype} (signed fields sign-extended). */",
              f"static inline void {ctype[:-2]}_unpack(const uint32_t w[{words}], {ctype} *p)",
              "{"]
    for f in stream.fields:
        member, t = _ident(f.name), _c_type(f)
        get = f"accelgen_get_bits(w, {{at}}, {f.width}u)"
        if f.signed:
            get = f"accelgen_sign_extend({get}, {f.width}u)"
        if not f.dims:
            pack.append(f"    accelgen_put_bits(w, {f.offset}u, {f.width}u, "
                        f"(uint64_t){'(int64_t)' if f.signed else ''}p->{member});")
            unpack.append(f"    p->{member} = ({t}){get.format(at=f'{f.offset}u')};")
            continue
        first = member + "[0]" * len(f.dims)
        at = f"{f.offset}u + {f.width}u * k"
        pack += ["    {", f"        const {t} *e = &p->{first};", "        unsigned k;",
                 f"        for (k = 0; k < {f.count}u; k++)",
                 f"            accelgen_put_bits(w, {at}, {f.width}u, "
                 f"(uint64_t){'(int64_t)' if f.signed else ''}e[k]);", "    }"]
        unpack += ["    {", f"        {t} *e = &p->{first};", "        unsigned k;",
                   f"        for (k = 0; k < {f.count}u; k++)",
                   f"            e[k] = ({t}){get.format(at=at)};", "    }"]
    return out + pack + ["}", ""] + unpack + ["}", ""]


def c_header(module: str, streams: list[StreamMap], generator: str = "") -> str:
    """A C99 header (also valid C++) with the payload maps of ``module``'s streams."""
    guard = f"ACCELGEN_{module.upper()}_H"
    out = [f"/* {module}.h: stream payload maps of {module}"
           f"{f' (accelgen emit {generator})' if generator else ''}. Generated; do not edit.",
           " * Bit 0 is the least significant bit of the payload port. A payload is an array of",
           " * uint32_t words, word 0 holding bits 0..31. An array field's elements are packed",
           " * row-major (last index fastest) from its offset. */",
           f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>",
           "#include <string.h>", "", _C_BITS]
    enums_done: set = set()
    for stream in streams:
        out += _c_stream(module, stream, enums_done)
    return "\n".join(out + [f"#endif /* {guard} */", ""])


# --- SystemVerilog ---------------------------------------------------------------------------

def _sv_enum_type(f: PayloadField) -> str:
    return f"{f.enum_name.lower()}_t"


def sv_package(module: str, streams: list[StreamMap], generator: str = "") -> str:
    """A SystemVerilog package with a packed struct per stream payload of ``module``."""
    out = [f"// {package_name(module)}: stream payload structs of {module}"
           f"{f' (accelgen emit {generator})' if generator else ''}. Generated; do not edit.",
           "// Each struct is packed in the flat port's bit order (first member most",
           "// significant), so a struct and the payload port assign to each other directly.",
           f"package {package_name(module)};"]
    enums, elements = {}, set()
    for stream in streams:
        for f in stream.fields:
            if f.enum is not None:
                enums.setdefault(f.enum_name, f)
            elif f.signed and f.dims:
                elements.add(f.width)
    for name, f in enums.items():
        values = ", ".join(f"{name.upper()}_{value.upper()} = {f.width}'d{code}"
                           for value, code in f.enum)
        out.append(f"  typedef enum logic [{f.width - 1}:0] {{{values}}} {_sv_enum_type(f)};")
    # A packed array takes one signedness for all its bits; elements typed by a signed
    # typedef read as signed one by one.
    for width in sorted(elements):
        out.append(f"  typedef logic signed [{width - 1}:0] signed{width}_t;")
    for stream in streams:
        out.append(f"  // {stream.payload}: {stream.direction}, {stream.width} bits")
        out.append("  typedef struct packed {")
        members, top, pad = [], 0, 0
        for f in stream.fields:
            if f.offset > top:
                members.append(f"    logic [{f.offset - top - 1}:0] pad{pad};")
                pad += 1
            dims = "".join(f"[{d - 1}:0]" for d in f.dims)
            if f.enum is not None:
                kind = f"{_sv_enum_type(f)}{' ' + dims if dims else ''}"
            elif f.signed and f.dims:
                kind = f"signed{f.width}_t {dims}"
            else:
                kind = (f"logic{' signed' if f.signed else ''}"
                        f"{dims}{f'[{f.width - 1}:0]' if f.width > 1 or f.signed else ''}")
            members.append(f"    {kind} {_ident(f.name)};  // bits {f.offset}.."
                           f"{f.offset + f.count * f.width - 1}")
            top = f.offset + f.count * f.width
        if stream.width > top:
            members.append(f"    logic [{stream.width - top - 1}:0] pad{pad};")
        out += reversed(members)
        out.append(f"  }} {struct_name(module, stream)};")
    out += ["endpackage", ""]
    return "\n".join(out)


# --- Verilog wrapper -------------------------------------------------------------------------

def _range(width: int, signed: bool = False) -> str:
    return f"{'signed ' if signed else ''}[{width - 1}:0] " if width > 1 or signed else ""


def verilog_wrapper(module: str, streams: list[StreamMap], ports: list[dict]) -> str:
    """A Verilog module ``<module>_wrapper`` with one port per payload element around
    ``module`` (other ports keep their names).

    Raises
    ------
    ValueError
        If two of the wrapper's port names would coincide.
    """
    stream_ports = {p for s in streams for p in (s.valid, s.ready, s.payload) if p}
    decls, body, conns, names = [], [], [], {}

    def declare(name: str, text: str, origin: str) -> None:
        if name in names:
            raise ValueError(f"wrapper port {name!r} would stand for both {names[name]} "
                             f"and {origin}")
        names[name] = origin
        decls.append(text)

    for p in ports:
        if p["name"] not in stream_ports:
            declare(p["name"], f"  {p['direction']} {_range(p['width'])}{p['name']}",
                    f"port {p['name']}")
            conns.append(f"    .{p['name']}({p['name']})")
    for s in streams:
        inward = s.direction == "input"
        prefix = _ident(s.name)
        declare(f"{prefix}_valid", f"  {'input' if inward else 'output'} {prefix}_valid",
                s.valid)
        if s.ready:  # an always-ready stream has none
            declare(f"{prefix}_ready", f"  {'output' if inward else 'input'} {prefix}_ready",
                    s.ready)
        flat = f"{prefix}_flat"
        if flat in names:
            raise ValueError(f"wrapper net {flat!r} would coincide with a port")
        body.append(f"  wire [{s.width - 1}:0] {flat};")
        parts, top = [], 0
        for e in s.elements():
            port = element_port(s, e.path)
            declare(port, f"  {'input' if inward else 'output'} {_range(e.width, e.signed)}"
                    f"{port}", f"{s.payload}[{e.offset + e.width - 1}:{e.offset}] ({e.path})")
            if e.offset > top:
                parts.append(f"{e.offset - top}'d0")
            parts.append(port)
            top = e.offset + e.width
            if not inward:
                body.append(f"  assign {port} = {flat}[{e.offset + e.width - 1}:{e.offset}];")
        if top < s.width:
            parts.append(f"{s.width - top}'d0")
        if inward:
            parts.reverse()
            lines = [", ".join(parts[k:k + 6]) for k in range(0, len(parts), 6)]
            body.append(f"  assign {flat} = {{\n    " + ",\n    ".join(lines) + "};")
        conns += [f"    .{s.valid}({prefix}_valid)",
                  *([f"    .{s.ready}({prefix}_ready)"] if s.ready else []),
                  f"    .{s.payload}({flat})"]
    return "\n".join([
        f"// {wrapper_name(module)}: {module} with one port per stream payload element.",
        "// Generated by accelgen; do not edit. The element ports and their bit positions in",
        f"// the core's flat payload ports are listed in {module}.json (\"streams\").",
        f"module {wrapper_name(module)} (", ",\n".join(decls), ");", *body,
        f"  {module} core (", ",\n".join(conns), "  );", "endmodule", ""])


def core_ports(component, verilog: str) -> list[dict]:
    """The ports of ``component``'s emitted module ``verilog``: :func:`gen.emit.ports` less
    ``clk`` and ``rst`` when the design has no clocked logic (Amaranth then leaves them out)."""
    from .emit import ports

    return [p for p in ports(component) if p["name"] not in ("clk", "rst")
            or re.search(rf"^\s*input {p['name']};", verilog, re.M)]


def integration_files(component, module: str, generator: str, *, headers: bool = False,
                      wrapper: bool = False, verilog: str | None = None) -> dict[str, str]:
    """The texts ``accelgen emit`` writes beside the Verilog (``verilog``, emitted here if not
    given): with ``headers``, ``<module>.h`` and ``<module>_pkg.sv``; with ``wrapper``,
    ``<module>_wrapper.v``."""
    from .emit import verilog_text
    from .interface import stream_maps

    streams = stream_maps(component)
    files = {}
    if headers:
        files[f"{module}.h"] = c_header(module, streams, generator)
        files[f"{package_name(module)}.sv"] = sv_package(module, streams, generator)
    if wrapper:
        if verilog is None:
            verilog = verilog_text(component, module)
        files[f"{wrapper_name(module)}.v"] = verilog_wrapper(module, streams,
                                                             core_ports(component, verilog))
    return files
