"""What every entry script shares: logging set-up, turning a UserError into one line and exit 1, and
the argparse type of a positive count."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from typing import Callable, Sequence

from lipseg_tf.errors import UserError
from lipseg_tf.quiet import import_tensorflow_quietly

log = logging.getLogger("lipseg_tf")


def setup_logging(verbose: bool = False, tensorflow: bool = False) -> None:
    """Plain `lipseg_tf: message` lines on stderr, and only those unless verbose.

    tensorflow: import TensorFlow now (call this before anything imports it), so that its start-up
    lines stay off stderr: they are written at import and when it first looks for a GPU, partly before
    its log level applies ("All log messages before absl::InitializeLog() ...", cudart_stub.cc, cuInit),
    so the import and the device probe run with stderr caught (import_tensorflow_quietly). After that,
    TF_CPP_MIN_LOG_LEVEL 3 keeps its C++ info, warning and error lines away (such as grappler's
    "remapper failed" while pix2pix trains); a failure still reaches the user as a Python exception.
    verbose: TensorFlow's lines as it writes them, and debug logging.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "3")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(name)s: %(message)s", stream=sys.stderr, force=True)
    for noisy in ("tensorflow", "absl", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)
    if tensorflow and not verbose:
        import_tensorflow_quietly()


def run(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Run an entry point; a UserError or an OSError becomes `error: <message>` on stderr and exit status 1."""
    try:
        return int(main(argv) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # the output path: no space left, read-only, removed while running
        print(f"error: {os_error_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:   # a trainer's says how to resume
        print("error: interrupted" + (f"; {err}" if str(err) else ""), file=sys.stderr)
        return 130
    except Exception as err:
        line = tensorflow_write_error_line(err)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return 1


def os_error_line(err: OSError) -> str:
    """One line for an operating-system error: the file, then the system's reason."""
    where = " -> ".join(str(name) for name in (err.filename, getattr(err, "filename2", None)) if name)
    return f"{where + ': ' if where else ''}{err.strerror or err}".replace("\n", " ")


# TensorFlow's own writes (checkpoints, TensorBoard logs) fail with an OpError, not an OSError, whose
# message holds "<file>; <the system's reason>".
TF_WRITE_ERROR = re.compile(r"(\S+); (No space left on device|Read-only file system|Permission denied)")


def tensorflow_write_error_line(err: Exception) -> str | None:
    """One line for a TensorFlow error writing a file (a checkpoint on a full disk): the file, then the
    system's reason; None for any other error. A checkpoint's temporary shard is named by its checkpoint."""
    if not type(err).__module__.startswith("tensorflow"):
        return None
    match = TF_WRITE_ERROR.search(str(err))
    if match is None:
        return None
    path, reason = match.groups()
    checkpoint = re.match(r"(.*/ckpt-\d+)_temp/", path)
    return f"{checkpoint.group(1)}: {reason} (writing the checkpoint)" if checkpoint else f"{path}: {reason}"


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value
