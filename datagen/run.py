"""The datagen driver: check everything, lock OUT, reconcile it, render the rest on Ray actors.

Order matters for "bad input leaves OUT as it was": every check that can fail (options, the Ray
address, CPUs and GPUs, the card's config) runs before the first write; a folder this run created
and left empty is removed again. What a crash leaves behind is reconciled by `ShardBook`.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from dataclasses import dataclass, field

from datagen import face_stats
from datagen.card import SHARD_DIR, STAGING_DIR, open_card, save_card
from datagen.config import DatagenConfig, RunOptions
from datagen.errors import DatagenError, DatagenInterrupted, StorageError
from datagen.lock import OutputLock
from datagen.progress import SubjectProgress
from datagen.ray_cluster import resolve_ray_address, start_ray
from datagen.seeding import subject_key
from datagen.shard_book import ShardBook
from datagen.spec import make_spec
from datagen.storage import Storage, check_output_url
from datagen.worker import RenderWorker


@dataclass
class RunSummary:
    out: str
    shards_total: int
    shards_written_now: int = 0
    rendered_now: int = 0
    reused_staged: int = 0
    set_aside: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    render_wall_s: float = 0.0  # from all actors ready (Blender loaded) to the last subject
    workers: int = 0
    timing: dict[str, float] = field(default_factory=dict)


def check_local_workers(opts: RunOptions, cpus: int) -> None:
    """Each actor holds its CPUs for life: more than fit would wait forever."""
    if cpus // opts.threads_per_worker < 1 or opts.workers > cpus // opts.threads_per_worker:
        asked = opts.workers or 1
        raise DatagenError(f"--workers {asked} × --threads-per-worker {opts.threads_per_worker} needs {asked * opts.threads_per_worker} CPUs; the Ray cluster has {cpus}")


def run_datagen(cfg: DatagenConfig, opts: RunOptions, out: str, show_progress: bool = True) -> RunSummary:
    opts.validate()
    check_output_url(out)
    address = resolve_ray_address(opts.ray_address) if opts.ray_address else None
    if address is None:
        check_local_workers(opts, os.cpu_count() or 1)
    storage = Storage(out)
    lock = OutputLock(storage)
    try:
        with lock:
            return _run_locked(cfg, opts, storage, address, show_progress)
    finally:
        if lock.created_out and storage.local and os.path.isdir(storage.root) and not os.listdir(storage.root):
            os.rmdir(storage.root)  # an early refusal leaves no trace


def _run_locked(cfg: DatagenConfig, opts: RunOptions, storage: Storage, address: str | None, show_progress: bool) -> RunSummary:
    t0 = time.time()
    card = open_card(storage, cfg, opts.command)
    book = ShardBook(storage, card, cfg, retry_failed=opts.retry_failed)
    book.reconcile()
    summary = RunSummary(out=storage.url, shards_total=book.plan.shard_count, reused_staged=len(book.staged), set_aside=list(book.set_aside))
    todo_count = book.todo_count
    farm = RenderFarm(cfg, opts, storage.url, address, todo_count) if todo_count else None
    try:
        if farm:
            farm.start()  # Ray, actors, Blender and the device check: the last refusals before writing
        run_record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": opts.command, "host": socket.gethostname()}
        if book.set_aside:
            run_record["set_aside"] = list(book.set_aside)
        card["runs"].append(run_record)
        save_card(storage, card, cfg)
        for folder in (SHARD_DIR, STAGING_DIR):
            storage.makedirs(folder)
        book.cleanup()
        summary.shards_written_now += book.publish_all_ready()
        progress = SubjectProgress(total=book.plan.subjects, done=book.plan.subjects - todo_count, enabled=show_progress)
        try:
            if farm:
                farm.render(book, summary, progress)
        except KeyboardInterrupt:
            raise DatagenInterrupted(
                f"interrupted: {len(book.recorded)} of {book.plan.shard_count} shards finished, {len(book.staged)} subjects staged; "
                "rerun the same command to resume"
            ) from None
        finally:
            progress.close()
            run_record.update({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rendered": summary.rendered_now,
                               **{k: round(v, 3) for k, v in summary.timing.items()}})
            try:
                save_card(storage, card, cfg)
            except StorageError:
                pass  # the card on storage is the last complete one; the error that stopped us is reported
    finally:
        if farm:
            farm.stop()
    if face_stats.needs_update(card):  # after the farm: the detector gets the CPUs the renders had
        card[face_stats.FIELD] = face_stats.measure(storage, card)
        save_card(storage, card, cfg)
    summary.failed = {k: v["error"] for k, v in card["failed"].items()}
    summary.seconds = time.time() - t0
    return summary


class RenderFarm:
    """Ray actors, one Blender each, fed subject specs; restarts dead actors, retries subjects."""

    def __init__(self, cfg: DatagenConfig, opts: RunOptions, out: str, address: str | None, max_workers: int):
        self.cfg, self.opts, self.out, self.address, self.max_workers = cfg, opts, out, address, max_workers
        self.ray = None
        self.actors: list = []

    def start(self) -> None:
        opts = self.opts
        self.ray = ray = start_ray(self.address)
        from ray.exceptions import RayTaskError

        cpus = int(ray.cluster_resources().get("CPU", 1))
        check_local_workers(opts, cpus)
        n_workers = min(opts.workers or cpus // opts.threads_per_worker, self.max_workers)
        self._Actor = ray.remote(num_cpus=opts.threads_per_worker, max_restarts=0)(RenderWorker)
        self.actors = [self._new_actor() for _ in range(n_workers)]
        try:
            ray.get([a.probe_device.remote() for a in self.actors])  # Blender loaded, the device found, in every actor
        except RayTaskError as e:
            if isinstance(getattr(e, "cause", None), DatagenError):
                raise e.cause from None  # e.g. --device gpu on a machine without one
            raise

    def _new_actor(self):
        return self._Actor.remote(self.out, self.opts.threads_per_worker, self.opts.device)

    def stop(self) -> None:
        if self.ray is not None:
            self.ray.shutdown()
            self.ray = None

    def render(self, book: ShardBook, summary: RunSummary, progress: SubjectProgress) -> None:
        ray, opts, actors = self.ray, self.opts, self.actors
        from ray.exceptions import RayActorError, RayTaskError

        summary.workers = len(actors)
        t_start = time.perf_counter()
        todo = book.pending()
        retry: deque = deque()
        uses = [0] * len(actors)
        idle = deque(range(len(actors)))
        in_flight: dict = {}
        attempts: dict[str, int] = {}
        timing = summary.timing

        def next_subject():
            return retry.popleft() if retry else next(todo, None)

        while True:
            while idle:
                subject = next_subject()
                if subject is None:
                    break
                w = idle.popleft()
                i, j = subject
                in_flight[actors[w].render.remote(make_spec(self.cfg, i, j))] = (w, i, j)
            if not in_flight:
                break
            done, _ = ray.wait(list(in_flight), num_returns=1)
            ref = done[0]
            w, i, j = in_flight.pop(ref)
            key = subject_key(i, j)
            try:
                result = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                if isinstance(getattr(e, "cause", None), DatagenError):
                    raise e.cause from None  # storage full, or a setting no subject can satisfy: stop, keep what is done
                if isinstance(e, RayActorError) or not _actor_alive(ray, actors[w]):
                    actors[w], uses[w] = self._new_actor(), 0  # the Blender process died: start a fresh one
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] <= opts.retries:
                    retry.appendleft((i, j))
                else:
                    book.subject_failed(key, {"error": _one_line(e), "attempts": attempts[key]})
                    progress.advance(failed=True)
                    summary.shards_written_now += book.publish_if_ready(book.plan.shard_of(key))
            else:
                book.subject_done(key)
                summary.rendered_now += 1
                for name, value in result["timing"].items():
                    if isinstance(value, (int, float)):
                        timing[name] = timing.get(name, 0.0) + value
                timing["max_worker_rss_mb"] = max(timing.get("max_worker_rss_mb", 0.0), result["rss_mb"])
                progress.advance()
                summary.shards_written_now += book.publish_if_ready(book.plan.shard_of(key))
                uses[w] += 1
                if uses[w] >= opts.recycle_every:
                    ray.kill(actors[w])  # a fresh Blender keeps memory flat over long runs
                    actors[w], uses[w] = self._new_actor(), 0
            idle.append(w)
        summary.render_wall_s = time.perf_counter() - t_start


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
