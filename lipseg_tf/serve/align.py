"""Face alignment: a similarity transform from detected landmarks to the framing a model was trained on.

Coordinates are continuous image coordinates, x right and y down, with pixel (row i, column j) covering
[j, j + 1) x [i, i + 1): its centre is (j + 0.5, i + 0.5). A transform is a 2x3 matrix M mapping photo
points p to crop points M @ (x, y, 1).

Landmarks are four points, in this order: the eye on the image's left, the eye on the image's right,
the mouth corner on the image's left, the one on the image's right (MTCNN's left_eye, right_eye,
mouth_left, mouth_right, whose "left" is the image's left). lipseg_tf's classes name sides the other way,
as CelebAMask-HQ does: l_eye is the person's left eye, on the image's right, so MTCNN's left_eye is the
eye a model labels r_eye.

Framings, as fractions of the crop side (the crop is square):

    sample    the synthetic faces of lipseg_tf.prep.sample, from the mean of its face geometry (512 px units:
              face width 0.45-0.65 x 512, centre (256, 0.53 x 512), eyes at +-0.34-0.42 of the half width
              and 0.02-0.14 of the half height above the centre, mouth corners at +-0.15-0.225 of the
              face width and 0.48-0.58 of the half height below it, minus a smile of -3 % to 10 % of the
              mouth width; half height 1.22-1.40 x half width; tilt averages 0):
              eyes (0.3955, 0.5012) (0.6045, 0.5012), mouth corners (0.3969, 0.7137) (0.6031, 0.7137)
    celebahq  CelebA-HQ's crop (Karras et al. 2018, appendix C): a square of side
              2 max(2 |eye_to_eye|, 1.8 |eye_to_mouth|) centred at eye_centre + 0.1 eye_to_mouth, eyes level.
              With the standard mean-face proportions of the five-point landmarks (eye_to_mouth = 1.154
              eye_to_eye, mouth width = 0.828 eye_to_eye) the mouth term decides the side:
              eyes (0.3796, 0.4722) (0.6204, 0.4722), mouth corners (0.4003, 0.7500) (0.5997, 0.7500)

So the synthetic faces are drawn about 13 % smaller (eye distance 0.209 against 0.241 of the crop) and a
little lower than CelebA-HQ's: a model should see faces framed like those it was trained on.

A crop (x0, y0, side), fractions of the framing's side, is a square box inside it that a model was
trained on instead of the whole framing (process.py --crop; pairs.json and classes.json "crop"): a
point at fraction f of the framing lies at (f - (x0, y0)) / side of the crop.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

FRAMINGS = {
    "sample": np.array([(0.3955, 0.5012), (0.6045, 0.5012), (0.3969, 0.7137), (0.6031, 0.7137)]),
    "celebahq": np.array([(0.3796, 0.4722), (0.6204, 0.4722), (0.4003, 0.7500), (0.5997, 0.7500)]),
}
LANDMARK_NAMES = ("left_eye", "right_eye", "mouth_left", "mouth_right")


def reference_landmarks(framing: str, size: int, crop: Sequence[float] | None = None) -> np.ndarray:
    """(4, 2) landmark positions in a size x size crop of this framing, or of the box `crop` (x0, y0,
    side: fractions of the framing's side) inside it; ValueError names the valid framings."""
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}, valid: {', '.join(FRAMINGS)}")
    points = FRAMINGS[framing]
    if crop is not None:
        x0, y0, side = crop
        points = (points - (x0, y0)) / side
    return points * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, shift; no reflection) that best maps src onto dst.

    Least squares over the point pairs (Umeyama 1991); src and dst are (N, 2), N >= 2.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    # For 2-D points the optimal rotation and scale have a closed form in complex numbers:
    # dst_c ~ z * src_c with z = sum(conj(s) d) / sum(|s|^2).
    s = src_c[:, 0] + 1j * src_c[:, 1]
    d = dst_c[:, 0] + 1j * dst_c[:, 1]
    norm = float(np.sum(np.abs(s) ** 2))
    if norm == 0.0:
        raise ValueError("landmarks coincide: no transform")
    z = np.sum(np.conj(s) * d) / norm
    a, b = z.real, z.imag
    linear = np.array([[a, -b], [b, a]])
    shift = dst_mean - linear @ src_mean
    return np.concatenate([linear, shift[:, None]], axis=1)


