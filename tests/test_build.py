"""`accelgen build` / `report` / `emit --fusesoc`: real bitstreams on iCE40 and ECP5 through the
YoWASP toolchain, parsed reports, vendor files for Xilinx, and one-line errors that leave
nothing half-written."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gen.build as gen_build
import gen.cli as gen_cli
from boards import BOARDS, get_board
from boards.dfu_suffix import add_dfu_suffix, dfu_suffix
from gen.build import TOOLS, find_tool, tool_options
from gen.cli import main
from gen.config import load_design, parse_value
from gen.measure.fpga_report import parse_nextpnr_log, parse_yosys_stat
from sim.runner import verilator_env

DESIGN = """
[pe_array]
rows = 2
cols = 2

[board]
depth = 64
"""


def run_cli(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def design_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("design") / "pe_array.toml"
    path.write_text(DESIGN)
    return path


@pytest.fixture(scope="module")
def ice40_build(design_file, tmp_path_factory):
    """The 2x2 PE array with its UART link for the iCEBreaker, at the board clock (12 MHz)."""
    output = tmp_path_factory.mktemp("boards") / "icebreaker"
    assert run_cli("build", "--design", design_file, "--board", "icebreaker",
                   "-o", output) == 0
    return output


@pytest.fixture(scope="module")
def ecp5_build(design_file, tmp_path_factory):
    """The same design for the ULX3S 85F, at 50 MHz from the PLL (board clock 25 MHz)."""
    output = tmp_path_factory.mktemp("boards") / "ulx3s"
    assert run_cli("build", "--design", design_file, "--board", "ulx3s-85f", "--freq", 50,
                   "-o", output) == 0
    return output


@pytest.mark.parametrize("build, bitstream, luts, device_luts, freq", [
    ("ice40_build", "pe_array.bin", "ICESTORM_LC", 5280, 12.0),
    ("ecp5_build", "pe_array.bit", "TRELLIS_COMB", 83640, 50.0),
])
def test_bitstream_and_report_with_real_numbers(build, bitstream, luts, device_luts, freq,
                                                request, measure):
    directory = request.getfixturevalue(build)
    assert (directory / bitstream).stat().st_size > 10_000
    report = json.loads((directory / "report.json").read_text())
    summary = report["summary"]
    assert 500 < summary["luts"]["used"] < device_luts == summary["luts"]["available"]
    assert report["utilisation"][luts]["used"] == summary["luts"]["used"]
    assert summary["ffs"]["used"] > 300
    assert summary["dsps"]["used"] == 4          # one multiplier per PE
    assert summary["brams"]["used"] >= 2         # the stream buffers
    (clock, timing), = report["clocks"].items()
    assert timing["constraint_mhz"] == pytest.approx(freq, rel=1e-3)
    assert timing["met"] and report["timing_met"] and timing["fmax_mhz"] >= freq
    # The host description the client reads, and the register map views.
    info = json.loads((directory / "build.json").read_text())
    assert info["generator"] == "pe-array" and info["parameters"]["rows"] == 2
    assert info["host"]["clock_hz"] == freq * 1e6 and info["buffer"]["depth"] == 64
    assert (directory / "pe_array_host.h").exists()
    assert (directory / "pe_array.tim").exists() and (directory / "build.log").exists()
    measure(f"{report['device']}: {summary['luts']['used']} LUTs, {summary['ffs']['used']} FFs, "
            f"{summary['dsps']['used']} DSPs, {summary['brams']['used']} BRAMs, Fmax "
            f"{timing['fmax_mhz']:.1f} MHz at {freq} MHz ({report['seconds']} s)")


def test_report_command_reads_build_directories(ice40_build, ecp5_build, capsys):
    assert run_cli("report", "--json", ice40_build, ecp5_build) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [r["family"] for r in reports.values()] == ["ice40", "ecp5"]
    assert run_cli("report", ice40_build) == 0
    assert "Fmax" in capsys.readouterr().out


def test_xilinx_board_writes_vendor_files_without_running_the_tool(tmp_path):
    output = tmp_path / "arty"
    assert run_cli("build", "--design", "pe-array", "--param", "rows=2", "--param", "cols=2",
                   "--board", "arty-a7-35", "-o", output) == 0
    names = {p.name for p in output.iterdir()}
    assert {"pe_array.v", "pe_array.xdc", "pe_array.tcl", "build_pe_array.sh",
            "build.json"} <= names
    assert "set_property" in (output / "pe_array.xdc").read_text()


@pytest.mark.parametrize("args, message", [
    (["--board", "de10-nano"], "board must be one of icebreaker, ulx3s-85f"),
    (["--board", "icebreaker", "--param", "rows=0"], "rows must be in 1..256, got 0"),
    (["--board", "icebreaker", "--param", "bogus"], "param must look like NAME=VALUE"),
    (["--board", "icebreaker", "--freq", "1000"], "freq"),
    (["--board", "icebreaker", "--baud", "4000000"], "baud"),
    (["--board", "arty-a7-35", "--freq", "50"], "freq"),
], ids=["unknown-board", "bad-param", "malformed-param", "impossible-freq", "bad-baud",
        "xilinx-freq"])
def test_bad_requests_fail_in_one_line_before_building(args, message, tmp_path, capsys):
    output = tmp_path / "out"
    assert run_cli("build", "--design", "pe-array", *args, "-o", output) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accelgen: error:") and message in err
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_missing_toolchain_is_reported_before_anything_is_built(tmp_path, capsys,
                                                                monkeypatch):
    monkeypatch.setenv("NEXTPNR_ECP5", str(tmp_path / "no-such-nextpnr"))
    assert run_cli("build", "--design", "pe-array", "--board", "ulx3s-85f",
                   "-o", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "missing toolchain" in err and "NEXTPNR_ECP5" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_failed_build_leaves_no_output_and_keeps_its_logs(tmp_path, capsys, monkeypatch):
    """A tool that fails (here a nextpnr that exits 1) leaves nothing at the output path; the
    logs move to <output>.failed."""
    fake = tmp_path / "nextpnr"
    fake.write_text("#!/bin/sh\necho 'ERROR: Unable to place cell x, no BELs remaining' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("NEXTPNR_ICE40", str(fake))
    output = tmp_path / "out"
    assert run_cli("build", "--design", "pe-array", "--param", "rows=1", "--param", "cols=1",
                   "--board", "icebreaker", "--depth", "4", "-o", output) == 2
    err = capsys.readouterr().err
    assert "failed: design does not fit iCE40UP5K (icebreaker): Unable to place" in err
    assert err.count("\n") == 1
    assert not output.exists()
    failed = tmp_path / "out.failed"
    assert (failed / "build.log").exists() and not (failed / "pe_array.bin").exists()


@pytest.mark.slow
def test_design_too_large_for_the_device(tmp_path, capsys):
    """The real thing (about 90 s): an 8x8 PE array needs 64 multipliers; the UP5K has 8."""
    output = tmp_path / "out"
    assert run_cli("build", "--design", "pe-array", "--param", "rows=8", "--param", "cols=8",
                   "--board", "icebreaker", "--depth", "16", "-o", output) == 2
    err = capsys.readouterr().err
    assert "place and route failed: design does not fit iCE40UP5K" in err
    assert "ICESTORM_DSP" in err and not output.exists()


@pytest.mark.parametrize("text, message", [
    ("[pe_array]\nrows = 2\n[softmax]\n", "exactly one generator table"),
    ("[pe_array\n", "malformed design file"),
    ("[pe_array]\n[board]\nspeed = 3\n", r"\[board\] may set name"),
    ("[pe_array]\nrows = 'two'\n", "rows"),
])
def test_design_file_errors(text, message, tmp_path):
    path = tmp_path / "design.toml"
    path.write_text(text)
    with pytest.raises((ValueError, TypeError), match=message):
        load_design(str(path))


def test_design_file_and_params():
    generator, config, board = load_design("pe-array", ["rows=3", "ops=['mul', 'madd']"])
    assert generator.name == "pe-array" and config.rows == 3 and config.ops == ("mul", "madd")
    assert board == {}
    assert parse_value("4") == 4 and parse_value("half_up") == "half_up"


def test_caller_options_keep_a_missed_frequency_a_report_not_a_failure():
    ecp5, arty = get_board("ulx3s-85f"), get_board("arty-a7-35")
    options = tool_options(ecp5, {"nextpnr_opts": "--router router2"})
    assert options["nextpnr_opts"] == "--router router2 --timing-allow-fail"
    assert tool_options(ecp5)["nextpnr_opts"].endswith("--timing-allow-fail")
    assert "nextpnr_opts" not in tool_options(arty)  # Vivado's files: no nextpnr


def test_every_board_has_a_host_uart_and_a_known_family():
    for board in BOARDS.values():
        platform = board.platform()
        platform.request("uart", 0)
        assert board.family in ("ice40", "ecp5", "xilinx")
    assert get_board("orangecrab").bitstream and not get_board("arty-a7-35").bitstream


def test_dfu_suffix_layout(tmp_path):
    path = tmp_path / "top.bit"
    path.write_bytes(b"\xff" * 100)
    add_dfu_suffix(path, 0x1209, 0x5AF0)
    data = path.read_bytes()
    assert len(data) == 116 and data[-8:-5] == b"UFD" and data[-5] == 16
    assert int.from_bytes(data[-12:-10], "little") == 0x1209  # idVendor
    assert int.from_bytes(data[-14:-12], "little") == 0x5AF0  # idProduct
    assert data[-16:] == dfu_suffix(b"\xff" * 100, 0x1209, 0x5AF0)
    with pytest.raises(ValueError, match="already has a DFU suffix"):
        add_dfu_suffix(path, 0x1209, 0x5AF0)


def test_yosys_and_nextpnr_log_parsers_on_log_excerpts():
    yosys = """
