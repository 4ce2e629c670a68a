"""The accelerator on the ECP5-85F: narrow nonlinear units (nl_lanes) keep golden, cycle model and
RTL in step and take fewer multipliers; the fit and sentences/s arithmetic; the CLI; and (slow)
real synthesis, place and route."""

import json

import numpy as np
import pytest
from stimulus import int16

from gen.build import BuildError
from gen.cli import main
from gen.measure.fpga_accelerator import (
    DEFAULT_CONFIGS,
    ECP5_85F,
    fits,
    fpga_config,
    memory_mapping,
    multiplier_estimate,
    place_and_route,
    sentences_per_second,
    synthesize,
    write_fpga_accelerator,
)
from golden.accelerator import AcceleratorConfig, Opcode, pack
from golden.accelerator_cycles import instruction_cost, latencies
from hw.dsp import SHIFT_ADD_WIDTH


def test_nl_lanes_is_validated():
    with pytest.raises(ValueError, match="nl_lanes must be a power of two in 1..8"):
        AcceleratorConfig(rows=2, cols=4, nl_lanes=3)
    with pytest.raises(ValueError, match="nl_lanes must be a power of two in 1..8"):
        AcceleratorConfig(rows=2, cols=4, nl_lanes=16)
    config = AcceleratorConfig(rows=8, cols=8, nl_lanes=4)
    assert (config.nl_unit_lanes, config.nl_passes) == (4, 16)
    assert config.exp_config.lanes == config.gelu_config.lanes == config.silu_config.lanes == 4
    assert AcceleratorConfig(rows=8, cols=8).nl_passes == 1


def test_nl_cycles_follow_the_passes():
    nl = pack(Opcode.NL, unit=1, lines=5)
    from golden.accelerator import unpack

    for lanes, passes in ((None, 1), (8, 4), (1, 32)):
        config = AcceleratorConfig(nl_lanes=lanes)
        cost = instruction_cost(config, unpack(nl))
        assert cost.stream == 5 * passes
        assert cost.latency == config.read_latency + latencies(config).gelu


@pytest.mark.parametrize("lanes", [1, 2])
def test_core_with_narrow_nl_units_matches_golden_and_the_cycle_model(lanes, rng):
    from test_accelerator import HALT, _check_core

    config = AcceleratorConfig(rows=2, cols=4, depth=32, max_program=32, nl_lanes=lanes)
    spad = int16(rng, (config.depth, config.line), -3000, 3000)
    words = [pack(Opcode.NL, unit=u, dst=10 + 4 * u, src=2 * u, lines=3) for u in range(3)]
    words += [pack(Opcode.NL, unit=1, dst=5, src=5, lines=2),  # in place
              pack(Opcode.EW, op=1, dst=20, a=1, b=2, lines=2, tcols=1), HALT]
    [(stats, cycles)] = _check_core(config, [words], spad)
    assert stats.status.done and stats.executed == len(words)


def test_narrow_nl_units_take_fewer_multipliers(measure):
    wide = multiplier_estimate(fpga_config(rows=2, cols=2, depth=16, max_program=16))
    narrow = multiplier_estimate(fpga_config(rows=2, cols=2, depth=16, max_program=16,
                                             nl_lanes=1))
    measure(f"2x2 accelerator multipliers: {wide['multipliers']} with a NL lane per element "
            f"(~{wide['dsps']} 18x18 blocks), {narrow['multipliers']} with one lane "
            f"(~{narrow['dsps']})")
    assert narrow["multipliers"] < wide["multipliers"] and narrow["dsps"] < wide["dsps"]
    # No DSP block for a product by a few bits (the units' add, subtract and shift PEs) or by a
    # power of two (a word_select): those are shifts and adders in the fabric.
    for estimate in (wide, narrow):
        assert all(int(k.split("x")[0]) > SHIFT_ADD_WIDTH for k in estimate["by_width"]
                   if k != "MULT18X18D")
    # One write port per memory (the scratchpad's shared by compute and the load engine): a
    # block RAM copy per read port holds it (test_scratchpad_maps_to_block_ram synthesizes).
    assert narrow["memories"]["core.spad"] == {"write_ports": 1, "read_ports": 3}
    assert all(m["write_ports"] == 1 for m in narrow["memories"].values())


def test_memory_mapping_reads_the_synthesis_log():
    log = ("2.28. Executing MEMORY_LIBMAP pass (mapping memories to cells).\n"
           "mapping memory core.spad via $__DP16KD_\n<suppressed ~9 debug messages>\n"
           "mapping memory core.program via $__PDPW16KD_\n"
           "using FF mapping for memory core.softmax.buffer\n")
    assert memory_mapping(log) == {"core.program": "PDPW16KD", "core.softmax.buffer": "logic",
                                   "core.spad": "DP16KD"}


