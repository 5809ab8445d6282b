"""The output location: a local folder or an fsspec URL (`s3://…`, `gs://…`, `file://…`).

Every write is atomic: a reader (or a resumed run) sees either nothing or the whole file. Locally
that is a temporary name in the same folder, fsync, then `os.replace`; object stores publish an
object only when its upload completes, so there the final name is written directly.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid

import fsspec
from fsspec.implementations.local import LocalFileSystem

from datagen.errors import DatagenError

TMP_MARK = ".tmp-"  # temporaries carry this in their name; a resumed run deletes leftovers


class Storage:
    def __init__(self, url: str):
        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as e:
            raise DatagenError(f"--out {url} is not a usable location ({e})") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            self.root = os.path.abspath(self.root)

    def path(self, rel: str) -> str:
        return posixpath.join(self.root, rel) if not self.local else os.path.join(self.root, rel)

    def ensure_writable(self) -> None:
        """Create the root and prove we can write there, or raise a one-line DatagenError."""
        probe = f"{TMP_MARK}probe-{uuid.uuid4().hex}"
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.write_bytes(probe, b"")
            self.remove(probe)
        except (OSError, PermissionError) as e:
            raise DatagenError(f"--out {self.url} is not writable ({e.__class__.__name__}: {e.strerror or e})") from None

    def makedirs(self, rel: str) -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.path(rel)))

    def listdir(self, rel: str) -> list[str]:
        """Base names in a folder; empty if it does not exist."""
        if not self.fs.exists(self.path(rel)):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.path(rel), detail=False))

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open(self.path(rel), "rb") as f:
            return f.read()

    def open_read(self, rel: str):
        return self.fs.open(self.path(rel), "rb")

    def remove(self, rel: str) -> None:
        if self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomically publish `data` at `rel`."""
        self.write_via(rel, lambda f: f.write(data))

    def write_via(self, rel: str, fill):
        """Atomically publish what `fill(fileobj)` writes at `rel`; returns fill's result.

        Locally: a temporary in the same folder, fsync, rename. Remote: a local temporary file,
        then one upload to the final name (object stores publish only complete uploads).
        """
        final = self.path(rel)
        if self.local:
            folder = os.path.dirname(final)
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=os.path.basename(final) + TMP_MARK, dir=folder)
        else:
            fd, tmp = tempfile.mkstemp(prefix="facelift" + TMP_MARK)
        try:
            with os.fdopen(fd, "wb") as f:
                result = fill(f)
                f.flush()
                os.fsync(f.fileno())
            if self.local:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
            else:
                self.fs.put_file(tmp, final)
            return result
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def remove_temporaries(self, rel: str) -> int:
        """Delete leftovers of interrupted writes in a folder; returns how many."""
        stale = [n for n in self.listdir(rel) if TMP_MARK in n]
        for name in stale:
            self.remove(posixpath.join(rel, name) if not self.local else os.path.join(rel, name))
        return len(stale)
