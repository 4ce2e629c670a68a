"""The host-linked top: register map from the design's config, bad parameters, the UART link in
the Amaranth simulator, and the board check through the host client on the emitted Verilog."""

import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from boards.host import describe_top
from golden.host_bridge import encode_ping, encode_read, parse_read_response
from golden.host_top import MAGIC, HostTopConfig, design_id, host_regmap, parameter_registers
from golden.pe_array import PEArrayConfig
from golden.uart import uart_decode, uart_encode
from hw.host_top import HostTop
from hw.pe import PE
from hw.pe_array import PEArray
from sim.runner import build, new_test_dir, run_cocotb_spec

SIM_TOP = {"clock_hz": 12_000_000, "baud": 1_500_000, "depth": 32}  # UART divisor 8


def test_regmap_follows_the_design_config():
    config = PEArrayConfig(rows=2, cols=3, in_width=6)
    regmap = host_regmap("pe-array", config, HostTopConfig(), 100, 120)
    names = [r.name for r in regmap.registers]
    assert names[:2] == ["id", "design"]
    assert {"p_rows", "p_cols", "p_in_width", "p_signed"} <= set(names)
    assert parameter_registers(config)["p_cols"] == 3
    assert design_id("pe-array", config) != design_id("pe-array", PEArrayConfig(rows=2, cols=4))
    assert design_id("pe-array", config) == design_id("pe-array", PEArrayConfig(
        rows=2, cols=3, in_width=6))


def test_fastest_baud_is_a_divisor_of_4():
    design = PEArray(rows=1, cols=1)
    design._MustUse__silence = True  # never elaborated here
    assert HostTop(design, "pe-array", baud=3_000_000).divisor == 4  # at 12 MHz


@pytest.mark.parametrize("kwargs, message", [
    ({"clock_hz": 10_000_000, "baud": 3_000_000}, "baud"),  # divisor 3.3
    ({"depth": 0}, "depth must be in 1..65536"),
    ({"clock_hz": 0}, "clock_hz must be in"),
])
def test_bad_parameters_are_rejected_before_building(kwargs, message):
    design = PEArray(rows=1, cols=1)
    design._MustUse__silence = True  # never elaborated here
    with pytest.raises(ValueError, match=message):
        HostTop(design, "pe-array", **kwargs)


def test_design_without_stream_ports_is_a_type_error():
    design = PE()
    design._MustUse__silence = True
    with pytest.raises(TypeError, match="stream ports i and o"):
        HostTop(design, "pe")


def test_amaranth_sim_ping_and_identity_registers():
    """Bytes in on rx as UART frames, bytes out of tx decoded by the golden UART model."""
    top = HostTop(PEArray(rows=1, cols=2), "pe-array", **SIM_TOP)
    regs = {r.name: r.address for r in top.regmap.registers}
    # The host waits for each response before the next command (as the client does): an
    # idle gap before each command's first byte covers the previous response.
    commands = [encode_ping(), encode_read(regs["id"], 2), encode_read(regs["in_width"], 2)]
    frame = 10 * top.divisor
    gaps = []
    for command in commands:  # 12 frames: longer than any response here (9 bytes)
        gaps += [12 * frame] + [0] * (len(command) - 1)
    line = uart_encode(b"".join(commands), top.divisor, gaps=gaps)
    cycles = len(line) + 400 * top.divisor
    samples = np.ones(cycles, dtype=np.int8)

    async def testbench(ctx):
        for t in range(cycles):
            ctx.set(top.rx, int(line[t]) if t < len(line) else 1)
            samples[t] = ctx.get(top.tx)
            await ctx.tick()

    sim = Simulator(Fragment.get(top, None))
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    data, errors = uart_decode(samples, top.divisor)
    assert errors == 0
    assert data[:5] == b"\x00GCCA"
    ident, status = parse_read_response(data[5:14], 2)
    assert status == 0 and ident == [MAGIC, design_id("pe-array", top.design.config)]
    widths, status = parse_read_response(data[14:23], 2)
    assert status == 0 and widths == [top.buffer_config.in_width, top.buffer_config.out_width]


@pytest.mark.parametrize("params", [
    {"rows": 2, "cols": 2},
    {"rows": 3, "cols": 4, "in_width": 6},
], ids=["2x2", "3x4-int6"])
def test_verilator_board_check_through_the_uart(params, measure):
    """The check `accelgen run` does on a board, on the emitted top in Verilator: GEMV and a
    mixed-op stream through the UART, the bridge, the buffers and the design; every output
    compared with the golden model."""
    design = PEArray(**params)
    top = HostTop(design, "pe-array", **SIM_TOP)
    name = "host_top_" + "_".join(f"{k}{v}" for k, v in params.items())
    sim_build = build(top, name)
    test_dir = new_test_dir(name)
    spec = {"top": describe_top(top), "check": {"seed": 3, "m": 8, "k": 11, "mixed": 24},
            "report": str(test_dir / "report.json")}
    report = run_cocotb_spec(sim_build, "host_top_tb", spec, env_var="ACCELGEN_HOST_SPEC",
                             test_dir=test_dir)
    result = report["result"]
    assert result["bit_exact"]
    gemv, mixed = result["gemv"], result["mixed"]
    assert gemv["outputs"] == 8 // params["rows"] + (8 % params["rows"] > 0)
    assert mixed["inputs"] == 24
    # The first output ends the first dot product: its ceil(k / cols) chunks, then the latency.
    assert gemv["first_output"] == -(-11 // params["cols"]) - 1 + design.latency
    # The buffers stream one entry per cycle: a run takes inputs + latency + a few cycles.
    assert gemv["cycles"] <= gemv["inputs"] + gemv["first_output"] + 8
    measure(f"host link {params}: GEMV 8x11 in {gemv['cycles']} cycles on the top's counters, "
            f"first output after {gemv['first_output']} cycles, max abs error "
            f"{gemv['max_abs_error']:.3g}")