def test_fits_and_sentences_per_second():
    assert fits({"luts": 80000, "dsps": 156, "brams": 208})
    assert not fits({"luts": 1000, "dsps": 157, "brams": 10})
    assert not fits({"luts": ECP5_85F["luts"] + 1, "dsps": 1, "brams": 1})
    assert sentences_per_second(50.0, 1_000_000) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="cycles_per_sentence must be positive"):
        sentences_per_second(50.0, 0)


@pytest.mark.parametrize("argv,message", [
    (["--nl-lanes", "3"], "nl_lanes must be a power of two"),
    (["--rows", "3"], "rows must be a power of two"),
    (["--steps", "estimate,route"], "steps must be drawn from"),
    (["--timeout", "0"], "timeout must be positive"),
    (["--minilm-tokens", "12"], "minilm-tokens must be a positive multiple of 8"),
    (["--nl-units", "gelu,tanh"], "nl_units must be drawn from exp, gelu, silu"),
    (["--nl-units", "gelu,gelu"], "nl_units must not repeat a unit"),
    (["--nextpnr-args", "--seed 2 --freq 90"], "nextpnr args must not set --freq"),
])
def test_cli_rejects_bad_arguments(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fpga-accelerator", "-o", str(out), *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_estimate_writes_json(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["fpga-accelerator", "-o", str(out), "--rows", "2", "--cols", "2",
                 "--nl-lanes", "1", "--depth", "16", "--max-program", "16",
                 "--nl-units", "exp,gelu,silu", "--steps", "estimate"]) == 0
    capsys.readouterr()
    (row,) = json.loads((out / "fpga_accelerator.json").read_text())["rows"]
    assert row["config"]["nl_lanes"] == 1 and row["estimate"]["multipliers"] > 0
    assert row["config"]["nl_units"] == ["exp", "gelu", "silu"]
    # GELU alone: the exp and SiLU lanes' multipliers are not built.
    assert main(["fpga-accelerator", "-o", str(out), "--rows", "2", "--cols", "2",
                 "--nl-lanes", "1", "--depth", "16", "--max-program", "16",
                 "--nl-units", "gelu", "--steps", "estimate"]) == 0
    capsys.readouterr()
    (gelu,) = json.loads((out / "fpga_accelerator.json").read_text())["rows"]
    assert gelu["config"]["nl_units"] == ["gelu"]
    assert gelu["estimate"]["multipliers"] < row["estimate"]["multipliers"]


def test_place_and_route_rejects_unknown_tools(tmp_path):
    config = fpga_config(rows=2, cols=2, nl_lanes=1, depth=16, max_program=16)
    for tool, message in (({"placer": "hot"}, "placer must be one of heap, static, sa"),
                          ({"router": "r3"}, "router must be one of router1, router2"),
                          ({"nextpnr_args": ("--json=x.json",)},
                           "nextpnr args must not set --json=x.json")):
        with pytest.raises(ValueError, match=message):
            place_and_route(config, tmp_path / "pnr", **tool)
    assert not (tmp_path / "pnr").exists()


def test_timing_driven_and_nextpnr_args_reach_nextpnr(tmp_path, monkeypatch, capsys):
    # --no-timing-driven asks nextpnr for --no-tmdriv (placement and routing for congestion
    # alone), --nextpnr-args are passed on as they are, and the JSON row records both beside
    # the placer and router.
    seen = []

    def build_top(board, design, name, directory, *, timeout, overrides):
        seen.append(overrides["nextpnr_opts"])
        raise BuildError("stopped before any tool ran")

    monkeypatch.setattr("gen.measure.fpga_accelerator.build_top", build_top)
    small = ["--rows", "2", "--cols", "2", "--nl-lanes", "1", "--depth", "16",
             "--max-program", "16", "--steps", "pnr", "--placer", "static"]
    extra_args = ["--nextpnr-args", "--router2-alt-weights --seed 3"]
    for extra, timing_driven, args in (([], True, []),
                                       (["--no-timing-driven", *extra_args], False,
                                        ["--router2-alt-weights", "--seed", "3"])):
        assert main(["fpga-accelerator", "-o", str(tmp_path), *small, *extra]) == 0
        capsys.readouterr()
        (row,) = json.loads((tmp_path / "fpga_accelerator.json").read_text())["rows"]
        assert row["pnr"]["timing_driven"] is timing_driven
        assert row["pnr"]["nextpnr_args"] == args
        assert "stopped before any tool ran" in row["pnr"]["error"]
    assert seen == ["--placer static --router router1",
                    "--placer static --router router1 --no-tmdriv --router2-alt-weights "
                    "--seed 3"]


