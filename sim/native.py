"""Native stream soak runner: a C++ Verilator harness, generated from the manifest's payload
maps, that drives a block's ``i`` stream and checks every word of its ``o`` stream in C++.

Python writes a *stream file* (:func:`write_stream`): the input words and the golden model's
expected words, in records, so a long run streams through a pipe in chunks and never holds all
its words at once (:func:`soak_stream`). The harness offers inputs with seeded random ``valid``
stalls and takes outputs with random ``ready`` stalls, as :class:`sim.stream.StreamBench`
does; it also checks the stream rule on the output (a word offered stays offered, unchanged,
until taken). At the first mismatch it stops and reports the output's index, the input behind
it, the cycle, and each differing field element with the expected and received values, as the
cocotb scoreboard does; Python raises that as :class:`sim.runner.SimulationError`.

Stream file: little-endian uint32 words. A header ``AGS1`` magic, input payload words, output
payload words; then records ``tag, count, data``: tag 1, ``count`` input payloads; tag 2,
``count`` expected payloads; tag 3, ``count`` source indices (the input behind each expected
word, for the report); tag 0 ends the stream.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gen.emit import verilog_text
from gen.interface import stream_maps

from .payload import PayloadCodec
from .runner import (
    NATIVE_MAKE_FLAGS,
    SimulationError,
    build_native,
    new_test_dir,
    verilator_mangle,
)
from .stream import BenchResult

__all__ = ["MAGIC", "native_harness", "native_make_flags", "build_stream_harness",
           "write_stream", "stream_records", "run_native_stream", "soak_stream", "NativeResult"]

MAGIC = 0x31534741  # "AGS1"
_TAG_INPUTS, _TAG_EXPECTED, _TAG_SOURCES, _TAG_END = 1, 2, 3, 0


def _cpp_port(name: str) -> str:
    return verilator_mangle(name)


def _set_payload(port: str, width: int, src: str) -> str:
    if width <= 32:
        return f"top->{port} = {src}[0];"
    if width <= 64:
        return f"top->{port} = (uint64_t){src}[0] | ((uint64_t){src}[1] << 32);"
    return f"for (int k = 0; k < {(width + 31) // 32}; k++) top->{port}[k] = {src}[k];"


def _get_payload(port: str, width: int, dst: str) -> str:
    if width <= 32:
        return f"{dst}[0] = (uint32_t)top->{port};"
    if width <= 64:
        return (f"{dst}[0] = (uint32_t)top->{port}; "
                f"{dst}[1] = (uint32_t)((uint64_t)top->{port} >> 32);")
    return f"for (int k = 0; k < {(width + 31) // 32}; k++) {dst}[k] = top->{port}[k];"


def native_harness(top: str, streams: list[dict], in_stream: str = "i",
                   out_stream: str = "o") -> str:
    """The C++ harness for module ``top`` from its manifest ``streams`` entries (the
    ``"streams"`` list of :func:`gen.emit.manifest`)."""
    by_name = {s["name"]: s for s in streams}
    i, o = by_name[in_stream], by_name[out_stream]
    if i["ready"] is None or o["ready"] is None:
        raise ValueError("the native stream harness needs ready ports: build the component "
                         "with backpressure (an always-ready stream has no ready)")
    in_words, out_words = (i["width"] + 31) // 32, (o["width"] + 31) // 32
    elems = ",\n".join(f'    {{"{e["path"]}", {e["offset"]}u, {e["width"]}u, '
                       f'{"true" if e["signed"] else "false"}}}' for e in o["elements"])
    return _HARNESS.format(
        top=top, in_words=in_words, out_words=out_words, elems=elems,
        n_elems=len(o["elements"]), magic=MAGIC,
        in_valid=_cpp_port(i["valid"]), in_ready=_cpp_port(i["ready"]),
        out_valid=_cpp_port(o["valid"]), out_ready=_cpp_port(o["ready"]),
        set_in=_set_payload(_cpp_port(i["payload"]), i["width"], "cur"),
        zero_in=_set_payload(_cpp_port(i["payload"]), i["width"], "zero"),
        get_out=_get_payload(_cpp_port(o["payload"]), o["width"], "got"))


def native_make_flags(opt: str | None) -> list[str]:
    """Make variables for :func:`sim.runner.build_native`: its cheap defaults, or the model's
    hot code at ``opt`` (``-O2``: faster runs, longer builds)."""
    if opt is None:
        return list(NATIVE_MAKE_FLAGS)
    return [f"OPT_FAST={opt}" if flag.startswith("OPT_FAST=") else flag
            for flag in NATIVE_MAKE_FLAGS]


def build_stream_harness(component, name: str, *, opt: str | None = None
                         ) -> tuple[Path, list]:
    """Emit ``component`` as module ``name``, generate its harness from the manifest's stream
    maps and build both natively (:func:`sim.runner.build_native`, cached); return the
    executable and the stream maps. ``opt``: the model's C++ optimization (default: the
    runner's cheap one)."""
    streams = [s.to_json() for s in stream_maps(component)]
    with tempfile.TemporaryDirectory() as directory:
        harness = Path(directory) / "stream_harness.cpp"
        harness.write_text(native_harness(name, streams))
        built = build_native(verilog_text(component, name), name, [harness],
                             make_flags=native_make_flags(opt))
    return built.executable, streams


