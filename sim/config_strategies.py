"""Hypothesis strategies for block configs, derived from their ``param`` metadata.

A config class declares each parameter once, with its type, range or choices
(``golden.params.param``); the strategies here read that and nothing else, so a new block is
fuzzed without a hand-written list. :func:`parameter_sets` draws values that each pass the
field's own check (in range, an allowed choice); cross-parameter rules (a config's ``_check``)
may still reject a set, which is the point: the fuzz tests then expect the documented
ValueError. :func:`illegal_parameter_sets` breaks exactly one field (out of range, wrong type,
unknown choice). ``limits`` caps sizes, so that drawn designs stay quick to simulate.
"""

from __future__ import annotations

import dataclasses
import typing

from hypothesis import strategies as st

from golden.params import BlockConfig

__all__ = ["SIM_LIMITS", "parameter_sets", "illegal_parameter_sets", "field_specs"]

#: Upper bounds on size parameters (by field name, for every config that has the field) for
#: configs that are built and simulated: the full ranges reach designs (256 x 256 PE arrays,
#: 65536-word memories) that take minutes to elaborate. Validation is fuzzed over full ranges.
SIM_LIMITS: dict[str, int] = {
    "rows": 3, "cols": 4, "n": 12, "max_k": 64, "lanes": 2, "max_len": 6, "bits": 40,
    "max_nnz": 12, "parallel": 4, "block": 24, "coord_width": 5, "depth": 8, "banks": 5,
    "ports": 3, "width": 24, "local_depth": 64, "data_width": 64, "max_burst": 8,
    "outstanding": 3, "segments": 16, "levels": 3, "count_width": 4, "limit": 1 << 12,
}


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """A config field as the strategies see it: name, base type, metadata, optional-ness."""

    name: str
    kind: type
    range: tuple | None
    choices: tuple | None
    optional: bool
    default: object


def field_specs(config_class: type[BlockConfig]) -> list[FieldSpec]:
    """The fields of ``config_class`` with their kinds and metadata."""
    hints = typing.get_type_hints(config_class)
    specs = []
    for f in dataclasses.fields(config_class):
        hint = hints[f.name]
        optional = type(None) in typing.get_args(hint) or f.default is None
        specs.append(FieldSpec(f.name, BlockConfig.field_kind(hint), f.metadata.get("range"),
                               f.metadata.get("choices"), optional,
                               None if f.default is dataclasses.MISSING else f.default))
    return specs


def _dyadic(lo: float, hi: float) -> st.SearchStrategy:
    """Numbers ``k * 2**e`` in ``[lo, hi]``: where formats are binary, legal values are
    these, and a uniform float almost never is one."""
    return (st.tuples(st.integers(1, 16), st.integers(-6, 8))
            .map(lambda ke: ke[0] * 2.0 ** ke[1]).filter(lambda v: lo <= v <= hi))


def _legal(spec: FieldSpec, limits: dict[str, int]) -> st.SearchStrategy:
    if spec.kind is bool:
        values = st.booleans()
    elif spec.kind is int:
        lo, hi = spec.range or (0, 1 << 16)
        values = st.integers(lo, max(lo, min(hi, limits.get(spec.name, hi))))
    elif spec.kind is float:
        lo, hi = spec.range or (-1e6, 1e6)
        hi = min(hi, limits.get(spec.name, hi))
        values = st.one_of(_dyadic(lo, hi), st.floats(lo, hi, allow_nan=False))
    elif spec.kind is str:
        # A string without choices (a file path, say) is left at its default.
        values = st.sampled_from(spec.choices) if spec.choices else st.just(spec.default)
    else:  # tuple: a non-empty subset of the choices, in any order
        values = st.lists(st.sampled_from(spec.choices), min_size=1,
                          max_size=len(spec.choices), unique=True).map(tuple)
    return st.one_of(st.none(), values) if spec.optional else values


@st.composite
def parameter_sets(draw, config_class: type[BlockConfig],
                   limits: dict[str, int] | None = None) -> dict:
    """Keyword parameters for ``config_class``, each field legal on its own (a field is
    sometimes left out, i.e. at its default); cross-parameter rules may reject the set."""
    limits = {} if limits is None else limits
    params = {}
    for spec in field_specs(config_class):
        default = spec.default
        within = not (isinstance(default, int) and default > limits.get(spec.name, default))
        if within and draw(st.integers(0, 4)) == 0:
            continue  # keep the default
        params[spec.name] = draw(_legal(spec, limits))
    return params


def _broken(spec: FieldSpec) -> st.SearchStrategy:
    """Values that fail the field's own check, with the error type they must raise."""
    wrong_type = st.sampled_from(["7", [1], 1.5] if spec.kind is int else ["7", [1]])
    if spec.kind is bool:
        return st.sampled_from([(1, TypeError), ("yes", TypeError), (0.0, TypeError)])
    if spec.kind in (int, float):
        lo, hi = spec.range
        outside = st.one_of(st.integers(1, 1 << 20).map(lambda k: lo - k),
                            st.integers(1, 1 << 20).map(lambda k: hi + k))
        return st.one_of(outside.map(lambda v: (v, ValueError)),
                         wrong_type.map(lambda v: (v, TypeError)),
                         st.just((True, TypeError)))
    if spec.kind is str:
        return st.one_of(st.just((3, TypeError)),
                         st.just(("no-such-choice", ValueError)) if spec.choices else st.nothing())
    return st.sampled_from([((), TypeError), ("mul", TypeError),
                            ((*spec.choices[:1], "no-such-op"), ValueError)])


@st.composite
def illegal_parameter_sets(draw, config_class: type[BlockConfig]) -> tuple[dict, str, type]:
    """``(params, broken_field, error_type)``: a drawn parameter set with one field broken so
    that its own check fails. Each field is checked (in order) before the cross-parameter
    rules, and the others are legal on their own, so the error must be that field's."""
    specs = [s for s in field_specs(config_class)
             if s.kind in (bool, tuple, str) or s.range or s.choices]
    spec = draw(st.sampled_from(specs))
    value, error = draw(_broken(spec))
    return {**draw(parameter_sets(config_class)), spec.name: value}, spec.name, error
