"""Arrays read from files, cached by the file's identity (resolved path, mtime, size), so an edited or replaced
file is read again; cached arrays are read-only so no caller can change another's copy."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache

import numpy as np


def cached_reader(
    load: Callable[[str | os.PathLike[str]], np.ndarray], maxsize: int
) -> Callable[[str | os.PathLike[str]], np.ndarray]:
    """``load`` wrapped in an identity-keyed cache; a file that cannot be stat'ed goes straight to ``load``
    (which raises the error that names the problem)."""

    @lru_cache(maxsize=maxsize)
    def cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
        arr = load(path)
        arr.setflags(write=False)
        return arr

    def read(path: str | os.PathLike[str]) -> np.ndarray:
        try:
            st = os.stat(path)
        except OSError:
            return load(path)
        return cached(os.path.realpath(path), st.st_mtime_ns, st.st_size)

    return read
