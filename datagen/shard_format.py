"""The shard format (DESIGN §4), as every reader and writer spells it: an output folder holds the
card `dataset.json` and `shards/heads-{k:06d}.tar`; a shard holds webdataset samples, one per
subject, keyed `id{i:05d}_ap{j:03d}`, whose members are three JSON files and, per view,
`fixed_00.png` … / `random_00.png` … with optional passes: per view `<view>.depth.exr`,
`<view>.normal.exr`, `<view>.albedo.exr`, `<view>.seg.png`; per subject `head.ply`, `landmarks2d.json`.

This module reads the format: the card (loaded and checked) and the samples of a shard. Training
and evaluation reach datagen only through it; writers (`datagen.card`, `datagen.sample`,
`datagen.shard_book`) take their names from here.
"""

from __future__ import annotations

import contextlib
import json
import re
import tarfile
from collections.abc import Iterator, Sequence

from datagen.errors import DatagenError
from datagen.storage import Storage
from facelift_models.cameras import FIXED_VIEWS

# ----------------------------------------------------------------------------- the folder

CARD_NAME = "dataset.json"
SHARD_DIR = "shards"
_SHARD_NAME = re.compile(r"^heads-(\d{6})\.tar$")


def shard_name(index: int) -> str:
    return f"heads-{index:06d}.tar"


def shard_index(name: str) -> int | None:
    """k for `heads-{k:06d}.tar`, None for any other name."""
    m = _SHARD_NAME.match(name)
    return int(m.group(1)) if m else None


def shard_path(name: str) -> str:
    """Where the shard file `name` lies, relative to the output folder."""
    return f"{SHARD_DIR}/{name}"


# ----------------------------------------------------------------------------- one sample

_KEY = re.compile(r"^id(\d{5})_ap(\d{3})$")
JSON_MEMBERS = ("spec.json", "cameras.json", "landmarks.json")


def subject_key(identity: int, appearance: int) -> str:
    """The webdataset key of subject (i, j) (DESIGN §4: no dots)."""
    return f"id{identity:05d}_ap{appearance:03d}"


def key_subject(key: str) -> tuple[int, int] | None:
    """(i, j) of a subject key, None for any other name."""
    m = _KEY.match(key)
    return (int(m.group(1)), int(m.group(2))) if m else None


def view_file_stem(index: int, kind: str, fixed_count: int = len(FIXED_VIEWS)) -> str:
    """`fixed_00` … `fixed_05`, `random_00` …: the file stem of view `index` in spec order."""
    return f"fixed_{index:02d}" if kind == "fixed" else f"random_{index - fixed_count:02d}"


def view_file(stem: str) -> str:
    return f"{stem}.png"


# The file type of each per-view pass: float OpenEXR, or the class map's 8-bit greyscale PNG.
VIEW_PASS_EXTENSIONS = {"depth": "exr", "normal": "exr", "albedo": "exr", "seg": "png"}


def pass_file(stem: str, name: str) -> str:
    """A render pass of a view (`--passes depth,normal,albedo,seg`): `fixed_00.depth.exr`, `fixed_00.seg.png`."""
    return f"{stem}.{name}.{VIEW_PASS_EXTENSIONS[name]}"


# Passes that give one file per subject instead of one per view.
SUBJECT_PASS_FILES = {"mesh": "head.ply", "landmarks2d": "landmarks2d.json"}


def view_passes(passes: Sequence[str]) -> list[str]:
    """The passes rendered with each view (the others are the subject's)."""
    return [p for p in passes if p not in SUBJECT_PASS_FILES]


FIXED_VIEW_FILES = tuple(view_file(view_file_stem(k, "fixed")) for k in range(len(FIXED_VIEWS)))
FRONT_VIEW_FILE = FIXED_VIEW_FILES[0]  # view 0: the diffusion's input, the face statistics' view


