"""`facelift datagen --out s3://...` against a real S3 API: moto's standalone server on 127.0.0.1
(the session fixture `s3`), reached through s3fs by the CLI, its Ray workers and this process.

What is checked for real: shards appear only complete (a thread reads every object the moment it
is listed); a kill -9 of the whole run mid-way and a rerun lose and duplicate nothing; verify and
preview read (and preview writes) the bucket; a missing bucket, refused credentials and an endpoint
that does not answer are one line, exit 2, in seconds, and write nothing anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from conftest import FACELIFT, datagen_args, foreign_tar, silent_port
from datagen.shard_format import read_samples
from datagen.storage import TMP_MARK

PLANNED = [f"id{i:05d}_ap{j:03d}" for i in range(3) for j in range(2)]
# Credentials only this file uses (moto's default server accepts any): none may end up in an object or a log.
KEY_ID, SECRET = "AKIAFACELIFTS3TEST01", "facelift-s3-secret-never-stored-7f3a9c"


def run_args(out: str, *options: str) -> list[str]:
    """The `facelift datagen` arguments of this file's runs into `out`: the PLANNED subjects, 2 random
    views each, 2 subjects a shard (3 shards), 2 workers."""
    return datagen_args(out, 3, 2, "--views-random", "2", "--subjects-per-shard", "2", "--workers", "2", *options)


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [FACELIFT, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})}
    )


def one_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in text, f"expected one line, got:\n{text}"
    return lines[0]


def client():
    """An s3fs client of this process, as any other reader would have: no listing cache."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def objects(fs, prefix: str) -> dict[str, bytes]:
    return {path[len(prefix) + 1 :]: fs.cat_file(path) for path in fs.find(prefix)}


def tar_keys(data: bytes) -> list[str]:
    return [key for key, _ in read_samples(io.BytesIO(data))]


def all_objects(endpoint: str) -> dict[str, str]:
    """Every object of every bucket on a server: key → ETag (what "nothing written" compares)."""
    import boto3

    c = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    found = {}
    for bucket in c.list_buckets()["Buckets"]:
        found[bucket["Name"] + "/"] = ""
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            found.update({f"{bucket['Name']}/{o['Key']}": o["ETag"] for o in page.get("Contents", [])})
    return found


class Watcher(threading.Thread):
    """Lists the run's prefix every 0.1 s and reads each new object version at once: a shard or a
    staging file must be a whole tar the moment it is listed, the card whole JSON, and no other
    name (a temporary) may ever show."""

    def __init__(self, prefix: str):
        super().__init__(daemon=True)
        self.fs, self.prefix = client(), prefix
        self.halt = threading.Event()
        self.run_ended: float | None = None  # set by the test when the datagen process exits
        self.shards: dict[str, list[tuple[str, list[str], bool]]] = {}  # name → (sha256, keys, seen while running)
        self.staged: dict[str, list[str]] = {}
        self.cards = 0
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def run(self) -> None:
        while not self.halt.is_set():
            self.poll()
            time.sleep(0.1)
        self.poll()

    def poll(self) -> None:
        try:
            listing = self.fs.find(self.prefix, detail=True)
        except Exception as e:  # noqa: BLE001 - a failing listing is a finding, not a dead thread
            self.problems.append(f"listing failed: {e!r}")
            return
        running = self.run_ended is None
        for path, info in listing.items():
            if info.get("type") == "directory":
                # s3fs's find answers the prefix itself when the first object appears between its two requests
                continue
            rel = path[len(self.prefix) + 1 :]
            if TMP_MARK in rel or not re.fullmatch(
                r"dataset\.json|\.facelift\.lock|shards/heads-\d{6}\.tar|staging/id\d{5}_ap\d{3}\.tar", rel
            ):
                self.problems.append(f"unexpected object {rel}")
                continue
            if (rel, info.get("ETag")) in self._seen and rel != "dataset.json":
                continue
            self._seen.add((rel, info.get("ETag")))
            try:
                data = self.fs.cat_file(path)
            except FileNotFoundError:
                continue  # a staging file published into its shard and deleted since the listing
            try:
                if rel == "dataset.json":
                    assert json.loads(data)["format"] == "facelift-heads-webdataset"
                    self.cards += 1
                elif rel.startswith("shards/"):
                    self.shards.setdefault(rel[len("shards/") :], []).append(
                        (hashlib.sha256(data).hexdigest(), tar_keys(data), running)
                    )
                elif rel.startswith("staging/"):
                    keys = tar_keys(data)
                    assert keys == [rel[len("staging/") : -len(".tar")]], keys
                    self.staged[rel] = keys
                else:
                    json.loads(data)  # the lock
            except Exception as e:  # noqa: BLE001 - a partial tar or JSON is exactly what this looks for
                self.problems.append(f"{rel} read while listed is not whole: {e.__class__.__name__}: {e}")


