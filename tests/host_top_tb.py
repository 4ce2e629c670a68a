"""cocotb test of an emitted HostTop through its UART: the host client and the design check
that run on a board over a serial port, here over ``sim.uart.UartTransport``.

``tests/test_host_top.py`` writes a spec (the top's description as ``accelgen build`` records
it in ``build.json``, the seed, the report path) and points ``ACCELGEN_HOST_SPEC`` at it.
"""

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge
from cocotb.triggers import ClockCycles

from boards.checks import CHECKS
from boards.host import HostClient
from gen.registry import get_generator
from sim.uart import UartLink, UartTransport


@cocotb.test()
async def host_link_check(dut):
    """Run the design's board check through the UART; every output is compared in the check."""
    with open(os.environ["ACCELGEN_HOST_SPEC"]) as f:
        spec = json.load(f)
    top = spec["top"]
    Clock(dut.clk, 10, unit="ns").start()
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    link = UartLink(dut.clk, dut.rx, dut.tx, top["divisor"]).start()
    # The longest response is a 256-word read: 1025 bytes of 10 bits.
    client = HostClient.from_description(top, UartTransport(link, 1100 * 10 * top["divisor"]))
    config = get_generator(top["generator"]).config_class.from_dict(top["parameters"])
    report = {"error": None}
    try:
        report["result"] = await bridge(CHECKS[top["generator"]])(client, config,
                                                                  **spec["check"])
        if not report["result"]["bit_exact"]:
            report["error"] = f"not bit-exact: {report['result']}"
    except Exception as error:  # the report carries the testbench's account of the failure
        report["error"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        with open(spec["report"], "w") as f:
            json.dump(report, f, indent=2)
    assert report["error"] is None, report["error"]
