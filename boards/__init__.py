"""FPGA boards: accelgen's board names mapped to amaranth-boards platforms.

Each :class:`Board` is declarative: the amaranth-boards platform class, the FPGA family (which
picks the open toolchain, or none for vendor-only families), the host UART (the platform's
USB-UART, or header pins where the board has none) and toolchain options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from amaranth.build import Attrs
from amaranth_boards.resources import UARTResource

__all__ = ["Board", "BOARDS", "get_board", "get_platform"]


@dataclass(frozen=True)
class Board:
    """An FPGA board accelgen builds for.

    Attributes
    ----------
    name : str
        accelgen's name, e.g. ``"ulx3s-85f"``.
    module, platform_class : str
        Where the amaranth-boards platform lives.
    family : str
        ``"ice40"`` or ``"ecp5"`` (built to a bitstream with YoWASP), or ``"xilinx"`` (Verilog,
        constraints and build scripts only; the vendor tool is not run).
    extra_resources : tuple
        Resources added to the platform, e.g. a UART on header pins.
    overrides : dict
        Toolchain template overrides (``synth_opts`` ...), see Amaranth's vendor platforms.
    uart_note : str
        Where the host UART is, for the build summary.
    """

    name: str
    module: str
    platform_class: str
    family: str
    uart_note: str
    extra_resources: tuple = ()
    overrides: dict = field(default_factory=dict)

    def platform(self):
        """A fresh instance of the platform (platforms are single-use), with the extras."""
        platform = getattr(importlib.import_module(self.module), self.platform_class)()
        if self.extra_resources:
            platform.add_resources(list(self.extra_resources))
        return platform

    @property
    def bitstream(self) -> bool:
        """Whether accelgen runs the toolchain to a bitstream for this board."""
        return self.family in ("ice40", "ecp5")


BOARDS: dict[str, Board] = {board.name: board for board in (
    # -dsp maps multipliers to the UP5K's 8 SB_MAC16 blocks (Yosys leaves them in LUTs without).
    Board("icebreaker", "amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40",
          "FTDI channel B (the board's USB port)", overrides={"synth_opts": "-dsp"}),
    Board("ulx3s-85f", "amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5",
          "FTDI (the board's US1 USB port)"),
    # The OrangeCrab has no USB-UART: the host UART is on the Feather header's RX (0) and TX (1)
    # pins, for a 3.3 V USB-serial cable.
    Board("orangecrab", "amaranth_boards.orangecrab_r0_2", "OrangeCrabR0_2_85FPlatform", "ecp5",
          "Feather header: RX on pin 0, TX on pin 1 (3.3 V USB-serial cable)",
          extra_resources=(UARTResource(0, rx="0", tx="1", conn=("io", 0),
                                        attrs=Attrs(IO_TYPE="LVCMOS33")),)),
    Board("arty-a7-35", "amaranth_boards.arty_a7", "ArtyA7_35Platform", "xilinx",
          "FTDI (the board's USB port)"),
)}


def get_board(name: str) -> Board:
    """Return the board called ``name``.

    Raises
    ------
    ValueError
        For an unknown board, listing the known ones.
    """
    if name not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, got {name!r}")
    return BOARDS[name]


def get_platform(name: str):
    """Return an instance of the amaranth-boards platform for an accelgen board name."""
    return get_board(name).platform()
