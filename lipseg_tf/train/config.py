"""Options of a training run: one dataclass field per option, saved as options.json beside the checkpoints.

Each field carries its help text and its group (data, model, training, performance, output); the command
line (cli/runner.py) is generated from the fields, so a flag, its options.json key and its name in code
are the same word. RunConfig holds what both trainers share; UnetConfig and Pix2PixConfig add their own,
so a U-Net's options.json carries no pix2pix option and the reverse. Test and export reload the options
that fix the model's shape and the class palette from options.json, so a user never has to repeat them
(and cannot contradict them by accident).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import field
from pathlib import Path

from lipseg_tf.errors import UserError
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.prep.parts import CELEBAMASK_PARTS, DEFAULT_PARTS, MASK_STYLES

OPTIONS_FILE = "options.json"
CHECKPOINT_DIR = "checkpoints"   # <run>/checkpoints/ckpt-N, N = the step
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")    # --precision (precision.py)
STRATEGIES = ("default", "mirrored", "multiworker")            # --strategy (distribute.py)
AUGMENTS = ("none", "face")                                     # --augment (augment.py)
GENERATORS = ("paper", "segmenter")                             # pix2pix's --generator (networks.py)
GROUPS = ("data", "model", "training", "performance", "output")
# options.json keys written by earlier versions -> today's name
RENAMED = {"image_size": "crop_size"}
# --l1_balance and --class_balance: the power of ENet's class weights (balance.balancing_weights).
ENET_WEIGHTS = "(1 / ln(1.02 + its class's pixel share)) ** this (ENet's weights at 1)"


def option(default, help: str, group: str, **metadata):
    """A dataclass field that is also a command-line option: its help, its argument group, and argparse
    extras (choices, type where the default does not tell it, required, metavar)."""
    if group not in GROUPS:
        raise ValueError(f"group {group!r}: expected one of {', '.join(GROUPS)}")
    return field(default=default, metadata={"help": help, "group": group, **metadata})


def inherit(base: type, name: str, default, **changes):
    """The field `name` of `base` with another default (and help): a model's own default for a shared option."""
    metadata = dict(next(f for f in dataclasses.fields(base) if f.name == name).metadata)
    metadata.update(changes)
    return field(default=default, metadata=metadata)


