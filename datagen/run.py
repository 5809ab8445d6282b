"""The datagen driver: plan shards, resume what exists, render the rest on Ray actors, publish shards.

Crash safety rests on three facts:
1. shard k always holds the same subjects (subjects in (identity, appearance) order, cut every
   `subjects_per_shard`), so a rerun knows what each shard must contain;
2. a rendered subject is published atomically as OUT/staging/<key>.tar before it counts as done;
3. a shard is published atomically under its final name, then recorded in the card, and only
   then are its staging files deleted.
A rerun after any crash therefore adopts finished shards, re-renders only subjects with neither a
shard nor a staging file, and never writes a key twice.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlparse

from datagen.card import SHARD_DIR, STAGING_DIR, open_card, save_card, shard_name
from datagen.config import DatagenConfig, RunOptions
from datagen.errors import DatagenError
from datagen.progress import SubjectProgress
from datagen.sample import read_samples, write_samples
from datagen.seeding import subject_key
from datagen.spec import make_spec
from datagen.storage import Storage
from datagen.worker import RenderWorker, staging_name


class DatagenInterrupted(Exception):
    """Ctrl-C: staging files and finished shards are kept; rerunning resumes."""


def plan_shards(cfg: DatagenConfig) -> list[list[tuple[int, int]]]:
    subjects = [(i, j) for i in range(cfg.identities) for j in range(cfg.appearances)]
    n = cfg.subjects_per_shard
    return [subjects[k : k + n] for k in range(0, len(subjects), n)]


@dataclass
class RunSummary:
    out: str
    shards_total: int
    shards_written_now: int = 0
    rendered_now: int = 0
    reused_staged: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    render_wall_s: float = 0.0  # from all actors ready (Blender loaded) to the last subject
    workers: int = 0
    timing: dict[str, float] = field(default_factory=dict)


class _HashingWriter:
    """File wrapper that sha256-hashes what goes through it (one pass for write and hash)."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def _publish_shard(storage: Storage, card: dict, index: int, keys: list[str]) -> None:
    """Concatenate staged subjects into shard `index`, publish it, record it, drop the staging files."""

    def fill(f):
        w = _HashingWriter(f)
        samples = (sample for key in keys for sample in read_samples(storage.open_read(staging_name(key))))
        count = write_samples(w, samples)
        return count, w.sha.hexdigest(), w.size

    count, sha, size = storage.write_via(f"{SHARD_DIR}/{shard_name(index)}", fill)
    if count != len(keys):
        raise RuntimeError(f"shard {index}: wrote {count} samples, expected {len(keys)}")
    card["shards"] = [s for s in card["shards"] if s["index"] != index]
    card["shards"].append({"index": index, "name": shard_name(index), "samples": count, "sha256": sha, "bytes": size, "keys": keys})


def _adopt_shard(storage: Storage, index: int) -> dict:
    """Card entry for a shard that was published but not yet recorded (crash in between)."""
    rel = f"{SHARD_DIR}/{shard_name(index)}"
    data = storage.read_bytes(rel)
    keys = [key for key, _ in read_samples(io.BytesIO(data))]
    return {"index": index, "name": shard_name(index), "samples": len(keys), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "keys": keys}


def check_ray_address(address: str) -> None:
    """Fail fast, in one line, when a host:port Ray address does not answer."""
    if address == "auto":
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if not parsed.hostname or not parsed.port:
        raise DatagenError(f"--ray-address {address!r} is not allowed (use auto, host:port or ray://host:port)")
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=3).close()
    except OSError as e:
        raise DatagenError(f"--ray-address {address} does not answer ({e.strerror or e})") from None


def start_ray(opts: RunOptions):
    import logging

    import ray

    kwargs = dict(log_to_driver=False, include_dashboard=False, configure_logging=True, logging_level=logging.ERROR)
    if opts.ray_address:
        import blender_assets
        import datagen
        import facelift_models

        # Ship this code to the cluster so nodes only need the dependencies installed.
        kwargs["runtime_env"] = {"py_modules": [blender_assets, datagen, facelift_models]}
        try:
            ray.init(address=opts.ray_address, **kwargs)
        except (ConnectionError, RuntimeError) as e:
            raise DatagenError(f"--ray-address {opts.ray_address} could not be joined ({str(e).splitlines()[0]})") from None
    else:
        ray.init(num_cpus=os.cpu_count(), object_store_memory=256 * 2**20, **kwargs)
    return ray


