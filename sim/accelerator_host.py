"""The host side of the accelerator top's register protocol (``golden.accelerator_top``), over
any AXI4-Lite master: cocotbext-axi's ``AxiLiteMaster`` under cocotb, or
:class:`sim.amaranth_sim.AxiLiteSimMaster` in the Amaranth simulator.

It does what software on a SoC does: check the identity registers, load the program through
the program-load window, set ``prog_len`` and ``ext_lines``, start, poll ``status`` and read
the core's cycle counter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from golden.accelerator import AcceleratorConfig, MachineStatus
from golden.accelerator_top import (
    accelerator_regmap,
    decode_status,
    identity_registers,
    program_writes,
)
from golden.memory.csr import OKAY

__all__ = ["HostProtocolError", "AcceleratorHost", "cocotb_host", "amaranth_host"]


class HostProtocolError(AssertionError):
    """A register access answered other than OKAY, an identity register is wrong, or the
    program did not stop in time."""


class AcceleratorHost:
    """Drives an accelerator top through its registers.

    Parameters
    ----------
    config : AcceleratorConfig
        The config the host expects (its register map and identity).
    write : async callable ``(address, value) -> response``
        One 32-bit register write; returns the AXI response code.
    read : async callable ``address -> (value, response)``
        One 32-bit register read.
    wait : async callable ``cycles -> None``
        Lets ``cycles`` clock cycles pass (between status polls).
    """

    def __init__(self, config: AcceleratorConfig,
                 write: Callable[[int, int], Awaitable[int]],
                 read: Callable[[int], Awaitable[tuple[int, int]]],
                 wait: Callable[[int], Awaitable[None]]):
        self.config = AcceleratorConfig.check_instance(config)
        self.regmap = accelerator_regmap(config)
        self._write, self._read, self._wait = write, read, wait
        self.address = {r.name: r.address for r in self.regmap.registers}

    async def write(self, register: str | int, value: int) -> None:
        """Write a register (by name or byte address); raise unless the answer is OKAY."""
        address = self.address[register] if isinstance(register, str) else register
        response = await self._write(address, value)
        if response != OKAY:
            raise HostProtocolError(f"write of {value:#x} to {address:#x} answered {response}")

    async def read(self, register: str | int) -> int:
        """Read a register (by name or byte address); raise unless the answer is OKAY."""
        address = self.address[register] if isinstance(register, str) else register
        value, response = await self._read(address)
        if response != OKAY:
            raise HostProtocolError(f"read of {address:#x} answered {response}")
        return value

    async def check_identity(self) -> None:
        """Raise unless ``id``, ``design`` and every ``p_<name>`` match the expected config."""
        for name, expected in identity_registers(self.config).items():
            got = await self.read(name)
            if got != expected:
                raise HostProtocolError(f"register {name} reads {got:#x}, expected "
                                        f"{expected:#x}: the hardware is not built from this "
                                        f"config")

    async def load_program(self, words: Sequence[int], first: int = 0) -> None:
        """Store ``words`` in the program memory from word ``first`` on."""
        for address, value in program_writes(self.regmap, words, first):
            await self.write(address, value)

    async def start(self, prog_len: int, ext_lines: int) -> None:
        """Set the program length and the DRAM size (lines), then start at pc 0."""
        await self.write("prog_len", prog_len)
        await self.write("ext_lines", ext_lines)
        await self.write("ctrl", 1)
        await self.write("ctrl", 0)

    async def status(self) -> tuple[MachineStatus, bool]:
        """The decoded ``status`` register: ``(status, busy)``."""
        return decode_status(await self.read("status"))

    async def wait_stopped(self, *, poll_cycles: int = 64,
                           max_cycles: int = 1_000_000) -> MachineStatus:
        """Poll ``status`` every ``poll_cycles`` until the run has ended (done or error)."""
        waited = 0
        while True:
            status, busy = await self.status()
            if not busy and (status.done or status.error):
                return status
            if waited >= max_cycles:
                raise HostProtocolError(f"still running after {max_cycles} cycles (pc "
                                        f"{status.pc})")
            await self._wait(poll_cycles)
            waited += poll_cycles

    async def run(self, words: Sequence[int], *, prog_len: int | None = None,
                  ext_lines: int = 0, poll_cycles: int = 64,
                  max_cycles: int = 1_000_000) -> tuple[MachineStatus, int]:
        """Check the identity, load ``words``, run ``prog_len`` of them (default all) and wait;
        return the final status and the cycles the core counted."""
        await self.check_identity()
        await self.load_program(words)
        await self.start(len(words) if prog_len is None else prog_len, ext_lines)
        status = await self.wait_stopped(poll_cycles=poll_cycles, max_cycles=max_cycles)
        return status, await self.read("cycles")


def cocotb_host(config: AcceleratorConfig, master, clock) -> AcceleratorHost:
    """An :class:`AcceleratorHost` on a cocotbext-axi ``AxiLiteMaster`` (32-bit data)."""
    from cocotb.triggers import ClockCycles

    async def write(address, value):
        return int((await master.write(address, int(value).to_bytes(4, "little"))).resp)

    async def read(address):
        response = await master.read(address, 4)
        return int.from_bytes(response.data, "little"), int(response.resp)

    async def wait(cycles):
        await ClockCycles(clock, cycles)

    return AcceleratorHost(config, write, read, wait)


def amaranth_host(config: AcceleratorConfig, master) -> AcceleratorHost:
    """An :class:`AcceleratorHost` on a :class:`sim.amaranth_sim.AxiLiteSimMaster`."""
    async def write(address, value):
        return await master.write(address, value)

    async def read(address):
        return await master.read(address)

    async def wait(cycles):
        await master.ctx.tick().repeat(cycles)

    return AcceleratorHost(config, write, read, wait)
