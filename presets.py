"""Named presets: the one mechanism behind every command's `--preset`.

Each command has one registry (`datagen.config.DATAGEN_PRESETS`, `training.presets.LRM_PRESETS`,
`training.presets.DIFFUSION_PRESETS`, `inference.infer.INFER_PRESETS`,
`inference.evaluate.EVAL_PRESETS`): a name → `Preset` holding a one-line doc, the command's frozen
config and, for the train commands, the model's. `configure` picks one and applies the command
line's overrides; `help_line` and `markdown_table` show a registry in the CLI's help and the README
(`python presets.py README.md` rewrites the README's tables from the registries).

Imports nothing of the project at module level, so every package can use it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

C = TypeVar("C")


@dataclass(frozen=True)
class Preset(Generic[C]):
    doc: str  # one line, shown in `--help` and the README
    config: C  # the command's settings
    model: Any = None  # the train commands: the model's architecture, trained with `config`


def registry(*presets: Preset) -> dict[str, Preset]:
    """{name: preset} in the order given; the name is the config's own `preset` field."""
    return {p.config.preset: p for p in presets}


def pick(presets: Mapping[str, Preset], name: str, error: type[Exception] = ValueError) -> Preset:
    if name not in presets:
        raise error(f"unknown preset {name!r} (allowed: {', '.join(presets)})")
    return presets[name]


def override(config: C, overrides: Mapping[str, Any], error: type[Exception] = ValueError) -> C:
    """`config` with `overrides` applied; None means "keep the preset's value". A key the config
    lacks is an error naming the keys it has; the config's own checks (`__post_init__`) run again."""
    given = {k: v for k, v in overrides.items() if v is not None}
    allowed = [f.name for f in dataclasses.fields(config) if f.name != "preset"]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise error(f"unknown setting(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")
    return dataclasses.replace(config, **given)


def configure(
    presets: Mapping[str, Preset],
    name: str,
    overrides: Mapping[str, Any] | None = None,
    model_overrides: Mapping[str, Any] | None = None,
    error: type[Exception] = ValueError,
) -> Preset:
    """The preset `name` with the command line's overrides applied to its config and model."""
    chosen = pick(presets, name, error)
    model = chosen.model
    if model_overrides:
        model = override(model, model_overrides, error)
    return dataclasses.replace(chosen, config=override(chosen.config, overrides or {}, error), model=model)


def check_ranges(config, at_least_1=(), at_least_0=(), positive_finite=()) -> None:
    """One-line ValueError for a setting out of its range, named as its command-line flag."""
    for names, ok, allowed in (
        (at_least_1, lambda v: v >= 1, "must be at least 1"),
        (at_least_0, lambda v: v >= 0, "must be 0 or more"),
        (positive_finite, lambda v: math.isfinite(v) and v > 0, "must be a finite number above 0"),
    ):
        for name in names:
            value = getattr(config, name)
            if not ok(value):
                raise ValueError(f"--{name.replace('_', '-')} {value} is not allowed ({allowed})")


def help_line(presets: Mapping[str, Preset]) -> str:
    """`tiny (CPU, 32²) | paper (…)`: the `--preset` option's help."""
    return " | ".join(f"{name} ({p.doc})" for name, p in presets.items())


def markdown_table(presets: Mapping[str, Preset], fields: tuple[str, ...]) -> str:
    """A Markdown table: one row per preset, its doc and the named fields (`model.width`: the model's)."""

    def value(p: Preset, path: str):
        owner, _, name = path.rpartition(".")
        v = getattr(p.model if owner == "model" else p.config, name)
        return "×".join(map(str, v)) if isinstance(v, tuple) else v

    rows = [["preset", *fields, "what it is for"], ["---"] * (len(fields) + 2)]
    rows += [[f"`{name}`", *(f"{value(p, f)}" for f in fields), p.doc] for name, p in presets.items()]
    return "\n".join("| " + " | ".join(r) + " |" for r in rows)


def readme_tables() -> dict[str, str]:
    """Every generated README table (each registry's, the segmentation classes), by the name of its
    marker in README.md."""
    from blender_assets.seg_classes import markdown_table as seg_table
    from datagen.config import DATAGEN_PRESETS
    from inference.evaluate import EVAL_PRESETS
    from inference.infer import INFER_PRESETS
    from training.presets import DIFFUSION_PRESETS, LRM_PRESETS

    return {
        "datagen": markdown_table(
            DATAGEN_PRESETS, ("size", "samples", "random_view_samples", "denoise_quality", "subjects_per_shard")
        ),
        "train lrm": markdown_table(
            LRM_PRESETS,
            ("model.image_size", "model.layers", "model.width", "steps", "batch_size", "lr"),
        ),
        "train diffusion": markdown_table(
            DIFFUSION_PRESETS,
            ("model.image_size", "model.attention", "steps", "batch_size", "grad_accum", "lr"),
        ),
        "infer": markdown_table(INFER_PRESETS, ("steps", "guidance", "turntable_frames")),
        "eval": markdown_table(EVAL_PRESETS, ("subjects", "steps", "guidance")),
        "seg classes": seg_table(),
    }


def with_tables(readme: str, tables: Mapping[str, str]) -> str:
    """`readme` with what stands between `<!-- table: NAME -->` and the next `<!-- /table -->` replaced."""
    for name, table in tables.items():
        pattern = re.compile(rf"(<!-- table: {re.escape(name)} -->\n).*?(<!-- /table -->)", re.S)
        if not pattern.search(readme):
            raise ValueError(f"README has no <!-- table: {name} --> … <!-- /table --> block")
        readme = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), readme, count=1)
    return readme


if __name__ == "__main__":  # python presets.py README.md
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        text = with_tables(f.read(), readme_tables())
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
