"""The host-linked top: its parameters, address map and register map, derived from the design's
config (one config object drives the hardware, the golden model, the manifest and the registers).

A host reaches the top through a UART and ``golden.host_bridge``'s command protocol. The
bridge's 32-bit byte addresses are decoded into two regions:

========================  ==========================================================
``CSR_BASE`` (0x0)        the control/status registers of :func:`host_regmap`
``BUFFER_BASE``           the stream buffers (``golden.memory.stream_buffer``): the
(0x8000_0000)             input entries the design reads, then the output entries
========================  ==========================================================

A run: the host writes input entries, sets ``count`` (entries to send) and ``expect`` (outputs
to capture), writes ``control.start = 1`` (a rising edge starts the run; the host writes 0
after), polls ``done``, reads the counters and the captured outputs. The outputs are the
design's golden model applied to the inputs: the top adds no computation of its own.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from .memory.csr import Field, Register, RegisterMap
from .params import BlockConfig, param

__all__ = ["HostTopConfig", "MAGIC", "CSR_BASE", "CSR_SIZE", "BUFFER_BASE", "design_id",
           "parameter_registers", "host_regmap"]

#: Value of the ``id`` register: "ACCG" as a little-endian word.
MAGIC = 0x47434341
#: Base byte addresses and size of the host-visible regions.
CSR_BASE, CSR_SIZE, BUFFER_BASE = 0x0000_0000, 0x1000, 0x8000_0000


@dataclass(frozen=True, kw_only=True)
class HostTopConfig(BlockConfig):
    """Parameters of the host link around a design.

    Parameters
    ----------
    clock_hz : int
        Frequency of the clock the top runs at, 1 MHz..500 MHz (sets the UART divisor).
    baud : int
        UART bit rate, 9600..3000000; the divisor ``clock_hz / baud`` must be at least 4 and
        within 2 % of exact.
    depth : int
        Entries of each stream buffer (inputs and outputs of one run), 1..65536.
    """

    clock_hz: int = param(12_000_000, help="clock frequency of the top in Hz",
                          range=(1_000_000, 500_000_000))
    baud: int = param(115_200, help="UART bit rate", range=(9600, 3_000_000))
    depth: int = param(256, help="entries per stream buffer (inputs and outputs of one run)",
                       range=(1, 65536))


def design_id(generator: str, config: BlockConfig, exclude: Iterable[str] = ()) -> int:
    """A 32-bit fingerprint of a design (CRC-32 of its generator name and parameters), read
    back from the ``design`` register so a host knows the bitstream matches its config.
    Parameters named in ``exclude`` (ones the hardware does not depend on) are left out."""
    parameters = {k: v for k, v in config.to_dict().items() if k not in set(exclude)}
    text = json.dumps({"generator": generator, "parameters": parameters}, sort_keys=True)
    return zlib.crc32(text.encode())


def parameter_registers(config: BlockConfig, exclude: Iterable[str] = ()) -> dict[str, int]:
    """The design's integer and boolean parameters, by register name (``p_<field>``), as the
    read-only registers that report them (except those named in ``exclude``)."""
    values = {}
    for name, value in config.to_dict().items():
        if name in set(exclude):
            continue
        if isinstance(value, bool) or (isinstance(value, int) and 0 <= value < 2**32):
            values[f"p_{name}"] = int(value)
    return values


def host_regmap(generator: str, config: BlockConfig, top: HostTopConfig, in_width: int,
                out_width: int) -> RegisterMap:
    """The register map of the top around ``config``'s design.

    Control (``rw``): ``control.start``, ``count``, ``expect``. Status (``ro``): ``status.busy``,
    ``status.overflow``, ``sent``, ``received``, ``cycles`` (start to done), ``first_output``
    (first input to first output: the design's latency), and ``done.done`` (``w1c``: set when a
    run ends). Identity (``ro``, constants): ``id`` (:data:`MAGIC`), ``design`` (:func:`design_id`),
    ``clock_hz``, ``depth``, ``in_width``, ``out_width`` and one ``p_<name>`` register per
    integer or boolean design parameter.
    """
    counter = max(1, top.depth.bit_length())

    def ro(name: str, width: int = 32, description: str = "") -> Register:
        return Register(name, [Field("value", width, "ro", description=description)],
                        description=description)

    registers = [
        ro("id", description="magic number 'ACCG'"),
        ro("design", description=f"CRC-32 of the {generator} design's parameters"),
        Register("control", [Field("start", 1, "rw", description="rising edge starts a run")]),
        Register("count", [Field("value", counter, "rw",
                                 description="input entries to send")]),
        Register("expect", [Field("value", counter, "rw",
                                  description="output entries to capture")]),
        Register("status", [Field("busy", 1, "ro", description="a run is in progress"),
                            Field("overflow", 1, "ro",
                                  description="the design gave more outputs than expected")]),
        Register("done", [Field("done", 1, "w1c", description="a run has ended")]),
        ro("sent", counter, "inputs the design accepted in this run"),
        ro("received", counter, "outputs captured in this run"),
        ro("cycles", description="cycles from start to the end of the run"),
        ro("first_output", description="cycles from the first input to the first output"),
        ro("clock_hz", description="clock frequency in Hz"),
        ro("depth", description="entries per stream buffer"),
        ro("in_width", description="bits per input entry"),
        ro("out_width", description="bits per output entry"),
        *(ro(name, description=f"design parameter {name[2:]}")
          for name in parameter_registers(config)),
    ]
    return RegisterMap(f"{generator.replace('-', '_')}_host", registers,
                       description=f"host link of a {generator} design", addr_width=12)
