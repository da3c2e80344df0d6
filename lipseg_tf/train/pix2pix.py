"""pix2pix training: U-Net generator against a PatchGAN, adversarial BCE + lambda * L1.

Photo (A) -> colour mask image (B) by default; --which_direction BtoA learns the reverse translation.
Two options beyond the paper, both off by default: --l1_balance weighs each pixel's L1 error by its
class (balance.py), which sparse masks such as lips and eyes need; --decay_epochs lets the learning
rate fall linearly to 0 over the last epochs (LinearDecay).
The step runs under a tf.distribute strategy (one replica per device; distribute.py) and a Keras
precision policy (precision.py): each replica's losses are averaged over the global batch, and the
per-replica results are summed into the step's losses.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from lipseg_tf.prep.classes import ClassSpec
from lipseg_tf.train import balance, distribute, guards, networks, pipeline, precision
from lipseg_tf.train.checkpoints import restore_networks, select_checkpoint
from lipseg_tf.train.config import OPTIONS_FILE, Pix2PixConfig, RunConfig

log = logging.getLogger("lipseg_tf")


def _batch_average(elementwise: tf.Tensor) -> tf.Tensor:
    """Mean over each example's elements, then summed over this replica's examples and divided by
    the global batch (tf.nn.compute_average_loss): summing the replicas' values gives the batch mean."""
    elementwise = tf.cast(elementwise, tf.float32)
    per_example = tf.reduce_mean(elementwise, axis=list(range(1, elementwise.shape.rank)))
    return tf.nn.compute_average_loss(per_example)


def _bce(label: float, logits: tf.Tensor) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    return _batch_average(tf.nn.sigmoid_cross_entropy_with_logits(tf.fill(tf.shape(logits), label), logits))


def generator_loss(disc_fake_logits, gen_output, target, gan_weight: float, l1_weight: float,
                   pixel_weights=None):
    """(total, gan, l1): the generator wants its output judged real, and close to the target in L1.

    pixel_weights: (B, H, W, 1) weight of each pixel's L1 error (--l1_balance), or None for the paper's
    plain L1. In float32 whatever the compute precision; averaged over the global batch (_batch_average).
    """
    gan = _bce(1.0, disc_fake_logits)
    error = tf.abs(tf.cast(target, tf.float32) - tf.cast(gen_output, tf.float32))
    if pixel_weights is not None:
        error = error * tf.cast(pixel_weights, tf.float32)
    l1 = _batch_average(error)
    return gan_weight * gan + l1_weight * l1, gan, l1


def discriminator_loss(disc_real_logits, disc_fake_logits):
    """BCE: real pairs judged 1, generated pairs judged 0."""
    return _bce(1.0, disc_real_logits) + _bce(0.0, disc_fake_logits)


