"""Export a U-Net SavedModel again, from the SavedModel alone: its weights in a fresh network, exported
by this lipseg_tf (its signatures and classes.json fields), with no run folder.

    python -m lipseg_tf.tools.reexport SRC DST [--weights float32|float16] [--background_scale auto|S --pairs P]
                                              [--tflite]

SRC's classes.json gives the classes, the input size, the framing, the crop box and the tta; the
network's width (ngf) and depth come from the shapes of its variables. --weights stores DST's weights in
float16 (half the size; the arithmetic stays float32) or float32 (default: as SRC stores them).
--background_scale multiplies the background's probability by S inside the network (train/calibrate.py;
auto: chosen on the val split of the AB pairs --pairs), on top of any scale SRC has. Once DST
is written, its `serve_crop` is checked against SRC's crop signature (`serve_crop`, or `serving_default`
in exports that predate it) on CHECK_IMAGES noise crops: probabilities within 1e-5 (HALF_TOLERANCE
when the weights were rounded to float16) and the same labels wherever SRC's two likeliest classes are
further apart than twice that, else the command fails (exit status 1).

--tflite also writes DST/crop.tflite (serve/tflite.py CROP_TFLITE): the network alone, no flip inside,
weights int8 (dynamic range), which predict.py runs instead of the SavedModel when it is there (several
times faster on a CPU; predict.Model runtime). Its labels are checked against DST's serve_crop on the
noise crops (flip averaged as predict.py does): at least TFLITE_AGREEMENT of the pixels the same.
--tflite int8 --pairs P makes its activations int8 too (full integer quantisation), their ranges
measured on CALIBRATION_CROPS photo halves of P's train split (AB pairs of the model's crop box, as for
--background_scale auto), and writes the dynamic-range copy beside it as DST/crop-dynamic.tflite
(CROP_TFLITE_DYNAMIC): which of the two runs faster depends on the CPU (0.8 times the other's time on
one machine, 1.6 times on another), so predict.py times both on loading and runs the faster. Each
copy's labels are then checked on up to CHECK_PAIRS photo halves of P's val split (its train split
without one) instead of noise, which lies outside the measured ranges.
How the shipped model (lipseg_tf/pretrained/unet) was made with it: its MODEL.md.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from lipseg_tf.cli.common import run, setup_logging
from lipseg_tf.errors import UserError
from lipseg_tf.prep import folders
from lipseg_tf.prep.parts import MASK_STYLES
from lipseg_tf.train.calibrate import parse_scale

log = logging.getLogger("lipseg_tf")

CHECK_IMAGES = 4
TOLERANCE = 1e-5
HALF_TOLERANCE = 1e-2  # rounding the weights to float16 moves the probabilities by about 1e-3
TFLITE_AGREEMENT = 0.98  # int8 weights: of noise crops' pixels (real faces agree more; docs/predict-and-tflite.md)
CALIBRATION_CROPS = 300  # --tflite int8: faces whose activations set the int8 ranges
CHECK_PAIRS = 64         # --tflite int8: faces the labels are checked on


def _classes(names: list, colors: list, meta_file: Path):
    """The ClassSpec whose names and colours classes.json lists; UserError when none has them."""
    from lipseg_tf.prep.classes import ClassSpec

    parts = names[1].split("+") if len(names) == 2 and "+" in names[1] else names[1:]
    for style in MASK_STYLES:
        try:
            spec = ClassSpec.create(parts, style)
        except UserError:
            continue
        if list(spec.names) == names and spec.colors.tolist() == colors:
            return spec
    raise UserError(f"{meta_file}: classes {names} with colours {colors} are no mask style of lipseg_tf "
                    f"({', '.join(MASK_STYLES)})")


def network_shape(variables_prefix: str, num_classes: int, source: Path):
    """The networks.UnetShape (ngf, depth, patch, head) of the U-Net whose weights are at variables_prefix,
    read from the weights' shapes (networks.unet_shape_of); UserError when they are no U-Net of num_classes."""
    import tensorflow as tf

    from lipseg_tf.train.networks import unet_shape_of

    variables = [(name, shape) for name, shape in tf.train.list_variables(variables_prefix)
                 if name.startswith("network/")]
    shape = unet_shape_of(variables, num_classes)
    if shape is None:
        raise UserError(f"{source}: its network is no lipseg_tf U-Net of {num_classes} classes (expected 3x3 "
                        "convolutions from the photo's channels to a bottleneck and one 1x1 logits convolution; "
                        "pix2pix exports are not supported)")
    return shape


