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
from datagen.card import STAGING_DIR, open_card, save_card
from datagen.config import DatagenConfig, RunOptions
from datagen.devices import gpus_per_worker, worker_slots
from datagen.errors import DatagenError, DatagenInterrupted, StorageError
from datagen.lock import OutputLock
from datagen.progress import SubjectProgress
from datagen.ray_cluster import cluster_nodes, code_fingerprint, node_gone, resolve_ray_address, start_ray
from datagen.shard_book import ShardBook
from datagen.shard_format import FACE_STATS_FIELD, SHARD_DIR, subject_key
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
    nodes_lost: list[str] = field(default_factory=list)  # "host node-id" of each node lost mid-run


START_S = 600.0  # every first actor must be up (Blender loaded, devices checked) within this
WAIT_S = 10.0  # how often the render loop looks up from waiting to check for a stall
STALL_S = 300.0  # no worker running for this long, and none can start: give up, keep what is done
START_FAILURES = 3  # a slot whose replacement actors die while starting this often in a row is given up
NODE_LOSSES = 3  # resubmissions of one subject after node losses that do not count as its attempts


def check_workers(opts: RunOptions, slots: int, gpus: float, nodes: list[dict]) -> None:
    """Each actor holds its CPUs (and GPUs) on one node for life: more than fit would wait forever."""
    if slots >= 1 and opts.workers <= slots:
        return
    asked, threads = opts.workers or 1, opts.threads_per_worker
    cpus, biggest = sum(n["cpus"] for n in nodes), max((n["cpus"] for n in nodes), default=0)
    if gpus > 0:
        raise DatagenError(
            f"--workers {asked} × --gpus-per-worker {gpus:g} needs {asked * gpus:g} GPUs, "
            f"each worker with {threads} CPUs on the same node; "
            f"the Ray cluster's nodes hold {slots} such workers ({sum(n['gpus'] for n in nodes):g} GPUs, "
            f"{cpus:g} CPUs)"
        )
    per_node = f", at most {biggest:g} on one node" if asked * threads <= cpus else ""
    raise DatagenError(
        f"--workers {asked} × --threads-per-worker {threads} needs {asked * threads} CPUs; "
        f"the Ray cluster has {cpus:g}{per_node}"
    )


def run_datagen(cfg: DatagenConfig, opts: RunOptions, out: str, show_progress: bool = True) -> RunSummary:
    opts.validate()
    check_output_url(out)
    address = resolve_ray_address(opts.ray_address) if opts.ray_address else None
    if address is None:  # the local cluster is this machine's CPUs: refuse before starting Ray
        cpus = float(os.cpu_count() or 1)
        check_workers(
            opts, worker_slots([(cpus, 0.0)], opts.threads_per_worker, 0.0), 0.0, [{"cpus": cpus, "gpus": 0.0}]
        )
    storage = Storage(out)
    lock = OutputLock(storage)
    try:
        with lock:
            return _run_locked(cfg, opts, storage, address, show_progress)
    finally:
        if lock.created_out and storage.local and os.path.isdir(storage.root) and not os.listdir(storage.root):
            os.rmdir(storage.root)  # an early refusal leaves no trace


