"""Videos: predict.py --input clip.mp4 and Segmenter.video on synthetic clips with known masks
(lipseg_tf.prep.sample.clip: one rendered face moved and turned, or still with sensor noise).

The shipped default model (lipseg_tf/pretrained/unet-small, trained on real faces) segments the synthetic
faces well enough (mean F1 about 0.9 on these clips) that the F1, tracking and flicker figures mean
something; BlazeFace finds the faces.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lipseg_tf.cli.predict import main as predict_main
from lipseg_tf.errors import UserError
from lipseg_tf.prep.imageio import load_gray
from lipseg_tf.prep.sample.clip import render_clip
from lipseg_tf.serve import align, track
from lipseg_tf.serve.video import VideoReader, VideoWriter
from lipseg_tf.tools.bench_video import flicker
from lipseg_tf.tools.bench_video import mean_f1 as f1

SHAPE = (240, 320)
FRAMES = 16


def write_video(path, frames, fps=25.0):
    writer = VideoWriter(path, fps)
    for frame in frames:
        writer.write(frame)
    writer.close()
    return path


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """A 16-frame 320 x 240 clip of a moving, turning face, as an MP4, its decoded frames and true labels."""
    frames, labels = render_clip(0, 1, FRAMES, shape=SHAPE, period=40)
    path = write_video(tmp_path_factory.mktemp("clips") / "moving.mp4", frames)
    return path, np.stack(list(VideoReader(path))), labels


@pytest.fixture(scope="module")
def segmenter():
    import lipseg_tf
    return lipseg_tf.Segmenter()


def test_the_measures_on_hand_computed_cases():
    truth = np.zeros((2, 4, 4), np.uint8)
    truth[:, 0, :2], truth[:, 1, :2], truth[:, 2, :2], truth[:, 3, :2] = 1, 2, 3, 4
    pred = truth.copy()
    pred[1, 0, 0] = 0               # l_eye: 3 of 4 found, none extra: F1 6/7; the others 1
    assert f1(pred, truth) == pytest.approx((6 / 7 + 3) / 4)
    # frame 0 -> 1: one of the 8 part pixels (in either frame) changes
    assert flicker(pred) == pytest.approx(1 / 8) and flicker(truth) == 0


def test_part_centroids_and_the_composed_transform():
    labels = np.zeros((8, 8), np.uint8)
    labels[1:3, 2:6] = 1            # x 2..6, y 1..3: centre (4, 2)
    labels[5, 0] = 3                # one pixel: centre (0.5, 5.5)
    centroids, areas = track.part_centroids(labels, 4)
    np.testing.assert_allclose(centroids[[0, 2]], [(4, 2), (0.5, 5.5)])
    assert np.isnan(centroids[[1, 3]]).all() and areas.tolist() == [8, 0, 1, 0]
    rotate = np.array([[0.0, -2.0, 1.0], [2.0, 0.0, 3.0]])
    shift = np.array([[1.0, 0.0, 5.0], [0.0, 1.0, -1.0]])
    points = np.array([(0.0, 0.0), (1.0, 2.0)])
    # shift first: (5, -1), (6, 1); then rotate: (1 + 2, 3 + 10), (1 - 2, 3 + 12)
    np.testing.assert_allclose(align.apply(track._compose(rotate, shift), points), [(3, 13), (-1, 15)])


def test_a_written_clip_reads_back(moving):
    path, decoded, _ = moving
    reader = VideoReader(path)
    assert (reader.fps, reader.frames, reader.width, reader.height) == (25.0, FRAMES, 320, 240)
    assert decoded.shape == (FRAMES, 240, 320, 3) and decoded.dtype == np.uint8


def test_a_phone_video_shown_turned_is_read_upright(tmp_path):
    import av

    image = np.zeros((48, 64, 3), np.uint8)
    image[:10, :20] = 255                       # a bright block at the top left, as stored
    container = av.open(str(tmp_path / "phone.mp4"), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.set_display_rotation(-90)            # shown turned 90 degrees clockwise, as phones tag portrait
    for packet in [*stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")), *stream.encode()]:
        container.mux(packet)
    container.close()
    frame, = VideoReader(tmp_path / "phone.mp4")
    assert frame.shape == (64, 48, 3)
    # turned clockwise, the 10 x 20 block at the top left is 20 x 10 at the top right
    assert frame[:18, -8:].mean() > 200 and frame[:18, :8].mean() < 50 and frame[-18:, -8:].mean() < 50


def test_predict_on_a_video_writes_overlay_masks_and_json(moving, segmenter, tmp_path):
    path, decoded, truth = moving
    out = tmp_path / "out"
    assert predict_main(["--input", str(path), "--output", str(out), "--detect-every", "8"]) == 0
    masks = sorted((out / "moving-masks").iterdir())
    assert [m.name for m in masks] == [f"{i:06d}.png" for i in range(FRAMES)]
    labels = np.stack([load_gray(m) for m in masks])
    assert labels.shape == (FRAMES, 240, 320) and labels.dtype == np.uint8
    overlay = VideoReader(out / "moving-overlay.mp4")
    assert (overlay.frames, overlay.width, overlay.height, overlay.fps) == (FRAMES, 320, 240, 25.0)
    record = json.loads((out / "moving.json").read_text())
    assert record["fps"] == 25.0 and record["frames"] == FRAMES and len(record["per_frame"]) == FRAMES
    assert [f["detected"] for f in record["per_frame"]] == [i % 8 == 0 for i in range(FRAMES)]  # no track lost
    assert all(len(f["faces"]) == 1 for f in record["per_frame"])
    assert {"decode", "align_and_model", "write", "total"} <= set(record["per_frame"][1]["seconds"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"] == 1 and summary["frames"] == FRAMES and summary["complete"]
    # tracked and smoothed, the masks are as good as segmenting each frame as a photo
    video_f1 = f1(labels, truth)
    photo_f1 = f1(np.stack([segmenter(frame).labels for frame in decoded]), truth)
    assert video_f1 > 0.85 and video_f1 > photo_f1 - 0.01, (video_f1, photo_f1)


def test_tracking_follows_the_face_without_detection(moving, segmenter):
    """Detected once, the face is followed by realigning on its parts; keeping the detection's transform
    lets the crop fall behind the moving face until the track is lost and the face detected again."""
    _, decoded, truth = moving
    tracked = list(segmenter.video(decoded, detect_every=100, smoothing=0.0))
    kept = list(segmenter.video(decoded, detect_every=100, smoothing=0.0, realign=False))
    assert [f.detected for f in tracked] == [True] + [False] * (FRAMES - 1)
    assert [f.index for f in tracked] == list(range(FRAMES)) and tracked[3].time is None  # frames without a rate
    tracked_f1 = f1(np.stack([f.labels for f in tracked]), truth)
    kept_f1 = f1(np.stack([f.labels for f in kept]), truth)
    assert tracked_f1 > 0.85 and tracked_f1 > kept_f1, (tracked_f1, kept_f1)
    assert sum(f.detected for f in kept) > 1   # the kept crop lost the face and had to detect it again
    # the tracked face's landmarks move with it: the eyes' midpoint follows the true eyes' centroid
    for frame, labels in zip(tracked[1:], truth[1:]):
        eyes = np.argwhere((labels == 1) | (labels == 2)).mean(0)[::-1] + 0.5
        keypoints = frame.faces[0].keypoints
        assert np.hypot(*(keypoints[:2].mean(0) - eyes)) < 6


def test_the_first_frame_after_a_detection_is_segmented_where_the_face_went(moving, segmenter, monkeypatch):
    """Right after a detection no motion is known, so the crop is a frame behind the moving face; the
    frame is segmented again where its parts put the face, and scores as well as segmented as a photo."""
    _, decoded, truth = moving
    first = [1, 9]   # detections on frames 0 and 8
    photo = f1(np.stack([segmenter(decoded[i]).labels for i in first]), truth[first])

    def after_detections():
        frames = list(segmenter.video(decoded, detect_every=8))
        assert [f.detected for f in frames] == [i % 8 == 0 for i in range(FRAMES)]
        return f1(np.stack([frames[i].labels for i in first]), truth[first])

    again = after_detections()
    monkeypatch.setattr(track, "REFIT_SHIFT", math.inf)
    lagging = after_detections()
    assert again > photo - 0.01 and again > lagging + 0.03, (again, photo, lagging)


def test_periodic_detections_look_again_where_the_faces_are_tracked(moving, segmenter, monkeypatch):
    """Every 4th frame the detector runs while the face is tracked: BlazeFace's look_again, given the
    tracked face (where its last frame put it) and one tile by turns; a lost track detects afresh."""
    _, decoded, truth = moving
    detector = segmenter._video_detector()
    calls = []
    real_look_again = detector.look_again

    def spy(photo, faces, turn):
        calls.append((len(faces), turn))
        return real_look_again(photo, faces, turn)

    monkeypatch.setattr(detector, "look_again", spy)
    frames = list(segmenter.video(decoded, detect_every=4, smoothing=0.5))
    assert [f.detected for f in frames] == [i % 4 == 0 for i in range(FRAMES)]  # no track lost
    assert calls == [(1, 1), (1, 2), (1, 3)]  # frames 4, 8 and 12; frame 0 looked at the whole frame
    assert f1(np.stack([f.labels for f in frames]), truth) > 0.85


def test_the_pipelined_stream_gives_what_frame_by_frame_calls_give(moving, segmenter):
    """FaceTracker.stream (Segmenter.video's: smoothing and pasting on a thread of their own) yields the
    same labels, faces and detections as calling the tracker frame by frame, tags in order; a source
    that breaks off yields the frames before the damage, then raises."""
    _, decoded, _ = moving
    detector = segmenter._video_detector()
    called = track.FaceTracker(segmenter.model, detector, detect_every=4)
    by_call = [called(frame) for frame in decoded]
    streamed = list(track.FaceTracker(segmenter.model, detector, detect_every=4).stream(
        (frame, index) for index, frame in enumerate(decoded)))
    assert [tag for tag, _ in streamed] == list(range(FRAMES))
    for one, (_, other) in zip(by_call, streamed):
        np.testing.assert_array_equal(one.labels, other.labels)
        np.testing.assert_array_equal(one.crop_labels, other.crop_labels)
        assert one.detected == other.detected and len(one.faces) == len(other.faces) == 1
        np.testing.assert_allclose(one.faces[0].box, other.faces[0].box)

    def breaking():
        for index, frame in enumerate(decoded[:5]):
            yield frame, index
        raise UserError("clip.mp4: broken off")

    got = []
    with pytest.raises(UserError, match="broken off"):
        for tag, _ in track.FaceTracker(segmenter.model, detector).stream(breaking()):
            got.append(tag)
    assert got == [0, 1, 2, 3, 4]


def test_smoothing_reduces_flicker_on_a_still_face(segmenter):
    # 20 frames: the average needs a few to settle (the default small model: 0.70 of the flicker over 20
    # frames, 0.87 over the first 10)
    frames, truth = render_clip(0, 1, 20, shape=SHAPE, motion="still", noise=4.0)
    smoothed = np.stack([f.labels for f in segmenter.video(frames, smoothing=0.5)])
    plain = np.stack([f.labels for f in segmenter.video(frames, smoothing=0.0)])
    assert flicker(smoothed) < 0.8 * flicker(plain), (flicker(smoothed), flicker(plain))
    assert f1(smoothed, truth) > 0.85


def test_a_video_of_aligned_faces_without_detection_is_aligned_frame_by_frame():
    """detector=None (predict.py --no-detect): each frame is segmented as aligned(); smoothing 0 gives
    exactly aligned()'s labels, and the crop box as the face."""
    import lipseg_tf
    seg = lipseg_tf.Segmenter(detector=None)
    frames, _ = render_clip(0, 1, 4, shape=(160, 160), motion="still", noise=4.0, face_side=160)
    results = list(seg.video(frames, smoothing=0.0))
    for frame, result in zip(frames, results):
        expected = seg.aligned(frame)
        np.testing.assert_array_equal(result.labels, expected.labels)
        np.testing.assert_allclose(result.faces[0].box, expected.faces[0].box, atol=1e-6)
    assert [r.detected for r in results] == [True, False, False, False] and results[0].labels.any()


def test_broken_empty_and_faceless_videos_are_counted_and_frames_written_kept(moving, tmp_path):
    import av

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "junk.mp4").write_bytes(b"not a video " * 20)
    whole = moving[0].read_bytes()
    (videos / "cut.mp4").write_bytes(whole[:int(0.9 * len(whole))])
    container = av.open(str(videos / "empty.mp4"), "w", format="mp4")   # a container without frames
    stream = container.add_stream("mpeg4", rate=25)
    stream.width, stream.height = 64, 48
    container.start_encoding()
    container.close()
    rng = np.random.default_rng(0)
    write_video(videos / "noface.mkv", rng.integers(90, 110, (3, 48, 64, 3)).astype(np.uint8))
    out = tmp_path / "out"
    assert predict_main(["--input", str(videos), "--output", str(out)]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert [s["file"] for s in summary["skipped"]] == [str(videos / "junk.mp4")]
    assert "unreadable video (Invalid data found when processing input)" in summary["skipped"][0]["reason"]
    assert not (out / "junk.json").exists() and not (out / "junk-masks").exists()
    broken, = summary["videos_broken"]
    assert broken["file"] == str(videos / "cut.mp4") and 0 < broken["frames"] < FRAMES
    assert "truncated" in broken["reason"] or "unreadable after frame" in broken["reason"]
    assert len(list((out / "cut-masks").iterdir())) == broken["frames"]         # the frames before it, kept
    assert VideoReader(out / "cut-overlay.mp4").frames == broken["frames"]
    assert summary["videos_without_frames"] == [str(videos / "empty.mp4")]
    assert json.loads((out / "empty.json").read_text())["frames"] == 0
    assert summary["videos_without_face"] == [str(videos / "noface.mkv")]
    noface = json.loads((out / "noface.json").read_text())
    assert noface["frames"] == 3 and noface["frames_without_face"] == 3 and noface["detections"] == 3
    assert not load_gray(out / "noface-masks" / "000002.png").any()
    assert summary["videos"] == 3 and summary["complete"]


def test_video_api_errors_are_one_line(segmenter, tmp_path):
    with pytest.raises(UserError, match=f"{tmp_path}/none.mp4: file not found"):
        segmenter.video(tmp_path / "none.mp4")
    with pytest.raises(UserError, match="detect_every: expected a whole number of frames >= 1, got 0"):
        segmenter.video([], detect_every=0)
    with pytest.raises(UserError, match="smoothing: expected a weight from 0 .off. to below 1, got 1.0"):
        segmenter.video([], smoothing=1.0)
    with pytest.raises(UserError, match=r"frame 1: expected a uint8 array of shape \(H, W, 3\)"):
        list(segmenter.video([np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.uint8)]))
    with pytest.raises(UserError, match="video: expected a video file's path or an iterable of frames, got int"):
        segmenter.video(5)


