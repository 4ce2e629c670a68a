"""The accelerator top's register map and host protocol, derived from the
:class:`~golden.accelerator.AcceleratorConfig` (the hardware is ``hw.accelerator_top``).

The top is the accelerator core behind a control/status register block: an AXI4-Lite slave
(32-bit data, 12-bit addresses: a 4 KiB window) for the host, and the core's AXI4 master to
DRAM passed through. A host (software on a SoC, or the verilator backend of
``gen.runtime``) runs a program like this:

1. Check ``id`` (:data:`~golden.host_top.MAGIC`) and ``design`` (:func:`design_fingerprint`:
   the CRC-32 of the config's hardware parameters) against the config it compiled for.
2. Put the DRAM image (weights, inputs) in memory; the core reaches it with its DMA
   instructions, DRAM line ``n`` being at AXI byte address ``n * line_bytes``.
3. Load the program, one 128-bit word at a time (:func:`program_writes`): ``prog_addr`` = the
   word's index, ``prog_data0`` .. ``prog_data3`` = its 32-bit parts, least significant first,
   then a rising edge of ``prog_ctrl.write`` (write 1, then 0) stores the word. Words written
   while the core is busy are dropped.
4. Write ``prog_len`` (words the sequencer may run) and ``ext_lines`` (DRAM size in lines, for
   the DMA range check), then a rising edge of ``ctrl.start`` (write 1, then 0) starts the
   program at pc 0.
5. Poll ``status`` until ``done`` or ``error`` is set (:func:`decode_status`; a start clears
   both before the host's next read can complete), then read ``cycles``: cycles from the start
   to the HALT or the error, counted by the core.

``status`` is :attr:`golden.accelerator.MachineStatus.word` plus ``busy`` in bit 2: bit 0
``done``, bit 1 ``error``, bits 4..7 the :class:`~golden.accelerator.ErrorCode`, bits 16..31
the pc of the HALT or of the failing instruction (modulo 2**16: only a program filling a
65536-word memory can run to pc 65536).

Identity registers (``ro``, constants): ``id``, ``design`` and one ``p_<name>`` per integer
parameter the hardware is built from. The cycle model's ``dma_latency`` describes the memory
system, not the accelerator, so it is in neither (:data:`MODEL_PARAMETERS`): configs that
differ only there describe the same hardware, and build the same Verilog.
"""

from __future__ import annotations

from .accelerator import INSTRUCTION_BITS, AcceleratorConfig, ErrorCode, MachineStatus
from .host_top import MAGIC, design_id, parameter_registers
from .memory.csr import Field, Register, RegisterMap

__all__ = ["GENERATOR", "MODEL_PARAMETERS", "ADDR_WIDTH", "DATA_WIDTH", "PROG_DATA_REGISTERS",
           "design_fingerprint", "identity_registers", "accelerator_regmap", "program_writes",
           "decode_status"]

#: The generator's name (in the registry and in the ``design`` fingerprint).
GENERATOR = "accelerator"
#: Config fields only the cycle model reads: not part of the hardware's identity.
MODEL_PARAMETERS = frozenset({"dma_latency"})
#: The AXI4-Lite port: 32-bit registers in a 4 KiB window.
ADDR_WIDTH, DATA_WIDTH = 12, 32
#: 32-bit data registers of the program-load window (one instruction word).
PROG_DATA_REGISTERS = INSTRUCTION_BITS // DATA_WIDTH


def design_fingerprint(config: AcceleratorConfig) -> int:
    """The ``design`` register: CRC-32 of the generator name and the hardware parameters."""
    return design_id(GENERATOR, AcceleratorConfig.check_instance(config), MODEL_PARAMETERS)


def identity_registers(config: AcceleratorConfig) -> dict[str, int]:
    """The constant registers by name: ``id``, ``design`` and the ``p_<name>`` parameters."""
    return {"id": MAGIC, "design": design_fingerprint(config),
            **parameter_registers(config, MODEL_PARAMETERS)}