def _run_locked(
    cfg: DatagenConfig, opts: RunOptions, storage: Storage, address: str | None, show_progress: bool
) -> RunSummary:
    t0 = time.time()
    card = open_card(storage, cfg, opts.command)
    book = ShardBook(storage, card, cfg, retry_failed=opts.retry_failed)
    book.reconcile()
    summary = RunSummary(
        out=storage.url,
        shards_total=book.plan.shard_count,
        reused_staged=len(book.staged),
        set_aside=list(book.set_aside),
    )
    todo_count = book.todo_count
    # Workers resolve a relative path against their own folder, not the driver's: give them OUT absolute.
    farm = (
        RenderFarm(cfg, opts, storage.root if storage.local else storage.url, address, todo_count)
        if todo_count
        else None
    )
    try:
        if farm:
            farm.start()  # Ray, actors, Blender and the device check: the last refusals before writing
        run_record = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": opts.command,
            "host": socket.gethostname(),
        }
        if book.set_aside:
            run_record["set_aside"] = list(book.set_aside)
        if farm:
            run_record.update(farm.record)  # shared lists: workers started and nodes lost later show up too
        card["runs"].append(run_record)
        save_card(storage, card, cfg)
        for folder in (SHARD_DIR, STAGING_DIR):
            storage.makedirs(folder)
        book.cleanup()
        summary.shards_written_now += book.publish_all_ready()
        progress = SubjectProgress(
            total=book.plan.subjects, done=book.plan.subjects - todo_count, enabled=show_progress
        )
        try:
            if farm:
                farm.render(book, summary, progress)
        except KeyboardInterrupt:
            raise DatagenInterrupted(
                f"interrupted: {len(book.recorded)} of {book.plan.shard_count} shards finished, "
                f"{len(book.staged)} subjects staged; "
                "rerun the same command to resume"
            ) from None
        finally:
            progress.close()
            run_record.update(
                {
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "rendered": summary.rendered_now,
                    **{k: round(v, 3) for k, v in summary.timing.items()},
                }
            )
            try:
                save_card(storage, card, cfg)
            except StorageError:
                pass  # the card on storage is the last complete one; the error that stopped us is reported
    finally:
        if farm:
            farm.stop()
    if face_stats.needs_update(card):  # after the farm: the detector gets the CPUs the renders had
        card[FACE_STATS_FIELD] = face_stats.measure(storage, card)
        save_card(storage, card, cfg)
    summary.failed = {k: v["error"] for k, v in card["failed"].items()}
    summary.seconds = time.time() - t0
    return summary


class _Slot:
    """One render actor's place in the farm: its actor, and what it reported once ready."""

    def __init__(self, actor):
        self.actor = actor
        self.info: dict | None = None  # the actor's probe; None while it starts
        self.uses = 0
        self.start_failures = 0  # actors of this slot that died while starting, in a row