def test_the_flip_averages_halves_apart_are_its_two_runs(moving, segmenter):
    """Model.sides gives the mirror-image average's two runs apart: their mean is the average; side=
    runs one; the mirror run of a mirrored face is the plain run mirrored back, left and right swapped."""
    model = segmenter.model
    assert model.two_runs   # the shipped model: its TFLite copy, the flip average done here
    _, decoded, _ = moving
    detector = segmenter._video_detector()
    transform = detector(decoded[0])[0].transform(model.image_size, model.framing, model.crop)
    crops = align.warp_face(decoded[0], transform, model.image_size)[None]
    image, mirrored = model.sides(crops)
    np.testing.assert_allclose((image + mirrored) / 2, model(crops), atol=1e-6)
    np.testing.assert_array_equal(model(crops, side="image"), image)
    np.testing.assert_array_equal(model(crops, side="mirror"), mirrored)
    swapped = model(np.ascontiguousarray(crops[:, :, ::-1]), side="mirror")
    np.testing.assert_array_equal(swapped, image[:, :, ::-1][..., model._mirror])
    assert not np.array_equal(image, mirrored)   # two different runs


def test_flip_by_turns_runs_the_network_once_a_tracked_frame(moving, segmenter, monkeypatch):
    """Tracked frames run the image or its mirror image by turns (detections both), and the smoothing
    joins the last two: half the network runs, F1 as with both runs every frame."""
    path, decoded, truth = moving
    model = segmenter.model
    model._mirror_runner()   # the detection's mirror thread and interpreter, made now to count its runs
    runs = []

    class Counted:
        """The TFLite copy, its runs counted (both ways of calling it)."""

        def __init__(self, network):
            self.network = network

        def __call__(self, images):
            runs.append(len(images))
            return self.network(images)

        def with_labels(self, images):
            runs.append(len(images))
            return self.network.with_labels(images)

    for name in ("_lite", "_mirror_lite"):
        monkeypatch.setattr(model, name, Counted(getattr(model, name)))

    def clip(by_turns):
        runs.clear()
        labels = np.stack([f.labels for f in segmenter.video(decoded, detect_every=100, flip_by_turns=by_turns)])
        return f1(labels, truth), sum(runs)

    turns_f1, turns_runs = clip(True)
    both_f1, both_runs = clip(False)
    # frame 0 detected (two runs), 15 tracked (one each; one more for a frame segmented again)
    assert 2 + (FRAMES - 1) <= turns_runs <= 2 + (FRAMES - 1) + 2 and both_runs >= 2 * FRAMES
    assert turns_f1 > 0.85 and turns_f1 > both_f1 - 0.01, (turns_f1, both_f1)
    assert not segmenter.flips_by_turns(True, smoothing=0.0)   # nothing would join the halves


