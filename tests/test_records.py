"""TFRecord output of process.py and its reading by the input pipeline and the trainers: the shards hold
the very PNG bytes of the PNG format, every pair once; the trainers find either format by themselves; and a
distributed input pipeline reads each pair in exactly one of its shares."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from helpers import COLORS, FLIP
from lipseg_tf.cli import runner
from lipseg_tf.cli.process import main as process_main
from lipseg_tf.errors import UserError
from lipseg_tf.prep import pairs, records
from lipseg_tf.prep.parts import DEFAULT_PARTS
from lipseg_tf.train import pipeline


def read_records(files) -> dict[str, bytes]:
    result = {}
    for record in tf.data.TFRecordDataset([str(p) for p in files]):
        pair_id, ab = records.parse(record)
        result[pair_id.numpy().decode()] = ab.numpy()
    return result


def test_tfrecord_shards_hold_the_png_pairs_byte_for_byte(tiny_pairs):
    png, rec = tiny_pairs["png"], tiny_pairs["tfrecord"]
    meta = json.loads((rec / "pairs.json").read_text())
    assert meta["format"] == "tfrecord" and meta["size"] == 32 and meta["parts"] == list(DEFAULT_PARTS)
    assert meta["splits"] == {"train": 10, "val": 1, "test": 1}
    assert meta["shards"] == {"train": 2, "val": 1, "test": 1}          # never more shards than pairs
    assert sorted(p.name for p in rec.glob("*.tfrecord")) == [
        "test-00000-of-00001.tfrecord", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
        "val-00000-of-00001.tfrecord"]
    assert not list(rec.glob(".tmp-*"))
    for split in ("train", "val", "test"):
        stored = read_records(records.find_shards(rec, split))
        files = sorted((png / split).glob("*.png"))
        assert sorted(stored) == sorted(p.stem for p in files)
        for path in files:
            assert stored[path.stem] == path.read_bytes()
    # contiguous blocks in id order: the first shard holds the smaller ids
    first, second = (read_records([p]) for p in records.find_shards(rec, "train"))
    assert len(first) == len(second) == 5
    assert max(map(int, first)) < min(map(int, second))


def test_rewriting_with_fewer_shards_removes_the_old_ones(tiny_pairs, tmp_path):
    out = tmp_path / "rec"
    for shards in (3, 1):
        pairs.run_process(out, tiny_pairs["masks"], data_dir=tiny_pairs["sample"], size=32, workers=1,
                          output_format="tfrecord", shards=shards)
    assert sorted(p.name for p in out.glob("train-*")) == ["train-00000-of-00001.tfrecord"]
    assert len(read_records(records.find_shards(out, "train"))) == 10


def test_find_pairs_detects_the_format_and_reads_the_same_pairs(tiny_pairs):
    png = pipeline.find_pairs(tiny_pairs["png"], "test")
    rec = pipeline.find_pairs(tiny_pairs["tfrecord"], "val")
    assert (png.format, png.count, png.pair_size) == ("png", 1, 32)
    assert (rec.format, rec.count, rec.pair_size) == ("tfrecord", 1, 32)
    train_png = pipeline.find_pairs(tiny_pairs["png"], "train")
    train_rec = pipeline.find_pairs(tiny_pairs["tfrecord"], "train")
    assert train_rec.count == train_png.count == 10
    decoded = []
    for source in (train_png, train_rec):
        ds = pipeline.make_dataset(source, COLORS, FLIP, training=False, image_size=32, scale_size=32, batch_size=1)
        # pair_names lists the pairs in the order the test-mode dataset yields them
        decoded.append({name: (image.numpy(), labels.numpy())
                        for name, (image, labels) in zip(pipeline.pair_names(source), ds)})
    assert sorted(decoded[0]) == sorted(decoded[1]) and len(decoded[0]) == 10
    for name, (image, labels) in decoded[0].items():
        np.testing.assert_array_equal(image, decoded[1][name][0])
        np.testing.assert_array_equal(labels, decoded[1][name][1])
    assert pipeline.has_split(tiny_pairs["tfrecord"], "val")
    assert not pipeline.has_split(tiny_pairs["tfrecord"], "extra")


@pytest.mark.parametrize("fmt", ["png", "tfrecord"])
def test_each_input_pipeline_reads_its_own_share(tiny_pairs, fmt):
    """Two workers' pipelines (tf.distribute input contexts) split the pairs between them, none twice."""
    source = pipeline.find_pairs(tiny_pairs[fmt], "train")
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=2)
        ds = pipeline.make_dataset(source, COLORS, FLIP, training=False, image_size=32, scale_size=32, batch_size=1,
                                   input_context=context)
        seen.append({images.numpy().tobytes() for images, _ in ds})
    assert len(seen[0]) == len(seen[1]) == 5 and not seen[0] & seen[1]
    everything = {images.numpy().tobytes() for images, _ in pipeline.make_dataset(
        source, COLORS, FLIP, training=False, image_size=32, scale_size=32, batch_size=1)}
    assert seen[0] | seen[1] == everything


def test_unet_trains_and_tests_on_tfrecords(tiny_pairs, tmp_path):
    run_dir, result_dir = tmp_path / "run", tmp_path / "results"
    assert runner.main("unet", ["--mode", "train", "--input_dir", str(tiny_pairs["tfrecord"]), "--output_dir",
                                str(run_dir), "--crop_size", "32", "--ngf", "4", "--depth", "2", "--batch_size", "5",
                                "--max_steps", "2", "--eager"]) == 0
    options = json.loads((run_dir / "options.json").read_text())
    assert options["strategy"] == "default" and options["precision"] == "float32" and not options["deterministic"]
    assert tf.train.latest_checkpoint(str(run_dir / "checkpoints")).endswith("ckpt-2")   # ckpt-N: the step
    assert runner.main("unet", ["--mode", "test", "--input_dir", str(tiny_pairs["tfrecord"]), "--checkpoint",
                                str(run_dir), "--output_dir", str(result_dir)]) == 0
    test_ids = pipeline.pair_names(pipeline.find_pairs(tiny_pairs["png"], "test"))
    assert sorted(p.stem for p in (result_dir / "labels").glob("*.png")) == test_ids
    assert json.loads((result_dir / "metrics.json").read_text())["images"] == 1


def test_shard_that_is_not_a_tfrecord_is_named(tmp_path):
    (tmp_path / "train-00000-of-00001.tfrecord").write_bytes(b"this is not a TFRecord file at all")
    with pytest.raises(UserError, match="not a TFRecord of AB pairs") as err:
        pipeline.find_pairs(tmp_path, "train")
    assert str(tmp_path / "train-00000-of-00001.tfrecord") in str(err.value)


def test_process_rejects_shards_without_tfrecord_format(tiny_pairs, tmp_path, capsys):
    code = process_main(["--data-dir", str(tiny_pairs["sample"]), "--masks", str(tiny_pairs["masks"]),
                         "--out-dir", str(tmp_path / "out"), "--shards", "4"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --shards 4: only with --format tfrecord (PNG pairs are one file each)"]
    assert not (tmp_path / "out").exists()
