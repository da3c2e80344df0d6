"""MediaPipe FaceMesh as a peer: its eye and lip contours filled as polygons, scored like test mode.

FaceMesh (mediapipe 0.10.21, legacy `solutions.face_mesh`, static images, refined landmarks) finds 478
landmarks per face, no training. Its eye loops (FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE) are filled as
l_eye and r_eye, and each lip is the ring between its outer and inner contour (FACEMESH_LIPS): the upper
lip between the outer upper contour (mouth corners 61 -> 0 -> 291) and the inner upper one (inner corners
78 -> 13 -> 308), the lower lip likewise (61 -> 17 -> 291 and 78 -> 14 -> 308). MediaPipe's LEFT_EYE is
the subject's left eye, on the image's right side: CelebAMask-HQ's l_eye.

Each AB pair of `<input_dir>/<split>/` is read as lipseg_tf's test mode reads it: the mask half decoded
to class ids by the nearest colour of pairs.json's palette, then resized to --size with nearest
neighbour (the same index rule as tf.image.resize). FaceMesh sees the photo half at the pair's own size;
its polygons are drawn at --size, 4x4 samples per pixel, each pixel taking the class most of its samples
fall in. A face FaceMesh does not find is scored all background, and counted. The score is test mode's:
one confusion count over all images, per-part F1 and IoU, their means (lipseg_tf.train.metrics).

mediapipe pins protobuf < 5, which TensorFlow's .venv cannot share: run it through
benchmarks/mediapipe_peer.sh, which makes .venv-mediapipe/ from benchmarks/requirements-mediapipe.txt.
The functions above `run_benchmark` need numpy and PIL, not mediapipe: the test suite imports them.

    benchmarks/mediapipe_peer.sh --input_dir pairs256 --output_dir out/mediapipe_128 --size 128
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep import imageio
from lipseg_tf.train import metrics

log = logging.getLogger("lipseg_tf")

PAIRS_META_FILE = "pairs.json"   # written by process.py beside train/ val/ test/
SUPERSAMPLE = 4                  # polygon samples per pixel along each axis

# FaceMesh landmark ids on the lip line: the outer mouth corners, the inner ones, and a landmark on the
# upper lip's middle for each contour, which tells the upper half of a contour from the lower one.
MOUTH_CORNERS = (61, 291)
INNER_CORNERS = (78, 308)
UPPER_MIDDLE_OUTER = 0
UPPER_MIDDLE_INNER = 13

Edges = Iterable[tuple[int, int]]


def cycle_order(edges: Edges, start: int) -> list[int]:
    """The landmark ids of the closed loop through `start`, in order along the loop (start first).

    `edges` are undirected connections (MediaPipe's FACEMESH_* sets); every landmark of start's loop
    must have exactly two neighbours. Raises ValueError otherwise.
    """
    neighbours = defaultdict(list)
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    if start not in neighbours:
        raise ValueError(f"landmark {start} is in no connection")
    order, previous, current = [start], None, start
    while True:
        if len(neighbours[current]) != 2:
            raise ValueError(f"landmark {current} has {len(neighbours[current])} neighbours, a loop needs 2")
        a, b = neighbours[current]
        following = b if a == previous else a
        if following == start:
            return order
        if following in order:
            raise ValueError(f"landmark {following} is met twice: not one loop")
        order.append(following)
        previous, current = current, following


def corner_paths(edges: Edges, corners: tuple[int, int], upper_middle: int) -> tuple[list[int], list[int]]:
    """The loop through `corners` cut at both corners: (upper path, lower path), each from corners[0]
    to corners[1]. The upper path is the one through `upper_middle`."""
    loop = cycle_order(edges, corners[0])
    if corners[1] not in loop:
        raise ValueError(f"corners {corners} are not on one loop")
    cut = loop.index(corners[1])
    one = loop[:cut + 1]
    other = [loop[0]] + loop[cut:][::-1]
    if (upper_middle in one) == (upper_middle in other):
        raise ValueError(f"landmark {upper_middle} is not on exactly one side of the loop {loop}")
    return (one, other) if upper_middle in one else (other, one)


def part_polygons(lip_edges: Edges, left_eye_edges: Edges, right_eye_edges: Edges) -> dict[str, list[int]]:
    """Closed polygons as landmark ids, per lipseg_tf part: l_eye, r_eye, u_lip, l_lip.

    The eyes are their loops. A lip is its outer contour from corner to corner, then its inner contour
    back, so the polygon is the ring between them (the open mouth is left out).
    """
    lip_edges = list(lip_edges)
    outer_upper, outer_lower = corner_paths(lip_edges, MOUTH_CORNERS, UPPER_MIDDLE_OUTER)
    inner_upper, inner_lower = corner_paths(lip_edges, INNER_CORNERS, UPPER_MIDDLE_INNER)
    left_eye = list(left_eye_edges)
    right_eye = list(right_eye_edges)
    return {
        "l_eye": cycle_order(left_eye, min(a for edge in left_eye for a in edge)),
        "r_eye": cycle_order(right_eye, min(a for edge in right_eye for a in edge)),
        "u_lip": outer_upper + inner_upper[::-1],
        "l_lip": outer_lower + inner_lower[::-1],
    }


def fill_polygon(vertices: np.ndarray, height: int, width: int) -> np.ndarray:
    """(height, width) bool: the pixels whose centre lies inside the polygon (even-odd rule).

    `vertices` (K, 2) are (x, y) in pixel units, pixel (row i, column j) covering [j, j+1) x [i, i+1).
    """
    inside = np.zeros((height, width), bool)
    (y0, y1, x0, x1), window = _filled_window(vertices, height, width)
    inside[y0:y1, x0:x1] = window
    return inside


def _filled_window(vertices: np.ndarray, height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """fill_polygon within the polygon's bounding window: ((y0, y1, x0, x1), (y1 - y0, x1 - x0) bool).

    A scanline fill: on each row of pixel centres, every edge crossing at x flips the pixels whose centre
    lies left of x; a pixel is inside when it is flipped an odd number of times. 0.05 ms for a FaceMesh
    lip ring in a 640 x 480 frame.
    """
    vertices = np.asarray(vertices, np.float64)
    x0, y0 = np.floor(vertices.min(0)).astype(int)
    x1, y1 = np.ceil(vertices.max(0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return (0, 0, 0, 0), np.zeros((0, 0), bool)
    (ax, ay), (bx, by) = vertices.T, np.roll(vertices, -1, axis=0).T
    slanted = ay != by                # a horizontal edge crosses no horizontal ray through a pixel centre
    ax, ay, bx, by = ax[slanted], ay[slanted], bx[slanted], by[slanted]
    py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5
    rows, edges = np.nonzero((ay > py) != (by > py))   # the edge crosses the row's line of centres
    x_cross = ax[edges] + (py[rows, 0] - ay[edges]) * (bx[edges] - ax[edges]) / (by[edges] - ay[edges])
    # columns j < first_right (window coordinates) have their centre left of the crossing
    columns = x1 - x0
    first_right = np.clip(np.ceil(x_cross - 0.5).astype(int) - x0, 0, columns)
    flips = np.bincount(rows * (columns + 1) + first_right, minlength=(y1 - y0) * (columns + 1))
    right_of = np.cumsum(flips.reshape(y1 - y0, columns + 1)[:, ::-1], axis=1)[:, -2::-1]
    return (y0, y1, x0, x1), right_of % 2 == 1


def fill_parts(labels: np.ndarray, points: np.ndarray, polygons: dict[str, list[int]],
               class_ids: dict[str, int]) -> np.ndarray:
    """Draw each part's polygon into labels (H, W) uint8, in place, in class_ids' order (a later part wins
    where they overlap): the pixels whose centre lies inside (fill_polygon). points: (N, 2) landmarks
    (x, y) in pixel units. The timed benchmarks (speed.py, mediapipe_video.py) fill FaceMesh's parts
    this way, 0.2 ms for a frame's four; rasterise's supersampling is for this file's untimed scores."""
    height, width = labels.shape
    for part, class_id in class_ids.items():
        (y0, y1, x0, x1), window = _filled_window(points[polygons[part]], height, width)
        labels[y0:y1, x0:x1][window] = class_id
    return labels


def rasterise(polygons: Sequence[tuple[int, np.ndarray]], size: int, num_classes: int,
              supersample: int = SUPERSAMPLE) -> np.ndarray:
    """(size, size) uint8 class ids from (class id, (K, 2) vertices in [0, 1] image units) polygons.

    Each pixel takes the class most of its supersample x supersample samples fall in (background where
    none; ties go to the lower class id). Where polygons overlap, the later one wins.
    """
    fine = size * supersample
    samples = np.zeros((fine, fine), np.uint8)
    for class_id, vertices in polygons:
        samples[fill_polygon(np.asarray(vertices) * fine, fine, fine)] = class_id
    blocks = samples.reshape(size, supersample, size, supersample).transpose(0, 2, 1, 3)
    blocks = blocks.reshape(size * size, supersample * supersample)
    labels = np.zeros(size * size, np.uint8)
    touched = np.flatnonzero(blocks.any(axis=1))   # the few pixels a polygon reaches: count only those
    counts = (blocks[touched, :, None] == np.arange(num_classes, dtype=np.uint8)).sum(axis=1)
    labels[touched] = np.argmax(counts, axis=-1)
    return labels.reshape(size, size)


def predict_labels(landmarks: np.ndarray | None, polygons: dict[str, list[int]], class_ids: dict[str, int],
                   size: int, num_classes: int) -> np.ndarray:
    """One face's (N, 2) FaceMesh landmarks in [0, 1] -> (size, size) class ids, each part's polygon
    filled in pairs.json's class order; all background when FaceMesh found no face (None)."""
    if landmarks is None:
        return np.zeros((size, size), np.uint8)
    return rasterise([(class_ids[part], landmarks[polygons[part]]) for part in class_ids], size, num_classes)


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Class ids (H, W) -> (size, size) by nearest neighbour, the pixels tf.image.resize("nearest")
    picks (half-pixel centres, float32 arithmetic), so the target matches test mode's exactly."""
    height, width = labels.shape
    rows = np.minimum(np.floor((np.arange(size, dtype=np.float32) + np.float32(0.5))
                               * np.float32(height / size)).astype(np.int64), height - 1)
    cols = np.minimum(np.floor((np.arange(size, dtype=np.float32) + np.float32(0.5))
                               * np.float32(width / size)).astype(np.int64), width - 1)
    return labels[rows][:, cols]


def part_class_ids(meta: dict, polygons: dict) -> dict[str, int]:
    """Part name -> class id in the masks pairs.json describes (binary masks: every part is class 1)."""
    parts = list(meta.get("parts") or [])
    unknown = [p for p in parts if p not in polygons]
    if not parts or unknown:
        raise UserError(f"{PAIRS_META_FILE}: parts {','.join(parts) or '(none)'}; MediaPipe's contours give "
                        f"only {','.join(polygons)}")
    if meta.get("style") == "binary":
        return {part: 1 for part in parts}
    return {part: i + 1 for i, part in enumerate(parts)}


def read_meta(input_dir: Path) -> dict:
    """pairs.json of an AB folder made by process.py; UserError when it is missing or unreadable."""
    path = input_dir / PAIRS_META_FILE
    if not path.is_file():
        raise UserError(f"{path}: not found (expected the pairs.json process.py writes beside train/ val/ test/)")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if "palette" not in meta or "classes" not in meta:
        raise UserError(f"{path}: expected 'classes' and 'palette' (written by process.py)")
    return meta


def pair_files(input_dir: Path, split: str) -> list[Path]:
    """The AB PNGs of a split, sorted by name; UserError when there are none."""
    folder = input_dir / split
    files = sorted(p for p in folder.glob("*.png") if not p.name.startswith(".")) if folder.is_dir() else []
    if not files:
        raise UserError(f"{folder}: no AB pair PNGs (expected <id>.png from process.py, photo left, mask right)")
    return files


def decode_mask(mask_rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Colour mask (H, W, 3) -> class ids (H, W) uint8 by the nearest palette colour: numpy's twin of
    the training pipeline's decode (ties go to the lower class id in both)."""
    rgb = mask_rgb.reshape(-1, 3).astype(np.int32)
    keys, index = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2], return_inverse=True)
    colors = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=-1)
    diff = colors[:, None, :] - palette[None].astype(np.int32)
    nearest = np.argmin((diff * diff).sum(-1), axis=-1).astype(np.uint8)   # per distinct colour
    return nearest[index.reshape(-1)].reshape(mask_rgb.shape[:2])


