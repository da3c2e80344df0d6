"""The bad-input catalogue (issues 11 and 19): every way a hostile user or a failing disk can hurt a run.

Each case asserts what the user sees and what is left behind: a refused run exits non-zero with one
`error:` line naming the file and no traceback; no input file changes (hashes before and after); nothing
half-written is left. A bad item inside a good run (an unreadable photo, a broken link) is warned about
and counted, and the rest of the run completes. The scripts run in-process through their main (the same
entry point the root scripts call), so the whole catalogue stays fast.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lipseg_tf.cli.g_mask import main as g_mask_main
from lipseg_tf.cli.predict import main as predict_main
from lipseg_tf.cli.process import main as process_main
from lipseg_tf.prep import celebamask, imageio, masks, pairs, sample
from lipseg_tf.prep.parts import DEFAULT_PARTS

COUNT = 6


# ------------------------------------------------------------------------------------------- helpers

def snapshot(*folders: Path) -> dict[str, str]:
    """{path: sha256 of the bytes, or where a link points} of every file and link under these folders."""
    found = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")) if Path(folder).is_dir() else [Path(folder)]:
            if path.is_symlink():
                found[str(path)] = "link -> " + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                found[str(path)] = "folder"
    return found


def one_error_line(capsys, alone: bool = True) -> str:
    """The single `error:` line on stderr, with nothing that looks like a traceback. alone: the only line;
    else the last, after the trainers' progress lines and TensorFlow's own C++ lines (`I0000 ...`, the
    machine's CUDA set-up, not this project's)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert not alone or len(lines) == 1, err
    return errors[0]


def refused(capsys, code: int, before: dict, *folders: Path, alone: bool = True) -> str:
    """Assert a refused run: status != 0, one error line, the inputs unchanged; return the line."""
    line = one_error_line(capsys, alone)
    assert code != 0
    assert snapshot(*folders) == before
    return line


def no_temp_files(folder: Path) -> bool:
    return not any(p.name.startswith(".tmp-") for p in Path(folder).rglob("*"))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A synthetic CelebAMask-HQ root (6 faces, 64 px) and its masks, made once; tests work on copies."""
    root = tmp_path_factory.mktemp("pristine")
    sample.generate(root / "data", COUNT, seed=3, size=64, workers=1)
    masks.run_g_mask(root / "data", root / "masks", workers=1)
    return root


@pytest.fixture
def work(pristine, tmp_path) -> Path:
    """A fresh copy of the pristine data and masks: tmp_path/data, tmp_path/masks."""
    for name in ("data", "masks"):
        shutil.copytree(pristine / name, tmp_path / name, symlinks=True)
    return tmp_path


def g_mask(work: Path, out: Path, *extra: str) -> int:
    return g_mask_main(["--data-dir", str(work / "data"), "--out-dir", str(out), "--workers", "1", *extra])


def process(work: Path, out: Path, *extra: str) -> int:
    return process_main(["--data-dir", str(work / "data"), "--masks", str(work / "masks"), "--out-dir", str(out),
                         "--size", "32", "--workers", "1", *extra])


def photo_folder(work: Path) -> Path:
    """The photos as a plain folder d/train/<id>.jpg, as a user may keep them."""
    folder = work / "d" / "train"
    shutil.copytree(work / "data" / celebamask.IMAGE_DIR, folder)
    return folder


# ---------------------------------------------------------------- 1. never destroy a user's file

def test_process_output_folder_holding_the_photos_is_refused(work, capsys):
    photos = photo_folder(work)
    before = snapshot(work)
    code = process_main(["--images", str(photos), "--masks", str(work / "masks"), "--out-dir", str(work / "d"),
                         "--size", "32", "--workers", "1"])
    line = refused(capsys, code, before, work)
    assert f"--out-dir {work / 'd'} holds --images {photos}" in line


def test_process_output_folder_inside_the_masks_is_refused(work, capsys):
    before = snapshot(work)
    line = refused(capsys, process(work, work / "masks" / "pairs"), before, work)
    assert "lies inside --masks" in line


def test_g_mask_into_the_photo_folder_is_refused(work, capsys):
    before = snapshot(work)
    code = g_mask(work, work / "data" / celebamask.IMAGE_DIR)
    line = refused(capsys, code, before, work)
    assert "lies inside --data-dir" in line


def test_g_mask_into_its_own_data_folder_is_refused(work, capsys):
    before = snapshot(work)
    assert "--out-dir" in refused(capsys, g_mask(work, work / "data"), before, work)


def test_predict_output_into_the_input_folder_is_refused(work, capsys):
    photos = photo_folder(work)
    before = snapshot(work)
    code = predict_main(["--model", str(work / "no-model"), "--input", str(photos), "--output", str(photos)])
    line = refused(capsys, code, before, work)
    assert f"--output {photos} is --input {photos}" in line


def test_predict_output_holding_the_input_photo_is_refused(work, capsys):
    photos = photo_folder(work)
    before = snapshot(work)
    code = predict_main(["--model", str(work / "no-model"), "--input", str(photos / "0.jpg"),
                         "--output", str(photos.parent)])
    assert "holds --input" in refused(capsys, code, before, work)


def test_process_leaves_a_folder_of_someone_elses_pngs_alone(work, capsys):
    theirs = work / "pairs" / "train" / "holiday.png"
    theirs.parent.mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(theirs)
    before = snapshot(work)
    line = refused(capsys, process(work, work / "pairs"), before, work)
    assert str(theirs) in line and "pairs.json" in line


def test_g_mask_leaves_a_folder_of_someone_elses_pngs_alone(work, capsys):
    theirs = work / "elsewhere" / "3.png"
    theirs.parent.mkdir()
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(theirs)
    before = snapshot(work)
    line = refused(capsys, g_mask(work, work / "elsewhere"), before, work)
    assert str(theirs) in line and "masks.json" in line


def test_a_settings_file_of_someone_else_does_not_make_a_folder_ours(work, capsys):
    out = work / "pairs"
    (out / "train").mkdir(parents=True)
    (out / "pairs.json").write_text('{"note": "my own pairs"}\n')
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(out / "train" / "mine.png")
    before = snapshot(work)
    assert str(out / "pairs.json") in refused(capsys, process(work, out), before, work)


def test_predict_leaves_someone_elses_mask_file_alone(work, capsys):
    photos = photo_folder(work)
    out = work / "results"
    out.mkdir()
    (out / "0-mask.png").write_bytes(b"their file")
    model = fake_model(work / "model", {"image_size": 32, "classes": ["background", "l_eye"],
                                        "colors": [[0, 0, 0], [0, 255, 0]]})
    before = snapshot(work)
    code = predict_main(["--model", str(model), "--input", str(photos / "0.jpg"), "--output", str(out)])
    assert str(out / "0-mask.png") in refused(capsys, code, before, work)


def test_process_deletes_only_its_own_pairs_when_settings_change(work, capsys):
    out = work / "pairs"
    assert process(work, out) == 0
    theirs = out / "notes.txt"
    theirs.write_text("mine")
    assert process(work, out, "--size", "16") == 0
    assert theirs.read_text() == "mine"
    assert {Image.open(p).size for p in out.rglob("*.png")} == {(32, 16)}


# ------------------------------------------------------------------------ 2. one line, never a traceback

@pytest.mark.parametrize("script", ["g_mask", "process", "predict"])
def test_output_path_that_is_a_file(work, capsys, script):
    target = work / "taken"
    target.write_text("a file")
    before = snapshot(work)
    if script == "predict":
        code = predict_main(["--model", str(fake_model(work / "model")), "--input", str(photo_folder(work)),
                             "--output", str(target)])
        before = snapshot(work)  # the photo folder is made above
    else:
        code = (g_mask if script == "g_mask" else process)(work, target)
    line = refused(capsys, code, before, work)
    assert str(target) in line and "exists and is not a folder" in line


@pytest.mark.parametrize("script", ["g_mask", "process"])
def test_output_path_under_a_file(work, capsys, script):
    target = work / "taken"
    target.write_text("a file")
    before = snapshot(work)
    code = (g_mask if script == "g_mask" else process)(work, target / "out")
    line = refused(capsys, code, before, work)
    assert str(target / "out") in line and "lies under a file" in line


@pytest.mark.parametrize("script", ["g_mask", "process"])
def test_read_only_output_folder(work, capsys, monkeypatch, script):
    out = work / "out"
    out.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == out else real_access(path, mode))
    monkeypatch.setattr(os, "statvfs", lambda path: os.statvfs_result((0,) * 8 + (os.ST_RDONLY, 255)))
    before = snapshot(work)
    code = (g_mask if script == "g_mask" else process)(work, out)
    line = refused(capsys, code, before, work)
    assert str(out) in line and "read-only" in line


@pytest.mark.parametrize("script", ["g_mask", "process"])
def test_no_space_left_is_one_line_and_leaves_no_temp_file(work, capsys, monkeypatch, script):
    real_replace = os.replace

    def full_disk(src, dst):
        if Path(dst).suffix == ".png":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(imageio.os, "replace", full_disk)
    before = snapshot(work / "data", work / "masks")
    out = work / "out"
    code = (g_mask if script == "g_mask" else process)(work, out)
    line = refused(capsys, code, before, work / "data", work / "masks")
    assert "No space left on device" in line and str(out) in line
    assert no_temp_files(out)


@pytest.mark.parametrize("content", ["[1, 2]", '"masks"', '{"parts": "l_eye", "style": "color"}'])
def test_masks_json_of_the_wrong_shape(work, capsys, content):
    (work / "masks" / masks.META_FILE).write_text(content)
    before = snapshot(work)
    line = refused(capsys, process(work, work / "pairs"), before, work)
    assert str(work / "masks" / masks.META_FILE) in line
    assert not (work / "pairs").exists() or not any((work / "pairs").rglob("*.png"))


def test_masks_json_of_the_wrong_shape_in_g_mask_output(work, capsys):
    (work / "masks" / masks.META_FILE).write_text("[]")
    before = snapshot(work)
    line = refused(capsys, g_mask(work, work / "masks"), before, work)
    assert str(work / "masks" / masks.META_FILE) in line and "expected an object" in line


def test_non_utf8_mapping_file(work, capsys):
    mapping = work / "data" / celebamask.MAPPING_FILE
    mapping.write_bytes(mapping.read_bytes().replace(b"orig_file", b"orig_\xe9file", 1))
    before = snapshot(work)
    line = refused(capsys, process(work, work / "pairs"), before, work)
    assert str(mapping) in line and "not UTF-8" in line


def test_non_utf8_partition_file(work, capsys):
    partition = work / "list_eval_partition.txt"
    partition.write_bytes(b"000001.jpg 0\n\xff\xfe 1\n")
    before = snapshot(work)
    line = refused(capsys, process(work, work / "pairs", "--partition", str(partition)), before, work)
    assert str(partition) in line and "not UTF-8" in line


# --------------------------------------------------------------------- 3. nothing used or dropped silently

def test_mapping_file_listing_an_id_twice_is_warned_and_counted(work, capsys):
    mapping = work / "data" / celebamask.MAPPING_FILE
    lines = mapping.read_text().splitlines()
    first = lines[1].split()
    lines.append(f"{first[0]} 199999 200000.jpg")   # the same photo again, now a test face
    mapping.write_text("\n".join(lines) + "\n")
    before = snapshot(work / "data", work / "masks")
    code = process(work, work / "pairs")
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"image id {first[0]} listed twice" in err and "1 unreadable" in err.splitlines()[-1]
    assert not list((work / "pairs").rglob(f"{first[0]}.png"))
    assert len(list((work / "pairs").rglob("*.png"))) == COUNT - 1
    assert snapshot(work / "data", work / "masks") == before


@pytest.mark.parametrize("kind", ["broken link", "folder", "FIFO"])
def test_part_file_that_is_not_a_file_is_warned_and_counted(work, capsys, kind):
    part = celebamask.part_path(work / "data", 2, "u_lip")
    part.unlink(missing_ok=True)
    if kind == "folder":
        part.mkdir()
    elif kind == "FIFO":
        os.mkfifo(part)
    else:
        part.symlink_to(work / "nowhere.png")
    before = snapshot(work / "data")
    code = g_mask(work, work / "out")
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    reason = {"folder": "folder", "FIFO": "a FIFO (named pipe)"}.get(kind, "broken symbolic link")
    assert str(part) in err and reason in err
    assert "1 of 6 photos failed" in err.splitlines()[-1]
    assert sorted(int(p.stem) for p in (work / "out").glob("*.png")) == [0, 1, 3, 4, 5]
    assert snapshot(work / "data") == before


@pytest.mark.parametrize("kind", ["broken link", "folder", "1x1"])
def test_photo_that_is_no_photo_is_warned_and_counted(work, capsys, kind):
    photos = photo_folder(work)
    bad = photos / "4.jpg"
    bad.unlink()
    if kind == "folder":
        bad.mkdir()
    elif kind == "broken link":
        bad.symlink_to(work / "nowhere.jpg")
    else:
        Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(bad, format="JPEG")
    before = snapshot(photos)
    code = process_main(["--images", str(photos), "--masks", str(work / "masks"), "--out-dir", str(work / "pairs"),
                         "--size", "32", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert str(bad) in err and "1 unreadable" in err.splitlines()[-1]
    assert len(list((work / "pairs").rglob("*.png"))) == COUNT - 1
    assert snapshot(photos) == before


@pytest.mark.parametrize("script", ["g_mask", "process"])
def test_restart_after_an_interruption_skips_what_was_finished(work, capsys, monkeypatch, script):
    out = work / "out"
    module, job_name = (masks, "_mask_job") if script == "g_mask" else (pairs, "_pair_job")
    real_job = getattr(module, job_name)
    done = []

    def interrupted(*args, **kwargs):
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(1)
        return real_job(*args, **kwargs)

    monkeypatch.setattr(module, job_name, interrupted)
    run = g_mask if script == "g_mask" else process
    assert run(work, out) == 130
    monkeypatch.setattr(module, job_name, real_job)
    capsys.readouterr()
    assert run(work, out) == 0
    summary = capsys.readouterr().err.splitlines()[-1]
    assert f"wrote {COUNT - 3} " in summary and "skipped 3 up to date" in summary
    meta = json.loads((out / (masks.META_FILE if script == "g_mask" else pairs.META_FILE)).read_text())
    assert meta["complete"] is True


def test_files_get_the_permissions_of_the_umask(work):
    old = os.umask(0o022)
    try:
        assert g_mask(work, work / "out") == 0
    finally:
        os.umask(old)
    modes = {stat.S_IMODE(p.stat().st_mode) for p in (work / "out").iterdir()}
    assert modes == {0o644}


# ------------------------------------------------------------------------------------------- predict

def fake_model(folder: Path, classes: dict | None = None, text: str | None = None) -> Path:
    """A folder that looks like an export: saved_model.pb (empty) and classes.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "saved_model.pb").write_bytes(b"")
    (folder / "classes.json").write_text(text if text is not None else json.dumps(classes or {}))
    return folder


