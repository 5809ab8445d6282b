"""Output storage (local and fsspec) and the dataset card's config guard."""

from __future__ import annotations

import pytest

from datagen.card import open_card, save_card
from datagen.config import make_config
from datagen.errors import DatagenError
from datagen.shard_format import load_card
from datagen.storage import TMP_MARK, Storage


@pytest.mark.parametrize("url", ["local", "memory://facelift-test"])
def test_atomic_writes_list_and_remove(tmp_path, url):
    s = Storage(str(tmp_path / "out") if url == "local" else url)
    s.ensure_writable()
    s.write_bytes("shards/a.tar", b"abc")
    assert s.read_bytes("shards/a.tar") == b"abc" and s.size("shards/a.tar") == 3
    assert s.write_via("shards/b.tar", lambda f: f.write(b"xy")) == 2
    assert s.listdir("shards") == ["a.tar", "b.tar"]
    s.remove("shards/a.tar")
    assert s.listdir("shards") == ["b.tar"] and s.listdir("missing") == []


def test_failed_write_leaves_nothing(tmp_path):
    s = Storage(str(tmp_path))

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        s.write_via("x.tar", boom)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / f"heads-000000.tar{TMP_MARK}abc_1234").write_bytes(b"half")  # ours
    (tmp_path / "shards" / "heads-000001.tar").write_bytes(b"whole")
    (tmp_path / "shards" / f"notes.txt{TMP_MARK}abc_1234").write_bytes(b"a temporary of a name we do not own")
    (tmp_path / "shards" / "draft.tmp-1").write_bytes(b"the user's")
    (tmp_path / "shards" / f"heads-000002.tar{TMP_MARK}x").write_bytes(b"not our random suffix")
    assert Storage(str(tmp_path)).remove_temporaries("shards", lambda name: name.startswith("heads-")) == 1
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == sorted(
        ["heads-000001.tar", f"notes.txt{TMP_MARK}abc_1234", "draft.tmp-1", f"heads-000002.tar{TMP_MARK}x"]
    )


def test_unwritable_location_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatagenError, match="is not writable"):
        Storage(str(tmp_path / "file" / "sub")).ensure_writable()


def test_card_refuses_another_config_and_garbage(tmp_path):
    s = Storage(str(tmp_path))
    cfg = make_config("test", identities=2, appearances=1)
    card = open_card(s, cfg, ["datagen"])
    save_card(s, card, cfg)
    assert load_card(s)["counts"]["subjects"] == 2
    assert open_card(s, cfg, ["datagen"])["fingerprint"] == cfg.fingerprint()
    with pytest.raises(DatagenError, match=r"different config \(appearances 1 vs 3"):
        open_card(s, make_config("test", identities=2, appearances=3), [])
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatagenError, match="not a readable dataset card"):
        load_card(s)


def test_a_card_from_before_a_config_field_existed_still_matches(tmp_path):
    """A field added later counts as its default in an older card, so older runs resume."""
    s = Storage(str(tmp_path))
    for preset, accepted in (("paper", True), ("test", False)):  # paper keeps the default map, test does not
        cfg = make_config(preset, identities=2, appearances=1)
        card = open_card(s, cfg, ["datagen"])
        del card["config"]["world_map_resolution"]
        save_card(s, card, cfg)
        if accepted:
            assert open_card(s, cfg, [])["config"]["preset"] == preset
        else:
            with pytest.raises(DatagenError, match="world_map_resolution 0 vs 256"):
                open_card(s, cfg, [])
        (tmp_path / "dataset.json").unlink()


def test_uploads_a_killed_process_left_on_this_machine_are_swept_and_live_ones_kept():
    import os
    import subprocess
    import sys

    from datagen.storage import Storage, upload_folder

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = upload_folder()
        leftover, in_use = os.path.join(folder, f"{dead.pid}-abc123"), os.path.join(folder, f"{live.pid}-def456")
        for path in (leftover, in_use):
            with open(path, "wb") as f:
                f.write(b"x" * 1024)
        Storage("s3://any-bucket/run")  # opening an object store sweeps (no request is made)
        assert not os.path.exists(leftover)
        assert os.path.exists(in_use)
        os.unlink(in_use)
    finally:
        live.kill()
        live.wait()
