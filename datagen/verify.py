"""`facelift datagen verify OUT`: check every shard against the card and the design's sample format."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from datagen.card import CARD_NAME, SHARD_DIR, load_card
from datagen.errors import DatagenError
from datagen.sample import read_samples
from datagen.seeding import subject_key
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
    card = load_card(storage)
    if card is None:
        raise DatagenError(f"{out} has no {CARD_NAME}; is it a facelift datagen output folder?")
    cfg = card["config"]
    v = Verdict(failed_subjects=len(card["failed"]))
    expected_members = set(card["members_per_sample"])
    planned = {subject_key(i, j) for i in range(cfg["identities"]) for j in range(cfg["appearances"])}
    seen: set[str] = set()
    if not card["complete"]:
        v.problems.append(f"card says incomplete ({len(card['shards'])} of {card['counts'].get('shards_planned')} shards); rerun the datagen command to finish")
    for entry in card["shards"]:
        rel = f"{SHARD_DIR}/{entry['name']}"
        if not storage.exists(rel):
            v.problems.append(f"{entry['name']} missing")
            continue
        data = storage.read_bytes(rel)
        v.shards += 1
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            v.problems.append(f"{entry['name']} sha256 differs from the card")
        keys = []
        try:
            for key, files in read_samples(io.BytesIO(data)):
                keys.append(key)
                v.views += _check_sample(key, files, expected_members, cfg, v.problems)
        except Exception as e:  # a truncated or corrupt tar
            v.problems.append(f"{entry['name']} unreadable ({e.__class__.__name__}: {e})")
        if len(keys) != entry["samples"] or keys != entry["keys"]:
            v.problems.append(f"{entry['name']} holds {len(keys)} samples, card says {entry['samples']}")
        for key in keys:
            if key in seen:
                v.problems.append(f"duplicate key {key}")
            seen.add(key)
        v.samples += len(keys)
    missing = planned - seen - set(card["failed"])
    if card["complete"] and missing:
        v.problems.append(f"{len(missing)} planned subjects in no shard and not recorded as failed (e.g. {sorted(missing)[0]})")
    extra = seen - planned
    if extra:
        v.problems.append(f"{len(extra)} samples not in the plan (e.g. {sorted(extra)[0]})")
    return v


def _check_sample(key: str, files: dict[str, bytes], expected: set[str], cfg: dict, problems: list[str]) -> int:
    """Check one sample; append problems; return how many views decoded correctly."""
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
    if not all(np.isfinite(p).all() and len(p) == 3 for p in marks.get("points", {}).values()) or not marks.get("points"):
        problems.append(f"{key}: landmarks missing or not finite")
    size = cfg["size"]
    frames = cams.get("frames", [])
    fixed = [f for f in frames if f.get("kind") == "fixed"]
    if len(fixed) != len(cameras.FIXED_VIEWS) or len(frames) - len(fixed) != cfg["views_random"]:
        problems.append(f"{key}: {len(fixed)} fixed + {len(frames) - len(fixed)} random cameras, expected {len(cameras.FIXED_VIEWS)} + {cfg['views_random']}")
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
    return decoded
