"""Writing output files all-or-nothing.

One file: :func:`atomic_file` gives a temporary path beside the target that replaces it in one rename when
the writing succeeded, so readers never see half a file. A set of files: a job writes into a hidden staging folder inside the output folder and moves the files into place only when
every one of them was written, so a failure (bad input, a crash, Ctrl-C) leaves nothing half-written behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import InputError

__all__ = ["staged_output_dir", "atomic_file"]


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it becomes ``path`` (mode 0644), else it is removed.

    An existing file at ``path`` stays untouched when the block fails. ``suffix`` lets tools that infer a format
    from the name (ffmpeg) see the right extension.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; outputs are ordinary files for servers and users
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def staged_output_dir(out_dir: str | Path) -> Iterator[Path]:
    """Yield a staging folder; on success its files move into ``out_dir``, on failure everything is removed.

    Raises:
        InputError: when ``out_dir`` cannot be created or written.
    """
    out = Path(out_dir)
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    except OSError as e:
        raise InputError(f"cannot write to output folder {str(out)!r}: {e.strerror or e}") from None
    try:
        yield stage
        for item in stage.iterdir():
            os.replace(item, out / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if created and out.exists() and not any(out.iterdir()):
            out.rmdir()
