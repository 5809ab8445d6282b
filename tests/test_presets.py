"""One preset mechanism: every command's registry, its CLI help and the README's tables agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import facelift
from datagen.config import DATAGEN_PRESETS
from datagen.errors import DatagenError
from inference.presets import EVAL_PRESETS, INFER_PRESETS
from presets import configure, readme_tables, with_tables
from training.presets import DIFFUSION_PRESETS, LRM_PRESETS

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    ("datagen",): DATAGEN_PRESETS,
    ("train", "lrm"): LRM_PRESETS,
    ("train", "diffusion"): DIFFUSION_PRESETS,
    ("infer",): INFER_PRESETS,
    ("eval",): EVAL_PRESETS,
}


def test_the_readme_preset_tables_are_the_registries():
    readme = (ROOT / "README.md").read_text()
    assert with_tables(readme, readme_tables()) == readme, "run `python presets.py README.md`"
    assert "| `paper` | 512 | 24 | 1024 |" in readme  # train lrm --preset paper: 512², 24 layers × 1024


@pytest.mark.parametrize("command", list(COMMANDS), ids=" ".join)
def test_every_preset_help_lists_the_registrys_presets_and_docs(command):
    r = facelift(*command, "--help", env={"COLUMNS": "1000", "TERM": "dumb", "NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.split())
    for name, preset in COMMANDS[command].items():
        assert f"{name} ({' '.join(preset.doc.split())})" in flat


def test_a_preset_is_its_registry_entry_with_the_overrides_applied():
    chosen = configure(LRM_PRESETS, "paper", {"steps": 7, "lr": None}, {"ray_encoding": "plucker"})
    assert chosen.model.width == 1024 and chosen.model.ray_encoding == "plucker"
    assert chosen.config.steps == 7 and chosen.config.lr == LRM_PRESETS["paper"].config.lr  # None keeps the preset's
    assert LRM_PRESETS["paper"].config.steps == 20_000  # the registry itself is untouched
    for presets in COMMANDS.values():
        for name, preset in presets.items():
            assert preset.config.preset == name and (preset.model is None or preset.model.preset == name)


def test_unknown_presets_and_settings_are_one_line_errors_naming_what_is_allowed():
    with pytest.raises(DatagenError, match=r"unknown preset 'huge' \(allowed: test, preview, paper\)"):
        configure(DATAGEN_PRESETS, "huge", error=DatagenError)
    with pytest.raises(ValueError, match=r"unknown setting\(s\) widht \(allowed: image_size, patch, width, "):
        configure(LRM_PRESETS, "tiny", model_overrides={"widht": 3})
    r = facelift("train", "lrm", "--data", "nowhere", "--preset", "huge")
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown preset 'huge' (allowed: tiny, small, paper)"
    r = facelift("infer", "x.jpg", "--lrm", "nowhere", "--preset", "slow")
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown preset 'slow' (allowed: facelift, quick)"
