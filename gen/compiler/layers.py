"""Layer compilers for the accelerator: float64 references, quantization and programs.

Two layers, each with a float64 reference, a quantizer and a compiler to a :class:`Program`:

*Mamba block* (MARCA), per token ``x_t`` of ``d_model`` elements::

    xi = W_x x_t, z = W_z x_t                     in-projection      (d_inner each)
    u = SiLU(xi), gate = SiLU(z)                   SiLU gating
    delta = exp(W_dt u + b_dt)                     discretization step (d_inner)
    B = W_B u, C = W_C u                           selection          (d_state each)
    h = exp(delta A) * h + (delta u) B^T           selective scan, h is (d_inner, d_state)
    y = h C + D u, out_t = W_out (y * gate)        output and out-projection (d_model)

``delta`` uses ``exp`` where Mamba uses ``softplus``: the accelerator has no softplus unit, and
for Mamba's small steps the two agree closely (``exp(v) / softplus(v) ~ 1 + exp(v) / 2``, under
10 % for steps up to 0.2), a difference the weights absorb. There is no causal convolution
(the issue's block has none).

*Attention head with its MLP* (Edge-MoE), for the ``seq_len x d_model`` input ``X``::

    Q = X W_q^T / sqrt(d_head), K = X W_k^T, V = X W_v^T
    P = softmax(Q K^T) (rows), A = (P V) W_o^T
    Y = GELU(A W_1^T) W_2^T                        (d_mlp hidden units)

no mask, biases, normalization or residuals.

Quantization: every tensor is symmetric int16 with ``frac`` fraction bits. Weights get the
largest ``frac`` their range allows (:func:`frac_for`). Activations feeding or leaving a
nonlinear unit take the unit's fixed format (:class:`~golden.accelerator.AcceleratorConfig`);
the other activations take theirs from a calibration input (the float reference's range with a
2x headroom) or Q5.10 without one. The compiler then lowers a free activation's ``frac`` if its
producer cannot deliver it (an arithmetic right shift cannot add fraction bits) and raises
``ValueError`` if a unit's fixed format cannot be reached.

Accuracy (``tests/test_accelerator.py``), for the ``random_*`` layers with unit-variance inputs
and dims in the issue's ranges (d_model 16..64, d_state 4..16, seq_len 8..32), the error of the
golden machine's output ``y`` against the float64 reference ``y_ref``:

- calibrated on 8 sequences: ``max |y - y_ref| < 0.01`` and ``max |y - y_ref| / RMS(y_ref) <
  3 %`` (measured at most 5.3e-3 and 1.6 % over 24 random layers, RMS(y_ref) 0.1..0.5);
- uncalibrated (Q5.10 activations): ``max |y - y_ref| / RMS(y_ref) < 4 %`` (measured at most
  1.9 % over the same 24 layers).

The relative error is taken against the output's RMS, not element-wise, because outputs near
zero make element-wise ratios meaningless. The error is the activations' int16 rounding and the
units' approximations (exp, SiLU, GELU, softmax); the int16 weights alone contribute ~1e-4.

Programs: weights, the input and a block of zeros are DMA'd in once; the zeros clear every
activation buffer, so the padding of partial tiles and lines stays zero for the whole run (a
GEMV multiplies a matrix's zero padding with whatever its ``x`` line holds past ``k``, and the
selective scan's padding lanes stay 0). Then the instructions of each token, then one DMA of
the outputs. See :func:`compile_mamba_block` and :func:`compile_attention` for the schedules.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields

import numpy as np

from golden.accelerator import (
    AcceleratorConfig,
    NLUnit,
    Opcode,
    OperandMode,
    pack_vector,
    tile_lines,
    vector_lines,
)
from golden.fixed_point import QFormat, dequantize, quantize
from golden.nonlinear.baselines import gelu_exact
from golden.nonlinear.silu import silu_exact
from golden.pe import Op

from .program import Program, Rows, Segment, _Builder

__all__ = [
    "MambaDims",
    "AttentionDims",
    "QuantizedLayer",
    "Segment",
    "Program",
    "MAX_FRAC",
    "DEFAULT_FRAC",
    "frac_for",
    "mamba_shapes",
    "attention_shapes",
    "random_mamba_weights",
    "random_attention_weights",
    "mamba_block_reference",
    "attention_reference",
    "quantize_mamba_weights",
    "quantize_attention_weights",
    "compile_mamba_block",
    "compile_attention",
    "MLPDims",
    "compile_mlp",
]

#: Largest fraction bits given to a tensor (keeps every requantizer shift below 64).
MAX_FRAC = 24
#: Fraction bits of a free activation without calibration (Q5.10, range +-32).
DEFAULT_FRAC = 10
#: Calibrated activations get this factor of headroom over the largest value seen.
HEADROOM = 2.0
_INT16_MAX = (1 << 15) - 1


# --- dimensions ----------------------------------------------------------------------------------


def _check_dims(dims) -> None:
    for f in fields(dims):
        value = getattr(dims, f.name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{f.name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class MambaDims:
    """Dimensions of a Mamba block: ``d_model``, ``d_inner``, ``d_state``, ``seq_len``."""

    d_model: int
    d_inner: int
    d_state: int
    seq_len: int

    def __post_init__(self):
        _check_dims(self)


@dataclass(frozen=True)
class AttentionDims:
    """Dimensions of an attention head with its MLP: ``d_model``, ``d_head``, ``seq_len``,
    ``d_mlp``."""

    d_model: int
    d_head: int
    seq_len: int
    d_mlp: int

    def __post_init__(self):
        _check_dims(self)


def _coerce_dims(cls, dims):
    if isinstance(dims, cls):
        return dims
    if isinstance(dims, dict):
        return cls(**dims)
    if isinstance(dims, (tuple, list)):
        return cls(*dims)
    raise TypeError(f"dims must be a {cls.__name__}, a dict or a tuple, got {dims!r}")


def mamba_shapes(dims: MambaDims) -> dict[str, tuple[int, ...]]:
    """Weight names and shapes of a Mamba block."""
    d, e, n = dims.d_model, dims.d_inner, dims.d_state
    return {"in_x": (e, d), "in_z": (e, d), "dt": (e, e), "dt_bias": (e,), "B": (n, e),
            "C": (n, e), "A": (e, n), "D": (e,), "out": (d, e)}


def attention_shapes(dims: AttentionDims) -> dict[str, tuple[int, ...]]:
    """Weight names and shapes of an attention head with its MLP."""
    d, h, f = dims.d_model, dims.d_head, dims.d_mlp
    return {"q": (h, d), "k": (h, d), "v": (h, d), "o": (d, h), "mlp_up": (f, d),
            "mlp_down": (d, f)}


def _require(weights, names) -> None:
    if not isinstance(weights, dict):
        raise TypeError(f"weights must be a dict of arrays, got {type(weights).__name__}")
    missing = [name for name in names if name not in weights]
    if missing:
        raise ValueError(f"weights lack {', '.join(missing)}; a layer needs {', '.join(names)}")


def _mamba_dims_of(weights) -> MambaDims:
    _require(weights, list(mamba_shapes(MambaDims(1, 1, 1, 1))))
    if np.ndim(weights["A"]) != 2 or np.ndim(weights["in_x"]) != 2:
        raise ValueError("shape mismatch: weights 'A' and 'in_x' must be matrices")
    e, n = np.shape(weights["A"])
    return MambaDims(d_model=np.shape(weights["in_x"])[1], d_inner=e, d_state=n, seq_len=1)


def _attention_dims_of(weights) -> AttentionDims:
    _require(weights, list(attention_shapes(AttentionDims(1, 1, 1, 1))))
    if np.ndim(weights["q"]) != 2 or np.ndim(weights["mlp_up"]) != 2:
        raise ValueError("shape mismatch: weights 'q' and 'mlp_up' must be matrices")
    h, d = np.shape(weights["q"])
    return AttentionDims(d_model=d, d_head=h, seq_len=1, d_mlp=np.shape(weights["mlp_up"])[0])


def _check_shapes(weights, shapes: dict, dims) -> None:
    _require(weights, list(shapes))
    for name, shape in shapes.items():
        got = np.shape(weights[name])
        if got != shape:
            raise ValueError(f"shape mismatch: weight {name!r} has shape {got}, expected {shape} "
                             f"for {dims}")


def _check_input(x, seq_len: int, d_model: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (seq_len, d_model):
        raise ValueError(f"shape mismatch: input has shape {x.shape}, expected "
                         f"(seq_len, d_model) = ({seq_len}, {d_model})")
    return x


# --- random layers -------------------------------------------------------------------------------


def random_mamba_weights(dims, rng) -> dict[str, np.ndarray]:
    """Float weights of a Mamba block, initialized as Mamba is (S4D-real ``A = -(n + 1)``,
    steps ``delta`` in about [0.02, 0.2], projections scaled by ``1 / sqrt(fan_in)``)."""
    dims = _coerce_dims(MambaDims, dims)
    d, e, n = dims.d_model, dims.d_inner, dims.d_state
    return {
        "in_x": rng.normal(0, 1 / math.sqrt(d), (e, d)),
        "in_z": rng.normal(0, 1 / math.sqrt(d), (e, d)),
        "dt": rng.normal(0, 0.3 / math.sqrt(e), (e, e)),
        "dt_bias": np.log(rng.uniform(0.02, 0.2, e)),
        "B": rng.normal(0, 1 / math.sqrt(e), (n, e)),
        "C": rng.normal(0, 1 / math.sqrt(e), (n, e)),
        "A": -np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (e, n)).copy(),
        "D": rng.uniform(0.5, 1.5, e),
        "out": rng.normal(0, 1 / math.sqrt(e), (d, e)),
    }


def random_attention_weights(dims, rng) -> dict[str, np.ndarray]:
    """Float weights of an attention head and MLP, scaled by ``1 / sqrt(fan_in)``."""
    dims = _coerce_dims(AttentionDims, dims)
    d, h, f = dims.d_model, dims.d_head, dims.d_mlp
    return {
        "q": rng.normal(0, 1 / math.sqrt(d), (h, d)),
        "k": rng.normal(0, 1 / math.sqrt(d), (h, d)),
        "v": rng.normal(0, 1 / math.sqrt(d), (h, d)),
        "o": rng.normal(0, 1 / math.sqrt(h), (d, h)),
        "mlp_up": rng.normal(0, 1 / math.sqrt(d), (f, d)),
        "mlp_down": rng.normal(0, 1 / math.sqrt(f), (d, f)),
    }


# --- float64 references --------------------------------------------------------------------------


def mamba_block_reference(weights, x, *, intermediates: bool = False):
    """Float64 Mamba block (see the module docstring) on ``x`` of shape ``(seq_len, d_model)``.

    Returns
    -------
    y : numpy.ndarray, shape ``(seq_len, d_model)``
    values : dict of numpy.ndarray, only with ``intermediates=True``
        Every intermediate tensor of every token (stacked over tokens), for calibration.
    """
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    dims = _mamba_dims_of(w)
    _check_shapes(w, mamba_shapes(dims), dims)
    x = _check_input(x, len(np.atleast_2d(x)), dims.d_model)
    h = np.zeros((dims.d_inner, dims.d_state))
    values: dict[str, list] = {}
    for xt in x:
        xi, z = w["in_x"] @ xt, w["in_z"] @ xt
        u, gate = silu_exact(xi), silu_exact(z)
        pre = w["dt"] @ u + w["dt_bias"]
        delta = np.exp(pre)
        dw = delta * u
        b, c = w["B"] @ u, w["C"] @ u
        da = delta[:, None] * w["A"]
        da_exp = np.exp(da)
        dbx = dw[:, None] * b[None, :]
        h = da_exp * h + dbx
        y_ssm, du = h @ c, w["D"] * u
        y = y_ssm + du
        yg = y * gate
        out = w["out"] @ yg
        step = {"x": xt, "xi": xi, "z": z, "u": u, "gate": gate, "pre": pre, "delta": delta,
                "w": dw, "B": b, "C": c, "dA": da, "dAexp": da_exp, "dBx": dbx, "h": h,
                "y_ssm": y_ssm, "du": du, "y": y, "yg": yg, "out": out}
        for name, value in step.items():
            values.setdefault(name, []).append(value)
    y = np.array(values["out"]).reshape(len(x), dims.d_model)
    if intermediates:
        return y, {k: np.array(v) for k, v in values.items()}
    return y


def _softmax_rows(s: np.ndarray) -> np.ndarray:
    z = np.exp(s - s.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def attention_reference(weights, x, *, intermediates: bool = False):
    """Float64 attention head with its MLP (see the module docstring) on ``x`` of shape
    ``(seq_len, d_model)``; with ``intermediates=True`` also every intermediate tensor."""
    w = {k: np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    dims = _attention_dims_of(w)
    _check_shapes(w, attention_shapes(dims), dims)
    x = _check_input(x, len(np.atleast_2d(x)), dims.d_model)
    q = x @ w["q"].T / math.sqrt(dims.d_head)
    k, v = x @ w["k"].T, x @ w["v"].T
    s = q @ k.T
    p = _softmax_rows(s)
    o = p @ v
    a = o @ w["o"].T
    m = a @ w["mlp_up"].T
    g = gelu_exact(m)
    y = g @ w["mlp_down"].T
    if intermediates:
        return y, {"x": x, "q": q, "k": k, "v": v, "s": s, "p": p, "o": o, "a": a, "m": m,
                   "g": g, "y": y}
    return y


# --- quantization --------------------------------------------------------------------------------


def frac_for(max_abs: float, *, headroom: float = 1.0, name: str = "tensor") -> int:
    """Largest fraction bits (at most :data:`MAX_FRAC`) with which ``headroom * max_abs``
    fits a signed int16; ``ValueError`` if even 0 fraction bits do not fit."""
    top = float(max_abs) * headroom
    if top == 0:
        return MAX_FRAC
    f = math.floor(math.log2(_INT16_MAX / top))
    if f < 0:
        raise ValueError(f"{name} reaches {max_abs:g}, beyond the int16 range")
    return min(f, MAX_FRAC)


@dataclass
class QuantizedLayer:
    """A layer's int16 weights and the fraction bits of every weight and activation.

    Attributes
    ----------
    kind : str
        ``"mamba"`` or ``"attention"``.
    tensors : dict of numpy.ndarray
        Raw int16 weights (int64 arrays), same names and shapes as the float weights.
    fracs : dict of int
        Fraction bits of every weight and activation tensor (activations as requested: the
        compiler may lower a free one, see the module docstring).
    fixed : frozenset of str
        Activations whose format a nonlinear unit fixes.
    """

    kind: str
    tensors: dict[str, np.ndarray]
    fracs: dict[str, int]
    fixed: frozenset = field(default_factory=frozenset)

    def real(self, name: str) -> np.ndarray:
        """Float value of a quantized weight."""
        return dequantize(self.tensors[name], QFormat(16, self.fracs[name]))


def _quantize_weights(weights, forced: dict[str, int]) -> tuple[dict, dict]:
    tensors, fracs = {}, {}
    for name, value in weights.items():
        value = np.asarray(value, dtype=np.float64)
        f = forced.get(name)
        if f is None:
            f = frac_for(float(np.max(np.abs(value))) if value.size else 0.0, name=name)
        tensors[name] = quantize(value, QFormat(16, f))
        fracs[name] = f
    return tensors, fracs


def _calibrate(reference, weights, calibration) -> dict[str, np.ndarray] | None:
    """Largest magnitude of every intermediate over the calibration sequences."""
    if calibration is None:
        return None
    calibration = np.asarray(calibration, dtype=np.float64)
    if calibration.ndim == 2:
        calibration = calibration[None]
    if calibration.ndim != 3 or not calibration.size:
        raise ValueError(f"calibration must be (tokens, d_model) or (sequences, tokens, "
                         f"d_model), got shape {calibration.shape}")
    top: dict[str, float] = {}
    for sequence in calibration:
        _, values = reference(weights, sequence, intermediates=True)
        for name, value in values.items():
            top[name] = max(top.get(name, 0.0), float(np.max(np.abs(value))))
    return top


def _activation_fracs(free, fixed: dict[str, int], values: dict | None) -> dict[str, int]:
    fracs = dict(fixed)
    for name, sources in free.items():
        if values is None:
            fracs[name] = DEFAULT_FRAC
        else:
            top = max(values[s] for s in sources)
            fracs[name] = frac_for(top, headroom=HEADROOM, name=f"activation {name}")
    return fracs


def quantize_mamba_weights(weights, *, calibration=None, config: AcceleratorConfig | None = None
                           ) -> QuantizedLayer:
    """Quantize a Mamba block's float weights and choose its activation formats.

    Parameters
    ----------
    weights : dict of array_like
        Float weights, names and shapes of :func:`mamba_shapes`.
    calibration : array_like, optional
        Representative inputs, one sequence ``(tokens, d_model)`` or several
        ``(sequences, tokens, d_model)`` (as long as the sequences the layer will see: attention
        statistics depend on the length). The free activations' formats come from the float
        reference's range on them with 2x headroom; without calibration they are Q5.10.
    config : AcceleratorConfig, optional
        Gives the nonlinear units' formats (default config if omitted).
    """
    config = AcceleratorConfig.check_instance(config or AcceleratorConfig())
    dims = _mamba_dims_of(weights)
    _check_shapes(weights, mamba_shapes(dims), dims)
    ex, si = config.exp_config, config.silu_config
    fixed = {"xi": si.in_frac, "z": si.in_frac, "u": si.out_frac, "gate": si.out_frac,
             "pre": ex.in_frac, "delta": ex.out_frac, "dA": ex.in_frac, "dAexp": ex.out_frac}
    tensors, fracs = _quantize_weights(weights, {"dt_bias": ex.in_frac})
    values = _calibrate(mamba_block_reference, weights, calibration)
    free = {"x": ("x",), "w": ("w",), "B": ("B",), "C": ("C",), "h": ("h", "dBx"),
            "y": ("y", "y_ssm", "du"), "yg": ("yg",), "out": ("out",)}
    fracs.update({f"act_{k}": v for k, v in _activation_fracs(free, fixed, values).items()})
    return QuantizedLayer("mamba", tensors, fracs, frozenset(f"act_{k}" for k in fixed))


def quantize_attention_weights(weights, *, calibration=None,
                               config: AcceleratorConfig | None = None) -> QuantizedLayer:
    """Quantize an attention head's float weights and choose its activation formats.

    ``q`` is stored pre-scaled by ``1 / sqrt(d_head)``. Parameters as
    :func:`quantize_mamba_weights` (names and shapes of :func:`attention_shapes`).
    """
    config = AcceleratorConfig.check_instance(config or AcceleratorConfig())
    dims = _attention_dims_of(weights)
    _check_shapes(weights, attention_shapes(dims), dims)
    scaled = dict(weights)
    scaled["q"] = np.asarray(weights["q"], dtype=np.float64) / math.sqrt(dims.d_head)
    tensors, fracs = _quantize_weights(scaled, {})
    sm, ge = config.softmax_config, config.gelu_config
    fixed = {"s": sm.in_frac, "p": sm.out_frac, "m": ge.in_frac, "g": ge.out_frac}
    values = _calibrate(attention_reference, weights, calibration)
    free = {name: (name,) for name in ("x", "q", "k", "v", "o", "a", "y")}
    fracs.update({f"act_{k}": v for k, v in _activation_fracs(free, fixed, values).items()})
    return QuantizedLayer("attention", tensors, fracs, frozenset(f"act_{k}" for k in fixed))


class _Formats:
    """Resolves activation formats against what their producers can deliver."""

    def __init__(self, layer: QuantizedLayer):
        self.fracs = dict(layer.fracs)
        self.fixed = layer.fixed

    def __getitem__(self, name: str) -> int:
        return self.fracs[name]

    def resolve(self, name: str, *available: int) -> int:
        """Fraction bits of activation ``name`` produced by requantizing values with
        ``available`` fraction bits (one per producer)."""
        want, have = self.fracs[name], min(available)
        if want > have:
            if name in self.fixed:
                raise ValueError(f"format: {name[4:]} must have {want} fraction bits (a "
                                 f"nonlinear unit's format) but its producer gives only {have}: "
                                 f"the weights feeding it are too large")
            self.fracs[name] = want = have
        return want


def _check_layer(layer, kind: str, shapes: dict, dims) -> None:
    if not isinstance(layer, QuantizedLayer) or layer.kind != kind:
        raise TypeError(f"weights_q must be a QuantizedLayer of kind {kind!r} (from "
                        f"quantize_{kind}_weights), got {layer!r:.80}")
    _check_shapes(layer.tensors, shapes, dims)


def _check_max_k(config: AcceleratorConfig, ks: dict[str, int]) -> None:
    for name, k in ks.items():
        if k > config.max_k:
            raise ValueError(f"{name}={k} exceeds max_k={config.max_k}, the longest dot "
                             f"product the accumulator holds exactly")


def compile_mamba_block(dims, weights_q: QuantizedLayer,
                        config: AcceleratorConfig | None = None, *,
                        weight_region: int | None = None,
                        token_block: int | None = None) -> Program:
    """Compile a Mamba block (see the module docstring) for ``dims.seq_len`` tokens.

    Scratchpad: the weights (``in_x``, ``in_z``, ``dt``, ``B``, ``C``, ``out`` and ``A`` as
    tile matrices, ``dt_bias`` and ``D`` as vectors), every token's input, the state ``h`` as a
    ``(d_inner, d_state)`` tile matrix, per-token vectors, every token's output. Per token:

    ========== ================================================================================
    in_proj    GEMV ``xi = W_x x_t``, GEMV ``z = W_z x_t`` (adjacent buffers)
    silu       NL silu over ``[xi z]`` -> ``[u gate]``
    dt_proj    GEMV ``pre = W_dt u``, EW ADD ``pre += b_dt``
    exp        NL exp ``delta = exp(pre)``
    bc_proj    GEMV ``B = W_B u``, GEMV ``C = W_C u``
    discretize EW MUL ``w = delta * u``; EW MUL ``dA = A * delta`` (``delta`` ROW-broadcast);
               NL exp ``dA`` in place; EW MUL ``dBx = w * B`` (ROW x COL broadcast)
    scan       EW MUL ``h = dA * h``, EW ADD ``h += dBx``, GEMV ``y = h C``,
               EW MUL ``du = D * u``, EW ADD ``y += du``
    gate       EW MUL ``yg = y * gate``
    out_proj   GEMV ``out_t = W_out yg`` into the output rows
    ========== ================================================================================

    Raises
    ------
    ValueError
        Shape mismatch between ``dims`` and the weights, a layer that does not fit the
        scratchpad (``depth``) or the program memory, or an unreachable unit format.
    """
    config = AcceleratorConfig.check_instance(config or AcceleratorConfig())
    dims = _coerce_dims(MambaDims, dims)
    _check_layer(weights_q, "mamba", mamba_shapes(dims), dims)
    d, e, n, t_len = dims.d_model, dims.d_inner, dims.d_state, dims.seq_len
    _check_max_k(config, {"d_model": d, "d_inner": e, "d_state": n})
    fr = _Formats(weights_q)
    q = weights_q.tensors

    # Formats, in dataflow order; every shift is (fraction bits in) - (fraction bits out).
    fx = fr["act_x"]
    for name, wname in (("act_xi", "in_x"), ("act_z", "in_z")):
        fr.resolve(name, fr[wname] + fx)
    fu, fgate = fr["act_u"], fr["act_gate"]
    fr.resolve("act_pre", fr["dt"] + fu)
    fdelta = fr["act_delta"]
    fw = fr.resolve("act_w", fdelta + fu)
    fb = fr.resolve("act_B", fr["B"] + fu)
    fc = fr.resolve("act_C", fr["C"] + fu)
    fr.resolve("act_dA", fr["A"] + fdelta)
    fh = fr.resolve("act_h", fw + fb)
    fy = fr.resolve("act_y", fh + fc, fr["D"] + fu)
    fyg = fr.resolve("act_yg", fy + fgate)
    fout = fr.resolve("act_out", fr["out"] + fyg)
    shift = {
        "xi": fr["in_x"] + fx - fr["act_xi"], "z": fr["in_z"] + fx - fr["act_z"],
        "pre": fr["dt"] + fu - fr["act_pre"], "w": fdelta + fu - fw,
        "B": fr["B"] + fu - fb, "C": fr["C"] + fu - fc, "dA": fr["A"] + fdelta - fr["act_dA"],
        "dBx": fw + fb - fh, "h": fr["act_dAexp"], "y": fh + fc - fy,
        "du": fr["D"] + fu - fy, "yg": fy + fgate - fyg, "out": fr["out"] + fyg - fout,
    }

    b = _Builder(config, "mamba", dims, weight_region=weight_region,
                 token_block=token_block)
    vl = functools.partial(vector_lines, config)
    el, nl_, dl = vl(e), vl(n), vl(d)
    tcols = -(-n // config.cols)
    h_lines = tile_lines(config, e, n)
    # DRAM: the streamed weights, the input rows, the intermediates between phases (u and gate
    # side by side, delta, B and C side by side, y * gate) and the output rows.
    w = {name: b.matrix(name, q[name]) for name in ("in_x", "in_z", "dt", "B", "C", "out")}
    x = Rows("dram", b.segment("x", t_len * dl, "rows", (t_len, d)).ext, dl)
    ug = b.rows("ug", t_len, e, per_token=2 * el)
    dlt = b.rows("delta", t_len, e)
    bc = b.rows("bc", t_len, n, per_token=2 * nl_)
    ygr = b.rows("yg", t_len, e)
    out = Rows("dram", b.segment("y", t_len * dl, "rows", (t_len, d)).ext, dl)
    dt_bias = b.resident("dt_bias", q["dt_bias"])

    b.phase = "in_proj"  # u = SiLU(W_x x), gate = SiLU(W_z x)
    b.linear(ug, x, w["in_x"], tokens=t_len, shift=shift["xi"], epilogue=NLUnit.SILU)
    b.linear(ug + el, x, w["in_z"], tokens=t_len, shift=shift["z"], epilogue=NLUnit.SILU)
    b.phase = "dt_proj"  # delta = exp(W_dt u + b_dt)
    b.linear(dlt, ug, w["dt"], tokens=t_len, shift=shift["pre"], bias=dt_bias,
             epilogue=NLUnit.EXP)
    b.phase = "bc_proj"
    b.linear(bc, ug, w["B"], tokens=t_len, shift=shift["B"])
    b.linear(bc + nl_, ug, w["C"], tokens=t_len, shift=shift["C"])

    # The scan: per token, its vectors come in (ping-pong buffers) while the previous token
    # computes; h and every intermediate stay on chip; y * gate goes out.
    b.phase = "scan"
    mark = b.spad_next
    a_tiles = b.resident("A", q["A"], layout="tiles")
    d_vec = b.resident("D", q["D"])
    h = b.resident("h", lines=h_lines)  # zeros: the state starts at 0
    da, dbx = b.alloc("dA", h_lines), b.alloc("dBx", h_lines)
    dw, y, du = b.alloc("w", el), b.alloc("y", el), b.alloc("du", el)
    ins = [b.alloc(f"in{j}", 3 * el + 2 * nl_) for j in range(2)]  # u gate delta B C
    outs = [b.alloc(f"yg{j}", el) for j in range(2)]

    def loads(t):
        """The three DMAs of token ``t``'s vectors."""
        base = ins[t % 2]
        return [lambda: b.dma(Opcode.DMA_LOAD, base, ug.line(t), 2 * el),
                lambda: b.dma(Opcode.DMA_LOAD, base + 2 * el, dlt.line(t), el),
                lambda: b.dma(Opcode.DMA_LOAD, base + 3 * el, bc.line(t), 2 * nl_)]

    for dma in loads(0):
        dma()
    for t in range(t_len):
        # Token t + 1's loads go between token t's long instructions: issue is in order and
        # the load engine takes one at a time, so three loads in a row would hold up compute.
        nxt = loads(t + 1) if t + 1 < t_len else [lambda: None] * 3
        u = ins[t % 2]
        gate, delta, bv = u + el, u + 2 * el, u + 3 * el
        cv, yg = bv + nl_, outs[t % 2]
        b.phase = "discretize"
        b.ew(Op.MUL, dw, delta, u, el, shift["w"])
        nxt[0]()
        b.ew(Op.MUL, da, a_tiles, delta, h_lines, shift["dA"], tcols=tcols,
             bmode=OperandMode.ROW)
        nxt[1]()
        b.nl(NLUnit.EXP, da, da, h_lines)
        nxt[2]()
        b.ew(Op.MUL, dbx, dw, bv, h_lines, shift["dBx"], tcols=tcols, amode=OperandMode.ROW,
             bmode=OperandMode.COL)
        b.phase = "scan"
        b.ew(Op.MUL, h, da, h, h_lines, shift["h"], tcols=tcols)
        b.ew(Op.ADD, h, h, dbx, h_lines, tcols=tcols)
        b.gemv(y, h, cv, e, n, shift["y"])
        b.ew(Op.MUL, du, d_vec, u, el, shift["du"])
        b.ew(Op.ADD, y, y, du, el)
        b.phase = "gate"
        b.ew(Op.MUL, yg, y, gate, el, shift["yg"])
        b.dma(Opcode.DMA_STORE, yg, ygr.line(t), el)
    b.release(mark)  # the scan's buffers are dead: the out-projection may stream through them
    b.phase = "out_proj"
    b.linear(out, ygr, w["out"], tokens=t_len, shift=shift["out"])
    return b.finish(fr.fracs)