class RenderFarm:
    """Ray actors, one Blender each, fed subject specs; restarts dead actors, retries subjects, and
    carries on without a lost node (its subjects go to the surviving workers)."""

    def __init__(self, cfg: DatagenConfig, opts: RunOptions, out: str, address: str | None, max_workers: int):
        self.cfg, self.opts, self.out, self.address, self.max_workers = cfg, opts, out, address, max_workers
        self.ray = None
        self.slots: list[_Slot] = []
        self.gpus = 0.0  # GPUs each actor reserves
        self.code: dict = {}
        self.record: dict = {}  # for the run record: cluster, code, workers, nodes lost

    def start(self) -> None:
        opts = self.opts
        self.code = code_fingerprint()  # the files ray.init is about to zip and ship
        self.ray = ray = start_ray(self.address)
        nodes = cluster_nodes(ray)
        cpus, cluster_gpus = sum(n["cpus"] for n in nodes), sum(n["gpus"] for n in nodes)
        self.gpus = gpus_per_worker(opts.device, opts.gpus_per_worker, cluster_gpus)
        slots = worker_slots([(n["cpus"], n["gpus"]) for n in nodes], opts.threads_per_worker, self.gpus)
        check_workers(opts, slots, self.gpus, nodes)
        n_workers = min(opts.workers or slots, self.max_workers)
        self._Actor = ray.remote(num_cpus=opts.threads_per_worker, num_gpus=self.gpus, max_restarts=0)(RenderWorker)
        self.slots = [_Slot(self._new_actor()) for _ in range(n_workers)]
        self.record = {
            "cluster": {
                "address": self.address or "local",
                "nodes": len(nodes),
                "cpus": cpus,
                "gpus": cluster_gpus,
                "threads_per_worker": opts.threads_per_worker,
                "gpus_per_worker": self.gpus,
            },
            "code": {
                "fingerprint": self.code["fingerprint"],
                "driver": self.code["path"],
                "shipped": bool(self.address),
                "workers": [],
            },
            "workers": [],
            "nodes_lost": [],
        }
        infos = self._first_probes()
        errors = [info for info in infos if "error" in info]
        if errors:  # e.g. --device gpu without one, or GPUs Blender cannot see: one line naming every worker's GPUs
            others = [f"{e['host']} GPU {','.join(e['gpus'])} ({e['visible']})" for e in errors[1:] if e["gpus"]]
            more = f" ({len(others)} more workers failed the same check: {'; '.join(others)})" if others else ""
            raise DatagenError(errors[0]["error"] + more)
        for w, info in enumerate(infos):
            self._ready(w, info)

    def _first_probes(self) -> list[dict]:
        """Every actor's probe: Blender loaded and the devices chosen before anything is written."""
        ray = self.ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        refs = [slot.actor.probe.remote() for slot in self.slots]
        try:
            return ray.get(refs, timeout=START_S)
        except GetTimeoutError:
            ready = len(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
            raise DatagenError(
                f"only {ready} of {len(refs)} render workers started within {START_S:.0f} s: "
                "the Ray cluster has no room for the rest (other jobs?); use fewer --workers"
            ) from None
        except RayActorError as e:
            raise DatagenError(f"a render worker died while starting ({_one_line(e)})") from None
        except RayTaskError as e:
            if isinstance(getattr(e, "cause", None), DatagenError):
                raise e.cause from None
            raise

    def _ready(self, w: int, info: dict) -> None:
        """Admit slot w's started actor: it must run the code this driver shipped. The run record
        keeps one entry per slot (where its latest actor runs, on which devices, how many were
        started), so a long run with recycled Blenders does not grow the card."""
        code = info["code"]
        if self.address and code["fingerprint"] != self.code["fingerprint"]:
            raise DatagenError(
                f"the render worker on {info['host']} runs datagen code from {code['path']} "
                f"(fingerprint {code['fingerprint']}), "
                f"not the code this driver shipped from {self.code['path']} ({self.code['fingerprint']})"
            )
        slot = self.slots[w]
        slot.info, slot.start_failures = info, 0
        paths = self.record["code"]["workers"]
        if code["path"] not in paths:
            paths.append(code["path"])
        workers = self.record["workers"]
        starts = workers[w]["starts"] + 1 if w < len(workers) else 1
        entry = {
            k: info[k]
            for k in ("node", "host", "pid", "device", "cycles_devices", "gpus", "visible", "kernel_cache")
            if info.get(k) is not None
        }
        entry.update(starts=starts, started=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        if w < len(workers):
            workers[w] = entry
        else:
            workers.append(entry)

    def _new_actor(self):
        return self._Actor.remote(self.out, self.opts.threads_per_worker, self.opts.device, self.gpus)

    def _restart(self, w: int, starting: dict) -> None:
        """Replace slot w's actor; the new one takes subjects once its probe is back."""
        slot = self.slots[w]
        try:
            self.ray.kill(slot.actor)  # frees its CPUs/GPUs if it still holds them (an unreachable actor may)
        except Exception:
            pass
        slot.actor, slot.info, slot.uses = self._new_actor(), None, 0
        starting[slot.actor.probe.remote()] = w

    def _node_lost(self, info: dict, key: str) -> None:
        lost = self.record["nodes_lost"]
        entry = next((n for n in lost if n["node"] == info["node"]), None)
        if entry is None:
            entry = {
                "node": info["node"],
                "host": info["host"],
                "noticed": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "subjects_resubmitted": [],
            }
            lost.append(entry)
        entry["subjects_resubmitted"].append(key)

    def stop(self) -> None:
        if self.ray is not None:
            self.ray.shutdown()
            self.ray = None

    def render(self, book: ShardBook, summary: RunSummary, progress: SubjectProgress) -> None:
        ray, opts, slots = self.ray, self.opts, self.slots
        from ray.exceptions import RayActorError, RayTaskError

        summary.workers = len(slots)
        t_start = time.perf_counter()
        todo = book.pending()
        upcoming = next(todo, None)
        retry: deque = deque()
        idle = deque(w for w, slot in enumerate(slots) if slot.info is not None)
        in_flight: dict = {}  # subject ref -> (slot, i, j)
        starting: dict = {}  # probe ref of a replacement actor -> slot
        attempts: dict[str, int] = {}
        lost_with_node: dict[str, int] = {}  # times a subject was in flight on a node that was lost
        timing = summary.timing
        last_working = time.monotonic()

        def next_subject():
            nonlocal upcoming
            if retry:
                return retry.popleft()
            subject, upcoming = upcoming, next(todo, None)
            return subject

        while True:
            while idle and (retry or upcoming is not None):
                w = idle.popleft()
                i, j = next_subject()
                in_flight[slots[w].actor.render.remote(make_spec(self.cfg, i, j))] = (w, i, j)
            if not in_flight and not retry and upcoming is None:
                break  # replacements still starting (e.g. for a lost node) are not waited for
            if in_flight or idle:
                last_working = time.monotonic()
            elif not starting:
                raise DatagenError(
                    "every render worker is gone (their nodes were lost or they kept dying while starting); "
                    "what is finished is kept, rerun the same command to finish"
                )
            elif time.monotonic() - last_working > STALL_S:
                raise DatagenError(
                    f"no render worker could start for {STALL_S:.0f} s (no node of the Ray cluster has room for one); "
                    "what is finished is kept, rerun the same command to finish"
                )
            done, _ = ray.wait([*in_flight, *starting], num_returns=1, timeout=WAIT_S)
            if not done:
                continue
            ref = done[0]
            if ref in starting:
                w = starting.pop(ref)
                try:
                    info = ray.get(ref)
                except (RayActorError, RayTaskError) as e:
                    if isinstance(getattr(e, "cause", None), DatagenError):
                        raise e.cause from None
                    slots[w].start_failures += 1  # e.g. placed on a node that died meanwhile
                    if slots[w].start_failures < START_FAILURES:
                        self._restart(w, starting)
                    continue
                if "error" in info:
                    raise DatagenError(info["error"])
                self._ready(w, info)
                idle.append(w)
                continue
            w, i, j = in_flight.pop(ref)
            key = subject_key(i, j)
            try:
                result = ray.get(ref)
            except (RayActorError, RayTaskError) as e:
                if isinstance(getattr(e, "cause", None), DatagenError):
                    # storage full, or a setting no subject can satisfy: stop, keep what is done
                    raise e.cause from None
                if isinstance(e, RayActorError) or not _actor_alive(ray, slots[w].actor):
                    info = slots[w].info
                    if info.get("node") and lost_with_node.get(key, 0) < NODE_LOSSES and node_gone(ray, info["node"]):
                        # Not the subject's fault: it goes again without an attempt counted (up to
                        # NODE_LOSSES times: a subject that brings nodes down is failed in the end).
                        lost_with_node[key] = lost_with_node.get(key, 0) + 1
                        self._node_lost(info, key)
                        self._restart(w, starting)  # waits for room: a node that joins later gets it
                        retry.appendleft((i, j))
                        continue
                    self._restart(w, starting)  # the Blender process died: start a fresh one
                attempts[key] = attempts.get(key, 0) + 1
                if attempts[key] <= opts.retries:
                    retry.appendleft((i, j))
                else:
                    book.subject_failed(key, {"error": _one_line(e), "attempts": attempts[key]})
                    progress.advance(failed=True)
                    summary.shards_written_now += book.publish_if_ready(book.plan.shard_of(key))
                if slots[w].info is not None:
                    idle.append(w)
                continue
            book.subject_done(key)
            summary.rendered_now += 1
            for name, value in result["timing"].items():
                if isinstance(value, (int, float)):
                    timing[name] = timing.get(name, 0.0) + value
            timing["max_worker_rss_mb"] = max(timing.get("max_worker_rss_mb", 0.0), result["rss_mb"])
            progress.advance()
            summary.shards_written_now += book.publish_if_ready(book.plan.shard_of(key))
            slots[w].uses += 1
            if slots[w].uses >= opts.recycle_every and (retry or upcoming is not None):
                self._restart(w, starting)  # a fresh Blender keeps memory flat over long runs
            else:
                idle.append(w)
        for w in starting.values():
            try:
                ray.kill(slots[w].actor)  # a replacement still waiting for room
            except Exception:
                pass
        summary.nodes_lost = [n["host"] + " " + n["node"][:8] for n in self.record["nodes_lost"]]
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