@pytest.mark.parametrize("text, expected", [
    ('{"image_size": "256", "classes": ["background", "l_eye"], "colors": [[0, 0, 0], [0, 255, 0]]}',
     "'image_size' is \"256\", expected a JSON int"),
    ('["background", "l_eye"]', "expected an object"),
    ('{"image_size": 32, "classes": ["background", "l_eye"], "colors": [[0, 0, 0]]}', "one RGB colour per class"),
])
def test_classes_json_of_the_wrong_shape(work, capsys, text, expected):
    model = fake_model(work / "model", text=text)
    photos = photo_folder(work)
    before = snapshot(work)
    code = predict_main(["--model", str(model), "--input", str(photos), "--output", str(work / "results")])
    line = refused(capsys, code, before, work)
    assert str(model / "classes.json") in line and expected in line


@pytest.fixture(scope="module")
def tiny_exports(tmp_path_factory) -> dict[str, Path]:
    """An untrained U-Net (32 px, ngf 4, crop box, 'sample' framing) exported twice: "new" by export()
    (its graph holds its classes.json) and "old" as exports before issue 19 were (graph without it)."""
    import tensorflow as tf

    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.serve.savedmodel import Segmenter, export, write_classes
    from lipseg_tf.train.networks import build_unet

    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    segmenter = Segmenter(build_unet(classes.num_classes, 4, 2, 32), 32, classes, output="probabilities",
                          crop=(0.2, 0.3, 0.6))
    root = tmp_path_factory.mktemp("tiny-exports")
    old = root / "old"
    # Before 2026-12-01 an export's only signature took the crop box, and its graph held no classes.json.
    tf.saved_model.save(segmenter, str(old), signatures={"serving_default": segmenter.serve_crop})
    write_classes(old, classes, 32, "sample", (0.2, 0.3, 0.6))
    return {"new": export(segmenter, classes, root / "new", framing="sample"), "old": old}


def edited_model(tiny_exports, work: Path, edit, which: str = "new") -> Path:
    """A copy of a tiny export whose classes.json went through edit(meta) (which may change it in place)."""
    model = Path(shutil.copytree(tiny_exports[which], work / "model"))
    meta = json.loads((model / "classes.json").read_text())
    edit(meta)
    (model / "classes.json").write_text(json.dumps(meta))
    return model


def _set(**fields):
    return lambda meta: meta.update(fields)


def _colour(index, value):
    return lambda meta: meta["colors"][index].__setitem__(0, value)


CLASSES_JSON_EDITS = {
    "3 classes": (lambda m: m.update(classes=m["classes"][:3], colors=m["colors"][:3]),
                  "'classes' lists 3 classes but the model outputs 5"),
    "7 classes": (lambda m: m.update(classes=m["classes"] + ["nose", "mouth"], colors=m["colors"] + [[1, 2, 3]] * 2),
                  "'classes' lists 7 classes but the model outputs 5"),
    "colour 300": (_colour(1, 300), "colour 1 in 'colors' is [300, 255, 0], expected [r, g, b] of whole numbers 0-255"),
    "colour -1": (_colour(2, -1), "colour 2 in 'colors' is [-1, 0, 255]"),
    "colour NaN": (_colour(3, float("nan")), "colour 3 in 'colors' is NaN"),
    "colour 'a'": (_colour(4, "a"), "colour 4 in 'colors' is [\"a\", 255, 0]"),
    "colour of 2 values": (lambda m: m["colors"][0].pop(), "colour 0 in 'colors' is [0, 0]"),
    "image_size 10**30": (_set(image_size=10 ** 30), "'image_size' is 1e+30, expected the model's input size"),
    "image_size 100000": (_set(image_size=100000), "'image_size' is 100000, expected the model's input size in pixels "
                                                   "(1 to 4096)"),
    "image_size 8": (_set(image_size=8), "'image_size' is 8 but the model's graph takes 32 px"),
    "crop removed": (lambda m: m.pop("crop"), "'crop' is absent but the model was exported with [0.2, 0.3, 0.6]"),
    "crop moved": (_set(crop=[0.1, 0.3, 0.6]), "'crop' is [0.1, 0.3, 0.6] but the model was exported with"),
    "crop of text": (_set(crop=["a", 0, 1]), "crop [\"a\", 0, 1]: expected [x0, y0, side]"),
    "nested classes": (lambda m: m["classes"].__setitem__(1, ["l_eye"]), "class [\"l_eye\"] in 'classes', expected a "
                                                                         "class name"),
    "classes swapped": (lambda m: m.update(classes=[m["classes"][i] for i in (0, 2, 1, 3, 4)]),
                        "'classes' is background,r_eye,l_eye,u_lip,l_lip but the model was exported with "
                        "background,l_eye,r_eye,u_lip,l_lip"),
    "class twice": (lambda m: m["classes"].__setitem__(2, "l_eye"), "class 'l_eye' listed twice"),
    "framing unknown": (_set(framing="rainbow"), "'framing' 'rainbow' unknown, valid: sample, celebahq"),
    "framing changed": (_set(framing="celebahq"), "'framing' is \"celebahq\" but the model was exported with "
                                                  "\"sample\""),
    "tta unknown": (_set(tta="both"), "'tta' 'both' unknown"),
    "tta added": (_set(tta="flip"), "'tta' is \"flip\" but the model was exported with none"),
}


