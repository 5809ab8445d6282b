"""`facelift datagen --kind objects`: procedural general objects in the heads' shard format."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from conftest import datagen_args, facelift
from datagen.catalogues import objects as object_catalogue
from datagen.config import make_config
from datagen.errors import DatagenError
from datagen.spec import make_spec


def test_object_specs_are_seeded_valid_and_varied():
    cfg = make_config("test", kind="objects")
    specs = [make_spec(cfg, i, 0) for i in range(40)]
    assert make_spec(cfg, 3, 0) == specs[3]
    assert json.loads(json.dumps(specs[0])) == specs[0]
    shapes = set()
    for s in specs:
        assert s["kind"] == "objects" and "identity" not in s and s["lighting"]["exposure_ev"] == 0.0
        object_catalogue.validate_objects(s["objects"])
        for o in s["objects"]:
            shapes.add(o["shape"])
            # Every object stays inside the views: centre + size within the extent.
            assert np.linalg.norm(o["location"]) + o["size"] <= object_catalogue.EXTENT + 1e-6
    assert shapes == set(object_catalogue.SHAPES)
    assert len({len(s["objects"]) for s in specs}) == object_catalogue.MAX_OBJECTS
    with pytest.raises(DatagenError, match="--kind 'cars'"):
        make_config("test", kind="cars")


def test_objects_render_in_the_heads_format(tmp_path):
    out = tmp_path / "objects"
    r = facelift(
        *datagen_args(out, 2, 1, "--kind", "objects", "--size", "32", "--views-random", "2", "--workers", "1")
    )
    assert r.returncode == 0, r.stderr
    assert facelift("datagen", "verify", str(out)).returncode == 0
    from datagen.shard_format import read_samples

    shard = next((out / "shards").iterdir())
    with open(shard, "rb") as f:
        samples = dict(read_samples(f))
    assert len(samples) == 2
    for _key, files in samples.items():
        spec = json.loads(files["spec.json"])
        marks = json.loads(files["landmarks.json"])["points"]
        assert len(marks) == len(spec["objects"])  # one landmark per object: its centre
        frames = json.loads(files["cameras.json"])["frames"]
        assert not any("head_pose_deg" in f or "gaze" in f for f in frames)  # no head, no head pose
        alpha = np.asarray(Image.open(io.BytesIO(files["fixed_00.png"])))[..., 3]
        assert 0.02 < (alpha > 0).mean() < 0.9  # something is in view, and not all of it
