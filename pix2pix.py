#!/usr/bin/env python3
"""pix2pix: photo -> colour mask image. `python pix2pix.py --help` for the options."""

import sys

from lipseg_tf import cli, runner

if __name__ == "__main__":
    sys.exit(cli.run(lambda argv: runner.main("pix2pix", argv)))