def sample_members(views_random: int, passes: Sequence[str]) -> list[str]:
    """Every member name (without the key) a sample with these views and passes holds, sorted."""
    kinds = ["fixed"] * len(FIXED_VIEWS) + ["random"] * views_random
    stems = [view_file_stem(k, kind) for k, kind in enumerate(kinds)]
    names = list(JSON_MEMBERS) + [view_file(s) for s in stems]
    names += [pass_file(s, p) for s in stems for p in view_passes(passes)]
    names += [SUBJECT_PASS_FILES[p] for p in passes if p in SUBJECT_PASS_FILES]
    return sorted(names)


HEAD_MESH_VERTEX = [
    ("x", "<f4"),
    ("y", "<f4"),
    ("z", "<f4"),
    ("red", "u1"),
    ("green", "u1"),
    ("blue", "u1"),
    ("part", "u1"),
]


def head_mesh_bytes(xyz, rgb, part, faces, part_names: Sequence[str]) -> bytes:
    """`head.ply`: binary little-endian PLY, vertices x y z (float32, world frame, scene units), red
    green blue (uchar sRGB), part (uchar, an index into `part_names`, listed in a comment), and faces
    as vertex index lists (quads and triangles)."""
    import numpy as np

    vertex = np.zeros(len(xyz), dtype=HEAD_MESH_VERTEX)
    for k, c in enumerate("xyz"):
        vertex[c] = xyz[:, k]
    for k, c in enumerate(("red", "green", "blue")):
        vertex[c] = rgb[:, k]
    vertex["part"] = part
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"comment facelift head: world frame, scene units; part: {' '.join(part_names)}\n"
        f"element vertex {len(vertex)}\n"
        + "".join(f"property {'float' if t == '<f4' else 'uchar'} {name}\n" for name, t in HEAD_MESH_VERTEX)
        + f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    encoded = [np.uint8(len(f)).tobytes() + np.asarray(f, dtype="<i4").tobytes() for f in faces]
    return header.encode() + vertex.tobytes() + b"".join(encoded)