Printing statistics.

=== top.core ===

        +----------Local Count, excluding submodules.
       10 cells
        1   MULT18X18D
       16   CCU2C
       64   TRELLIS_FF

=== top ===

        3 cells
        2   TRELLIS_IO
        1   top.core
"""
    assert parse_yosys_stat(yosys) == {
        "top.core": {"MULT18X18D": 1, "CCU2C": 16, "TRELLIS_FF": 64},
        "top": {"TRELLIS_IO": 2, "top.core": 1}}
    nextpnr = """Info: Device utilisation:
Info: 	          TRELLIS_IO:       2/    365     0%
Info: 	          MULT18X18D:       1/    156     0%
Info:
Info: Max frequency for clock '$glbnet$clk': 80.00 MHz (PASS at 25.00 MHz)
Info: Routing complete.
Warning: Max frequency for clock '$glbnet$clk': 21.50 MHz (FAIL at 25.00 MHz)
"""
    parsed = parse_nextpnr_log(nextpnr)
    assert parsed["utilisation"]["MULT18X18D"] == {"used": 1, "available": 156}
    # The last report (after routing) counts, a failing one being a warning.
    assert parsed["clocks"]["$glbnet$clk"] == {"fmax_mhz": 21.5, "constraint_mhz": 25.0,
                                                "met": False}
    routed_faster = nextpnr.replace("80.00 MHz (PASS", "20.00 MHz (FAIL").replace(
        "Warning: Max frequency for clock '$glbnet$clk': 21.50 MHz (FAIL",
        "Info: Max frequency for clock '$glbnet$clk': 30.00 MHz (PASS")
    assert parse_nextpnr_log(routed_faster)["clocks"]["$glbnet$clk"] == {
        "fmax_mhz": 30.0, "constraint_mhz": 25.0, "met": True}
    with pytest.raises(ValueError, match="no device utilisation"):
        parse_nextpnr_log("Info: nothing")


def test_emit_fusesoc_core_runs_in_fusesoc_lint_flow(tmp_path, capsys):
    """The .core file is valid CAPI2: FuseSoC lists it and its lint target runs Verilator on
    the emitted Verilog through edalize."""
    assert run_cli("emit", "pe-array", "--rows", "2", "--cols", "2", "--fusesoc",
                   "-o", tmp_path) == 0
    core = (tmp_path / "pe_array.core").read_text()
    assert core.startswith("CAPI=2:") and "accelgen:blocks:pe_array:" in core
    verilator_env()
    fusesoc = [find_tool("fusesoc"), "--cores-root", str(tmp_path)]
    listing = subprocess.run([*fusesoc, "core", "list"], capture_output=True, text=True,
                             cwd=tmp_path, check=True)
    assert "accelgen:blocks:pe_array" in listing.stdout
    lint = subprocess.run([*fusesoc, "run", "--target", "lint", "accelgen:blocks:pe_array"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert lint.returncode == 0, lint.stdout[-2000:] + lint.stderr[-2000:]


# --- fpga-bench: the core-only synthesis fallback and the README table -------------------------


def test_core_alone_synthesizes_to_the_cells_it_has_in_the_harness(tmp_path):
    """The fallback for a harness build Yosys cannot finish (the 8x8 MAC array) counts the same
    cells as the harness build does for a core both can build."""
    from gen.measure.fpga_bench import bench_design, core_resources, synthesize_core
    from hw.mac_array import MACArray

    in_harness = bench_design("MAC baseline", 2, 2, "mac-array", {}, tmp_path / "builds")
    alone = core_resources(synthesize_core(MACArray(rows=2, cols=2, in_width=8),
                                           tmp_path / "alone"))
    assert alone == {k: in_harness[k] for k in ("luts", "ffs", "dsps", "brams")}
    assert alone["dsps"] == 4 and alone["luts"] > 0
    assert in_harness["fmax_mhz"] > 100 and in_harness["timing_met"]


def test_fpga_bench_table_and_readme_markers(tmp_path):
    from gen.emit import replace_between_markers
    from gen.measure.fpga_bench import README_MARKERS, markdown_table

    base = {"label": "MAC baseline", "kind": "mac-array", "rows": 8, "cols": 8, "luts": 1000,
            "luts_per_mac": 15.625, "ffs": 3000, "dsps_per_mac": 1.0, "fmax_mhz": None,
            "synthesis_only": True, "error": "synthesis failed: Assert"}
    pe = {**base, "label": "PE array", "kind": "pe-array", "luts": 1200, "luts_per_mac": 18.75,
          "fmax_mhz": 101.25, "synthesis_only": False}
    pe.pop("error")
    lost = {"label": "PE array", "kind": "pe-array", "rows": 4, "cols": 4,
            "error": "place and route failed (logs: x)"}
    table = markdown_table([base, pe, lost])
    assert "| MAC baseline | 8x8 int8 | 1000 | 15.6 | 3000 | 1.00 | synthesis only | 1.00x |" \
        in table
    assert "| PE array | 8x8 int8 | 1200 | 18.8 | 3000 | 1.00 | 101.2 | 1.20x |" in table
    assert "| PE array | 4x4 int8 | not built: place and route failed |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_MARKERS[0]}old\n{README_MARKERS[1]}\nrest\n")
    replace_between_markers(readme, table, README_MARKERS)
    assert readme.read_text() == f"intro\n{README_MARKERS[0]}{table}{README_MARKERS[1]}\nrest\n"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- fpga-bench:start --> .* markers"):
        replace_between_markers(readme, table, README_MARKERS)


# --- the README's build lines, interrupts and unexpected errors (no toolchain run) ------------

ROOT = Path(__file__).resolve().parent.parent


def readme_build_section():
    readme = (ROOT / "README.md").read_text()
    return readme[readme.index("## FPGA boards"):readme.index("\n## ", readme.index(
        "## FPGA boards") + 1)]


def readme_build_lines():
    """The ``accelgen build`` command lines of the README's FPGA section, as argument lists."""
    blocks = re.findall(r"```sh\n(.*?)```", readme_build_section(), re.S)
    lines = [shlex.split(line, comments=True) for block in blocks
             for line in block.splitlines() if line.startswith("accelgen build ")]
    return [line[1:] for line in lines]