def test_a_still_face_is_tracked_still(segmenter, monkeypatch):
    """The One Euro filter on the tracked transform: on a still face with sensor noise the tracked box
    moves less, and the labels flicker less, than with every frame's measurement taken as it is."""
    frames, truth = render_clip(0, 1, 20, shape=SHAPE, motion="still", noise=4.0)

    def clip():
        results = list(segmenter.video(frames, detect_every=100))
        centres = np.array([(x + w / 2, y + h / 2) for x, y, w, h in (f.faces[0].box for f in results)])
        return np.abs(np.diff(centres, axis=0)).mean(), flicker(np.stack([f.labels for f in results]))

    filtered_step, filtered_flicker = clip()
    monkeypatch.setattr(track, "STILL_CUTOFF", 1e6)  # weight ~1: the measurement as it is
    raw_step, raw_flicker = clip()
    assert filtered_step < 0.7 * raw_step and filtered_flicker < raw_flicker, \
        (filtered_step, raw_step, filtered_flicker, raw_flicker)


def test_flip_by_turns_pairs_the_halves_while_the_face_is_still(segmenter, monkeypatch):
    """A still face's labels rest on this frame's half and the last frame's alike, so that the halves'
    differences do not alternate (less flicker than this frame's half alone); a moving face's half
    counts alone, so that it is not held back a frame (better F1 than pairing it too)."""
    still, _ = render_clip(0, 1, 20, shape=SHAPE, motion="still", noise=4.0)
    moving, truth = render_clip(0, 1, FRAMES, shape=SHAPE, period=40)  # as the MP4's, not compressed

    def measured():
        return (flicker(np.stack([f.labels for f in segmenter.video(still)])),
                f1(np.stack([f.labels for f in segmenter.video(moving, detect_every=100)]), truth))

    paired_flicker, adaptive_f1 = measured()
    share = track.PAIR_SHARE
    monkeypatch.setattr(track, "_pair_share", lambda speed: 0.0)
    alone_flicker, _ = measured()
    monkeypatch.setattr(track, "_pair_share", lambda speed: share)  # the still face's share at every speed
    _, always_paired_f1 = measured()
    assert paired_flicker < 0.9 * alone_flicker, (paired_flicker, alone_flicker)
    assert adaptive_f1 > always_paired_f1 + 0.002, (adaptive_f1, always_paired_f1)