def read_head_mesh(data: bytes):
    """`head.ply` (`--passes mesh`) as (vertex record array with x y z red green blue part, list of
    face index arrays); ValueError naming what is wrong when it is not one."""
    import numpy as np

    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise ValueError("not a PLY file")
    header = data[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise ValueError("not binary little-endian PLY")
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element ")}
    body = memoryview(data)[end + len(b"end_header\n") :]
    dtype = np.dtype(HEAD_MESH_VERTEX)
    n = counts.get("vertex", 0)
    if len(body) < n * dtype.itemsize:
        raise ValueError(f"{n} vertices announced, {len(body)} bytes follow")
    vertices = np.frombuffer(body[: n * dtype.itemsize], dtype=dtype)
    faces, at = [], n * dtype.itemsize
    for _ in range(counts.get("face", 0)):
        if at >= len(body):
            raise ValueError(f"{counts['face']} faces announced, {len(faces)} present")
        k = body[at]
        faces.append(np.frombuffer(body[at + 1 : at + 1 + 4 * k], dtype="<i4"))
        at += 1 + 4 * k
    if at != len(body) or any(len(f) < 3 or f.min() < 0 or f.max() >= n for f in faces if len(f)):
        raise ValueError("faces do not index the vertices")
    return vertices, faces


# The channels of each float pass's OpenEXR file.
EXR_PASS_CHANNELS = {"depth": ("Z",), "normal": ("X", "Y", "Z"), "albedo": ("R", "G", "B")}


def read_pass_exr(data: bytes, name: str) -> dict:
    """A `<view>.<name>.exr` (depth, normal, albedo) as {channel: (H, W) float32 array}; ValueError
    naming what is wrong when it is not one."""
    import io

    import numpy as np
    import OpenEXR

    try:
        with OpenEXR.File(io.BytesIO(data), separate_channels=True) as exr:
            channels = {k: np.array(v.pixels) for k, v in exr.channels().items()}
    except Exception as e:  # OpenEXR raises plain exceptions for any undecodable stream
        raise ValueError(f"not an OpenEXR image ({e})") from None
    if set(channels) != set(EXR_PASS_CHANNELS[name]):
        raise ValueError(f"channels {sorted(channels)}, expected {list(EXR_PASS_CHANNELS[name])}")
    if any(c.dtype != np.float32 or not np.isfinite(c).all() for c in channels.values()):
        raise ValueError("channels not finite float32")
    return channels


def seg_png_bytes(seg) -> bytes:
    """`<view>.seg.png`: the class map (H, W) of indices into `SEG_CLASSES` as an 8-bit greyscale PNG,
    so every decoder (PIL, webdataset's, Ray Data's) gives the indices themselves."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(seg, dtype=np.uint8), mode="L").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def read_seg(data: bytes):
    """A `<view>.seg.png` as an (H, W) uint8 array of class indices; ValueError naming what is wrong."""
    import io

    import numpy as np
    from PIL import Image

    from blender_assets.seg_classes import SEG_CLASSES

    image = Image.open(io.BytesIO(data))
    if image.format != "PNG" or image.mode != "L":
        raise ValueError(f"a {image.format} image of mode {image.mode}, not an 8-bit greyscale PNG")
    seg = np.asarray(image)
    if seg.max() >= len(SEG_CLASSES):
        raise ValueError(f"class {seg.max()} outside the {len(SEG_CLASSES)} classes")
    return seg


def read_landmarks2d(data: bytes, frames: int) -> dict:
    """`landmarks2d.json` checked against the sample's view count; ValueError naming what is wrong."""
    doc = json.loads(data)
    count = len(doc["names"])
    if len(doc["frames"]) != frames:
        raise ValueError(f"{len(doc['frames'])} frames, the sample has {frames} views")
    for frame in doc["frames"]:
        if len(frame["xy"]) != count or len(frame["visible"]) != count:
            raise ValueError(f"{frame['file_path']}: not {count} points and visibilities")
    return doc


def read_samples(fileobj) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {member: bytes}) for each sample of a tar stream, grouped as webdataset groups them."""
    key, files = None, {}
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            base = info.name.rsplit("/", 1)[-1]
            k, _, member = base.partition(".")
            data = tar.extractfile(info).read()
            if k != key and key is not None:
                yield key, files
                files = {}
            key = k
            if member in files:
                raise ValueError(f"sample {k} holds {member} twice")
            files[member] = data
    if key is not None:
        yield key, files


# ----------------------------------------------------------------------------- the card

FORMAT = "facelift-heads-webdataset"
FORMAT_VERSION = 1
FACE_STATS_FIELD = "face_alignment"  # the front views' face statistics (`datagen.face_stats`)

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


def load_card(storage: Storage) -> dict | None:
    """The folder's card, checked; None when it has none."""
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


def require_card(storage: Storage, missing: str | None = None) -> dict:
    """The folder's card, or a one-line DatagenError: `missing`, by default that the folder is not a
    datagen output."""
    card = load_card(storage)
    if card is None:
        raise DatagenError(missing or f"{storage.url} has no {CARD_NAME}; is it a facelift datagen output folder?")
    return card


# ----------------------------------------------------------------------------- readers outside datagen


def open_location(url: str) -> Storage:
    """The folder or fsspec URL, proven to answer (`Storage.check`: a missing bucket, refused
    credentials or an endpoint that does not answer is one line in seconds); DatagenError otherwise."""
    storage = Storage(url)
    storage.check()
    return storage


@contextlib.contextmanager
def datagen_errors_as(error: type[Exception], prefix: str = "") -> Iterator[None]:
    """Datagen's one-line errors (an unusable location, an invalid card, a failed read) raised as
    `error(prefix + message)`: how training and evaluation report them as their own."""
    try:
        yield
    except DatagenError as e:
        raise error(prefix + str(e)) from None
