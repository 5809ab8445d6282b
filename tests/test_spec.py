"""Seeding and subject specs (DESIGN §5): deterministic, per component, identity vs appearance."""

import json
import subprocess
import sys

import numpy as np
import pytest

from datagen.config import make_config
from datagen.errors import DatagenError
from datagen.samplers import draw
from datagen.samplers.identity import skin_tone_linear
from datagen.samplers.subject import Subject
from datagen.seeding import component_rng, component_seed
from datagen.shard_format import subject_key
from datagen.spec import SPEC_VERSION, make_spec, view_samples


@pytest.fixture(scope="module")
def cfg():
    return make_config("test", identities=3, appearances=2)


def test_seed_is_stable_across_processes():
    code = "from datagen.seeding import component_seed; print(component_seed(7, 3, 2, 'pose'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert int(other) == component_seed(7, 3, 2, "pose")


def test_components_have_independent_streams():
    seeds = {c: component_seed(0, 1, 1, c) for c in ("identity", "expression", "pose", "lighting", "cameras")}
    assert len(set(seeds.values())) == len(seeds)
    # identity-level components ignore the appearance; appearance-level ones do not
    assert component_seed(0, 1, 0, "identity") == component_seed(0, 1, 9, "identity")
    assert component_seed(0, 1, 0, "pose") != component_seed(0, 1, 9, "pose")
    assert component_seed(1, 1, 0, "pose") != component_seed(0, 1, 0, "pose")
    with pytest.raises(ValueError, match="unknown seeding component"):
        component_seed(0, 0, 0, "weather")
    a = component_rng(0, 2, 1, "cameras").random(4)
    assert np.array_equal(a, component_rng(0, 2, 1, "cameras").random(4))


def test_spec_is_deterministic_and_json_stable(cfg):
    a, b = make_spec(cfg, 1, 1), make_spec(cfg, 1, 1)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["key"] == subject_key(1, 1) == "id00001_ap001"
    assert len(a["views"]) == 6 + 32
    assert [v["kind"] for v in a["views"]].count("fixed") == 6


def test_identity_shared_across_appearances_and_appearance_varies(cfg):
    a, b = make_spec(cfg, 2, 0), make_spec(cfg, 2, 1)
    assert a["identity"] == b["identity"]
    assert a["views"] != b["views"] and a["pose"] != b["pose"]
    assert make_spec(cfg, 0, 0)["identity"] != make_spec(cfg, 1, 0)["identity"]


def test_changing_one_component_leaves_the_others(cfg):
    import dataclasses

    more_views = dataclasses.replace(cfg, views_random=5)
    a, b = make_spec(cfg, 1, 0), make_spec(more_views, 1, 0)
    for part in ("identity", "expression", "pose", "lighting"):
        assert a[part] == b[part]
    assert a["views"][: 6 + 5] == b["views"]  # the first random draws are the same draws


def test_identity_values_are_in_range():
    for i in range(20):
        ident = draw("identity", Subject(0, i))
        m = ident["macro"]
        assert 0 <= m["gender"] <= 1 and 0 <= m["age"] <= 1
        assert abs(m["african"] + m["asian"] + m["caucasian"] - 1) < 1e-5
        assert all(-1 <= v <= 1 for v in ident["modifiers"].values())
        assert len(ident["modifiers"]) > 50
        assert all(0 <= c <= 1 for c in ident["skin"]["base_color"] + ident["eye_color"])
    tones = [draw("identity", Subject(0, i))["skin"]["tone"] for i in range(40)]
    assert max(tones) - min(tones) > 0.4  # the palette's range is actually used


def test_skin_palette_is_ordered_light_to_dark():
    t = np.linspace(0, 1, 11)
    lum = [np.dot(skin_tone_linear(x), [0.2126, 0.7152, 0.0722]) for x in t]
    assert np.corrcoef(t, lum)[0, 1] < -0.9 and lum[0] > 10 * lum[-1]


def test_config_errors_are_one_line():
    with pytest.raises(DatagenError, match="unknown preset 'huge'.*allowed: test, preview, paper"):
        make_config("huge")
    with pytest.raises(DatagenError, match="--identities 0 is not allowed"):
        make_config("test", identities=0)
    with pytest.raises(DatagenError, match="--appearances -2"):
        make_config("test", appearances=-2)
    with pytest.raises(DatagenError, match="--hdri-dir /nonexistent"):
        make_config("test", hdri_dir="/nonexistent")
    with pytest.raises(DatagenError, match="--passes curvature"):  # (albedo was the example before it existed)
        make_config("test", passes=("curvature",))


def test_config_fingerprint_tracks_output_changing_fields():
    a = make_config("test", identities=3)
    assert a.fingerprint() == make_config("test", identities=3).fingerprint()
    b = make_config("test", identities=3, size=96)
    assert a.fingerprint() != b.fingerprint()
    assert any(d.startswith("size 64 vs 96") for d in b.differences(a.to_dict()))


