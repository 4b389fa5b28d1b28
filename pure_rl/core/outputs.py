"""Output folders every CLI writes to: created or refused with one line before any work starts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pure_rl.core.configio import ConfigError


def writable_dir(path: str | os.PathLike, key: str = "output_dir") -> Path:
    """``path`` created (with its parents) and proven writable, else a ``ConfigError`` naming ``key``.

    A folder that exists but cannot be written (read-only mount, wrong owner) is found here by writing a probe file,
    not hours later when the first checkpoint is saved.
    """
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key}={str(path)!r} is a file, not a folder; pass a folder path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{key}={str(path)!r} cannot be written ({reason}); pass a writable folder") from exc
    return folder