def session_processes(sid: int) -> list[int]:
    """Live processes of a session (the CLI, Ray's GCS, raylet, dashboard and workers)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


# ---------------------------------------------------------------------------------------- a whole run


@pytest.mark.slow
def test_datagen_to_s3_publishes_only_whole_shards_and_verify_and_preview_read_it(s3, tmp_path):
    out = s3.make_bucket("facelift-publish") + "/heads"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    watcher = Watcher(out[len("s3://") :])
    watcher.start()
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    run = subprocess.Popen(
        [FACELIFT, *run_args(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, **env},
    )
    try:
        stdout, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
        watcher.run_ended = time.time()
        watcher.halt.set()
        watcher.join(30)
    assert run.returncode == 0, stdout + stderr
    assert "6 subjects rendered, 3 shards written, 3 in all" in stdout, stdout
    assert not watcher.problems, watcher.problems[:5]

    fs = client()
    card = json.loads(fs.cat_file(f"{out[5:]}/dataset.json"))
    recorded = {e["name"]: e for e in card["shards"]}
    assert card["complete"] and sorted(recorded) == [f"heads-00000{k}.tar" for k in range(3)]
    assert sorted(watcher.shards) == sorted(recorded), "every shard was seen, and only shards the card records"
    for name, versions in watcher.shards.items():
        for sha, keys, _ in versions:  # each shard as first listed is the shard the card ends up recording
            assert (sha, keys) == (recorded[name]["sha256"], recorded[name]["keys"]), name
    assert any(running for versions in watcher.shards.values() for *_, running in versions), (
        "no shard was seen while the run went on"
    )
    assert watcher.staged and watcher.cards, "the workers' staging files and the card were seen on S3 during the run"
    left = objects(fs, out[5:])
    assert sorted(left) == ["dataset.json", *(f"shards/{n}" for n in sorted(recorded))], (
        "no lock, staging file or temporary is left"
    )
    assert sorted(k for data in left.values() if data[:1] != b"{" for k in tar_keys(data)) == PLANNED
    for text in [stdout, stderr, *(data.decode("latin-1") for data in left.values())]:
        assert SECRET not in text and KEY_ID not in text, "credentials are never written or printed"

    v = cli("datagen", "verify", out, cwd=cwd)
    assert v.returncode == 0 and one_line(v.stdout) == f"OK: {out}: 3 shards, 6 samples, 48 views verified", (
        v.stdout + v.stderr
    )
    p = cli("datagen", "preview", out, cwd=cwd)
    assert p.returncode == 0 and one_line(p.stdout) == f"{out}/preview.png", p.stdout + p.stderr
    sheet = Image.open(io.BytesIO(fs.cat_file(f"{out[5:]}/preview.png")))
    assert sheet.format == "PNG" and sheet.size == (120 + 6 * 160, 20 + 6 * 160)
    p = cli("datagen", "preview", out, "-o", "local.png", "--tile", "32", cwd=cwd)
    assert p.returncode == 0 and one_line(p.stdout) == str(cwd / "local.png"), p.stdout + p.stderr
    local = Image.open(cwd / "local.png")
    assert local.format == "PNG" and local.size == (120 + 6 * 32, 20 + 6 * 32)
    assert sorted(os.listdir(cwd)) == ["local.png"], "an s3:// run makes no local folder"


# ---------------------------------------------------------------------------------------- kill -9 and rerun


@pytest.mark.slow
def test_kill_9_of_the_whole_run_then_a_rerun_loses_and_duplicates_nothing(s3, tmp_path):
    out = s3.make_bucket("facelift-kill") + "/objects"
    prefix = out[len("s3://") :]
    fs = client()
    args = run_args(out, "--kind", "objects")  # the run's machinery, without heads' hair and face statistics
    run = subprocess.Popen(
        [FACELIFT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 240
        while time.time() < deadline and run.poll() is None:  # mid-run: a shard published, others not yet
            names = [p.rsplit("/", 1)[1] for p in fs.find(prefix)]
            if any(n.startswith("heads-") for n in names):
                break
            time.sleep(0.1)
        assert run.poll() is None, "the run ended before it could be killed: " + run.communicate()[1]
        os.killpg(run.pid, signal.SIGKILL)  # the CLI's process group: the driver, Ray's GCS, raylet, dashboard
        for pid in session_processes(run.pid):  # and the Ray workers, which Ray puts in process groups of their own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        run.wait(30)
        while session_processes(run.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert not session_processes(run.pid), "processes of the killed run survive"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    assert run.returncode == -signal.SIGKILL
    before = objects(fs, prefix)
    shards_before = {rel: data for rel, data in before.items() if rel.startswith("shards/")}
    staged_before = [rel for rel in before if rel.startswith("staging/")]
    assert ".facelift.lock" in before, "kill -9 leaves the lock object; its holder is dead, so the rerun takes it over"
    assert 1 <= len(shards_before) < 3, sorted(before)
    # Subjects already on S3 (a staging file may still hold a subject its shard took in: the kill
    # came between publishing the shard and deleting the staging file).
    kept = len(
        {k for data in shards_before.values() for k in tar_keys(data)}
        | {rel[len("staging/") : -len(".tar")] for rel in staged_before}
    )

    t = time.time()
    r = cli(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{6 - kept} subjects rendered" in r.stdout, (kept, r.stdout)
    after = objects(fs, prefix)
    assert sorted(after) == [
        "dataset.json",
        "shards/heads-000000.tar",
        "shards/heads-000001.tar",
        "shards/heads-000002.tar",
    ], sorted(after)
    assert all(after[rel] == data for rel, data in shards_before.items()), (
        "shards finished before the kill are kept as they were"
    )
    assert sorted(k for rel, data in after.items() if rel.startswith("shards/") for k in tar_keys(data)) == PLANNED, (
        "each subject exactly once"
    )
    v = cli("datagen", "verify", out, cwd=tmp_path)
    assert v.returncode == 0 and "3 shards, 6 samples" in v.stdout, v.stdout + v.stderr
    assert time.time() - t < 240


# ---------------------------------------------------------------------------------------- bad locations


@pytest.fixture(scope="module")
def s3_refusing(tmp_path_factory):
    """A second real S3 API that checks credentials and knows none: every request is refused."""
    from s3_server import S3Server

    server = S3Server(tmp_path_factory.mktemp("s3-auth"), auth=True)
    yield server
    server.stop()


def moto_buckets(endpoint: str) -> list:
    """The buckets a moto server holds, read through its own API (which needs no credentials)."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as r:
        return json.loads(r.read()).get("s3", {}).get("FakeBucket", [])