def test_random_views_take_their_own_samples_and_samples_alone_sets_every_view():
    cfg = make_config("test", identities=3, random_view_samples=2)
    spec = make_spec(cfg, 0, 0)
    render = spec["render"]
    assert [view_samples(render, v["kind"]) for v in spec["views"]] == [4] * 6 + [2] * cfg.views_random
    assert make_spec(make_config("test"), 0, 0)["render"]["random_view_samples"] == 4  # 0: as --samples
    assert make_spec(make_config("paper", samples=128), 0, 0)["render"]["random_view_samples"] == 128
    assert make_config("paper", samples=128, random_view_samples=16).random_view_samples == 16
    # A spec stored before random views had their own count renders every view at `samples`.
    old = {k: v for k, v in render.items() if k != "random_view_samples"}
    assert view_samples(old, "random") == view_samples(old, "fixed") == 4
    with pytest.raises(DatagenError, match="--random-view-samples -1 is not allowed"):
        make_config("test", random_view_samples=-1)


def test_expressions_are_plausible_and_mostly_varied():
    from datagen.samplers.expression import CONFLICTS, GAZE_MAX_DEG, UNIT_CAP

    draws = [draw("expression", Subject(0, i, j)) for i in range(30) for j in range(5)]
    neutral = sum(d["archetypes"] == ["neutral"] for d in draws) / len(draws)
    assert 0.15 < neutral < 0.45  # neutral is common, not dominant
    assert len({a for d in draws for a in d["archetypes"]}) >= 10
    for d in draws:
        assert len(d["archetypes"]) == 1 or frozenset(d["archetypes"]) not in CONFLICTS
        assert all(0 < w <= UNIT_CAP for u, w in d["units"].items() if not u.startswith("eyeLook"))
        yaw, pitch = d["gaze_deg"]
        assert abs(yaw) <= GAZE_MAX_DEG[0] and abs(pitch) <= GAZE_MAX_DEG[1]
        side = "eyeLookOutLeft" if yaw > 0 else "eyeLookInLeft"
        assert d["units"].get(side, 0) == pytest.approx(abs(yaw) / 15.0, abs=1e-5)  # both eyes turn together


def test_skin_detail_follows_tone_and_age():
    from datagen.catalogues.head import age_param_to_years

    idents = [draw("identity", Subject(0, i)) for i in range(120)]

    def freckled(lo, hi):
        group = [x["skin"]["freckles"] > 0 for x in idents if lo <= x["skin"]["tone"] < hi]
        return sum(group) / max(len(group), 1)

    assert freckled(0.0, 0.35) > 2 * freckled(0.5, 1.01)  # freckles are a fair-skin trait
    ages = np.array([age_param_to_years(x["macro"]["age"]) for x in idents])
    wrinkles = np.array([x["skin"]["wrinkles"] for x in idents])
    assert np.corrcoef(ages, wrinkles)[0, 1] > 0.8 and wrinkles[ages < 25].max() < 0.2


def _cielab(linear_rgb) -> np.ndarray:
    """CIE L*a*b* (D65) of a linear sRGB colour."""
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear_rgb
    f = np.cbrt(xyz / np.array([0.9505, 1.0, 1.089]))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_bare_lips_are_darker_and_redder_than_the_skin_as_measured_lips_are():
    # Colorimetric studies put lips about 10 L* darker and 10-15 a* redder than the skin around them;
    # lips far beyond that read as painted salmon pads (the tint before spec 16: -16 L*, +12.5 a* on
    # average, -23 / +23 on the fairest skin).
    idents = [draw("identity", Subject(0, i)) for i in range(80)]
    d = np.array(
        [
            _cielab(np.array(x["skin"]["base_color"]) * x["skin"]["lip_tint"])
            - _cielab(np.array(x["skin"]["base_color"]))
            for x in idents
        ]
    )
    assert (d[:, 0] < -3).all() and (d[:, 1] > 0).all()  # every lip darker and redder than its skin
    assert -14 < d[:, 0].mean() < -7 and 5 < d[:, 1].mean() < 14  # as measured lips are, on average
    assert d[:, 0].min() > -20 and d[:, 1].max() < 22  # and none a salmon pad


def test_makeup_is_per_appearance_and_mostly_on_women(cfg):
    women = men = worn_w = worn_m = 0
    for i in range(60):
        ident = draw("identity", Subject(0, i))
        for j in range(4):
            m = draw("makeup", Subject(0, i, j, drawn={"identity": ident}))
            worn = bool(m["lipstick"] or m["eyeshadow"] or m["blush"])
            if ident["macro"]["gender"] < 0.5:
                women, worn_w = women + 1, worn_w + worn
            else:
                men, worn_m = men + 1, worn_m + worn
    assert worn_w / women > 0.25 and worn_m / men < 0.12
    spec = make_spec(cfg, 0, 0)
    assert set(spec["makeup"]) == {"lipstick", "eyeshadow", "blush"} and spec["spec_version"] == SPEC_VERSION


def test_darker_skin_is_metered_brighter_light_skin_keeps_its_exposure(cfg):
    from datagen.samplers.identity import skin_tone_linear
    from datagen.samplers.lighting import METERING_MAX_EV, metering_ev

    evs = [metering_ev(skin_tone_linear(t)) for t in np.linspace(0.0, 1.0, 11)]
    assert evs[0] == 0.0 and evs[3] == 0.0  # light tones: the calibrated exposure
    assert all(b >= a for a, b in zip(evs, evs[1:]))  # never darker for a darker tone
    assert 0.8 < evs[-1] <= METERING_MAX_EV  # the darkest faces about a stop up, but not to mid-grey
    for i in range(6):
        spec = make_spec(cfg, i, 0)
        assert spec["lighting"]["exposure_ev"] == pytest.approx(
            metering_ev(spec["identity"]["skin"]["base_color"]), abs=1e-6
        )