@dataclasses.dataclass
class RunConfig:
    """The options of both trainers (pix2pix.py and unet.py)."""

    model: str = field(default="", metadata={"flag": False})   # pix2pix | unet: set by the subclass
    mode: str = option("train", "train a model, test one on AB pairs, or export one as a SavedModel", "data",
                       choices=("train", "test", "export"), required=True)
    input_dir: str | None = option(None, "folder of AB pair images made by process.py (or its train/val/test "
                                         "parent)", "data", type=str)
    parts: tuple[str, ...] = option(DEFAULT_PARTS, "comma-separated parts when the AB folder has no pairs.json "
                                    f"(valid: {','.join(CELEBAMASK_PARTS)})", "data", type=str)
    style: str = option("color", "how the masks colour the parts when the AB folder has no pairs.json", "data",
                        choices=MASK_STYLES)
    crop_size: int = option(256, "size of the square crop the network sees (a power of two for pix2pix)", "data")
    scale_size: int | None = option(None, "resize pairs to this size before the random crop (default crop_size "
                                          "* 286 / 256)", "data", type=int)
    flip: bool = option(True, "random horizontal flips, swapping left/right classes", "data")
    augment: str = option("none", "more training augmentation: face adds a random scale, rotation and shift, "
                                  "colour jitter, blur and JPEG noise, drawn once for photo and mask "
                                  "(train/augment.py; for real photos)", "data", choices=AUGMENTS)
    ngf: int = option(64, "filters in the first layer of the network", "model")
    max_epochs: int | None = option(None, "passes over the training pairs (default 1 when no --max_steps)",
                                    "training", type=int)
    max_steps: int | None = option(None, "training steps (batches), exactly; overrides --max_epochs", "training",
                                   type=int)
    batch_size: int = option(1, "pairs per batch (per replica: global batch = batch_size x replicas)", "training")
    lr: float = option(2e-4, "Adam learning rate", "training")
    beta1: float = option(0.5, "Adam beta_1", "training")
    seed: int = option(0, "seed of weights, shuffling and augmentation", "training")
    continue_train: bool = option(False, "resume from the latest checkpoint of the run folder (or of "
                                         "--checkpoint), an error when there is none; a run folder holding "
                                         "checkpoints resumes without it too", "training")
    eager: bool = option(False, "run the training step eagerly (for debugging)", "performance")
    jit: bool = option(False, "compile the training step with XLA (faster or slower depending on model and "
                              "device)", "performance")
    precision: str = option("float32", "training precision: mixed_* compute in 16 bits with float32 weights, "
                            "final activations and losses (mixed_float16 with loss scaling); for GPUs "
                            "(float16) and TPUs/newer CPUs (bfloat16)", "performance", choices=PRECISIONS)
    strategy: str = option("default", "tf.distribute strategy. default: one device; mirrored: every GPU of "
                           "this machine; multiworker: every machine in TF_CONFIG", "performance",
                           choices=STRATEGIES)
    deterministic: bool = option(False, "reproducible runs: deterministic ops (TensorFlow's op determinism) "
                                        "and input order; slower", "performance")
    cache: bool = option(True, "cache decoded pairs in memory (--no_cache: decode them every epoch)",
                         "performance")
    output_dir: str | None = option(None, "where to write: the run folder (train), results (test), SavedModel "
                                          "(export)", "output", type=str)
    checkpoint: str | None = option(None, "run folder of a previous train run: to resume (train) or to use "
                                          "(test, export); its options.json fixes the model's shape", "output",
                                    type=str)
    checkpoint_select: str = option("best", "test/export: the checkpoint with the best validation mean F1, "
                                    "or the latest (best is the latest when the run had no val/ split)",
                                    "output", choices=("best", "latest"))
    eval_freq: int | None = option(None, "evaluate mean F1 on the val/ split every N steps (default: once "
                                         "an epoch; the U-Net at least once an epoch)", "output", type=int)
    max_checkpoints: int = option(3, "checkpoints to keep in the run folder (the oldest are deleted; the best "
                                     "is kept apart)", "output")

    # Options that fix the model's shape or meaning: test and export take them from options.json.
    MODEL_OPTIONS = ("model", "crop_size", "scale_size", "ngf", "parts", "style")

    def __post_init__(self):
        if self.scale_size is None:
            self.scale_size = round(self.crop_size * 286 / 256)
        self.parts = tuple(self.parts)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["parts"] = list(self.parts)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / OPTIONS_FILE
        write_text(path, self.to_json())
        return path


@dataclasses.dataclass
class UnetConfig(RunConfig):
    """The U-Net segmenter's options (unet.py)."""

    model: str = field(default="unet", metadata={"flag": False})
    ngf: int = inherit(RunConfig, "ngf", 32, help="filters in the first U-Net stage")
    batch_size: int = inherit(RunConfig, "batch_size", 8)
    lr: float = inherit(RunConfig, "lr", 1e-3)
    beta1: float = inherit(RunConfig, "beta1", 0.9)
    depth: int = option(4, "U-Net poolings (input divisible by 2**depth)", "model")
    patch: int = option(1, "pixels a side of the square one position of the first U-Net stage holds: 2 runs "
                           "the network at half the side (the photo in as 2x2 patches, the logits out per "
                           "pixel), about half the CPU time (input divisible by patch * 2**depth)",
                        "model", choices=(1, 2, 4))
    head: int = option(0, "with --patch 2 or 4: end the U-Net in a thin head of this many filters at half the "
                          "patch (its last stage up by 2, joined with a 3x3 convolution of the photo's "
                          "patches of that size); 0 for none. At --patch 4 --head 16 on the dev set: 0.9 of "
                          "--patch 2's time a run, 0.007 lower test F1 (docs/predict-and-tflite.md)", "model")
    dice_weight: float = option(1.0, "weight of the Dice loss term", "training")
    class_balance: float = option(0.5, f"weigh each class's pixels in the cross-entropy by {ENET_WEIGHTS}; 0 "
                                       "for plain cross-entropy", "training")
    init_from: str | None = option(None, "start a fresh run from the weights of an exported U-Net (a --mode "
                                         "export folder, e.g. lipseg_tf/pretrained/unet) or of a U-Net run "
                                         "folder's best checkpoint, instead of random ones: to fine-tune at another "
                                         "--crop_size (the weights do not depend on it). Same --depth and "
                                         "classes; a narrower --ngf is widened to this one, computing the same "
                                         "probabilities at the start (train/widen.py)", "training", type=str)

    MODEL_OPTIONS = RunConfig.MODEL_OPTIONS + ("depth", "patch", "head")


