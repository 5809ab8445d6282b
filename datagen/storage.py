"""The output location: a local folder or an fsspec URL (`s3://…`, `gs://…`, `file://…`).

Every write is atomic: a reader (or a resumed run) sees either nothing or the whole file. Locally
that is a temporary name in the same folder, fsync, then `os.replace`; object stores publish an
object only when its upload completes, so there a local temporary file is uploaded to the final name.

Object stores differ from folders in ways this class hides:
- listings are never cached (fsspec caches them per process by default): Ray workers and other
  processes add and remove objects behind this process's back, and a cached listing makes a
  just-written staging object "not found";
- there are no folders, so `makedirs` does nothing (s3fs's would create a missing bucket);
- a rename is copy + delete, ordered so that a crash between the two loses nothing;
- `check()` asks the store one question with short timeouts first, so a missing bucket, refused
  credentials or an endpoint that does not answer is one line in seconds, not a traceback after
  minutes of botocore and s3fs retries.

Only files this tool made are ever deleted: temporaries are named `<final name>.facelift-tmp-<8
random chars>`, and a cleanup removes a temporary only when its final name is one the caller owns.
A failing write or read raises StorageError (one line: the path and the system's reason).
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Callable

import fsspec
from fsspec.implementations.local import LocalFileSystem

from datagen.errors import DatagenError, StorageError

TMP_MARK = ".facelift-tmp-"
_TEMPORARY = re.compile(r"^(?P<final>.+)" + re.escape(TMP_MARK) + r"[a-z0-9_]{8}$")
SET_ASIDE_MARK = ".rejected-"  # a file that failed a check is renamed `<name>.rejected-<UTC time>`, never deleted
UNSHARED_PROTOCOLS = ("memory",)  # in-process filesystems: Ray workers would write somewhere else
S3_PROTOCOLS = ("s3", "s3a")
# The one question `check()` asks: answered within these limits or not at all (seconds, attempts).
PROBE_CONNECT_S, PROBE_READ_S, PROBE_ATTEMPTS = 3, 5, 2
# Error codes an S3 API answers when it does not accept the credentials.
_REFUSED_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidClientTokenId",
}


def check_output_url(url: str, option: str = "--out") -> None:
    """Refuse an output location the workers cannot share, in one line."""
    if not url or not url.strip():
        raise DatagenError(
            f"{option} {url!r} is not allowed (give a folder or an fsspec URL such as s3://bucket/prefix)"
        )
    protocol = _protocol(url)
    if protocol in UNSHARED_PROTOCOLS:
        raise DatagenError(
            f"{option} {url} is not allowed: {protocol}:// lives in one process and render "
            "workers could not share it (use a folder or s3://...)"
        )


def temporary_final_name(name: str) -> str | None:
    """The final name a temporary of ours was writing, or None if `name` is not one of ours."""
    m = _TEMPORARY.match(name)
    return m.group("final") if m else None


def _protocol(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


def _first_line(text) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return _first_line(e) or e.__class__.__name__


@functools.lru_cache(maxsize=1)
def _remote_errors() -> tuple[type[BaseException], ...]:
    """What a remote filesystem raises when the store or the network fails (besides OSError): a
    failing request must become a one-line StorageError, never a botocore/aiohttp traceback."""
    errors: list[type[BaseException]] = [OSError, TimeoutError]
    try:
        from fsspec.exceptions import FSTimeoutError

        errors.append(FSTimeoutError)
    except ImportError:
        pass
    try:
        from botocore.exceptions import BotoCoreError

        errors.append(BotoCoreError)
    except ImportError:
        pass
    try:
        from aiohttp import ClientError

        errors.append(ClientError)
    except ImportError:
        pass
    return tuple(errors)


def upload_folder() -> str:
    """Where uploads to object stores are staged on this machine: one folder per user, files named
    `<pid>-<random>`, so the leftovers of a process killed mid-upload (a whole shard, hundreds of
    MB at the paper preset) are recognised and removed by the next process (`sweep_uploads`)."""
    folder = os.path.join(tempfile.gettempdir(), f"facelift-uploads-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def sweep_uploads() -> int:
    """Delete staged uploads whose process is gone (killed mid-upload); returns how many."""
    folder, removed = upload_folder(), 0
    for name in os.listdir(folder):
        pid = name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (or a reused pid: then the file waits for the next sweep)
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # someone else's process holds that pid
        try:
            os.unlink(os.path.join(folder, name))
            removed += 1
        except FileNotFoundError:
            pass
    return removed


class Storage:
    def __init__(self, url: str):
        self.url = url
        self.protocol = _protocol(url)
        # Remote listings are never cached: other processes (the Ray workers) write here too.
        options = {} if self.protocol in ("file", "local", *UNSHARED_PROTOCOLS) else {"use_listings_cache": False}
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError, TypeError) as e:
            raise DatagenError(f"{url} is not a usable location ({_first_line(e)})") from None
        self.local = isinstance(self.fs, LocalFileSystem)
        if self.local:
            self.root = os.path.abspath(self.root)
        self.remote = not self.local and self.protocol not in UNSHARED_PROTOCOLS  # over a network
        self._errors = _remote_errors() if not self.local else (OSError,)
        self._checked = not self.remote
        if self.remote:
            sweep_uploads()  # a killed run's staged uploads on this machine

    def path(self, rel: str) -> str:
        if not rel:
            return self.root
        return posixpath.join(self.root, rel) if not self.local else os.path.join(self.root, rel)

    def url_of(self, rel: str = "") -> str:
        """Where `rel` is, as the user would write it (s3://bucket/key; a local path as is)."""
        return self.path(rel) if self.local else self.fs.unstrip_protocol(self.path(rel))

    # ------------------------------------------------------------------ reachability

    def check(self) -> None:
        """Prove the location answers before anything is read or written, or raise a one-line
        DatagenError (bad input: exit 2): a bucket that does not exist, credentials the store
        refuses, an endpoint that does not answer. Asked once per Storage; local folders need no
        probe. Writability is proven by the first write (the run's lock)."""
        if self._checked:
            return
        if self.protocol in S3_PROTOCOLS:
            self._check_s3()
        else:
            try:
                self.fs.exists(self.root)
            except Exception as e:  # noqa: BLE001 - every backend has its own error types; name the cause
                raise DatagenError(f"{self.url} is not reachable ({e.__class__.__name__}: {_first_line(e)})") from None
        self._checked = True

    def _check_s3(self) -> None:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError, NoCredentialsError, PartialCredentialsError

        # A separate client for the probe: short timeouts, at most PROBE_ATTEMPTS tries in all
        # (s3fs retries each request 5 times on top of botocore's own retries).
        config = {
            "connect_timeout": PROBE_CONNECT_S,
            "read_timeout": PROBE_READ_S,
            "retries": {"total_max_attempts": PROBE_ATTEMPTS, "mode": "standard"},
        }
        probe = type(self.fs)(**{**self.fs.storage_options, "config_kwargs": config, "skip_instance_cache": True})
        probe.retries = 1
        bucket, key, _ = probe.split_path(self.root)
        endpoint = "?"
        try:
            endpoint = probe.s3.meta.endpoint_url
            prefix = key.rstrip("/") + "/" if key else ""
            probe.call_s3(
                "list_objects_v2", Bucket=bucket, Prefix=prefix, MaxKeys=1
            )  # needs the bucket, the credentials, the network
        except (NoCredentialsError, PartialCredentialsError) as e:
            raise DatagenError(
                f"{self.url}: no usable S3 credentials ({_first_line(e)}); "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
            ) from None
        except (BotoConnectionError, HTTPClientError, TimeoutError) as e:
            cause = getattr(e, "kwargs", {}).get("error") or e  # botocore wraps the socket's reason
            raise DatagenError(
                f"{self.url}: the S3 endpoint {endpoint} does not answer ({e.__class__.__name__}: "
                f"{_first_line(cause)}); "
                "check AWS_ENDPOINT_URL and the network"
            ) from None
        except OSError as e:  # s3fs turned the server's answer into an OSError; the answer is its cause
            code, message = _s3_error(e)
            if code == "NoSuchBucket":
                raise DatagenError(
                    f"{self.url}: the bucket {bucket!r} does not exist at {endpoint}; create it or fix the URL"
                ) from None
            if code in _REFUSED_CODES or isinstance(e, PermissionError):
                raise DatagenError(
                    f"{self.url}: {endpoint} refused the credentials ({code}: {message}); "
                    "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE and the bucket's policy"
                ) from None
            raise DatagenError(f"{self.url}: {endpoint} answered {code}: {message}") from None
        except ValueError as e:  # botocore's parameter validation: e.g. an invalid bucket name
            raise DatagenError(f"{self.url} is not a usable S3 location ({_first_line(e)})") from None

    # ------------------------------------------------------------------ reads

    def _failed(self, what: str, rel: str, e: BaseException) -> StorageError:
        return StorageError(f"{what} {self.url_of(rel)} failed ({_reason(e)})")

    def exists(self, rel: str) -> bool:
        try:
            return self.fs.exists(self.path(rel))
        except self._errors as e:
            raise self._failed("looking up", rel, e) from None

    def isdir(self, rel: str) -> bool:
        try:
            return self.fs.isdir(self.path(rel))
        except self._errors as e:
            raise self._failed("looking up", rel, e) from None

    def size(self, rel: str) -> int:
        try:
            return int(self.fs.size(self.path(rel)))
        except self._errors as e:
            raise self._failed("looking up", rel, e) from None

    def _ls(self, rel: str) -> list[dict]:
        """Entries of a folder (one listing request on object stores); empty if it does not exist."""
        try:
            return self.fs.ls(self.path(rel), detail=True)
        except FileNotFoundError:
            return []
        except self._errors as e:
            raise self._failed("listing", rel, e) from None

    def listdir(self, rel: str) -> list[str]:
        """Base names in a folder; empty if it does not exist."""
        return sorted(posixpath.basename(e["name"].rstrip("/")) for e in self._ls(rel))

    def sizes(self, rel: str) -> dict[str, int]:
        """Base name → size of the files in a folder, from one listing (one request on object stores)."""
        return {
            posixpath.basename(e["name"].rstrip("/")): int(e.get("size") or 0)
            for e in self._ls(rel)
            if e.get("type") == "file"
        }

    def read_bytes(self, rel: str) -> bytes:
        try:
            with self.fs.open(self.path(rel), "rb") as f:
                return f.read()
        except self._errors as e:
            raise self._failed("reading", rel, e) from None

    def open_read(self, rel: str):
        try:
            return self.fs.open(self.path(rel), "rb")
        except self._errors as e:
            raise self._failed("reading", rel, e) from None

    # ------------------------------------------------------------------ writes

    def makedirs(self, rel: str) -> None:
        if self.remote:
            return  # object stores have no folders; s3fs's makedirs would even create a missing bucket
        try:
            self.fs.makedirs(self.path(rel), exist_ok=True)
        except OSError as e:
            raise StorageError(f"creating {self.path(rel)} failed ({_reason(e)})") from None

    def ensure_writable(self) -> None:
        """Create the root and prove we can write there, or raise a one-line DatagenError."""
        self.check()
        probe = f"probe{TMP_MARK}{os.urandom(4).hex()}"
        try:
            self.makedirs("")
            self.write_bytes(probe, b"")
            self.remove(probe)
        except StorageError as e:
            raise DatagenError(f"--out {self.url} is not writable ({e})") from None

    def remove(self, rel: str) -> None:
        try:
            self.fs.rm_file(self.path(rel))
        except FileNotFoundError:
            pass
        except self._errors as e:
            raise self._failed("removing", rel, e) from None

    def set_aside(self, rel: str) -> str:
        """Rename a file that failed a check out of the way (never delete it); returns the new name.

        On object stores a rename is a copy then a delete: the original is deleted only once its
        copy is there, whole. A crash in between leaves both; the rerun checks the original again
        and sets it aside once more, so at worst a rejected file has two copies, never none."""
        new = f"{rel}{SET_ASIDE_MARK}{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        while self.exists(new):
            new += "_"
        src, dst = self.path(rel), self.path(new)
        try:
            if not self.remote:
                self.fs.mv(src, dst)
            else:
                self.fs.cp_file(src, dst)
                if self.fs.size(dst) != self.fs.size(src):
                    raise OSError(f"the copy {self.url_of(new)} is not whole")
                self.fs.rm_file(src)
        except self._errors as e:
            raise StorageError(f"renaming {self.url_of(rel)} aside failed ({_reason(e)})") from None
        return new

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Atomically publish `data` at `rel`."""
        self.write_via(rel, lambda f: f.write(data))

    def write_via(self, rel: str, fill: Callable):
        """Atomically publish what `fill(fileobj)` writes at `rel`; returns fill's result.

        Locally: a temporary in the same folder, fsync, rename. Remote: a local temporary file,
        then one upload to the final name (object stores publish only complete uploads; a
        multipart upload that fails is aborted). Any storage failure (a full disk, a read-only
        folder, a store that stops answering) becomes a StorageError and leaves no temporary.
        """
        final = self.path(rel)
        tmp = None
        try:
            if self.local:
                folder = os.path.dirname(final)
                os.makedirs(folder, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=os.path.basename(final) + TMP_MARK, suffix="", dir=folder)
            else:
                fd, tmp = tempfile.mkstemp(prefix=f"{os.getpid()}-", dir=upload_folder())
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
        except self._errors as e:
            raise StorageError(f"writing {self.url_of(rel)} failed ({_reason(e)})") from None
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


def _s3_error(e: OSError) -> tuple[str, str]:
    """(code, message) of the S3 answer behind an s3fs OSError."""
    response = getattr(e.__cause__, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    code = error.get("Code") or e.__class__.__name__
    return str(code), _first_line(error.get("Message") or e)
