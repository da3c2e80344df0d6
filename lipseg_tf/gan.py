"""pix2pix training: U-Net generator against a PatchGAN, adversarial BCE + lambda * L1.

Photo (A) -> colour mask image (B) by default; --which_direction BtoA learns the reverse translation.
"""

from __future__ import annotations

import logging
from pathlib import Path

import keras
import tensorflow as tf
from tqdm import tqdm

from lipseg_tf import data, models
from lipseg_tf.checkpoints import CHECKPOINT_DIR, latest_checkpoint
from lipseg_tf.classes import ClassSpec
from lipseg_tf.config import RunConfig

log = logging.getLogger("lipseg_tf")
_bce = keras.losses.BinaryCrossentropy(from_logits=True)


def generator_loss(disc_fake_logits, gen_output, target, gan_weight: float, l1_weight: float):
    """(total, gan, l1): the generator wants its output judged real, and close to the target in L1."""
    gan = _bce(tf.ones_like(disc_fake_logits), disc_fake_logits)
    l1 = tf.reduce_mean(tf.abs(target - gen_output))
    return gan_weight * gan + l1_weight * l1, gan, l1


def discriminator_loss(disc_real_logits, disc_fake_logits):
    """BCE: real pairs judged 1, generated pairs judged 0."""
    return (_bce(tf.ones_like(disc_real_logits), disc_real_logits)
            + _bce(tf.zeros_like(disc_fake_logits), disc_fake_logits))


class Pix2Pix:
    """The two networks, their optimizers and one training step; no state beyond those."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.generator = models.build_generator(config.image_size, config.ngf)
        self.discriminator = models.build_discriminator(config.image_size, config.ndf)
        self.gen_optimizer = keras.optimizers.Adam(config.lr, beta_1=config.beta1)
        self.disc_optimizer = keras.optimizers.Adam(config.lr, beta_1=config.beta1)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(generator=self.generator, discriminator=self.discriminator,
                                              gen_optimizer=self.gen_optimizer,
                                              disc_optimizer=self.disc_optimizer, step=self.step)
        self.train_step = (self._train_step if config.eager
                           else tf.function(self._train_step, jit_compile=config.jit or None))

    def _train_step(self, input_image, target):
        """One update of both networks; returns the loss parts as a dict of scalars."""
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = self.generator(input_image, training=True)
            disc_real_logits = self.discriminator([input_image, target], training=True)
            disc_fake_logits = self.discriminator([input_image, gen_output], training=True)
            gen_total, gen_gan, gen_l1 = generator_loss(disc_fake_logits, gen_output, target,
                                                        self.config.gan_weight, self.config.l1_weight)
            disc_loss = discriminator_loss(disc_real_logits, disc_fake_logits)
        gen_vars = self.generator.trainable_variables
        disc_vars = self.discriminator.trainable_variables
        self.gen_optimizer.apply_gradients(zip(gen_tape.gradient(gen_total, gen_vars), gen_vars))
        self.disc_optimizer.apply_gradients(zip(disc_tape.gradient(disc_loss, disc_vars), disc_vars))
        self.step.assign_add(1)
        return {"gen_total": gen_total, "gen_gan": gen_gan, "gen_l1": gen_l1, "disc": disc_loss}


def to_model_io(image, labels, classes: ClassSpec, direction: str):
    """(photo, class ids) -> (network input, network target) as [-1, 1] images for this direction."""
    mask_image = data.labels_to_image(labels, classes.colors)
    return (image, mask_image) if direction == "AtoB" else (mask_image, image)


def train(config: RunConfig, classes: ClassSpec, train_files: list[Path]) -> dict:
    """Train (resuming from the latest checkpoint in the run folder); returns the last losses."""
    run_dir = Path(config.output_dir)
    keras.utils.set_random_seed(config.seed)  # weights, dropout and shuffling all follow --seed
    model = Pix2Pix(config)
    manager = tf.train.CheckpointManager(model.checkpoint, str(run_dir / CHECKPOINT_DIR), config.max_checkpoints)
    resume_from = latest_checkpoint(config.checkpoint) if config.checkpoint else manager.latest_checkpoint
    if resume_from:
        model.checkpoint.restore(resume_from).expect_partial()
        log.info("resumed from %s at step %d", resume_from, int(model.step))

    steps_per_epoch = max(1, len(train_files) // config.batch_size)
    total_steps = config.max_steps or (config.max_epochs or 1) * steps_per_epoch
    dataset = data.make_dataset(train_files, classes.colors, classes.flip_perm, training=True,
                                image_size=config.image_size, scale_size=config.scale_size,
                                batch_size=config.batch_size, flip=config.flip, seed=config.seed,
                                cache=config.cache, repeat=True)
    dataset = dataset.map(lambda im, lb: to_model_io(im, lb, classes, config.which_direction))
    writer = tf.summary.create_file_writer(str(run_dir / "logs" / "train"))
    start = int(model.step)
    if start >= total_steps:
        log.info("already trained %d of %d steps; nothing to do", start, total_steps)
        return {}
    losses = {}
    bar = tqdm(total=total_steps, initial=start, desc="pix2pix", unit="step", dynamic_ncols=True,
               disable=None)
    sample_every = max(config.summary_freq * 10, 1)
    for input_image, target in dataset.take(total_steps - start):
        losses = model.train_step(input_image, target)
        step = int(model.step)
        bar.update(1)
        if step % config.summary_freq == 0 or step == total_steps:
            losses = {k: float(v) for k, v in losses.items()}
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()})
            if bar.disable:  # no terminal: the losses go to the log instead
                log.info("step %d/%d: %s", step, total_steps,
                         ", ".join(f"{k} {v:.4f}" for k, v in losses.items()))
            with writer.as_default(step=step):
                for name, value in losses.items():
                    tf.summary.scalar(f"loss/{name}", value)
                if step % sample_every == 0 or step == total_steps:
                    gen_output = model.generator(input_image[:1], training=False)
                    row = tf.concat([input_image[:1], target[:1], gen_output], axis=2)
                    tf.summary.image("inputs_targets_outputs", (row + 1.0) / 2.0)
        if step % config.save_freq == 0:
            manager.save(checkpoint_number=step)
    bar.close()
    manager.save(checkpoint_number=int(model.step))
    writer.flush()
    losses = {k: float(v) for k, v in losses.items()}
    log.info("pix2pix: %d steps, epoch %.1f; losses %s; checkpoint %s", int(model.step),
             int(model.step) / steps_per_epoch, ", ".join(f"{k} {v:.4f}" for k, v in losses.items()),
             manager.latest_checkpoint)
    return losses


def load_generator(config: RunConfig, run_dir: Path) -> keras.Model:
    """The trained generator of a run folder (its latest checkpoint)."""
    generator = models.build_generator(config.image_size, config.ngf)
    tf.train.Checkpoint(generator=generator).restore(latest_checkpoint(run_dir)).expect_partial()
    return generator