README_BUILDS = readme_build_lines()


def test_readme_has_the_build_lines_of_every_board_and_the_issue():
    boards = {line[line.index("--board") + 1] for line in README_BUILDS}
    assert boards == set(BOARDS)
    # issue 15: the ECP5 boards at their own clock, as a new user types them
    assert ["build", "--design", "pe-array", "--board", "ulx3s-85f", "-o", "build/ulx"] \
        in README_BUILDS
    assert ["build", "--design", "pe-array", "--param", "rows=2", "--param", "cols=2",
            "--board", "orangecrab", "-o", "build/oc"] in README_BUILDS


@pytest.mark.parametrize("argv", README_BUILDS, ids=[" ".join(a[1:]) for a in README_BUILDS])
def test_readme_build_lines_elaborate(argv, tmp_path, monkeypatch, capsys):
    """Each README line as written, in a directory holding the README's design.toml, through
    elaboration and ``platform.prepare`` to the build files (``--elaborate-only``: no tools)."""
    toml = re.search(r"```toml\n(.*?)```", readme_build_section(), re.S).group(1)
    (tmp_path / "design.toml").write_text(toml)
    monkeypatch.chdir(tmp_path)
    args = argv if "--elaborate-only" in argv else [*argv, "--elaborate-only"]
    assert run_cli(*args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    directory = Path(re.search(r"wrote (\S+):", out).group(1))
    info = json.loads((directory / "build.json").read_text())
    assert info["board"] == argv[argv.index("--board") + 1]
    if "--freq" in argv:
        assert info["freq_mhz"] == pytest.approx(float(argv[argv.index("--freq") + 1]),
                                                 rel=0.01)
    assert any(p.name.startswith("build_") and p.suffix == ".sh" for p in directory.iterdir())
    assert not list(tmp_path.rglob("*.partial"))


def fake_toolchain(monkeypatch, family="ice40"):
    """Every tool of ``family`` set to a program that exists (the flow itself is patched)."""
    for variable, _, _ in TOOLS[family]:
        monkeypatch.setenv(variable, "/bin/true")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, gen_cli._Terminated],
                         ids=["ctrl-c", "sigterm"])