def _refuse_fast_and_write_nothing(s3, tmp_path, url: str, env: dict, message: str, commands: tuple[str, ...]) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir(parents=True)
    before = all_objects(s3.endpoint)
    calls = {
        "datagen": run_args(url),
        "verify": ["datagen", "verify", url],
        "preview": ["datagen", "preview", url],
    }
    for name in commands:
        t = time.time()
        r = cli(*calls[name], cwd=cwd, env=env, timeout=120)
        line = one_line(r.stderr)
        assert r.returncode == 2 and line.startswith("error: ") and message in line and not r.stdout, (
            f"{name}: {r.stdout}{r.stderr}"
        )
        assert SECRET not in line and KEY_ID not in line
        assert time.time() - t < 30, f"{name} took {time.time() - t:.0f} s"
    assert all_objects(s3.endpoint) == before, "no object or bucket was created"
    assert os.listdir(cwd) == [], "no local folder was created"


def test_a_bucket_that_does_not_exist_is_one_line_and_is_not_created(s3, tmp_path):
    _refuse_fast_and_write_nothing(
        s3,
        tmp_path,
        "s3://facelift-no-such-bucket/run",
        {},
        "s3://facelift-no-such-bucket/run: the bucket 'facelift-no-such-bucket' does not exist at " + s3.endpoint,
        ("datagen", "verify", "preview"),
    )


