"""tf.distribute and precision: MirroredStrategy over two logical CPU devices agrees with the default
strategy step for step; a two-process MultiWorkerMirroredStrategy cluster on 127.0.0.1 trains, resumes and
leaves one set of checkpoints, in the chief's run folder only; precision policies and loss scaling."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import REPO
from lipseg_tf.cli import unet as unet_cli
from lipseg_tf.errors import UserError
from lipseg_tf.train import distribute, pix2pix, precision
from lipseg_tf.train.config import Pix2PixConfig

HELPER = Path(__file__).resolve().parent / "distributed_runs.py"


def run_helper(*args, env=None, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, str(HELPER), *map(str, args)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def mirrored_report(tiny_pairs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("mirrored")
    done = run_helper("mirrored", out / "report.json", tiny_pairs["tfrecord"], out / "runs")
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads((out / "report.json").read_text())


def test_mirrored_gan_steps_match_the_default_strategy(mirrored_report):
    default, mirrored = mirrored_report["gan"]["default"], mirrored_report["gan"]["mirrored"]
    assert (default["replicas"], mirrored["replicas"]) == (1, 2)
    for step_default, step_mirrored in zip(default["losses"], mirrored["losses"]):   # 2 steps, global batch 4
        for name in ("gen_total", "gen_gan", "gen_l1", "disc"):
            assert step_mirrored[name] == pytest.approx(step_default[name], rel=1e-5, abs=1e-6), name
    # the update itself agrees: gradients were averaged over the global batch, not summed or halved
    np.testing.assert_allclose(mirrored["generator_weights"], default["generator_weights"], rtol=1e-4, atol=1e-5)
    assert default["losses"][0]["gen_total"] != default["losses"][1]["gen_total"]   # it did train


def test_mirrored_unet_fit_matches_the_default_strategy(mirrored_report):
    default, mirrored = mirrored_report["unet"]["default"], mirrored_report["unet"]["mirrored"]
    assert (default["replicas"], mirrored["replicas"]) == (1, 2)
    np.testing.assert_allclose(mirrored["losses"], default["losses"], rtol=1e-5)
    np.testing.assert_allclose(mirrored["weights"], default["weights"], rtol=1e-4, atol=1e-5)
    assert default["losses"][1] < default["losses"][0]


def test_both_trainers_run_and_pix2pix_resumes_under_mirrored_strategy(mirrored_report):
    assert [r["checkpoints"] for r in mirrored_report["pix2pix_runs"]] == [["ckpt-2.index"],
                                                                          ["ckpt-2.index", "ckpt-3.index"]]
    # 10 pairs / global batch 4 = 2 steps an epoch: --max_steps 2 is one epoch, saved as its step
    assert [r["checkpoints"] for r in mirrored_report["unet_runs"]] == [["ckpt-2.index"]]
    assert all(r["code"] == 0 for key in ("pix2pix_runs", "unet_runs") for r in mirrored_report[key])
    for model in ("pix2pix", "unet"):
        options = mirrored_report[f"{model}_options"]
        assert options["strategy"] == "mirrored" and options["deterministic"] and options["batch_size"] == 2
    pix2pix_options = mirrored_report["pix2pix_options"]
    assert pix2pix_options["l1_balance"] == 1 and pix2pix_options["decay_epochs"] == 1


def test_two_worker_cluster_trains_resumes_and_leaves_one_set_of_checkpoints(tiny_pairs, tmp_path):
    ports = free_ports(2)
    runs, report = tmp_path / "runs", tmp_path / "report.json"
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2")
        command = [sys.executable, str(HELPER), "worker", str(report), str(tiny_pairs["tfrecord"]), str(runs)]
        workers.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True))
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    result = json.loads(report.read_text())
    assert result["replicas"] == 2
    # pix2pix: one checkpoint after the first run, the resumed run added step 3
    assert [r["checkpoints"] for r in result["pix2pix"]] == [["ckpt-2.index"], ["ckpt-2.index", "ckpt-3.index"]]
    assert result["unet"]["checkpoints"] == ["ckpt-2.index"] and result["unet"]["code"] == 0
    step = tf.train.load_variable(str(runs / "pix2pix" / "checkpoints" / "ckpt-3"), "step/.ATTRIBUTES/VARIABLE_VALUE")
    assert int(step) == 3
    for model in ("pix2pix", "unet"):
        # the chief's files only: the other worker's temporary folder is gone
        entries = {p.name for p in (runs / model).iterdir()}
        assert not [name for name in entries if name.startswith("workertemp")], entries
        assert {"options.json", "checkpoints", "logs"} <= entries
        assert json.loads((runs / model / "options.json").read_text())["strategy"] == "multiworker"
    assert "pix2pix: 3 steps" in outputs[0] + outputs[1]


# ------------------------------------------------------------------------------------- in this process

@pytest.mark.parametrize("name", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_outputs_losses_and_weights_in_float32(name):
    keras.utils.set_random_seed(0)
    model = pix2pix.Pix2Pix(Pix2PixConfig(crop_size=32, ngf=4, ndf=4, precision=name))
    compute = name.removeprefix("mixed_")
    assert keras.mixed_precision.global_policy().name == "float32"            # the policy did not leak
    assert model.generator.get_layer("encoder_stage2").layers[0].compute_dtype == compute
    assert all(v.dtype == "float32" for v in model.generator.trainable_variables)
    assert (model.gen_update is not model.gen_optimizer) == (name == "mixed_float16")    # loss scaling
    assert (model.disc_update is not model.disc_optimizer) == (name == "mixed_float16")
    image = tf.random.uniform((2, 32, 32, 3), -1.0, 1.0, seed=1)
    target = tf.random.uniform((2, 32, 32, 3), -0.8, 0.8, seed=2)
    assert model.generator(image, training=False).dtype == tf.float32        # tanh in float32
    assert model.discriminator([image, target], training=False).dtype == tf.float32
    losses = model.train_step(image, target)
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in losses.values())
    assert int(model.gen_optimizer.iterations) == 1 and int(model.disc_optimizer.iterations) == 1


def test_precision_policy_restores_the_previous_one():
    with precision.policy("mixed_bfloat16"):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(ValueError, match="valid: float32, mixed_float16, mixed_bfloat16"):
        with precision.policy("float8"):
            pass


@pytest.mark.parametrize("text, expected", [
    ("{not json", "TF_CONFIG: not valid JSON"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "\"worker\" list"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "\"task\" naming"),
])
def test_malformed_tf_config_is_one_clear_error(text, expected):
    with pytest.raises(UserError, match=expected):
        distribute.check_tf_config(text)
    config = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    assert distribute.check_tf_config(config)["task"]["index"] == 1


def test_multiworker_with_a_bad_tf_config_stops_before_writing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{broken")
    code = unet_cli.main(["--mode", "train", "--input_dir", str(tmp_path), "--output_dir", str(tmp_path / "run"),
                          "--strategy", "multiworker"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and lines[-1].startswith("error: TF_CONFIG: not valid JSON") and len(
        [line for line in lines if line.startswith("error:")]) == 1
    assert not (tmp_path / "run").exists()


def test_chief_and_worker_folders(tmp_path):
    strategy = tf.distribute.get_strategy()
    assert distribute.is_chief(strategy)
    with distribute.write_dir(tmp_path, strategy) as folder:
        assert folder == tmp_path
