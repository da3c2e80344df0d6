"""g_mask: per-part annotation files -> one mask per photo, on tiny hand-made CelebAMask-HQ trees."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipseg_tf.cli.g_mask import main as g_mask_main
from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask, masks
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS, PART_COLORS

SIZE = 8


def box(rows, cols, size=SIZE) -> np.ndarray:
    """A 0/255 annotation with a white rectangle."""
    annotation = np.zeros((size, size), dtype=np.uint8)
    annotation[rows, cols] = 255
    return annotation


# Hand-made parts of an 8x8 face: the lips overlap on row 5. l_eye is the person's left eye, on the
# image's right (CelebAMask-HQ's convention).
L_EYE = box(slice(0, 2), slice(4, 8))
R_EYE = box(slice(0, 2), slice(0, 4))
U_LIP = box(slice(4, 6), slice(2, 6))
L_LIP = box(slice(5, 7), slice(2, 6))
SKIN = box(slice(0, 8), slice(0, 8))


def write_part(root: Path, image_id: int, part: str, annotation: np.ndarray) -> Path:
    path = celebamask.part_path(root, image_id, part)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(annotation).save(path)
    return path


def write_photo(root: Path, image_id: int, size: int = 16) -> Path:
    path = celebamask.image_path(root, image_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), 128, dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    """Photo 0: all four parts (lips overlapping); photo 1: no r_eye file (hidden); photo 2: 64x64."""
    root = tmp_path / "CelebAMask-HQ"
    for image_id in (0, 1, 2):
        write_photo(root, image_id)
    for part, annotation in zip(DEFAULT_PARTS, (L_EYE, R_EYE, U_LIP, L_LIP)):
        write_part(root, 0, part, annotation)
    write_part(root, 0, "skin", SKIN)
    write_part(root, 1, "l_eye", L_EYE)
    write_part(root, 1, "u_lip", U_LIP)
    write_part(root, 2, "l_eye", np.kron(L_EYE, np.ones((8, 8), dtype=np.uint8)))
    return root


def expected_labels(order=DEFAULT_PARTS, hidden=()) -> np.ndarray:
    """Class ids painted by hand in `order`, a later part overwriting an earlier one."""
    annotations = {"l_eye": L_EYE, "r_eye": R_EYE, "u_lip": U_LIP, "l_lip": L_LIP}
    labels = np.zeros((SIZE, SIZE), dtype=np.uint8)
    for class_id, part in enumerate(order, start=1):
        if part not in hidden:
            labels[annotations[part] > 0] = class_id
    return labels


def no_temp_files(folder: Path) -> bool:
    return not any(p.name.startswith(".tmp-") for p in folder.rglob("*"))


def test_compose_binary_is_the_union():
    part_masks = {"l_eye": L_EYE > 0, "u_lip": U_LIP > 0, "l_lip": L_LIP > 0}
    mask = masks.compose_mask(part_masks, DEFAULT_PARTS, "binary")
    assert mask.dtype == np.uint8 and mask.shape == (SIZE, SIZE)
    np.testing.assert_array_equal(mask, np.where((L_EYE | U_LIP | L_LIP) > 0, 255, 0))


def test_compose_without_parts_needs_a_shape():
    assert masks.compose_mask({}, DEFAULT_PARTS, "index", shape=(3, 5)).tolist() == [[0] * 5] * 3
    with pytest.raises(ValueError):
        masks.compose_mask({}, DEFAULT_PARTS, "index")


def test_color_mask_paints_each_part_in_its_colour(tree):
    mask = masks.make_mask(tree, 0, DEFAULT_PARTS, "color")
    assert mask.shape == (SIZE, SIZE, 3) and mask.dtype == np.uint8
    labels = expected_labels()
    assert tuple(mask[0, 7]) == PART_COLORS["l_eye"]
    assert tuple(mask[0, 0]) == PART_COLORS["r_eye"]
    assert tuple(mask[4, 3]) == PART_COLORS["u_lip"]
    assert tuple(mask[6, 3]) == PART_COLORS["l_lip"]
    assert tuple(mask[3, 0]) == (0, 0, 0)
    colors = {name: np.array(PART_COLORS[name]) for name in DEFAULT_PARTS}
    for class_id, part in enumerate(DEFAULT_PARTS, start=1):
        assert (mask[labels == class_id] == colors[part]).all()
    assert (mask[labels == 0] == 0).all()  # skin is not among the chosen parts


def test_index_mask_holds_class_ids_in_parts_order(tree):
    np.testing.assert_array_equal(masks.make_mask(tree, 0, DEFAULT_PARTS, "index"), expected_labels())
    order = ("u_lip", "l_eye")
    expected = np.zeros((SIZE, SIZE), dtype=np.uint8)
    expected[U_LIP > 0] = 1
    expected[L_EYE > 0] = 2
    np.testing.assert_array_equal(masks.make_mask(tree, 0, order, "index"), expected)


def test_overlap_later_part_wins(tree):
    default = masks.make_mask(tree, 0, DEFAULT_PARTS, "index")
    assert (default[5, 2:6] == 4).all()  # l_lip painted after u_lip
    swapped = masks.make_mask(tree, 0, ("l_eye", "r_eye", "l_lip", "u_lip"), "index")
    assert (swapped[5, 2:6] == 4).all() and swapped[5, 2] == 4  # u_lip is class 4 here and wins
    np.testing.assert_array_equal(swapped, expected_labels(("l_eye", "r_eye", "l_lip", "u_lip")))
    color = masks.make_mask(tree, 0, ("l_eye", "r_eye", "l_lip", "u_lip"), "color")
    assert tuple(color[5, 3]) == PART_COLORS["u_lip"]


def test_missing_part_file_means_absent_class(tree):
    mask = masks.make_mask(tree, 1, DEFAULT_PARTS, "index")
    np.testing.assert_array_equal(mask, expected_labels(hidden=("r_eye", "l_lip")))
    assert set(np.unique(mask)) == {0, 1, 3}


def test_threshold_and_rgb_annotation(tmp_path):
    root = tmp_path / "root"
    write_photo(root, 0)
    soft = np.zeros((4, 4), dtype=np.uint8)
    soft[0, :] = (127, 128, 200, 255)
    rgb = np.repeat(soft[..., None], 3, axis=-1)
    path = celebamask.part_path(root, 0, "l_eye")
    path.parent.mkdir(parents=True)
    Image.fromarray(rgb).save(path)
    mask = masks.make_mask(root, 0, DEFAULT_PARTS, "binary")
    assert mask[0].tolist() == [0, 255, 255, 255] and mask[1:].max() == 0


def test_run_writes_masks_at_annotation_size(tree, tmp_path):
    out = tmp_path / "masks"
    counts = masks.run_g_mask(tree, out, DEFAULT_PARTS, "index", workers=1)
    assert counts == {"written": 3, "skipped": 0, "failed": 0, "swapped_eyes": 0, "swapped_sides": 0, "no_part_file": 0}
    assert Image.open(out / "0.png").mode == "L"
    np.testing.assert_array_equal(np.asarray(Image.open(out / "0.png")), expected_labels())
    big = np.asarray(Image.open(out / "2.png"))
    assert big.shape == (64, 64) and (big[:16, 32:] == 1).all() and big.sum() == 16 * 32
    meta = json.loads((out / "masks.json").read_text())
    assert meta["parts"] == list(DEFAULT_PARTS) and meta["style"] == "index"
    assert meta["classes"] == ["background", *DEFAULT_PARTS]
    assert meta["palette"][2] == [2, 2, 2] and meta["source"] == str(tree)
    assert no_temp_files(out)


def test_colour_and_binary_outputs(tree, tmp_path):
    masks.run_g_mask(tree, tmp_path / "color", DEFAULT_PARTS, "color", workers=1)
    color = Image.open(tmp_path / "color" / "0.png")
    assert color.mode == "RGB" and color.size == (SIZE, SIZE)
    masks.run_g_mask(tree, tmp_path / "binary", DEFAULT_PARTS, "binary", workers=1)
    binary = np.asarray(Image.open(tmp_path / "binary" / "0.png"))
    np.testing.assert_array_equal(binary, np.where(expected_labels() > 0, 255, 0))


def test_photo_without_any_part_file_gets_a_background_mask(tree, tmp_path):
    write_photo(tree, 3)
    (celebamask.part_path(tree, 4, "skin").parent).mkdir(parents=True, exist_ok=True)
    write_part(tree, 4, "skin", SKIN)  # only a part we don't ask for: its size is used
    write_photo(tree, 4)
    out = tmp_path / "masks"
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "index", workers=1)["failed"] == 0
    assert np.asarray(Image.open(out / "3.png")).shape == masks.ANNOTATION_SIZE
    assert np.asarray(Image.open(out / "3.png")).max() == 0
    four = np.asarray(Image.open(out / "4.png"))
    assert four.shape == (SIZE, SIZE) and four.max() == 0


def test_unknown_part_lists_valid_names(tree, tmp_path, capsys):
    with pytest.raises(UserError, match="nose_ring.*l_eye,r_eye"):
        masks.run_g_mask(tree, tmp_path / "out", ("l_eye", "nose_ring"), "color")
    assert g_mask_main(["--data-dir", str(tree), "--out-dir", str(tmp_path / "out"), "--parts", "lips"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --parts: unknown part 'lips'") and ",".join(CELEBAMASK_PARTS) in err
    assert "\n" not in err


def test_up_to_date_skip_force_and_style_change(tree, tmp_path):
    out = tmp_path / "masks"
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "color", workers=1)["written"] == 3
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "color", workers=1) == {
        "written": 0, "skipped": 3, "failed": 0, "swapped_eyes": 0, "swapped_sides": 0, "no_part_file": 0}
    # A part file newer than its mask makes only that mask stale.
    past = celebamask.part_path(tree, 1, "u_lip").stat().st_mtime - 10
    os.utime(out / "1.png", (past, past))
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "color", workers=1)["written"] == 1
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "color", workers=1, force=True)["written"] == 3
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "index", workers=1)["written"] == 3
    assert Image.open(out / "0.png").mode == "L"
    assert json.loads((out / "masks.json").read_text())["style"] == "index"
    assert masks.run_g_mask(tree, out, ("u_lip", "l_lip"), "index", workers=1)["written"] == 3
    assert masks.run_g_mask(tree, out, ("u_lip", "l_lip"), "index", workers=1)["written"] == 0
    assert no_temp_files(out)


def test_limit_takes_the_first_ids(tree, tmp_path):
    out = tmp_path / "masks"
    assert g_mask_main(["--data_dir", str(tree), "--out_dir", str(out), "--limit", "2", "--workers", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "masks.json"]


def test_bad_photos_are_skipped_counted_and_named(tree, tmp_path, caplog):
    truncated = celebamask.part_path(tree, 1, "l_eye")
    truncated.write_bytes(truncated.read_bytes()[:20])
    odd_size = write_part(tree, 2, "u_lip", box(slice(0, 2), slice(0, 2)))  # 8x8 beside a 64x64 part
    write_photo(tree, 2001)  # its annotation folder CelebAMask-HQ-mask-anno/1 doesn't exist
    out = tmp_path / "masks"
    with caplog.at_level(logging.WARNING):
        counts = masks.run_g_mask(tree, out, DEFAULT_PARTS, "color", workers=1)
    assert counts == {"written": 1, "skipped": 0, "failed": 3, "swapped_eyes": 0, "swapped_sides": 0, "no_part_file": 0}
    warnings = caplog.text
    assert str(truncated) in warnings and str(odd_size) in warnings and "expected 64x64" in warnings
    assert str(tree / celebamask.ANNO_DIR / "1") in warnings and "folder not found" in warnings
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "masks.json"]
    assert g_mask_main(["--data-dir", str(tree), "--out-dir", str(out), "--workers", "1"]) == 1


def test_parallel_run_matches_in_process_run(tree, tmp_path):
    masks.run_g_mask(tree, tmp_path / "one", DEFAULT_PARTS, "color", workers=1)
    assert masks.run_g_mask(tree, tmp_path / "two", DEFAULT_PARTS, "color", workers=2)["written"] == 3
    for name in ("0.png", "1.png", "2.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "one" / name)),
                                      np.asarray(Image.open(tmp_path / "two" / name)))


def test_main_reports_missing_folders_in_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert g_mask_main(["--data-dir", str(missing), "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(missing) in err
    root = tmp_path / "photos_only"
    write_photo(root, 0)
    assert g_mask_main(["--data-dir", str(root), "--out-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and celebamask.ANNO_DIR in err and "folder not found" in err


def test_changed_style_removes_old_masks_beyond_limit(tree, tmp_path):
    out = tmp_path / "masks"
    masks.run_g_mask(tree, out, DEFAULT_PARTS, "color", workers=1)
    (out / "notes.png").write_bytes(b"not ours")  # not an <id>.png: left alone
    assert masks.run_g_mask(tree, out, DEFAULT_PARTS, "binary", workers=1, limit=1)["written"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "masks.json", "notes.png"]


def test_swapped_sides_are_counted_and_fix_sides_relabels_them_by_position(tree, tmp_path, caplog):
    # Photo 3 is annotated the wrong way round: l_eye and l_brow on the image's left.
    write_photo(tree, 3)
    write_part(tree, 3, "l_eye", R_EYE)
    write_part(tree, 3, "r_eye", L_EYE)
    write_part(tree, 3, "l_brow", box(slice(0, 1), slice(0, 3)))
    write_part(tree, 3, "r_brow", box(slice(0, 1), slice(5, 8)))
    parts = ("l_eye", "r_eye", "l_brow", "r_brow")
    with caplog.at_level(logging.WARNING):
        counts = masks.run_g_mask(tree, tmp_path / "plain", parts, "index", workers=1)
    assert (counts["swapped_eyes"], counts["swapped_sides"]) == (1, 1)
    assert "1 of 4 masks written" in caplog.text and "--fix-sides" in caplog.text
    plain = np.asarray(Image.open(tmp_path / "plain" / "3.png"))
    assert plain[1, 0] == 1 and plain[1, 7] == 2          # as annotated: l_eye on the image's left
    counts = masks.run_g_mask(tree, tmp_path / "fixed", parts, "index", workers=1, fix_sides=True)
    fixed = np.asarray(Image.open(tmp_path / "fixed" / "3.png"))
    assert fixed[1, 7] == 1 and fixed[1, 0] == 2          # relabelled: l_eye on the image's right
    assert fixed[0, 7] == 3 and fixed[0, 0] == 4          # and l_brow likewise
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "fixed" / "0.png")),
                                  np.asarray(Image.open(tmp_path / "plain" / "0.png")))  # right already
    assert json.loads((tmp_path / "fixed" / "masks.json").read_text())["fix_sides"] is True


def test_swapped_sides_compares_mean_columns_exactly():
    # l_eye's pixels at columns 2, 3 and 7 (mean 4), r_eye's at 4 (mean 4): equal means are not swapped;
    # one more r_eye pixel at column 5 puts r_eye right of l_eye (the l_ part on the image's left).
    left, right = np.zeros((3, 8), bool), np.zeros((3, 8), bool)
    left[0, [2, 3, 7]] = True
    right[1, 4] = True
    assert masks.swapped_sides({"l_eye": left, "r_eye": right}) == []
    right[2, 5] = True
    assert masks.swapped_sides({"l_eye": left, "r_eye": right}) == [("l_eye", "r_eye")]
    assert masks.swapped_sides({"l_eye": right, "r_eye": left}) == []
    assert masks.swapped_sides({"l_eye": left, "r_eye": np.zeros((3, 8), bool)}) == []  # an empty part: no side
