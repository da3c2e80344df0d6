"""TensorFlow's C++ start-up lines kept off stderr unless the user asked for them (--verbose).

TensorFlow and its TFLite interpreter write some lines straight to file descriptor 2, before or beside
any log level ("cudart_stub.cc ... Could not find cuda drivers", "INFO: Created TensorFlow Lite XNNPACK
delegate for CPU."). A new user reads them as errors. caught_stderr() points descriptor 2 at a temporary
file for a block of code and drops what was written there, or replays it when the block fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator


def verbose() -> bool:
    """Whether the user asked for debug output (setup_logging(verbose=True) sets the lipseg_tf logger so)."""
    return logging.getLogger("lipseg_tf").getEffectiveLevel() <= logging.DEBUG


@contextlib.contextmanager
def caught_stderr(enabled: bool | None = None) -> Iterator[None]:
    """Run the block with file descriptor 2 caught (enabled None: unless verbose()); what it wrote is
    dropped, or written to stderr after all when the block raises."""
    if enabled is None:
        enabled = not verbose()
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            except BaseException:
                sys.stderr.flush()
                os.dup2(saved, 2)
                caught.seek(0)
                sys.stderr.write(caught.read().decode(errors="replace"))
                raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and let it probe for GPUs with file descriptor 2 (stderr, which its C++ code
    writes to directly) caught (caught_stderr, unless verbose()): its start-up lines are dropped, or shown
    if the import fails. Nothing is caught when TensorFlow is imported already (the caller's own import
    showed its lines, or the caller quietened it)."""
    if "tensorflow" in sys.modules:
        return
    with caught_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices()   # CUDA's start-up lines ("failed call to cuInit") come here