@pytest.mark.parametrize("case", CLASSES_JSON_EDITS)
def test_classes_json_that_does_not_describe_its_model(tiny_exports, work, capsys, case):
    edit, expected = CLASSES_JSON_EDITS[case]
    model = edited_model(tiny_exports, work, edit)
    photos = photo_folder(work)
    before = snapshot(work)
    code = predict_main(["--model", str(model), "--input", str(photos / "0.jpg"), "--output", str(work / "results"),
                         "--no-detect"])
    line = refused(capsys, code, before, work)
    assert line.startswith(f"error: {model / 'classes.json'}: ") and expected in line
    assert not (work / "results").exists()


@pytest.mark.parametrize("case", ["3 classes", "7 classes", "image_size 8", "classes swapped"])
def test_classes_json_of_an_older_export_is_checked_against_its_graph(tiny_exports, work, capsys, case):
    """A graph without its classes.json (exported before issue 19, as pretrained/unet): the output's
    classes, the graph's class names and the size of its input resize are what is checked."""
    edit, expected = CLASSES_JSON_EDITS[case]
    model = edited_model(tiny_exports, work, edit, "old")
    photos = photo_folder(work)
    before = snapshot(work)
    code = predict_main(["--model", str(model), "--input", str(photos / "0.jpg"), "--output", str(work / "results"),
                         "--no-detect"])
    assert expected in refused(capsys, code, before, work)


@pytest.mark.parametrize("field, edit, expected", [
    ("crop", lambda m: m.pop("crop"), "'crop' is absent but the model was exported with [0.2, 0.36, 0.6]"),
    ("tta", lambda m: m.pop("tta"), "'tta' is absent but the model was exported with \"flip\""),
])
def test_an_edited_copy_of_the_shipped_model_is_told(work, capsys, field, edit, expected):
    """The shipped model's graph holds the classes.json it was exported with (classes_json())."""
    from helpers import REPO

    model = Path(shutil.copytree(REPO / "lipseg_tf" / "pretrained" / "unet", work / "model"))
    meta = json.loads((model / "classes.json").read_text())
    edit(meta)
    (model / "classes.json").write_text(json.dumps(meta))
    photos = photo_folder(work)
    before = snapshot(work)
    code = predict_main(["--model", str(model), "--input", str(photos / "0.jpg"), "--output", str(work / "results"),
                         "--no-detect"])
    assert expected in refused(capsys, code, before, work)


@pytest.mark.parametrize("which", ["new", "old"])
def test_an_unedited_tiny_export_predicts(tiny_exports, work, capsys, which):
    model = edited_model(tiny_exports, work, lambda meta: meta.update(note="kept by the user"), which)
    photos = photo_folder(work)
    code = predict_main(["--model", str(model), "--input", str(photos / "0.jpg"), "--output", str(work / "results"),
                         "--no-detect"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "field 'note' is not one of classes, colors" in err
    labels = np.asarray(Image.open(work / "results" / "0-mask.png"))
    assert labels.shape == np.asarray(Image.open(photos / "0.jpg")).shape[:2] and labels.max() <= 4


# ------------------------------------------------------------------------------------------ print.py

@pytest.mark.parametrize("output, expected", [
    ("{run}/images/grid.png", "lies in the test run's images"),
    ("{run}/images", "expected a .png file name"),
    ("{tmp}/folder.png", "a folder, expected a .png file name"),
    ("{tmp}/taken/grid.png", "taken: exists and is not a folder"),
    ("{tmp}/grid.txt", "expected a .png file name"),
])
def test_print_output_that_cannot_be_written(tmp_path, capsys, output, expected):
    from lipseg_tf.cli.print import main as print_main

    run = tmp_path / "test-run"
    (run / "images").mkdir(parents=True)
    (run / "images" / "0-inputs.png").write_bytes(b"an input")
    (run / "metrics.json").write_text("{}")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "taken").write_text("a file")
    before = snapshot(tmp_path)
    code = print_main(["--input_dir", str(run), "--output", output.format(run=run, tmp=tmp_path), "--no-show"])
    assert expected in refused(capsys, code, before, tmp_path)


# ----------------------------------------------------------------------------- what the trainers read

def train_unet(capsys, input_dir: Path, run_dir: Path) -> str:
    """unet.py --mode train on input_dir, expected to be refused: the one error line."""
    from lipseg_tf.cli import runner
    from lipseg_tf.cli.common import run

    before = snapshot(input_dir)
    code = run(lambda argv: runner.main("unet", argv),
               ["--mode", "train", "--input_dir", str(input_dir), "--output_dir", str(run_dir), "--crop_size", "32",
                "--ngf", "4", "--depth", "2", "--batch_size", "2", "--max_steps", "1"])
    line = refused(capsys, code, before, input_dir, alone=False)
    assert not run_dir.exists()
    return line


def test_truncated_ab_png_is_named_before_training(tmp_path, capsys):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    bad = sorted((ab_dir / "train").glob("*.png"))[1]
    bad.write_bytes(bad.read_bytes()[:-40])
    line = train_unet(capsys, ab_dir, tmp_path / "run")
    assert str(bad) in line and "truncated PNG" in line


@pytest.fixture
def shards(tiny_pairs, tmp_path) -> Path:
    """A copy of the tiny TFRecord pairs (2 shards a split, and pairs.json)."""
    return Path(shutil.copytree(tiny_pairs["tfrecord"], tmp_path / "records"))


def test_truncated_tfrecord_shard_is_named_before_training(shards, tmp_path, capsys):
    bad = shards / "train-00001-of-00002.tfrecord"
    bad.write_bytes(bad.read_bytes()[:-100])
    line = train_unet(capsys, shards, tmp_path / "run")
    assert str(bad) in line and "truncated TFRecord" in line


def test_shard_set_with_a_shard_missing_is_refused(shards, tmp_path, capsys):
    (shards / "train-00001-of-00002.tfrecord").unlink()
    line = train_unet(capsys, shards, tmp_path / "run")
    assert str(shards / "train-00001-of-00002.tfrecord") in line and "missing" in line


def test_shards_without_pairs_json_are_refused(shards, tmp_path, capsys):
    (shards / pairs.META_FILE).unlink()
    line = train_unet(capsys, shards, tmp_path / "run")
    assert str(shards) in line and "without pairs.json" in line


def test_pairs_of_an_interrupted_process_run_are_refused(shards, tmp_path, capsys):
    meta = json.loads((shards / pairs.META_FILE).read_text())
    (shards / pairs.META_FILE).write_text(json.dumps({**meta, "complete": False}))
    line = train_unet(capsys, shards, tmp_path / "run")
    assert "did not finish" in line


@pytest.mark.parametrize("content", ["[1, 2]", '{"size": "32", "parts": ["l_eye"]}'])
def test_pairs_json_of_the_wrong_shape_is_refused(shards, tmp_path, capsys, content):
    (shards / pairs.META_FILE).write_text(content)
    line = train_unet(capsys, shards, tmp_path / "run")
    assert str(shards / pairs.META_FILE) in line


# ------------------------------------------------------------------------------ checkpoints and pairs

@pytest.fixture
def three_checkpoints(tmp_path) -> Path:
    """checkpoints/ckpt-1..3 of one small variable, as CheckpointManager writes them."""
    import tensorflow as tf

    variable = tf.Variable(tf.zeros([300]))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=variable), tmp_path / "checkpoints", max_to_keep=5)
    for step in (1, 2, 3):
        variable.assign_add(tf.ones([300]))
        manager.save(checkpoint_number=step)
    return tmp_path / "checkpoints"


@pytest.mark.parametrize("damage", ["truncated data", "truncated index", "flipped bit", "missing data"])
def test_a_damaged_checkpoint_is_named_and_the_newest_whole_one_found(three_checkpoints, damage):
    from lipseg_tf.train import checkpoint_files

    data, index = three_checkpoints / "ckpt-3.data-00000-of-00001", three_checkpoints / "ckpt-3.index"
    if damage == "truncated data":
        data.write_bytes(data.read_bytes()[:500])
    elif damage == "truncated index":
        index.write_bytes(index.read_bytes()[:40])
    elif damage == "flipped bit":
        blob = bytearray(data.read_bytes())
        blob[100] ^= 0xFF
        data.write_bytes(bytes(blob))
    else:
        data.unlink()
    reason = checkpoint_files.broken_reason(three_checkpoints / "ckpt-3")
    assert reason is not None and "\n" not in reason
    assert reason.startswith(str(index if damage == "truncated index" else data))
    newest, broken = checkpoint_files.newest_intact(three_checkpoints)
    assert newest == str(three_checkpoints / "ckpt-2") and broken == [reason]
    assert checkpoint_files.broken_reason(three_checkpoints / "ckpt-1") is None


def test_stale_temp_folders_are_only_tensorflows_own(three_checkpoints):
    from lipseg_tf.train import checkpoint_files

    (three_checkpoints / "ckpt-4_temp").mkdir()
    (three_checkpoints / "my_temp").mkdir()
    (three_checkpoints / "ckpt-5_temp").write_text("a file, not a save in progress")
    assert checkpoint_files.stale_temp_folders(three_checkpoints) == [three_checkpoints / "ckpt-4_temp"]


