"""Self-describing designs: the manifest's payload maps, the C header, the SystemVerilog package
and the named-port wrapper (gen.interface, gen.headers; `accelgen emit --headers --wrapper`)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from amaranth.hdl import Signal, Value, signed, unsigned
from amaranth.hdl._ast import Operator
from amaranth.lib import data
from fuzz_cases import CASES

from gen.cli import main
from gen.emit import manifest, ports, verilog_text
from gen.headers import (
    c_header,
    core_ports,
    element_port,
    package_name,
    struct_name,
    sv_package,
    verilog_wrapper,
    wrapper_name,
)
from gen.interface import StreamMap, payload_fields, stream_maps
from gen.registry import GENERATORS
from sim.payload import PayloadCodec
from sim.runner import build_verilog, run_stream_test

#: Small configs so that each generator's wrapper builds quickly in Verilator.
SMALL = {"pe-array": {"rows": 2, "cols": 2}, "input-share": {"rows": 2, "cols": 2},
         "softmax": {"max_len": 16}, "search-tree": {"bits": 16}}


#: Smaller still for the wrapper's Verilator build, one per generator (the proof configs of
#: sim/contracts.py, a little wider): a third of the default configs' Verilog, and every
#: field kind still there (signed and unsigned elements, arrays, enums, flags).
WRAPPER = {
    "pe": {"in_width": 4, "ops": ("mul", "add", "shl")},
    "reduction-tree": {"n": 5, "width": 4},
    "exp": {"in_width": 6, "in_frac": 3, "out_width": 6, "out_frac": 3, "order": 1,
            "poly_frac": 8},
    "gelu": {"in_width": 6, "in_frac": 2, "out_width": 6, "out_frac": 2, "order": 1,
             "poly_width": 10, "segments": 4, "range_max": 4.0},
    "silu": {"in_width": 6, "in_frac": 2, "out_width": 6, "out_frac": 2, "order": 1,
             "poly_width": 10, "segments": 4, "range_max": 4.0},
    "softmax": {"in_width": 8, "in_frac": 3, "out_width": 4, "out_frac": 4, "max_len": 4,
                "banks": 2, "exp_order": 1},
    "layernorm": {"in_width": 4, "out_width": 4, "out_frac": 1, "max_len": 4, "banks": 2},
    "pe-array": {"rows": 2, "cols": 2, "in_width": 4, "ops": ("mul", "add", "max")},
    "input-share": {"rows": 2, "cols": 2, "in_width": 4},
    "search-tree": {"bits": 8},
    "sparse-search": {"coord_width": 4, "value_width": 4, "max_nnz": 4, "parallel": 2},
    "sparse-decoder": {"block": 8, "value_width": 4, "parallel": 4, "levels_per_stage": 3},
    "addrgen": {"levels": 2, "addr_width": 8, "count_width": 2, "stride_width": 3},
    "pingpong": {"width": 4, "depth": 4},
}


def _component(name):
    generator = GENERATORS[name]
    return generator.build(generator.config_class(**SMALL.get(name, {})))


def _bits(view, path: str) -> tuple[int, int]:
    """(start, width) of the bits Amaranth's views select at ``path`` (``a[2][5]``, ``s.b``)
    of a payload signal."""
    for part in re.findall(r"[A-Za-z_]\w*|\[\d+\]", path):
        view = view[int(part[1:-1])] if part.startswith("[") else getattr(view, part)
    value = Value.cast(view)
    start, width = 0, len(value)
    while not isinstance(value, Signal):
        if isinstance(value, Operator):  # a signed element reads as slice.as_signed()
            (value,) = value.operands
        else:  # a slice, maybe of a slice
            start += value.start
            value = value.value
    return start, width


@pytest.mark.parametrize("name", list(GENERATORS))
def test_manifest_map_matches_amaranth_slices(name):
    # Amaranth's own views of a payload signal slice it where the map says, element by element.
    component = _component(name)
    info = manifest(component, name.replace("-", "_"), name)
    assert json.loads(json.dumps(info["streams"])) == info["streams"]
    streams = {s["payload"]: s for s in info["streams"]}
    payload_ports = {p["name"]: p for p in ports(component) if p["name"].endswith("__payload")}
    assert set(streams) == set(payload_ports)
    shapes = {"__".join(map(str, path)): member.shape
              for path, member, _ in component.signature.flatten(component)}
    for port, stream in streams.items():
        assert stream["width"] == payload_ports[port]["width"]
        shape = shapes[port]
        signal = Signal(shape)
        covered = 0
        for element in stream["elements"]:
            path = element["path"] if isinstance(shape, data.StructLayout) else \
                element["path"].removeprefix("value")
            start, width = _bits(signal, path)
            assert (start, width) == (element["offset"], element["width"]), element
            covered += width
        assert covered == stream["width"]
        for field in stream["fields"]:
            if "enum" in field:  # codes as the hardware's enum defines them
                enum_shape = shape.members[field["name"]]
                assert field["enum"]["values"] == {m.name: m.value for m in enum_shape}


def test_pe_array_map_names_the_issue_fields():
    info = manifest(_component("pe-array"), "pe_array", "pe-array")
    i = {e["path"]: e for e in info["streams"][0]["elements"]}
    assert (i["op"]["offset"], i["op"]["width"]) == (0, 3)
    assert (i["mode"]["offset"], i["last"]["offset"]) == (3, 4)
    assert i["a[1][0]"] == {"path": "a[1][0]", "offset": 5 + 2 * 8, "width": 8, "signed": True}
    fields = {f["name"]: f for f in info["streams"][0]["fields"]}
    assert fields["a"]["shape"] == [2, 2]
    assert fields["op"]["enum"]["name"] == "PEOp" and fields["op"]["enum"]["values"]["MUL"] == 0


# --- C header ----------------------------------------------------------------------------------

def _compile(command):
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def _c_program(module: str, stream: StreamMap) -> str:
    """Reads transactions (one element value per line, in map order), packs each with the
    header, prints its words, then unpacks the words and prints the elements again."""
    ctype, fn = struct_name(module, stream), struct_name(module, stream)[:-2]
    prefix = f"{module}_{stream.name}".upper()
    lines = ["#include <stdio.h>", "#include <inttypes.h>", f'#include "{module}.h"',
             "int main(void) {", f"    {ctype} p, q;", f"    uint32_t w[{prefix}_WORDS];",
             "    long long v;", "    unsigned long long u;", "    unsigned k;",
             "    (void)v;", "    (void)u;", "    for (;;) {"]
    for f in stream.fields:
        for e in f.elements():
            member = e.path.replace(f.name, f.name.replace(".", "_"), 1)
            fmt, var = ("%lld", "v") if f.signed else ("%llu", "u")
            lines += [f"        if (scanf(\"{fmt}\", &{var}) != 1)", "            return 0;",
                      f"        p.{member} = {var};"]
    lines += [f"        {fn}_pack(&p, w);",
              f"        for (k = 0; k < {prefix}_WORDS; k++) printf(\"%08\" PRIx32 \" \", w[k]);",
              "        printf(\"\\n\");", f"        {fn}_unpack(w, &q);"]
    for f in stream.fields:
        for e in f.elements():
            member = e.path.replace(f.name, f.name.replace(".", "_"), 1)
            fmt, cast = ("%lld", "long long") if f.signed else ("%llu", "unsigned long long")
            lines.append(f"        printf(\"{fmt} \", ({cast})q.{member});")
    return "\n".join(lines + ["        printf(\"\\n\");", "    }", "}", ""])


def _random_values(codec: PayloadCodec, rng, n: int) -> dict:
    out = {}
    for f in codec.fields:
        lo, hi = (-(1 << (f.width - 1)), (1 << (f.width - 1)) - 1) if f.signed \
            else (0, (1 << f.width) - 1)
        if f.width >= 63:  # beyond numpy's integers()
            values = [int(rng.integers(0, 1 << 62)) * 4 + int(rng.integers(0, 4)) + lo
                      for _ in range(n * f.count)]
            out[f.name] = np.array(values, dtype=object).reshape(n, *f.dims)
        else:
            out[f.name] = rng.integers(lo, hi, (n, *f.dims), endpoint=True)
    return out


def _c_cases():
    for name in ("pe-array", "addrgen", "sparse-decoder", "softmax"):
        yield name.replace("-", "_"), stream_maps(_component(name))
    layout = data.StructLayout({"s": data.StructLayout({"a": unsigned(3), "b": signed(64)}),
                                "m": data.ArrayLayout(data.ArrayLayout(unsigned(4), 2), 3),
                                "w": data.ArrayLayout(signed(33), 3), "u": unsigned(64)})
    yield "odd", [StreamMap("i", "input", layout.size, tuple(payload_fields(layout)))]


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
@pytest.mark.parametrize("module,streams", list(_c_cases()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_c_header_packs_like_the_python_packer(module, streams, tmp_path, rng):
    (tmp_path / f"{module}.h").write_text(c_header(module, streams))
    for stream in streams:
        exe = tmp_path / f"pack_{stream.name}"
        (tmp_path / f"pack_{stream.name}.c").write_text(_c_program(module, stream))
        _compile(["cc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O1", "-o",
                  exe, exe.with_suffix(".c")])
        codec = PayloadCodec(payload_fields_as_codec(stream), stream.width)
        values = _random_values(codec, rng, 50)
        flat = [[str(int(v)) for f in codec.fields for v in np.ravel(values[f.name][t])]
                for t in range(50)]
        run = subprocess.run([exe], input="\n".join(" ".join(row) for row in flat),
                             capture_output=True, text=True, check=True)
        out = run.stdout.splitlines()
        packed = [int("".join(reversed(line.split())), 16) for line in out[0::2]]
        assert packed == codec.encode(values), f"{module} {stream.name}"
        assert [line.split() for line in out[1::2]] == flat


def payload_fields_as_codec(stream: StreamMap):
    return PayloadCodec.from_json({"width": stream.width, "fields": [
        {"name": f.name, "offset": f.offset, "width": f.width, "signed": f.signed,
         "dims": list(f.dims)} for f in stream.fields]}).fields


@pytest.mark.skipif(shutil.which("c++") is None, reason="needs a C++ compiler")
def test_c_headers_of_every_generator_compile_together_as_c_and_cpp(tmp_path):
    includes = []
    for name, generator in GENERATORS.items():
        module = generator.module_name
        (tmp_path / f"{module}.h").write_text(c_header(module, stream_maps(_component(name))))
        includes.append(f'#include "{module}.h"')
    source = "\n".join(includes + ["int main(void) { return 0; }", ""])
    for compiler, suffix in (("cc", ".c"), ("c++", ".cpp")):
        path = tmp_path / f"all{suffix}"
        path.write_text(source)
        _compile([compiler, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", path])


# --- SystemVerilog package and the named-port wrapper --------------------------------------------

def struct_shim(module: str, streams: list[StreamMap], top: str, clocked: bool = True) -> str:
    """A module with the core's flat ports that casts each payload to its package struct and
    wires the struct's members, by name, to the wrapper's element ports. A stream test passes
    on it only if the struct's bit order, the wrapper's and the core's agree."""
    decls = ["  input clk", "  input rst"]
    body = [f"  import {package_name(module)}::*;"]
    conns = ["    .clk(clk)", "    .rst(rst)"] if clocked else []
    for s in streams:
        inward = s.direction == "input"
        inp, out = ("input", "output") if inward else ("output", "input")
        decls += [f"  {inp} {s.valid}", f"  {out} {s.ready}",
                  f"  {inp} [{s.width - 1}:0] {s.payload}"]
        var = f"{s.name}_s"
        body.append(f"  {struct_name(module, s)} {var};")
        body.append(f"  assign {var} = {s.payload};" if inward
                    else f"  assign {s.payload} = {var};")
        conns += [f"    .{s.name}_valid({s.valid})", f"    .{s.name}_ready({s.ready})"]
        for f in s.fields:
            for e in f.elements():
                member = e.path.replace(f.name, f.name.replace(".", "_"), 1)
                conns.append(f"    .{element_port(s, e.path)}({var}.{member})")
    return "\n".join([f"module {top} (", ",\n".join(decls), ");", *body,
                      f"  {wrapper_name(module)} dut (", ",\n".join(conns), "  );",
                      "endmodule", ""])