def run_datagen(cfg: DatagenConfig, opts: RunOptions, out: str, show_progress: bool = True) -> RunSummary:
    opts.validate()
    if opts.ray_address:
        check_ray_address(opts.ray_address)  # before touching OUT, even when nothing is left to render
    t0 = time.time()
    storage = Storage(out)
    storage.ensure_writable()
    card = open_card(storage, cfg, opts.command)
    for folder in (SHARD_DIR, STAGING_DIR):
        storage.makedirs(folder)
        storage.remove_temporaries(folder)
    storage.remove_temporaries("")
    summary = RunSummary(out=out, shards_total=cfg.shard_count)

    shards = plan_shards(cfg)
    shard_keys = [[subject_key(i, j) for i, j in subjects] for subjects in shards]
    shard_of = {key: k for k, keys in enumerate(shard_keys) for key in keys}

    # Reconcile the card with what is on storage.
    on_disk = set(storage.listdir(SHARD_DIR))
    recorded = {s["index"] for s in card["shards"]}
    card["shards"] = [s for s in card["shards"] if s["name"] in on_disk]  # a recorded shard that vanished is redone
    for k in range(len(shards)):
        if shard_name(k) in on_disk and k not in recorded:
            card["shards"].append(_adopt_shard(storage, k))
    finished = {s["index"] for s in card["shards"]}
    staged = {n[: -len(".tar")] for n in storage.listdir(STAGING_DIR) if n.endswith(".tar")}
    for key in sorted(staged):
        if key not in shard_of or shard_of[key] in finished:
            storage.remove(staging_name(key))  # already inside a finished shard (crash before cleanup)
    staged = {key for key in staged if key in shard_of and shard_of[key] not in finished}
    summary.reused_staged = len(staged)
    # Failures of unfinished shards get a fresh try; those inside finished shards stay recorded.
    card["failed"] = {k: v for k, v in card["failed"].items() if shard_of.get(k) in finished}
    run_record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": opts.command, "host": socket.gethostname()}
    card["runs"].append(run_record)
    save_card(storage, card, cfg)

    def resolved(k: int) -> bool:
        return all(key in staged or key in card["failed"] for key in shard_keys[k])

    def publish_ready() -> None:
        for k in range(len(shards)):
            if k not in finished and resolved(k):
                keys = [key for key in shard_keys[k] if key in staged]
                _publish_shard(storage, card, k, keys)
                finished.add(k)
                summary.shards_written_now += 1
                save_card(storage, card, cfg)
                for key in keys:
                    storage.remove(staging_name(key))

    publish_ready()
    todo = deque((i, j) for k, subjects in enumerate(shards) if k not in finished for i, j in subjects if subject_key(i, j) not in staged)
    progress = SubjectProgress(total=cfg.subjects, done=cfg.subjects - len(todo), enabled=show_progress)
    try:
        if todo:
            _render_all(cfg, opts, out, todo, staged, card, summary, progress, publish_ready)
    except KeyboardInterrupt:
        raise DatagenInterrupted(f"interrupted: {len(finished)} of {len(shards)} shards finished, {len(staged)} subjects staged; rerun the same command to resume") from None
    finally:
        progress.close()
        run_record.update({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rendered": summary.rendered_now, **{k: round(v, 3) for k, v in summary.timing.items()}})
        save_card(storage, card, cfg)
    summary.failed = {k: v["error"] for k, v in card["failed"].items()}
    summary.seconds = time.time() - t0
    return summary


def _render_all(cfg, opts, out, todo, staged, card, summary, progress, publish_ready) -> None:
    ray = start_ray(opts)
    from ray.exceptions import RayActorError, RayTaskError

    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        # Each actor holds its CPUs for life: more than fit would wait forever.
        fit = cpus // opts.threads_per_worker
        if fit < 1 or opts.workers > fit:
            asked = opts.workers or 1
            raise DatagenError(f"--workers {asked} × --threads-per-worker {opts.threads_per_worker} needs {asked * opts.threads_per_worker} CPUs; the Ray cluster has {cpus}")
        n_workers = min(opts.workers or fit, len(todo))
        summary.workers = n_workers
        Actor = ray.remote(num_cpus=opts.threads_per_worker, max_restarts=0)(RenderWorker)

        def new_actor():
            return Actor.remote(out, opts.threads_per_worker, opts.device)

        actors = [new_actor() for _ in range(n_workers)]
        ray.get([a.__ray_ready__.remote() for a in actors])  # Blender loaded in every actor
        t_start = time.perf_counter()
        uses = [0] * n_workers
        idle = deque(range(n_workers))
        in_flight: dict = {}
        attempts: dict[str, int] = {}
        timing = summary.timing
        while todo or in_flight:
            while todo and idle:
                w = idle.popleft()
                i, j = todo.popleft()
                spec = make_spec(cfg, i, j)
                in_flight[actors[w].render.remote(spec)] = (w, i, j)
            done, _ = ray.wait(list(in_flight), num_returns=1)
            ref = done[0]
            w, i, j = in_flight.pop(ref)
            key = subject_key(i, j)
            try:
                result = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                if isinstance(getattr(e, "cause", None), DatagenError):
                    raise e.cause from None  # a setting no subject can satisfy (e.g. --device gpu without one)
                if isinstance(e, RayActorError) or not _actor_alive(ray, actors[w]):
                    actors[w], uses[w] = new_actor(), 0  # the Blender process died: start a fresh one
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] <= opts.retries:
                    todo.appendleft((i, j))
                else:
                    card["failed"][key] = {"error": _one_line(e), "attempts": attempts[key]}
                    progress.advance(failed=True)
                    publish_ready()
            else:
                staged.add(key)
                summary.rendered_now += 1
                for name, value in result["timing"].items():
                    if isinstance(value, (int, float)):
                        timing[name] = timing.get(name, 0.0) + value
                timing["max_worker_rss_mb"] = max(timing.get("max_worker_rss_mb", 0.0), result["rss_mb"])
                progress.advance()
                publish_ready()
                uses[w] += 1
                if uses[w] >= opts.recycle_every:
                    ray.kill(actors[w])  # a fresh Blender keeps memory flat over long runs
                    actors[w], uses[w] = new_actor(), 0
            idle.append(w)
        summary.render_wall_s = time.perf_counter() - t_start
    finally:
        ray.shutdown()


def _actor_alive(ray, actor) -> bool:
    try:
        ray.get(actor.__ray_ready__.remote(), timeout=30)
        return True
    except Exception:
        return False


def _one_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = f"{cause.__class__.__name__}: {cause}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:500] if lines else cause.__class__.__name__