def test_a_corrupt_pair_is_named_after_a_decode_error(tiny_pairs, tmp_path):
    from lipseg_tf.train import pipeline

    png = Path(shutil.copytree(tiny_pairs["png"], tmp_path / "png"))
    source = pipeline.find_pairs(png, "train")
    assert pipeline.name_bad_pair(source) is None
    bad = source.files[3]
    blob = bytearray(bad.read_bytes())
    blob[len(blob) // 2:len(blob) // 2 + 64] = bytes(64)   # the IEND chunk stays: only a full decode sees it
    bad.write_bytes(bytes(blob))
    line = pipeline.name_bad_pair(pipeline.find_pairs(png, "train"))
    assert line.startswith(f"{bad}: unreadable image")

    records = Path(shutil.copytree(tiny_pairs["tfrecord"], tmp_path / "records"))
    shard = records / "train-00001-of-00002.tfrecord"
    blob = bytearray(shard.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    shard.write_bytes(bytes(blob))
    line = pipeline.name_bad_pair(pipeline.find_pairs(records, "train"))
    assert line.startswith(f"{shard}: record ") and "unreadable" in line


# ------------------------------------------------------------------------- guards of a training run

@pytest.mark.parametrize("name, value, expected", [
    ("ngf", 0, "--ngf must be >= 1, got 0"),
    ("depth", -1, "--depth must be >= 1, got -1"),
    ("crop_size", 0, "--crop_size must be >= 1, got 0"),
    ("lr", float("nan"), "--lr must be a finite number > 0, got nan"),
    ("lr", float("inf"), "--lr must be a finite number > 0, got inf"),
    ("lr", 0.0, "--lr must be a finite number > 0, got 0.0"),
    ("beta1", 1.0, "--beta1 must be a number from 0 to below 1, got 1.0"),
    ("dropout", 1.0, "--dropout must be a number from 0 to below 1, got 1.0"),
    ("dropout", -0.1, "--dropout must be a number from 0 to below 1, got -0.1"),
    ("l1_weight", float("nan"), "--l1_weight must be a finite number, got nan"),
    ("l1_weight", -1.0, "--l1_weight must be >= 0, got -1.0"),
])
def test_options_out_of_range_are_one_line(name, value, expected):
    from types import SimpleNamespace

    from lipseg_tf.errors import UserError
    from lipseg_tf.train import guards

    good = dict(crop_size=32, scale_size=36, ngf=4, ndf=4, depth=2, batch_size=2, lr=1e-3, beta1=0.5, l1_weight=100.0,
                dropout=0.5)
    guards.check_options_in_range(SimpleNamespace(**good))
    with pytest.raises(UserError) as err:
        guards.check_options_in_range(SimpleNamespace(**{**good, name: value}))
    assert str(err.value) == expected


def test_a_loss_turning_nan_stops_fit_at_that_step_before_any_save(tmp_path):
    import keras
    import tensorflow as tf

    from lipseg_tf.errors import UserError
    from lipseg_tf.train import guards

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    calls = tf.Variable(0)

    def loss(y_true, y_pred):   # finite for two steps, then NaN
        calls.assign_add(1)
        return tf.reduce_mean(tf.square(y_true - y_pred)) * tf.where(calls > 2, float("nan"), 1.0)

    model.compile(optimizer="sgd", loss=loss)
    saved = []
    save = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: saved.append(epoch))
    data = tf.data.Dataset.from_tensor_slices((tf.ones((8, 2)), tf.ones((8, 1)))).batch(1)
    with pytest.raises(UserError) as err:
        model.fit(data, epochs=1, verbose=0, shuffle=False,
                  callbacks=[guards.NonFiniteLoss(10, lambda: "ckpt-10"), save])
    assert str(err.value).startswith("step 13: loss is nan") and "ckpt-10" in str(err.value)
    assert saved == []


def test_a_decode_error_while_training_names_the_pair(tiny_pairs, tmp_path):
    from lipseg_tf.errors import UserError
    from lipseg_tf.prep.parts import DEFAULT_PARTS, flip_permutation, palette
    from lipseg_tf.train import guards, pipeline

    png = Path(shutil.copytree(tiny_pairs["png"], tmp_path / "png"))
    source = pipeline.find_pairs(png, "train")
    bad = source.files[2]
    blob = bytearray(bad.read_bytes())
    blob[len(blob) // 2:len(blob) // 2 + 64] = bytes(64)
    bad.write_bytes(bytes(blob))
    dataset = pipeline.make_dataset(source, palette(DEFAULT_PARTS), flip_permutation(DEFAULT_PARTS), training=False,
                                    image_size=32, scale_size=32, batch_size=2, cache=False)
    with pytest.raises(UserError) as err, guards.decode_errors(source):
        for _ in dataset:
            pass
    assert str(err.value).startswith(f"{bad}: unreadable image")


def test_resume_skips_broken_checkpoints_and_stale_temp_folders_go(three_checkpoints, caplog):
    from lipseg_tf.errors import UserError
    from lipseg_tf.train import guards

    data = three_checkpoints / "ckpt-3.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:500])
    (three_checkpoints / "ckpt-4_temp").mkdir()
    with caplog.at_level("INFO", logger="lipseg_tf"):
        assert guards.resume_point(three_checkpoints) == str(three_checkpoints / "ckpt-2")
        guards.remove_stale_temp(three_checkpoints)
    assert str(data) in caplog.text and "resuming from" in caplog.text
    assert not (three_checkpoints / "ckpt-4_temp").exists()
    with pytest.raises(UserError, match=str(data)):
        guards.check_intact(str(three_checkpoints / "ckpt-3"))
    for step in (1, 2):
        (three_checkpoints / f"ckpt-{step}.index").write_bytes(b"")
    with pytest.raises(UserError, match="every newer checkpoint"):
        guards.resume_point(three_checkpoints)


# --------------------------------------------------------------------- the trainers, through their main

def trainer_args(model: str, ab_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    size = ["--depth", "2"] if model == "unet" else ["--ndf", "4"]
    return ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir), "--crop_size", "32",
            "--ngf", "4", *size, "--batch_size", "2", *extra]


def run_trainer(model: str, args: list[str]) -> int:
    from lipseg_tf.cli import runner
    from lipseg_tf.cli.common import run

    return run(lambda argv: runner.main(model, argv), args)


@pytest.mark.parametrize("model, flag, value, expected", [
    ("unet", "--ngf", "0", "--ngf must be >= 1, got 0"),
    ("unet", "--depth", "0", "--depth must be >= 1, got 0"),
    ("unet", "--lr", "inf", "--lr must be a finite number > 0, got inf"),
    ("pix2pix", "--ndf", "-2", "--ndf must be >= 1, got -2"),
    ("pix2pix", "--lr", "nan", "--lr must be a finite number > 0, got nan"),
])
def test_trainer_option_out_of_range_is_one_line(tmp_path, capsys, model, flag, value, expected):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    before = snapshot(ab_dir)
    code = run_trainer(model, trainer_args(model, ab_dir, tmp_path / "run", "--max_steps", "1", flag, value))
    assert expected in refused(capsys, code, before, ab_dir, alone=False)
    assert not (tmp_path / "run").exists()


def test_trainer_output_inside_the_input_is_refused(tmp_path, capsys):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    before = snapshot(ab_dir)
    code = run_trainer("unet", trainer_args("unet", ab_dir, ab_dir / "run", "--max_steps", "1"))
    assert "lies inside --input_dir" in refused(capsys, code, before, ab_dir, alone=False)


@pytest.mark.parametrize("model", ["unet", "pix2pix"])
def test_a_diverging_loss_stops_with_the_step_and_saves_nothing_broken(tmp_path, capsys, model):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 4}, size=32)
    extra = ["--summary_freq", "1"] if model == "pix2pix" else []
    code = run_trainer(model, trainer_args(model, ab_dir, tmp_path / "run", "--max_steps", "6", "--lr", "1e38",
                                           *extra))
    line = one_error_line(capsys, alone=False)
    assert code == 1 and line.startswith("error: step ") and "training diverged" in line
    for prefix in (tmp_path / "run" / "checkpoints").glob("ckpt-*.index"):
        import tensorflow as tf
        reader = tf.train.load_checkpoint(str(prefix).removesuffix(".index"))
        assert all(np.isfinite(reader.get_tensor(name)).all() for name, dtype in
                   reader.get_variable_to_dtype_map().items() if dtype.is_floating)


def test_resume_skips_a_truncated_checkpoint_and_test_names_it(tmp_path, capsys):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 4, "test": 1}, size=32)
    run_dir = tmp_path / "run"
    assert run_trainer("unet", trainer_args("unet", ab_dir, run_dir, "--max_steps", "4")) == 0
    checkpoints = run_dir / "checkpoints"
    data = checkpoints / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    capsys.readouterr()

    from lipseg_tf.cli import runner
    from lipseg_tf.cli.common import run
    code = run(lambda argv: runner.main("unet", argv), ["--mode", "test", "--checkpoint", str(run_dir), "--input_dir",
                                                       str(ab_dir), "--output_dir", str(tmp_path / "results")])
    line = one_error_line(capsys, alone=False)
    assert code == 1 and line.startswith(f"error: {data}: unreadable")
    assert not (tmp_path / "results").exists()

    (checkpoints / "ckpt-5_temp").mkdir()   # what a save killed midway leaves
    assert run_trainer("unet", trainer_args("unet", ab_dir, run_dir, "--max_steps", "6")) == 0
    err = capsys.readouterr().err
    assert str(data) in err and f"resuming from {checkpoints / 'ckpt-2'}" in err
    assert (checkpoints / "ckpt-6.index").is_file() and not (checkpoints / "ckpt-5_temp").exists()


@pytest.mark.parametrize("mode", ["test", "export"])
def test_results_inside_the_run_folder_are_refused(tmp_path, capsys, mode):
    from helpers import make_ab_dataset
    from lipseg_tf.cli import runner
    from lipseg_tf.cli.common import run
    from lipseg_tf.prep.parts import DEFAULT_PARTS

    ab_dir = make_ab_dataset(tmp_path / "ab", {"test": 1}, size=32)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "options.json").write_text(json.dumps({"model": "unet", "crop_size": 32, "ngf": 4, "depth": 2,
                                                      "parts": list(DEFAULT_PARTS), "style": "color"}))
    before = snapshot(tmp_path)
    code = run(lambda argv: runner.main("unet", argv), ["--mode", mode, "--checkpoint", str(run_dir), "--input_dir",
                                                       str(ab_dir), "--output_dir", str(run_dir / "results")])
    assert "lies inside --checkpoint" in refused(capsys, code, before, tmp_path, alone=False)