def test_a_moving_face_is_expected_to_go_on_as_it_moves(segmenter, monkeypatch):
    """A still face's crop expects three quarters of its last motion again (MOTION), a moving one's all of
    it (MOVING_MOTION): the tracked crop of a moving face then keeps closer to where each frame's own
    detection puts it than with three quarters at every speed."""
    frames, _ = render_clip(0, 1, 24, shape=SHAPE, period=100)
    photos = [segmenter(frame).transforms[0] for frame in frames]

    def shift_from_photos():
        tracked = [f.transforms[0] for f in segmenter.video(frames, detect_every=100)]
        size = segmenter.model.image_size
        return np.mean([track._centre_shift(track._compose(used, align.invert(photo)), size)
                        for used, photo in zip(tracked[1:], photos[1:])])

    expected = shift_from_photos()
    monkeypatch.setattr(track, "MOVING_MOTION", track.MOTION)
    damped = shift_from_photos()
    assert expected < 0.85 * damped, (expected, damped)


def test_the_filter_holds_a_still_face_and_lets_a_moving_one_through():
    """FaceTracker._steady: a crop that moves a tenth of a pixel a frame is held near the last estimate (the
    One Euro filter); one that has been moving 6 px a frame (over MOVING_SPEED) is taken as measured, so that
    its next crop does not lag."""
    import types

    tracker = track.FaceTracker.__new__(track.FaceTracker)
    tracker.model = types.SimpleNamespace(image_size=128)

    def steadied(shift: float, speed: float) -> float:
        last = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        face = track.Track(transform=last, detected=None, keypoints=None, box=np.zeros((4, 2)),
                           centroids=np.zeros((4, 2)), areas=np.ones(4), estimate=last, speed=speed)
        measured = last + np.array([[0.0, 0.0, shift], [0.0, 0.0, 0.0]])
        return float(tracker._steady(face, measured)[0, 2])

    still = steadied(0.1, 0.1)
    assert 0.0 < still < 0.05   # most of a still face's jitter held back
    assert steadied(6.0, 6.0) == pytest.approx(6.0)   # a moving face's measurement as it is
    between = steadied(3.0, 3.0)   # speed still low-passed near 3: partly filtered
    assert 0.0 < between < 3.0