def face_transform(landmarks: np.ndarray, size: int, framing: str, crop: Sequence[float] | None = None) -> np.ndarray:
    """Photo -> crop transform that puts a face's four landmarks where `framing` (and `crop`) has them."""
    return similarity_transform(landmarks, reference_landmarks(framing, size, crop))


def eyes_and_mouth_transform(points: np.ndarray, size: int, framing: str,
                             crop: Sequence[float] | None = None) -> np.ndarray:
    """Photo -> crop transform from three points, (3, 2): the eye on the image's left, the one on its
    right and the mouth centre (BlazeFace's keypoints), fitted to the framing's eyes and the midpoint
    of its mouth corners."""
    reference = reference_landmarks(framing, size, crop)
    return similarity_transform(points, np.vstack([reference[:2], reference[2:].mean(0, keepdims=True)]))


def box_transform(shape: tuple[int, int], size: int, crop: Sequence[float] | None = None) -> np.ndarray:
    """Photo -> crop transform of an already framed photo of `shape` (H, W): its box `crop` (x0, y0,
    side: fractions of the photo's width and height; None: the whole photo) scaled to size x size."""
    height, width = shape
    x0, y0, side = crop if crop is not None else (0.0, 0.0, 1.0)
    scale_x, scale_y = size / (side * width), size / (side * height)
    return np.array([[scale_x, 0.0, -x0 * width * scale_x], [0.0, scale_y, -y0 * height * scale_y]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) points with a 2x3 matrix."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine matrix (in closed form: a video's frame inverts several, and
    np.linalg.inv takes 8 microseconds to this 1); LinAlgError where it has none."""
    (a, b, c), (d, e, f) = np.asarray(matrix, np.float64).tolist()
    det = a * e - b * d
    if det == 0:
        raise np.linalg.LinAlgError("Singular matrix")
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    return np.array([[ia, ib, -(ia * c + ib * f)], [id_, ie, -(id_ * c + ie * f)]])


def scale_of(matrix: np.ndarray) -> float:
    """How many crop pixels one photo pixel becomes (the similarity's scale)."""
    (a, b), (d, e) = np.asarray(matrix, np.float64)[:, :2].tolist()
    return math.sqrt(abs(a * e - b * d))


def crop_corners(matrix: np.ndarray, size: int) -> np.ndarray:
    """The crop's four corners in photo coordinates, (4, 2)."""
    return apply(invert(matrix), np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float64))


def sample_affine(image: np.ndarray, to_source, size: tuple[int, int], edge: bool = False,
                  mirror: bool = False) -> np.ndarray:
    """image (H, W) or (H, W, C) with C 3 or 4 (OpenCV samples two channels far less exactly: 0.02 off in
    float32), uint8 or float32, sampled bilinearly at size (width, height): output
    point q (continuous coordinates, this module's pixel convention) takes the image's value at
    to_source @ (q, 1), a 2x3 map (PIL's affine `data`, as a matrix). Past the image's outermost pixel
    centres its edge value holds (edge), the image is mirrored, edge pixels repeated (mirror: as np.pad's
    "symmetric"), or it fades to 0 (neither: black beyond the image).

    OpenCV's warpAffine, which takes pixel indices (centres at whole numbers): 6-8 times faster than
    PIL's bilinear affine transform here (a 128 px RGB crop 0.07 ms against 0.40; a 300 px float plane
    0.11 against 0.96, one core), with positions rounded to 1/32 pixel."""
    linear = np.asarray(to_source, np.float64)[:, :2]
    shift = np.asarray(to_source, np.float64)[:, 2] + linear.sum(1) * 0.5 - 0.5
    to_index = np.concatenate([linear, shift[:, None]], axis=1)  # output pixel index -> image pixel index
    border = cv2.BORDER_REFLECT if mirror else cv2.BORDER_REPLICATE if edge else cv2.BORDER_CONSTANT
    if border != cv2.BORDER_CONSTANT and _samples_inside(to_index, size, image.shape[:2]):
        border = cv2.BORDER_CONSTANT  # no sample needs the border: the same values, by OpenCV's faster path
    return cv2.warpAffine(image, to_index, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=border, borderValue=0)