# ============================================================ issue 19: bad input, round two
# The trainers, test, export and print.py follow the rule of section 1 (a file is replaced only where
# the script's own settings file says the folder is its own; output links never followed; the shipped
# model never an output); a resume or a test that does not fit its run is one line with nothing
# changed; and the smaller cases of issue 19 section 6.

FIXTURES = Path(__file__).parent / "fixtures"
OTHER_PARTS = ("nose", "l_eye")


@pytest.fixture
def unet_run(tmp_path) -> Path:
    """A copy of tests/fixtures/unet_run_v1: a U-Net run (32 px, ngf 4, depth 2, the default parts) at ckpt-2."""
    return Path(shutil.copytree(FIXTURES / "unet_run_v1", tmp_path / "run"))


def run_mode(model: str, mode: str, run_dir: Path, input_dir: Path | None, output_dir: Path, *extra: str) -> int:
    """unet.py / pix2pix.py --mode test|export through their main."""
    inputs = ["--input_dir", str(input_dir)] if input_dir else []
    return run_trainer(model, ["--mode", mode, "--checkpoint", str(run_dir), *inputs, "--output_dir",
                               str(output_dir), *extra])


def pairs_of_classes(source: Path, folder: Path, parts=OTHER_PARTS, style: str = "color") -> Path:
    """A copy of the AB folder source whose pairs.json says it holds these parts (classes, palette too)."""
    from lipseg_tf.prep.parts import class_names, palette

    shutil.copytree(source, folder)
    meta = json.loads((folder / "pairs.json").read_text())
    meta.update(parts=list(parts), style=style, classes=list(class_names(parts, style)),
                palette=palette(parts, style).tolist())
    (folder / "pairs.json").write_text(json.dumps(meta))
    return folder


def resume_args(ab_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--mode", "train", "--input_dir", str(ab_dir), "--output_dir", str(run_dir), "--batch_size", "2", *extra]


# ------------------------------------------------- 4. trainers, test, export, print.py: their own files

@pytest.mark.parametrize("model", ["unet", "pix2pix"])
@pytest.mark.parametrize("name, content", [
    ("log.csv", "epoch,my own numbers\n"),
    ("val.csv", "step,mean_f1\n"),
    ("options.json", '{"mode": "train", "ngf": 64, "which_direction": "AtoB"}'),   # another tool's
])
def test_trainer_leaves_someone_elses_run_files_alone(tmp_path, capsys, model, name, content):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    out = tmp_path / "mine"
    out.mkdir()
    (out / name).write_text(content)
    before = snapshot(tmp_path)
    code = run_trainer(model, trainer_args(model, ab_dir, out, "--max_steps", "1"))
    line = refused(capsys, code, before, tmp_path, alone=False)
    assert str(out / "options.json" if name == "options.json" else out / name) in line
    assert "did not write it" in line


def test_trainer_refuses_a_run_folder_of_the_other_model(unet_run, tmp_path, capsys):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    before = snapshot(tmp_path)
    code = run_trainer("pix2pix", trainer_args("pix2pix", ab_dir, unet_run, "--max_steps", "1"))
    assert "the options of a 'unet' run, not of a pix2pix run" in refused(capsys, code, before, tmp_path,
                                                                         alone=False)


@pytest.mark.parametrize("link", ["the run folder", "log.csv"])
def test_trainer_never_writes_through_a_link(unet_run, tmp_path, capsys, link):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.csv").write_text("my numbers\n")
    if link == "the run folder":
        out = tmp_path / "run-link"
        out.symlink_to(precious)
    else:
        out = unet_run
        (out / "log.csv").symlink_to(precious / "notes.csv")
    before = snapshot(tmp_path)
    code = run_trainer("unet", trainer_args("unet", ab_dir, out, "--max_steps", "3"))
    line = refused(capsys, code, before, tmp_path, alone=False)
    assert "a symbolic link" in line and "never" in line


@pytest.mark.parametrize("planted", ["metrics.json", "images/test000-inputs.png", "labels/test000.png"])
def test_test_mode_leaves_someone_elses_results_alone(unet_run, tmp_path, capsys, planted):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"test": 1}, size=32)
    out = tmp_path / "results"
    (out / planted).parent.mkdir(parents=True, exist_ok=True)
    (out / planted).write_text('{"accuracy": 1.0}' if planted.endswith(".json") else "my picture")
    before = snapshot(tmp_path)
    line = refused(capsys, run_mode("unet", "test", unet_run, ab_dir, out), before, tmp_path, alone=False)
    assert str(out / planted) in line or str(out / "metrics.json") in line
    assert "did not write it" in line


def test_test_mode_rewrites_its_own_results(unet_run, tmp_path, capsys):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"test": 2}, size=32)
    out = tmp_path / "results"
    assert run_mode("unet", "test", unet_run, ab_dir, out) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert first["complete"] is True and first["images"] == 2
    (out / "labels" / "test000.png").write_bytes(b"damaged")
    assert run_mode("unet", "test", unet_run, ab_dir, out) == 0   # its own folder: replaced
    assert imageio.load_gray(out / "labels" / "test000.png").shape == (32, 32)
    assert json.loads((out / "metrics.json").read_text())["mean_f1"] == first["mean_f1"]


@pytest.mark.parametrize("planted, content", [
    ("saved_model.pb", b"my model"),
    ("classes.json", b'{"classes": ["background", "lips"]}'),    # no colors, image_size: not an export's
    ("variables", None),
])
def test_export_leaves_someone_elses_model_alone(unet_run, tmp_path, capsys, planted, content):
    out = tmp_path / "export"
    out.mkdir()
    if content is None:
        (out / planted).mkdir()
        (out / planted / "variables.index").write_bytes(b"mine")
    else:
        (out / planted).write_bytes(content)
    before = snapshot(tmp_path)
    line = refused(capsys, run_mode("unet", "export", unet_run, None, out), before, tmp_path, alone=False)
    assert "did not write it" in line


@pytest.mark.parametrize("mode", ["train", "test", "export"])
def test_the_shipped_model_is_never_an_output(unet_run, tiny_pairs, tmp_path, capsys, mode):
    from lipseg_tf.prep.folders import SHIPPED_MODELS

    shipped = SHIPPED_MODELS / "unet"
    before = snapshot(shipped, tmp_path)
    if mode == "train":
        code = run_trainer("unet", resume_args(tiny_pairs["png"], shipped, "--crop_size", "32", "--ngf", "4",
                                               "--depth", "2", "--max_steps", "1"))
    else:
        code = run_mode("unet", mode, unet_run, tiny_pairs["png"] if mode == "test" else None, shipped)
    line = refused(capsys, code, before, shipped, tmp_path, alone=False)
    assert f"--output_dir {shipped}: lies in the models shipped with lipseg_tf" in line


def test_export_writes_again_into_its_own_folder_but_not_through_a_link(unet_run, tmp_path, capsys):
    out = tmp_path / "export"
    assert run_mode("unet", "export", unet_run, None, out) == 0
    assert run_mode("unet", "export", unet_run, None, out) == 0   # its own: classes.json says so
    assert json.loads((out / "classes.json").read_text())["image_size"] == 32
    link = tmp_path / "export-link"
    link.symlink_to(out)
    capsys.readouterr()
    before = snapshot(tmp_path)
    line = refused(capsys, run_mode("unet", "export", unet_run, None, link), before, tmp_path, alone=False)
    assert f"--output_dir {link}: a symbolic link" in line


@pytest.mark.parametrize("script", ["g_mask", "process", "predict"])
def test_other_scripts_never_write_through_a_linked_output_or_into_the_shipped_model(work, capsys, script):
    from lipseg_tf.prep.folders import SHIPPED_MODELS

    elsewhere = work / "elsewhere"
    elsewhere.mkdir()
    fake_model(work / "model", {"classes": ["background", "lips"]})
    link = work / "out-link"
    link.symlink_to(elsewhere)
    for out, expected in ((link, "a symbolic link"), (SHIPPED_MODELS / "unet", "lies in the models shipped")):
        before = snapshot(work, SHIPPED_MODELS)
        if script == "g_mask":
            code = g_mask(work, out)
        elif script == "process":
            code = process(work, out)
        else:
            photo = sorted((work / "data" / celebamask.IMAGE_DIR).glob("*.jpg"))[0]
            code = predict_main(["--model", str(work / "model"), "--input", str(photo),
                                 "--output", str(out)])
        assert expected in refused(capsys, code, before, work, SHIPPED_MODELS)


def fake_test_run(folder: Path, metrics="{}", per_image=None) -> Path:
    """A --mode test folder drawn by hand: one image (its three pictures), metrics.json, per_image.json."""
    (folder / "images").mkdir(parents=True)
    for kind in ("inputs", "targets", "outputs"):
        Image.new("RGB", (8, 8), (0, 255, 0)).save(folder / "images" / f"a-{kind}.png")
    (folder / "metrics.json").write_text(metrics)
    per_image = json.dumps({"mean_f1": {"a": 0.5}}) if per_image is None else per_image
    (folder / "per_image.json").write_text(per_image)
    return folder


def print_main_(args: list[str]) -> int:
    from lipseg_tf.cli.print import main as print_main
    return print_main([*args, "--no-show"])


def test_print_leaves_someone_elses_png_alone_unless_overwrite(tmp_path, capsys):
    run = fake_test_run(tmp_path / "test-run", json.dumps({"mean_f1": 0.5, "images": 1, "data": "hand-made"}))
    holiday = tmp_path / "holiday.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(holiday)
    before = snapshot(tmp_path)
    line = refused(capsys, print_main_(["--input_dir", str(run), "--output", str(holiday)]), before, tmp_path)
    assert line == f"error: --output {holiday}: already there, and print.py did not write it: expected a new " \
                   "file name (or --overwrite to replace it)"
    assert print_main_(["--input_dir", str(run), "--output", str(holiday), "--overwrite"]) == 0
    assert Image.open(holiday).size != (4, 4)
    grid = run / "grid.png"
    assert print_main_(["--input_dir", str(run)]) == 0
    first = grid.stat().st_mtime_ns
    assert print_main_(["--input_dir", str(run)]) == 0   # its own grid: replaced without --overwrite
    assert grid.stat().st_mtime_ns >= first and Image.open(grid).info.get("Software") == "lipseg_tf print.py"