class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`initial` for the first total_steps - decay_steps updates, then linearly down to 0 at total_steps
    (pytorch-CycleGAN-and-pix2pix's --n_epochs_decay). It follows the optimizer's update count, which
    checkpoints keep, so a resumed run continues the same schedule."""

    def __init__(self, initial: float, total_steps: int, decay_steps: int):
        self.initial, self.total_steps, self.decay_steps = float(initial), int(total_steps), max(1, int(decay_steps))

    def __call__(self, step):
        remaining = tf.cast(self.total_steps, tf.float32) - tf.cast(step, tf.float32)
        return self.initial * tf.clip_by_value(remaining / self.decay_steps, 0.0, 1.0)

    def get_config(self):
        return {"initial": self.initial, "total_steps": self.total_steps, "decay_steps": self.decay_steps}


class Pix2Pix:
    """The two networks, their optimizers and one training step; no state beyond those.

    Built under `strategy` (default: the current one) and the precision policy config.precision.
    gen_optimizer / disc_optimizer are the Adam optimizers (what checkpoints hold); the updates go
    through a LossScaleOptimizer around each under mixed_float16.
    """

    def __init__(self, config: RunConfig, strategy: tf.distribute.Strategy | None = None, learning_rate=None,
                 classes: ClassSpec | None = None):
        """learning_rate: a float or a schedule for both optimizers; default config.lr. classes: the
        palette of a segmenter generator (default: config's parts and style)."""
        self.config = config
        learning_rate = config.lr if learning_rate is None else learning_rate
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope(), precision.policy(config.precision):
            self.generator = build_generator(config, classes, dropout=config.dropout)
            self.discriminator = networks.build_discriminator(config.crop_size, config.ndf)
            for network in (self.generator, self.discriminator):
                distribute.synchronize_batchnorm(network, self.strategy)
            self.gen_optimizer = keras.optimizers.Adam(learning_rate, beta_1=config.beta1)
            self.disc_optimizer = keras.optimizers.Adam(learning_rate, beta_1=config.beta1)
            self.gen_update = precision.scaled_optimizer(self.gen_optimizer, config.precision)
            self.disc_update = precision.scaled_optimizer(self.disc_optimizer, config.precision)
            # Built now, so a restore fills the slots instead of deferring them.
            self.gen_update.build(self.generator.trainable_variables)
            self.disc_update.build(self.discriminator.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                              gen_optimizer=self.gen_optimizer,
                                              disc_optimizer=self.disc_optimizer, step=self.step)
        # XLA compiles the per-replica step (as Keras fit does); the replicas' reduction stays outside.
        self._replica_step_fn = (tf.function(self._replica_step, jit_compile=True)
                                 if config.jit and not config.eager else self._replica_step)
        self.train_step = self._train_step if config.eager else tf.function(self._train_step)

    def _replica_step(self, input_image, target, pixel_weights=None):
        """One update of both networks on this replica's share of the batch; returns its loss parts.

        pixel_weights: (B, H, W, 1) weights of the L1 term (to_model_io), or None for plain L1.
        """
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = self.generator(input_image, training=True)
            disc_real_logits = self.discriminator([input_image, target], training=True)
            disc_fake_logits = self.discriminator([input_image, gen_output], training=True)
            gen_total, gen_gan, gen_l1 = generator_loss(disc_fake_logits, gen_output, target,
                                                        self.config.gan_weight, self.config.l1_weight,
                                                        pixel_weights)
            disc_loss = discriminator_loss(disc_real_logits, disc_fake_logits)
            scaled_gen_loss = self.gen_update.scale_loss(gen_total)      # loss scaling under float16
            scaled_disc_loss = self.disc_update.scale_loss(disc_loss)
        gen_vars = self.generator.trainable_variables
        disc_vars = self.discriminator.trainable_variables
        # The optimizers sum the replicas' gradients (and unscale them under float16).
        self.gen_update.apply_gradients(zip(gen_tape.gradient(scaled_gen_loss, gen_vars), gen_vars))
        self.disc_update.apply_gradients(zip(disc_tape.gradient(scaled_disc_loss, disc_vars), disc_vars))
        return {"gen_total": gen_total, "gen_gan": gen_gan, "gen_l1": gen_l1, "disc": disc_loss}

    def _train_step(self, input_image, target, pixel_weights=None):
        """One update of both networks on a (distributed) batch; returns the loss parts as scalars."""
        args = (input_image, target) if pixel_weights is None else (input_image, target, pixel_weights)
        losses = self.strategy.run(self._replica_step_fn, args=args)
        self.step.assign_add(1)
        return {name: self.strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
                for name, value in losses.items()}


def build_generator(config: Pix2PixConfig, classes: ClassSpec | None = None, dropout: float = 0.5) -> keras.Model:
    """The generator --generator names: the paper's (with this dropout while training) or the U-Net
    segmenter painting the colours of `classes` (default: config's parts and style; it has no dropout)."""
    if config.generator == "segmenter":
        classes = classes or ClassSpec.create(config.parts, config.style)
        return networks.build_segmenter_generator(pipeline.colors_to_model_range(classes.colors).numpy(),
                                                  config.crop_size, config.ngf, config.depth)
    return networks.build_generator(config.crop_size, config.ngf, dropout=dropout)


def init_generator(generator: keras.Model, source: Path, classes: ClassSpec) -> None:
    """--init_from: the segmenter inside the generator starts from a trained U-Net (unet.init_weights)."""
    from lipseg_tf.train import unet
    unet.init_weights(networks.segmenter_of(generator), source, classes)


def to_model_io(image, labels, classes: ClassSpec, direction: str):
    """(photo, class ids) -> (network input, network target) as [-1, 1] images for this direction."""
    mask_image = pipeline.labels_to_image(labels, classes.colors)
    return (image, mask_image) if direction == "AtoB" else (mask_image, image)


def l1_pixel_weights(labels, weight_table) -> tf.Tensor:
    """Class ids (..., H, W) -> each pixel's L1 weight (..., H, W, 1), by its class (balance.pixel_weight_table)."""
    return tf.gather(tf.constant(weight_table, tf.float32), labels)[..., None]


def _l1_weight_table(session):
    """--l1_balance: each class's L1 weight (balance.pixel_weight_table), or None for the paper's plain L1."""
    config, classes = session.config, session.classes
    if not config.l1_balance:
        return None
    frequencies = balance.class_frequencies(session.train_source, classes, config)
    weight_table = balance.pixel_weight_table(frequencies, config.l1_balance)
    log.info("pix2pix: L1 weights by class (--l1_balance %g; class shares from the first training masks): %s",
             config.l1_balance, ", ".join(f"{name} {share:.4f} -> {weight:.2f}" for name, share, weight
                                          in zip(classes.names, frequencies, weight_table)))
    return weight_table


def _learning_rate(session):
    """--lr, or LinearDecay over the last --decay_epochs epochs of the plan."""
    config, plan = session.config, session.plan
    if not config.decay_epochs:
        return config.lr
    decay_steps = min(plan.total_steps, config.decay_epochs * plan.steps_per_epoch)
    log.info("pix2pix: learning rate %g until step %d, then linearly to 0 at step %d",
             config.lr, plan.total_steps - decay_steps, plan.total_steps)
    return LinearDecay(config.lr, plan.total_steps, decay_steps)


def _batches(session, weight_table):
    """Iterator of distributed (network input, target[, L1 pixel weights]) training batches."""
    config, classes = session.config, session.classes

    def replica_dataset(batch_size: int, context: tf.distribute.InputContext) -> tf.data.Dataset:
        dataset = pipeline.make_dataset(session.train_source, classes.colors, classes.flip_perm, training=True,
                                        image_size=config.crop_size, scale_size=config.scale_size,
                                        batch_size=batch_size, flip=config.flip, seed=config.seed,
                                        cache=config.cache, repeat=True,
                                        deterministic=True if config.deterministic else None, input_context=context,
                                        augment=config.augment)
        if weight_table is None:
            return dataset.map(lambda im, lb: to_model_io(im, lb, classes, config.which_direction))
        return dataset.map(lambda im, lb: (*to_model_io(im, lb, classes, config.which_direction),
                                           l1_pixel_weights(lb, weight_table)))

    return iter(distribute.distribute_dataset(session.strategy, config.batch_size, replica_dataset))


def _predictor(model: Pix2Pix, session):
    """images -> class scores of the generator's colour mask (validation); None for a BtoA run."""
    if session.config.which_direction != "AtoB":
        log.info("pix2pix: no validation of a BtoA run (it draws photos, not masks)")
        return None
    colors = session.classes.colors

    def predict(images):
        return pipeline.image_to_class_scores(model.generator(images, training=False), colors)
    return predict if session.config.eager else tf.function(predict, reduce_retracing=True)


def _log_sample(writer, model: Pix2Pix, strategy, batch, step: int) -> None:
    """The first replica's first training pair as input | target | output (inference: moving statistics)."""
    input_image, target = (strategy.experimental_local_results(x)[0][:1] for x in batch[:2])
    gen_output = model.generator(input_image, training=False)
    with writer.as_default(step=step):
        tf.summary.image("inputs_targets_outputs", (tf.concat([input_image, target, gen_output], axis=2) + 1.0) / 2.0)


def train(session) -> dict:
    """Train for exactly session.plan.total_steps steps (resuming from the run folder's latest checkpoint);
    returns the last losses. session: run.Session."""
    config, strategy, plan = session.config, session.strategy, session.plan
    weight_table = _l1_weight_table(session)
    learning_rate = _learning_rate(session)
    session.seed()
    model = Pix2Pix(config, strategy, learning_rate, session.classes)
    checkpoints, start = session.checkpoints(model.checkpoint, lambda: int(model.step.numpy()))
    if start == 0 and config.init_from:
        init_generator(model.generator, Path(config.init_from), session.classes)
    if session.finished(start):
        return {}
    validation = session.validation(checkpoints)
    predict = _predictor(model, session) if validation else None
    batches = _batches(session, weight_table)
    writer = tf.summary.create_file_writer(str(session.write_dir / "logs" / "train"))
    losses = {}
    bar = tqdm(total=plan.total_steps, initial=start, desc="pix2pix", unit="step", dynamic_ncols=True,
               disable=None if session.chief else True)
    sample_every = max(config.summary_freq * 10, 1)
    for _ in range(plan.total_steps - start):
        batch = next(batches)
        losses = model.train_step(*batch)
        step = int(model.step.numpy())
        bar.update(1)
        if step % config.summary_freq == 0 or step == plan.total_steps:
            losses = {k: float(v) for k, v in losses.items()}
            guards.check_losses(step, losses, checkpoints.latest.latest_checkpoint)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            if bar.disable and session.chief:  # no terminal: the losses go to the log instead
                log.info("step %d/%d: %s", step, plan.total_steps,
                         ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
            with writer.as_default(step=step):
                for name, value in losses.items():
                    tf.summary.scalar(f"loss/{name}", value)
            if session.chief and (step % sample_every == 0 or step == plan.total_steps):
                _log_sample(writer, model, strategy, batch, step)
        if predict and session.due(step):
            validation(step, predict, plan.epochs(step))
        if step % config.save_freq == 0 and step < plan.total_steps:
            guards.check_losses(step, {k: float(v) for k, v in losses.items()}, checkpoints.latest.latest_checkpoint)
            checkpoints.save(step)   # every worker takes part; only the chief's is kept
    bar.close()
    guards.check_losses(int(model.step.numpy()), {k: float(v) for k, v in losses.items()},
                        checkpoints.latest.latest_checkpoint)
    checkpoints.save(int(model.step.numpy()))
    writer.flush()
    losses = {k: float(v) for k, v in losses.items()}
    log.info("pix2pix: %d steps, epoch %.1f; losses %s; checkpoint %s", int(model.step.numpy()),
             plan.epochs(int(model.step.numpy())), ", ".join(f"{k} {v:.4f}" for k, v in losses.items()),
             checkpoints.latest.latest_checkpoint)
    return losses


def load_generator(config: RunConfig, run_dir: Path, select: str = "latest",
                   classes: ClassSpec | None = None) -> keras.Model:
    """The trained generator of a run folder: its best checkpoint by validation mean F1, or its latest
    (`select`); classes as for build_generator."""
    generator = build_generator(config, classes)
    restore_networks(tf.train.Checkpoint(generator=generator), select_checkpoint(run_dir, select),
                     Path(run_dir) / OPTIONS_FILE, network_shape(config))
    return generator


def network_shape(config: Pix2PixConfig) -> str:
    """The options that shape the networks, for a line about a checkpoint that does not fit them."""
    generator = f", segmenter generator of depth {config.depth}" if config.generator == "segmenter" else ""
    return f"ngf {config.ngf}, ndf {config.ndf}{generator}"