def load_segmenter(source: Path, weights: str | None = None, background_scale: float | str = 1.0,
                   pairs: str | None = None):
    """(savedmodel.Segmenter with SRC's weights and settings, its classes, SRC's framing, whether the
    weights were rounded to float16 on the way); weights: how the Segmenter stores them (None: as SRC);
    background_scale: folded into the network on top of SRC's (auto: chosen on the val split of pairs)."""
    from lipseg_tf.serve import model_meta
    from lipseg_tf.serve.savedmodel import Segmenter, fold_background_scale
    from lipseg_tf.train.networks import build_unet, restore_weights, stored_dtype, stored_in

    meta_file = source / "classes.json"
    if not (source / "saved_model.pb").is_file():
        raise UserError(f"{source}: no saved_model.pb (expected an export folder of unet.py --mode export)")
    meta = folders.read_json_object(meta_file, "the classes.json written beside saved_model.pb by --mode export")
    if meta is None:
        raise UserError(f"{meta_file}: not found (expected beside saved_model.pb)")
    folders.check_fields(meta, meta_file, {"classes": list, "colors": list, "image_size": int})
    classes = _classes(meta["classes"], meta["colors"], meta_file)
    prefix = str(source / "variables" / "variables")
    shape = network_shape(prefix, classes.num_classes, source)
    network = build_unet(classes.num_classes, shape.ngf, shape.depth, meta["image_size"], patch=shape.patch,
                         head=shape.head)
    unchanged = restore_weights(network, "network", prefix)
    if unchanged:  # a trained weight is never exactly its initial value: these were not in SRC
        raise UserError(f"{source}: holds no value for {unchanged[0]} of a U-Net of {shape}")
    log.info("%s: U-Net %s, %d px, crop %s, tta %s", source, shape, meta["image_size"], meta.get("crop"),
             meta.get("tta") or "none")
    previous = model_meta.background_scale(meta, meta_file)
    background_scale = fold_background_scale(network, background_scale, meta["image_size"], classes,
                                             meta.get("tta"), pairs)
    stored = stored_dtype(prefix, "network")
    weights = weights or stored
    segmenter = Segmenter(stored_in(network, weights), meta["image_size"], classes, output="probabilities",
                          tta=meta.get("tta"), crop=meta.get("crop"),
                          background_scale=previous * background_scale)
    return segmenter, classes, meta.get("framing"), weights == "float16" and stored == "float32"


def check_same_crops(source: Path, target: Path, size: int, tolerance: float = TOLERANCE) -> float:
    """Max |probability difference| of SRC's and DST's crop signatures on noise crops; UserError above
    `tolerance`, or when a label differs where SRC's two likeliest classes are over 2 * tolerance apart."""
    import tensorflow as tf

    def crop_signature(path):
        signatures = tf.saved_model.load(str(path)).signatures
        return signatures["serve_crop" if "serve_crop" in signatures else "serving_default"]

    rng = np.random.default_rng(0)
    crops = tf.constant(rng.integers(0, 256, (CHECK_IMAGES, size, size, 3)), tf.uint8)
    old, new = crop_signature(source)(images=crops), crop_signature(target)(images=crops)
    probabilities = old["probabilities"].numpy()
    worst = float(np.abs(probabilities - new["probabilities"].numpy()).max())
    top_two = np.sort(probabilities, axis=-1)[..., -2:]
    clear = top_two[..., 1] - top_two[..., 0] > 2 * tolerance
    same = old["labels"].numpy()[clear] == new["labels"].numpy()[clear]
    if worst > tolerance or not same.all():
        raise UserError(f"{target}: its crops' probabilities differ from {source}'s by up to {worst:.2g} (expected "
                        f"at most {tolerance:g} and the same labels)")
    return worst


def check_tflite(target: Path, crops: np.ndarray | None = None, lite_file: str | None = None) -> float:
    """Share of the pixels of `crops` (uint8, at the model's size; None: CHECK_IMAGES noise crops) whose
    labels a TFLite copy (lite_file, of tflite.CROP_TFLITES; None: the one predict.Model picks) and the
    SavedModel (predict.Model) agree on; UserError under TFLITE_AGREEMENT."""
    from lipseg_tf.serve.predict import Model

    lite, saved = Model(target, runtime="tflite", lite_file=lite_file), Model(target, runtime="savedmodel")
    what = "noise crops'" if crops is None else "check faces'"
    if crops is None:
        rng = np.random.default_rng(0)
        crops = rng.integers(0, 256, (CHECK_IMAGES, lite.image_size, lite.image_size, 3)).astype(np.uint8)
    agreement = float(np.mean(lite(crops).argmax(-1) == saved(crops).argmax(-1)))
    if agreement < TFLITE_AGREEMENT:
        raise UserError(f"{target}: {lite.lite_path.name}'s labels agree with serve_crop's on only "
                        f"{100 * agreement:.1f} % of the {what} pixels "
                        f"(expected at least {100 * TFLITE_AGREEMENT:.0f} %)")
    return agreement