def test_minilm_cycles_of_the_fpga_configuration(tmp_path):
    # The configuration that fits the ECP5-85F compiles the whole MiniLM encoder, and the cycle
    # model keeps its PE array >= 85 % busy (issue 17); its cycles give the sentences/s. The
    # 4x8 with as many scratchpad bits does the same work in more cycles; a 16x4, and an 8x8
    # without the GELU unit, get the compiler's refusal in their rows instead.
    eight = DEFAULT_CONFIGS[0]
    assert (eight["rows"], eight["cols"]) == (8, 8)
    (path,) = write_fpga_accelerator(tmp_path, [eight, {**eight, "rows": 4, "depth": 2048},
                                                {**eight, "rows": 16, "cols": 4},
                                                {**eight, "nl_units": ("exp", "silu")}],
                                     steps=(), minilm_tokens=8)
    row, half, tall, no_gelu = json.loads(path.read_text())["rows"]
    assert "NL gelu needs the gelu unit" in no_gelu["minilm"]["error"]
    assert "rows x cols" in tall["minilm"]["error"] and "cycles_per_sentence" not in tall
    assert half["minilm"]["pe_utilization"] >= 0.85
    assert half["minilm"]["cycles_per_sentence"] > row["minilm"]["cycles_per_sentence"]
    minilm = row["minilm"]
    # The configuration builds what the model's programs use, no more (GEMV multiplies too).
    assert set(minilm["uses"]["nl_units"]) == set(eight["nl_units"])
    assert {"mul", *minilm["uses"]["pe_ops"]} == set(eight["pe_ops"])
    assert minilm["tokens"] == 8 and row["cycles_per_sentence"] == minilm["cycles_per_sentence"]
    assert minilm["pe_utilization"] == pytest.approx(
        minilm["pe_ops"] / (64 * minilm["cycles_per_sentence"]))
    assert minilm["pe_utilization"] >= 0.85
    assert "sentences_per_second" not in row  # no Fmax without place and route


@pytest.mark.slow
def test_small_accelerator_synthesizes_and_routes(tmp_path, measure):
    # 2x2 with one NL lane: small enough to place and route in minutes here.
    config = fpga_config(rows=2, cols=2, nl_lanes=1, depth=64, max_program=64)
    synthesized = synthesize(config, tmp_path / "synth", timeout=3600)
    assert synthesized["fits"] and synthesized["dsps"] > 0
    routed = place_and_route(config, tmp_path / "pnr", target_mhz=40.0, timeout=3600)
    measure(f"2x2 accelerator, 1 NL lane, on the ECP5-85F: {routed['luts']} LUTs, "
            f"{routed['dsps']} DSPs, {routed['brams']} BRAMs, {routed['fmax_mhz']:.1f} MHz")
    assert routed["fits"] and routed["fmax_mhz"] > 0
    assert np.isfinite(routed["fmax_mhz"])


def test_failed_place_and_route_keeps_what_was_synthesized(tmp_path):
    """nextpnr finding no room (the 8x8 accelerator's LUTs): the row still gets the core's
    resources from the failed build's logs, and does not fit."""
    from gen.measure.fpga_accelerator import failed_build_resources

    build = tmp_path / "rows8"
    assert failed_build_resources(build) is None  # nothing was built
    failed = tmp_path / "rows8.failed"
    failed.mkdir()
    (failed / "bench.rpt").write_text("""
Printing statistics.

=== bench.core ===

       10 cells
      205   DP16KD
      137   MULT18X18D
    13712   CCU2C
    98354   LUT4
    40350   TRELLIS_FF
""")
    assert failed_build_resources(build) == {"luts": 125778, "ffs": 40350, "dsps": 137,
                                             "brams": 205, "fits": False}
    (failed / "bench.tim").write_text("""Info: Device utilisation:
Info: 	              DP16KD:     205/    208    98%
Info: 	        TRELLIS_COMB:  130773/  83640   156%
Info: 	               JTAGG:       0/      1     0%

Info: Max frequency for clock '$glbnet$clk': 6.44 MHz (FAIL at 50.00 MHz)
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'TRELLIS_COMB'
""")
    synthesized = failed_build_resources(build)
    assert synthesized["utilisation"] == {"DP16KD": {"used": 205, "available": 208},
                                          "TRELLIS_COMB": {"used": 130773, "available": 83640}}
    assert not synthesized["fits"]
    assert synthesized["clocks"] == {"$glbnet$clk": {"fmax_mhz": 6.44, "constraint_mhz": 50.0,
                                                     "met": False}}
