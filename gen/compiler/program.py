"""Programs for the accelerator: the instruction list with its phases, the DRAM image's
layout, and the builder that allocates scratchpad and DRAM and emits instructions.

Streaming. Weights and activations live in DRAM; :meth:`_Builder.linear` tiles a matrix product
``y_t = W x_t`` (for every token ``t``) into *weight tiles* of whole row blocks (``R`` rows by
all ``k`` columns), streamed through two ping-pong weight regions of ``weight_region`` lines
at the top of the scratchpad: the DMA loads tile ``i + 1`` while the PE array runs tile ``i``,
and each tile, once loaded, serves every token of a *token block* (``token_block`` tokens,
whose inputs and outputs are staged on chip) before the next one replaces it -- the weights
cross the DRAM port once per token block, not once per token (MARCA's intra-operation buffer
management). Outputs leave per token as soon as their last tile is done, so the stores overlap
the next token's work. The hardware interlock orders everything else (the program is
sequential in meaning), so the builder emits no fences.

Scratchpad plan: :meth:`_Builder.alloc` and :meth:`_Builder.resident` take lines from 0 up and
keep them; a :meth:`_Builder.linear` call uses the lines above them, from ``depth`` down, for
its weight regions and token blocks, and leaves them free again for whatever comes later (a
later buffer may reuse them: the interlock makes the reuse safe).
"""

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
    vector_lines,
)
from golden.fixed_point import QFormat
from golden.pe import Op

__all__ = ["Segment", "Program", "Rows", "Matrix", "WeightStream"]


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

    def dram_bytes(self) -> dict[str, int]:
        """Bytes the program's DMA instructions move: ``{"read": .., "write": .., "total": ..}``
        (DRAM to scratchpad, scratchpad to DRAM; a straight-line program runs each once)."""
        line_bytes = self.config.line_bits // 8
        read = sum(i.lines for i in self.instructions if i.opcode == Opcode.DMA_LOAD)
        write = sum(i.lines for i in self.instructions if i.opcode == Opcode.DMA_STORE)
        return {"read": read * line_bytes, "write": write * line_bytes,
                "total": (read + write) * line_bytes}

    def listing(self) -> str:
        """Disassembly: pc, phase and instruction, one per line."""
        return "\n".join(f"{pc:5d}  {phase:<10} {ins}"
                         for pc, (ins, phase) in enumerate(zip(self.instructions, self.phases)))


