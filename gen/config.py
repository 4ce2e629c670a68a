"""Loading block configs from TOML files, with command-line overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from golden.params import BlockConfig

from .registry import Generator

__all__ = ["load_config"]


def load_config(generator: Generator, path: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> BlockConfig:
    """Build a generator's config from a TOML file's table and explicit overrides.

    The file holds one table per design, named like the generator's Verilog module
    (``[pe_array]`` for ``pe-array``). ``overrides`` (e.g. command-line flags) win over the
    file. Unknown keys, a missing table and malformed TOML raise ``ValueError``.
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(Path(path).read_text())
        except OSError as error:
            raise ValueError(f"cannot read config file {path}: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise ValueError(f"malformed config file {path}: {error}") from None
        table = generator.module_name
        if table not in document:
            raise ValueError(f"config file {path} has no [{table}] table "
                             f"(tables: {', '.join(document) or 'none'})")
        values.update(document[table])
    values.update(overrides or {})
    return generator.config_class.from_dict(values)
