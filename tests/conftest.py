"""Fixtures shared by several test files."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import TEMPLATE_CROP, export_template_model


@pytest.fixture(scope="session")
def tiny_pairs(tmp_path_factory) -> dict[str, Path]:
    """12 synthetic faces -> masks -> 32 px AB pairs, as PNG folders and as TFRecord shards (2 per split).

    {"sample", "masks", "png", "tfrecord"}: train 10, val 1, test 1 pairs.
    """
    from lipseg_tf.prep import masks, pairs, sample

    root = tmp_path_factory.mktemp("tiny_pairs")
    sample.generate(root / "sample", 12, seed=5, size=64, workers=1)
    masks.run_g_mask(root / "sample", root / "masks", workers=1)
    pairs.run_process(root / "png", root / "masks", data_dir=root / "sample", size=32, workers=1)
    pairs.run_process(root / "tfrecord", root / "masks", data_dir=root / "sample", size=32, workers=1,
                      output_format="tfrecord", shards=2)
    return {"sample": root / "sample", "masks": root / "masks", "png": root / "png", "tfrecord": root / "tfrecord"}


@pytest.fixture(scope="session")
def template_model(tmp_path_factory) -> Path:
    """A SavedModel that ignores the image and answers the "sample" framing's reference parts (helpers.py)."""
    return export_template_model(tmp_path_factory.mktemp("template-model"))


@pytest.fixture(scope="session")
def cropped_template_model(tmp_path_factory) -> Path:
    """The template model of a run whose pairs were cut to TEMPLATE_CROP: classes.json "crop"."""
    return export_template_model(tmp_path_factory.mktemp("cropped-template-model"), TEMPLATE_CROP)
