"""Programs for the accelerator: the instruction list with its phases, the DRAM image's
layout, and the builder that allocates scratchpad and DRAM and emits instructions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from golden.accelerator import (
    AcceleratorConfig,
    Instruction,
    NLUnit,
    Opcode,
    OperandMode,
    YLayout,
    check_instruction,
    pack,
    pack_vector,
    tile_matrix,
    unpack,
    unpack_vector,
)
from golden.fixed_point import QFormat
from golden.pe import Op

__all__ = ["Segment", "Program"]


# --- programs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A region of the DRAM image: ``lines`` lines from line ``ext``, in layout ``rows`` (one
    dense vector per row of a matrix ``shape``, each starting on a line), ``tiles`` (a tile
    matrix ``shape``) or ``data`` (weights and zeros, filled by the compiler)."""

    name: str
    ext: int
    lines: int
    layout: str = "data"
    shape: tuple = ()


@dataclass
class Program:
    """A compiled layer: instructions with phase labels, and the DRAM image layout.

    Attributes
    ----------
    config : AcceleratorConfig
    kind : str
        ``"mamba"`` or ``"attention"``.
    dims : MambaDims or AttentionDims
    instructions : list of Instruction
    phases : list of str
        Phase label of each instruction (for the cycle and utilization report).
    image : numpy.ndarray, shape ``(dram_lines, L)``
        DRAM contents before the input is placed: weights and zeros, 0 elsewhere.
    segments : dict of Segment
        ``weights``, ``zeros``, the input(s) (``x``; attention also ``x_tiles``) and ``y``.
    fracs : dict of int
        The resolved fraction bits of every tensor (``act_x`` the input, ``act_out`` /
        ``act_y`` the output).
    spad_lines : int
        Scratchpad lines the program uses.
    """

    config: AcceleratorConfig
    kind: str
    dims: object
    instructions: list[Instruction]
    phases: list[str]
    image: np.ndarray
    segments: dict[str, Segment]
    fracs: dict[str, int]
    spad_lines: int

    @property
    def words(self) -> list[int]:
        """The encoded program."""
        return [ins.word for ins in self.instructions]

    @property
    def input_format(self) -> QFormat:
        return QFormat(16, self.fracs["act_x"])

    @property
    def output_format(self) -> QFormat:
        return QFormat(16, self.fracs["act_out" if self.kind == "mamba" else "act_y"])

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.dims.seq_len, self.dims.d_model)

    def dram(self, x_q) -> np.ndarray:
        """The DRAM image with the raw int16 input ``x_q`` ``(seq_len, d_model)`` placed."""
        x_q = np.asarray(x_q, dtype=np.int64)
        if x_q.shape != self.input_shape:
            raise ValueError(f"shape mismatch: input has shape {x_q.shape}, expected "
                             f"(seq_len, d_model) = {self.input_shape}")
        image = self.image.copy()
        for seg in self.segments.values():
            if seg.name == "x":
                image[seg.ext:seg.ext + seg.lines] = np.concatenate(
                    [pack_vector(self.config, row) for row in x_q])
            elif seg.name == "x_tiles":
                image[seg.ext:seg.ext + seg.lines] = tile_matrix(self.config, x_q)
        return image

    def output(self, dram) -> np.ndarray:
        """The raw output ``(seq_len, d_model)`` read from the DRAM after a run."""
        seg = self.segments["y"]
        rows = np.asarray(dram)[seg.ext:seg.ext + seg.lines]
        per_row = seg.lines // seg.shape[0]
        return np.stack([unpack_vector(self.config, rows[t * per_row:(t + 1) * per_row],
                                       seg.shape[1]) for t in range(seg.shape[0])])

    def listing(self) -> str:
        """Disassembly: pc, phase and instruction, one per line."""
        return "\n".join(f"{pc:5d}  {phase:<10} {ins}"
                         for pc, (ins, phase) in enumerate(zip(self.instructions, self.phases)))