@dataclass(frozen=True)
class Rows:
    """One vector per token: token ``t`` is the dense vector at line ``base + t * stride`` of
    ``space`` (``"dram"`` or ``"spad"``)."""

    space: str
    base: int
    stride: int

    def __post_init__(self):
        if self.space not in ("dram", "spad"):
            raise ValueError(f"space must be 'dram' or 'spad', got {self.space!r}")
        for name in ("base", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")

    def line(self, t: int) -> int:
        """First line of token ``t``."""
        return self.base + t * self.stride

    def __add__(self, lines: int) -> Rows:
        """The same rows, ``lines`` further on (the second half of a concatenation)."""
        return Rows(self.space, self.base + lines, self.stride)


@dataclass(frozen=True)
class Matrix:
    """An ``(m, k)`` matrix in DRAM as a tile matrix at line ``ext`` (see
    :func:`golden.accelerator.tile_matrix`)."""

    name: str
    ext: int
    m: int
    k: int


class _Builder:
    """Scratchpad and DRAM allocation, instruction emission and the final checks.

    Parameters
    ----------
    config : AcceleratorConfig
    kind : str
    dims : object
        What the program computes (kept in :attr:`Program.dims`).
    weight_region : int, optional
        Lines of each of the two ping-pong weight regions of :meth:`linear` (default: as many
        as the scratchpad has left after the token blocks, up to the whole matrix).
    token_block : int, optional
        Tokens a weight tile serves per load (default: all of them, or as many as fit);
        ``1`` is the unbatched plan.
    """

    def __init__(self, config: AcceleratorConfig, kind: str, dims, *,
                 weight_region: int | None = None, token_block: int | None = None):
        self.config = config
        for name, value in (("weight_region", weight_region), ("token_block", token_block)):
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
        self.weight_region, self.token_block = weight_region, token_block
        self.kind, self.dims = kind, dims
        self.instructions: list[Instruction] = []
        self.phases: list[str] = []
        self.phase = "load"
        self.spad: dict[str, tuple[int, int]] = {}
        self.spad_next = 0
        self.spad_peak = 0  # highest line + 1 of the buffers (alloc)
        self.spad_used = 0  # ... and of the streaming regions (linear)
        self.dram_blocks: list[np.ndarray] = []
        self.segments: dict[str, Segment] = {}
        self.dram_next = 0
        self.cuts: list[tuple[int, list]] = []  # (instruction index, restoring loads)

    def cut(self, restore) -> None:
        """Mark the current point as one where a new program may start (:meth:`split`):
        nothing on chip is live there but what the DMA loads ``restore`` (``(line, ext,
        lines)`` each) put back, which a program starting here runs first."""
        self.cuts.append((len(self.instructions), list(restore)))

    def release(self, mark: int) -> None:
        """Free the scratchpad lines from ``mark`` (an earlier ``spad_next``) up: later buffers
        reuse them (the interlock orders the reuse after the last access)."""
        self.spad_next = mark

    def alloc(self, name: str, lines: int) -> int:
        """Reserve ``lines`` scratchpad lines for buffer ``name``; return the first line."""
        base = self.spad_next
        self.spad[name] = (base, lines)
        self.spad_next += lines
        self.spad_peak = max(self.spad_peak, self.spad_next)
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

    def matrix(self, name: str, w) -> Matrix:
        """Place the int matrix ``w`` ``(m, k)`` in DRAM as a tile matrix (streamed by
        :meth:`linear`)."""
        w = np.asarray(w, dtype=np.int64)
        if w.ndim != 2:
            raise ValueError(f"matrix {name!r} must be 2-D, got shape {w.shape}")
        data = tile_matrix(self.config, w)
        seg = self.segment(name, len(data), "tiles", w.shape, data=data)
        return Matrix(name, seg.ext, *w.shape)

    def resident(self, name: str, data=None, *, lines: int | None = None,
                 layout: str = "vector") -> int:
        """A scratchpad buffer kept for the whole program, loaded from DRAM now: ``data`` a
        vector (``layout="vector"``), a matrix (``"tiles"``) or lines (``"lines"``), or
        ``lines`` lines of zeros.
        Returns its first line."""
        if data is None:
            if lines is None:
                raise ValueError("resident needs data or lines")
            block = None
        else:
            block = {"vector": lambda v: pack_vector(self.config, v),
                     "tiles": lambda v: tile_matrix(self.config, v),
                     "lines": lambda v: np.asarray(v, dtype=np.int64)}[layout](data)
            lines = len(block)
        seg = self.segment(name, lines, layout if data is not None else "data", data=block)
        base = self.alloc(name, lines)
        self.dma(Opcode.DMA_LOAD, base, seg.ext, lines)
        return base

    def rows(self, name: str, tokens: int, n: int, *, space: str = "dram",
             per_token: int | None = None) -> Rows:
        """``tokens`` vectors of ``n`` elements, zeroed, in DRAM (a segment) or on chip;
        ``per_token`` lines each (default ``vector_lines(n)``; more leaves room for a
        second tensor at ``rows + vector_lines(n)``)."""
        stride = per_token or vector_lines(self.config, n)
        if space == "dram":
            return Rows("dram", self.segment(name, tokens * stride, "rows", (tokens, n)).ext,
                        stride)
        return Rows("spad", self.alloc(name, tokens * stride), stride)

    def linear(self, y: Rows, x: Rows, w: Matrix, *, tokens: int, shift: int, bias=None,
               epilogue: NLUnit | None = None, weight_region: int | None = None,
               token_block: int | None = None) -> dict:
        """``y_t = epilogue(requantize(W x_t, shift) + bias)`` for ``t < tokens``, streamed.

        Parameters
        ----------
        y, x : Rows
            Output and input rows, in DRAM or on chip.
        w : Matrix
            ``(m, k)``: ``x_t`` has ``k`` elements, ``y_t`` ``m``.
        bias : int, optional
            Scratchpad line of a resident dense vector of ``m`` elements in ``y``'s format
            (added by ``EW ADD``).
        epilogue : NLUnit, optional
            Nonlinear unit applied to ``y_t`` in place (on chip, before it is stored).
        weight_region, token_block : int, optional
            Override the builder's options for this product.

        Returns
        -------
        dict
            The plan: ``tile_rows``, ``tiles``, ``token_block``, ``weight_region``.

        Raises
        ------
        ValueError
            When one row block of ``W`` (``ceil(k / C)`` lines) is longer than the weight
            region, or the token rows and two weight regions do not fit the scratchpad.
        """
        cfg = self.config
        r, c, line = cfg.rows, cfg.cols, cfg.line
        m, k = w.m, w.k
        kc = -(-k // c)
        vx, vy = vector_lines(cfg, k), vector_lines(cfg, m)
        free = cfg.depth - self.spad_next
        region = weight_region or self.weight_region
        block = min(tokens, token_block or self.token_block or tokens)
        if kc > (region or free // 2):
            limit = region or free // 2
            raise ValueError(f"cannot tile W {w.name} ({m} x {k}): one row block needs "
                             f"k / cols = {kc} lines, more than the {limit}-line weight region "
                             f"(k must be at most {limit * c})")

        def stage(tb):
            return (tb * vx if x.space == "dram" else 0) + (tb * vy if y.space == "dram" else 0)

        if token_block is None and self.token_block is None:
            while block > 1 and free - stage(block) < 2 * kc:
                block = -(-block // 2)
        if free - stage(block) < 2 * kc:
            raise ValueError(f"cannot tile W {w.name} ({m} x {k}) with token_block={block}: "
                             f"{stage(block)} lines of token rows and two {kc}-line weight "
                             f"tiles need more than the {free} free scratchpad lines")
        rbs_all = -(-m // r)
        region = min(region or (free - stage(block)) // 2, (free - stage(block)) // 2,
                     rbs_all * kc)
        tile_rbs = region // kc
        tile_rows = tile_rbs * r
        ntiles = -(-rbs_all // tile_rbs)
        top = cfg.depth - 2 * tile_rbs * kc
        bufs = (top, top + tile_rbs * kc)
        x_stage = top - (block * vx if x.space == "dram" else 0)
        y_stage = x_stage - (block * vy if y.space == "dram" else 0)

        def load_tile(j, i):
            rb0 = i * tile_rbs
            n = min(tile_rbs, rbs_all - rb0) * kc
            self.dma(Opcode.DMA_LOAD, bufs[j % 2], w.ext + rb0 * kc, n)

        self.spad_used = cfg.depth
        blocks = [(t0, min(tokens, t0 + block)) for t0 in range(0, tokens, block)]
        seq = [(b, i) for b in range(len(blocks)) for i in range(ntiles)]
        load_tile(0, 0)
        for j, (bi, i) in enumerate(seq):
            t0, t1 = blocks[bi]
            def xl(t, t0=t0):
                return x_stage + (t - t0) * vx if x.space == "dram" else x.line(t)

            def yl(t, t0=t0):
                return y_stage + (t - t0) * vy if y.space == "dram" else y.line(t)

            if i == 0:
                if x.space == "dram":
                    self._gather(x, t0, t1, x_stage, vx)
                if y.space == "dram" and m % line:  # the lines' padding stays zero
                    self.ew(Op.SUB, y_stage, y_stage, y_stage, (t1 - t0) * vy)
            if j + 1 < len(seq):
                load_tile(j + 1, seq[j + 1][1])
            row0 = i * tile_rows
            rows = min(tile_rows, m - row0)
            for t in range(t0, t1):
                self.emit(Opcode.GEMV, y=yl(t) + row0 // line, w=bufs[j % 2], x=xl(t), m=rows,
                          k=k, shift=shift, ycol=(row0 % line) // r)
            if i == ntiles - 1:
                for t in range(t0, t1):
                    if bias is not None:
                        self.ew(Op.ADD, yl(t), yl(t), bias, vy)
                    if epilogue is not None:
                        self.nl(epilogue, yl(t), yl(t), vy)
                    if y.space == "dram":
                        self.dma(Opcode.DMA_STORE, yl(t), y.line(t), vy)
        return {"tile_rows": tile_rows, "tiles": ntiles, "token_block": block,
                "weight_region": tile_rbs * kc}

    def _gather(self, x: Rows, t0: int, t1: int, dst: int, vx: int) -> None:
        if x.stride == vx:
            self.dma(Opcode.DMA_LOAD, dst, x.line(t0), (t1 - t0) * vx)
        else:
            for t in range(t0, t1):
                self.dma(Opcode.DMA_LOAD, dst + (t - t0) * vx, x.line(t), vx)

    def emit(self, opcode: Opcode, **fields) -> None:
        instruction = unpack(pack(opcode, **fields))
        self._check_built(instruction)
        self.instructions.append(instruction)
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

    def _check_built(self, instruction) -> None:
        """Refuse an instruction of a unit or PE op the accelerator leaves out (``nl_units``,
        ``pe_ops``): it would stop the machine with ``BAD_FIELD``."""
        cfg, f = self.config, instruction.fields
        if instruction.opcode == Opcode.NL and f["unit"] not in cfg.built_units:
            name = NLUnit(f["unit"]).name.lower()
            raise ValueError(f"NL {name} needs the {name} unit, which this accelerator does "
                             f"not build (nl_units={', '.join(cfg.nl_units)})")
        if instruction.opcode == Opcode.EW and f["op"] not in cfg.pe_array_config.op_codes:
            name = Op(f["op"]).name.lower()
            raise ValueError(f"EW {name} needs the PE op {name}, which this accelerator does "
                             f"not build (pe_ops={', '.join(cfg.pe_ops)})")

    def nl(self, unit: NLUnit, dst: int, src: int, lines: int) -> None:
        self.emit(Opcode.NL, unit=int(unit), dst=dst, src=src, lines=lines)

    def split(self, fracs: dict[str, int]) -> list[Program]:
        """Programs of at most ``max_program`` words that run one after the other on the
        same DRAM: the instructions cut at the :meth:`cut` points (greedily as few pieces
        as fit), each piece after the first preceded by its cut's restoring loads and every
        piece ended by ``HALT``. The scratchpad's contents do not carry from one program to
        the next (every piece restores what it reads)."""
        cfg = self.config
        limit = cfg.max_program - 1  # the HALT
        restore = {i: loads for i, loads in self.cuts}
        pieces: list[list[int]] = []
        size = 0
        for b0, b1, pre in self._stretches():
            if pieces and size + (b1 - b0) <= limit:
                size += b1 - b0
                pieces[-1][1] = b1
                continue
            if pre + b1 - b0 > limit:
                raise ValueError(f"program too long: the {self.kind} {self.dims} has a piece of "
                                 f"{pre + b1 - b0 + 1} instructions between two cut points, "
                                 f"more than max_program={cfg.max_program}")
            size = pre + b1 - b0
            pieces.append([b0, b1])
        programs = []
        for b0, b1 in pieces:
            pre = self._loads(restore.get(b0, []))
            ins = pre + self.instructions[b0:b1] + [unpack(pack(Opcode.HALT))]
            phases = ["restore"] * len(pre) + self.phases[b0:b1] + ["halt"]
            programs.append(self._program(ins, phases, fracs))
        return programs

    def _stretches(self) -> list[tuple[int, int, int]]:
        """The instructions between consecutive cut points: ``(first, end, restoring loads)``
        of each."""
        bounds = sorted({0, *(i for i, _ in self.cuts)} - {len(self.instructions)})
        restore = {i: loads for i, loads in self.cuts}
        ends = bounds[1:] + [len(self.instructions)]
        return [(b0, b1, len(self._loads(restore.get(b0, [])))) for b0, b1 in zip(bounds, ends)]

    def longest_piece(self) -> int:
        """Words of the longest program :meth:`split` may have to make: the instructions
        between two cut points, their restoring loads and ``HALT``."""
        return max((pre + b1 - b0 + 1 for b0, b1, pre in self._stretches()), default=1)

    def _loads(self, loads) -> list[Instruction]:
        out = []
        for line, ext, lines in loads:
            limit = (1 << 16) - 1
            for start in range(0, lines, limit):
                out.append(unpack(pack(Opcode.DMA_LOAD, line=line + start, ext=ext + start,
                                       lines=min(limit, lines - start))))
        return out

    def _check_fits(self) -> None:
        """Raise ``ValueError`` if the plan's scratchpad peak exceeds the depth."""
        cfg = self.config
        if self.spad_peak > cfg.depth:
            biggest = sorted(self.spad.items(), key=lambda kv: -kv[1][1])[:3]
            raise ValueError(f"buffer overflow: the {self.kind} layer {self.dims} needs "
                             f"{self.spad_peak} scratchpad lines, more than depth={cfg.depth} "
                             f"(largest buffers: "
                             f"{', '.join(f'{n} {s[1]}' for n, s in biggest)})")

    def _program(self, instructions, phases, fracs) -> Program:
        """The :class:`Program` of ``instructions``, each checked legal."""
        cfg = self.config
        self._check_fits()
        for pc, ins in enumerate(instructions):
            error = check_instruction(cfg, ins, ext_lines=self.dram_next)
            if error:  # a compiler bug: every layer that fits must compile to legal code
                raise ValueError(f"illegal instruction at pc {pc} ({ins}): {error[1]}")
        image = np.concatenate(self.dram_blocks) if self.dram_blocks else np.zeros(
            (0, cfg.line), dtype=np.int64)
        return Program(cfg, self.kind, self.dims, instructions, phases, image, self.segments,
                       fracs, max(self.spad_peak, self.spad_used))

    def finish(self, fracs: dict[str, int]) -> Program:
        cfg = self.config
        self.phase = "halt"
        self.emit(Opcode.HALT)
        self._check_fits()
        if len(self.instructions) > cfg.max_program:
            raise ValueError(f"program too long: the {self.kind} layer {self.dims} needs "
                             f"{len(self.instructions)} instructions, more than "
                             f"max_program={cfg.max_program}")
        return self._program(self.instructions, self.phases, fracs)


class WeightStream:
    """Weight tiles through two ping-pong regions of ``region`` lines at the top of the
    scratchpad, across any number of matrices: while the PE array works on one tile, the DMA
    loads the next one the program will use (not only the next tile of the same matrix, as
    :meth:`_Builder.linear` does), so the loads hide behind the work of the tile before.

    The order of the tiles comes from a first compilation pass (``plan=None`` records it in
    :attr:`used`); the second pass, given that ``plan``, emits the prefetches.

    Parameters
    ----------
    builder : _Builder
    region : int
        Lines of each region.
    plan : list of (int, int), optional
        ``(ext, lines)`` of every tile in the order :meth:`use` will be called.
    """

    def __init__(self, builder: _Builder, region: int, plan=None):
        depth = builder.config.depth
        if region < 1 or 2 * region > depth:
            raise ValueError(f"weight region of {region} lines: two must fit depth={depth}")
        self.b, self.region, self.plan = builder, region, plan
        self.bufs = (depth - 2 * region, depth - region)
        self.used: list[tuple[int, int]] = []
        self.loaded = -1  # index of the last tile whose load was emitted
        builder.spad_used = depth

    def tiles(self, m: Matrix, kc_lines: int | None = None):
        """The tiles of ``m`` (whole row blocks each, as many as a region holds): ``(row0,
        rows, ext, lines)``."""
        r, c = self.b.config.rows, self.b.config.cols
        kc = kc_lines or -(-m.k // c)
        rbs = -(-m.m // r)
        per = self.region // kc
        if per < 1:
            raise ValueError(f"cannot tile W {m.name} ({m.m} x {m.k}): one row block needs "
                             f"{kc} lines, more than the {self.region}-line weight region")
        return [(rb * r, min(m.m - rb * r, per * r), m.ext + rb * kc, min(per, rbs - rb) * kc)
                for rb in range(0, rbs, per)]

    def use(self, ext: int, lines: int) -> int:
        """The scratchpad line of the tile ``(ext, lines)``, loaded (if not yet) and the next
        planned tile's load emitted."""
        if lines > self.region:
            raise ValueError(f"a {lines}-line tile exceeds the {self.region}-line region")
        i = len(self.used)
        self.used.append((ext, lines))
        if self.plan is not None and (i >= len(self.plan) or self.plan[i] != (ext, lines)):
            raise RuntimeError("weight stream: the second pass uses other tiles than the first")
        phase, self.b.phase = self.b.phase, "weights"
        if self.loaded < i:
            self.b.dma(Opcode.DMA_LOAD, self.bufs[i % 2], ext, lines)
            self.loaded = i
        if self.plan is not None and i + 1 < len(self.plan):
            self.b.dma(Opcode.DMA_LOAD, self.bufs[(i + 1) % 2], *self.plan[i + 1])
            self.loaded = i + 1
        self.b.phase = phase
        return self.bufs[i % 2]

    def pending(self) -> list[tuple[int, int, int]]:
        """The load a program starting now must redo: the prefetched, not yet used tile."""
        i = len(self.used)
        if self.loaded == i and self.plan is not None:
            return [(self.bufs[i % 2], *self.plan[i])]
        return []
