"""lipseg_tf's predict pipeline against MediaPipe FaceMesh, photo for photo, on the same scenes in one run.

Scenes: each face of a CelebAMask-HQ split (the dev test split by default) placed in a larger photo
(1024 x 768), rotated by up to 30 degrees either way and scaled so that the face (twice its eye distance)
is 100-320 px wide, at a random place on a blurred, noisy background made from another photo of the
split (no face is left in it); its g_mask.py mask is moved the same way (nearest neighbour). Written as
<scenes>/photos/<id>.jpg (JPEG quality 90) and <scenes>/masks/<id>.png (class ids), with
<scenes>/scenes.json. Built once per folder (seeded); never commit them (real faces).

Then, in one run and on the same files:

    lipseg_tf  predict.py's pipeline (serve/predict.predict_files: read, detect, align, segment, paste,
               write <id>-mask.png and <id>.json, by default) with the shipped model; timed from the first
               photo read to the last file written (model and detector loading excluded).
    MediaPipe  FaceMesh (benchmarks/mediapipe_peer.py: static images, refined landmarks, one face) in
               its own environment (.venv-mediapipe, a subprocess): each photo read, FaceMesh run, its
               contours filled at the photo's size and the mask written as a PNG; timed the same way,
               and its read + FaceMesh part alone.

Both are scored as benchmarks/mediapipe_peer.py scores: one confusion count over all scene pixels,
per-part F1 and their mean (lipseg_tf.train.metrics). A face is missed when no detected face's box
(MediaPipe: no landmark) holds the centre of the true parts.

    benchmarks/speed.sh [--count 500] [--detector blazeface] [--tta none|flip|off] [--scenes DIR] [--out DIR]

This module imports no TensorFlow at its top: the MediaPipe side runs it in .venv-mediapipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageFilter

from lipseg_tf.cli.common import positive_int, run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep import imageio
from lipseg_tf.train import metrics

log = logging.getLogger("lipseg_tf")

ROOT = Path(__file__).resolve().parents[1]
REALDEV = Path("/work/realdev")
SCENE_SIZE = (1024, 768)             # width, height
FACE_WIDTHS = (100.0, 320.0)         # pixels: twice the eye distance
MAX_ANGLE = 30.0                     # degrees, either way
EYE_DISTANCE = 0.241                 # of a CelebA-HQ photo's side (serve/align.py's celebahq framing)
DISC = 0.42                          # radius of the disc of the face photo that is pasted, of its side
SCENES_FILE = "scenes.json"
JPEG_QUALITY = 90
MEDIAPIPE_PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo)."""
    from lipseg_tf.serve.xnnpack import cpuinfo_field
    return cpuinfo_field("model name") or "?"


def runners(segmenter) -> str:
    """', first look short, crop-dynamic.tflite': the detector's first-look model (BlazeFace) and the
    TFLite copy of the U-Net that predict.Model timed fastest here (where it has them)."""
    first = getattr(segmenter.detector, "first", None)
    label = "" if first is None else f", first look {'short' if first is segmenter.detector.short else 'full'}"
    lite = segmenter.model.lite_path
    return label + ("" if lite is None else f", {lite.name}")


# -------------------------------------------------------------------------------------------- scenes

def scene_transform(source_side: int, angle: float, face_width: float, centre: tuple[float, float]) -> np.ndarray:
    """2x3 map from a square face photo's pixel coordinates (side source_side) to the scene's: scaled
    so that twice its eye distance is face_width, rotated by angle degrees (counter-clockwise as seen),
    its centre moved to `centre`."""
    scale = face_width / (2 * EYE_DISTANCE * source_side)
    theta = math.radians(angle)
    c, s = scale * math.cos(theta), scale * math.sin(theta)
    linear = np.array([[c, s], [-s, c]])  # y points down: this turns the face counter-clockwise
    half = source_side / 2
    shift = np.asarray(centre) - linear @ (half, half)
    return np.concatenate([linear, shift[:, None]], axis=1)