def _codecs(streams: list[dict], in_stream="i", out_stream="o"):
    by_name = {s["name"]: s for s in streams}
    return tuple(PayloadCodec.from_json({"width": by_name[n]["width"], "fields": [
        {"name": f["name"], "offset": f["offset"], "width": f["width"], "signed": f["signed"],
         "dims": f["shape"]} for f in by_name[n]["fields"]]}) for n in (in_stream, out_stream))


def stream_records(in_codec: PayloadCodec, out_codec: PayloadCodec, inputs: dict,
                   expected: dict, sources=None, *, input_base: int = 0) -> bytes:
    """One chunk of a stream file: its input, expected and source records (no header).

    ``sources`` index this chunk's inputs; ``input_base`` is the number of inputs before it.
    """
    words_in = in_codec.encode_words(inputs)
    words_out = out_codec.encode_words(expected)
    parts = [np.array([_TAG_INPUTS, len(words_in)], "<u4").tobytes(), words_in.tobytes()]
    if sources is not None:  # before the expected words, so they are read by then
        src = np.asarray(sources, dtype=np.int64) + input_base
        parts += [np.array([_TAG_SOURCES, len(src)], "<u4").tobytes(),
                  src.astype("<u4").tobytes()]
    parts += [np.array([_TAG_EXPECTED, len(words_out)], "<u4").tobytes(), words_out.tobytes()]
    return b"".join(parts)


