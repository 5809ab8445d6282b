"""One run per output folder: `OUT/.facelift.lock`.

Local folders (and network file systems with POSIX locks): an exclusive `flock` on the lock file,
held for the run's life. The kernel drops it when the holder dies, kill -9 included, so a stale
lock file never blocks a rerun; the file's JSON (host, pid, start time) only names the holder in
the refusal. Object stores have no locks: the lock is an object whose holder rewrites its time every
HEARTBEAT_S; one older than STALE_S is stale and taken over. A holder on this very machine (same
host name, boot and pid namespace) whose process is gone (kill -9, a crash) is stale at once, so a
rerun after a crash starts right away instead of waiting STALE_S. Two runs starting within the
same second on an object store can still both start (the lock is last-writer-wins, read back).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid

from datagen.errors import DatagenError, OutputLocked, StorageError
from datagen.storage import Storage

LOCK_NAME = ".facelift.lock"
HEARTBEAT_S = 30.0
STALE_S = 300.0


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid,
    it names one process even after its pid is reused. None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _holder() -> dict:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "token": uuid.uuid4().hex,
        "time": time.time(),
        "boot_id": _boot_id(),
        "pid_ns": _pid_namespace(),
        "pid_start": _process_start(pid),
    }


def holder_is_gone(holder: dict) -> bool:
    """True only when the holder ran on this machine (same host name, boot and pid namespace) and
    its process no longer exists; a holder elsewhere can only go stale by its heartbeat."""
    same_machine = (
        holder.get("host") == socket.gethostname()
        and holder.get("boot_id") is not None
        and holder.get("boot_id") == _boot_id()
        and holder.get("pid_ns") == _pid_namespace()
    )
    if not same_machine or not isinstance(holder.get("pid"), int):
        return False
    start = _process_start(holder["pid"])
    return start is None or (holder.get("pid_start") is not None and start != holder["pid_start"])


def _describe(holder: dict) -> str:
    return f"host {holder.get('host', '?')}, pid {holder.get('pid', '?')}, since {holder.get('started', '?')}"


def _refusal(storage: Storage, holder: dict) -> OutputLocked:
    return OutputLocked(
        f"--out {storage.url} is in use by another facelift datagen run ({_describe(holder)}); "
        f"wait for it to finish or stop it, then rerun"
    )


class OutputLock:
    """Context manager; creates OUT if needed. `created_out` tells whether OUT did not exist before."""

    def __init__(self, storage: Storage):
        self.storage = storage
        self.created_out = False
        self._fd = None
        self._stop = threading.Event()
        self._thread = None
        self.holder = _holder()

    def __enter__(self) -> OutputLock:
        self.storage.check()  # a missing bucket, refused credentials, a dead endpoint: one line, nothing written
        self.created_out = not self.storage.exists("")
        if self.storage.local:
            self._take_local()
        else:
            self._take_remote()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # ---- local: flock

    def _take_local(self) -> None:
        path = self.storage.path(LOCK_NAME)
        try:
            os.makedirs(self.storage.root, exist_ok=True)
        except OSError as e:
            raise DatagenError(f"--out {self.storage.url} is not writable ({e.strerror or e})") from None
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise DatagenError(f"--out {self.storage.url} is not writable ({e.strerror or e})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_local(fd)
                os.close(fd)
                raise _refusal(self.storage, holder) from None
            # The holder before us may have unlinked the file after we opened it: lock the file on disk.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        data = json.dumps(self.holder).encode()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        except OSError:
            pass  # a full disk: the lock holds anyway, the refusal just names no holder

    @staticmethod
    def _read_local(fd: int) -> dict:
        try:
            return json.loads(os.pread(fd, 4096, 0) or b"{}")
        except (OSError, ValueError):
            return {}

    # ---- object stores: heartbeat object

    def _take_remote(self) -> None:
        s = self.storage
        current = self._read_remote()
        if current and current.get("token") != self.holder["token"] and not self._stale(current):
            raise _refusal(s, current)
        try:
            s.write_bytes(LOCK_NAME, json.dumps(self.holder).encode())
        except StorageError as e:
            raise DatagenError(f"--out {s.url} is not writable ({e})") from None
        time.sleep(0.5)  # last writer wins: whoever reads someone else's token backs off
        current = self._read_remote()
        if current.get("token") != self.holder["token"]:
            raise _refusal(s, current)
        self._thread = threading.Thread(target=self._heartbeat, daemon=True)
        self._thread.start()

    @staticmethod
    def _stale(holder: dict) -> bool:
        try:
            age = time.time() - float(holder.get("time", 0))
        except (TypeError, ValueError):
            age = STALE_S
        return age >= STALE_S or holder_is_gone(holder)

    def _read_remote(self) -> dict:
        try:
            holder = json.loads(self.storage.read_bytes(LOCK_NAME)) if self.storage.exists(LOCK_NAME) else {}
        except (StorageError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.holder["time"] = time.time()
            try:
                self.storage.write_bytes(LOCK_NAME, json.dumps(self.holder).encode())
            except StorageError:
                pass

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.storage.path(LOCK_NAME))
            except OSError:
                pass
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            try:
                if self._read_remote().get("token") == self.holder["token"]:
                    self.storage.remove(LOCK_NAME)
            except StorageError:
                pass