def _warp(image: Image.Image, matrix: np.ndarray, resample) -> Image.Image:
    """The image moved by `matrix` (source -> scene) onto a scene-sized canvas (zeros outside)."""
    inverse = np.linalg.inv(np.vstack([matrix, (0, 0, 1)]))[:2]
    return image.transform(SCENE_SIZE, Image.Transform.AFFINE, data=tuple(inverse.ravel()), resample=resample)


def background(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A faceless backdrop: a photo's colours (shrunk to 16 x 12, its cells shuffled so that no blurred
    face is left), enlarged smoothly to the scene, with texture."""
    small = np.asarray(Image.fromarray(photo).resize((16, 12), Image.Resampling.BOX)).reshape(-1, 3)
    small = Image.fromarray(rng.permutation(small).reshape(12, 16, 3))
    smooth = np.asarray(small.resize(SCENE_SIZE, Image.Resampling.BICUBIC), np.float32)
    noise = rng.normal(0, 12, (SCENE_SIZE[1] // 4, SCENE_SIZE[0] // 4, 1)).astype(np.float32)
    texture = np.asarray(Image.fromarray(noise[..., 0]).resize(SCENE_SIZE, Image.Resampling.BILINEAR))
    return np.clip(smooth + texture[..., None], 0, 255).astype(np.uint8)


def make_scene(photo: np.ndarray, labels: np.ndarray, backdrop: np.ndarray, rng: np.random.Generator):
    """(scene photo (768, 1024, 3) uint8, scene labels (768, 1024) uint8, parameters) for one face photo
    (square) and its class ids (square, any side)."""
    side = photo.shape[0]
    angle = float(rng.uniform(-MAX_ANGLE, MAX_ANGLE))
    face_width = float(rng.uniform(*FACE_WIDTHS))
    radius = DISC * side * face_width / (2 * EYE_DISTANCE * side)
    width, height = SCENE_SIZE
    centre = (float(rng.uniform(radius, width - radius)), float(rng.uniform(radius, height - radius)))
    matrix = scene_transform(side, angle, face_width, centre)
    # Shrink first (antialiased), then rotate and place: the photo is never sampled below its detail.
    scale = face_width / (2 * EYE_DISTANCE * side)
    shrunk_side = max(8, round(side * scale))
    to_shrunk = np.diag([side / shrunk_side, side / shrunk_side, 1.0])  # shrunk pixels -> source pixels
    shrunk_matrix = np.vstack([matrix, (0, 0, 1)])[:2] @ to_shrunk
    shrunk = Image.fromarray(photo).resize((shrunk_side, shrunk_side), Image.Resampling.LANCZOS)
    label_image = Image.fromarray(labels).resize((shrunk_side, shrunk_side), Image.Resampling.NEAREST)
    yy, xx = np.mgrid[:shrunk_side, :shrunk_side] + 0.5
    disc = np.hypot(xx - shrunk_side / 2, yy - shrunk_side / 2) <= DISC * shrunk_side
    alpha_image = Image.fromarray((disc * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
    face = np.asarray(_warp(shrunk, shrunk_matrix, Image.Resampling.BICUBIC), np.float32)
    alpha = np.asarray(_warp(alpha_image, shrunk_matrix, Image.Resampling.BILINEAR), np.float32)[..., None] / 255
    scene = np.clip(alpha * face + (1 - alpha) * backdrop + 0.5, 0, 255).astype(np.uint8)
    scene_labels = np.asarray(_warp(label_image, shrunk_matrix, Image.Resampling.NEAREST))
    scene_labels = np.where(alpha[..., 0] >= 0.5, scene_labels, 0).astype(np.uint8)
    return scene, scene_labels, {"angle": round(angle, 2), "face_width": round(face_width, 1),
                                 "centre": [round(v, 1) for v in centre]}


def build_scenes(data_dir: Path, masks_dir: Path, out_dir: Path, count: int, seed: int = 0,
                 split: str = "test") -> list[dict]:
    """Write `count` scenes (the first faces of the split, by id) under out_dir; returns scenes.json's
    "scenes". Reuses the folder when it already holds the same scenes."""
    from lipseg_tf.prep.masks import META_FILE, read_meta
    from lipseg_tf.tools.eval_fullsize import decode_mask, split_photos

    spec = {"data_dir": str(data_dir), "masks": str(masks_dir), "split": split, "seed": seed, "count": count,
            "background": "shuffled"}
    done = out_dir / SCENES_FILE
    if done.is_file():
        old = json.loads(done.read_text())
        if {k: old.get(k) for k in spec} == spec:
            return old["scenes"]
    meta = read_meta(masks_dir / META_FILE)
    if meta is None:
        raise UserError(f"{masks_dir / META_FILE}: not found (expected g_mask.py's output folder)")
    photos = split_photos(data_dir, masks_dir, split, limit=count)
    if len(photos) < count:
        log.warning("only %d %s faces with masks: %d scenes", len(photos), split, len(photos))
    from tqdm import tqdm
    rng = np.random.default_rng(seed)
    scenes = []
    for index, (image_id, photo_path, mask_path) in enumerate(tqdm(photos, desc="scenes", unit="scene", disable=None)):
        photo = imageio.load_rgb(photo_path)
        mask = imageio.load_rgb(mask_path) if meta.get("style") == "color" else imageio.load_gray(mask_path)
        labels = decode_mask(mask, meta)
        other = imageio.load_rgb(photos[(index + 1) % len(photos)][1])
        scene, scene_labels, params = make_scene(photo, labels, background(other, rng), rng)
        name = f"{image_id}"
        imageio.save_image(out_dir / "photos" / f"{name}.jpg", scene, quality=JPEG_QUALITY)
        imageio.save_image(out_dir / "masks" / f"{name}.png", scene_labels)
        scenes.append({"name": name, "id": image_id, **params})
    imageio.write_text(done, json.dumps({**spec, "classes": list(meta["classes"]), "size": list(SCENE_SIZE),
                                         "scenes": scenes}, indent=1) + "\n")
    return scenes


# ------------------------------------------------------------------------------------------- scoring

def part_centre(labels: np.ndarray) -> tuple[float, float] | None:
    """(x, y) centre of the part pixels' bounding box, None when there are none."""
    rows, cols = np.nonzero(labels)
    if not len(rows):
        return None
    return (cols.min() + cols.max() + 1) / 2, (rows.min() + rows.max() + 1) / 2


