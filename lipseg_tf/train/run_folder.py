"""Who may write a run folder, and when: the trainers' side of prep/folders.py's rule.

    claim_run_folder(folder, model)   a new folder, one holding none of the files a train run writes, or a
                                      run folder of this model (its options.json says so); nothing a run
                                      writes there may be a link
    RunLock(folder)                   <run>/train.lock holds the pid of the one training writing the folder;
                                      a lock whose process is gone (killed) is taken over
    resume_command(config)            the command line that resumes a run, for the line an interruption prints
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
from pathlib import Path

from lipseg_tf.errors import UserError
from lipseg_tf.prep.folders import check_output_dir, claim_folder, read_json_object
from lipseg_tf.train.config import CHECKPOINT_DIR, OPTIONS_FILE, RunConfig

log = logging.getLogger("lipseg_tf")

LOCK_FILE = "train.lock"
# What a train run writes in its folder (checkpoints.py, validation.py, the trainers' logs).
RUN_FILES = (OPTIONS_FILE, CHECKPOINT_DIR, "logs", "log.csv", "val.csv")
# The keys that make an options.json this project's (every version wrote them).
OPTIONS_KEYS = ("model", "parts", "style")


def claim_run_folder(folder: Path, model: str) -> None:
    """UserError unless `model`'s trainer may write into folder (creates nothing): it is no link and no
    shipped model, and either holds none of RUN_FILES or holds an options.json of a `model` run."""
    check_output_dir(folder, "--output_dir")
    script = f"{model}.py --mode train"
    claim_folder(folder, OPTIONS_FILE, [folder / name for name in RUN_FILES], script, keys=OPTIONS_KEYS)
    saved = read_json_object(folder / OPTIONS_FILE, f"the {OPTIONS_FILE} {script} writes")
    if saved is not None and saved.get("model") != model:
        raise UserError(f"{folder / OPTIONS_FILE}: the options of a {saved.get('model')!r} run, not of a {model} "
                        f"run: expected a new or empty --output_dir (or a {model} run folder)")
    for name in (*RUN_FILES, LOCK_FILE):
        if (folder / name).is_symlink():
            raise UserError(f"{folder / name}: a symbolic link (to {os.readlink(folder / name)}); a run never "
                            "writes through a link: expected the run's own file or none")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: alive
        return True
    return True


class RunLock:
    """`with RunLock(folder):` holds <folder>/train.lock, which names this process's pid, and removes it at
    the end. UserError when a running process holds it; a lock whose process is gone is taken over."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE

    def __enter__(self) -> "RunLock":
        for _ in range(3):   # a lock taken over can be raced for: try again
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                self._take_over()
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(f"{os.getpid()}\n")
            return self
        raise UserError(f"{self.path}: could not take the run folder's lock (other trainings keep taking it)")

    def _take_over(self) -> None:
        """Remove a stale lock (its pid no longer runs); UserError when its process is running."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:   # released meanwhile
            return
        except (OSError, UnicodeDecodeError):
            text = ""
        pid = int(text) if text.isdigit() else None
        if pid is not None and _pid_alive(pid):
            raise UserError(f"{self.path.parent}: another training (pid {pid}) is writing this run folder "
                            f"(its lock {self.path}): wait for it to end, or train into another --output_dir")
        log.warning("%s: taking over a stale lock (pid %s no longer runs)", self.path, text or "unknown")
        self.path.unlink(missing_ok=True)

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def resume_command(config: RunConfig) -> str:
    """`unet.py --mode train --input_dir ... --output_dir ...` with every option that is not its default:
    what resumes this run as it was started (a run folder holding checkpoints resumes by itself)."""
    args = [f"{config.model}.py", "--mode", "train"]
    for spec in dataclasses.fields(config):
        if not spec.metadata.get("flag", True) or spec.name in ("mode", "continue_train"):
            continue
        value = getattr(config, spec.name)
        default = round(config.crop_size * 286 / 256) if spec.name == "scale_size" else spec.default
        if value == default or value is None:
            continue
        if isinstance(value, bool):
            args.append(f"--{spec.name}" if value else f"--no_{spec.name}")
        else:
            args += [f"--{spec.name}", ",".join(value) if isinstance(value, tuple) else str(value)]
    return shlex.join(args)
