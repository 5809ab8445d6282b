"""`facelift datagen verify OUT`: check every shard against the card and the design's sample format."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from datagen import face_stats
from datagen.errors import StorageError
from datagen.plan import Plan
from datagen.shard_format import (
    SHARD_DIR,
    SUBJECT_PASS_FILES,
    pass_file,
    read_head_mesh,
    read_landmarks2d,
    read_pass_exr,
    read_samples,
    read_seg,
    require_card,
    shard_path,
    view_passes,
)
from datagen.storage import Storage
from facelift_models import cameras

MAX_LISTED = 5


@dataclass
class Verdict:
    shards: int = 0
    samples: int = 0
    views: int = 0
    failed_subjects: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self, out: str) -> str:
        if self.ok:
            extra = f", {self.failed_subjects} subjects recorded as failed" if self.failed_subjects else ""
            return f"OK: {out}: {self.shards} shards, {self.samples} samples, {self.views} views verified{extra}"
        shown = "; ".join(self.problems[:MAX_LISTED])
        more = f" (+{len(self.problems) - MAX_LISTED} more)" if len(self.problems) > MAX_LISTED else ""
        return f"FAILED: {out}: {len(self.problems)} problems: {shown}{more}"


def verify(out: str) -> Verdict:
    storage = Storage(out)
    card = require_card(storage)
    cfg = card["config"]
    plan = Plan.of(cfg)
    v = Verdict(failed_subjects=len(card["failed"]))
    expected_members = set(card["members_per_sample"])
    seen: set[str] = set()
    if not card["complete"]:
        v.problems.append(
            f"card says incomplete ({len(card['shards'])} of {plan.shard_count} shards); "
            "rerun the datagen command to finish"
        )
    _check_counts(card, plan, v.problems)
    stats_problem = face_stats.problem(card) if card["complete"] else None
    if stats_problem:
        v.problems.append(stats_problem)
    present = storage.sizes(SHARD_DIR)  # one listing, not a request per shard (object stores)
    for entry in card["shards"]:
        rel = shard_path(entry["name"])
        if entry["name"] not in present:
            v.problems.append(f"{entry['name']} missing")
            continue
        try:
            data = storage.read_bytes(rel)
        except StorageError as e:  # a problem of this shard (or of the store): reported, the rest still checked
            v.problems.append(f"{entry['name']} unreadable ({e})")
            continue
        v.shards += 1
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            v.problems.append(f"{entry['name']} sha256 differs from the card")
        keys = []
        try:
            for key, files in read_samples(io.BytesIO(data)):
                keys.append(key)
                if plan.shard_of(key) != entry["index"]:
                    v.problems.append(f"{entry['name']} holds {key}, which the plan puts in no shard or another one")
                v.views += sample_problems(key, files, expected_members, cfg, v.problems)
        except Exception as e:  # a truncated or corrupt tar
            v.problems.append(f"{entry['name']} unreadable ({e.__class__.__name__}: {e})")
        if len(keys) != entry["samples"] or keys != entry["keys"]:
            v.problems.append(f"{entry['name']} holds {len(keys)} samples, card says {entry['samples']}")
        for key in keys:
            if key in seen:
                v.problems.append(f"duplicate key {key}")
            seen.add(key)
        v.samples += len(keys)
    failed = set(card["failed"])
    for key in sorted(failed & seen)[:MAX_LISTED]:
        v.problems.append(f"{key} is recorded as failed but is in a shard")
    unplanned = sorted(k for k in failed if plan.shard_of(k) is None)
    if unplanned:
        v.problems.append(f"{len(unplanned)} failures recorded for subjects not in the plan (e.g. {unplanned[0]})")
    accounted = sum(plan.shard_of(k) is not None for k in seen) + len(failed - seen - set(unplanned))
    if card["complete"] and accounted < plan.subjects:
        v.problems.append(f"{plan.subjects - accounted} planned subjects in no shard and not recorded as failed")
    return v


def _check_counts(card: dict, plan: Plan, problems: list[str]) -> None:
    """The card's counts must say what its shard list and failures say."""
    counts, shards = card["counts"], card["shards"]
    truth = {
        "subjects": plan.subjects,
        "shards_planned": plan.shard_count,
        "shards_written": len(shards),
        "samples_written": sum(s["samples"] for s in shards),
        "failed": len(card["failed"]),
    }
    for name, value in truth.items():
        if counts.get(name) != value:
            problems.append(f"card counts {name} = {counts.get(name)!r}, its entries say {value}")
    for s in shards:
        if s["samples"] != len(s["keys"]):
            problems.append(f"card entry {s['name']} says {s['samples']} samples but lists {len(s['keys'])} keys")
    if card["complete"] != (len({s["index"] for s in shards}) == plan.shard_count):
        problems.append(f"card says complete={card['complete']} with {len(shards)} of {plan.shard_count} shards")


def sample_problems(key: str, files: dict[str, bytes], expected: set[str], cfg: dict, problems: list[str]) -> int:
    """Check one sample against the design's format; append problems; return how many views decoded."""
    try:
        return _sample_problems(key, files, expected, cfg, problems)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as e:  # JSON of the wrong shape
        problems.append(f"{key}: spec/cameras/landmarks JSON malformed ({e.__class__.__name__}: {e})")
        return 0


