"""Declaring block parameters once: frozen dataclasses with validated, documented fields.

A block's config class lists its parameters with :func:`param`. The metadata (help text,
allowed range or choices) drives validation here, the command-line flags in ``gen.cli``, TOML
loading and the manifest, so a parameter is declared in exactly one place.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["param", "BlockConfig"]

_NO_DEFAULT = dataclasses.MISSING


def param(default: Any = _NO_DEFAULT, *, help: str, range: tuple[int, int] | None = None,
          choices: tuple | None = None):
    """Declare a config field with its help text and allowed values.

    Parameters
    ----------
    default :
        Default value; omit for a required parameter. ``None`` means "derived from the others"
        (the config's ``resolved`` values say what it became).
    help : str
        One line for ``accelgen list``, ``--help`` and the docs.
    range : (number, number), optional
        Inclusive bounds for an integer or float parameter.
    choices : tuple, optional
        The allowed values of a string parameter, or of each item of a tuple parameter.
    """
    metadata = {"help": help, "range": range, "choices": choices}
    if default is _NO_DEFAULT:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


def _check_value(name: str, kind: type, value: Any, meta: dict) -> None:
    if value is None:
        return
    if kind is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")
    elif kind in (int, float):
        allowed = (int,) if kind is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise TypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                            f"got {value!r}")
        lo, hi = meta["range"] or (None, None)
        if meta["range"] and not lo <= value <= hi:
            raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    elif kind is str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, got {value!r}")
        if meta["choices"] and value not in meta["choices"]:
            raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}, got {value!r}")
    elif kind is tuple:
        if not isinstance(value, tuple) or not value:
            raise TypeError(f"{name} must be a non-empty tuple, got {value!r}")
        unknown = [v for v in value if meta["choices"] and v not in meta["choices"]]
        if unknown:
            raise ValueError(f"{name} must be drawn from {', '.join(meta['choices'])}, "
                             f"got unknown {', '.join(map(repr, unknown))}")


@dataclass(frozen=True)
class BlockConfig:
    """Base class of block configs: validates every field against its :func:`param` metadata.

    Subclasses are frozen dataclasses whose fields are declared with :func:`param`; they add
    cross-parameter checks in ``_check`` and derived values as properties.
    """

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            _check_value(f.name, self.field_kind(hints[f.name]), getattr(self, f.name), f.metadata)
        self._check()

    def _check(self) -> None:
        """Cross-parameter validation; subclasses override."""

    @staticmethod
    def field_kind(hint) -> type:
        """Return the base type (bool, int, float, str or tuple) of a field's type hint."""
        for kind in (bool, int, float, str, tuple):
            if hint is kind or typing.get_origin(hint) is kind:
                return kind
        for arg in typing.get_args(hint):  # Optional[X] / X | None
            if arg is not type(None):
                return BlockConfig.field_kind(arg)
        raise TypeError(f"unsupported parameter type {hint!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """Build a config from a mapping (TOML table, JSON), rejecting unknown keys.

        Lists become tuples, so tuple parameters can be written as TOML arrays.
        """
        if not isinstance(values, dict):
            raise TypeError(f"{cls.__name__} needs a table of parameters, got {values!r}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown parameter {unknown[0]!r} for {cls.__name__}; "
                             f"allowed: {', '.join(sorted(names))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as plain JSON-compatible values (tuples as lists)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self)}

    @classmethod
    def coerce(cls, config=None, **params):
        """Return ``config`` if given (checking its type), else ``cls(**params)``.

        Lets a component accept either a ready config object or plain keyword parameters.
        """
        if config is None:
            return cls(**params)
        if params:
            raise TypeError(f"pass either a {cls.__name__} or keyword parameters, not both")
        return cls.check_instance(config)

    @classmethod
    def check_instance(cls, config):
        """Return ``config`` if it is a ``cls``, else raise ``TypeError``."""
        if not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__}, got {config!r}")
        return config