@dataclasses.dataclass
class Pix2PixConfig(RunConfig):
    """pix2pix's options (pix2pix.py)."""

    model: str = field(default="pix2pix", metadata={"flag": False})
    ngf: int = inherit(RunConfig, "ngf", 64, help="filters in the first generator layer")
    ndf: int = option(64, "filters in the first discriminator layer", "model")
    which_direction: str = option("AtoB", "AtoB: photo -> mask (segmentation); BtoA: mask -> photo", "model",
                                  choices=("AtoB", "BtoA"))
    generator: str = option("paper", "paper: the paper's U-Net generator (tanh image out); segmenter: unet.py's "
                                     "U-Net (--ngf, --depth poolings) painting its class probabilities in the mask "
                                     "colours, which --init_from can start from a trained U-Net (AtoB)",
                            "model", choices=GENERATORS)
    depth: int = option(4, "--generator segmenter: its U-Net poolings (input divisible by 2**depth)", "model")
    l1_weight: float = option(100.0, "weight of the L1 term (lambda)", "training")
    gan_weight: float = option(1.0, "weight of the adversarial term", "training")
    decay_epochs: int = option(0, "keep --lr, then decay it linearly to 0 over the last N epochs (of "
                                  "--max_epochs, or the equivalent steps of --max_steps); 0: constant, as the "
                                  "paper", "training")
    l1_balance: float = option(0.0, f"weigh each pixel's L1 error by {ENET_WEIGHTS}, scaled to average 1; 0 is "
                                    "the paper's plain L1. Sparse masks need it: docs/how-models-learn.md",
                               "training")
    dropout: float = option(0.5, "dropout rate in the generator's first three up blocks while training "
                                  "(the paper's 0.5; 0: none)", "training")
    init_from: str | None = option(None, "--generator segmenter: start a fresh run's generator from the "
                                         "weights of an exported U-Net or of a U-Net run folder's best checkpoint "
                                         "(as unet.py --init_from: same classes, a narrower --ngf is widened)",
                                   "training", type=str)
    summary_freq: int = option(100, "update TensorBoard scalars and the progress bar every N steps", "output")
    save_freq: int = option(1000, "save a checkpoint every N steps", "output")

    MODEL_OPTIONS = RunConfig.MODEL_OPTIONS + ("ndf", "which_direction", "generator", "depth")


CONFIGS = {"unet": UnetConfig, "pix2pix": Pix2PixConfig}


def config_class(model: str) -> type[RunConfig]:
    """The options dataclass of `model`; ValueError naming the models there are."""
    if model not in CONFIGS:
        raise ValueError(f"model {model!r}: expected one of {', '.join(CONFIGS)}")
    return CONFIGS[model]


def load_options(folder: str | Path) -> dict:
    """The options.json of a training run folder, under today's names (image_size -> crop_size); UserError
    when it is missing or unreadable. Keys of options that no longer exist are kept: from_options drops them."""
    path = Path(folder) / OPTIONS_FILE
    if not path.is_file():
        raise UserError(f"{path}: not found (expected the options.json of a training run; "
                        "point --checkpoint at the folder a train run wrote)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of run options, got {type(data).__name__}")
    for old, new in RENAMED.items():
        if old in data:
            data.setdefault(new, data.pop(old))
    data["parts"] = tuple(data.get("parts", DEFAULT_PARTS))
    return data


def from_options(saved: dict, **changes) -> RunConfig:
    """The config of a saved run (load_options), its model's class, with `changes` applied; the keys that
    are not options of that model (another model's, or older versions') are left out."""
    cls = config_class(saved.get("model", "pix2pix"))
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in {**saved, **changes}.items() if k in names})


def with_model_options(config: RunConfig, saved: dict) -> RunConfig:
    """config with the shape-defining options replaced by those saved with the trained model."""
    run_dir = config.checkpoint or config.output_dir
    if saved.get("model", config.model) != config.model:
        raise UserError(f"{run_dir}: holds a {saved.get('model')} run, not a {config.model} run")
    updates = {k: saved[k] for k in config.MODEL_OPTIONS if k in saved}
    for key in ("crop_size", "scale_size", "ngf", "ndf", "depth", "patch", "head"):
        if key in updates and (not isinstance(updates[key], int) or isinstance(updates[key], bool)):
            raise UserError(f"{Path(run_dir) / OPTIONS_FILE}: {key} must be a whole number, "
                            f"got {updates[key]!r}")
    return dataclasses.replace(config, **updates)
