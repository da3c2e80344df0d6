"""The synthetic CelebAMask-HQ generator: layout, determinism, splits and what the faces contain."""

from __future__ import annotations

import hashlib
import logging
import re

import numpy as np
import pytest
from PIL import Image

from lipseg_tf.cli.common import run
from lipseg_tf.prep import celebamask, sample
from lipseg_tf.prep.parts import CELEBAMASK_PARTS
from lipseg_tf.tools.sample import main as sample_main

FACE_PARTS = ("l_eye", "r_eye", "u_lip", "l_lip", "mouth", "nose", "l_brow", "r_brow")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    counts = sample.generate(root, count=8, seed=3, size=128, workers=1)
    return root, counts


def centroid_x(mask: np.ndarray) -> float:
    return float(np.nonzero(mask)[1].mean())


def test_layout_photos_and_annotations(dataset):
    root, counts = dataset
    assert sorted(p.name for p in (root / celebamask.IMAGE_DIR).iterdir()) == sorted(f"{i}.jpg" for i in range(8))
    assert celebamask.find_image_ids(root) == list(range(8))
    for i in range(8):
        with Image.open(celebamask.image_path(root, i)) as photo:
            assert photo.format == "JPEG" and photo.mode == "RGB" and photo.size == (128, 128)
    anno = root / celebamask.ANNO_DIR
    assert [p.name for p in anno.iterdir()] == ["0"]
    names = sorted(p.name for p in (anno / "0").iterdir())
    pattern = re.compile(r"^(\d{5})_(" + "|".join(CELEBAMASK_PARTS) + r")\.png$")
    assert names and all(pattern.match(n) for n in names), names
    for name in names:
        with Image.open(anno / "0" / name) as mask:
            assert mask.mode == "L" and mask.size == (512, 512)
            values = set(np.unique(np.asarray(mask)).tolist())
        assert values <= {0, 255} and 255 in values, (name, values)
    for i in range(8):
        parts = {pattern.match(n).group(2) for n in names if n.startswith(f"{i:05d}_")}
        assert {"skin", "u_lip", "l_lip", "nose"} <= parts
        # eyes, or sunglasses hiding them: never both
        assert ({"l_eye", "r_eye"} <= parts) != ("eye_g" in parts), (i, parts)
    # no temporary files left behind by the atomic writes
    assert not [p for p in root.rglob(".tmp-*")]


def test_mapping_file_and_synthetic_note(dataset):
    root, counts = dataset
    lines = (root / celebamask.MAPPING_FILE).read_text().splitlines()
    assert lines[0] == "idx orig_idx orig_file"
    assert len(lines) == 9
    mapping = celebamask.read_mapping(root / celebamask.MAPPING_FILE)
    assert sorted(mapping) == list(range(8))
    for orig_idx, orig_file in mapping.values():
        assert orig_file == f"{orig_idx + 1:06d}.jpg"
    splits = celebamask.official_splits(root, range(8))
    assert {s: list(splits.values()).count(s) for s in celebamask.SPLITS} == counts
    assert counts == {"train": 6, "val": 1, "test": 1}
    note = (root / "SYNTHETIC.txt").read_text()
    assert celebamask.is_synthetic(root)
    assert "SYNTHETIC" in note and "lipseg_tf.tools.sample" in note and "--seed 3" in note and "--count 8" in note


def test_mapping_rows_split_near_80_10_10():
    rows = sample.mapping_rows(50, seed=0)
    assert [r[0] for r in rows] == list(range(50))
    orig = [r[1] for r in rows]
    assert len(set(orig)) == 50 and all(0 <= o < sample.CELEBA_TOTAL for o in orig)
    assert all(f == f"{o + 1:06d}.jpg" for _, o, f in rows)
    assert sample.split_counts(rows) == {"train": 40, "val": 5, "test": 5}
    splits = [celebamask.split_of_celeba_number(o + 1) for o in orig]
    assert set(splits[:40]) != {"train"}, "splits must be interleaved, not the first 80% all train"
    assert sample.mapping_rows(50, seed=0) == rows
    assert sample.mapping_rows(50, seed=1) != rows
    assert sample.split_counts(sample.mapping_rows(600, 0)) == {"train": 480, "val": 60, "test": 60}
    assert sample.split_counts(sample.mapping_rows(3, 0)) == {"train": 1, "val": 1, "test": 1}
    assert sample.split_counts(sample.mapping_rows(1, 0)) == {"train": 1, "val": 0, "test": 0}


