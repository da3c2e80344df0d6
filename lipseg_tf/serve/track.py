"""Faces tracked across the frames of a video, and their probabilities smoothed in time.

The detector runs on the first frame, every `detect_every` frames, whenever a track is lost and while
there is no face. In between, each face is aligned with the transform carried over from the previous
frame, corrected by where its parts turned out to be: the centroids of the eyes and lips in the crop
that frame gave are fitted (a similarity, serve/align.py) onto those in the crop at the last detection.
So the crop follows the face as it moves and turns; MOTION times the last frame's motion is added for
the next (`realign`; without it the detection's transform is kept until the next detection). The first
frame after a detection has no motion to expect: where its parts show that the face moved more than
REFIT_SHIFT, it is segmented again where they put it. A track is lost when fewer than three of its
parts are found at a third of their area at detection, or the fit is implausible (scale off by more
than a quarter, a shift of more than a fifth of the crop); that frame is then detected and segmented
again. A periodic detection while every track holds looks again at the tracked faces and at one part
of the frame by turns (BlazeFace's look_again: its second look at each tracked face, its first look on
one of its tiles), so that new faces are still found; the first frame, a lost track and frames without
a face get the whole frame. The transform measured on each frame is low-passed with a One Euro filter
(STILL_CUTOFF), so that a still face's crop holds still; a moving face's is taken as measured, so
that its crop follows without lag.

Smoothing is an exponential moving average of each face's class probabilities in its aligned crop
(`smoothing` is the weight of the past; 0 turns it off, and the flip by turns with it). The previous
frame's average is resampled into this frame's crop through the two crops' fits to the detection crop,
so that the face's parts line up, not the frame's pixels. The labels pasted into the frame are the
argmax of the average, so a part's border does not flicker with sensor noise; the transform is
corrected from this frame's own probabilities, so it does not lag.

Flip by turns (flip_by_turns, the default with smoothing): where the model's mirror-image average is two
runs of its network (the shipped models' TFLite copies), a detection runs both and each tracked frame
one, the image and its mirror image by turns. While the face is still, the moving average counts this
frame's run and the last one's (the other half) as one, so that the halves' small differences do not
alternate in the labels; a moving face's run counts alone, so that the face is not held back a frame
(STILL_SPEED). Each half's parts are fitted onto that half's centroids at detection, so that those
differences do not read as motion either. Half the network time a tracked frame.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import Future
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from lipseg_tf.serve import align
from lipseg_tf.serve.predict import Face, Model, paste_faces

MIN_PARTS = 3            # parts found in the crop needed to keep a track
MIN_AREA = 1 / 3         # of a part's area at detection, for it to count as found
MAX_SCALE_CHANGE = 1.25  # per frame, either way
MAX_SHIFT = 0.2          # per frame, of the crop side
# How much of the last frame's motion to expect again in the next. Measured on synthetic clips
# (tools/bench_video.py): 1 gains 0.003 F1 on a moving face over 0 and adds 0.002 flicker on a still
# one; 0.5 sat between. With the patch-2 small model (2026-12-03) the parts found in a crop that lags the
# face lag more, and 0.5 left tests/test_video.py's small H.264 clip (320 x 240, detection every 8 frames)
# 0.012 below segmenting each frame as a photo (0.893 against 0.905; 0.75: 0.904, 1: 0.900, 0.25: 0.877);
# on the real clips (bench_video --real, 24 dev test faces) 0.75 gives tracked F1 0.865 against 0.864 and
# flicker 0.030 against 0.028; on the 640 x 480 synthetic clip 0.920 against 0.923.
#
# A moving face's crop still lagged with 0.75 (2026-12-07; against the face's true place in the real val
# clips 1.5-2 crop px behind along the motion, where the photo's alignment was 0.3-1 px). From MOVING_SPEED
# crop px a frame (the One Euro filter's speed; between STILL_SPEED and it in proportion) the whole motion
# is expected, MOVING_MOTION: on the 24 val clips F1 0.8838 -> 0.8844, flicker 0.0243 both (a still face
# keeps 0.75); the 640 x 480 synthetic clip 0.9269 -> 0.9272, three 320 x 240 ones 0.8058 -> 0.8056; a
# face 2.5 times as fast (period 40, 24 frames, detected once) 0.9211 -> 0.9240 (as photos 0.9270).
# 1.25: val 0.8845, 0.0246, synthetic 0.9281, 0.8078, the fast face 0.9181 (overshot at its turns).
MOTION = 0.75
MOVING_MOTION = 1.0
# The first frame after a detection has no motion to expect yet: its crop is the detection's, a whole frame
# behind a moving face, and where the fit moves it by more than this share of the crop the frame is segmented
# again where the fit put it (one more model run after a detection of a moving face). On tests/test_video.py's
# 320 x 240 clip (detection every 8 frames; those frames' crops moved 0.15 and 0.09) those frames scored 0.81
# and 0.88 against 0.91 and 0.90 as photos; again, 0.90 and 0.89; the clip 0.905 against 0.904 before, and
# with the small model of 2026-12-03 15:12 UTC 0.918 against 0.908. On clips of 24 dev val faces
# (bench_video --real --real-split val, that model) tracked F1 0.8853 (0.01: 0.8855, 0.05: 0.8853, none:
# 0.8850) and flicker 0.0289 as before: 68 of the 184 first frames segmented again (0.01: 92, 0.05: 16).
# Carrying the last frame's motion over a periodic detection instead raised that flicker to 0.0299: the
# detection's own alignment taken for motion.
REFIT_SHIFT = 0.03
# Periodic detections (besides the first frame's and a lost track's): every DETECT_EVERY frames. A detection
# frame costs about three tracked ones (the detector, then the flip average's two runs), and every detection
# restarts the fit's reference, which the labels of a still face show. On the 24 dev val clips (40 frames,
# 2026-12-07, tools/bench_video --real --real-split val): every 10 frames F1 0.88408, flicker 0.0228; 15:
# 0.88396, 0.0216; 20: 0.88402, 0.0205; 30: 0.88363, 0.0204. But the synthetic face that moves and turns for
# 100 frames (bench_video --frames 100) drifts between detections: 10: F1 0.9277, flicker 0.0144; 15: 0.9268,
# 0.0117; 20: 0.9250, 0.0115 (each frame as a photo 0.9285). 15 keeps that face within 0.001 for a third of
# the detections saved; a face that comes in is found within 15 frames.
# Tried (2026-12-07, Xeon): the periodic detection on a thread of its own beside the tracking, its faces
# moved two frames on as their tracks moved and taken in there as a detection's: synthetic F1 0.9273 and
# flicker 0.0115 (here 0.9268, 0.0117), but 257 fps against 254, 246-259 with 4-8 frames to finish (both
# cores are busy already: the detector's time moves to the other core and slows what runs there). Re-anchoring
# the tracks by the detection without segmenting again cost flicker (val clips 0.0276-0.0283 against 0.0216).
# Tried again once XNNPACK was kept off AMX (serve/xnnpack.py; the tracking thread 0.9 ms a frame lighter):
# 276-307 fps against 265-317 without it, in three pairs of runs; no gain.
DETECT_EVERY = 15
# The transform measured on each frame (the fit of its parts' centroids) jitters by a tenth of a pixel or
# so on a still face, and more where one half of the flip average is run a frame (flip by turns): the past
# average then lands a little off and the labels flicker. The estimate is filtered as MediaPipe filters
# its landmarks, with a One Euro filter (Casiez et al., CHI 2012): a low-pass whose cutoff (cycles a frame)
# rises with the crop's speed (crop pixels a frame, itself low-passed at SPEED_CUTOFF), so a still face
# holds still and a moving one is followed. Chosen on clips of 10 dev val faces (bench_video's real clips,
# 2026-12-06): flip by turns, flicker 0.0469 unfiltered, 0.0243 with these, moving F1 0.8865 / 0.8863;
# on 24 val faces 0.0264, F1 0.8836; both halves every frame 0.0289 -> 0.0204, F1 0.8853 -> 0.8847. A lower
# MOVING_CUTOFF (0.1) took flicker to 0.018 but F1 to 0.882: the crop lagged a moving face.
# Flip by turns: the last frame's half and this frame's count alike (PAIR_SHARE 0.5) while the crop moves
# up to STILL_SPEED crop pixels a frame (the One Euro filter's speed), so that the halves' small differences
# do not alternate in the labels of a still face; from MOVING_SPEED on this frame's half counts alone, so
# that a moving, turning face is not held back by a frame. On the real val clips still faces' crops move
# 0.1-0.9 px a frame (one badly tracked face up to 6), moving ones 3.3 and up. Chosen on 10 val faces
# (tools/bench_video's real clips) and 3 synthetic moving clips (60 frames, 320 x 240): pair always,
# flicker 0.0243, F1 0.8863, synthetic F1 0.8063; (2, 4) 0.0258, 0.8862, 0.8176; (1, 3) 0.0264, 0.8863,
# 0.8176; never 0.0441, 0.8865, 0.8193 (both halves every frame: 0.0167, 0.8872, 0.8187).
PAIR_SHARE = 0.5
STILL_SPEED = 2.0
MOVING_SPEED = 4.0
STILL_CUTOFF = 0.01
MOVING_CUTOFF = 0.3
SPEED_CUTOFF = 1.0
# A moving face's crop lagged behind it still (2026-12-08): the One Euro filter passes about 0.88 of a face's
# change at MOVING_SPEED, and the next crop's expected motion is taken from the filtered estimates. Segmenting
# every tracked frame a second time where its fit put the face (an oracle, twice the network time) raised the
# 24 dev val clips' tracked F1 from 0.88396 to 0.88490, so the lag cost that much. Hence a moving face's
# estimate is not filtered at all: from STILL_SPEED to MOVING_SPEED (_moving) the filter's weight rises to 1.
# Val clips F1 0.88396 -> 0.88450, flicker 0.0216 -> 0.0214 (still faces keep the filter); test clips
# 0.86634 -> 0.86687 (frame by frame as photos 0.8676), flicker 0.0238 -> 0.0245. Tried with it: the filter
# opened from 1 to 3 px a frame (val 0.88464, flicker 0.0226), MOVING_MOTION 1.15 / 1.3 (0.88440 / 0.88430),
# half or all of the last change in velocity added (constant acceleration: 0.88444 / 0.88449); MOVING_CUTOFF
# 0.6 / 1.2 without it (0.88425 / 0.88448, flicker 0.0269 / 0.0337).


@dataclasses.dataclass
class Track:
    """One face followed across frames; crop coordinates are those of the crop named."""

    transform: np.ndarray         # frame -> crop, to align the next frame with
    detected: Face                # as the detector gave it, at the last detection
    keypoints: np.ndarray | None  # (K, 2) the detected keypoints in the detection's crop (None: aligned frames)
    box: np.ndarray               # (4, 2) the detected box's corners in the detection's crop
    centroids: np.ndarray         # (P, 2) each part's centroid in the detection's crop (nan where absent)
    areas: np.ndarray             # (P,) each part's area in the detection's crop, in pixels
    side_centroids: dict | None = None  # flip by turns: each side's centroids {"image"|"mirror": (P, 2)}
    estimate: np.ndarray | None = None  # frame -> detection's crop, as last measured (for the motion)
    average: list | None = None         # (S, S, C) smoothed probabilities (class_groups), in the last frame's crop ...
    average_to_face: np.ndarray | None = None  # ... and that crop -> the detection's crop
    last: list | None = None            # (S, S, C) the last frame's own probabilities (class_groups), same crop
    speed: float | None = None    # the One Euro filter's: how fast the crop moves, crop pixels a frame
    lagging: bool = False         # transform carries no motion (none known yet): it lags a moving face

    def face(self, estimate: np.ndarray) -> Face:
        """The face in frame coordinates, through a frame -> detection's crop transform."""
        to_frame = align.invert(estimate)
        corners = align.apply(to_frame, self.box)
        (x0, y0), (x1, y1) = corners.min(0), corners.max(0)
        keypoints = None if self.keypoints is None else align.apply(to_frame, self.keypoints)
        # the detected face moved: its confidence (and whatever else the detector said) carried over
        return dataclasses.replace(self.detected, box=(float(x0), float(y0), float(x1 - x0), float(y1 - y0)),
                                   keypoints=keypoints)


