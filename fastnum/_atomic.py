"""Writing a file so that no reader ever sees half of it, and what reading a damaged one raises."""

import json
import os
import tempfile
import zipfile
from pathlib import Path

NPZ_READ_ERRORS = (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile, json.JSONDecodeError)
"""What reading a truncated, damaged or foreign ``.npz`` (and the JSON kept in it) can raise."""


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file beside ``path``, then rename it over ``path``.

    The rename is atomic: ``path`` holds either its old content or the whole
    new one, also after a crash or Ctrl-C. The file gets the permissions an
    ordinary ``open`` would give it (mkstemp alone makes it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
