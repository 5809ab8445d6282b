"""Hair: the sampler's contracts, where guides and strands grow on the head, every style building in
Blender through the procedural hair node groups, and one tiny Cycles render where hair shows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_assets import hair_geometry as hs
from blender_assets.surface import triangles
from datagen.catalogues import hair as hair_catalogue
from datagen.catalogues.head import BUILD_UNIT_M
from datagen.samplers import draw as draw_field
from datagen.samplers.subject import Subject

bpy = pytest.importorskip("bpy")

from blender_assets import shape  # noqa: E402
from blender_assets.hair import build_hair  # noqa: E402

POSES = ({"yaw": 0.0, "pitch": 0.0, "roll": 0.0}, {"yaw": 30.0, "pitch": -15.0, "roll": 8.0})
SMILE = {"units": {"mouthSmileLeft": 0.7, "mouthSmileRight": 0.7, "browInnerUp": 0.5}}


def draw(seed: int, i: int, j: int, identity: dict | None = None) -> dict:
    subject = Subject(seed, i, j)
    subject.drawn["identity"] = identity or draw_field("identity", subject)
    return draw_field("hair", subject)


def spec_for(style: str, facial: str = "none", density: str = "low") -> dict:
    """A drawn spec forced to one style (its default shape parameters) and facial hair."""
    h = draw(0, 0, 0)
    lo, hi = hair_catalogue.STYLE_SHAPE[style][0] if style != "bald" else (0.0, 0.0)
    _, _, curl_r, curl_f, frizz, clump = hair_catalogue.STYLE_SHAPE.get(style, (0, 0, 0.0, 0.0, 0.0, 0.0))
    h.update(
        style=style,
        length=(lo + hi) / 2,
        density=density,
        recession=0.0,
        curl_radius=curl_r,
        curl_frequency=curl_f,
        frizz=frizz,
        clump=clump,
    )
    h["facial_hair"] = {"style": facial, "length": 0.05 if facial != "stubble" else 0.01, "density": 0.5}
    return h


@pytest.fixture(scope="module")
def identity():
    return draw_field("identity", Subject(0, 0))


@pytest.fixture(scope="module", params=POSES, ids=("neutral", "posed"))
def geo(request, identity):
    return shape.head_geometry(identity, SMILE, request.param)


def to_rest(geo, points: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(geo.head_matrix)
    return points @ inv[:3, :3].T + inv[:3, 3]


# ---------------------------------------------------------------- sampler


def test_sampler_is_deterministic_json_safe_and_covers_the_catalogue():
    specs = [draw(7, i, j) for i in range(60) for j in range(4)]
    assert specs == [draw(7, i, j) for i in range(60) for j in range(4)]
    for h in specs:
        assert json.loads(json.dumps(h)) == h
        hair_catalogue.validate_hair(h)
    assert {h["style"] for h in specs} >= {
        "bald",
        "buzz",
        "short",
        "medium",
        "long_straight",
        "long_wavy",
        "curly",
        "afro",
        "ponytail",
        "bun",
    } - {"bald"}
    assert len({h["facial_hair"]["style"] for h in specs}) >= 4
    assert any(h["color"]["dye"] for h in specs) and any(h["color"]["grey"] > 0.3 for h in specs)


def test_brows_of_many_identities_run_from_plucked_lines_to_bushy_bands():
    """Brow shape is among the strongest cues a face recognizer reads, and real brows differ a lot:
    over 200 identities the brows must reach both thin sparse lines and thick dense bands, lighter
    and darker than the scalp hair, with heads set close and far apart."""
    brows = [draw(0, i, 0)["eyebrows"] for i in range(200)]
    mm = {k: np.array([b[k] for b in brows]) * BUILD_UNIT_M * 1000 for k in ("thickness", "inner", "height")}
    assert mm["thickness"].min() < 4.0 and mm["thickness"].max() > 14.0, (mm["thickness"].min(), mm["thickness"].max())
    assert mm["inner"].min() < 6.5 and mm["inner"].max() > 13.0
    assert 10.0 <= mm["height"].min() and mm["height"].max() <= 19.0  # the brow stays above the eye
    density = np.array([b["density"] for b in brows])
    shade = np.array([b["shade"] for b in brows])
    assert density.min() < 0.25 and (density == 1.0).mean() > 0.1
    assert shade.min() < 0.8 and shade.max() > 1.8


def test_identity_traits_stay_across_appearances():
    identity = draw_field("identity", Subject(3, 5))
    specs = [draw(3, 5, j, identity) for j in range(8)]
    for key in ("eyebrows", "eyelashes"):
        assert all(h[key] == specs[0][key] for h in specs)
    for key in ("melanin", "melanin_redness", "grey"):
        assert all(h["color"][key] == specs[0]["color"][key] for h in specs)
    assert len({h["style"] for h in specs}) > 1 or len({h["length"] for h in specs}) > 1  # appearance varies


def test_facial_hair_is_for_men_only_at_about_45_percent():
    male, female = [], []
    for i in range(150):
        identity = draw_field("identity", Subject(11, i))
        (male if identity["macro"]["gender"] >= 0.5 else female).append(
            draw(11, i, 0, identity)["facial_hair"]["style"]
        )
    assert set(female) == {"none"}
    share = np.mean([s != "none" for s in male])
    assert 0.3 < share < 0.6, share


def test_bad_values_fail_with_one_clear_line():
    h = spec_for("short")
    for path, bad, word in (
        (("style",), "mohawk", "style"),
        (("density",), "thick", "density"),
        (("facial_hair", "style"), "sideburns", "facial_hair"),
    ):
        broken = json.loads(json.dumps(h))
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        with pytest.raises(ValueError, match=f"{word}.*{bad}.*allowed"):
            hair_catalogue.validate_hair(broken)


# ---------------------------------------------------------------- geometry (numpy)


@pytest.mark.parametrize("style", [s for s in hair_catalogue.HAIRSTYLES if s != "bald"])
def test_guides_grow_on_the_scalp_and_stay_off_the_face(style, geo):
    f = hs.rest_frame(geo)
    guides = hs.scalp_guides(spec_for(style), geo)
    assert len(guides) > 100
    pts = to_rest(geo, guides.reshape(-1, 3)).reshape(guides.shape)
    roots = pts[:, 0]
    skin = geo.rest[geo.topology.skin]
    gap = np.sqrt(((roots[:, None] - skin[None]) ** 2).sum(-1)).min(axis=1)
    assert gap.max() < 1e-6  # a guide root is a scalp vertex
    brow_line = f.eye_z + 0.2
    front = roots[:, 1] < f.eye_y + 0.15
    assert (roots[front, 2] > brow_line).all()  # no roots on the face
    # Nothing in front of the eyes: a box from the brows to the cheekbones over both eyes.
    over_eyes = (
        (np.abs(pts[..., 0]) < f.eye_l[0] + 0.15)
        & (np.abs(pts[..., 2] - f.eye_z) < 0.18)
        & (pts[..., 1] < f.eye_y + 0.05)
    )
    assert not over_eyes.any()


def test_bald_has_no_scalp_hair(geo):
    assert len(hs.scalp_guides(spec_for("bald"), geo)) == 0
    assert hs.scalp_weights(spec_for("bald"), geo).max() == 0


@pytest.mark.parametrize("facial", hair_catalogue.FACIAL_HAIR)
def test_facial_hair_only_where_the_spec_says(facial, geo):
    f = hs.rest_frame(geo)
    strands = hs.beard_strands(spec_for("short", facial), geo)
    if facial == "none":
        assert len(strands.points) == 0
        return
    roots = to_rest(geo, strands.points[:, 0])
    assert len(roots) > 500
    assert (roots[:, 2] < f.eye_z - 0.02).all()  # sideburns at most reach eye level
    central = np.abs(roots[:, 0]) < 0.2
    assert (roots[central, 2] < f.nose[2]).all()  # below the nose in the middle of the face
    if facial == "moustache":
        assert (roots[:, 2] > f.mouth[2] - 0.05).all()
    if facial in ("moustache", "goatee"):
        # No cheeks: the region reaches 0.06 past the mouth's corners; the smile and the neck pose's skinning
        # (which the head matrix does not undo) stretch it further in the rest frame (0.096 on identity 0
        # posed; 0.11 allowed).
        assert (np.abs(roots[:, 0] - f.mouth[0]) < f.mouth_half + 0.17).all()
    if facial in ("short_beard", "full_beard", "stubble"):
        assert (np.abs(roots[:, 0]) > 0.3).mean() > 0.1  # reaches the jaw and cheeks


def test_brows_and_lashes_sit_above_and_around_the_eyes(geo):
    f = hs.rest_frame(geo)
    h = spec_for("short")
    brows = to_rest(geo, hs.eyebrow_strands(h, geo).points[:, 0])
    assert len(brows) > 300 and (brows[:, 2] > f.eye_z + 0.03).all() and (brows[:, 2] < f.eye_z + 0.2).all()
    # Two brows, no unibrow: each starts where the spec says (its soft edge and browInnerUp bring it in a little).
    assert (np.abs(brows[:, 0]) > h["eyebrows"]["inner"] - 0.01).all() and h["eyebrows"]["inner"] > 0.03
    assert (np.abs(brows[:, 0]) < np.abs(f.eye_l[0]) + 0.16).all()  # tails end just past the eye corners
    assert ((brows[:, 0] > 0).mean() > 0.35) and ((brows[:, 0] < 0).mean() > 0.35)  # both sides
    lashes = to_rest(geo, hs.eyelash_strands(h, geo).points[:, 0])
    eye_dist = np.minimum(np.linalg.norm(lashes - f.eye_l, axis=1), np.linalg.norm(lashes - f.eye_r, axis=1))
    assert len(lashes) > 100 and eye_dist.max() < 0.2


# ---------------------------------------------------------------- Blender


def _evaluated_roots(obj) -> np.ndarray:
    curves = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    pos = np.zeros(len(curves.points) * 3, np.float32)
    curves.position_data.foreach_get("vector", pos)
    first = np.zeros(len(curves.curves), np.int32)
    curves.curves.foreach_get("first_point_index", first)
    return pos.reshape(-1, 3)[first]


def _head(identity, pose):
    from blender_assets.head import build_head
    from datagen.blender_render import reset_scene

    reset_scene()
    return build_head(identity, SMILE, pose)


def scalp_surface_points(geo, weights: np.ndarray) -> np.ndarray:
    """Points covering the skin faces that have a weighted corner (the surface scalp hair may grow on),
    in the frame `to_rest` maps the roots to: the skull's quads are up to ~0.15 units across, so
    distances to the vertices alone overstate gaps."""
    tris = triangles(
        [f for f, p in zip(geo.topology.faces, geo.topology.face_part) if p == 0 and weights[f].max() > 0]
    )
    steps = np.linspace(0.0, 1.0, 7)
    bary = np.array([(a, b, 1 - a - b) for a in steps for b in steps if a + b <= 1 + 1e-9])
    surface = to_rest(geo, hs.final_vertices(geo))  # the posed surface, mapped back as the roots are
    return np.einsum("kc,tcd->tkd", bary, surface[tris]).reshape(-1, 3)


def test_every_style_builds_dense_scalp_hair_on_the_scalp(identity):
    pose = POSES[1]
    for style in hair_catalogue.HAIRSTYLES:
        head = _head(identity, pose)
        geo = head.geometry
        objs = build_hair(spec_for(style, "full_beard" if style == "short" else "none"), head.objects[0], geo)
        names = {o.name for o in objs}
        assert {"eyebrows", "eyelashes"} <= names
        assert ("facial_hair" in names) == (style == "short")
        if style == "bald":
            assert "hair_scalp" not in names
            continue
        roots = to_rest(geo, _evaluated_roots(bpy.data.objects["hair_scalp"]))
        assert len(roots) > 5000, style  # interpolated children, not just guides
        weights = hs.scalp_weights(spec_for(style), geo)
        scalp = scalp_surface_points(geo, weights)
        gap = np.sqrt(((roots[::25, None] - scalp[None]) ** 2).sum(-1)).min(axis=1)
        assert gap.max() < 0.03, (style, gap.max())  # on the scalp's own faces (≈ 5 mm of sampling slack)
        f = hs.rest_frame(geo)
        assert (roots[roots[:, 1] < f.eye_y + 0.15, 2] > f.eye_z + 0.2).all(), style


def test_tiny_render_shows_hair(identity):
    from blender_assets.lighting import apply_lighting
    from datagen.blender_render import add_camera, configure_render, quiet_fds
    from facelift_models import cameras

    def render(style: str) -> np.ndarray:
        head = _head(identity, POSES[0])
        scene = bpy.context.scene
        configure_render(
            scene,
            {
                "samples": 4,
                "adaptive_threshold": 0.1,
                "denoise": False,
                "denoise_quality": "FAST",
                "cycles_seed": 1,
                "max_bounces": 4,
                "size": 64,
                "passes": [],
            },
            1,
            "cpu",
        )
        build_hair(spec_for(style), head.objects[0], head.geometry)
        apply_lighting({"kind": "ambient", "color": [0.8, 0.8, 0.8], "strength": 0.6}, {})
        cam = add_camera(scene, cameras.FOV_DEG)
        cam.matrix_world = cameras.c2w_to_blender_matrix(
            cameras.look_at_c2w(cameras.camera_position(0.0, 0.0))
        ).T.tolist()
        with quiet_fds():
            bpy.ops.render.render()
        img = bpy.data.images["Render Result"]
        path = bpy.app.tempdir + "hair_test.png"
        img.save_render(path)
        loaded = bpy.data.images.load(path)
        px = np.array(loaded.pixels[:]).reshape(64, 64, 4)[::-1]  # top row first
        bpy.data.images.remove(loaded)
        return px

    bald, hair = render("bald"), render("medium")
    top = np.abs(hair[:20, 16:48] - bald[:20, 16:48]).max(axis=-1)  # alpha too: hair adds volume over the background
    assert (top > 0.05).mean() > 0.15, (top > 0.05).mean()  # the top of the head changed
    # Over the eyes (rows ~28-34 at 64²) little changes: hair stays off the face.
    eyes = np.abs(hair[28:34, 22:42, :3] - bald[28:34, 22:42, :3]).mean(axis=-1)
    assert eyes.mean() < 0.08