def found_face(boxes: Sequence[Sequence[float]], centre: tuple[float, float] | None) -> bool:
    """Whether one of the boxes (x, y, w, h) holds the centre of the true parts (no parts: found)."""
    if centre is None:
        return True
    x, y = centre
    return any(bx <= x <= bx + bw and by <= y <= by + bh for bx, by, bw, bh in boxes)


def score(scenes_dir: Path, scenes: Sequence[dict], masks: dict[str, Path], boxes: dict[str, list], classes) -> dict:
    """metrics.summary over the predicted masks (masks[name]: a class-id PNG) against the scenes' truth,
    with "missed": the scenes whose true face no box of `boxes[name]` holds."""
    confusion = np.zeros((len(classes),) * 2, np.int64)
    missed = []
    for scene in scenes:
        truth = imageio.load_gray(scenes_dir / "masks" / f"{scene['name']}.png")
        pred = imageio.load_gray(masks[scene["name"]])
        confusion += metrics.confusion_matrix(truth, pred, len(classes))
        if not found_face(boxes.get(scene["name"], []), part_centre(truth)):
            missed.append(scene["name"])
    result = metrics.summary(confusion, list(classes), len(scenes))
    result["missed"] = missed
    return result


# ------------------------------------------------------------------------------------------ lipseg_tf

def run_lipseg(segmenter, scenes_dir: Path, scenes: Sequence[dict], out_dir: Path,
               save: Sequence[str] = ("mask", "json")) -> dict:
    """predict_files over some scenes, timed from the first read to the last file written (the model
    and detector are loaded before): {"seconds", "cpu_seconds" (the process's, all its threads),
    "steps" (summed), "boxes"}; masks in out_dir."""
    from lipseg_tf.serve import predict

    files = [scenes_dir / "photos" / f"{s['name']}.jpg" for s in scenes]
    start, cpu = time.perf_counter(), cpu_seconds()
    summary = predict.predict_files(files, segmenter, out_dir, save=save)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    boxes = {}
    for scene in scenes:
        record = json.loads((out_dir / f"{scene['name']}.json").read_text())
        boxes[scene["name"]] = [face["box"] for face in record["faces"]]
    steps = {k: v * len(files) for k, v in summary["mean_seconds"].items()}
    return {"seconds": seconds, "cpu_seconds": cpu, "steps": steps, "boxes": boxes}


