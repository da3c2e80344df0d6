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
# to the drawing must update them on purpose and say why. Faces 0-15 of seed 3 include sunglasses, open
# mouths and faces without hair; the 256 px face draws at 2x supersampling, the others at 4x.
GOLDEN_FACES = {  # (seed, image_id, size, sunglasses, open_mouth): digest
    (3, 0, 48, None, None): "a2b9188b05fe489001df5d55c39f095d4ec196919055b385b65419f02b3fbec4",
    (3, 1, 48, None, None): "83123233f9d2764eccadfee25992f479b9fd76d7cc6903209ee16885c52447db",
    (3, 2, 48, None, None): "849dfad97a5bcb09c701a7a30a8535d20cbb318044084e46898f86d5aef34a93",
    (3, 3, 48, None, None): "574603c9ed2f00e82a548fc3f5d1282f5d6460b88174f75d61cc38b04d42f560",
    (3, 4, 48, None, None): "67309bcb643d702aaa7cbd2494250e72def2055d2994dc9ab234d5df4d98b96a",
    (3, 5, 48, None, None): "473c27d5e9d1d031bf753fcff817e99b9a69fdf6d90e68d40a2daf8cdffd9292",
    (3, 6, 48, None, None): "a147396aee88609e6e1060ab5cd432cd65c8d56cebeb5588134ca60d12d74b21",
    (3, 7, 48, None, None): "bf8e4e72c7a4764b4b8bee2a000b5b464573a42a5d99073998ebb7e8daa06c67",
    (3, 8, 48, None, None): "4791d38f9bc043f6bcdcc23462a969be670683c37635a6e40c4621b99eef933f",
    (3, 9, 48, None, None): "1313d0e61cf916041693abea5af92557449ce4d1b14d1313cb37f44470e3cf8e",
    (3, 10, 48, None, None): "c8c9e1351159bf3b3f3c6a0b0b3a7719831676eed04fe65d60a46963bba3207f",
    (3, 11, 48, None, None): "bb89329069e8669cb68f872a21c27de8f641e8b0535f4a872891bb73e3ae3581",
    (3, 12, 48, None, None): "13d70fe2a2732bfc82df33463ce585fe05a0e0c8c545aaa1094a7a3ca22f8c92",
    (3, 13, 48, None, None): "ccc0c287cc2267665a54f1187ef948aec556b512700924d16aae911f2caae0b1",
    (3, 14, 48, None, None): "206e61d33d8101c5292d50eaf67ac2d87d59ccfc0b997fbd0d15382ff40afef5",
    (3, 15, 48, None, None): "e27cb65b986b509f6c46f73fe842d2813bdcbadb5ee843d4c18d44c28535fc27",
    (3, 0, 256, None, None): "72c2778baf319e5f55cd12b9c059b26a2d667e05a00c3ab24aeee5e72b682ca3",
    (7, 1, 48, True, True): "0e3ff26a85be657b2a1dc53ff1874cb7634d1ab88fa46974eb02534cd6db2392",
    (7, 2, 48, False, False): "688e10012da53cafaf4a013ba2f5304eca3bf8d66e8c650168aeb15d65444423",
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
    # l_eye is the eye on the image's left
    assert centroid_x(binary["l_eye"]) < centroid_x(binary["r_eye"])
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