def test_same_seed_same_bytes_other_seed_differs_workers_and_count_do_not_matter(tmp_path):
    a, b, c, d = (tmp_path / n for n in "abcd")
    sample.generate(a, count=3, seed=7, size=64, workers=1)
    sample.generate(b, count=3, seed=7, size=64, workers=2)
    sample.generate(c, count=3, seed=8, size=64, workers=1)
    sample.generate(d, count=2, seed=7, size=64, workers=1)
    for i in range(3):
        assert celebamask.image_path(a, i).read_bytes() == celebamask.image_path(b, i).read_bytes()
        assert celebamask.part_path(a, i, "u_lip").read_bytes() == celebamask.part_path(b, i, "u_lip").read_bytes()
        assert celebamask.image_path(a, i).read_bytes() != celebamask.image_path(c, i).read_bytes()
    assert celebamask.part_path(a, 0, "skin").read_bytes() != celebamask.part_path(c, 0, "skin").read_bytes()
    # a smaller count gives the same first faces
    for i in range(2):
        assert celebamask.image_path(a, i).read_bytes() == celebamask.image_path(d, i).read_bytes()
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())


# sha256 of the photo and of every mask (parts in name order) of faces drawn by render_face. They pin its
# output pixel for pixel, so a change meant to be a pure refactoring provably changes nothing; a change
# to the drawing must update them on purpose and say why. Last change: l_eye, l_brow and l_ear moved to
# the image's right (CelebAMask-HQ's side) with the same pixels, so only the part names changed. Faces
# 0-15 of seed 3 include sunglasses, open mouths and faces without hair; the 256 px face draws at 2x
# supersampling, the others at 4x.
GOLDEN_FACES = {  # (seed, image_id, size, sunglasses, open_mouth): digest
    (3, 0, 48, None, None): "db2783cf28280255c2d79854b5598ee97088b2467aab84358659a817f28ceb0e",
    (3, 1, 48, None, None): "3cd9eb842a3f6021587ae611991722f979ad825e430494fcd1443f6504c6ac84",
    (3, 2, 48, None, None): "53bca628a55279a4e2987628a6b512e18800e9244bb393ad6d0be63fa9212856",
    (3, 3, 48, None, None): "806712c135b0c840c75616cde8ed01eff6238117c4aa4786a2fff88061e00e98",
    (3, 4, 48, None, None): "38eb131859e1146f810a713676509ea5968c87455f6343591b522ab68e519cca",
    (3, 5, 48, None, None): "a15791036ca6411cef7e669d8e866f8255e2021853ce914c2bbce9ead86501fc",
    (3, 6, 48, None, None): "7981dce7cedad56bc93fa91e46c7ef04570fee0787892ba501ec38362f9ce459",
    (3, 7, 48, None, None): "b4dd6d28142bb2499d2cb014c21737273aa3295856e2469c3660d8d754887d9f",
    (3, 8, 48, None, None): "ca33cbc9cc49ae66863babb091a97a1ab3709ea66b0dfeafb660301f27aeca16",
    (3, 9, 48, None, None): "02d2922be85f6ec4b9e28984707df381ac794eda06533beb087032758fcb97dd",
    (3, 10, 48, None, None): "cecf02e94a47f0b30e37951d4d39731a3896c5ba1d1aae8c18459d01ba48e36d",
    (3, 11, 48, None, None): "649baf5f7b37a89d2c7b062600008c35a3ae51b0d65baab8f0bc974d938f37aa",
    (3, 12, 48, None, None): "964d1241fffac23500c02cb411ce6a3a9359df5b2505eeffb4ba12f2bf787438",
    (3, 13, 48, None, None): "27d39a5a1d7ffd58efe1b3606ac27115cb84b66ffb443d9e4aec21eda1173058",
    (3, 14, 48, None, None): "57a98dba625f44a32a0ac6a306e13ef7f0de3992a403a77b3de3c8c312964c3f",
    (3, 15, 48, None, None): "63435a99f121c0d0e31d9b84ce14a4fb73a672de62ef15bab5ff1a968dce3066",
    (3, 0, 256, None, None): "ff83fe8d52982e3be880f057b30a796a6b40fa5abc871e13572c343d30c78777",
    (7, 1, 48, True, True): "923729f6e943a94485071bb2724a994ba72a5cdc6635aed61412b8939b7c44b8",
    (7, 2, 48, False, False): "78d667e628670489786edd2f661599b559aed55352cd97540b41603987e29b3b",
}


