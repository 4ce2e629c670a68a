"""The whole accelerator: parameters, memory layouts, the ISA and the bit-exact machine model.

Architecture (what the RTL is built to)
---------------------------------------
A sequencer fetches 128-bit instructions from a program memory of ``max_program`` words and
issues them **in program order** to three engines: a *load* engine (``DMA_LOAD``), a *store*
engine (``DMA_STORE``) and the *compute* engine (``GEMV``, ``EW``, ``NL``, ``SOFTMAX``); each
engine runs one instruction at a time. With ``decoupled=True`` the engines run concurrently and
a **hardware interlock** (a scoreboard) keeps the program's sequential meaning.

Dependency rule (decoupled mode). Every instruction has the line ranges it reads and writes in
the scratchpad and in DRAM (:func:`access`; a range is ``[first, last]``, the whole span of a
strided or broadcast operand). An instruction waits at issue, and so do all the instructions
after it, while

- its engine is busy, or
- an issued, unfinished instruction (on another engine) *writes* a range it reads or writes
  (RAW, WAW), or *reads* a range it writes (WAR), in the same memory (:func:`conflicts`);

``HALT`` waits for every engine to finish. An instruction is finished when its last write has
landed (a DMA when its last beat is accepted or written). So **every program has sequential
semantics**: it computes exactly what executing the instructions one by one computes, whatever
its dependencies; there is no program whose result depends on timing, and the compiler needs no
fences. The machine model :class:`Machine` executes one instruction at a time;
:mod:`golden.accelerator_cycles` models when each one runs. ``decoupled=False`` is the serial
machine: an instruction is fetched after the previous one has finished.

Memory map. The scratchpad (``depth`` lines) and DRAM (``ext_lines`` lines at AXI address 0,
line ``n`` at byte ``n * line_bytes``) are separate address spaces, both in lines; only the DMA
instructions move data between them. Programs place weights, inputs and outputs in DRAM
(``gen.compiler.Program.segments``); the compiler's scratchpad plan holds resident tensors from
line 0 up and the streaming regions (ping-pong weight tiles, token blocks) from ``depth`` down.

Memory. One data scratchpad of ``depth`` *lines*; a line holds ``L = rows * cols`` signed
16-bit elements, physically ``rows`` banks of ``cols`` elements read at the same address
(element ``e`` of a line sits in bank ``e // cols``, column ``e % cols``). The compute engine
has two read ports, each moving a whole line per cycle, and the store engine a read port of its
own (the read ports are replicas); the compute and load engines share one write port, compute
first (a load's beat waits while compute writes: timing only, see
:mod:`golden.accelerator_cycles`); writes have per-element enables. All banks
see the same address, so there are no bank conflicts (unlike the word-interleaved
:mod:`golden.memory.scratchpad`). External memory (DRAM) is an array of lines too, addressed in
lines, and is reached only by the DMA instructions (:mod:`golden.memory.dma` moves the bytes, a
line being ``max(1, line_bits / 512)`` AXI beats). The scratchpad resets to zeros.

Layouts (:func:`tile_matrix`, :func:`pack_vector`).

- *Dense vector*: element ``k`` at line ``base + k // L``, element ``k % L``.
- *Tile matrix* ``(M, K)``: ``R x C`` tiles, one tile per line, row-block major: tile
  ``(rb, kc)`` is line ``base + rb * ceil(K / C) + kc`` and holds ``W[rb*R + r, kc*C + c]`` at
  element ``r * C + c`` (bank ``r``), zero padded.

Datapath. Operands stream from the scratchpad into the PE array (:mod:`golden.pe_array`),
whose results go through the *requantizer* (:func:`requantize`: arithmetic shift right by the
instruction's ``shift`` with the PE rounding, then saturation to int16) to the write port.
Nonlinear instructions stream lines through a nonlinear unit (:mod:`golden.nonlinear`) and
write its outputs unchanged: **there is no format conversion on the nonlinear path**. The
compiler picks the formats instead: the instruction producing a unit's input shifts it into the
unit's input format, and the consumers of a unit's output know its output format (see the
``*_config`` properties of :class:`AcceleratorConfig`: exp Q5.10 -> UQ1.14, SiLU and GELU Q5.10
-> Q5.10, softmax Q6.9 -> UQ0.15, LayerNorm any int16 format (it is scale invariant) -> Q5.10;
the unsigned outputs are one bit narrower than the unit defaults so that they fit a signed int16
element).

Instructions (field layout in :data:`FIELDS`; unlisted bits are reserved and ignored).

==========  ====================================================================================
DMA_LOAD    ``lines`` lines from DRAM line ``ext`` to scratchpad line ``line``
DMA_STORE   ``lines`` lines from scratchpad line ``line`` to DRAM line ``ext``
GEMV        ``y = requantize(W @ x, shift)``: ``W`` the ``(m, k)`` tile matrix at line ``w``,
            ``x`` the dense vector at line ``x``. For each row block and each of the
            ``ceil(k / C)`` chunks, port 0 reads the tile, port 1 the line holding the chunk
            (``C`` elements) which is broadcast to every row; the PE array runs ``MUL`` in
            ``LINEAR`` mode, ``last`` on the final chunk. The ``R`` results of a row block are
            written (rows ``>= m`` are not): ``ylayout = DENSE``: row ``i`` to element
            ``ycol * R + i`` of the dense vector at line ``y`` (``ycol``, below ``C``, is a
            row-block offset: a tile of a taller matrix writes its part of ``y``);
            ``ylayout = COLUMN``: as column ``j`` of a tile matrix, row block ``rb`` going
            to line ``y + rb * ystride``, element ``r * C + ycol`` (one element per bank; the
            compiler passes ``y = base + j // C``, ``ycol = j % C``, ``ystride`` = tiles per
            row block).
EW          ``dst[i] = requantize(PE op(a_i, b_i, c_i), shift)`` for lines ``i < lines``, the PE
            array in ``ELEMENTWISE`` mode. The lines form a tile matrix with ``tcols`` tiles per
            row block (``rb = i // tcols``, ``cb = i % tcols``); each operand has a mode:
            ``LINE``: line ``base + i``; ``COL``: the dense vector at ``base``, elements
            ``cb*C .. cb*C + C - 1`` broadcast down the rows; ``ROW``: elements
            ``rb*R .. rb*R + R - 1`` of the dense vector at ``base``, element ``r`` across row
            ``r``. ``c`` is read only by ``MADD``. ``lines`` must be a multiple of ``tcols``.
NL          ``dst[i] = unit(src[i])`` for lines ``i < lines``, unit exp, gelu or silu (the units
            have ``nl_lanes`` lanes: a line passes through in ``L / nl_lanes`` cycles); a unit
            left out of ``nl_units`` is ``BAD_FIELD``.
SOFTMAX     the ``n`` elements of the dense vector at ``src`` -> their softmax, written as the
            dense vector at ``dst`` (elements past ``n`` are not written). A batch: ``more``
            further vectors (0: one vector), vector ``j`` read at line ``src + j * sstride``
            and written at line ``dst + j * dstride``; with ``more > 0`` both strides must be
            at least the vector's lines (``ceil(n / L)``: the vectors do not overlap). The
            unit takes vector ``j + 1`` in while it normalizes and writes vector ``j``.
LAYERNORM   the ``n`` elements of the dense vector at ``src`` -> ``(x - mean) / std`` in Q5.10
            (:mod:`golden.nonlinear.layernorm`, no affine, no epsilon), written as the dense
            vector at ``dst`` like ``SOFTMAX``, batches (``more``, ``sstride``, ``dstride``)
            too; ``gamma`` and ``beta`` are ``EW`` ops after it.
HALT        stop; the status reports done.
==========  ====================================================================================

An instruction reads all its operands before it writes (so ``dst`` may equal a ``LINE``
operand's base, or ``src``); operands that partially overlap the destination are not allowed
(the hardware streams them): an operand's line range (:func:`access`) must be disjoint from the
destination's or, except for ``GEMV``, equal to it (:func:`overlaps_destination`). Such an
instruction is not rejected; its result is undefined (the hardware may read a line it has
already written; the golden machine reads everything first). The compilers never emit one.

Errors stop the machine with an error code and the pc
(:class:`ErrorCode`, checked by :func:`check_instruction` in this order): unknown opcode,
zero length, a bad field value, a scratchpad line beyond ``depth``, a DRAM range outside the
external memory, and running off the program (pc at ``max_program`` or past the words given).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import ClassVar

import numpy as np

from .fixed_point import ROUNDING_MODES, int_array, saturate, shift_right
from .memory import dma as dma_model
from .nonlinear.exp import ExpConfig, exp
from .nonlinear.gelu import GELUConfig, gelu
from .nonlinear.layernorm import LayerNormConfig, layernorm
from .nonlinear.silu import SiLUConfig, silu
from .nonlinear.softmax import SoftmaxConfig, softmax
from .params import BlockConfig, param
from .pe import OP_NAMES, Op
from .pe_array import Mode, PEArrayConfig, pe_array

__all__ = [
    "AcceleratorConfig",
    "ELEM_WIDTH",
    "PE_OUT_WIDTH",
    "INSTRUCTION_BITS",
    "Opcode",
    "NLUnit",
    "OperandMode",
    "YLayout",
    "ErrorCode",
    "FIELDS",
    "Instruction",
    "pack",
    "unpack",
    "check_instruction",
    "Access",
    "access",
    "conflicts",
    "overlaps_destination",
    "engine",
    "ew_operands",
    "requantize",
    "vector_lines",
    "tile_lines",
    "pack_vector",
    "unpack_vector",
    "tile_matrix",
    "untile_matrix",
    "MachineStatus",
    "RunStats",
    "Machine",
    "run_golden",
]

#: Width of a scratchpad element and of a PE operand (signed).
ELEM_WIDTH = 16
#: Width of a PE result (the requantizer's input in element-wise mode).
PE_OUT_WIDTH = 32
#: Width of an instruction word.
INSTRUCTION_BITS = 128
#: Widest AXI data bus of :class:`golden.memory.dma.DMAConfig`.
_MAX_DMA_WIDTH = 512


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


@dataclass(frozen=True, kw_only=True)
class AcceleratorConfig(BlockConfig):
    """Parameters of the accelerator (PE array, scratchpad, units, sequencer, cycle model).

    Elements are signed 16-bit (:data:`ELEM_WIDTH`), the PE operand width; PE results are
    32-bit. The nonlinear units use their defaults except where a format must change (see the
    module docstring); their configs are the ``*_config`` properties.

    Parameters
    ----------
    rows, cols : int
        PE array shape ``R x C``, powers of two, ``rows`` 1..64, ``cols`` 2..64, ``R * C``
        (elements per line) at most 256.
    depth : int
        Scratchpad lines, 16..65536.
    max_program : int
        Program memory words, 2..65536.
    max_k : int
        Longest dot product the default accumulator holds exactly, 1..2**24.
    acc_width : int or None
        Accumulator width, 16..64; ``None``: exact for ``max_k`` products.
    tree_levels_per_stage : int
        Adder levels between the reduction trees' pipeline registers, 1..16.
    rounding : str
        Rounding of the PE ``SHR`` op and of the requantizer.
    softmax_max_len : int
        Longest softmax vector, 1..4096.
    layernorm_max_len : int
        Longest LayerNorm vector, 1..4096.
    pe_ops : tuple of str
        The PE ops built into every lane (:class:`golden.pe.Op` names, all by default); ``mul``
        is required (``GEMV`` multiplies on it). An ``EW`` of an op that is not built is
        ``BAD_FIELD``, and the compiler refuses to emit one. All-MiniLM-L6-v2 uses ``mul``,
        ``add`` and ``madd``; leaving out sub, max, min and the shifts takes their logic out
        of each of the ``rows * cols`` lanes.
    nl_units : tuple of str
        The nonlinear units built for ``NL``, drawn from ``exp``, ``gelu`` and ``silu`` (all by
        default). An ``NL`` of a unit that is not built is ``BAD_FIELD``, and the compiler
        refuses to emit one. A model that needs only some of them (all-MiniLM-L6-v2: GELU)
        leaves the others out, with their multipliers, tables and output multiplexers.
    nl_lanes : int or None
        Lanes of the exp, GELU and SiLU units, a power of two dividing ``rows * cols``; an NL
        instruction takes ``rows * cols / nl_lanes`` cycles per line. ``None``: one lane per
        element of a line. Narrower units save DSPs (each lane is a few multipliers), which is
        what lets an 8x8 array fit an ECP5-85F.
    issue_cycles : int
        Cycle model: fixed cycles to fetch, decode and start an instruction, 0..64.
    pe_latency : int
        Cycle model: register stages of one PE lane (``hw.pe.PE.latency``), 1..8; the PE
        array's and the nonlinear units' latencies follow from it.
    read_latency : int
        Cycle model: scratchpad read latency, 1..4.
    dma_latency : int
        Cycle model: cycles from a DMA instruction's start to its first beat, 0..4096.
    decoupled : bool
        Load, compute and store engines run concurrently under the hardware interlock (the
        module docstring's dependency rule; the default); ``False``: one instruction at a
        time.
    """

    rows: int = param(4, help="PE rows (one reduction tree each; a power of two)", range=(1, 64))
    cols: int = param(8, help="PEs per row (a power of two)", range=(2, 64))
    depth: int = param(4096, help="scratchpad lines of rows*cols int16 elements",
                       range=(16, 65536))
    max_program: int = param(4096, help="program memory words", range=(2, 65536))
    max_k: int = param(4096, help="longest dot product the default accumulator holds exactly",
                       range=(1, 1 << 24))
    acc_width: int | None = param(None, help="accumulator width (derived: exact for max_k)",
                                  range=(16, 64))
    tree_levels_per_stage: int = param(1, help="adder levels between pipeline registers",
                                       range=(1, 16))
    rounding: str = param("half_up", help="rounding of the PE shr op and the requantizer",
                          choices=ROUNDING_MODES)
    softmax_max_len: int = param(1024, help="longest softmax vector", range=(1, 4096))
    layernorm_max_len: int = param(1024, help="longest LayerNorm vector", range=(1, 4096))
    pe_ops: tuple[str, ...] = param(OP_NAMES, help="PE ops built into each lane (mul always: "
                                    "GEMV multiplies; an EW of an op not built is BAD_FIELD)",
                                    choices=OP_NAMES)
    nl_units: tuple[str, ...] = param(("exp", "gelu", "silu"), help="nonlinear units built "
                                      "for NL (an NL of a unit not built is BAD_FIELD)",
                                      choices=("exp", "gelu", "silu"))
    nl_lanes: int | None = param(None, help="lanes of the exp/GELU/SiLU units, a power of two "
                                 "dividing rows*cols (derived: rows*cols, a line per cycle)",
                                 range=(1, 256))
    issue_cycles: int = param(2, help="cycle model: fetch/decode/start cycles per instruction",
                              range=(0, 64))
    pe_latency: int = param(3, help="cycle model: register stages of a PE lane "
                            "(hw.pe.PE.latency)", range=(1, 8))
    read_latency: int = param(1, help="cycle model: scratchpad read latency", range=(1, 4))
    dma_latency: int = param(32, help="cycle model: cycles before a DMA's first beat",
                             range=(0, 4096))
    decoupled: bool = param(True, help="load / compute / store engines overlap under a "
                            "hardware interlock (False: one instruction at a time)")

    elem_width: ClassVar[int] = ELEM_WIDTH

    def _check(self):
        for name in ("rows", "cols"):
            if not _power_of_two(getattr(self, name)):
                raise ValueError(f"{name} must be a power of two, got {getattr(self, name)}")
        if self.line > 256:
            raise ValueError(f"rows * cols must be at most 256 elements per line, got "
                             f"{self.rows} * {self.cols} = {self.line}")
        if self.nl_lanes is not None and (not _power_of_two(self.nl_lanes)
                                          or self.nl_lanes > self.line):
            raise ValueError(f"nl_lanes must be a power of two in 1..{self.line} (rows * cols), "
                             f"got {self.nl_lanes}")
        if "mul" not in self.pe_ops:
            raise ValueError(f"pe_ops must include mul (GEMV multiplies on it), got "
                             f"{self.pe_ops}")
        if len(set(self.nl_units)) != len(self.nl_units):
            raise ValueError(f"nl_units must not repeat a unit, got {self.nl_units}")
        if self.depth * self.dma_beats_per_line > 65536:
            raise ValueError(f"depth must be at most {65536 // self.dma_beats_per_line} with "
                             f"{self.dma_beats_per_line} DMA beats per line, got {self.depth}")
        self.pe_array_config  # noqa: B018 -- validates max_k / acc_width together

    @property
    def line(self) -> int:
        """Elements per line, ``L = rows * cols``."""
        return self.rows * self.cols

    @property
    def line_bits(self) -> int:
        """Bits per line."""
        return self.line * ELEM_WIDTH

    @property
    def nl_unit_lanes(self) -> int:
        """Lanes of the exp, GELU and SiLU units (resolved ``nl_lanes``)."""
        return self.line if self.nl_lanes is None else self.nl_lanes

    @property
    def built_units(self) -> tuple[NLUnit, ...]:
        """The :class:`NLUnit` s of ``nl_units``, in unit-code order."""
        return tuple(u for u in NLUnit if u.name.lower() in self.nl_units)

    @property
    def nl_passes(self) -> int:
        """Cycles an NL instruction spends on a line: ``L / nl_unit_lanes``."""
        return self.line // self.nl_unit_lanes

    @property
    def pe_array_config(self) -> PEArrayConfig:
        """The PE array: int16 operands, 32-bit results, the ``pe_ops``, no backpressure (the
        write port takes every result the cycle it comes)."""
        return PEArrayConfig(rows=self.rows, cols=self.cols, in_width=ELEM_WIDTH, signed=True,
                             out_width=PE_OUT_WIDTH, rounding=self.rounding, ops=self.pe_ops,
                             max_k=self.max_k, acc_width=self.acc_width, backpressure=False,
                             tree_levels_per_stage=self.tree_levels_per_stage)

    @property
    def exp_config(self) -> ExpConfig:
        """Exp unit, ``nl_unit_lanes`` lanes: Q5.10 in, UQ1.14 out (fits int16, fine enough
        for the decays ``exp(delta * A) <= 1`` of a selective scan)."""
        return ExpConfig(in_width=16, in_frac=10, out_width=15, out_frac=14,
                         lanes=self.nl_unit_lanes)

    @property
    def silu_config(self) -> SiLUConfig:
        """SiLU unit (defaults: Q5.10 in and out), ``nl_unit_lanes`` lanes."""
        return SiLUConfig(lanes=self.nl_unit_lanes)

    @property
    def gelu_config(self) -> GELUConfig:
        """GELU unit (defaults: Q5.10 in and out), ``nl_unit_lanes`` lanes."""
        return GELUConfig(lanes=self.nl_unit_lanes)

    @property
    def softmax_config(self) -> SoftmaxConfig:
        """Softmax unit: Q6.9 in (default), UQ0.15 out (fits int16)."""
        return SoftmaxConfig(out_width=15, out_frac=15, max_len=self.softmax_max_len)

    @property
    def layernorm_config(self) -> LayerNormConfig:
        """LayerNorm unit: int16 in, Q5.10 out (defaults); three banks, so the vectors of a
        batch stream in back to back while the previous ones are normalized and output."""
        return LayerNormConfig(max_len=self.layernorm_max_len, banks=3)

    @property
    def dma_config(self) -> dma_model.DMAConfig:
        """The DMA: a line is ``dma_beats_per_line`` beats of an up to 512-bit bus."""
        return dma_model.DMAConfig(data_width=min(self.line_bits, _MAX_DMA_WIDTH),
                                   addr_width=32, local_depth=self.depth * self.dma_beats_per_line)

    @property
    def dma_beats_per_line(self) -> int:
        """AXI beats per line."""
        return max(1, self.line_bits // _MAX_DMA_WIDTH)


# --- layouts -------------------------------------------------------------------------------------


def vector_lines(config: AcceleratorConfig, n: int) -> int:
    """Lines of a dense vector of ``n`` elements."""
    return -(-n // config.line)


def tile_lines(config: AcceleratorConfig, m: int, k: int) -> int:
    """Lines of an ``(m, k)`` tile matrix."""
    return -(-m // config.rows) * -(-k // config.cols)


def pack_vector(config: AcceleratorConfig, v) -> np.ndarray:
    """The lines ``(vector_lines, L)`` of a dense vector (zero padded)."""
    v = np.asarray(v, dtype=np.int64).reshape(-1)
    out = np.zeros(vector_lines(config, len(v)) * config.line, dtype=np.int64)
    out[:len(v)] = v
    return out.reshape(-1, config.line)


def unpack_vector(config: AcceleratorConfig, lines, n: int) -> np.ndarray:
    """The first ``n`` elements of dense-vector lines."""
    return np.asarray(lines, dtype=np.int64).reshape(-1)[:n]


def tile_matrix(config: AcceleratorConfig, w) -> np.ndarray:
    """The lines ``(tile_lines, L)`` of a matrix in the tile layout (zero padded)."""
    w = np.asarray(w, dtype=np.int64)
    if w.ndim != 2:
        raise ValueError(f"a tile matrix must be 2-D, got shape {w.shape}")
    r, c = config.rows, config.cols
    (m, k) = w.shape
    rb, kc = -(-m // r), -(-k // c)
    padded = np.zeros((rb * r, kc * c), dtype=np.int64)
    padded[:m, :k] = w
    return padded.reshape(rb, r, kc, c).transpose(0, 2, 1, 3).reshape(rb * kc, r * c)


def untile_matrix(config: AcceleratorConfig, lines, m: int, k: int) -> np.ndarray:
    """The ``(m, k)`` matrix held by tile-layout lines."""
    r, c = config.rows, config.cols
    rb, kc = -(-m // r), -(-k // c)
    tiles = np.asarray(lines, dtype=np.int64)[:rb * kc].reshape(rb, kc, r, c)
    return tiles.transpose(0, 2, 1, 3).reshape(rb * r, kc * c)[:m, :k]


# --- ISA -----------------------------------------------------------------------------------------


class Opcode(IntEnum):
    """Instruction opcodes (bits 0..3). 0, 8 and 10..15 are illegal: a zeroed word is an
    error."""

    DMA_LOAD = 1
    DMA_STORE = 2
    GEMV = 3
    EW = 4
    NL = 5
    SOFTMAX = 6
    HALT = 7
    LAYERNORM = 9


class NLUnit(IntEnum):
    """The ``unit`` field of ``NL``."""

    EXP = 0
    GELU = 1
    SILU = 2


class OperandMode(IntEnum):
    """How an ``EW`` operand is read (see the module docstring)."""

    LINE = 0
    COL = 1
    ROW = 2


class YLayout(IntEnum):
    """Where ``GEMV`` writes its results."""

    DENSE = 0
    COLUMN = 1


class ErrorCode(IntEnum):
    """Error status codes; ``NONE`` when no error occurred."""

    NONE = 0
    UNKNOWN_OPCODE = 1  # opcode 0, 8 or 10..15
    ZERO_LENGTH = 2     # a count field (lines, m, k, tcols, n) is 0
    BAD_FIELD = 3       # undefined PE op / unit / operand mode, lines % tcols, ycol >= C, n > max
    ADDRESS_RANGE = 4   # a scratchpad line at or beyond depth
    EXT_RANGE = 5       # a DMA beyond the external memory
    PC_RANGE = 6        # pc reached max_program or the end of the program without HALT


_DMA = {"line": (8, 16), "lines": (72, 16), "ext": (88, 32)}
#: SOFTMAX and LAYERNORM: a batch of ``more + 1`` vectors of ``n`` elements, strided in lines.
_VECTOR = {"dst": (8, 16), "src": (24, 16), "sstride": (40, 16), "dstride": (56, 16),
           "n": (72, 16), "more": (88, 16)}

#: Field layout ``name: (lsb, width)`` of every opcode; ``opcode`` is bits 0..3 of all of them.
#: Fields with one meaning share a place: destination 8..23, first source 24..39, count 72..87.
FIELDS: dict[Opcode, dict[str, tuple[int, int]]] = {
    Opcode.DMA_LOAD: _DMA,
    Opcode.DMA_STORE: _DMA,
    Opcode.GEMV: {"y": (8, 16), "w": (24, 16), "x": (40, 16), "ystride": (56, 16),
                  "m": (72, 16), "k": (88, 16), "shift": (104, 6), "ylayout": (110, 1),
                  "ycol": (116, 8)},
    Opcode.EW: {"op": (4, 4), "dst": (8, 16), "a": (24, 16), "b": (40, 16), "c": (56, 16),
                "lines": (72, 16), "tcols": (88, 16), "shift": (104, 6), "amode": (110, 2),
                "bmode": (112, 2), "cmode": (114, 2)},
    Opcode.NL: {"unit": (4, 4), "dst": (8, 16), "src": (24, 16), "lines": (72, 16)},
    Opcode.SOFTMAX: _VECTOR,
    Opcode.LAYERNORM: _VECTOR,
    Opcode.HALT: {},
}
_OPCODE_FIELD = (0, 4)


@dataclass(frozen=True)
class Instruction:
    """A decoded instruction: ``opcode`` (an :class:`Opcode`, or the raw int if unknown) and
    its fields (every field of the opcode, 0 when not given)."""

    opcode: int
    fields: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name):
        try:
            return self.__dict__["fields"][name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def word(self) -> int:
        """The encoded instruction word."""
        return pack(self.opcode, **self.fields)

    def __str__(self):
        name = self.opcode.name if isinstance(self.opcode, Opcode) else f"op{self.opcode}"
        return " ".join([name] + [f"{k}={v}" for k, v in self.fields.items()])


def pack(opcode, **fields) -> int:
    """Encode an instruction word; fields left out are 0.

    Raises
    ------
    ValueError
        For an unknown opcode, a field the opcode does not have, or a value outside the field.
    """
    try:
        opcode = Opcode(opcode)
    except ValueError:
        raise ValueError(f"unknown opcode {opcode!r}; known: "
                         f"{', '.join(o.name for o in Opcode)}") from None
    layout = FIELDS[opcode]
    unknown = sorted(set(fields) - set(layout))
    if unknown:
        raise ValueError(f"{opcode.name} has no field {unknown[0]!r}; fields: "
                         f"{', '.join(layout) or 'none'}")
    word = int(opcode)
    for name, (lsb, width) in layout.items():
        value = fields.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{opcode.name} field {name} must be an integer, got {value!r}")
        if not 0 <= value < 1 << width:
            raise ValueError(f"{opcode.name} field {name} must be in 0..{(1 << width) - 1}, "
                             f"got {value}")
        word |= int(value) << lsb
    return word


def unpack(word: int) -> Instruction:
    """Decode an instruction word (an unknown opcode decodes with no fields)."""
    word = int(word)
    if not 0 <= word < 1 << INSTRUCTION_BITS:
        raise ValueError(f"an instruction word must be in 0..2**{INSTRUCTION_BITS} - 1")
    raw = word & ((1 << _OPCODE_FIELD[1]) - 1)
    try:
        opcode = Opcode(raw)
    except ValueError:
        return Instruction(raw, {})
    return Instruction(opcode, {name: (word >> lsb) & ((1 << width) - 1)
                                for name, (lsb, width) in FIELDS[opcode].items()})


def _uses_c(op: int) -> bool:
    return op == Op.MADD


def ew_operands(ins: Instruction) -> tuple[str, ...]:
    """The operands an ``EW`` instruction reads: ``a``, ``b`` and, for ``MADD``, ``c``."""
    return ("a", "b", "c") if _uses_c(ins.op) else ("a", "b")


def _operand_last_line(config: AcceleratorConfig, base: int, mode: int, lines: int,
                       tcols: int) -> int:
    if mode == OperandMode.LINE:
        return base + lines - 1
    if mode == OperandMode.COL:
        return base + (tcols - 1) * config.cols // config.line
    return base + (lines // tcols - 1) * config.rows // config.line


def _ranges(config: AcceleratorConfig, ins: Instruction) -> list[tuple[str, int, int]]:
    """``(field, first line, last line)`` of every scratchpad range the instruction touches."""
    op, f = ins.opcode, ins.fields
    if op in (Opcode.DMA_LOAD, Opcode.DMA_STORE):
        return [("line", f["line"], f["line"] + f["lines"] - 1)]
    if op == Opcode.GEMV:
        rb, kc = -(-f["m"] // config.rows), -(-f["k"] // config.cols)
        if f["ylayout"] == YLayout.DENSE:
            y_last = f["y"] + (f["ycol"] * config.rows + f["m"] - 1) // config.line
        else:
            y_last = f["y"] + (rb - 1) * f["ystride"]
        return [("w", f["w"], f["w"] + rb * kc - 1),
                ("x", f["x"], f["x"] + (kc - 1) * config.cols // config.line),
                ("y", f["y"], y_last)]
    if op == Opcode.EW:
        out = [("dst", f["dst"], f["dst"] + f["lines"] - 1)]
        for name in ew_operands(ins):
            out.append((name, f[name], _operand_last_line(config, f[name], f[f"{name}mode"],
                                                          f["lines"], f["tcols"])))
        return out
    if op == Opcode.NL:
        return [("src", f["src"], f["src"] + f["lines"] - 1),
                ("dst", f["dst"], f["dst"] + f["lines"] - 1)]
    if op in (Opcode.SOFTMAX, Opcode.LAYERNORM):
        last = (f["n"] - 1) // config.line
        return [("src", f["src"], f["src"] + f["more"] * f["sstride"] + last),
                ("dst", f["dst"], f["dst"] + f["more"] * f["dstride"] + last)]
    return []


@dataclass(frozen=True)
class Access:
    """The line ranges ``(first, last)`` an instruction reads and writes, per memory."""

    spad_reads: tuple[tuple[int, int], ...] = ()
    spad_writes: tuple[tuple[int, int], ...] = ()
    dram_reads: tuple[tuple[int, int], ...] = ()
    dram_writes: tuple[tuple[int, int], ...] = ()


def access(config: AcceleratorConfig, ins: Instruction) -> Access:
    """The scratchpad and DRAM ranges a (legal) instruction reads and writes: what the
    interlock compares (see the module docstring)."""
    op, f = ins.opcode, ins.fields
    if op in (Opcode.DMA_LOAD, Opcode.DMA_STORE):
        spad = ((f["line"], f["line"] + f["lines"] - 1),)
        dram = ((f["ext"], f["ext"] + f["lines"] - 1),)
        if op == Opcode.DMA_LOAD:
            return Access(spad_writes=spad, dram_reads=dram)
        return Access(spad_reads=spad, dram_writes=dram)
    ranges = _ranges(config, ins)
    writes = tuple((a, b) for name, a, b in ranges if name in ("y", "dst"))
    reads = tuple((a, b) for name, a, b in ranges if name not in ("y", "dst"))
    return Access(spad_reads=reads, spad_writes=writes)


def _overlap(xs, ys) -> bool:
    return any(a <= d and c <= b for a, b in xs for c, d in ys)


def conflicts(earlier: Access, later: Access) -> bool:
    """Whether ``later`` must wait for ``earlier`` to finish: RAW, WAR or WAW on a scratchpad
    or DRAM range."""
    return (_overlap(earlier.spad_writes, later.spad_reads + later.spad_writes)
            or _overlap(earlier.spad_reads, later.spad_writes)
            or _overlap(earlier.dram_writes, later.dram_reads + later.dram_writes)
            or _overlap(earlier.dram_reads, later.dram_writes))


def overlaps_destination(config: AcceleratorConfig, ins: Instruction) -> bool:
    """Whether a (legal) instruction breaks the operand rule of the module docstring: a
    scratchpad operand range that overlaps the destination range without being equal to it
    (any overlap for ``GEMV``). The result of such an instruction is undefined."""
    acc = access(config, ins)
    if ins.opcode in (Opcode.DMA_LOAD, Opcode.DMA_STORE) or not acc.spad_writes:
        return False
    (first, last), = acc.spad_writes
    return any(a <= last and first <= b and ((a, b) != (first, last) or ins.opcode == Opcode.GEMV)
               for a, b in acc.spad_reads)


def engine(opcode) -> str | None:
    """The engine an opcode runs on: ``"load"``, ``"store"``, ``"compute"``, or ``None``
    (``HALT``, which waits for all of them)."""
    if opcode == Opcode.DMA_LOAD:
        return "load"
    if opcode == Opcode.DMA_STORE:
        return "store"
    if opcode == Opcode.HALT:
        return None
    return "compute"


_LENGTHS = {Opcode.DMA_LOAD: ("lines",), Opcode.DMA_STORE: ("lines",), Opcode.GEMV: ("m", "k"),
            Opcode.EW: ("lines", "tcols"), Opcode.NL: ("lines",), Opcode.SOFTMAX: ("n",),
            Opcode.LAYERNORM: ("n",)}


def check_instruction(config: AcceleratorConfig, ins: Instruction,
                      ext_lines: int | None = None) -> tuple[ErrorCode, str] | None:
    """Return ``(code, message)`` if the instruction is illegal, else ``None``.

    Checks, in order: opcode, zero lengths, field values, scratchpad ranges and (when
    ``ext_lines``, the DRAM size in lines, is given) the DRAM range of a DMA.
    """
    op, f = ins.opcode, ins.fields
    if not isinstance(op, Opcode):
        return ErrorCode.UNKNOWN_OPCODE, f"unknown opcode {op}"
    for name in _LENGTHS.get(op, ()):
        if f[name] == 0:
            return ErrorCode.ZERO_LENGTH, f"{op.name} {name} is 0"
    bad = None
    if op == Opcode.EW:
        if f["op"] not in {int(o) for o in Op}:
            bad = f"EW op {f['op']} is not a PE op"
        elif f["op"] not in {int(o) for o in config.pe_array_config.op_codes}:
            bad = (f"EW op {Op(f['op']).name.lower()} is not built (pe_ops="
                   f"{', '.join(config.pe_ops)})")
        elif any(f[f"{n}mode"] not in {int(m) for m in OperandMode} for n in ew_operands(ins)):
            bad = "EW operand mode 3 is not defined"
        elif f["lines"] % f["tcols"]:
            bad = f"EW lines={f['lines']} is not a multiple of tcols={f['tcols']}"
    elif op == Opcode.NL and f["unit"] not in {int(u) for u in NLUnit}:
        bad = f"NL unit {f['unit']} is not defined"
    elif op == Opcode.NL and f["unit"] not in {int(u) for u in config.built_units}:
        bad = (f"NL unit {NLUnit(f['unit']).name.lower()} is not built (nl_units="
               f"{', '.join(config.nl_units)})")
    elif op == Opcode.GEMV and f["ycol"] >= config.cols:
        bad = f"GEMV ycol={f['ycol']} must be below cols={config.cols}"
    elif op == Opcode.SOFTMAX and f["n"] > config.softmax_max_len:
        bad = f"SOFTMAX n={f['n']} exceeds softmax_max_len={config.softmax_max_len}"
    elif op == Opcode.LAYERNORM and f["n"] > config.layernorm_max_len:
        bad = f"LAYERNORM n={f['n']} exceeds layernorm_max_len={config.layernorm_max_len}"
    elif op in (Opcode.SOFTMAX, Opcode.LAYERNORM) and f["more"]:
        lines = vector_lines(config, f["n"])
        for name in ("sstride", "dstride"):
            if f[name] < lines:
                bad = (f"{op.name} {name}={f[name]} is below the {lines} lines of a vector "
                       f"(more={f['more']})")
                break
    if bad:
        return ErrorCode.BAD_FIELD, bad
    for name, _, last in _ranges(config, ins):
        if last >= config.depth:
            return (ErrorCode.ADDRESS_RANGE, f"{op.name} {name} reaches line {last}, beyond the "
                    f"{config.depth} scratchpad lines")
    if ext_lines is not None and op in (Opcode.DMA_LOAD, Opcode.DMA_STORE):
        if f["ext"] + f["lines"] > ext_lines:
            last = f["ext"] + f["lines"] - 1
            return (ErrorCode.EXT_RANGE, f"{op.name} DRAM lines {f['ext']}..{last} are outside "
                    f"the {ext_lines} DRAM lines")
    return None


def requantize(config: AcceleratorConfig, values, shift: int) -> np.ndarray:
    """The requantizer: ``values >> shift`` with the PE rounding, saturated to int16."""
    return saturate(shift_right(int_array(values), shift, config.rounding), ELEM_WIDTH, True)


# --- machine -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineStatus:
    """The status register: ``done`` (halted normally), ``error`` with its code and ``pc``."""

    done: bool = False
    error: ErrorCode = ErrorCode.NONE
    pc: int = 0
    message: str = ""

    @property
    def word(self) -> int:
        """Status as the CSR reads it: bit 0 done, bit 1 error, bits 4..7 code, 16..31 pc."""
        return (int(self.done) | int(self.error != ErrorCode.NONE) << 1
                | int(self.error) << 4 | (self.pc & 0xFFFF) << 16)


@dataclass
class RunStats:
    """What a run did: the final status and the executed instructions with their pcs."""

    status: MachineStatus
    trace: list[tuple[int, Instruction]]

    @property
    def executed(self) -> int:
        """Instructions executed (the failing one not included)."""
        return len(self.trace)


class Machine:
    """The accelerator's architectural state and its instruction semantics.

    Parameters
    ----------
    config : AcceleratorConfig
    dram : array_like of int, optional
        External memory, ``(lines, L)`` or flat with a multiple of ``L`` elements, int16 values.

    Attributes
    ----------
    spad : numpy.ndarray of int16, shape ``(depth, L)``
        The scratchpad (reset to zeros).
    dram : numpy.ndarray of int16, shape ``(lines, L)``
    """

    def __init__(self, config: AcceleratorConfig, dram=None):
        self.config = AcceleratorConfig.check_instance(config)
        line = config.line
        self.spad = np.zeros((config.depth, line), dtype="<i2")
        dram = np.asarray([] if dram is None else dram)
        if dram.size == 0:
            dram = np.zeros((0, line), dtype=np.int64)
        if dram.size % line or dram.dtype.kind not in "iu":
            raise ValueError(f"dram must hold integers, a multiple of {line} of them")
        if dram.size and (dram.min() < -(1 << 15) or dram.max() >= 1 << 15):
            raise ValueError("dram values must be int16")
        self.dram = dram.astype("<i2").reshape(-1, line)

    # Operand access ------------------------------------------------------------------------------

    def _tile(self, base: int, mode: int, i: np.ndarray, tcols: int) -> np.ndarray:
        """Operands ``(len(i), R, C)`` for the lines ``i`` of an EW or GEMV stream."""
        cfg = self.config
        r, c, line = cfg.rows, cfg.cols, cfg.line
        if mode == OperandMode.LINE:
            return self.spad[base + i].astype(np.int64).reshape(-1, r, c)
        # A broadcast operand: a run of C (COL) or R (ROW) elements of a dense vector.
        n = c if mode == OperandMode.COL else r
        e = (i % tcols) * c if mode == OperandMode.COL else (i // tcols) * r
        run = self.spad[(base + e // line)[:, None], (e % line)[:, None] + np.arange(n)]
        run = run.astype(np.int64)
        if mode == OperandMode.COL:
            return np.broadcast_to(run[:, None, :], (len(i), r, c))
        return np.broadcast_to(run[:, :, None], (len(i), r, c))

    # Instructions --------------------------------------------------------------------------------

    def execute(self, ins: Instruction) -> tuple[ErrorCode, str] | None:
        """Check and execute one instruction; return the error, or ``None``."""
        error = check_instruction(self.config, ins, ext_lines=len(self.dram))
        if error:
            return error
        handler = {Opcode.DMA_LOAD: self._dma, Opcode.DMA_STORE: self._dma,
                   Opcode.GEMV: self._gemv, Opcode.EW: self._ew, Opcode.NL: self._nl,
                   Opcode.SOFTMAX: self._softmax,
                   Opcode.LAYERNORM: self._layernorm}.get(ins.opcode)
        if handler:
            handler(ins)
        return None

    def _dma(self, ins: Instruction) -> None:
        cfg = self.config
        dma = cfg.dma_config
        beats, beat_bytes = cfg.dma_beats_per_line, dma.beat_bytes
        line_bytes = beats * beat_bytes
        local = self.spad.view(np.uint8).reshape(-1, beat_bytes)
        ext = self.dram.view(np.uint8).reshape(-1)
        failed = dma_model.execute(dma, ext, local, write=int(ins.opcode == Opcode.DMA_STORE),
                                   ext_addr=ins.ext * line_bytes, local_addr=ins.line * beats,
                                   length=ins.lines * line_bytes)
        assert not failed, "check_instruction admitted a command the DMA rejects"

    def _gemv(self, ins: Instruction) -> None:
        cfg = self.config
        r, c, line = cfg.rows, cfg.cols, cfg.line
        rb, kc = -(-ins.m // r), -(-ins.k // c)
        t = np.arange(rb * kc)
        a = self._tile(ins.w, OperandMode.LINE, t, kc)
        b = self._tile(ins.x, OperandMode.COL, t, kc)  # chunk kc of x on every row
        last = (t % kc) == kc - 1
        outputs, _ = pe_array(cfg.pe_array_config, int(Op.MUL), int(Mode.LINEAR), last, a, b,
                              np.zeros_like(a))
        y = requantize(cfg, outputs["acc"], ins.shift).reshape(-1)[:ins.m]  # (rb * R,) -> m
        m = np.arange(ins.m)
        if ins.ylayout == YLayout.DENSE:
            e = ins.ycol * r + m
            self.spad[ins.y + e // line, e % line] = y
        else:
            self.spad[ins.y + (m // r) * ins.ystride, (m % r) * c + ins.ycol] = y

    def _ew(self, ins: Instruction) -> None:
        cfg = self.config
        i = np.arange(ins.lines)
        operands = {name: self._tile(ins.fields[name], ins.fields[f"{name}mode"], i, ins.tcols)
                    for name in ew_operands(ins)}
        zeros = np.zeros((ins.lines, cfg.rows, cfg.cols), dtype=np.int64)
        outputs, _ = pe_array(cfg.pe_array_config, ins.op, int(Mode.ELEMENTWISE), 1,
                              operands["a"], operands["b"], operands.get("c", zeros))
        result = requantize(cfg, outputs["elem"], ins.shift)
        self.spad[ins.dst:ins.dst + ins.lines] = result.reshape(ins.lines, cfg.line)

    def _nl(self, ins: Instruction) -> None:
        cfg = self.config
        x = self.spad[ins.src:ins.src + ins.lines].astype(np.int64)
        unit = NLUnit(ins.unit)
        if unit == NLUnit.EXP:
            y = exp(cfg.exp_config, x)
        elif unit == NLUnit.GELU:
            y = gelu(cfg.gelu_config, x)
        else:
            y = silu(cfg.silu_config, x)
        self.spad[ins.dst:ins.dst + ins.lines] = y

    def _vectors(self, ins: Instruction, unit) -> None:
        """SOFTMAX / LAYERNORM: ``unit(x, last)`` of each vector of the batch (all read
        first, then written)."""
        line, n, flat = self.config.line, ins.n, self.spad.reshape(-1)
        rows = ins.more + 1
        starts = [(ins.src + j * ins.sstride) * line for j in range(rows)]
        x = np.concatenate([flat[s:s + n] for s in starts]).astype(np.int64)
        last = np.zeros(rows * n, dtype=np.int64)
        last[n - 1::n] = 1
        y = unit(x, last)
        for j in range(rows):
            start = (ins.dst + j * ins.dstride) * line
            flat[start:start + n] = y[j * n:(j + 1) * n]

    def _softmax(self, ins: Instruction) -> None:
        cfg = self.config.softmax_config
        self._vectors(ins, lambda x, last: softmax(cfg, x, last)["p"])

    def _layernorm(self, ins: Instruction) -> None:
        cfg = self.config.layernorm_config
        self._vectors(ins, lambda x, last: layernorm(cfg, x, last)["y"])

    # Programs ------------------------------------------------------------------------------------

    def run(self, program) -> RunStats:
        """Execute ``program`` (words or :class:`Instruction`) from pc 0 until HALT or an error."""
        words = [p.word if isinstance(p, Instruction) else int(p) for p in program]
        trace = []
        pc = 0
        while True:
            if pc >= min(len(words), self.config.max_program):
                return RunStats(MachineStatus(error=ErrorCode.PC_RANGE, pc=pc,
                                              message=f"pc {pc} is past the program "
                                              f"({len(words)} words, max_program "
                                              f"{self.config.max_program})"), trace)
            ins = unpack(words[pc])
            error = self.execute(ins)
            if error:
                return RunStats(MachineStatus(error=error[0], pc=pc, message=error[1]), trace)
            trace.append((pc, ins))
            if ins.opcode == Opcode.HALT:
                return RunStats(MachineStatus(done=True, pc=pc), trace)
            pc += 1


def run_golden(config: AcceleratorConfig, program, dram) -> tuple[np.ndarray, RunStats]:
    """Run a program on a fresh machine (scratchpad zeroed) with external memory ``dram``.

    Returns
    -------
    dram_after : numpy.ndarray of int64, shape ``(lines, L)``
    stats : RunStats
        Final status (done, or the error code and pc) and the executed instructions; their
        cycles are ``golden.accelerator_cycles.program_cycles(config, [i for _, i in
        stats.trace])``.
    """
    machine = Machine(config, dram)
    stats = machine.run(program)
    return machine.dram.astype(np.int64), stats