def pair_size(path: Path) -> int:
    """The side of an AB pair's halves (its height), from the file's header."""
    try:
        with Image.open(path) as image:
            return image.size[1]
    except Exception as err:
        raise UserError(f"{path}: unreadable image ({err})") from None


def read_pair(path: Path, palette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AB file -> (photo uint8 (S, S, 3), class ids uint8 (S, S)) by the nearest palette colour."""
    ab = imageio.load_rgb(path)
    height, width = ab.shape[:2]
    if width != 2 * height:
        raise UserError(f"{path}: an AB pair is twice as wide as high, got {width}x{height}")
    return np.ascontiguousarray(ab[:, :height]), decode_mask(ab[:, height:], palette)


def eye_and_lip_order(landmarks: np.ndarray, polygons: dict[str, list[int]]) -> tuple[bool, bool]:
    """(l_eye on the image's right of r_eye, u_lip above l_lip) for one face's (N, 2) landmarks."""
    centre = {part: landmarks[ids].mean(0) for part, ids in polygons.items()}
    return bool(centre["l_eye"][0] > centre["r_eye"][0]), bool(centre["u_lip"][1] < centre["l_lip"][1])


def data_description(label: str, count: int, meta: dict) -> str:
    """metrics.json's "data": what was scored, e.g. "dev test split, 475 real faces"."""
    kind = {True: "synthetic faces (lipseg_tf.sample)", False: "real faces"}.get(meta.get("synthetic"), "faces")
    return f"{label}, {count} {kind}"


def run_benchmark(input_dir: Path, output_dir: Path, split: str = "test", size: int | None = None,
                  min_detection_confidence: float = 0.5, data: str | None = None) -> dict:
    """Score FaceMesh on every AB pair of `input_dir/split` at `size` px; write output_dir/metrics.json.

    Returns metrics.json's contents: metrics.summary, "data", and "peer" (the mediapipe version and
    settings, faces not found and their ids, faces/s, and the left/right and up/down checks).
    """
    os.environ.setdefault("GLOG_minloglevel", "2")   # MediaPipe's C++ start-up chatter
    import mediapipe
    from mediapipe.python.solutions import face_mesh
    from tqdm import tqdm

    meta = read_meta(input_dir)
    files = pair_files(input_dir, split)
    palette = np.asarray(meta["palette"], np.uint8)
    classes = list(meta["classes"])
    polygons = part_polygons(face_mesh.FACEMESH_LIPS, face_mesh.FACEMESH_LEFT_EYE, face_mesh.FACEMESH_RIGHT_EYE)
    class_ids = part_class_ids(meta, polygons)
    size = size or pair_size(files[0])
    confusion = np.zeros((len(classes),) * 2, np.int64)
    not_found, eyes_swapped, lips_swapped = [], [], []
    mesh_seconds = 0.0
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                            min_detection_confidence=min_detection_confidence) as mesh:
        start = time.perf_counter()   # from the first face on: the graph's start-up is left out
        for path in tqdm(files, desc="mediapipe", unit="face", dynamic_ncols=True, disable=None):
            photo, target = read_pair(path, palette)
            tick = time.perf_counter()
            found = mesh.process(photo).multi_face_landmarks
            mesh_seconds += time.perf_counter() - tick
            landmarks = np.array([(p.x, p.y) for p in found[0].landmark], np.float64) if found else None
            if landmarks is None:
                not_found.append(path.stem)
            else:
                eyes_ok, lips_ok = eye_and_lip_order(landmarks, polygons)
                eyes_swapped += [] if eyes_ok else [path.stem]
                lips_swapped += [] if lips_ok else [path.stem]
            pred = predict_labels(landmarks, polygons, class_ids, size, len(classes))
            confusion += metrics.confusion_matrix(resize_labels(target, size), pred, len(classes))
        seconds = time.perf_counter() - start
    result = metrics.summary(confusion, classes, len(files))
    result["data"] = data_description(data or f"{input_dir} {split} split", len(files), meta)
    result["peer"] = {
        "model": "MediaPipe FaceMesh (solutions.face_mesh, static_image_mode, refine_landmarks, 1 face)",
        "mediapipe": mediapipe.__version__,
        "size": size,
        "min_detection_confidence": min_detection_confidence,
        "supersample": SUPERSAMPLE,
        "faces_not_found": len(not_found),
        "not_found": not_found,
        "faces_per_s": round(len(files) / seconds, 2),
        "facemesh_faces_per_s": round(len(files) / mesh_seconds, 2),
        "l_eye_left_of_r_eye": eyes_swapped,
        "u_lip_below_l_lip": lips_swapped,
    }
    imageio.write_text(output_dir / metrics.METRICS_FILE, json.dumps(result, indent=2) + "\n")
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmarks/mediapipe_peer.sh",
        description="Score MediaPipe FaceMesh's filled eye and lip contours on a split of AB pairs with "
                    "the metric of lipseg_tf's test mode (dataset-level per-part F1/IoU); writes "
                    "metrics.json and prints the table.",
        epilog="Example: %(prog)s --input_dir pairs256 --output_dir out/mediapipe_128 --size 128",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input_dir", "--input-dir", required=True, type=Path,
                        help="AB pairs made by process.py: the folder holding pairs.json and the split folders")
    parser.add_argument("--output_dir", "--output-dir", required=True, type=Path,
                        help="where metrics.json goes (created if missing); nothing else is written")
    parser.add_argument("--split", default="test", help="split folder to score")
    parser.add_argument("--size", type=int, default=None,
                        help="score at this many pixels a side, as a model tested at --crop_size; "
                             "default: the pairs' own size. FaceMesh always sees the full pair photo")
    parser.add_argument("--min_detection_confidence", "--min-detection-confidence", type=float, default=0.5,
                        help="FaceMesh's face detector threshold")
    parser.add_argument("--data", default=None,
                        help="what the data is, for metrics.json, e.g. 'dev test split' (the face count "
                             "is appended); default: the folder and split")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.size is not None and args.size < 1:
        raise UserError(f"--size: expected a positive number of pixels, got {args.size}")
    result = run_benchmark(args.input_dir, args.output_dir, args.split, args.size,
                           args.min_detection_confidence, args.data)
    peer = result["peer"]
    print(f"MediaPipe FaceMesh {peer['mediapipe']} at {peer['size']} px on {result['data']}\n"
          + metrics.format_table(result)
          + f"\nfaces not found: {peer['faces_not_found']} of {result['images']}"
          + f"\nfaces/s: {peer['faces_per_s']} overall, {peer['facemesh_faces_per_s']} in FaceMesh alone"
          + f"\nl_eye left of r_eye: {len(peer['l_eye_left_of_r_eye'])}; "
          + f"u_lip below l_lip: {len(peer['u_lip_below_l_lip'])}")
    log.info("metrics in %s", args.output_dir / metrics.METRICS_FILE)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