def face_digest(photo: np.ndarray, masks: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256(photo.tobytes())
    for part in sorted(masks):
        digest.update(part.encode())
        digest.update(masks[part].tobytes())
    return digest.hexdigest()


@pytest.mark.parametrize("face", list(GOLDEN_FACES))
def test_render_face_output_is_pinned(face):
    seed, image_id, size, sunglasses, open_mouth = face
    photo, masks = sample.render_face(seed, image_id, size, sunglasses=sunglasses, open_mouth=open_mouth)
    assert face_digest(photo, masks) == GOLDEN_FACES[face]


def test_masks_do_not_depend_on_photo_size():
    photo_small, masks_small = sample.render_face(11, 4, size=64)
    photo_big, masks_big = sample.render_face(11, 4, size=160)
    assert photo_small.shape == (64, 64, 3) and photo_big.shape == (160, 160, 3)
    assert masks_small.keys() == masks_big.keys()
    for part in masks_small:
        assert np.array_equal(masks_small[part], masks_big[part]), part


def test_sunglasses_hide_the_eyes():
    for image_id in range(3):
        _, masks = sample.render_face(2, image_id, size=64, sunglasses=True)
        assert "eye_g" in masks and "l_eye" not in masks and "r_eye" not in masks
        _, masks = sample.render_face(2, image_id, size=64, sunglasses=False)
        assert "eye_g" not in masks and "l_eye" in masks and "r_eye" in masks
    # left to chance, some of 40 faces wear them (about 12%), most do not
    with_glasses = sum("eye_g" in sample.render_face(0, i, size=32)[1] for i in range(40))
    assert 1 <= with_glasses <= 12


def test_open_mouth_has_interior_between_the_lips():
    _, masks = sample.render_face(4, 1, size=64, open_mouth=True)
    mouth = masks["mouth"] > 0
    lips = (masks["u_lip"] > 0) | (masks["l_lip"] > 0)
    assert mouth.sum() > 20 and not (mouth & lips).any()
    rows = np.nonzero(mouth)[0].mean()
    assert np.nonzero(masks["u_lip"])[0].mean() < rows < np.nonzero(masks["l_lip"])[0].mean()
    _, masks = sample.render_face(4, 1, size=64, open_mouth=False)
    assert "mouth" not in masks


@pytest.mark.parametrize("image_id", range(6))
def test_face_geometry(image_id):
    photo, masks = sample.render_face(9, image_id, size=128, sunglasses=False, open_mouth=False)
    binary = {k: v > 0 for k, v in masks.items()}
    # l_eye is the person's left eye: on the image's right, as in CelebAMask-HQ; the same for brows and ears
    assert centroid_x(binary["l_eye"]) > centroid_x(binary["r_eye"])
    assert centroid_x(binary["l_brow"]) > centroid_x(binary["r_brow"])
    if "l_ear" in binary and "r_ear" in binary:
        assert centroid_x(binary["l_ear"]) > centroid_x(binary["r_ear"])
    # eyes, lips (and the other inner parts) lie inside the face
    for part in FACE_PARTS:
        if part in binary:
            assert not (binary[part] & ~binary["skin"]).any(), part
    # upper lip above the lower lip, eyes above the lips; parts do not overlap
    rows = {k: np.nonzero(v)[0].mean() for k, v in binary.items()}
    assert rows["l_eye"] < rows["u_lip"] < rows["l_lip"] and rows["r_eye"] < rows["u_lip"]
    assert not (binary["u_lip"] & binary["l_lip"]).any()
    assert not (binary["l_eye"] & binary["r_eye"]).any()
    # in the photo, the lips are not skin-coloured (at least a little different)
    small = {k: np.asarray(Image.fromarray(v).resize((128, 128), Image.NEAREST)) > 0 for k, v in masks.items()}
    lips = small["u_lip"] | small["l_lip"]
    bare_skin = small["skin"] & ~np.logical_or.reduce([v for k, v in small.items() if k != "skin"])
    assert lips.sum() > 20 and bare_skin.sum() > 200
    difference = np.abs(photo[lips].mean(0) - photo[bare_skin].mean(0)).max()
    assert difference > 2.0
    assert photo[lips].std() > 0.5  # shaded and noisy, not one flat colour


def test_faces_vary():
    masks = [sample.render_face(1, i, size=32)[1] for i in range(6)]
    widths = [np.ptp(np.nonzero(m["skin"])[1]) for m in masks]
    assert max(widths) - min(widths) > 15
    lip_rows = [np.nonzero(m["u_lip"])[0].mean() for m in masks]
    assert len(set(np.round(lip_rows))) > 3


def test_main_writes_and_logs(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="lipseg_tf"):
        assert sample_main(["--out", str(tmp_path / "d"), "--count", "2", "--seed", "1", "--size", "48",
                            "--workers", "1"]) == 0
    assert celebamask.image_path(tmp_path / "d", 1).is_file()
    assert "wrote 2 synthetic faces (train/val/test 2/0/0)" in caplog.text


@pytest.mark.parametrize("argv", [["--count", "0"], ["--count", "2", "--seed", "-1"],
                                  ["--count", "2", "--size", "8"], ["--count", "2", "--workers", "0"]])
def test_bad_arguments_are_user_errors(tmp_path, capsys, argv):
    assert run(sample_main, ["--out", str(tmp_path / "d")] + argv) == 1
    assert capsys.readouterr().err.startswith("error: --")


def test_out_must_be_a_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert run(sample_main, ["--out", str(tmp_path / "file"), "--count", "1"]) == 1
    assert "not a folder" in capsys.readouterr().err