def _samples_inside(to_index: np.ndarray, size: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether every output pixel of a warp of `size` (width, height) samples the image of `shape` (H, W)
    between its outermost pixel centres, where bilinear sampling reads no border (the map is affine: its
    four corner pixels bound the rest). OpenCV's warpAffine mirrors the border about 2x slower than it
    fills it with a constant, even where no sample reaches it (a 640 x 480 frame to 256 px: 0.40 ms
    against 0.18)."""
    width, height = size
    corners = to_index @ np.array([[0, width - 1, 0, width - 1], [0, 0, height - 1, height - 1], [1, 1, 1, 1]],
                                  np.float64)
    return bool(corners.min() >= 0 and (corners[0] < shape[1] - 1).all() and (corners[1] < shape[0] - 1).all())


def warp_face(photo: np.ndarray, matrix: np.ndarray, size: int, prefilter: bool = False) -> np.ndarray:
    """Cut the aligned size x size crop out of a photo (H, W, 3) uint8.

    Antialiased: when the face is shrunk, the crop is sampled (bilinear) at a multiple of its size that
    is no smaller than the face, then block-averaged down. Where the crop reaches past the photo's edge
    the photo is mirrored, as CelebA-HQ's crops were, so the model sees no black borders.

    prefilter: the part of the photo under the crop is first block-averaged by the whole factor the
    face is shrunk by (floor(1 / scale)), so that the supersampling works on fewer pixels: several
    times cheaper for a face much larger than the crop, and as antialiased (predict.py's detected faces
    and videos; the default is what the SavedModel's serving_default reproduces inside its graph).
    """
    height, width = photo.shape[:2]
    corners = crop_corners(matrix, size)
    factor = max(1, math.floor(1.0 / scale_of(matrix) + 1e-6)) if prefilter else 1
    if prefilter and factor == 1:
        # Nothing to block-average: OpenCV samples the photo itself, mirrored past its edges as np.pad's
        # "symmetric" mirrors the region below (BORDER_REFLECT), with no copy of the region.
        supersample = max(1, math.ceil(1.0 / scale_of(matrix) - 1e-6))
        to_photo = invert(matrix) @ np.diag([1.0 / supersample, 1.0 / supersample, 1.0])
        crop = sample_affine(np.ascontiguousarray(photo), to_photo, (size * supersample,) * 2, mirror=True)
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if supersample > 1 else crop
    margin = 2
    x0, y0 = np.floor(corners.min(0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(0)).astype(int) + margin
    # The part of the photo under the crop, mirrored past its edges.
    region = photo[max(0, y0):min(height, y1), max(0, x0):min(width, x1)]
    pad = ((max(0, -y0), max(0, y1 - height)), (max(0, -x0), max(0, x1 - width)), (0, 0))
    if any(p for pair in pad[:2] for p in pair):
        region = np.pad(region, pad, mode="symmetric")
    image = Image.fromarray(np.ascontiguousarray(region))
    if factor > 1:
        image = image.reduce(factor)  # pixel (i, j) of it averages region pixels from (factor i, factor j)
    # region (or its reduced copy) coordinates -> photo coordinates
    shift = np.array([[factor, 0, x0], [0, factor, y0]], np.float64)
    supersample = max(1, math.ceil(1.0 / (scale_of(matrix) * factor) - 1e-6))
    out_size = size * supersample
    # PIL's affine transform takes the map from output to input coordinates (same pixel convention).
    to_region = invert(np.vstack([matrix, (0, 0, 1)])[:2] @ np.vstack([shift, (0, 0, 1)]))
    to_region = to_region @ np.diag([1.0 / supersample, 1.0 / supersample, 1.0])
    if prefilter:
        # OpenCV's bilinear (sample_affine: the same crop to 1/32 px, several times faster) and its area
        # average, which for a whole factor is the block average PIL's reduce takes.
        crop = sample_affine(np.asarray(image), to_region, (out_size, out_size), edge=True)
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if supersample > 1 else crop
    crop = image.transform((out_size, out_size), Image.Transform.AFFINE, data=tuple(to_region.ravel()),
                           resample=Image.Resampling.BILINEAR)
    if supersample > 1:
        crop = crop.reduce(supersample)
    return np.asarray(crop)


def _window_box(matrix: np.ndarray, size: int, shape: tuple[int, int], box=None) -> tuple[int, int, int, int]:
    """The photo window (y0, y1, x0, x1) a crop covers within a photo of `shape` (H, W); box (x0, y0, x1,
    y1), in crop coordinates: the window of only that part of the crop (default: the whole crop)."""
    height, width = shape
    if box is None:
        corners = crop_corners(matrix, size)
    else:
        bx0, by0, bx1, by1 = box
        corners = apply(invert(matrix), np.array([(bx0, by0), (bx1, by0), (bx1, by1), (bx0, by1)], np.float64))
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int), (width, height))
    x1, y1 = max(x0, x1), max(y0, y1)
    return int(y0), int(y1), int(x0), int(x1)


def _window_coordinates(matrix: np.ndarray, size: int, shape: tuple[int, int], box=None):
    """_window_box's window, and the crop coordinates (cx, cy) of each of its pixel centres, (h, w) each."""
    y0, y1, x0, x1 = _window_box(matrix, size, shape, box)
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5
    ys = np.arange(y0, y1, dtype=np.float64) + 0.5
    # The map is affine, so the coordinates are built from a row and a column.
    return (y0, y1, x0, x1), *_mapped(matrix, xs[None, :], ys[:, None])


def _mapped(matrix: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2x3 map of points (xs, ys) (arrays that broadcast together) -> (x, y), the one arithmetic of
    _window_coordinates and _outside_pixels (which must agree to the last bit on whether a centre is in)."""
    return (matrix[0, 0] * xs + matrix[0, 1] * ys + matrix[0, 2],
            matrix[1, 0] * xs + matrix[1, 1] * ys + matrix[1, 2])


def parts_box(probabilities: np.ndarray) -> tuple[float, float, float, float] | None:
    """The box (x0, y0, x1, y1), in crop coordinates, outside which paste_probabilities gives only
    background: the part pixels' bounding box (argmax > 0), widened by the bilinear reach (half a pixel
    before, one and a half after); None when the crop has no part pixel.

    Outside it all four crop pixels a photo pixel is interpolated from have background as their argmax,
    so the interpolated background probability is the largest there too (a convex mix of larger values).
    """
    return labels_box(class_argmax(probabilities))


def labels_box(labels: np.ndarray) -> tuple[float, float, float, float] | None:
    """parts_box from a crop's labels (S, S), the argmax of its probabilities, when they are at hand."""
    rows, cols = np.flatnonzero(labels.any(1)), np.flatnonzero(labels.any(0))
    if not len(rows):
        return None
    size = labels.shape[0]
    return (max(0.0, cols[0] - 0.5), max(0.0, rows[0] - 0.5),
            min(float(size), cols[-1] + 1.5), min(float(size), rows[-1] + 1.5))


def crop_lookup(matrix: np.ndarray, size: int, shape: tuple[int, int]):
    """For the photo window a crop covers: which crop pixel each photo pixel's centre lands in.

    Returns (window, rows, cols, inside): window = (y0, y1, x0, x1) within the photo of `shape` (H, W);
    rows, cols: integer crop indices for every pixel of the window; inside: where they are in the crop.
    Nearest neighbour, so labels looked up with it are never interpolated.
    """
    window, cx, cy = _window_coordinates(matrix, size, shape)
    cols, rows = np.floor(cx).astype(np.int64), np.floor(cy).astype(np.int64)
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    return window, rows, cols, inside


def paste_probabilities(probabilities: np.ndarray, matrix: np.ndarray, shape: tuple[int, int], box=None):
    """A crop's class probabilities (S, S, C), resampled bilinearly into the photo window it covers.

    Returns (window, window_probabilities (h, w, C) float32, inside (h, w)): window = (y0, y1, x0, x1)
    within the photo of `shape` (H, W); inside: the pixels whose centre falls in the crop (outside it
    the values mean nothing, to be ignored). The argmax of the result is the photo's labels:
    probabilities are interpolated, labels never, so a face enlarged 8 times gets smooth borders
    instead of 8-pixel steps. box (x0, y0, x1, y1), crop coordinates: only the window of that part of the
    crop (parts_box: where any part can come out).
    """
    size = probabilities.shape[0]
    window, cx, cy = _window_coordinates(matrix, size, shape, box)
    inside = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
    (y0, y1, x0, x1) = window
    # sample_affine, one class at a time: the crop pixel (i, j) holds the value at its centre
    # (j + 0.5, i + 0.5); past the outermost centres the edge value holds. It maps window pixels to crop
    # coordinates: the matrix after the shift to the window's corner.
    probabilities = np.asarray(probabilities, np.float32)
    pasted = np.zeros((y1 - y0, x1 - x0, probabilities.shape[-1]), np.float32)
    to_crop = _window_to_crop(matrix, x0, y0)
    for start, group in _class_groups(probabilities, to_crop, (x1 - x0, y1 - y0)) if pasted.size else ():
        pasted[..., start:start + group.shape[-1]] = group
    return window, pasted, inside


def _group_sizes(classes: int) -> list[int]:
    """How a crop's classes are split for OpenCV's warpAffine: four a warp where they come four at a
    time, else three or one (on four channels a 300 px window of five classes takes 0.65 ms against
    1.3-1.5 one class at a time, values within 1.2e-7 of those; on two channels, or five and more, it
    interpolates at 1/32 px, 0.02 off)."""
    sizes = []
    while classes > 0:
        sizes.append(4 if classes >= 4 else 3 if classes == 3 else 1)
        classes -= sizes[-1]
    return sizes


def class_groups(values: np.ndarray) -> list[np.ndarray]:
    """A crop's values (S, S, C) -> its classes in contiguous float32 groups (S, S, k), as _group_sizes
    splits them: the form resample_crop, paste_argmax and argmax_classes take without copying strided
    channels out again (a 128 px crop's five classes: 0.07 ms to split, which each warp of the (S, S, C)
    array paid anew)."""
    values = np.asarray(values, np.float32)
    groups, start = [], 0
    for count in _group_sizes(values.shape[-1]):
        # np.take copies a 128 px crop's four classes out in 0.03 ms, a contiguous copy of the slice in 0.04
        groups.append(np.take(values, np.arange(start, start + count), axis=-1))
        start += count
    return groups


def _groups_of(values) -> list[np.ndarray]:
    """class_groups of an (S, S, C) array; a list or tuple of groups as it is."""
    return list(values) if isinstance(values, (list, tuple)) else class_groups(values)


def _class_groups(probabilities, to_crop: np.ndarray, size: tuple[int, int]):
    """(first class, (h, w, k) planes) of a crop's probabilities (S, S, C) float32, or their class_groups,
    resampled into a window of `size` (width, height), `to_crop` mapping window to crop coordinates, a
    group of _group_sizes a warp."""
    width, height = size
    start = 0
    for group in _groups_of(probabilities):
        count = group.shape[-1]
        yield start, sample_affine(group, to_crop, size, edge=True).reshape(height, width, count)
        start += count


def argmax_classes(planes) -> tuple[np.ndarray, np.ndarray]:
    """The argmax over classes of (first class, (h, w, k) planes) pairs (_class_groups', or class_groups
    enumerated so) -> (labels (h, w) uint8, best (h, w) float32: the winning class's value); ties go to
    the lower class, as numpy's argmax's. By comparisons of whole planes: numpy's argmax and its pick over
    a last axis of 5 take several times longer."""
    labels = best = None
    for start, group in planes:
        for offset in range(group.shape[-1]):
            plane = group[..., offset]
            if best is None:
                best = plane.copy()
                labels = np.zeros(plane.shape, np.uint8)
                continue
            wins = plane > best
            # labels[wins] = class, as arithmetic on whole planes (uint8, wrapping): a tenth of the time
            labels += wins.view(np.uint8) * (np.uint8(start + offset) - labels)
            np.maximum(best, plane, out=best)
    return labels, best


def class_argmax(values: np.ndarray) -> np.ndarray:
    """Values (..., C) -> their argmax over the last axis, uint8 (ties to the lower class, as numpy's), by
    argmax_classes' comparisons of whole planes: a 128 px crop's five classes in 0.10 ms against numpy's
    0.31 (2026-12-08)."""
    return argmax_classes([(0, np.asarray(values))])[0]


def groups_argmax(groups: Sequence[np.ndarray]) -> np.ndarray:
    """The class ids (S, S) uint8 of a crop's class_groups: its argmax over classes (argmax_classes)."""
    starts = np.cumsum([0] + [group.shape[-1] for group in groups[:-1]])
    return argmax_classes(zip(starts, groups))[0]


def resample_crop(values, matrix: np.ndarray, fallback):
    """A crop's values (S, S, C) float32 moved into another crop of the same size, `matrix` mapping that
    crop's coordinates into this one's: bilinear, as paste_probabilities with a window of the whole
    crop; where a pixel's centre falls outside `values`' crop, `fallback`'s value (S, S, C) instead.
    values and fallback may both be class_groups instead; the result is then too.

    OpenCV's warpAffine on four channels at a time (its fast path: a 128 px crop of five in 0.1 ms
    against 0.23 ms one channel at a time)."""
    grouped = isinstance(values, (list, tuple))
    values, fallback = _groups_of(values), _groups_of(fallback)
    size = values[0].shape[0]
    moved = [group for _, group in _class_groups(values, matrix, (size, size))]
    rows, cols = _outside_pixels(matrix, size)
    for group, other in zip(moved, fallback):
        group[rows, cols] = other[rows, cols]
    return moved if grouped else np.concatenate(moved, axis=-1)


def _outside_pixels(matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels (rows, cols) of a size x size crop outside the window another crop of that size covers
    or whose centre `matrix` maps past that crop (paste_probabilities' outside; resample_crop's fallback).

    None of them when the crop's four corner pixels fall inside (the map is affine). A tracked face's crop
    moves a pixel or two a frame, so they lie in a band along the edges: the pixel centres are placed in
    that band alone, once the band's inner square has its corners inside (by a margin; by convexity all
    its pixels then are): 0.05 ms a 128 px crop against 0.12 placing them all."""
    corners = apply(matrix, np.array([(0.5, 0.5), (size - 0.5, 0.5), (0.5, size - 0.5), (size - 0.5, size - 0.5)]))
    if corners.min() >= 0 and corners.max() < size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    y0, y1, x0, x1 = _window_box(matrix, size, (size, size))
    reach = max(0.0, -corners.min(), corners.max() - size)  # how far past the other crop the corners fall
    band = math.ceil(reach / max(scale_of(matrix), 1e-6)) + 2
    rows, cols = _band_pixels(size, 0)  # all of them, or only the band's
    if 4 * band < size:
        inner = apply(matrix, np.array([(band + 0.5, band + 0.5), (size - band - 0.5, band + 0.5),
                                        (band + 0.5, size - band - 0.5), (size - band - 0.5, size - band - 0.5)]))
        if inner.min() >= 1e-6 and inner.max() < size - 1e-6:
            rows, cols = _band_pixels(size, band)
    cx, cy = _mapped(matrix, cols + 0.5, rows + 0.5)  # the pixel centres' crop coordinates
    beyond = (rows < y0) | (rows >= y1) | (cols < x0) | (cols >= x1)  # past the window the other crop covers
    outside = beyond | (cx < 0) | (cx >= size) | (cy < 0) | (cy >= size)
    return rows[outside].astype(np.int64), cols[outside].astype(np.int64)


@functools.lru_cache(maxsize=16)
def _band_pixels(size: int, band: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) float64 of the pixels of a size x size crop within `band` pixels of its edges (all its
    pixels for band 0), read-only."""
    near = np.zeros((size, size), bool)
    if band:
        near[:band], near[-band:], near[:, :band], near[:, -band:] = True, True, True, True
    rows, cols = np.nonzero(near if band else ~near)
    rows, cols = rows.astype(np.float64), cols.astype(np.float64)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def _window_to_crop(matrix: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """The map from a photo window's coordinates (its corner at photo (x0, y0)) to the crop's."""
    (a, b, c), (d, e, f) = matrix
    return np.array([[a, b, a * x0 + b * y0 + c], [d, e, d * x0 + e * y0 + f]])


def paste_argmax(probabilities, matrix: np.ndarray, shape: tuple[int, int], box=None):
    """paste_probabilities' argmax, taken class by class: (window, labels (h, w) uint8, best (h, w)
    float32: the winning class's probability); labels 0 where the pixel's centre falls outside the crop.
    probabilities: (S, S, C), or its class_groups.

    The same labels as paste_probabilities(...)[1].argmax(-1) (ties go to the lower class, as argmax's),
    without the (h, w, C) array (argmax_classes). The classes are resampled four at a time
    (_class_groups), and the pixel centres are only placed in the crop where the window's corners are not
    all inside it (its pixels then are too: the map is affine).
    """
    groups = _groups_of(probabilities)
    size = groups[0].shape[0]
    (y0, y1, x0, x1) = window = _window_box(matrix, size, shape, box)
    if y1 <= y0 or x1 <= x0:
        return window, np.zeros((y1 - y0, x1 - x0), np.uint8), np.zeros((y1 - y0, x1 - x0), np.float32)
    to_crop = _window_to_crop(matrix, x0, y0)
    labels, best = argmax_classes(_class_groups(groups, to_crop, (x1 - x0, y1 - y0)))
    corners = apply(to_crop, np.array([(0.5, 0.5), (x1 - x0 - 0.5, 0.5), (0.5, y1 - y0 - 0.5),
                                       (x1 - x0 - 0.5, y1 - y0 - 0.5)], np.float64))
    if not (corners.min() >= 0 and corners.max() < size):
        _, cx, cy = _window_coordinates(matrix, size, shape, box)
        labels[(cx < 0) | (cx >= size) | (cy < 0) | (cy >= size)] = 0
    return window, labels, best


def paste_labels(labels: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Map a crop's class ids (S, S) back into a photo of `shape` (H, W): -1 where the crop does not reach.

    Every photo pixel whose centre falls inside the crop takes the label of the crop pixel it lands in.
    """
    (y0, y1, x0, x1), rows, cols, inside = crop_lookup(matrix, labels.shape[0], shape)
    pasted = np.full(shape, -1, np.int16)
    window = pasted[y0:y1, x0:x1]
    window[inside] = labels[rows[inside], cols[inside]]
    return pasted
