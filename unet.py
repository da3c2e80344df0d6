#!/usr/bin/env python3
"""U-Net segmenter: photo -> per-pixel classes. `python unet.py --help` for the options."""

import sys

from lipseg_tf import cli, runner

if __name__ == "__main__":
    sys.exit(cli.run(lambda argv: runner.main("unet", argv)))