def test_refused_credentials_are_one_line_and_write_nothing(s3, s3_refusing, tmp_path):
    env = {"AWS_ENDPOINT_URL": s3_refusing.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    _refuse_fast_and_write_nothing(
        s3,
        tmp_path,
        "s3://facelift-refused/run",
        env,
        f"{s3_refusing.endpoint} refused the credentials (InvalidAccessKeyId: ",
        ("datagen", "verify", "preview"),
    )
    assert moto_buckets(s3_refusing.endpoint) == []


def test_an_s3_endpoint_that_does_not_answer_fails_in_seconds(s3, tmp_path):
    from s3_server import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    _refuse_fast_and_write_nothing(
        s3,
        tmp_path / "closed",
        "s3://facelift-anywhere/run",
        {"AWS_ENDPOINT_URL": closed},
        f"the S3 endpoint {closed} does not answer (EndpointConnectionError",
        ("datagen", "verify", "preview"),
    )
    with silent_port() as port:  # accepts and never speaks: the read timeout, not minutes of retries
        _refuse_fast_and_write_nothing(
            s3,
            tmp_path / "silent",
            "s3://facelift-anywhere/run",
            {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"},
            f"the S3 endpoint http://127.0.0.1:{port} does not answer (ReadTimeoutError",
            ("datagen",),
        )


# ---------------------------------------------------------------------------------------- the pieces, in this process


def test_storage_on_s3_writes_whole_objects_lists_fresh_and_never_makes_buckets(s3):
    import boto3

    from datagen.errors import DatagenError
    from datagen.storage import Storage

    url = s3.make_bucket("facelift-storage") + "/out"
    s = Storage(url)
    s.check()
    s.write_bytes("shards/a.tar", b"abc")
    assert (
        s.read_bytes("shards/a.tar") == b"abc"
        and s.size("shards/a.tar") == 3
        and s.url_of("shards/a.tar") == f"{url}/shards/a.tar"
    )
    assert s.write_via("shards/b.tar", lambda f: f.write(b"xy")) == 2
    assert (
        s.listdir("shards") == ["a.tar", "b.tar"]
        and s.listdir("staging") == []
        and s.exists("")
        and not s.exists("nothing")
    )
    # Another process (a Ray worker) writes behind this one's back: the next listing and read see it.
    client().pipe_file(f"{s.root}/shards/c.tar", b"from a worker")
    assert s.listdir("shards") == ["a.tar", "b.tar", "c.tar"] and s.sizes("shards")["c.tar"] == 13
    assert s.read_bytes("shards/c.tar") == b"from a worker"
    s.remove("shards/a.tar")
    s.remove("shards/a.tar")  # already gone: nothing to do
    assert s.listdir("shards") == ["b.tar", "c.tar"]

    boto = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
    absent = Storage("s3://facelift-absent/out")
    absent.makedirs("shards")  # object stores have no folders: s3fs's makedirs would create the bucket
    with pytest.raises(DatagenError, match="the bucket 'facelift-absent' does not exist"):
        absent.ensure_writable()
    assert "facelift-absent" not in [b["Name"] for b in boto.list_buckets()["Buckets"]]


def test_a_rerun_sets_bad_files_aside_on_s3_and_a_crash_mid_rename_loses_nothing(s3):
    """A rename on S3 is copy + delete. What a crash between the two leaves (the original and a
    whole copy) is set aside again by the rerun: two copies of the rejected file, never none."""
    from datagen.card import new_card
    from datagen.config import make_config
    from datagen.shard_book import ShardBook
    from datagen.storage import Storage

    url = s3.make_bucket("facelift-aside") + "/out"
    fs, root = client(), url[len("s3://") :]
    foreign, garbage = foreign_tar(), b"\0" * 1024
    fs.pipe_file(f"{root}/shards/heads-000000.tar", foreign)  # someone else's tar under our name, not in the card
    fs.pipe_file(f"{root}/shards/heads-000000.tar.rejected-20260101T000000Z", foreign)  # the crashed run's copy of it
    fs.pipe_file(f"{root}/staging/id00000_ap001.tar", garbage)  # a staged subject that does not decode
    cfg = make_config("test", identities=1, appearances=2, subjects_per_shard=1, views_random=0)
    book = ShardBook(Storage(url), new_card(cfg, []), cfg)
    book.reconcile()
    assert book.todo_count == 2 and len(book.set_aside) == 2
    left = objects(fs, root)
    assert "shards/heads-000000.tar" not in left and "staging/id00000_ap001.tar" not in left
    rejected = {rel: data for rel, data in left.items() if ".rejected-" in rel}
    assert sorted(rejected.values()) == sorted([foreign, foreign, garbage]), sorted(rejected)
    assert sorted(book.set_aside) == sorted(rel for rel in rejected if not rel.endswith("20260101T000000Z"))


def test_the_s3_lock_is_taken_over_only_from_a_dead_or_silent_holder(s3):
    from datagen.errors import OutputLocked
    from datagen.lock import LOCK_NAME, STALE_S, OutputLock, _holder
    from datagen.storage import Storage

    url = s3.make_bucket("facelift-lock") + "/out"
    s = Storage(url)
    dead = subprocess.Popen(["true"])
    dead.wait()
    ours, other = _holder(), _holder()
    holders = {
        "a dead process on this machine": ({**ours, "pid": dead.pid, "pid_start": None}, True),
        "another machine, heartbeat fresh": ({**other, "host": "elsewhere", "pid": dead.pid}, False),
        "another machine, heartbeat stale": ({**other, "host": "elsewhere", "time": time.time() - STALE_S - 1}, True),
        "a reused pid on this machine": ({**ours, "pid": os.getpid(), "pid_start": -1}, True),
    }
    for case, (holder, taken) in holders.items():
        s.write_bytes(LOCK_NAME, json.dumps(holder).encode())
        if taken:
            with OutputLock(s) as lock:
                assert json.loads(s.read_bytes(LOCK_NAME))["token"] == lock.holder["token"], case
            assert not s.exists(LOCK_NAME), f"{case}: released"
        else:
            with pytest.raises(OutputLocked, match="host elsewhere"):
                OutputLock(s).__enter__()
            assert json.loads(s.read_bytes(LOCK_NAME)) == holder, f"{case}: left as it was"
    s.remove(LOCK_NAME)
    with OutputLock(s) as lock:  # a live holder (this process) keeps its lock
        with pytest.raises(OutputLocked, match=f"pid {os.getpid()}"):
            OutputLock(s).__enter__()
        assert json.loads(s.read_bytes(LOCK_NAME))["token"] == lock.holder["token"]
