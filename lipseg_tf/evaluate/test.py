"""Test mode: predict every AB pair of a folder, write the pictures, labels and dataset-level metrics.

    <out>/images/<id>-inputs.png   the photo as the network saw it
    <out>/images/<id>-outputs.png  the predicted colour mask
    <out>/images/<id>-targets.png  the true colour mask
    <out>/labels/<id>.png          predicted class ids, uint8 (0 background, then the parts in order)
    <out>/metrics.json             per-part F1/IoU from one confusion count over all images; written first
                                   with "complete": false (test mode's claim on the folder), then whole
    <out>/per_image.json           each image's mean F1 (print.py titles its rows with it)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.prep.imageio import save_image, write_text
from lipseg_tf.train import metrics, pipeline
from lipseg_tf.train.metrics import METRICS_FILE, PER_IMAGE_FILE

log = logging.getLogger("lipseg_tf")


def to_uint8(image) -> np.ndarray:
    """[-1, 1] float image -> uint8."""
    return np.clip((np.asarray(image) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def run_test(files, classes: ClassSpec, predict: Callable[[tf.Tensor], tf.Tensor],
             out_dir: Path, image_size: int, batch_size: int = 8, data_source: str | None = None) -> dict:
    """Segment every AB pair of `files` (AB paths or a pipeline.PairSource) with `predict` (images in
    [-1, 1] -> class probabilities); returns metrics.

    `data_source` is recorded in metrics.json ("data"), so a figure made from it can say what it shows.
    """
    out_dir = Path(out_dir)
    source = pipeline.as_source(files)   # PNG files or TFRecord shards (pipeline.find_pairs)
    dataset = pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=False,
                                    image_size=image_size, scale_size=image_size, batch_size=batch_size,
                                    cache=False)
    data = data_source or str(source.folder)
    # Written first, so a rerun of an interrupted test knows the folder as test mode's own.
    write_text(out_dir / METRICS_FILE, json.dumps({"data": data, "images": source.count, "complete": False},
                                                  indent=2) + "\n")
    confusion = np.zeros((classes.num_classes,) * 2, np.int64)
    per_image = {}
    names = iter(pipeline.pair_names(source))
    with tqdm(total=source.count, desc="test", unit="image", dynamic_ncols=True, disable=None) as bar:
        for images, labels in dataset:
            pred = np.argmax(predict(images).numpy(), axis=-1).astype(np.uint8)
            labels = labels.numpy()
            for image, target, predicted in zip(images.numpy(), labels, pred):
                name = next(names)
                save_image(out_dir / "images" / f"{name}-inputs.png", to_uint8(image))
                save_image(out_dir / "images" / f"{name}-outputs.png", classes.colors[predicted])
                save_image(out_dir / "images" / f"{name}-targets.png", classes.colors[target])
                save_image(out_dir / "labels" / f"{name}.png", predicted)
                confusion += metrics.confusion_matrix(target, predicted, classes.num_classes)
                per_image[name] = metrics.mean_f1(target, predicted, classes.num_classes)
                bar.update(1)
    result = metrics.summary(confusion, classes.names, source.count)
    result["data"] = data
    write_text(out_dir / PER_IMAGE_FILE, json.dumps({"classes": list(classes.names),
                                                     "colors": classes.colors.tolist(),
                                                     "mean_f1": per_image}, indent=2) + "\n")
    write_text(out_dir / METRICS_FILE, json.dumps({**result, "complete": True}, indent=2) + "\n")
    return result