class _Builder:
    """Scratchpad and DRAM allocation, instruction emission and the final checks."""

    def __init__(self, config: AcceleratorConfig, kind: str, dims):
        self.config = config
        self.kind, self.dims = kind, dims
        self.instructions: list[Instruction] = []
        self.phases: list[str] = []
        self.phase = "load"
        self.spad: dict[str, tuple[int, int]] = {}
        self.spad_next = 0
        self.dram_blocks: list[np.ndarray] = []
        self.segments: dict[str, Segment] = {}
        self.dram_next = 0

    def alloc(self, name: str, lines: int) -> int:
        """Reserve ``lines`` scratchpad lines for buffer ``name``; return the first line."""
        base = self.spad_next
        self.spad[name] = (base, lines)
        self.spad_next += lines
        return base

    def segment(self, name: str, lines: int, layout: str = "data", shape: tuple = (),
                data: np.ndarray | None = None) -> Segment:
        seg = Segment(name, self.dram_next, lines, layout, shape)
        block = np.zeros((lines, self.config.line), dtype=np.int64)
        if data is not None:
            block[:len(data)] = data
        self.dram_blocks.append(block)
        self.segments[name] = seg
        self.dram_next += lines
        return seg

    def emit(self, opcode: Opcode, **fields) -> None:
        self.instructions.append(unpack(pack(opcode, **fields)))
        self.phases.append(self.phase)

    def dma(self, opcode: Opcode, line: int, ext: int, lines: int) -> None:
        limit = (1 << 16) - 1  # the lines field
        for start in range(0, lines, limit):
            self.emit(opcode, line=line + start, ext=ext + start,
                      lines=min(limit, lines - start))

    def gemv(self, y: int, w: int, x: int, m: int, k: int, shift: int, *, column: int = -1,
             ystride: int = 0) -> None:
        """``y = W x``; with ``column >= 0``, ``y`` is column ``column`` of the tile matrix at
        ``y`` with ``ystride`` tiles per row block."""
        if column < 0:
            self.emit(Opcode.GEMV, y=y, w=w, x=x, m=m, k=k, shift=shift)
        else:
            c = self.config.cols
            self.emit(Opcode.GEMV, y=y + column // c, w=w, x=x, m=m, k=k, shift=shift,
                      ylayout=int(YLayout.COLUMN), ycol=column % c, ystride=ystride)

    def ew(self, op: Op, dst: int, a: int, b: int, lines: int, shift: int = 0, *,
           tcols: int = 1, amode=OperandMode.LINE, bmode=OperandMode.LINE) -> None:
        self.emit(Opcode.EW, op=int(op), dst=dst, a=a, b=b, lines=lines, tcols=tcols,
                  shift=shift, amode=int(amode), bmode=int(bmode))

    def nl(self, unit: NLUnit, dst: int, src: int, lines: int) -> None:
        self.emit(Opcode.NL, unit=int(unit), dst=dst, src=src, lines=lines)

    def finish(self, fracs: dict[str, int]) -> Program:
        cfg = self.config
        self.phase = "halt"
        self.emit(Opcode.HALT)
        if self.spad_next > cfg.depth:
            biggest = sorted(self.spad.items(), key=lambda kv: -kv[1][1])[:3]
            raise ValueError(f"buffer overflow: the {self.kind} layer {self.dims} needs "
                             f"{self.spad_next} scratchpad lines, more than depth={cfg.depth} "
                             f"(largest buffers: "
                             f"{', '.join(f'{n} {s[1]}' for n, s in biggest)})")
        if len(self.instructions) > cfg.max_program:
            raise ValueError(f"program too long: the {self.kind} layer {self.dims} needs "
                             f"{len(self.instructions)} instructions, more than "
                             f"max_program={cfg.max_program}")
        for pc, ins in enumerate(self.instructions):
            error = check_instruction(cfg, ins, ext_lines=self.dram_next)
            if error:  # a compiler bug: every layer that fits must compile to legal code
                raise ValueError(f"illegal instruction at pc {pc} ({ins}): {error[1]}")
        image = np.concatenate(self.dram_blocks) if self.dram_blocks else np.zeros(
            (0, cfg.line), dtype=np.int64)
        return Program(cfg, self.kind, self.dims, self.instructions, self.phases, image,
                       self.segments, fracs, self.spad_next)
