"""unet.py: train, test or export the U-Net segmenter (photo -> per-pixel classes); see runner.py."""

from __future__ import annotations

from typing import Sequence

from lipseg_tf.cli import runner
from lipseg_tf.cli.common import run


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of unet.py: returns 0, or 1 after a one-line error."""
    return run(lambda args: runner.main("unet", args), argv)