@pytest.mark.parametrize("name", list(CASES))
def test_stream_test_passes_through_package_structs_and_wrapper(name, rng):
    """Once per generator: the cocotb stream test, with stalls, on the core inside its
    named-port wrapper inside a module that casts the flat ports to the package's structs."""
    generator = GENERATORS[name]
    config = generator.config_class(**WRAPPER[name])
    case = CASES[name](generator, config, rng)
    module = generator.module_name
    streams = stream_maps(case.component)
    top = f"{module}_shim"
    core = verilog_text(case.component, module)
    core_ports_ = core_ports(case.component, core)
    text = "\n".join([sv_package(module, streams), core,
                      verilog_wrapper(module, streams, core_ports_),
                      struct_shim(module, streams, top,
                                  clocked=any(p["name"] == "clk" for p in core_ports_))])
    sim_build = build_verilog(text, top)
    result = run_stream_test(case.component, top, case.inputs, case.expected, case.sources,
                             valid_prob=0.7, ready_prob=0.6, seed=3, sim_build=sim_build)
    assert len(result.out_words) == len(PayloadCodec.from_shape(
        case.component.signature.members["o"].signature.members["payload"].shape)
        .encode(case.expected))


def test_wrapper_ports_follow_the_map():
    component = _component("pe-array")
    text = verilog_wrapper("pe_array", stream_maps(component), ports(component))
    assert "input [2:0] i_op" in text and "input signed [7:0] i_a_1_0" in text
    assert "output signed [27:0] o_acc_1" in text and "output o_valid" in text
    assert "assign o_acc_1 = o_flat[121:94];" in text


def test_wrapper_rejects_colliding_port_names():
    layout = data.StructLayout({"valid": unsigned(1), "x": unsigned(2)})
    stream = StreamMap("i", "input", 3, tuple(payload_fields(layout)))
    with pytest.raises(ValueError, match="wrapper port 'i_valid'"):
        verilog_wrapper("m", [stream], [])


def test_emit_headers_and_wrapper(tmp_path, capsys):
    assert main(["emit", "pe-array", "--rows", "2", "--cols", "2", "-o", str(tmp_path),
                 "--headers", "--wrapper"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["pe_array.h", "pe_array.json", "pe_array.v", "pe_array_pkg.sv",
                     "pe_array_wrapper.v"]
    assert "pe_array_wrapper.v" in capsys.readouterr().out
    info = json.loads((tmp_path / "pe_array.json").read_text())
    assert [s["name"] for s in info["streams"]] == ["i", "o"]
    assert "typedef struct packed" in (tmp_path / "pe_array_pkg.sv").read_text()