def accelerator_regmap(config: AcceleratorConfig) -> RegisterMap:
    """The top's register map for ``config`` (see the module docstring for the protocol)."""
    cfg = AcceleratorConfig.check_instance(config)

    def ro(name: str, width: int = 32, description: str = "") -> Register:
        return Register(name, [Field("value", width, "ro", description=description)],
                        description=description)

    def rw(name: str, width: int, description: str) -> Register:
        return Register(name, [Field("value", width, "rw", description=description)],
                        description=description)

    registers = [
        ro("id", description="magic number 'ACCG'"),
        ro("design", description="CRC-32 of the accelerator's hardware parameters"),
        Register("ctrl", [Field("start", 1, "rw", description="a rising edge starts the "
                                "program at pc 0 (write 1, then 0)")], "run control"),
        Register("status", [
            Field("done", 1, "ro", description="the last run reached HALT"),
            Field("error", 1, "ro", description="the last run stopped on an error"),
            Field("busy", 1, "ro", description="a program is running"),
            Field("code", 4, "ro", offset=4, description="error code (golden.accelerator."
                  "ErrorCode), 0 without an error"),
            Field("pc", 16, "ro", offset=16, description="pc of the HALT or of the failing "
                  "instruction"),
        ], "machine status (golden.accelerator.MachineStatus.word, plus busy)"),
        ro("cycles", description="cycles from the start to the HALT or the error"),
        rw("prog_len", cfg.max_program.bit_length(), "program words the sequencer may run "
           "(running past them is a PC_RANGE error)"),
        rw("ext_lines", 32, "DRAM size in lines, for the DMA range check"),
        rw("prog_addr", max(1, (cfg.max_program - 1).bit_length()),
           "program word that a prog_ctrl.write edge stores"),
        *(rw(f"prog_data{k}", DATA_WIDTH, f"bits {DATA_WIDTH * (k + 1) - 1}..{DATA_WIDTH * k} "
             f"of the program word") for k in range(PROG_DATA_REGISTERS)),
        Register("prog_ctrl", [Field("write", 1, "rw", description="a rising edge stores "
                                     "prog_data0..3 at prog_addr (write 1, then 0)")],
                 "program-load strobe"),
        *(ro(name, description=f"parameter {name[2:]}")
          for name in parameter_registers(cfg, MODEL_PARAMETERS)),
    ]
    return RegisterMap("accelerator_csr", registers, data_width=DATA_WIDTH,
                       addr_width=ADDR_WIDTH,
                       description=f"accelerator {cfg.rows}x{cfg.cols}, {cfg.depth} scratchpad "
                       f"lines, {cfg.max_program} program words")


def program_writes(regmap: RegisterMap, words, first: int = 0) -> list[tuple[int, int]]:
    """The register writes ``(byte address, value)`` that load ``words`` from program word
    ``first`` on: per word ``prog_addr``, ``prog_data0..3``, ``prog_ctrl`` 1 then 0."""
    addr = regmap.register("prog_addr").address
    data = [regmap.register(f"prog_data{k}").address for k in range(PROG_DATA_REGISTERS)]
    strobe = regmap.register("prog_ctrl").address
    mask = (1 << DATA_WIDTH) - 1
    writes = []
    for index, word in enumerate(words, start=first):
        word = int(word)
        if not 0 <= word < 1 << INSTRUCTION_BITS:
            raise ValueError(f"program word {index} must be in 0..2**{INSTRUCTION_BITS} - 1")
        writes.append((addr, index))
        writes += [(data[k], (word >> (DATA_WIDTH * k)) & mask)
                   for k in range(PROG_DATA_REGISTERS)]
        writes += [(strobe, 1), (strobe, 0)]
    return writes


def decode_status(word: int) -> tuple[MachineStatus, bool]:
    """Decode a ``status`` register word: ``(status, busy)``. The run has ended when
    ``status.done`` or ``status.error`` is set."""
    word = int(word)
    error = ErrorCode((word >> 4) & 0xF) if word & 2 else ErrorCode.NONE
    status = MachineStatus(done=bool(word & 1), error=error, pc=(word >> 16) & 0xFFFF,
                           message="reported by the hardware" if word & 2 else "")
    return status, bool(word & 4)