def test_print_refuses_a_fifo_as_output_without_reading_it(tmp_path, capsys):
    run = fake_test_run(tmp_path / "test-run", json.dumps({"mean_f1": 0.5, "images": 1}))
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    before = snapshot(tmp_path)
    line = refused(capsys, print_main_(["--input_dir", str(run), "--output", str(pipe)]), before, tmp_path)
    assert f"--output {pipe}: already there, and print.py did not write it" in line


def test_print_never_writes_through_a_link(tmp_path, capsys):
    run = fake_test_run(tmp_path / "test-run", json.dumps({"mean_f1": 0.5, "images": 1}))
    holiday = tmp_path / "holiday.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(holiday)
    link = tmp_path / "grid.png"
    link.symlink_to(holiday)
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        line = refused(capsys, print_main_(["--input_dir", str(run), "--output", str(link), *extra]), before,
                       tmp_path)
        assert f"--output {link}: a symbolic link (to {holiday})" in line


def test_g_mask_owns_every_numbered_png_of_its_folder_as_its_help_says(work, capsys):
    """The rule decided in issue 19: in a folder holding g_mask.py's masks.json, every <id>.png is one of
    its masks (a changed --style deletes and rewrites them all); other names are left alone."""
    from lipseg_tf.cli.g_mask import build_parser

    assert "keep no file of your own named that way" in " ".join(build_parser().format_help().split())
    out = work / "masks"
    (out / "999.png").write_bytes(b"the user's")
    (out / "holiday.png").write_bytes(b"the user's")
    assert g_mask(work, out, "--style", "index") == 0
    assert not (out / "999.png").exists() and (out / "holiday.png").read_bytes() == b"the user's"


# ----------------------------------------------------- 5. a resume or a test that does not fit the run

def test_resume_on_pairs_of_other_parts_is_one_line_and_changes_nothing(unet_run, tiny_pairs, tmp_path, capsys):
    ab_dir = pairs_of_classes(tiny_pairs["png"], tmp_path / "other")
    before = snapshot(tmp_path)
    line = refused(capsys, run_trainer("unet", resume_args(ab_dir, unet_run, "--max_steps", "3")), before,
                   tmp_path, alone=False)
    assert line == (f"error: {unet_run} was trained on l_eye,r_eye,u_lip,l_lip; --input_dir {ab_dir} has "
                    "nose,l_eye: expected pairs of the run's classes, or a new --output_dir for a new run")


@pytest.mark.parametrize("mode", ["train", "test", "export"])
@pytest.mark.parametrize("edit, expected", [
    ({"ngf": 8}, "ngf 8, depth 2, 5 classes): Received incompatible tensor with shape"),
    ({"depth": 1}, "ngf 4, depth 1, 5 classes): Found"),
    ({"crop_size": 0}, "options.json: crop_size must be >= 1, got 0"),
    ({"crop_size": 34}, "options.json: unet: image size 34 must be divisible by 4 (depth 2)"),
    ({"ngf": "4"}, "options.json: ngf must be a whole number, got '4'"),
])
def test_a_hand_edited_options_json_is_one_line(unet_run, tiny_pairs, tmp_path, capsys, mode, edit, expected):
    options = json.loads((unet_run / "options.json").read_text())
    options.pop("image_size")
    options.update({"crop_size": 32, "scale_size": 36, **edit})
    (unet_run / "options.json").write_text(json.dumps(options))
    out = tmp_path / "out"
    before = snapshot(tmp_path)
    if mode == "train":
        code = run_trainer("unet", resume_args(tiny_pairs["png"], unet_run, "--max_steps", "3"))
    else:
        code = run_mode("unet", mode, unet_run, tiny_pairs["png"] if mode == "test" else None, out)
    line = refused(capsys, code, before, tmp_path, alone=False)
    assert str(unet_run) in line and expected in line
    assert not out.exists()


def test_test_on_pairs_of_other_classes_is_refused(unet_run, tiny_pairs, tmp_path, capsys):
    ab_dir = pairs_of_classes(tiny_pairs["png"], tmp_path / "other", ("l_eye", "r_eye", "u_lip", "l_lip"), "binary")
    before = snapshot(tmp_path)
    line = refused(capsys, run_mode("unet", "test", unet_run, ab_dir, tmp_path / "results"), before, tmp_path,
                   alone=False)
    assert line == (f"error: {unet_run} was trained on l_eye,r_eye,u_lip,l_lip; --input_dir {ab_dir} has "
                    "l_eye,r_eye,u_lip,l_lip (binary masks): expected test pairs of the run's classes")


# ------------------------------------------------------------------------------ 6. the smaller ones

@pytest.mark.parametrize("metrics, per_image, expected", [
    ("[]", None, "metrics.json: a JSON list, expected an object"),
    ('{"complete": false, "data": "x", "images": 1}', None, "metrics.json: the test run did not finish"),
    ('{"mean_f1": "high"}', None, "metrics.json: mean_f1 is \"high\", expected a number"),
    ("{}", "{}", "per_image.json: no \"mean_f1\" object"),
    ("{}", '["a"]', "per_image.json: a JSON list, expected an object"),
    ("{}", '{"mean_f1": {}}', "per_image.json: lists no images"),
    ("{}", '{"mean_f1": {"a": "good"}}', "per_image.json: the score of 'a' is \"good\", expected a number"),
])
def test_print_with_results_of_the_wrong_shape(tmp_path, capsys, metrics, per_image, expected):
    run = fake_test_run(tmp_path / "test-run", metrics, per_image)
    before = snapshot(tmp_path)
    line = refused(capsys, print_main_(["--input_dir", str(run)]), before, tmp_path)
    assert line.startswith(f"error: {run}/") and expected in line


def test_a_second_trainer_on_a_locked_run_folder_is_refused(unet_run, tiny_pairs, tmp_path, capsys):
    import subprocess

    other = subprocess.Popen(["sleep", "60"])
    try:
        (unet_run / "train.lock").write_text(f"{other.pid}\n")
        before = snapshot(tmp_path)
        line = refused(capsys, run_trainer("unet", resume_args(tiny_pairs["png"], unet_run, "--max_steps", "3",
                                                               "--seed", "1")), before, tmp_path, alone=False)
    finally:
        other.kill()
        other.wait()
    assert line == (f"error: {unet_run}: another training (pid {other.pid}) is writing this run folder (its lock "
                    f"{unet_run / 'train.lock'}): wait for it to end, or train into another --output_dir")


def test_a_stale_lock_is_taken_over(unet_run, tiny_pairs, capsys):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    (unet_run / "train.lock").write_text(f"{gone.pid}\n")
    assert run_trainer("unet", resume_args(tiny_pairs["png"], unet_run, "--max_steps", "5")) == 0   # from step 4
    err = capsys.readouterr().err
    assert f"taking over a stale lock (pid {gone.pid} no longer runs)" in err
    assert (unet_run / "checkpoints" / "ckpt-5.index").is_file() and not (unet_run / "train.lock").exists()


def test_ctrl_c_says_how_to_resume_and_the_command_resumes(unet_run, tiny_pairs, capsys, monkeypatch):
    import shlex

    from lipseg_tf.train import guards

    step_end = guards.NonFiniteLoss.on_train_batch_end

    def interrupted_at_step_5(self, batch, logs=None):
        step_end(self, batch, logs)
        if self.step == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(guards.NonFiniteLoss, "on_train_batch_end", interrupted_at_step_5)
    # The fixture's ckpt-2 is step 4 (written before ckpt-N counted steps).
    code = run_trainer("unet", resume_args(tiny_pairs["png"], unet_run, "--max_steps", "7"))
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    assert code == 130 and "Traceback" not in err
    command = (f"unet.py --mode train --input_dir {tiny_pairs['png']} --crop_size 32 --ngf 4 --max_steps 7 "
               f"--batch_size 2 --output_dir {unet_run} --depth 2")
    assert line == (f"error: interrupted; the latest checkpoint is {unet_run / 'checkpoints' / 'ckpt-2'}; "
                    f"resume with: {command}")
    assert not (unet_run / "train.lock").exists()
    assert sorted(p.name for p in (unet_run / "checkpoints").iterdir() if p.name.startswith("ckpt-")) == [
        "ckpt-2.data-00000-of-00001", "ckpt-2.index"]
    monkeypatch.setattr(guards.NonFiniteLoss, "on_train_batch_end", step_end)
    assert run_trainer("unet", shlex.split(command)[1:]) == 0
    assert (unet_run / "checkpoints" / "ckpt-7.index").is_file()


def test_ctrl_c_waits_for_a_checkpoint_save_and_a_cut_save_is_cleaned(three_checkpoints):
    import signal

    from lipseg_tf.train import guards

    finished = []
    with pytest.raises(KeyboardInterrupt):
        with guards.interrupt_after():
            os.kill(os.getpid(), signal.SIGINT)
            finished.append(True)   # reached: the interruption waits for the block
    assert finished == [True]
    orphan = three_checkpoints / "ckpt-4.data-00000-of-00001"
    orphan.write_bytes(b"half a save")
    guards.remove_stale_temp(three_checkpoints)
    assert not orphan.exists() and (three_checkpoints / "ckpt-3.data-00000-of-00001").is_file()


