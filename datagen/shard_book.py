"""What the output folder holds, reconciled with the card, and how shards get (re)published.

Crash safety rests on three facts:
1. shard k always holds the same subjects (`Plan`), so a rerun knows what each shard must contain;
2. a rendered subject is published atomically as OUT/staging/<key>.tar before it counts as done;
3. a shard is published atomically under its final name, then recorded in the card, and only then
   are its staging files deleted.

A rerun trusts nothing it did not check. A recorded shard must have the size the card says; an
unrecorded file named like a shard (a crash between publishing and recording, or someone else's
tar) is adopted only if every sample in it is a planned subject of that shard that passes verify's
sample checks; a staging file likewise. Whatever fails is set aside (renamed
`<name>.rejected-<time>`, never deleted) and its subjects are rendered again. Subjects recorded as
failed are retried unless the run says `--keep-failed`; a shard that gains subjects is rewritten
with them, the only time a published shard changes.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field

from datagen.card import STAGING_DIR, save_card, staged_key, staging_name
from datagen.config import DatagenConfig
from datagen.plan import Plan
from datagen.sample import write_samples
from datagen.shard_format import CARD_NAME, SHARD_DIR, read_samples, shard_index, shard_name, shard_path, subject_key
from datagen.storage import Storage
from datagen.verify import sample_problems

log = logging.getLogger(__name__)


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


@dataclass
class ShardBook:
    storage: Storage
    card: dict
    cfg: DatagenConfig
    retry_failed: bool = True
    plan: Plan = field(init=False)
    recorded: dict[int, dict] = field(default_factory=dict)  # shard index → card entry
    staged: set[str] = field(default_factory=set)  # valid staging files not yet in their shard
    retrying: set[str] = field(default_factory=set)  # recorded failures given another try this run
    duplicates: list[str] = field(default_factory=list)  # staged subjects already inside their shard
    set_aside: list[str] = field(default_factory=list)  # files renamed out of the way this run

    def __post_init__(self):
        self.plan = Plan.of(self.cfg)

    # ------------------------------------------------------------------ reconcile

    def reconcile(self) -> None:
        """Read what is on storage; set aside what fails its check. Writes nothing else."""
        plan, storage = self.plan, self.storage
        entries = {e["index"]: e for e in self.card["shards"] if 0 <= e["index"] < plan.shard_count}
        on_disk = storage.sizes(SHARD_DIR)
        for k, entry in sorted(entries.items()):
            rel = shard_path(entry["name"])
            listed = set(entry["keys"])
            if entry["name"] not in on_disk:
                log.warning("%s is recorded but missing: its subjects are rendered again", rel)
            elif on_disk[entry["name"]] != entry["bytes"]:
                self._set_aside(rel, f"{on_disk[entry['name']]} bytes, the card says {entry['bytes']}")
            elif entry["keys"] != [key for key in plan.shard_keys(k) if key in listed] or entry["samples"] != len(
                entry["keys"]
            ):
                self._set_aside(rel, "the card lists subjects the plan does not put in this shard")
            else:
                self.recorded[k] = entry
        for name in sorted(on_disk):
            k = shard_index(name)
            if k is None or k >= plan.shard_count or k in self.recorded or k in entries:
                continue  # not a name of ours, outside the plan (never read), or handled above
            entry, problem = self._adoptable(k)
            if entry:
                self.recorded[k] = entry
            else:
                self._set_aside(shard_path(name), problem)
        inside = {key for e in self.recorded.values() for key in e["keys"]}
        for name in storage.listdir(STAGING_DIR):
            key = staged_key(name)
            if key is None or plan.shard_of(key) is None:
                continue  # not a staging file of this plan: not ours to touch
            if key in inside:
                self.duplicates.append(key)
                continue
            problem = self._staged_problem(key)
            if problem:
                self._set_aside(staging_name(key), problem)
            else:
                self.staged.add(key)
        failed = self.card["failed"]
        for key in list(failed):
            if plan.shard_of(key) is None or key in inside or key in self.staged:
                del failed[key]  # stale: not planned, or rendered after all
        if self.retry_failed:
            self.retrying = set(failed)
        self.card["shards"] = list(self.recorded.values())

    def _set_aside(self, rel: str, why: str) -> None:
        new = self.storage.set_aside(rel)
        self.set_aside.append(new)
        log.warning("%s set aside as %s (%s): its subjects are rendered again", rel, new, why)

    def _members(self) -> set[str]:
        return set(self.card["members_per_sample"])

    def _adoptable(self, k: int) -> tuple[dict | None, str]:
        """A card entry for an unrecorded shard file that passes every sample check, else (None, why)."""
        rel = shard_path(shard_name(k))
        data = self.storage.read_bytes(rel)
        planned = self.plan.shard_keys(k)
        order = {key: n for n, key in enumerate(planned)}
        keys, problems = [], []
        try:
            for key, files in read_samples(io.BytesIO(data)):
                if key not in order or (keys and order[key] <= order[keys[-1]]):
                    return None, f"holds {key!r}, not the next planned subject of shard {k}"
                sample_problems(key, files, self._members(), self.card["config"], problems)
                if problems:
                    return None, problems[0]
                keys.append(key)
        except Exception as e:  # a truncated or corrupt tar
            return None, f"unreadable ({e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        if not keys:
            return None, "holds no samples"
        log.warning("%s was published but not recorded: adopted (%d samples)", rel, len(keys))
        return {
            "index": k,
            "name": shard_name(k),
            "samples": len(keys),
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "keys": keys,
        }, ""

    def _staged_problem(self, key: str) -> str | None:
        problems: list[str] = []
        try:
            samples = list(read_samples(io.BytesIO(self.storage.read_bytes(staging_name(key)))))
        except Exception as e:
            return f"unreadable ({e.__class__.__name__})"
        if [k for k, _ in samples] != [key]:
            return f"holds {[k for k, _ in samples][:2]}, not exactly {key}"
        sample_problems(key, samples[0][1], self._members(), self.card["config"], problems)
        return problems[0] if problems else None

    # ------------------------------------------------------------------ the work

    def _resolved_elsewhere(self) -> set[str]:
        """Failures that stand this run (recorded and not being retried)."""
        return set(self.card["failed"]) - self.retrying

    @property
    def todo_count(self) -> int:
        inside = sum(e["samples"] for e in self.recorded.values())
        return self.plan.subjects - inside - len(self.staged) - len(self._resolved_elsewhere())

    def pending(self):
        """(i, j) of every subject still to render, in plan order, generated lazily."""
        plan, standing = self.plan, self._resolved_elsewhere()
        for k in range(plan.shard_count):
            entry = self.recorded.get(k)
            if entry is not None and entry["samples"] == plan.shard_size(k):
                continue
            have = set(entry["keys"]) if entry else set()
            for i, j in plan.shard_subjects(k):
                key = subject_key(i, j)
                if key not in have and key not in self.staged and key not in standing:
                    yield i, j

    def cleanup(self) -> None:
        """Remove what this tool left behind: staged copies of published subjects, our temporaries."""
        for key in self.duplicates:
            self.storage.remove(staging_name(key))
        self.duplicates.clear()
        owned = {
            "": lambda n: n == CARD_NAME,
            SHARD_DIR: lambda n: shard_index(n) is not None,
            STAGING_DIR: lambda n: staged_key(n) is not None,
        }
        for folder, test in owned.items():
            self.storage.remove_temporaries(folder, test)

    def subject_done(self, key: str) -> None:
        self.staged.add(key)
        self.card["failed"].pop(key, None)
        self.retrying.discard(key)

    def subject_failed(self, key: str, record: dict) -> None:
        self.card["failed"][key] = record
        self.retrying.discard(key)

    def publish_all_ready(self) -> int:
        """Publish every shard that can be; returns how many were written."""
        candidates = {self.plan.shard_of(key) for key in self.staged | self._resolved_elsewhere()}
        return sum(self.publish_if_ready(k) for k in sorted(candidates))

    def publish_if_ready(self, k: int) -> bool:
        """Write shard k when each of its subjects is inside it, staged or failed for good, and it
        is new or gains subjects; then record it and drop the staging files it took in."""
        entry = self.recorded.get(k)
        have = set(entry["keys"]) if entry else set()
        keys = self.plan.shard_keys(k)
        standing = self._resolved_elsewhere()
        if not all(key in have or key in self.staged or key in standing for key in keys):
            return False
        new = [key for key in keys if key in self.staged]
        if entry is not None and not new:
            return False
        chosen = [key for key in keys if key in have or key in self.staged]
        self._write_shard(k, chosen, have)
        save_card(self.storage, self.card, self.cfg)
        for key in new:
            self.storage.remove(staging_name(key))
            self.staged.discard(key)
        return True

    def _write_shard(self, k: int, keys: list[str], have: set[str]) -> None:
        storage = self.storage
        rel = shard_path(shard_name(k))

        def samples():
            old = read_samples(storage.open_read(rel)) if have else iter(())
            for key in keys:
                if key in have:
                    old_key, files = next(old)  # the old shard is in plan order too
                    assert old_key == key, f"{rel}: expected {key}, found {old_key}"
                    yield key, files
                else:
                    yield from read_samples(storage.open_read(staging_name(key)))

        def fill(f):
            w = _HashingWriter(f)
            return write_samples(w, samples()), w.sha.hexdigest(), w.size

        count, sha, size = storage.write_via(rel, fill)
        if count != len(keys):
            raise RuntimeError(f"shard {k}: wrote {count} samples, expected {len(keys)}")
        entry = {"index": k, "name": shard_name(k), "samples": count, "sha256": sha, "bytes": size, "keys": keys}
        self.recorded[k] = entry
        self.card["shards"] = [s for s in self.card["shards"] if s["index"] != k] + [entry]
