"""Every input of a PE lane through its emitted netlist, in a native Verilator loop.

cocotb drives a few ten thousand words a second, too slow to check the 2**27 (op, a, b, c)
inputs of an int8 lane. Here the lane (``hw.pe.PE``, without a stream wrapper) is compiled
with a small C++ loop that presents one input word per clock with ``en`` high and records
each output; the word is the ``i`` port itself (op, a, b, c packed as ``PE.i``'s layout), so
a range of words enumerates inputs without a file. The outputs come back as a NumPy array for
the caller to compare with the golden model (``golden.pe.pe_op``); stalls are the business of
the cocotb tests (``tests/test_pe.py``), which drive the same netlist with random ones.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from filelock import FileLock

from gen.emit import atomic_write, verilog_text

from .runner import VERILATOR_WARNING_FLAGS, build_root, primitive_models, verilator_env

__all__ = ["LaneSim", "unpack_words"]

_HARNESS = r"""
#include "Vlane.h"
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

// lane LATENCY START COUNT OUT      the words START .. START+COUNT-1
// lane LATENCY -f IN OUT            the words of IN (uint32 each)
// OUT gets one uint16 per word: the output that word produced.
int main(int argc, char** argv) {
    if (argc != 5) { std::fprintf(stderr, "usage: lane LATENCY START COUNT OUT\n"); return 2; }
    const long latency = std::atol(argv[1]);
    std::vector<uint32_t> words;
    uint64_t start = 0, count = 0;
    bool from_file = std::strcmp(argv[2], "-f") == 0;
    if (from_file) {
        FILE* in = std::fopen(argv[3], "rb");
        if (!in) { std::perror(argv[3]); return 2; }
        uint32_t word;
        while (std::fread(&word, sizeof word, 1, in) == 1) words.push_back(word);
        std::fclose(in);
        count = words.size();
    } else {
        start = std::strtoull(argv[2], nullptr, 0);
        count = std::strtoull(argv[3], nullptr, 0);
    }
    std::vector<uint16_t> out(count);
    Vlane* top = new Vlane;
    auto tick = [&]() { top->clk = 0; top->eval(); top->clk = 1; top->eval(); };
    top->en = 0; top->i = 0; top->rst = 1;
    tick(); tick();
    top->rst = 0;
    top->en = 1;
    // After the edge of cycle n, o holds the result of the word presented in cycle
    // n - latency + 1.
    for (uint64_t n = 0; n + 1 < count + latency; ++n) {
        uint64_t k = n < count ? n : 0;
        top->i = from_file ? words[k] : (uint32_t)(start + k);
        tick();
        if (n + 1 >= (uint64_t)latency) out[n + 1 - latency] = (uint16_t)top->o;
    }
    FILE* f = std::fopen(argv[4], "wb");
    if (!f || std::fwrite(out.data(), sizeof(uint16_t), count, f) != count) return 3;
    std::fclose(f);
    top->final();
    delete top;
    return 0;
}
"""


def unpack_words(config, words) -> dict[str, np.ndarray]:
    """The (op, a, b, c) fields of packed ``PE.i`` words (op in bits 0..2, then a, b, c of
    ``in_width`` bits each, two's complement when signed)."""
    words = np.asarray(words, dtype=np.int64)
    w = config.in_width
    fields = {"op": words & 7}
    for k, name in enumerate("abc"):
        value = (words >> (3 + k * w)) & ((1 << w) - 1)
        if config.signed:
            value = np.where(value >= 1 << (w - 1), value - (1 << w), value)
        fields[name] = value
    return fields


class LaneSim:
    """A PE lane's netlist compiled with the native loop (cached by the netlist's hash).

    Parameters
    ----------
    pe : hw.pe.PE
        The lane; its ``i`` must fit 32 bits (``3 + 3 * in_width <= 32``).
    platform : Platform or None
        Whose netlist: None for the portable one, a board's for its primitives (simulated by
        ``sim.runner.primitive_models``).
    """

    def __init__(self, pe, platform=None):
        width = 3 + 3 * pe.config.in_width
        if width > 32:
            raise ValueError(f"the lane's input word must fit 32 bits, got {width}")
        if pe.config.output_width > 16:
            raise ValueError(f"the lane's output must fit 16 bits, got {pe.config.output_width}")
        self.config, self.latency = pe.config, pe.latency
        text = verilog_text(pe, "lane", platform)
        models = [Path(model) for model in primitive_models(platform)]
        flags = [*VERILATOR_WARNING_FLAGS, "-O3", "--x-assign", "fast", "--x-initial", "fast"]
        digest = hashlib.sha256("".join([text, _HARNESS, " ".join(flags),
                                         *(m.read_text() for m in models)]).encode()
                                ).hexdigest()[:16]
        directory = build_root() / f"lane-native-{digest}"
        self.binary = directory / "obj" / "Vlane"
        directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(directory) + ".lock"):
            if not self.binary.exists():
                atomic_write(directory / "lane.v", text)
                atomic_write(directory / "harness.cpp", _HARNESS)
                verilator_env()
                done = subprocess.run(
                    ["verilator", "--cc", "--exe", "--build", "-j", "1", "--top-module", "lane",
                     "-Mdir", "obj", *flags, "lane.v", *map(str, models), "harness.cpp"],
                    cwd=directory, capture_output=True, text=True)
                if done.returncode:
                    raise RuntimeError(f"Verilator build failed in {directory}: "
                                       f"{done.stderr.strip()[-800:]}")

    def _run(self, args) -> np.ndarray:
        with tempfile.TemporaryDirectory(dir=build_root()) as tmp:
            out = Path(tmp) / "out.bin"
            subprocess.run([str(self.binary), str(self.latency), *args, str(out)], check=True)
            raw = np.fromfile(out, dtype=np.uint16).astype(np.int64)
        w = self.config.output_width
        raw &= (1 << w) - 1
        if self.config.signed:
            raw = np.where(raw >= 1 << (w - 1), raw - (1 << w), raw)
        return raw

    def outputs(self, words) -> np.ndarray:
        """The lane's result for each packed input word."""
        words = np.asarray(words, dtype=np.uint32)
        with tempfile.TemporaryDirectory(dir=build_root()) as tmp:
            path = Path(tmp) / "in.bin"
            words.tofile(path)
            return self._run(["-f", str(path)])

    def outputs_range(self, start: int, count: int) -> np.ndarray:
        """The lane's results for the words ``start .. start + count - 1``."""
        return self._run([str(start), str(count)])