# ------------------------------------------------------------------------------------------ MediaPipe

def cpu_seconds() -> float:
    """The CPU time this process has used so far, all its threads, user and system."""
    times = os.times()
    return times.user + times.system


def facemesh_mask(landmarks: np.ndarray | None, polygons: dict, class_ids: dict,
                  shape: tuple[int, int]) -> np.ndarray:
    """One face's FaceMesh landmarks ((N, 2) in [0, 1] of the photo's width and height) -> (H, W) class
    ids at the photo's size: mediapipe_peer's polygons, filled by its scanline fill (fill_parts)."""
    from benchmarks import mediapipe_peer as peer

    height, width = shape
    labels = np.zeros(shape, np.uint8)
    if landmarks is None:
        return labels
    return peer.fill_parts(labels, landmarks * (width, height), polygons, class_ids)


def run_mediapipe(scenes_dir: Path, out_dir: Path, start_index: int, stop_index: int) -> dict:
    """FaceMesh over scenes[start_index:stop_index] (run inside .venv-mediapipe): masks written into
    out_dir, timed from the first read to the last mask written (the graph's start-up left out):
    {"seconds", "cpu_seconds", "steps", "boxes", "system"}."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    import mediapipe
    from mediapipe.python.solutions import face_mesh

    from benchmarks import mediapipe_peer as peer

    info = json.loads((scenes_dir / SCENES_FILE).read_text())
    scenes, classes = info["scenes"][start_index:stop_index], info["classes"]
    polygons = peer.part_polygons(face_mesh.FACEMESH_LIPS, face_mesh.FACEMESH_LEFT_EYE, face_mesh.FACEMESH_RIGHT_EYE)
    class_ids = peer.part_class_ids({"parts": classes[1:], "style": "color"}, polygons)
    out_dir.mkdir(parents=True, exist_ok=True)
    boxes, mesh_seconds = {}, 0.0
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                            min_detection_confidence=0.5) as mesh:
        mesh.process(np.zeros((64, 64, 3), np.uint8))  # the graph's start-up, left out as model loading
        start, cpu = time.perf_counter(), cpu_seconds()
        for scene in scenes:
            tick = time.perf_counter()
            photo = imageio.load_rgb(scenes_dir / "photos" / f"{scene['name']}.jpg")
            found = mesh.process(photo).multi_face_landmarks
            mesh_seconds += time.perf_counter() - tick
            landmarks = np.array([(p.x, p.y) for p in found[0].landmark], np.float64) if found else None
            labels = facemesh_mask(landmarks, polygons, class_ids, photo.shape[:2])
            # the mask written as lipseg_tf writes its own (imageio.encode_gray_png: 0.36 ms for a 1024 x 768
            # scene's since 2026-12-07, 3.3 ms for PIL's level 1, which the MediaPipe side paid until
            # 2026-12-02 06:40 UTC), the photo read as lipseg_tf reads it: faster I/O speeds up both sides
            imageio.save_labels_png(out_dir / f"{scene['name']}-mask.png", labels)
            if landmarks is not None:
                (x0, y0), (x1, y1) = landmarks.min(0) * photo.shape[1::-1], landmarks.max(0) * photo.shape[1::-1]
                boxes[scene["name"]] = [[x0, y0, x1 - x0, y1 - y0]]
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "steps": {"read_and_facemesh": mesh_seconds}, "boxes": boxes,
            "system": f"MediaPipe FaceMesh {mediapipe.__version__} (writes mask)"}


def mediapipe_subprocess(scenes_dir: Path, out_dir: Path, start_index: int, stop_index: int,
                         python: Path = MEDIAPIPE_PYTHON) -> dict:
    """run_mediapipe in MediaPipe's own environment; its result read back from out_dir/result.json."""
    run_in_mediapipe_env(python, ["benchmarks.speed", "--mediapipe-part", f"{start_index}:{stop_index}",
                                  "--scenes", str(scenes_dir), "--out", str(out_dir)], "benchmarks/speed.sh")
    return json.loads((out_dir / "result.json").read_text())