@dataclasses.dataclass
class TrackedFrame:
    labels: np.ndarray             # (H, W) uint8
    owner: np.ndarray              # (H, W) int16
    faces: list[Face]
    transforms: list[np.ndarray]   # the frame -> crop transform each face was segmented with
    crop_labels: np.ndarray | None  # (faces, S, S) uint8: the smoothed labels in each crop
    detected: bool                 # whether the detector ran on this frame
    seconds: dict[str, float]


@dataclasses.dataclass
class _Job:
    """A frame between FaceTracker's two steps (_start, _finish)."""

    shape: tuple[int, int]
    tracks: list[Track]
    probabilities: np.ndarray | list
    to_face: list[np.ndarray]
    transforms: list[np.ndarray]
    faces: list[Face]
    detected: bool
    seconds: dict[str, float]
    pair_shares: list[float] = dataclasses.field(default_factory=list)  # per track, flip by turns (_pair_share)


def part_centroids(labels: np.ndarray, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """A crop's class ids (S, S) -> ((parts, 2) centroid (x, y) of classes 1..parts, nan where absent;
    (parts,) their areas in pixels). By OpenCV's image moments of each part's mask (0.10 ms a 128 px crop
    against 0.18 for numpy's weighted bincounts); moments count pixel indices, centres are half a pixel on."""
    centroids = np.full((parts, 2), np.nan)
    areas = np.zeros(parts)
    for k in range(1, parts + 1):
        moments = cv2.moments((labels == k).view(np.uint8), binaryImage=True)
        areas[k - 1] = moments["m00"]
        if moments["m00"]:
            centroids[k - 1] = (moments["m10"] / moments["m00"] + 0.5, moments["m01"] / moments["m00"] + 0.5)
    return centroids, areas


class FaceTracker:
    """Frame after frame of one video: detect or track, segment, smooth, paste (see the module's text).

    model: serve/predict.py's Model; detector: (H, W, 3) uint8 -> list[Face]; detect_every >= 1 frames;
    smoothing in [0, 1): the weight of the past in the moving average; realign: correct the carried-over
    transform from the parts found (else keep the detection's); prefilter: cut the crops as for detected
    faces (align.warp_face's), else as Segmenter.aligned does (frames that are aligned faces);
    flip_by_turns: the halves of a two-run flip average by turns (see the module's text).
    """

    def __init__(self, model: Model, detector: Callable[[np.ndarray], list[Face]], detect_every: int = DETECT_EVERY,
                 smoothing: float = 0.5, realign: bool = True, prefilter: bool = True, flip_by_turns: bool = True):
        self.model = model
        # the flip average's two runs by turns, one a tracked frame (where the model does it in two runs);
        # the moving average brings them together, so without smoothing both run every frame
        self.by_turns = flips_by_turns(model, flip_by_turns, smoothing)
        self._frame = 0  # frames started (whose turn it is)
        self.prefilter = prefilter
        self.detector = detector
        self.detect_every = detect_every
        self.smoothing = smoothing
        self.realign = realign
        self.tracks: list[Track] = []
        self._since_detection = 0
        self._periodic = 0  # periodic detections so far (look_again's turn)
        self._finishing: Future | None = None  # stream's last frame being finished on its thread
        self._parts = len(model.classes) - 1

    def __call__(self, frame: np.ndarray) -> TrackedFrame:
        """Segment the next frame (H, W, 3) uint8."""
        return self._finish(self._start(frame))

    def stream(self, items: Iterable[tuple[np.ndarray, object]]) -> Iterator[tuple[object, TrackedFrame]]:
        """Segment frames one after the other as __call__ does, in two steps on two threads: while one
        frame's probabilities are smoothed and pasted into it, the next frame is cut and segmented.
        items: (frame, tag) pairs; yields (tag, TrackedFrame) in their order, each once the next frame
        has been read (or the frames ended). When reading a frame raises, the frame before it is
        yielded first. The same results as __call__ frame by frame."""
        from concurrent.futures import ThreadPoolExecutor

        iterator = iter(items)
        pending: tuple[object, Future] | None = None
        with ThreadPoolExecutor(1, thread_name_prefix="track-finish") as pool:
            while True:
                try:
                    frame, tag = next(iterator)
                except StopIteration:
                    break
                except BaseException:
                    if pending is not None:
                        yield pending[0], pending[1].result()
                        pending = None
                    raise
                job = self._start(frame)
                self._finishing = pool.submit(self._finish, job)
                if pending is not None:
                    yield pending[0], pending[1].result()
                pending = (tag, self._finishing)
            self._finishing = None
            if pending is not None:
                yield pending[0], pending[1].result()

    def _start(self, frame: np.ndarray) -> _Job:
        """What a frame needs before the next can be segmented: detect or track, segment, realign."""
        seconds: dict[str, float] = {}
        detect = not self.tracks or self._since_detection >= self.detect_every
        periodic = detect and bool(self.tracks)  # all tracks held: the detector may look where they are
        if not detect:
            start = time.perf_counter()
            transforms = [track.transform for track in self.tracks]
            side = self._side()
            probabilities, labels = self._segment(frame, transforms, side)
            to_face = [self._to_face(track, probs, side, crop_labels)
                       for track, probs, crop_labels in zip(self.tracks, probabilities, labels)]
            self._segment_again(frame, transforms, probabilities, to_face, side)
            seconds["align_and_model"] = time.perf_counter() - start
            detect = any(matrix is None for matrix in to_face)
            tracks = self.tracks
        if detect:
            start = time.perf_counter()
            faces = self._detect(frame, periodic)
            seconds["detect"] = time.perf_counter() - start
            start = time.perf_counter()
            transforms = [self._align(face, frame.shape[:2]) for face in faces]
            probabilities, sides = self._segment_sides(frame, transforms)
            tracks = [self._new_track(face, matrix, probs, apart) for face, matrix, probs, apart in
                      zip(faces, transforms, probabilities, sides)]
            to_face = [np.eye(2, 3) for _ in tracks]
            if self._finishing is not None:
                self._finishing.result()  # the old tracks' averages, as the last frame left them
            self._carry_averages(tracks, probabilities)
            self._since_detection = 0
            seconds["align_and_model"] = seconds.get("align_and_model", 0.0) + time.perf_counter() - start
        for index, (track, used, matrix) in enumerate(zip(tracks, transforms, to_face)):
            estimate = _compose(matrix, used)  # frame -> the detection's crop, measured on this frame
            if track.estimate is not None:
                estimate = self._steady(track, estimate)
                to_face[index] = _compose(estimate, align.invert(used))
            track.lagging = self.realign and track.estimate is None
            track.transform = self._next_transform(track, used, estimate)
            track.estimate = estimate
        self.tracks = tracks
        self._since_detection += 1
        self._frame += 1
        faces = [track.face(track.estimate) for track in tracks]
        shares = [_pair_share(track.speed) for track in tracks] if self.by_turns else [0.0] * len(tracks)
        return _Job(frame.shape[:2], list(tracks), probabilities, to_face, transforms, faces, detect, seconds,
                    shares)

    def _finish(self, job: _Job) -> TrackedFrame:
        """The rest of a frame: its probabilities mixed into each track's average, pasted into it."""
        start = time.perf_counter()
        averages = []
        for track, probs, matrix, share in zip(job.tracks, job.probabilities, job.to_face, job.pair_shares):
            groups = align.class_groups(probs)  # the classes split once, for the warps (class_groups)
            average = self._smoothed(track, groups, matrix, share)
            track.average, track.average_to_face = average, matrix
            track.last = groups if self.by_turns else None
            averages.append(average)
        crop_labels = np.stack([align.groups_argmax(average) for average in averages]) if averages else None
        labels, owner = paste_faces(averages or None, job.transforms, job.shape, crop_labels)
        seconds = {**job.seconds, "smooth_and_paste": time.perf_counter() - start}
        return TrackedFrame(labels, owner, job.faces, job.transforms, crop_labels, job.detected, seconds)

    def _detect(self, frame: np.ndarray, periodic: bool) -> list[Face]:
        """The detector's faces in the frame. A periodic detection, all tracks held, asks a detector
        that can (BlazeFace's look_again) to look at the tracked faces and at one part of the frame by
        turns, for faces that came in; else, and on a lost track, the whole frame."""
        look_again = getattr(self.detector, "look_again", None)
        if not periodic or look_again is None:
            return self.detector(frame)
        self._periodic += 1
        return look_again(frame, [track.face(track.estimate) for track in self.tracks], self._periodic)

    def _side(self) -> str | None:
        """Which of the flip average's two runs a tracked frame gets: both (None), or by turns."""
        if not self.by_turns:
            return None
        return ("image", "mirror")[self._frame % 2]

    def _segment_sides(self, frame: np.ndarray, transforms: list[np.ndarray]) -> tuple:
        """A detection's segmentation: (probabilities, per face its flip runs apart {side: (S, S, C)} for
        flip by turns, else None)."""
        if not self.by_turns or not transforms:
            return self._segment(frame, transforms)[0], [None] * len(transforms)
        image, mirrored = self.model.sides(self._crops(frame, transforms), mirror_thread=True)
        sides = [{"image": one.copy(), "mirror": other} for one, other in zip(image, mirrored)]
        return self.model.join(image, mirrored), sides

    def _crops(self, frame: np.ndarray, transforms: list[np.ndarray]) -> np.ndarray:
        size = self.model.image_size
        return np.stack([align.warp_face(frame, matrix, size, self.prefilter) for matrix in transforms])

    def _segment(self, frame: np.ndarray, transforms: list[np.ndarray], side: str | None = None) -> tuple:
        """(probabilities (N, S, S, C), labels) of the crops of `transforms`; labels: with `side` (one run of
        the flip average, flip by turns) the network's own (N, S, S), else a None for each crop (_to_face
        takes the argmax where it needs one)."""
        if not transforms:
            return [], []
        crops = self._crops(frame, transforms)
        if side is not None and self.model.two_runs:
            return self.model.side_with_labels(crops, side)
        # Frames come one after the other: the flip average's mirror runs on the other core meanwhile.
        return self.model(crops, mirror_thread=True, side=side), [None] * len(crops)

    def _segment_again(self, frame: np.ndarray, transforms: list[np.ndarray], probabilities: np.ndarray,
                       to_face: list[np.ndarray | None], side: str | None = None) -> None:
        """A new track's first frame after its detection: no motion is known yet, so its crop lags a
        moving face by a whole frame. Where the fit moved that crop by more than REFIT_SHIFT, the frame is
        cut and segmented again where the fit put it (transforms, probabilities and to_face updated)."""
        size = self.model.image_size
        again = [index for index, (track, fit) in enumerate(zip(self.tracks, to_face))
                 if track.lagging and fit is not None and _centre_shift(fit, size) > REFIT_SHIFT * size]
        if not again:
            return
        moved = [_compose(to_face[index], transforms[index]) for index in again]
        for index, matrix, probs, labels in zip(again, moved, *self._segment(frame, moved, side)):
            fit = self._to_face(self.tracks[index], probs, side, labels)
            if fit is not None:
                transforms[index], probabilities[index], to_face[index] = matrix, probs, fit

    def _align(self, face: Face, shape: tuple[int, int]) -> np.ndarray:
        """The frame -> crop transform of a detected face; of the crop box when the frame is the aligned
        face (no keypoints: a Segmenter without detector)."""
        if face.keypoints is None:
            return align.box_transform(shape, self.model.image_size, self.model.crop)
        return face.transform(self.model.image_size, self.model.framing, self.model.crop)  # any detector's points

    def _new_track(self, face: Face, transform: np.ndarray, probabilities: np.ndarray,
                   sides: dict | None = None) -> Track:
        centroids, areas = part_centroids(align.class_argmax(probabilities), self._parts)
        side_centroids = None if sides is None else {
            side: part_centroids(align.class_argmax(probs), self._parts)[0] for side, probs in sides.items()}
        if face.keypoints is None:  # an aligned frame: its box is the crop's
            size = self.model.image_size
            box = np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float64)
            return Track(transform, face, None, box, centroids, areas, side_centroids)
        x, y, w, h = face.box
        corners = np.array([(x, y), (x + w, y), (x + w, y + h), (x, y + h)])
        return Track(transform, face, align.apply(transform, face.keypoints),
                     align.apply(transform, corners), centroids, areas, side_centroids)

    def _to_face(self, track: Track, probabilities: np.ndarray, side: str | None = None,
                 labels: np.ndarray | None = None) -> np.ndarray | None:
        """This crop -> the track's detection crop: the similarity that puts this crop's part centroids
        on those at detection; None when the track is lost (too few parts found, an implausible fit).
        Aligned frames (a Segmenter without detector) stay where they are: the identity."""
        if track.keypoints is None:
            return np.eye(2, 3)
        centroids, areas = part_centroids(align.class_argmax(probabilities) if labels is None else labels,
                                         self._parts)
        # one side of the flip is fitted onto that side's centroids at detection: its bias cancels
        reference = track.centroids if side is None or track.side_centroids is None else track.side_centroids[side]
        found = (areas >= MIN_AREA * track.areas) & (track.areas > 0) & np.isfinite(reference).all(1)
        if found.sum() < MIN_PARTS:
            return None
        fit = align.similarity_transform(centroids[found], reference[found])
        size = self.model.image_size
        shift = _centre_shift(fit, size)
        if not 1 / MAX_SCALE_CHANGE <= align.scale_of(fit) <= MAX_SCALE_CHANGE or shift > MAX_SHIFT * size:
            return None
        return fit

    def _steady(self, track: Track, estimate: np.ndarray) -> np.ndarray:
        """This frame's measured frame -> detection's crop transform, filtered with the track's last
        (a One Euro filter, see STILL_CUTOFF): the more the face moves, the more the measurement counts;
        a moving face's (from MOVING_SPEED) is not filtered."""
        size = self.model.image_size
        corners = np.array([(0, 0), (size, 0), (size, size), (0, size)], np.float64)
        # how far the crop's corners moved from the last estimate, in crop pixels
        moved = align.apply(track.estimate, align.apply(align.invert(estimate), corners)) - corners
        change = float(np.hypot(moved[:, 0], moved[:, 1]).max())
        if track.speed is None:
            track.speed = change
        else:
            track.speed += _euro_weight(SPEED_CUTOFF) * (change - track.speed)
        weight = _euro_weight(STILL_CUTOFF + MOVING_CUTOFF * track.speed)
        weight += (1 - weight) * _moving(track.speed)  # a moving face's taken as measured (see SPEED_CUTOFF)
        return weight * estimate + (1 - weight) * track.estimate

    def _next_transform(self, track: Track, used: np.ndarray, estimate: np.ndarray) -> np.ndarray:
        """The transform to align the next frame with: this frame's estimate, moved on by MOTION times the
        change between the last two estimates (a damped constant velocity); without realign the one
        just used."""
        if not self.realign:
            return used
        if track.estimate is None:
            return estimate
        motion = MOTION + (MOVING_MOTION - MOTION) * _moving(track.speed)
        return estimate + motion * (estimate - track.estimate)

    def _smoothed(self, track: Track, probabilities: list[np.ndarray], to_face: np.ndarray,
                  pair_share: float = 0.0) -> list[np.ndarray]:
        """This frame's probabilities (S, S, C; as align.class_groups) mixed with the track's average,
        resampled from the last frame's crop into this one so that the face's parts (not the frame's
        pixels) line up."""
        pair = track.last is not None and pair_share > 0  # both only with flip by turns
        if (self.smoothing <= 0 and not pair) or track.average is None:
            return probabilities
        # this crop -> the detection's crop -> the last frame's crop
        to_last = _compose(align.invert(track.average_to_face), to_face)
        new = np.float32(1 - self.smoothing)
        past = [np.multiply(group, np.float32(self.smoothing), dtype=np.float32) for group in track.average]
        if pair:  # the last frame's run (the flip's other half) takes its share of this frame's weight
            for group, last in zip(past, track.last):
                group += new * np.float32(pair_share) * last
            new *= np.float32(1 - pair_share)
        if not np.allclose(to_last, np.eye(2, 3), atol=1e-6):
            # where the last crop does not reach, this frame's own values, weighted as the past's
            past = align.resample_crop(past, to_last, [group * (1 - new) for group in probabilities])
        for group, now in zip(past, probabilities):
            group += new * now
        return past

    def _carry_averages(self, tracks: list[Track], probabilities) -> None:
        """Give each new detection the average of the old track it continues (the nearest crop centre,
        within a quarter of the crop), so a detection does not restart the smoothing: the average is
        re-expressed against the new detection's crop through the new crop's part centroids."""
        size = self.model.image_size
        centre = [(size / 2, size / 2)]
        old = [(track, align.apply(align.invert(track.estimate), centre)[0], size / align.scale_of(track.estimate))
               for track in self.tracks if track.average is not None]
        for track, probs in zip(tracks, probabilities):
            here = align.apply(align.invert(track.transform), centre)[0]
            near = [(np.hypot(*(here - where)), before) for before, where, side in old
                    if np.hypot(*(here - where)) < side / 4]
            if not near:
                continue
            before = min(near, key=lambda pair: pair[0])[1]
            new_to_old = self._to_face(before, probs)   # this crop -> the old detection's crop
            if new_to_old is None:
                continue
            # the old average, in its crop -> this crop (the new track's detection crop)
            track.average, track.last, track.speed = before.average, before.last, before.speed
            track.average_to_face = _compose(align.invert(new_to_old), before.average_to_face)
            track.estimate = None


