"""The output location: a local folder or an fsspec URL (`s3://…`, `gs://…`, `file://…`).

Every write is atomic: a reader (or a resumed run) sees either nothing or the whole file. Locally
that is a temporary name in the same folder, fsync, then `os.replace`; object stores publish an
object only when its upload completes, so there the final name is written directly.

Only files this tool made are ever deleted: temporaries are named `<final name>.facelift-tmp-<8
random chars>`, and a cleanup removes a temporary only when its final name is one the caller owns.
A failing write or read raises StorageError (one line: the path and the system's reason).
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
import time
from typing import Callable

import fsspec
from fsspec.implementations.local import LocalFileSystem

from datagen.errors import DatagenError, StorageError

TMP_MARK = ".facelift-tmp-"
_TEMPORARY = re.compile(r"^(?P<final>.+)" + re.escape(TMP_MARK) + r"[a-z0-9_]{8}$")
SET_ASIDE_MARK = ".rejected-"  # a file that failed a check is renamed `<name>.rejected-<UTC time>`, never deleted
UNSHARED_PROTOCOLS = ("memory",)  # in-process filesystems: Ray workers would write somewhere else


def check_output_url(url: str, option: str = "--out") -> None:
    """Refuse an output location the workers cannot share, in one line."""
    if not url or not url.strip():
        raise DatagenError(f"{option} {url!r} is not allowed (give a folder or an fsspec URL such as s3://bucket/prefix)")
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    if protocol in UNSHARED_PROTOCOLS:
        raise DatagenError(f"{option} {url} is not allowed: {protocol}:// lives in one process and render workers could not share it (use a folder or s3://...)")


def temporary_final_name(name: str) -> str | None:
    """The final name a temporary of ours was writing, or None if `name` is not one of ours."""
    m = _TEMPORARY.match(name)
    return m.group("final") if m else None


def _reason(e: OSError) -> str:
    return e.strerror or str(e) or e.__class__.__name__


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
        if not rel:
            return self.root
        return posixpath.join(self.root, rel) if not self.local else os.path.join(self.root, rel)

    def ensure_writable(self) -> None:
        """Create the root and prove we can write there, or raise a one-line DatagenError."""
        probe = f"probe{TMP_MARK}{os.urandom(4).hex()}"
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self.write_bytes(probe, b"")
            self.remove(probe)
        except (OSError, StorageError) as e:
            reason = _reason(e) if isinstance(e, OSError) else str(e)
            raise DatagenError(f"--out {self.url} is not writable ({reason})") from None

    def makedirs(self, rel: str) -> None:
        try:
            self.fs.makedirs(self.path(rel), exist_ok=True)
        except OSError as e:
            raise StorageError(f"creating {self.path(rel)} failed ({_reason(e)})") from None

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def isdir(self, rel: str) -> bool:
        return self.fs.isdir(self.path(rel))

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.path(rel)))

    def listdir(self, rel: str) -> list[str]:
        """Base names in a folder; empty if it does not exist."""
        if not self.fs.exists(self.path(rel)):
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in self.fs.ls(self.path(rel), detail=False))

    def sizes(self, rel: str) -> dict[str, int]:
        """Base name → size of the files in a folder, from one listing (one request on object stores)."""
        if not self.fs.exists(self.path(rel)):
            return {}
        return {posixpath.basename(e["name"].rstrip("/")): int(e.get("size") or 0) for e in self.fs.ls(self.path(rel), detail=True) if e.get("type") == "file"}

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.fs.open(self.path(rel), "rb") as f:
                return f.read()
        except OSError as e:
            raise StorageError(f"reading {self.path(rel)} failed ({_reason(e)})") from None

    def open_read(self, rel: str):
        return self.fs.open(self.path(rel), "rb")

    def remove(self, rel: str) -> None:
        try:
            if self.fs.exists(self.path(rel)):
                self.fs.rm(self.path(rel))
        except OSError as e:
            raise StorageError(f"removing {self.path(rel)} failed ({_reason(e)})") from None

    def set_aside(self, rel: str) -> str:
        """Rename a file that failed a check out of the way (never delete it); returns the new name."""
        new = f"{rel}{SET_ASIDE_MARK}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        while self.exists(new):
            new += "_"
        try:
            self.fs.mv(self.path(rel), self.path(new))
        except OSError as e:
            raise StorageError(f"renaming {self.path(rel)} aside failed ({_reason(e)})") from None
        return new

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomically publish `data` at `rel`."""
        self.write_via(rel, lambda f: f.write(data))

    def write_via(self, rel: str, fill: Callable):
        """Atomically publish what `fill(fileobj)` writes at `rel`; returns fill's result.

        Locally: a temporary in the same folder, fsync, rename. Remote: a local temporary file,
        then one upload to the final name (object stores publish only complete uploads). Any
        OSError (a full disk, a read-only folder) becomes a StorageError and leaves no temporary.
        """
        final = self.path(rel)
        tmp = None
        try:
            if self.local:
                folder = os.path.dirname(final)
                os.makedirs(folder, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=os.path.basename(final) + TMP_MARK, suffix="", dir=folder)
            else:
                fd, tmp = tempfile.mkstemp(prefix="facelift" + TMP_MARK)
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
        except OSError as e:
            raise StorageError(f"writing {final} failed ({_reason(e)})") from None
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def remove_temporaries(self, rel: str, owned: Callable[[str], bool]) -> int:
        """Delete leftovers of our interrupted writes in a folder: names `<final>.facelift-tmp-XXXXXXXX`
        whose final name `owned(final)` accepts. Returns how many."""
        stale = [n for n in self.listdir(rel) if (final := temporary_final_name(n)) is not None and owned(final)]
        for name in stale:
            self.remove(posixpath.join(rel, name) if rel else name)
        return len(stale)