def pair_photos(pairs_dir, split: str, classes, size: int, limit: int) -> np.ndarray:
    """uint8 (N, size, size, 3): the photo halves of up to `limit` AB pairs of a split of pairs_dir (masks
    of `classes`, a ClassSpec), resized as test mode resizes them; UserError when the split has none."""
    from lipseg_tf.train import pipeline

    source = pipeline.find_pairs(pairs_dir, split)
    dataset = pipeline.make_dataset(source, classes.colors, classes.flip_perm, training=False, image_size=size,
                                    scale_size=size, batch_size=16, cache=False)
    photos = np.concatenate([images.numpy() for images, _ in dataset.take(math.ceil(limit / 16))])[:limit]
    return np.clip(np.round((photos + 1.0) * 127.5), 0, 255).astype(np.uint8)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipseg_tf.tools.reexport", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="the U-Net SavedModel folder to read (saved_model.pb, variables/, classes.json)")
    parser.add_argument("target", help="the folder to write the new SavedModel into (new or empty)")
    parser.add_argument("--weights", choices=["float32", "float16"], default=None,
                        help="how DST stores the weights (default: as SRC does); float16 halves the size")
    parser.add_argument("--background_scale", default="1", metavar="auto|S",
                        help="multiply the background's probability by S (auto: chosen on --pairs' val split)")
    parser.add_argument("--pairs", default=None, help="with --background_scale auto or --tflite int8: AB pairs "
                                                      "(process.py's --out-dir) of the model's classes and crop box, "
                                                      "with a val split")
    parser.add_argument("--tflite", nargs="?", const="dynamic_range", choices=["dynamic_range", "int8"],
                        default=None, help="also write crop.tflite, the network with int8 weights that predict.py "
                                           "runs when it is there; int8: its activations int8 too, their ranges "
                                           "measured on --pairs' train split (default: dynamic_range)")
    parser.add_argument("--verbose", action="store_true", help="debug logging, TensorFlow's messages")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    scale = parse_scale(args.background_scale)
    if scale == "auto" and not args.pairs:
        raise UserError("--background_scale auto: needs --pairs (AB pairs with a val split to choose on)")
    if args.tflite == "int8" and not args.pairs:
        raise UserError("--tflite int8: needs --pairs (AB pairs of the model's crop box, whose train split's faces "
                        "set the int8 ranges)")
    setup_logging(args.verbose, tensorflow=True)
    from lipseg_tf.serve.savedmodel import export  # TensorFlow: after setup_logging has quietened it

    source, target = Path(args.source), Path(args.target)
    folders.check_apart(("target", target), {"source": source})
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target}: exists and is not an empty folder (expected a new folder for the SavedModel)")
    folders.check_output_dir(target, "target")
    segmenter, classes, framing, rounded = load_segmenter(source, args.weights, scale, args.pairs)
    export(segmenter, classes, target, framing)
    if scale != 1.0:
        log.info("%s: background scale %g folded in; not compared with %s", target, segmenter.background_scale, source)
    else:
        worst = check_same_crops(source, target, segmenter.image_size, HALF_TOLERANCE if rounded else TOLERANCE)
        log.info("%s: the same labels as %s on %d noise crops, probabilities within %.1g", target, source,
                 CHECK_IMAGES, worst)
    if args.tflite:
        from lipseg_tf.serve import tflite
        calibration = check = None
        if args.tflite == "int8":
            size = segmenter.image_size
            calibration = pair_photos(args.pairs, "train", classes, size, CALIBRATION_CROPS)
            try:
                check = pair_photos(args.pairs, "val", classes, size, CHECK_PAIRS)
            except UserError:  # no val split: the calibration faces
                check = calibration[:CHECK_PAIRS]
            log.info("--tflite int8: ranges from %d faces of %s's train split", len(calibration), args.pairs)
        for path in tflite.write_crop_tflite(segmenter, target, calibration):
            agreement = check_tflite(target, check, path.name)
            log.info("%s: labels of %d %s as serve_crop's on %.2f %% of the pixels", path,
                     CHECK_IMAGES if check is None else len(check), "noise crops" if check is None else "faces",
                     100 * agreement)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