def flips_by_turns(model: Model, flip_by_turns: bool = True, smoothing: float = 0.5) -> bool:
    """Whether a FaceTracker of these options runs the flip average's halves by turns: only where the
    model does that average in two runs of its network, and with smoothing to join them."""
    return flip_by_turns and model.two_runs and smoothing > 0


def _moving(speed: float | None) -> float:
    """How much a crop moving at `speed` (crop pixels a frame; None: not known yet) counts as moving:
    0 up to STILL_SPEED, 1 from MOVING_SPEED, in proportion between."""
    if speed is None:
        return 0.0
    return min(1.0, max(0.0, (speed - STILL_SPEED) / (MOVING_SPEED - STILL_SPEED)))


def _pair_share(speed: float | None) -> float:
    """Flip by turns: the last frame's half's share of this frame's weight in the moving average, by how
    fast the crop moves: PAIR_SHARE while it is still, none once it moves (_moving)."""
    return PAIR_SHARE * (1 - _moving(speed))


def _euro_weight(cutoff: float) -> float:
    """A One Euro filter's weight of the new value, a frame apart, for a cutoff in cycles a frame."""
    return 1 / (1 + 1 / (2 * np.pi * cutoff))


def _centre_shift(fit: np.ndarray, size: int) -> float:
    """How far a crop -> crop similarity moves the centre of a crop of side `size`, in pixels."""
    return float(np.hypot(*(align.apply(fit, [(size / 2, size / 2)])[0] - size / 2)))


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 transform of `inner` then `outer`."""
    linear = outer[:, :2] @ inner[:, :2]
    return np.concatenate([linear, (outer[:, :2] @ inner[:, 2] + outer[:, 2])[:, None]], axis=1)
