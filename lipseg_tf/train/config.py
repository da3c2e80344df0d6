"""Options of a training run: one dataclass, saved as options.json beside the checkpoints.

Test and export reload the options that fix the model's shape and the class palette from that file, so
a user never has to repeat them (and cannot contradict them by accident).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lipseg_tf.errors import UserError
from lipseg_tf.prep.imageio import write_text
from lipseg_tf.prep.parts import DEFAULT_PARTS

OPTIONS_FILE = "options.json"
CHECKPOINT_DIR = "checkpoints"   # <run>/checkpoints/ckpt-N
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")    # --precision (precision.py)
STRATEGIES = ("default", "mirrored", "multiworker")            # --strategy (distribute.py)


@dataclasses.dataclass
class RunConfig:
    """Everything that defines a run of pix2pix.py or unet.py."""

    model: str = "pix2pix"                 # pix2pix | unet
    mode: str = "train"                    # train | test | export
    input_dir: str | None = None
    output_dir: str | None = None
    checkpoint: str | None = None
    max_epochs: int | None = None
    max_steps: int | None = None
    batch_size: int = 1
    image_size: int = 256                  # the crop the network sees (affinelayer's CROP_SIZE)
    scale_size: int = 286                  # resize before the random crop (pix2pix jitter)
    flip: bool = True
    ngf: int = 64                          # generator / U-Net first-layer filters
    ndf: int = 64                          # discriminator first-layer filters
    depth: int = 4                         # U-Net poolings
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    gan_weight: float = 1.0
    decay_epochs: int = 0                  # pix2pix: lr decays linearly to 0 over the last N epochs
    l1_balance: float = 0.0                # power of ENet's class weights on pix2pix's L1 (0: the paper's)
    dice_weight: float = 1.0
    class_balance: float = 0.5             # power of ENet's class weights in the U-Net's cross-entropy
    seed: int = 0
    which_direction: str = "AtoB"
    parts: tuple[str, ...] = DEFAULT_PARTS
    style: str = "color"
    eager: bool = False
    jit: bool = False                      # XLA-compile the training step (measure first: not always faster)
    precision: str = "float32"             # float32 | mixed_float16 | mixed_bfloat16 (precision.py)
    strategy: str = "default"              # default | mirrored | multiworker (distribute.py)
    deterministic: bool = False            # reproducible op results and input order (slower)
    summary_freq: int = 100
    save_freq: int = 1000
    max_checkpoints: int = 3
    cache: bool = True

    # Options that fix the model's shape or meaning: test and export take them from options.json.
    MODEL_OPTIONS = ("model", "image_size", "scale_size", "ngf", "ndf", "depth", "which_direction",
                     "parts", "style")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        data["parts"] = list(self.parts)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / OPTIONS_FILE
        write_text(path, self.to_json())
        return path


def load_options(folder: str | Path) -> dict:
    """The options.json of a training run folder; UserError when it is missing or unreadable."""
    path = Path(folder) / OPTIONS_FILE
    if not path.is_file():
        raise UserError(f"{path}: not found (expected the options.json of a training run; "
                        "point --checkpoint at the folder a train run wrote)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object of run options, got {type(data).__name__}")
    data["parts"] = tuple(data.get("parts", DEFAULT_PARTS))
    return data


def with_model_options(config: RunConfig, saved: dict) -> RunConfig:
    """config with the shape-defining options replaced by those saved with the trained model."""
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    updates = {k: saved[k] for k in RunConfig.MODEL_OPTIONS if k in saved and k in fields}
    if saved.get("model", config.model) != config.model:
        raise UserError(f"{config.checkpoint}: holds a {saved.get('model')} run, not a {config.model} run")
    return dataclasses.replace(config, **updates)