def _header(in_codec: PayloadCodec, out_codec: PayloadCodec) -> bytes:
    return np.array([MAGIC, (in_codec.width + 31) // 32, (out_codec.width + 31) // 32],
                    "<u4").tobytes()


def write_stream(path: str | Path, in_codec: PayloadCodec, out_codec: PayloadCodec,
                 inputs: dict, expected: dict, sources=None) -> Path:
    """Write a whole stream file (header, one chunk, end record) to ``path``."""
    path = Path(path)
    path.write_bytes(_header(in_codec, out_codec)
                     + stream_records(in_codec, out_codec, inputs, expected, sources)
                     + np.array([_TAG_END, 0], "<u4").tobytes())
    return path


class NativeResult(BenchResult):
    """A :class:`~sim.stream.BenchResult` with the harness's own account: transactions in and
    out and the wall seconds of its simulation loop."""

    def __init__(self, report: dict, **kwargs):
        super().__init__(cycles=report["cycles"], **kwargs)
        self.report = report
        self.inputs = report["inputs"]
        self.outputs = report["outputs"]
        self.loop_seconds = report["seconds"]


def _run(exe: Path, stream: str | Path, test_dir: Path, *, seed: int, valid_prob: float,
         ready_prob: float, trace: bool, timeout: int = 100000, stdin=None, feed=None) -> dict:
    for label, p in (("valid_prob", valid_prob), ("ready_prob", ready_prob)):
        if not 0 < p <= 1:
            raise ValueError(f"{label} must be in (0, 1], got {p}")
    report = test_dir / "report.json"
    command = [str(exe), f"--stream={stream}", f"--report={report}", f"--seed={seed}",
               f"--valid={valid_prob!r}", f"--ready={ready_prob!r}", f"--timeout={timeout}"]
    if trace:
        command.append(f"--trace={test_dir / 'trace.bin'}")
    log = test_dir / "sim.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdin=stdin, stdout=out, stderr=subprocess.STDOUT)
        if feed is not None:
            feed(process)
        process.wait()
    if not report.exists():
        raise SimulationError(f"native simulation of {exe.name} did not finish (exit "
                              f"{process.returncode}); log: {log}")
    result = json.loads(report.read_text())
    if result["status"] != "pass" or process.returncode != 0:
        raise SimulationError(f"{result.get('error') or 'no report'}\nnative simulation of "
                              f"{exe.name} failed; log: {log}")
    return result


def run_native_stream(component, name: str, inputs: dict, expected: dict, sources=None, *,
                      valid_prob: float = 1.0, ready_prob: float = 1.0, seed: int = 0,
                      opt: str | None = None, trace: bool = True,
                      timeout: int = 100000) -> NativeResult:
    """Like :func:`sim.runner.run_stream_test`, on the native harness: drive ``inputs`` into
    the ``i`` stream, check every ``o`` word against ``expected``, with random stalls.

    With ``trace``, the result has every transfer cycle and received word, as the cocotb
    run's has. A run with no transfer for ``timeout`` cycles fails (a lost word or a hang).
    Raises :class:`~sim.runner.SimulationError` at the first mismatch.
    """
    exe, streams = build_stream_harness(component, name, opt=opt)
    in_codec, out_codec = _codecs(streams)
    test_dir = new_test_dir(f"{name}-native")
    stream = write_stream(test_dir / "stream.bin", in_codec, out_codec, inputs, expected,
                          sources)
    report = _run(exe, stream, test_dir, seed=seed, valid_prob=valid_prob,
                  ready_prob=ready_prob, trace=trace, timeout=timeout)
    extra = {}
    if trace:
        extra = _read_trace(test_dir / "trace.bin", (out_codec.width + 31) // 32)
    return NativeResult(report, **extra)


def _read_trace(path: Path, out_words: int) -> dict:
    raw = np.fromfile(path, dtype="<u8")
    n_in = int(raw[0])
    in_cycles = raw[1:1 + n_in]
    n_out = int(raw[1 + n_in])
    out_cycles = raw[2 + n_in:2 + n_in + n_out]
    words = raw[2 + n_in + n_out:].view("<u4")[:n_out * out_words].reshape(n_out, out_words)
    return {"in_cycles": in_cycles.tolist(), "out_cycles": out_cycles.tolist(),
            "out_words": [int.from_bytes(w.tobytes(), "little") for w in words]}


def soak_stream(component, name: str, chunks: Iterable[tuple], *, valid_prob: float = 0.8,
                ready_prob: float = 0.8, seed: int = 0, opt: str | None = None
                ) -> NativeResult:
    """A long run: ``chunks`` yields ``(inputs, expected, sources)`` (``sources`` indexing
    the chunk's inputs, or None), generated as the harness consumes them through a pipe, so
    millions of transactions never sit in memory or on disk at once. Each chunk must leave
    the block with no partial operation (its expected words are its inputs' alone)."""
    exe, streams = build_stream_harness(component, name, opt=opt)
    in_codec, out_codec = _codecs(streams)
    test_dir = new_test_dir(f"{name}-soak")
    errors: list[BaseException] = []

    def feed(process):
        def write():
            try:
                process.stdin.write(_header(in_codec, out_codec))
                base = 0
                for inputs, expected, sources in chunks:
                    process.stdin.write(stream_records(in_codec, out_codec, inputs, expected,
                                                       sources, input_base=base))
                    base += len(next(iter(inputs.values())))
                process.stdin.write(np.array([_TAG_END, 0], "<u4").tobytes())
            except BrokenPipeError:
                pass  # the harness stopped at a mismatch: its report says why
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller
                errors.append(error)
            finally:
                try:
                    process.stdin.close()
                except BrokenPipeError:
                    pass
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join()

    report = _run(exe, "-", test_dir, seed=seed, valid_prob=valid_prob, ready_prob=ready_prob,
                  trace=False, stdin=subprocess.PIPE, feed=feed)
    if errors:
        raise errors[0]
    return NativeResult(report)


_HARNESS = r"""// Native stream harness for {top}: generated by accelgen (sim/native.py).
#include "V{top}.h"
#include "verilated.h"
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static const uint32_t IN_WORDS = {in_words}, OUT_WORDS = {out_words};

struct Elem {{ const char *path; unsigned offset, width; bool is_signed; }};
static const Elem OUT_ELEMS[{n_elems}] = {{
{elems}
}};

static uint64_t get_bits(const uint32_t *w, unsigned offset, unsigned width) {{
    uint64_t value = 0;
    for (unsigned done = 0; done < width;) {{
        unsigned word = (offset + done) / 32, bit = (offset + done) % 32, n = 32 - bit;
        if (n > width - done) n = width - done;
        uint32_t mask = n == 32 ? 0xffffffffu : ((1u << n) - 1u);
        value |= (uint64_t)((w[word] >> bit) & mask) << done;
        done += n;
    }}
    return value;
}}

static std::string show(const Elem &e, uint64_t v) {{
    char text[32];
    if (e.is_signed) {{
        if (e.width < 64 && ((v >> (e.width - 1)) & 1)) v |= ~(uint64_t)0 << e.width;
        snprintf(text, sizeof text, "%lld", (long long)v);
    }} else {{
        snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    }}
    return text;
}}

// Each element that differs, as the cocotb scoreboard names them.
static std::string describe(const uint32_t *expected, const uint32_t *got) {{
    std::string out;
    int shown = 0, differ = 0;
    for (const Elem &e : OUT_ELEMS) {{
        uint64_t a = get_bits(expected, e.offset, e.width), b = get_bits(got, e.offset, e.width);
        if (a == b) continue;
        if (++differ > 8) continue;
        if (shown++) out += "; ";
        out += std::string(e.path) + ": expected " + show(e, a) + ", got " + show(e, b);
    }}
    if (differ > 8) out += "; ... (" + std::to_string(differ) + " elements differ)";
    return out;
}}

// Words read from the stream file, consumed from the front.
struct Queue {{
    std::vector<uint32_t> data;
    size_t head = 0;
    size_t size() const {{ return data.size() - head; }}
    const uint32_t *front() const {{ return data.data() + head; }}
    void pop(size_t n) {{
        head += n;
        if (head > 65536 && head * 2 > data.size()) {{
            data.erase(data.begin(), data.begin() + head);
            head = 0;
        }}
    }}
}};

struct Stream {{
    FILE *file = nullptr;
    bool ended = false;
    Queue inputs, expected, sources;
    std::string error;
    bool read_words(std::vector<uint32_t> &to, size_t n) {{
        size_t at = to.size();
        to.resize(at + n);
        return fread(to.data() + at, 4, n, file) == n;
    }}
    // Read one record; false at the end (or on a malformed file: see error).
    bool next() {{
        if (ended) return false;
        uint32_t head[2];
        if (fread(head, 4, 2, file) != 2) {{
            error = "stream file ends without an end record";
            ended = true;
            return false;
        }}
        size_t n = head[1];
        bool ok = true;
        switch (head[0]) {{
        case 0: ended = true; return false;
        case 1: ok = read_words(inputs.data, n * IN_WORDS); break;
        case 2: ok = read_words(expected.data, n * OUT_WORDS); break;
        case 3: ok = read_words(sources.data, n); break;
        default:
            error = "unknown record tag " + std::to_string(head[0]);
            ended = true;
            return false;
        }}
        if (!ok) {{ error = "stream file truncated"; ended = true; return false; }}
        return true;
    }}
    bool have_input() {{
        while (inputs.size() < IN_WORDS && next()) {{}}
        return inputs.size() >= IN_WORDS;
    }}
    bool have_expected() {{
        while (expected.size() < OUT_WORDS && next()) {{}}
        return expected.size() >= OUT_WORDS;
    }}
}};

struct Rng {{  // splitmix64: seeded, fast, the same stalls for the same seed
    uint64_t s;
    uint64_t next() {{
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }}
    bool chance(double p) {{ return p >= 1.0 || (next() >> 11) * 0x1.0p-53 < p; }}
}};

static std::string json_string(const std::string &s) {{
    std::string out = "\"";
    for (char c : s) {{
        if (c == '"' || c == '\\') {{ out += '\\'; out += c; }}
        else if (c == '\n') out += "\\n";
        else out += c;
    }}
    return out + "\"";
}}

int main(int argc, char **argv) {{
    std::string stream_path, report_path, trace_path;
    uint64_t seed = 0, timeout = 100000, drain = 32;
    double valid_prob = 1.0, ready_prob = 1.0;
    for (int a = 1; a < argc; a++) {{
        std::string arg = argv[a];
        size_t eq = arg.find('=');
        std::string key = arg.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
        if (key == "--stream") stream_path = value;
        else if (key == "--report") report_path = value;
        else if (key == "--trace") trace_path = value;
        else if (key == "--seed") seed = std::stoull(value);
        else if (key == "--valid") valid_prob = std::stod(value);
        else if (key == "--ready") ready_prob = std::stod(value);
        else if (key == "--timeout") timeout = std::stoull(value);
        else if (key == "--drain") drain = std::stoull(value);
        else {{ fprintf(stderr, "unknown argument %s\n", arg.c_str()); return 2; }}
    }}
    Stream in;
    in.file = stream_path == "-" ? stdin : fopen(stream_path.c_str(), "rb");
    if (!in.file) {{ fprintf(stderr, "cannot open %s\n", stream_path.c_str()); return 2; }}
    static char buffer[1 << 20];
    setvbuf(in.file, buffer, _IOFBF, sizeof buffer);
    uint32_t header[3];
    if (fread(header, 4, 3, in.file) != 3 || header[0] != {magic}u || header[1] != IN_WORDS
        || header[2] != OUT_WORDS) {{
        fprintf(stderr, "%s is not a stream file for {top} (%u and %u payload words)\n",
                stream_path.c_str(), IN_WORDS, OUT_WORDS);
        return 2;
    }}

    VerilatedContext context;
    V{top} *top = new V{top}(&context);
    Rng rng{{seed}};
    const uint32_t zero[IN_WORDS] = {{0}};
    uint32_t cur[IN_WORDS] = {{0}}, got[OUT_WORDS], held[OUT_WORDS];
    uint64_t cycle = 0, n_in = 0, n_out = 0, last_progress = 0, done_at = 0;
    bool valid = false, ready = false, done = false, was_held = false;
    std::string error;
    std::vector<uint64_t> in_cycles, out_cycles;
    std::vector<uint32_t> out_words;
    bool tracing = !trace_path.empty();

    top->rst = 1;
    top->{in_valid} = 0;
    top->{out_ready} = 0;
    {zero_in}
    for (int k = 0; k < 2; k++) {{
        top->clk = 0; top->eval(); top->clk = 1; top->eval();
    }}
    top->rst = 0;
    auto started = std::chrono::steady_clock::now();
    for (;;) {{
        // Drive just after the rising edge: valid holds until the word is taken.
        if (!valid && in.have_input()) {{
            valid = rng.chance(valid_prob);
            if (valid) {{
                std::memcpy(cur, in.inputs.front(), sizeof cur);
                {set_in}
            }}
        }}
        ready = rng.chance(ready_prob);
        top->clk = 0;
        top->{in_valid} = valid;
        top->{out_ready} = ready;
        top->eval();
        // Sample the settled handshake before the next rising edge.
        bool in_fire = valid && top->{in_ready};
        bool out_valid = top->{out_valid};
        if (out_valid || was_held) {{
            {get_out}
        }}
        if (was_held && (!out_valid || std::memcmp(got, held, sizeof got) != 0)) {{
            error = std::string("output stream rule broken at cycle ") + std::to_string(cycle) +
                    (out_valid ? ": the payload changed" : ": valid fell") +
                    " before the word was taken (output #" + std::to_string(n_out) + ")";
            break;
        }}
        was_held = out_valid && !ready;
        if (was_held) std::memcpy(held, got, sizeof got);
        if (out_valid && ready) {{
            if (!in.have_expected()) {{
                error = "extra output #" + std::to_string(n_out) + " at cycle " +
                        std::to_string(cycle) + ": only " + std::to_string(n_out) +
                        " expected (a duplicated word?)";
                break;
            }}
            if (std::memcmp(got, in.expected.front(), sizeof got) != 0) {{
                std::string source;
                if (in.sources.size() > 0)
                    source = " (from input #" + std::to_string(in.sources.front()[0]) + ")";
                error = "output #" + std::to_string(n_out) + source + " at cycle " +
                        std::to_string(cycle) + " differs from the golden model: " +
                        describe(in.expected.front(), got);
                break;
            }}
            in.expected.pop(OUT_WORDS);
            if (in.sources.size() > 0) in.sources.pop(1);
            if (tracing) {{
                out_cycles.push_back(cycle);
                out_words.insert(out_words.end(), got, got + OUT_WORDS);
            }}
            n_out++;
            last_progress = cycle;
        }}
        top->clk = 1;
        top->eval();
        if (in_fire) {{
            in.inputs.pop(IN_WORDS);
            valid = false;
            if (tracing) in_cycles.push_back(cycle);
            n_in++;
            last_progress = cycle;
        }}
        cycle++;
        // Every input sent and every output in: watch a while longer for extra outputs.
        if (!done && !valid && in.inputs.size() == 0 && in.ended && in.expected.size() == 0) {{
            done = true;
            done_at = cycle - 1 + drain;  // counted as sim.stream.StreamBench counts them
        }}
        if (done && cycle >= done_at) break;
        if (cycle - last_progress > timeout) {{
            in.have_expected();
            error = "received " + std::to_string(n_out) + " outputs by cycle " +
                    std::to_string(cycle) + ", none for " + std::to_string(timeout) +
                    " cycles, with " + std::to_string(in.expected.size() / OUT_WORDS) +
                    " more expected (a lost word or a hang?)";
            break;
        }}
    }}
    auto elapsed = std::chrono::steady_clock::now() - started;
    double seconds = std::chrono::duration<double>(elapsed).count();
    if (error.empty() && !in.error.empty()) error = in.error;
    top->final();
    delete top;

    if (tracing) {{
        FILE *t = fopen(trace_path.c_str(), "wb");
        uint64_t n = in_cycles.size();
        fwrite(&n, 8, 1, t);
        fwrite(in_cycles.data(), 8, n, t);
        n = out_cycles.size();
        fwrite(&n, 8, 1, t);
        fwrite(out_cycles.data(), 8, n, t);
        if (out_words.size() % 2) out_words.push_back(0);  // whole uint64s
        fwrite(out_words.data(), 4, out_words.size(), t);
        fclose(t);
    }}
    FILE *r = fopen(report_path.c_str(), "w");
    fprintf(r, "{{\"status\": \"%s\", \"error\": %s, \"cycles\": %llu, \"inputs\": %llu, "
               "\"outputs\": %llu, \"seconds\": %.6f}}\n", error.empty() ? "pass" : "fail",
            error.empty() ? "null" : json_string(error).c_str(), (unsigned long long)cycle,
            (unsigned long long)n_in, (unsigned long long)n_out, seconds);
    fclose(r);
    printf("%s: %llu cycles, %llu inputs, %llu outputs, %.3f s%s%s\n", "{top}",
           (unsigned long long)cycle, (unsigned long long)n_in, (unsigned long long)n_out,
           seconds, error.empty() ? "" : "; ", error.c_str());
    return error.empty() ? 0 : 1;
}}
"""
