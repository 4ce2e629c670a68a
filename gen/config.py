"""Loading block configs from TOML files, with command-line overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from golden.params import BlockConfig

from .registry import GENERATORS, Generator

__all__ = ["load_config", "load_design", "parse_value", "read_toml"]


def read_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """Parse the TOML file at ``path``; an unreadable or malformed file raises ``ValueError``
    naming it as a ``what`` file."""
    try:
        return tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise ValueError(f"cannot read {what} file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"malformed {what} file {path}: {error}") from None


def load_config(generator: Generator, path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> BlockConfig:
    """Build a generator's config from a TOML file's table and explicit overrides.

    The file holds one table per design, named like the generator's Verilog module
    (``[pe_array]`` for ``pe-array``). ``overrides`` (e.g. command-line flags) win over the
    file. Unknown keys, a missing table and malformed TOML raise ``ValueError``.
    """
    values: dict[str, Any] = {}
    if path is not None:
        document = read_toml(path)
        table = generator.module_name
        if table not in document:
            raise ValueError(f"config file {path} has no [{table}] table "
                             f"(tables: {', '.join(document) or 'none'})")
        values.update(document[table])
    values.update(overrides or {})
    return generator.config_class.from_dict(values)


def parse_value(text: str) -> Any:
    """A command-line value as TOML would read it (``4``, ``true``, ``["mul", "madd"]``), or
    the text itself when it is not a TOML value (``half_up``)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def load_design(design: str, params: list[str] | None = None) -> tuple[Generator, BlockConfig,
                                                                       dict[str, Any]]:
    """The generator and config a ``--design`` names, and the file's ``[board]`` table.

    ``design`` is a generator name (``pe-array``: its defaults) or a TOML file with one table
    named after a generator (``[pe_array]``) and optionally a ``[board]`` table (``name``,
    ``freq_mhz``, ``baud``, ``depth``). ``params`` (``NAME=VALUE`` strings) override the
    generator's parameters.
    """
    overrides = {}
    for item in params or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"param must look like NAME=VALUE, got {item!r}")
        overrides[name.strip().replace("-", "_")] = parse_value(value.strip())
    if design in GENERATORS:
        return GENERATORS[design], load_config(GENERATORS[design], None, overrides), {}
    path = Path(design)
    if path.suffix != ".toml":
        raise ValueError(f"design must be a generator ({', '.join(GENERATORS)}) or a .toml "
                         f"file, got {design!r}")
    document = read_toml(path, "design")
    tables = [g for g in GENERATORS.values() if g.module_name in document]
    unknown = sorted(set(document) - {g.module_name for g in GENERATORS.values()} - {"board"})
    if len(tables) != 1 or unknown:
        raise ValueError(f"design file {path} must have exactly one generator table (e.g. "
                         f"[pe_array]) and optionally [board]; found "
                         f"{', '.join(f'[{t}]' for t in document) or 'none'}")
    board = document.get("board", {})
    if not isinstance(board, dict) or set(board) - {"name", "freq_mhz", "baud", "depth"}:
        raise ValueError(f"design file {path}: [board] may set name, freq_mhz, baud, depth; "
                         f"got {sorted(board) if isinstance(board, dict) else board!r}")
    return tables[0], load_config(tables[0], path, overrides), board
