"""FPGA boards: accelgen's board names mapped to amaranth-boards platforms."""

from __future__ import annotations

import importlib

__all__ = ["BOARDS", "get_platform"]

#: accelgen board name -> (amaranth-boards module, platform class)
BOARDS = {
    "icebreaker": ("amaranth_boards.icebreaker", "ICEBreakerPlatform"),
    "ulx3s-85f": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform"),
    "orangecrab": ("amaranth_boards.orangecrab_r0_2", "OrangeCrabR0_2_85FPlatform"),
    "arty-a7-35": ("amaranth_boards.arty_a7", "ArtyA7_35Platform"),
}


def get_platform(board: str):
    """Return an instance of the amaranth-boards platform for an accelgen board name.

    Raises
    ------
    ValueError
        For an unknown board, listing the known ones.
    """
    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, got {board!r}")
    module, cls = BOARDS[board]
    return getattr(importlib.import_module(module), cls)()