def compile_attention(dims, weights_q: QuantizedLayer,
                      config: AcceleratorConfig | None = None, *,
                      weight_region: int | None = None,
                      token_block: int | None = None) -> Program:
    """Compile an attention head with its MLP (see the module docstring).

    The input comes twice: as rows (``x``) and as a ``(seq_len, d_model)`` tile matrix
    (``x_tiles``). ``K`` is built as a ``(seq_len, d_head)`` tile matrix, one column per GEMV
    (``X w_k,h``, with ``W_k``'s rows stored as dense vectors), ``V^T`` as a
    ``(d_head, seq_len)`` tile matrix, one column per token (``W_v x_j``), so that scores and
    context are plain GEMVs:

    ========== ================================================================================
    k_proj     per head dim ``h``: GEMV ``K[:, h] = X_tiles w_k,h`` (column write)
    v_proj     per token ``j``: GEMV ``V^T[:, j] = W_v x_j`` (column write)
    q_proj     per token: GEMV ``q_t = W_q x_t`` (``W_q`` pre-scaled by ``1/sqrt(d_head)``)
    scores     per token: GEMV ``s = K q_t`` (Q6.9, the softmax input)
    softmax    SOFTMAX ``p = softmax(s)`` (UQ0.15)
    context    GEMV ``o = V^T p``
    out_proj   GEMV ``a = W_o o``
    mlp_up     GEMV ``m = W_1 a`` (Q5.10, the GELU input)
    gelu       NL gelu ``g = GELU(m)``
    mlp_down   GEMV ``y_t = W_2 g`` into the output rows
    ========== ================================================================================

    Raises
    ------
    ValueError
        As :func:`compile_mamba_block`; also when ``seq_len`` exceeds ``softmax_max_len``.
    """
    config = AcceleratorConfig.check_instance(config or AcceleratorConfig())
    dims = _coerce_dims(AttentionDims, dims)
    _check_layer(weights_q, "attention", attention_shapes(dims), dims)
    d, hd, t_len, f = dims.d_model, dims.d_head, dims.seq_len, dims.d_mlp
    _check_max_k(config, {"d_model": d, "d_head": hd, "seq_len": t_len, "d_mlp": f})
    if t_len > config.softmax_max_len:
        raise ValueError(f"seq_len={t_len} exceeds softmax_max_len={config.softmax_max_len}")
    fr = _Formats(weights_q)
    q = weights_q.tensors

    fx = fr["act_x"]
    fk = fr.resolve("act_k", fx + fr["k"])
    fv = fr.resolve("act_v", fr["v"] + fx)
    fq = fr.resolve("act_q", fr["q"] + fx)
    fs = fr.resolve("act_s", fk + fq)
    fp = fr["act_p"]
    fo = fr.resolve("act_o", fv + fp)
    fa = fr.resolve("act_a", fr["o"] + fo)
    fm = fr.resolve("act_m", fr["mlp_up"] + fa)
    fg = fr["act_g"]
    fy = fr.resolve("act_y", fr["mlp_down"] + fg)
    shift = {"k": fx + fr["k"] - fk, "v": fr["v"] + fx - fv, "q": fr["q"] + fx - fq,
             "s": fk + fq - fs, "o": fv + fp - fo, "a": fr["o"] + fo - fa,
             "m": fr["mlp_up"] + fa - fm, "y": fr["mlp_down"] + fg - fy}

    b = _Builder(config, "attention", dims, weight_region=weight_region,
                 token_block=token_block)
    vl = functools.partial(vector_lines, config)
    w = {name: b.matrix(name, q[name]) for name in ("q", "o", "mlp_up", "mlp_down")}
    xseg = b.segment("x", t_len * vl(d), "rows", (t_len, d))
    xtseg = b.segment("x_tiles", tile_lines(config, t_len, d), "tiles", (t_len, d))
    a_rows = b.rows("a", t_len, d)
    g_rows = b.rows("g", t_len, f)
    out = Rows("dram", b.segment("y", t_len * vl(d), "rows", (t_len, d)).ext, vl(d))

    b.phase = "load"
    k_rows = b.resident("W_k", np.concatenate([pack_vector(config, row) for row in q["k"]]),
                        layout="lines")
    v_tiles = b.resident("W_v", q["v"], layout="tiles")
    x = Rows("spad", b.alloc("x", xseg.lines), vl(d))
    b.dma(Opcode.DMA_LOAD, x.base, xseg.ext, xseg.lines)
    x_tiles = b.alloc("x_tiles", xtseg.lines)
    b.dma(Opcode.DMA_LOAD, x_tiles, xtseg.ext, xtseg.lines)
    k_tiles = b.resident("K", lines=tile_lines(config, t_len, hd))
    vt_tiles = b.resident("V^T", lines=tile_lines(config, hd, t_len))
    q_rows = b.rows("Q", t_len, hd, space="spad")
    o_rows = b.rows("O", t_len, hd, space="spad")
    s_, p = b.alloc("s", vl(t_len)), b.alloc("p", vl(t_len))
    b.phase = "k_proj"
    for h in range(hd):
        b.gemv(k_tiles, x_tiles, k_rows + h * vl(d), t_len, d, shift["k"], column=h,
               ystride=-(-hd // config.cols))
    b.phase = "v_proj"
    for j in range(t_len):
        b.gemv(vt_tiles, v_tiles, x.line(j), hd, d, shift["v"], column=j,
               ystride=-(-t_len // config.cols))
    b.phase = "q_proj"
    b.linear(q_rows, x, w["q"], tokens=t_len, shift=shift["q"])
    for t in range(t_len):
        b.phase = "scores"
        b.gemv(s_, k_tiles, q_rows.line(t), t_len, hd, shift["s"])
        b.phase = "softmax"
        b.emit(Opcode.SOFTMAX, dst=p, src=s_, n=t_len)
        b.phase = "context"
        b.gemv(o_rows.line(t), vt_tiles, p, hd, t_len, shift["o"])
    b.phase = "out_proj"
    b.linear(a_rows, o_rows, w["o"], tokens=t_len, shift=shift["a"])
    b.phase = "mlp_up"  # m = W_1 a, then g = GELU(m) in place
    b.linear(g_rows, a_rows, w["mlp_up"], tokens=t_len, shift=shift["m"], epilogue=NLUnit.GELU)
    b.phase = "mlp_down"
    b.linear(out, g_rows, w["mlp_down"], tokens=t_len, shift=shift["y"])
    return b.finish(fr.fracs)


@dataclass(frozen=True)
class MLPDims:
    """Dimensions of a two-layer MLP: ``d_model -> d_hidden -> d_model`` over ``seq_len``."""

    d_model: int
    d_hidden: int
    seq_len: int

    def __post_init__(self):
        _check_dims(self)


def compile_mlp(dims, w1, w2, shifts: tuple[int, int],
                config: AcceleratorConfig | None = None, *, activation: NLUnit = NLUnit.GELU,
                hidden: str = "dram", fracs: dict | None = None,
                weight_region: int | None = None, token_block: int | None = None) -> Program:
    """Compile ``y_t = W2 act(W1 x_t)`` on int16 weights (a MiniLM-style MLP), streamed.

    ``w1`` is ``(d_hidden, d_model)``, ``w2`` ``(d_model, d_hidden)``, both already
    quantized; ``shifts`` are the two requantizer shifts; the hidden activations go to
    ``hidden`` (``"dram"``, or ``"spad"`` to keep them on chip); ``fracs`` names the input
    and output formats (``act_x``, ``act_y``; default Q5.10). Phases ``mlp_up`` (with the
    activation as the epilogue) and ``mlp_down``.

    Raises
    ------
    ValueError
        Shape mismatch, or a layer that cannot be tiled into the scratchpad.
    """
    config = AcceleratorConfig.check_instance(config or AcceleratorConfig())
    dims = _coerce_dims(MLPDims, dims)
    d, f, t_len = dims.d_model, dims.d_hidden, dims.seq_len
    for name, w, shape in (("w1", w1, (f, d)), ("w2", w2, (d, f))):
        if np.shape(w) != shape:
            raise ValueError(f"shape mismatch: {name} has shape {np.shape(w)}, expected "
                             f"{shape} for {dims}")
    _check_max_k(config, {"d_model": d, "d_hidden": f})
    b = _Builder(config, "mlp", dims, weight_region=weight_region, token_block=token_block)
    vl = functools.partial(vector_lines, config)
    m1, m2 = b.matrix("w1", w1), b.matrix("w2", w2)
    x = Rows("dram", b.segment("x", t_len * vl(d), "rows", (t_len, d)).ext, vl(d))
    y = Rows("dram", b.segment("y", t_len * vl(d), "rows", (t_len, d)).ext, vl(d))
    h = b.rows("hidden", t_len, f, space=hidden)
    b.phase = "mlp_up"
    b.linear(h, x, m1, tokens=t_len, shift=shifts[0], epilogue=activation)
    b.phase = "mlp_down"
    b.linear(y, h, m2, tokens=t_len, shift=shifts[1])
    return b.finish(dict(fracs or {"act_x": DEFAULT_FRAC, "act_y": DEFAULT_FRAC}))
