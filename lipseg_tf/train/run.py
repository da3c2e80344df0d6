"""A training run of either model: what both trainers share.

    train(config) checks the options, claims the run folder (run_folder.py: a new one or this model's
    own), takes the classes from the AB folder's pairs.json, checks that a resumed run fits them and its
    checkpoint fits its options.json, plans the steps, takes the run folder's lock, writes
    <output_dir>/options.json and hands a Session to unet.train (Keras fit) or pix2pix.train
    (custom step). Nothing is written before every check has passed; Ctrl-C ends with the command that
    resumes the run. The Session gives both the same run folder, global batch and steps plan, seeding,
    checkpoints (the latest and the best; ckpt-N is the step for both), resume, the "nothing to do"
    check and validation on val/ (validation.py). The trainers keep only what differs: their networks,
    losses and loop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Callable

from lipseg_tf.errors import UserError
from lipseg_tf.prep.classes import ClassSpec, classes_for_training
from lipseg_tf.prep.folders import check_apart, make_output_dir
from lipseg_tf.train.config import CHECKPOINT_DIR, OPTIONS_FILE, RunConfig, load_options, with_model_options
from lipseg_tf.train.run_folder import RunLock, claim_run_folder, resume_command

log = logging.getLogger("lipseg_tf")


def require(value, flag: str, mode: str):
    """value, or UserError saying that --mode `mode` needs `flag`."""
    if not value:
        raise UserError(f"--mode {mode} needs {flag}")
    return value


def check_options(config: RunConfig) -> None:
    """UserError naming the first option out of its range."""
    from lipseg_tf.train.guards import check_options_in_range
    check_options_in_range(config)
    if config.scale_size < config.crop_size:
        raise UserError(f"--scale_size {config.scale_size} is smaller than --crop_size {config.crop_size}")
    for flag in ("max_steps", "max_epochs", "eval_freq"):
        value = getattr(config, flag)
        if value is not None and value < 1:
            raise UserError(f"--{flag} must be >= 1, got {value}")
    for flag in ("batch_size", "max_checkpoints", "summary_freq", "save_freq"):
        if getattr(config, flag, 1) < 1:
            raise UserError(f"--{flag} must be >= 1, got {getattr(config, flag)}")
    for flag in ("decay_epochs", "l1_balance", "class_balance"):
        if getattr(config, flag, 0) < 0:
            raise UserError(f"--{flag} must be >= 0, got {getattr(config, flag)}")
    if config.model == "pix2pix" and config.generator != "segmenter" and config.init_from:
        raise UserError(f"--init_from {config.init_from}: pix2pix starts from a U-Net only with "
                        "--generator segmenter")
    if config.model == "pix2pix" and config.generator == "segmenter" and config.which_direction != "AtoB":
        raise UserError("--generator segmenter paints masks: it needs --which_direction AtoB")


@dataclasses.dataclass(frozen=True)
class StepsPlan:
    """How many steps a run trains: a step is one global batch (batch_size x replicas)."""

    global_batch: int
    steps_per_epoch: int
    total_steps: int        # exactly --max_steps, else --max_epochs (default 1) whole epochs
    eval_freq: int          # validate every N steps (and at the last step)

    def epochs(self, step: int) -> float:
        return step / self.steps_per_epoch


def plan_steps(config: RunConfig, pair_count: int, replicas: int) -> StepsPlan:
    global_batch = config.batch_size * replicas
    steps_per_epoch = max(1, pair_count // global_batch)
    total_steps = config.max_steps or (config.max_epochs or 1) * steps_per_epoch
    eval_freq = config.eval_freq or steps_per_epoch
    if config.model == "unet":
        eval_freq = min(eval_freq, steps_per_epoch)   # at least once an epoch
    return StepsPlan(global_batch, steps_per_epoch, total_steps, eval_freq)


@dataclasses.dataclass
class Session:
    """What a trainer gets from the run: options, classes, data, strategy, folders and the steps plan."""

    config: RunConfig
    classes: ClassSpec
    train_source: object            # pipeline.PairSource
    val_source: object | None       # pipeline.PairSource of val/, None when the AB folder has none
    strategy: object                # tf.distribute.Strategy
    write_dir: Path                 # where this process writes (distribute.write_dir)
    plan: StepsPlan
    resume_from: str | None = None  # the checkpoint to resume from (train checked that it fits)

    @property
    def run_dir(self) -> Path:
        return Path(self.config.output_dir)

    @property
    def chief(self) -> bool:
        from lipseg_tf.train import distribute
        return distribute.is_chief(self.strategy)

    def seed(self) -> None:
        """Weights, dropout and shuffling all follow --seed."""
        import keras
        keras.utils.set_random_seed(self.config.seed)

    def checkpoints(self, checkpoint, step_of: Callable[[], int]):
        """(Checkpoints of `checkpoint` (a tf.train.Checkpoint) in the run folder, the step restored):
        restores the latest of --checkpoint or of the run folder when there is one. step_of() reads the
        step after the restore."""
        from lipseg_tf.train.checkpoints import Checkpoints, resume_checkpoint
        manager = Checkpoints(checkpoint, self.write_dir, self.config.max_checkpoints)
        resume_from = self.resume_from or resume_checkpoint(self.config.checkpoint, self.run_dir)
        if manager.restore(checkpoint, resume_from, self.run_dir):
            log.info("resumed from %s at step %d", resume_from, step_of())
        return manager, step_of()

    def finished(self, step: int) -> bool:
        """True (and says so) when the run already has its steps: nothing to do."""
        if step >= self.plan.total_steps:
            log.info("already trained %d of %d steps; nothing to do", step, self.plan.total_steps)
            return True
        return False

    def epochs_to_run(self, step: int) -> tuple[int, int]:
        """(initial epoch, last epoch + 1) of a Keras fit that goes from `step` to the last step."""
        initial = step // self.plan.steps_per_epoch
        return initial, initial + math.ceil((self.plan.total_steps - step) / self.plan.steps_per_epoch)

    def validation(self, checkpoints):
        """The run's validation.Validation, or None (said once) when the AB folder has no val/ split."""
        if self.val_source is None:
            log.info("no val/ split: no validation while training; the best checkpoint is the latest")
            return None
        from lipseg_tf.train.validation import Validation
        return Validation(self.val_source, self.classes, self.config, self.write_dir, checkpoints, self.chief)

    def due(self, step: int) -> bool:
        """Whether to validate after `step`."""
        return step % self.plan.eval_freq == 0 or step == self.plan.total_steps