@pytest.mark.parametrize("field, value, expected", [
    ("parts", ["l_eye", "foo"], "pairs.json: parts: unknown part 'foo', valid: "),
    ("style", "rainbow", "pairs.json: style: mask style 'rainbow' unknown, valid: "),
])
def test_a_bad_part_or_style_names_the_file_it_came_from(tiny_pairs, tmp_path, capsys, field, value, expected):
    ab_dir = Path(shutil.copytree(tiny_pairs["png"], tmp_path / "ab"))
    meta = json.loads((ab_dir / "pairs.json").read_text())
    meta[field] = value
    (ab_dir / "pairs.json").write_text(json.dumps(meta))
    before = snapshot(ab_dir)
    code = run_trainer("unet", trainer_args("unet", ab_dir, tmp_path / "run", "--max_steps", "1"))
    assert f"error: {ab_dir / expected}" in refused(capsys, code, before, ab_dir, alone=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field, value, expected", [
    ("parts", ["l_eye", "foo"], "options.json: parts: unknown part 'foo'"),
    ("style", "rainbow", "options.json: style: mask style 'rainbow' unknown"),
])
def test_a_bad_part_or_style_in_options_json_names_it(unet_run, tmp_path, capsys, field, value, expected):
    options = json.loads((unet_run / "options.json").read_text())
    options[field] = value
    (unet_run / "options.json").write_text(json.dumps(options))
    before = snapshot(tmp_path)
    line = refused(capsys, run_mode("unet", "export", unet_run, None, tmp_path / "export"), before, tmp_path,
                   alone=False)
    assert f"error: {unet_run / expected}" in line


def test_a_mapping_file_with_a_byte_order_mark_is_read(work):
    mapping = work / "data" / celebamask.MAPPING_FILE
    plain = celebamask.read_mapping(mapping)
    mapping.write_bytes(b"\xef\xbb\xbf" + mapping.read_bytes())
    assert celebamask.read_mapping(mapping) == plain and plain


def test_a_folder_of_photos_takes_gifs_and_says_what_it_skipped(tmp_path, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("P", (16, 16)).save(folder / "a.gif")
    Image.new("RGB", (16, 16)).save(folder / "b.jpg")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "pairs.json").write_text("{}")   # a settings file: not named
    with caplog.at_level("WARNING", logger="lipseg_tf"):
        files = imageio.list_images(folder)
    assert [p.name for p in files] == ["a.gif", "b.jpg"]
    assert imageio.load_rgb(folder / "a.gif").shape == (16, 16, 3)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and warnings[0].startswith(f"{folder}: skipped 1 file(s) that are not ")
    assert warnings[0].endswith(": notes.txt")


def test_a_pix2pix_run_that_does_not_fit_is_one_line(tiny_pairs, tmp_path, capsys):
    """pix2pix's networks and classes are checked as the U-Net's: a resume with other pairs, or with an
    edited ngf/ndf, and a test with an edited ngf are one line naming the run, nothing changed."""
    run_dir = tmp_path / "run"
    assert run_trainer("pix2pix", trainer_args("pix2pix", tiny_pairs["png"], run_dir, "--max_steps", "2")) == 0
    options = json.loads((run_dir / "options.json").read_text())
    other = pairs_of_classes(tiny_pairs["png"], tmp_path / "other")
    capsys.readouterr()
    before = snapshot(tmp_path)
    line = refused(capsys, run_trainer("pix2pix", resume_args(other, run_dir, "--max_steps", "3")), before,
                   tmp_path, alone=False)
    assert line.startswith(f"error: {run_dir} was trained on l_eye,r_eye,u_lip,l_lip; --input_dir {other} has "
                           "nose,l_eye")
    for edit, expected in (({"ndf": 8}, "(ngf 4, ndf 8): Received incompatible tensor"),
                           ({"ngf": 8}, "(ngf 8, ndf 4): Received incompatible tensor")):
        (run_dir / "options.json").write_text(json.dumps({**options, **edit}))
        before = snapshot(tmp_path)
        line = refused(capsys, run_trainer("pix2pix", resume_args(tiny_pairs["png"], run_dir, "--max_steps", "3")),
                       before, tmp_path, alone=False)
        assert f"{run_dir / 'checkpoints' / 'ckpt-2'} does not fit {run_dir / 'options.json'} {expected}" in line
    line = refused(capsys, run_mode("pix2pix", "test", run_dir, tiny_pairs["png"], tmp_path / "results"), before,
                   tmp_path, alone=False)
    assert f"does not fit {run_dir / 'options.json'} (ngf 8, ndf 4)" in line


@pytest.mark.parametrize("field, value, expected", [
    ("parts", ["l_eye", "foo"], "masks.json: parts: unknown part 'foo', valid: "),
    ("style", "rainbow", "masks.json: style: mask style 'rainbow' unknown, valid: "),
])
def test_process_names_the_masks_json_a_bad_part_or_style_came_from(work, capsys, field, value, expected):
    meta_file = work / "masks" / "masks.json"
    meta = json.loads(meta_file.read_text())
    meta[field] = value
    meta_file.write_text(json.dumps(meta))
    before = snapshot(work)
    line = refused(capsys, process(work, work / "pairs"), before, work)
    assert line.startswith(f"error: {work / 'masks' / expected}")


# ---------------------------------------------------------------- sizes, disks and special files

def test_a_size_that_cannot_fit_in_memory_is_refused_before_any_work(work, capsys):
    before = snapshot(work)
    line = refused(capsys, process(work, work / "pairs", "--size", "100000", "--limit", "1"), before, work)
    assert line.startswith("error: --size 100000: pairing a photo at 100000x100000 takes about 224 GB of memory")
    assert "at most --size" in line and not (work / "pairs").exists()


@pytest.mark.parametrize("name, kind, expected", [("clip.mp4", "fifo", "a FIFO (named pipe), expected a video file"),
                                                   ("clip.mp4", "empty", "empty file (0 bytes), expected a video file"),
                                                   ("x.jpg", "empty", "empty file (0 bytes), expected an image file")])