def run_in_mediapipe_env(python: Path, module_args: Sequence[str], maker: str) -> None:
    """python -m MODULE ARGS in MediaPipe's environment, from the repository root; its output (MediaPipe's
    and TensorFlow Lite's start-up lines) is shown only when it fails, as UserError's last line.
    maker: the script that makes that environment, for the message when it is missing."""
    if not python.is_file():
        raise UserError(f"{python}: not found ({maker} makes .venv-mediapipe from "
                        "benchmarks/requirements-mediapipe.txt), or pass --no-mediapipe")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GLOG_minloglevel": "2"}
    done = subprocess.run([str(python), "-m", *module_args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{module_args[0]} in {python} failed (exit {done.returncode}): {last}")


# ------------------------------------------------------------------------------------------- the table

def format_report(results: Sequence[dict], classes: Sequence[str], count: int, data: str) -> str:
    """The side-by-side table: time per photo, faces missed, F1 per part and mean, and the ratios
    (first system over the last)."""
    parts = list(classes[1:])
    head = ["", *[r["system"] for r in results]]
    rows = [["time per photo (s)", *[f"{r['seconds_per_photo']:.4f}" for r in results]],
            ["CPU time per photo (s), all threads", *[f"{r['cpu_seconds_per_photo']:.4f}"
                                                      if r.get("cpu_seconds_per_photo") is not None else "—"
                                                      for r in results]],
            ["faces missed", *[f"{len(r['missed'])} of {count}" for r in results]],
            *[[f"F1 {p}", *[f"{r['parts'][p]['f1']:.3f}" for r in results]] for p in parts],
            ["mean F1", *[f"{r['mean_f1']:.3f}" for r in results]]]
    first, last = results[0], results[-1]
    ratio = "" if len(results) < 2 else (
        f"\ntime ratio {first['system']} / {last['system']}: "
        f"{first['seconds_per_photo'] / last['seconds_per_photo']:.2f}; mean F1 difference "
        f"{first['mean_f1'] - last['mean_f1']:+.3f}")
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return f"{data}\n" + "\n".join(lines) + ratio


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/speed.sh",
        description="lipseg_tf's predict pipeline and MediaPipe FaceMesh on the same scenes (real faces "
                    "placed, rotated and scaled in 1024x768 photos), in one run: time per photo, faces "
                    "missed, F1 per part and mean.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=REALDEV / "CelebAMask-HQ",
                        help="CelebAMask-HQ root (CelebA-HQ-img/, the mapping file)")
    parser.add_argument("--masks", type=Path, default=REALDEV / "work" / "masks",
                        help="g_mask.py's masks of it (as annotated)")
    parser.add_argument("--split", default="test", help="which split's faces make the scenes")
    parser.add_argument("--count", type=positive_int, default=500, help="scenes (fewer for a quick run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scenes' placement")
    parser.add_argument("--scenes", type=Path, default=None,
                        help="folder for the scenes (default: <out>/scenes); never inside the repository")
    parser.add_argument("--out", type=Path, default=REALDEV / "speed", help="folder for scenes, masks, results")
    parser.add_argument("--detector", action="append", default=None,
                        help="lipseg_tf detector(s) to run, repeatable (default: blazeface)")
    parser.add_argument("--model", default=None,
                        help="an exported model folder, or a shipped model's name: fast, accurate or small, as "
                             "predict.py's --model (default: predict.py's, the shipped small one)")
    parser.add_argument("--tta", choices=("none", "flip", "off"), default="none",
                        help="lipseg_tf's tta, as predict.py's --tta (off: no mirror-image average)")
    parser.add_argument("--no-mediapipe", dest="mediapipe", action="store_false", help="skip MediaPipe")
    parser.add_argument("--rounds", type=positive_int, default=5,
                        help="the scenes are run in this many rounds, each system in turn in each")
    parser.add_argument("--mediapipe-part", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def add_round(total: dict, part: dict) -> None:
    """Add one round's seconds, steps and boxes to a system's totals."""
    total["seconds"] = total.get("seconds", 0.0) + part["seconds"]
    total["cpu_seconds"] = total.get("cpu_seconds", 0.0) + part["cpu_seconds"]
    for key, value in part["steps"].items():
        total.setdefault("steps", {})[key] = total.get("steps", {}).get(key, 0.0) + value
    total.setdefault("boxes", {}).update(part["boxes"])
    total["system"] = part.get("system", total.get("system"))


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    # TensorFlow's start-up lines kept off stderr; not in MediaPipe's environment (--mediapipe-part), which has none
    setup_logging(args.verbose, tensorflow=not args.mediapipe_part)
    scenes_dir = args.scenes or args.out / "scenes"
    if args.mediapipe_part:
        start_index, stop_index = (int(v) for v in args.mediapipe_part.split(":"))
        result = run_mediapipe(scenes_dir, args.out, start_index, stop_index)
        imageio.write_text(args.out / "result.json", json.dumps(result) + "\n")
        return 0
    from lipseg_tf.serve.api import Segmenter
    from lipseg_tf.serve.predict import tune_process

    tune_process()  # as predict.py does
    scenes = build_scenes(args.data_dir, args.masks, scenes_dir, args.count, args.seed, args.split)
    classes = json.loads((scenes_dir / SCENES_FILE).read_text())["classes"]
    detectors = args.detector or ["blazeface"]
    segmenters = {}
    for name in detectors:
        segmenters[name] = Segmenter(args.model, detector=name, tta=args.tta)
        # Built and run once now (TensorFlow traces its graph on the first call), as MediaPipe's graph
        # is started before its timing: loading is not timed.
        size = segmenters[name].model.image_size
        segmenters[name].model(np.zeros((1, size, size, 3), np.uint8))
        segmenters[name].detector(np.zeros((256, 256, 3), np.uint8))
    tta = "" if args.tta == "none" else f", --tta {args.tta}"
    tta += "" if args.model is None else f", --model {args.model}"
    systems = {name: {"system": f"lipseg_tf predict ({name}{runners(segmenters[name])}{tta}, "
                                f"writes mask+json)",
                      "masks": args.out / f"lipseg_{name}"} for name in detectors}
    if args.mediapipe:
        systems["mediapipe"] = {"masks": args.out / "mediapipe"}
    # Rounds of scenes, each system in turn, so that a machine whose load drifts weighs on all alike.
    bounds = np.linspace(0, len(scenes), min(args.rounds, len(scenes)) + 1).round().astype(int)
    for index, (first, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        for name, total in systems.items():
            round_dir = total["masks"] / f"round{index}"
            if name == "mediapipe":
                part = mediapipe_subprocess(scenes_dir, round_dir, first, stop)
            else:
                part = run_lipseg(segmenters[name], scenes_dir, scenes[first:stop], round_dir)
            add_round(total, part)
            total.setdefault("mask_files", {}).update(
                {s["name"]: round_dir / f"{s['name']}-mask.png" for s in scenes[first:stop]})
            log.info("round %d, %s: %.4f s per photo", index, name, part["seconds"] / (stop - first))
    results = []
    for name, total in systems.items():
        result = score(scenes_dir, scenes, total["mask_files"], total["boxes"], classes)
        result.update(system=total["system"], seconds_per_photo=total["seconds"] / len(scenes),
                      cpu_seconds_per_photo=total["cpu_seconds"] / len(scenes),
                      steps={k: v / len(scenes) for k, v in total["steps"].items()})
        results.append(result)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").is_file() else "?"
    data = (f"{len(scenes)} scenes from the {args.split} split of {args.data_dir} ({SCENE_SIZE[0]}x{SCENE_SIZE[1]}, "
            f"faces {FACE_WIDTHS[0]:.0f}-{FACE_WIDTHS[1]:.0f} px, up to {MAX_ANGLE:.0f} degrees), "
            f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {os.cpu_count()} CPUs ({cpu_name()}), load {load}, "
            f"{len(bounds) - 1} rounds")
    report = format_report(results, classes, len(scenes), data)
    imageio.write_text(args.out / "speed.json", json.dumps({"data": data, "results": results}, indent=1) + "\n")
    print(report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