def _resumed_config(config: RunConfig, output_dir: Path) -> tuple[RunConfig, Path | None]:
    """(config with the model options of the run it resumes, that run's options.json) or (config, None)
    when it resumes none: the network keeps its shape."""
    from lipseg_tf.train.checkpoints import resume_checkpoint
    resume_dir = Path(config.checkpoint) if config.checkpoint else output_dir
    if config.continue_train and not resume_checkpoint(config.checkpoint, output_dir):
        raise UserError(f"--continue_train: {resume_dir / CHECKPOINT_DIR} holds no checkpoint to continue from")
    if not (resume_dir / CHECKPOINT_DIR).is_dir():
        return config, None
    saved = load_options(resume_dir)
    changed = [k for k in config.MODEL_OPTIONS if k in saved and saved[k] != getattr(config, k)
               and k not in ("parts", "style")]
    if changed:
        log.warning("resuming %s: keeping its %s from options.json", resume_dir,
                    ", ".join(f"{k}={saved[k]}" for k in changed))
    return with_model_options(config, saved), resume_dir / OPTIONS_FILE


def _check_resume(config: RunConfig, classes: ClassSpec, options_file: Path, input_dir: Path) -> str | None:
    """The checkpoint the run resumes from (None: a fresh start), once it is known to fit: the classes of
    --input_dir are those the run was trained on, and the networks options.json builds fit the
    checkpoint. UserError in one line otherwise, before anything is written."""
    from lipseg_tf.train.checkpoints import resume_checkpoint
    resume_from = resume_checkpoint(config.checkpoint, config.output_dir)
    if resume_from is None or options_file is None:
        return resume_from
    saved = load_options(options_file.parent)
    trained = ClassSpec.create(saved["parts"], saved.get("style", "color"), options_file)
    check_same_classes(options_file.parent, trained, input_dir, classes,
                       "pairs of the run's classes, or a new --output_dir for a new run")
    _restore_into_built(config, classes, resume_from, options_file)
    return resume_from


def check_same_classes(run_dir: Path, trained: ClassSpec, input_dir: Path, data: ClassSpec, expected: str) -> None:
    """UserError naming both when the pairs of input_dir hold other classes than the run was trained on."""
    def named(spec: ClassSpec) -> str:
        return ",".join(spec.parts) + ("" if spec.style == "color" else f" ({spec.style} masks)")
    if (trained.parts, trained.style) != (data.parts, data.style):
        raise UserError(f"{run_dir} was trained on {named(trained)}; --input_dir {input_dir} has {named(data)}: "
                        f"expected {expected}")