def test_interrupted_build_leaves_nothing_and_exits_nonzero(interrupt, tmp_path, monkeypatch,
                                                            capsys):
    """An interrupt while the tools run (here raised by a patched flow, after the work
    directory has been written) removes the work directory; the exit status says so."""
    fake_toolchain(monkeypatch)
    seen = []

    def flow(work, *args):
        seen.append(sorted(p.name for p in work.iterdir()))
        raise interrupt()

    monkeypatch.setattr(gen_build, "_run_flow", flow)
    output = tmp_path / "out"
    status = run_cli("build", "--design", "pe-array", "--param", "rows=1", "--param", "cols=1",
                     "--board", "icebreaker", "-o", output)
    assert status == (130 if interrupt is KeyboardInterrupt else 143)
    assert "build.json" in seen[0] and "pe_array.il" in seen[0]  # it was interrupted mid-way
    assert list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("accelgen: ")


def test_sigterm_stops_the_tools_and_removes_the_work_directory(tmp_path):
    """The real thing: ``accelgen build`` in its own process, its "Yosys" a script that
    records its pid and sleeps; SIGTERM once the tool runs. The tool is stopped with the
    build, nothing is left beside the output, and the exit status is 143."""
    pid_file = tmp_path / "tool.pid"
    fake = tmp_path / "yosys"
    fake.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 120\n")
    fake.chmod(0o755)
    builds = tmp_path / "builds"
    builds.mkdir()
    env = {**os.environ, "YOSYS": str(fake), "NEXTPNR_ICE40": "/bin/true",
           "ICEPACK": "/bin/true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gen.cli", "build", "--design", "pe-array", "--param", "rows=1",
         "--param", "cols=1", "--board", "icebreaker", "-o", str(builds / "out")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the fake tool never started"
            time.sleep(0.1)
        assert [p.name for p in builds.iterdir()] == [".out.partial"]
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143 and err.strip().endswith("accelgen: terminated")
    assert list(builds.iterdir()) == []
    tool = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{tool}").exists() and "Z" not in _proc_state(tool):
        assert time.monotonic() < deadline, "the tool outlived the build"
        time.sleep(0.1)


def _proc_state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return "gone"


def test_unexpected_exception_is_one_line_unless_debugging(tmp_path, monkeypatch, capsys):
    """A bug (here a RuntimeError from the step that writes the register map into the work
    directory) is one line and exit 2, the work directory removed; ACCELGEN_DEBUG=1 raises."""
    import golden.memory.csr

    def broken(regmap, directory):
        assert (directory / "build.json").exists()
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(golden.memory.csr, "write_regmap_files", broken)
    argv = ["build", "--design", "pe-array", "--param", "rows=1", "--param", "cols=1",
            "--board", "ulx3s-85f", "--elaborate-only", "-o", tmp_path / "out"]
    assert run_cli(*argv) == 2
    err = capsys.readouterr().err
    assert err == ("accelgen: error: internal error: RuntimeError: something broke "
                   "(set ACCELGEN_DEBUG=1 for the traceback)\n")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("ACCELGEN_DEBUG", "1")
    with pytest.raises(RuntimeError, match="something"):
        run_cli(*argv)
    assert list(tmp_path.iterdir()) == []


def test_flow_programs_are_found_from_the_work_directory(tmp_path, monkeypatch):
    """The flow runs in the work directory: a relative output (``-o build/oc``) or tool path
    must not leave the OrangeCrab's dfu-suffix or a tool unfound there (it did: "bitstream
    failed", the bitstream built but not suffixed)."""
    monkeypatch.chdir(tmp_path)
    work = Path("build/.oc.partial")
    work.mkdir(parents=True)
    monkeypatch.setattr(gen_build.shutil, "which", lambda name: None)  # no dfu-util installed
    wrapper = gen_build._dfu_suffix_wrapper(work)
    assert Path(wrapper).is_absolute()
    (work / "top.bit").write_bytes(b"\xff" * 64)
    subprocess.run([wrapper, "-v", "1209", "-p", "5af0", "-a", "top.bit"], cwd=work,
                   check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (work / "top.bit").read_bytes() == b"\xff" * 64 + dfu_suffix(b"\xff" * 64, 0x1209,
                                                                         0x5AF0)
    tool = Path("tools/yosys")
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    monkeypatch.setenv("YOSYS", "tools/yosys")
    for variable in ("NEXTPNR_ECP5", "ECPPACK"):
        monkeypatch.setenv(variable, "/bin/true")
    env = gen_build.toolchain_env("ecp5")
    assert env["YOSYS"] == str(tmp_path / "tools/yosys")
    assert env["ECPPACK"] == "/bin/true"


def test_first_error_falls_back_to_the_flows_last_line(tmp_path):
    (tmp_path / "build.log").write_text("Info: fine\nbuild_top.sh: 12: ./dfu-suffix: not found\n\n")
    assert gen_build._first_error(tmp_path) == "build_top.sh: 12: ./dfu-suffix: not found"
    (tmp_path / "top.tim").write_text("Info: x\nERROR: Unable to place cell y\n")
    assert gen_build._first_error(tmp_path) == "Unable to place cell y"
    (tmp_path / "build.log").unlink()
    (tmp_path / "top.tim").unlink()
    assert gen_build._first_error(tmp_path) == "see the log"