def test_a_fifo_or_empty_file_as_predict_input_is_skipped_with_one_line(tiny_exports, work, capsys, name, kind,
                                                                        expected):
    """A FIFO named like a video made FFmpeg's open wait for a writer for ever; an empty file was 'unreadable'."""
    path = work / name
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_bytes(b"")
    code = predict_main(["--model", str(tiny_exports["new"]), "--input", str(path), "--output", str(work / "results"),
                         "--no-detect"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "None" not in err
    assert f"skipped {path}: {expected}" in err
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert summary["skipped"][0]["file"] == str(path)


def test_memory_estimate_names_the_workers_that_would_fit():
    from lipseg_tf.errors import UserError

    pairs.check_memory(256, 16, available=2 ** 30)          # 1.5 MB a worker
    with pytest.raises(UserError, match=r"--size 4096: .* 0.375 GB of memory a worker, 6 GB for 16 worker\(s\), "
                                        r"and 1 GB is available; with --workers 2 it would fit"):
        pairs.check_memory(4096, 16, available=2 ** 30)


def test_a_fifo_as_predict_input_is_skipped_with_one_line(tiny_exports, work, capsys):
    fifo = work / "x.jpg"
    os.mkfifo(fifo)
    code = predict_main(["--model", str(tiny_exports["new"]), "--input", str(fifo), "--output", str(work / "results"),
                         "--no-detect"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"skipped {fifo}: a FIFO (named pipe), expected an image file" in err
    summary = json.loads((work / "results" / "summary.json").read_text())
    assert summary["photos"] == 0 and summary["skipped"][0]["file"] == str(fifo)


def test_a_fifo_among_the_photos_is_counted_and_the_rest_paired(work, capsys):
    photos = photo_folder(work)
    (photos / "4.jpg").unlink()
    os.mkfifo(photos / "4.jpg")
    code = process_main(["--images", str(photos), "--masks", str(work / "masks"), "--out-dir", str(work / "pairs"),
                         "--size", "32", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1 and f"{photos / '4.jpg'}: a FIFO (named pipe)" in err and "1 unreadable" in err.splitlines()[-1]
    assert len(list((work / "pairs").rglob("*.png"))) == COUNT - 1


def test_a_fifo_among_the_pairs_is_refused_by_the_trainer(tmp_path, capsys):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    os.mkfifo(ab_dir / "train" / "train005.png")
    line = train_unet(capsys, ab_dir, tmp_path / "run")
    assert line == f"error: {ab_dir / 'train' / 'train005.png'}: a FIFO (named pipe), expected an image file"


def full_disk_at(monkeypatch, name_ends: str) -> None:
    """Every atomic write (prep/imageio.write_bytes) of a file whose name ends so fails as on a full disk."""
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith(name_ends):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))   # as os.replace's own, without a file name
        return real_replace(src, dst)

    monkeypatch.setattr(imageio.os, "replace", replace)


def test_predict_on_a_full_disk_names_the_file(tiny_exports, work, capsys, monkeypatch):
    photos = photo_folder(work)
    full_disk_at(monkeypatch, "-mask.png")
    code = predict_main(["--model", str(tiny_exports["new"]), "--input", str(photos / "0.jpg"), "--output",
                         str(work / "results"), "--no-detect"])
    line = one_error_line(capsys)
    assert code == 1 and line == f"error: {work / 'results' / '0-mask.png'}: No space left on device"
    assert no_temp_files(work / "results") and not (work / "results" / "0-mask.png").exists()


def test_a_trainer_on_a_full_disk_names_log_csv_and_leaves_no_empty_one(tmp_path, capsys, monkeypatch):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 2}, size=32)
    run_dir = tmp_path / "run"
    full_disk_at(monkeypatch, "log.csv")
    code = run_trainer("unet", trainer_args("unet", ab_dir, run_dir, "--max_steps", "1"))
    line = one_error_line(capsys, alone=False)
    assert code == 1 and line == f"error: {run_dir / 'log.csv'}: No space left on device"
    assert not (run_dir / "log.csv").exists() and no_temp_files(run_dir)


def test_tensorflows_own_write_on_a_full_disk_is_one_line_naming_the_file(monkeypatch, tmp_path, capsys):
    """/dev/full answers every write with ENOSPC: TensorFlow's error (not an OSError) becomes one line;
    a checkpoint's temporary shard is named by its checkpoint."""
    import tensorflow as tf

    from lipseg_tf.cli.common import run, tensorflow_write_error_line

    assert run(lambda argv: tf.io.write_file("/dev/full", tf.constant("x" * 100000)), []) == 1
    assert one_error_line(capsys) == "error: /dev/full: No space left on device"
    # TensorFlow's message for a checkpoint on a full 200 kB tmpfs (measured, TF 2.x):
    message = ("{{function_node __wrapped__SaveV2_dtypes_3_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
               f"{tmp_path}/run/checkpoints/ckpt-2_temp/part-00000-of-00001.data-00000-of-00001.tempstate54249; "
               "No space left on device [Op:SaveV2]")
    assert tensorflow_write_error_line(tf.errors.ResourceExhaustedError(None, None, message)) == (
        f"{tmp_path}/run/checkpoints/ckpt-2: No space left on device (writing the checkpoint)")
    assert tensorflow_write_error_line(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating")) is None


KILLED_EXPORT = """
import os, signal, sys
from pathlib import Path
from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.serve import savedmodel
from lipseg_tf.train.networks import build_unet

classes = ClassSpec.create(DEFAULT_PARTS, "color")
segmenter = savedmodel.Segmenter(build_unet(5, 4, 2, 32), 32, classes, output="probabilities",
                                 crop=(0.2, 0.3, 0.6))
real_replace = os.replace

def replace(src, dst):  # killed just before the last step: saved_model.pb moved in
    if Path(dst).name == "saved_model.pb" and Path(dst).parent == Path(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)

os.replace = replace
savedmodel.export(segmenter, classes, Path(sys.argv[1]), framing="sample")
"""


def test_an_export_killed_midway_leaves_no_saved_model_without_its_classes_json(tiny_exports, work, capsys):
    """kill -9 over an older export, at the worst moment (all but saved_model.pb moved in): the folder is
    no model, and predict says so."""
    import subprocess
    import sys

    from helpers import REPO

    model = Path(shutil.copytree(tiny_exports["new"], work / "model"))
    done = subprocess.run([sys.executable, "-c", KILLED_EXPORT, str(model)], cwd=REPO, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    assert not (model / "saved_model.pb").exists() and (model / "classes.json").is_file()
    assert len(list(work.glob(".tmp-export-model-*"))) == 1
    photos = photo_folder(work)
    code = predict_main(["--model", str(model), "--input", str(photos / "0.jpg"), "--output", str(work / "out")])
    assert f"{model}: no saved_model.pb" in one_error_line(capsys)
    assert code == 1


def test_an_export_failing_on_a_full_disk_leaves_the_old_one_whole(tiny_exports, work, monkeypatch):
    """... and removes the temporary folder of an export killed before it."""
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.serve import savedmodel
    from lipseg_tf.serve.predict import Model
    from lipseg_tf.train.networks import build_unet

    model = Path(shutil.copytree(tiny_exports["new"], work / "model"))
    before = snapshot(model)
    (work / ".tmp-export-model-killed" / "variables").mkdir(parents=True)
    full_disk_at(monkeypatch, "classes.json")
    classes = ClassSpec.create(DEFAULT_PARTS, "color")
    with pytest.raises(OSError) as err:
        savedmodel.export(savedmodel.Segmenter(build_unet(5, 4, 2, 32), 32, classes, output="probabilities"),
                          classes, model)
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(model / "classes.json")
    assert snapshot(model) == before and not list(work.glob(".tmp-export-*"))
    monkeypatch.undo()
    assert Model(model).crop == (0.2, 0.3, 0.6)


# -------------------------------------------------------------- masks and pairs that do not fit their palette

def recolour_masks(ab_dir: Path, recolour) -> list[Path]:
    """Rewrite the mask half of every AB PNG under ab_dir through recolour(mask) -> mask; the files, sorted."""
    files = sorted(ab_dir.rglob("*.png"))
    for path in files:
        image, mask = pairs.split_pair(np.asarray(Image.open(path).convert("RGB")))
        Image.fromarray(np.concatenate([image, recolour(mask.copy())], axis=1)).save(path)
    return files


def white(mask: np.ndarray) -> np.ndarray:
    mask[mask.max(-1) > 0] = 255
    return mask


def test_white_binary_masks_read_as_colour_masks_are_refused_by_process(work, capsys):
    assert g_mask(work, work / "binary", "--style", "binary") == 0
    (work / "binary" / masks.META_FILE).unlink()          # a user's own white masks: no masks.json
    capsys.readouterr()
    code = process_main(["--data-dir", str(work / "data"), "--masks", str(work / "binary"), "--out-dir",
                         str(work / "pairs"), "--size", "32", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert (f"{work / 'binary' / '0.png'}: 100.0% of the mask's part pixels" in err
            and "are no colour of the color masks of l_eye,r_eye,u_lip,l_lip (--style and --parts: no masks.json) "
                "(most common (255, 255, 255))" in err)
    assert f"{COUNT} unreadable" in err.splitlines()[-1] and not list((work / "pairs").rglob("*.png"))
    assert process_main(["--data-dir", str(work / "data"), "--masks", str(work / "binary"), "--out-dir",
                         str(work / "pairs"), "--size", "32", "--workers", "1", "--style", "binary"]) == 0


def test_white_binary_masks_read_as_colour_masks_are_refused_by_the_trainer(tmp_path, capsys):
    from helpers import make_ab_dataset

    files = recolour_masks(make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32), white)
    line = train_unet(capsys, tmp_path / "ab", tmp_path / "run")
    assert line.startswith(f"error: {files[0]}: 100.0% of the mask's part pixels")
    assert "no colour of the color masks of l_eye,r_eye,u_lip,l_lip (--style and --parts: no pairs.json)" in line


@pytest.mark.parametrize("form", ["png", "tfrecord"])
def test_pairs_json_edited_to_three_parts_is_refused(tiny_pairs, tmp_path, capsys, form):
    ab_dir = Path(shutil.copytree(tiny_pairs[form], tmp_path / "pairs"))
    meta = json.loads((ab_dir / pairs.META_FILE).read_text())
    (ab_dir / pairs.META_FILE).write_text(json.dumps({**meta, "parts": ["l_eye", "r_eye", "u_lip"]}))
    line = train_unet(capsys, ab_dir, tmp_path / "run")
    first = sorted((ab_dir / "train").glob("*.png"))[0] if form == "png" else f"{ab_dir} record "
    assert line.startswith(f"error: {first}") and "% of the mask's part pixels" in line
    assert f"color masks of l_eye,r_eye,u_lip ({ab_dir / pairs.META_FILE}) (most common (255, 255, 0))" in line


@pytest.mark.parametrize("mode", ["L", "I;16"])
def test_a_grey_or_16_bit_ab_image_is_refused(tmp_path, capsys, mode):
    from helpers import make_ab_dataset

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    grey = sorted((ab_dir / "train").glob("*.png"))[1]
    image = Image.open(grey).convert("L")
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    image.save(grey)
    assert Image.open(grey).mode == mode
    line = train_unet(capsys, ab_dir, tmp_path / "run")
    assert line.startswith(f"error: {grey}: 100.0% of the mask's part pixels")


def test_a_few_off_palette_pixels_are_warned_about_not_refused(tmp_path, caplog):
    from helpers import make_ab_dataset
    from lipseg_tf.prep.classes import ClassSpec
    from lipseg_tf.train import pipeline

    ab_dir = make_ab_dataset(tmp_path / "ab", {"train": 3}, size=32)
    edge = sorted((ab_dir / "train").glob("*.png"))[2]
    ab = np.asarray(Image.open(edge)).copy()
    ab[0, 32:34] = (128, 128, 0)        # two antialiased edge pixels among ~150 part pixels
    Image.fromarray(ab).save(edge)
    source = pipeline.find_pairs(ab_dir, "train")
    with caplog.at_level("WARNING", logger="lipseg_tf"):
        pipeline.check_mask_colors(source, ClassSpec.create(DEFAULT_PARTS, "color"))
    assert "1 of the first 16 pairs have mask pixels of no colour of the color masks" in caplog.text
    assert f"{edge} (" in caplog.text


def test_off_palette_counts_against_hand_made_masks():
    from lipseg_tf.prep.parts import off_palette, palette, palette_tolerance

    colors = palette(DEFAULT_PARTS)
    mask = np.zeros((4, 5, 3), np.uint8)
    mask[0, :2] = (0, 250, 10)          # l_eye within the tolerance
    mask[1, :3] = (255, 255, 255)       # no colour of the palette
    mask[2, 0] = (128, 128, 0)          # neither
    assert palette_tolerance(colors) == 32 and palette_tolerance(palette(DEFAULT_PARTS, "index")) == 0
    share, count, common = off_palette(mask, colors)
    assert (count, common) == (4, (255, 255, 255)) and share == pytest.approx(4 / 6)
    assert off_palette(mask[:1], colors) == (0.0, 0, None)
    index_mask = np.full((2, 2, 3), 2, np.uint8)
    assert off_palette(index_mask, palette(DEFAULT_PARTS, "index"))[1] == 0
    assert off_palette(index_mask + 1, palette(("l_eye",), "index"))[1] == 4   # 3: no class of 2


@pytest.mark.parametrize("damage", ["every part file missing", "part files named 2_l_eye.png"])
def test_a_face_without_any_part_file_is_warned_about(work, capsys, damage):
    face = 2
    files = sorted(celebamask.part_path(work / "data", face, "l_eye").parent.glob(f"{face:05d}_*.png"))
    assert files
    for path in files:
        if damage == "every part file missing":
            path.unlink()
        else:
            path.rename(path.with_name(path.name.replace(f"{face:05d}_", f"{face}_")))
    code = g_mask(work, work / "out")
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err
    expected = celebamask.part_path(work / "data", face, "l_eye").parent / f"{face:05d}_<part>.png"
    assert f"image {face}: no part file at all (expected {expected}), its mask is all background" in err
    assert ("is named without the id's five digits" in err) == (damage != "every part file missing")
    assert "1 of 6 masks are all background because their photos have no part file at all" in err
    assert not np.asarray(Image.open(work / "out" / f"{face}.png")).any()
