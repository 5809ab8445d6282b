"""Writing the dataset card `OUT/dataset.json`: config, counts, versions, runs, failures, and every
shard's name, sample count, keys and sha256. It is rewritten atomically after each finished shard,
and it is how a resumed run recognises an output folder made by a different config. Its reader
(`load_card`) is `datagen.shard_format`'s.
"""

from __future__ import annotations

from datagen.config import DatagenConfig
from datagen.errors import DatagenError
from datagen.lock import LOCK_NAME
from datagen.plan import Plan
from datagen.shard_format import CARD_NAME, FORMAT, FORMAT_VERSION, key_subject, load_card, sample_members
from datagen.storage import Storage, temporary_final_name
from datagen.versions import RENDER_PACKAGES, software_versions

STAGING_DIR = "staging"


def staging_name(key: str) -> str:
    """Where a rendered subject waits for its shard: a one-sample tar."""
    return f"{STAGING_DIR}/{key}.tar"


def staged_key(name: str) -> str | None:
    """The key of a staging file name `<key>.tar`, None for any other name."""
    key = name.removesuffix(".tar")
    return key if name.endswith(".tar") and key_subject(key) is not None else None


def new_card(cfg: DatagenConfig, command: list[str]) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fingerprint": cfg.fingerprint(),
        "config": cfg.to_dict(),
        "command": command,
        "versions": software_versions(RENDER_PACKAGES, python=True),
        "members_per_sample": sample_members(cfg.views_random, cfg.passes),
        "counts": {},
        "shards": [],
        "failed": {},
        "runs": [],
        "complete": False,
    }


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