def train(config: RunConfig, strategy=None) -> int:
    """Train config.model; strategy: a tf.distribute strategy to reuse (default: made from --strategy)."""
    from lipseg_tf.train import distribute, pipeline

    input_dir = Path(require(config.input_dir, "--input_dir (AB pairs made by process.py)", "train"))
    output_dir = Path(require(config.output_dir, "--output_dir (the run folder to write)", "train"))
    check_options(config)
    # First: MultiWorkerMirroredStrategy must be created before TensorFlow runs anything else.
    strategy = strategy or distribute.make_strategy(config.strategy)
    if config.jit and strategy.num_replicas_in_sync > 1:
        # XLA cannot compile a step holding tf.distribute's synchronisation points (the gradient
        # all-reduce, synchronised BatchNorm): TensorFlow refuses it with a merge_call error.
        raise UserError(f"--jit: not available with --strategy {config.strategy} over "
                        f"{strategy.num_replicas_in_sync} replicas (XLA cannot compile the replicas' "
                        "synchronisation); leave out --jit")
    if config.deterministic:
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
    check_apart(("--output_dir", output_dir), {"--input_dir": input_dir})
    claim_run_folder(output_dir, config.model)
    config, resumed_options = _resumed_config(config, output_dir)
    classes = classes_for_training(input_dir, config.parts, config.style, resumed_options)
    config = dataclasses.replace(config, parts=classes.parts, style=classes.style)
    # A bad size or width fails here, before anything is written.
    if resumed_options:
        check_run_options(config, classes, resumed_options)
    else:
        build_networks(config, classes)
    train_source = pipeline.find_pairs(input_dir, "train")
    val_source = pipeline.find_pairs(input_dir, "val") if pipeline.has_split(input_dir, "val") else None
    resume_from = _check_resume(config, classes, resumed_options, input_dir)
    # After the resume check: pairs of other parts are named as such, not as off-palette masks.
    pipeline.check_mask_colors(train_source, classes, pipeline.classes_source(input_dir))
    chief = distribute.is_chief(strategy)   # the other workers of a multi-worker run write nothing here
    with contextlib.ExitStack() as stack:
        make_output_dir(output_dir, "--output_dir")
        if chief:
            stack.enter_context(RunLock(output_dir))
            config.save(output_dir)
        plan = plan_steps(config, train_source.count, strategy.num_replicas_in_sync)
        log.info("%s: training %d steps on %d pairs (%s) from %s; batch %d x %d replicas, %s%s; run folder %s",
                 config.model, plan.total_steps, train_source.count, train_source.format, train_source.folder,
                 config.batch_size, strategy.num_replicas_in_sync, config.precision,
                 ", XLA" if config.jit else "", output_dir)
        start = time.perf_counter()
        try:
            _train(config, classes, train_source, val_source, strategy, output_dir, plan, resume_from)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(_interrupted(config, output_dir)) from None
    log.info("%s: trained in %.0f s", config.model, time.perf_counter() - start)
    return 0


def _train(config, classes, train_source, val_source, strategy, output_dir, plan, resume_from) -> None:
    from lipseg_tf.train import distribute
    from lipseg_tf.train.guards import decode_errors
    with distribute.write_dir(output_dir, strategy) as write_dir:
        session = Session(config, classes, train_source, val_source, strategy, write_dir, plan, resume_from)
        with decode_errors(train_source, val_source):
            if config.model == "pix2pix":
                from lipseg_tf.train import pix2pix
                pix2pix.train(session)
            else:
                from lipseg_tf.train import unet
                unet.train(session)


def _interrupted(config: RunConfig, output_dir: Path) -> str:
    """What an interruption (Ctrl-C) leaves, and the command that resumes the run."""
    from lipseg_tf.train.checkpoint_files import checkpoint_prefixes
    from lipseg_tf.train.guards import remove_stale_temp
    remove_stale_temp(output_dir / CHECKPOINT_DIR)   # what a save cut short left
    latest = checkpoint_prefixes(output_dir / CHECKPOINT_DIR)
    if not latest:
        return f"before the first checkpoint of {output_dir}; start again with: {resume_command(config)}"
    return f"the latest checkpoint is {latest[0]}; resume with: {resume_command(config)}"


def build_networks(config: RunConfig, classes: ClassSpec) -> dict:
    """Build the networks once to validate the options (cheap at any size): {checkpoint name: network}."""
    from lipseg_tf.train import networks
    if config.model == "pix2pix":
        from lipseg_tf.train.pix2pix import build_generator
        return {"generator": build_generator(config, classes),
                "discriminator": networks.build_discriminator(config.crop_size, config.ndf)}
    return {"model": networks.build_unet(classes.num_classes, config.ngf, config.depth, config.crop_size,
                                         patch=config.patch, head=config.head)}


def check_run_options(config: RunConfig, classes: ClassSpec, options_file: Path) -> None:
    """UserError naming options_file when the options it gave config (a hand-edited ngf or crop_size) are
    out of range or cannot build the networks."""
    try:
        check_options(config)
        build_networks(config, classes)
    except UserError as err:
        raise UserError(f"{options_file}: {str(err).removeprefix('--')} (expected the options the run was "
                        "trained with)") from None


def _restore_into_built(config: RunConfig, classes: ClassSpec, prefix: str, options_file: Path) -> None:
    """UserError in one line unless checkpoint `prefix` fits the networks options_file builds."""
    import tensorflow as tf

    from lipseg_tf.train.checkpoints import restore_networks
    if config.model == "pix2pix":
        from lipseg_tf.train import pix2pix
        shape = pix2pix.network_shape(config)
    else:
        from lipseg_tf.train import unet
        shape = unet.network_shape(config, classes)
    restore_networks(tf.train.Checkpoint(**build_networks(config, classes)), prefix, options_file, shape)