def _sample_problems(key: str, files: dict[str, bytes], expected: set[str], cfg: dict, problems: list[str]) -> int:
    have = set(files)
    if have != expected:
        lacking, surplus = sorted(expected - have), sorted(have - expected)
        problems.append(f"{key}: members differ (missing {lacking[:3]}, unexpected {surplus[:3]})")
    try:
        spec = json.loads(files["spec.json"])
        cams = json.loads(files["cameras.json"])
        marks = json.loads(files["landmarks.json"])
    except (KeyError, ValueError) as e:
        problems.append(f"{key}: JSON member missing or unreadable ({e})")
        return 0
    if spec.get("key") != key or cams.get("id") != key or marks.get("id") != key:
        problems.append(f"{key}: spec/cameras/landmarks name another subject")
    if not all(np.isfinite(p).all() and len(p) == 3 for p in marks.get("points", {}).values()) or not marks.get(
        "points"
    ):
        problems.append(f"{key}: landmarks missing or not finite")
    if SUBJECT_PASS_FILES["mesh"] in expected and SUBJECT_PASS_FILES["mesh"] in files:
        try:
            vertices, _ = read_head_mesh(files[SUBJECT_PASS_FILES["mesh"]])
            if not all(np.isfinite(vertices[c]).all() for c in "xyz"):
                raise ValueError("vertices not finite")
        except ValueError as e:
            problems.append(f"{key}: {SUBJECT_PASS_FILES['mesh']} is not a readable head mesh ({e})")
    size = cfg["size"]
    frames = cams.get("frames", [])
    fixed = [f for f in frames if f.get("kind") == "fixed"]
    if len(fixed) != len(cameras.FIXED_VIEWS) or len(frames) - len(fixed) != cfg["views_random"]:
        problems.append(
            f"{key}: {len(fixed)} fixed + {len(frames) - len(fixed)} random cameras, "
            f"expected {len(cameras.FIXED_VIEWS)} + {cfg['views_random']}"
        )
    for frame, view in zip(fixed, cameras.FIXED_VIEWS):
        if frame["name"] != view.name or not np.allclose(np.array(frame["c2w"]), cameras.view_c2w(view), atol=1e-5):
            problems.append(f"{key}: fixed camera {frame['name']} is not the design's {view.name}")
    decoded = 0
    K = cameras.intrinsics(size, cfg.get("fov_deg", cameras.FOV_DEG))
    for frame in frames:
        reason = cameras.check_extrinsics(frame["w2c"], frame["c2w"])
        c2w = np.array(frame["c2w"])
        if reason is None and not np.isclose(np.linalg.norm(c2w[:3, 3]), cameras.RADIUS, atol=1e-4):
            reason = "not on the orbit radius"
        if reason is None and np.dot(c2w[:3, 2], -c2w[:3, 3] / np.linalg.norm(c2w[:3, 3])) < 0.9999:
            reason = "does not look at the origin"
        if reason is None and not np.allclose(cameras.frame_K(frame), K, atol=1e-4):
            reason = "intrinsics differ from the design's fov/size"
        if reason:
            problems.append(f"{key}: camera {frame.get('name')}: {reason}")
        data = files.get(frame.get("file_path", ""))
        if data is None:
            problems.append(f"{key}: {frame.get('file_path')} missing")
            continue
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception as e:
            problems.append(f"{key}: {frame['file_path']} does not decode ({e})")
            continue
        if img.mode != "RGBA" or img.size != (size, size):
            problems.append(f"{key}: {frame['file_path']} is {img.mode} {img.size}, expected RGBA ({size}, {size})")
            continue
        decoded += 1
        problems += _view_pass_problems(key, files, frame["file_path"], cfg, size)
    if SUBJECT_PASS_FILES["landmarks2d"] in expected and SUBJECT_PASS_FILES["landmarks2d"] in files:
        try:
            points = read_landmarks2d(files[SUBJECT_PASS_FILES["landmarks2d"]], len(frames))
            if not np.isfinite([xy for f in points["frames"] for xy in f["xy"]]).all():
                raise ValueError("positions not finite")
        except (KeyError, TypeError, ValueError) as e:
            problems.append(f"{key}: {SUBJECT_PASS_FILES['landmarks2d']} is not readable ({e})")
    return decoded


def _view_pass_problems(key: str, files: dict[str, bytes], view: str, cfg: dict, size: int) -> list[str]:
    """Each per-view pass of `view` decodes to a full-size image of its kind."""
    problems = []
    for name in view_passes(cfg.get("passes", [])):
        member = pass_file(view[: -len(".png")], name)
        if member not in files:
            continue  # reported with the members
        try:
            arrays = [read_seg(files[member])] if name == "seg" else read_pass_exr(files[member], name).values()
            if any(a.shape != (size, size) for a in arrays):
                raise ValueError(f"not {size}x{size}")
        except ValueError as e:
            problems.append(f"{key}: {member} is not a readable {name} pass ({e})")
    return problems
