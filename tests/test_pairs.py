"""process: photo + mask -> AB pairs in train/val/test, on tiny hand-made folders."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipseg_tf.cli.g_mask import main as g_mask_main
from lipseg_tf.cli.process import main as process_main
from lipseg_tf.errors import UserError
from lipseg_tf.prep import celebamask, masks, pairs, splits
from lipseg_tf.prep.parts import DEFAULT_PARTS, palette

SIZE = 16


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def random_photo(rng, height=32, width=32) -> np.ndarray:
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def random_label_mask(rng, height, width, parts=DEFAULT_PARTS) -> np.ndarray:
    """A colour mask with every pixel a random class: the worst case for interpolation."""
    return palette(parts, "color")[rng.integers(0, len(parts) + 1, (height, width))]


def colour_set(image: np.ndarray) -> set:
    return set(map(tuple, image.reshape(-1, image.shape[-1]).tolist()))


def write_mapping(root: Path, rows: dict[int, int]) -> Path:
    """CelebA-HQ-to-CelebA-mapping.txt: {idx: orig_idx}."""
    lines = ["idx         orig_idx  orig_file"]
    lines += [f"{idx} {orig} {orig + 1:06d}.jpg" for idx, orig in rows.items()]
    path = root / celebamask.MAPPING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def celeba(tmp_path) -> tuple[Path, Path]:
    """A CelebAMask-HQ root with photos 0..3 (64x64) and a mask folder of 32x32 colour masks + masks.json."""
    rng = np.random.default_rng(0)
    root, mask_dir = tmp_path / "CelebAMask-HQ", tmp_path / "masks"
    for image_id in range(4):
        save(celebamask.image_path(root, image_id), random_photo(rng, 64, 64))
        save(mask_dir / f"{image_id}.png", random_label_mask(rng, 32, 32))
    meta = masks.mask_meta(root, DEFAULT_PARTS, "color")
    (mask_dir / masks.META_FILE).write_text(json.dumps(meta))
    return root, mask_dir


@pytest.fixture
def folders(tmp_path) -> tuple[Path, Path]:
    """Plain folders: photos a, b, c; masks for a and b only, plus an orphan mask z."""
    rng = np.random.default_rng(1)
    images, mask_dir = tmp_path / "images", tmp_path / "masks"
    for stem in "abc":
        save(images / f"{stem}.jpg", random_photo(rng))
    for stem in "abz":
        save(mask_dir / f"{stem}.png", np.where(rng.random((32, 32)) > 0.5, 255, 0).astype(np.uint8))
    return images, mask_dir


def test_make_pair_round_trip_adds_no_label_values():
    rng = np.random.default_rng(2)
    photo = random_photo(rng, 40, 40)
    for mask_side in (7, 37, 300):  # upscaled and downscaled
        mask = random_label_mask(rng, mask_side, mask_side)
        ab = pairs.make_pair(photo, mask, SIZE)
        assert ab.shape == (SIZE, 2 * SIZE, 3) and ab.dtype == np.uint8
        image, pair_mask = pairs.split_pair(ab)
        expected = np.asarray(Image.fromarray(photo).resize((SIZE, SIZE), Image.Resampling.LANCZOS))
        np.testing.assert_array_equal(image, expected)
        assert colour_set(pair_mask) <= colour_set(mask)


def test_make_pair_grey_mask_repeats_to_rgb():
    labels = np.arange(25, dtype=np.uint8).reshape(5, 5) % 5
    ab = pairs.make_pair(np.zeros((10, 10, 3), np.uint8), labels, 10)
    _, mask = pairs.split_pair(ab)
    assert (mask[..., 0] == mask[..., 1]).all() and (mask[..., 0] == mask[..., 2]).all()
    assert set(np.unique(mask)) <= set(range(5))
    np.testing.assert_array_equal(mask[::2, ::2, 0], labels)


def test_make_pair_center_crops_non_square_inputs():
    photo = np.zeros((20, 40, 3), np.uint8)
    photo[:, 10:30] = (0, 255, 0)  # the central square is green, the sides black
    mask = np.zeros((10, 20), np.uint8)
    mask[:, 5:15] = 3
    image, label = pairs.split_pair(pairs.make_pair(photo, mask, 8))
    assert (image == (0, 255, 0)).all() and (label == 3).all()
    with pytest.raises(UserError, match="aspect ratio"):
        pairs.make_pair(photo, np.zeros((20, 20), np.uint8), 8)


def test_make_pair_crop_keeps_the_box_of_photo_and_mask():
    photo = np.zeros((40, 40, 3), np.uint8)
    photo[10:40, 2:38] = (255, 0, 0)      # red around the box x 0.25..0.75, y 0.5..1 (Lanczos reads past it)
    mask = np.zeros((20, 20), np.uint8)   # the mask at half the photo's size, as CelebAMask-HQ's are
    mask[10:20, 5:15] = 2
    mask[15:20, 5:10] = 4                 # the box's bottom-left quarter is class 4
    image, label = pairs.split_pair(pairs.make_pair(photo, mask, 10, crop=(0.25, 0.5, 0.5)))
    assert (image == (255, 0, 0)).all()
    assert (label[5:, :5] == 4).all() and (label[:5] == 2).all() and (label[5:, 5:] == 2).all()
    assert (pairs.make_pair(photo, mask, 10, crop=(0, 0, 1)) == pairs.make_pair(photo, mask, 10)).all()


@pytest.mark.parametrize("text", ["0.2,0.36", "a,b,c", "0.5,0.5,0.6", "0,0,0", "-0.1,0,0.5"])
def test_parse_crop_refuses_boxes_outside_the_photo(text):
    with pytest.raises(UserError, match="--crop"):
        pairs.parse_crop(text)


def test_crop_is_recorded_and_a_new_crop_rewrites_every_pair(celeba, tmp_path):
    root, mask_dir = celeba
    out = tmp_path / "pairs"
    kwargs = dict(data_dir=root, size=SIZE, workers=1, split="1,0,0")
    assert pairs.run_process(out, mask_dir, **kwargs)["written"] == 4
    assert "crop" not in json.loads((out / "pairs.json").read_text())
    assert pairs.run_process(out, mask_dir, **kwargs, crop=(0.25, 0.25, 0.5))["written"] == 4
    assert json.loads((out / "pairs.json").read_text())["crop"] == [0.25, 0.25, 0.5]
    assert pairs.run_process(out, mask_dir, **kwargs, crop=(0.25, 0.25, 0.5))["skipped"] == 4


def test_assign_splits_is_seeded_and_checks_fractions():
    ids = list(range(10))
    assigned = splits.assign_splits(ids, (0.8, 0.1, 0.1), seed=3)
    assert sorted(assigned) == ids
    assert [list(assigned.values()).count(s) for s in ("train", "val", "test")] == [8, 1, 1]
    assert assigned == splits.assign_splits(reversed(ids), (0.8, 0.1, 0.1), seed=3)
    assert assigned != splits.assign_splits(ids, (0.8, 0.1, 0.1), seed=4)
    with pytest.raises(UserError, match="summing to 1"):
        splits.assign_splits(ids, (0.8, 0.1, 0.2))
    with pytest.raises(UserError, match="three numbers"):
        splits.parse_fractions("0.8,x,0.1")


def test_official_split_from_mapping(celeba, tmp_path):
    root, mask_dir = celeba
    # orig_idx is 0-based: +1 gives the CelebA number; train <= 162770 < val <= 182637 < test.
    write_mapping(root, {0: 0, 1: 162769, 2: 162770, 3: 182637})
    out = tmp_path / "pairs"
    counts = pairs.run_process(out, mask_dir, data_dir=root, size=SIZE, workers=1)
    assert counts["written"] == 4 and counts["splits"] == {"train": 2, "val": 1, "test": 1}
    assert sorted(p.name for p in (out / "train").iterdir()) == ["0.png", "1.png"]
    assert [p.name for p in (out / "val").iterdir()] == ["2.png"]
    assert [p.name for p in (out / "test").iterdir()] == ["3.png"]
    ab = Image.open(out / "train" / "0.png")
    assert ab.mode == "RGB" and ab.size == (2 * SIZE, SIZE)
    meta = json.loads((out / "pairs.json").read_text())
    assert meta["style"] == "color" and meta["parts"] == list(DEFAULT_PARTS) and meta["size"] == SIZE
    assert meta["splits"] == {"train": 2, "val": 1, "test": 1}
    assert meta["palette"] == palette(DEFAULT_PARTS, "color").tolist()
    # Masks stay exact label colours after resizing.
    _, mask = pairs.split_pair(np.asarray(ab))
    assert colour_set(mask) <= set(map(tuple, meta["palette"]))


def test_mapping_missing_a_row_is_an_error_naming_the_file(celeba, tmp_path, capsys):
    root, mask_dir = celeba
    mapping = write_mapping(root, {0: 0, 1: 1, 3: 3})
    with pytest.raises(UserError, match="image id 2"):
        pairs.run_process(tmp_path / "pairs", mask_dir, data_dir=root, size=SIZE, workers=1)
    args = ["--data-dir", str(root), "--masks", str(mask_dir), "--out-dir", str(tmp_path / "pairs")]
    assert process_main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(mapping) in err and "image id 2" in err


def test_without_mapping_a_seeded_random_split_is_used(celeba, tmp_path, caplog):
    root, mask_dir = celeba
    with caplog.at_level(logging.WARNING):
        counts = pairs.run_process(tmp_path / "pairs", mask_dir, data_dir=root, size=SIZE, workers=1)
    assert "official split not available" in caplog.text
    assert sum(counts["splits"].values()) == 4
    expected = splits.assign_splits(range(4), (0.8, 0.1, 0.1), 0)
    for image_id, split in expected.items():
        assert (tmp_path / "pairs" / split / f"{image_id}.png").is_file()


def test_up_to_date_pairs_are_skipped_and_a_new_split_moves_them(celeba, tmp_path):
    root, mask_dir = celeba
    out = tmp_path / "pairs"
    kwargs = dict(data_dir=root, size=SIZE, workers=1, split="0.5,0.5,0")
    assert pairs.run_process(out, mask_dir, **kwargs)["written"] == 4
    again = pairs.run_process(out, mask_dir, **kwargs)
    assert again["written"] == 0 and again["skipped"] == 4
    assert pairs.run_process(out, mask_dir, **kwargs, force=True)["written"] == 4
    assert pairs.run_process(out, mask_dir, **{**kwargs, "size": 8})["written"] == 4
    assert Image.open(next((out / "train").iterdir())).size == (16, 8)
    # Another split: each pair must end up in exactly one split folder.
    pairs.run_process(out, mask_dir, **{**kwargs, "split": "0,0,1", "size": 8})
    assert not list((out / "train").iterdir()) and len(list((out / "test").iterdir())) == 4
    assert not any(p.name.startswith(".tmp-") for p in out.rglob("*"))


def test_folder_mode_photo_without_mask_is_skipped_and_counted(folders, tmp_path, caplog):
    images, mask_dir = folders
    out = tmp_path / "pairs"
    with caplog.at_level(logging.WARNING):
        counts = pairs.run_process(out, mask_dir, images_dir=images, size=SIZE, split="1,0,0", seed=5,
                                   workers=1)
    # No masks.json: the default style and parts, which these white masks are not (issue 19 §4).
    meta = json.loads((out / "pairs.json").read_text())
    assert meta["style"] == "color" and meta["parts"] == list(DEFAULT_PARTS)
    assert counts["written"] == 0 and counts["failed"] == 2 and list((out / "train").iterdir()) == []
    assert f"{mask_dir / 'a.png'}: 100.0% of the mask's part pixels" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        counts = pairs.run_process(out, mask_dir, images_dir=images, size=SIZE, split="1,0,0", seed=5,
                                   workers=1, style="binary")
    assert counts["written"] == 2 and counts["missing_mask"] == 1 and counts["unmatched_masks"] == 1
    assert str(images / "c.jpg") in caplog.text
    assert sorted(p.name for p in (out / "train").iterdir()) == ["a.png", "b.png"]
    _, mask = pairs.split_pair(np.asarray(Image.open(out / "train" / "a.png")))
    assert colour_set(mask) <= {(0, 0, 0), (255, 255, 255)}
    args = ["--images", str(images), "--masks", str(mask_dir), "--out-dir", str(out), "--workers", "1",
            "--style", "binary", "--parts", "u_lip,l_lip"]
    assert process_main(args) == 1  # c.jpg still has no mask
    meta = json.loads((out / "pairs.json").read_text())
    assert meta["style"] == "binary" and meta["classes"] == ["background", "u_lip+l_lip"]


def test_photos_of_any_mode_are_converted(tmp_path):
    images, mask_dir, out = tmp_path / "images", tmp_path / "masks", tmp_path / "pairs"
    save(images / "grey.png", np.full((8, 8), 100, np.uint8))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[...] = (10, 20, 30, 255)
    save(images / "rgba.png", rgba)
    save(images / "deep.png", np.full((8, 8), 100 * 257, np.uint16))
    for stem in ("grey", "rgba", "deep"):
        save(mask_dir / f"{stem}.png", np.zeros((8, 8), np.uint8))
    counts = pairs.run_process(out, mask_dir, images_dir=images, size=4, split="1,0,0", workers=1)
    assert counts["written"] == 3 and counts["failed"] == 0
    left = {stem: pairs.split_pair(np.asarray(Image.open(out / "train" / f"{stem}.png")))[0]
            for stem in ("grey", "rgba", "deep")}
    assert (left["grey"] == 100).all() and (left["deep"] == 100).all()
    assert (left["rgba"] == (10, 20, 30)).all()


def test_truncated_jpeg_is_skipped_and_named(folders, tmp_path, caplog):
    images, mask_dir = folders
    broken = images / "b.jpg"
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING):
        counts = pairs.run_process(tmp_path / "pairs", mask_dir, images_dir=images, size=SIZE, workers=2,
                                   style="binary")
    assert counts["written"] == 1 and counts["failed"] == 1
    assert str(broken) in caplog.text


def test_main_reports_missing_folder_in_one_line(folders, tmp_path, capsys):
    images, mask_dir = folders
    missing = tmp_path / "no_masks"
    args = ["--images", str(images), "--masks", str(missing), "--out-dir", str(tmp_path / "pairs")]
    assert process_main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(missing) in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert process_main(["--data_dir", str(empty), "--masks", str(images), "--out_dir", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "folder not found" in err
    assert process_main(["--images", str(images), "--masks", str(mask_dir), "--out-dir", str(tmp_path / "p"),
                         "--split", "0.5,0.5,0.5"]) == 1
    assert "summing to 1" in capsys.readouterr().err


def test_g_mask_then_process_end_to_end(tmp_path):
    root = tmp_path / "CelebAMask-HQ"
    rng = np.random.default_rng(3)
    for image_id in (0, 1):
        save(celebamask.image_path(root, image_id), random_photo(rng, 32, 32))
        lips = np.zeros((16, 16), np.uint8)
        lips[10:12, 4:12] = 255
        save(celebamask.part_path(root, image_id, "u_lip"), lips)
    write_mapping(root, {0: 5, 1: 200000})
    mask_dir, out = tmp_path / "masks", tmp_path / "pairs"
    assert g_mask_main(["--data-dir", str(root), "--out-dir", str(mask_dir), "--style", "index",
                       "--workers", "1"]) == 0
    assert process_main(["--data-dir", str(root), "--masks", str(mask_dir), "--out-dir", str(out),
                         "--size", "8", "--workers", "1"]) == 0
    _, mask = pairs.split_pair(np.asarray(Image.open(out / "train" / "0.png")))
    assert set(np.unique(mask)) == {0, 3}  # u_lip is class 3 of the default parts
    assert (out / "test" / "1.png").is_file()
    meta = json.loads((out / "pairs.json").read_text())
    assert meta["style"] == "index" and meta["splits"] == {"train": 1, "val": 0, "test": 1}


def test_pair_of_a_deleted_mask_is_removed(celeba, tmp_path):
    root, mask_dir = celeba
    out = tmp_path / "pairs"
    pairs.run_process(out, mask_dir, data_dir=root, size=SIZE, workers=1, split="1,0,0")
    (mask_dir / "2.png").unlink()
    counts = pairs.run_process(out, mask_dir, data_dir=root, size=SIZE, workers=1, split="1,0,0")
    assert counts["missing_mask"] == 1 and counts["skipped"] == 3
    assert sorted(p.name for p in (out / "train").iterdir()) == ["0.png", "1.png", "3.png"]
    assert json.loads((out / "pairs.json").read_text())["splits"] == {"train": 3, "val": 0, "test": 0}
