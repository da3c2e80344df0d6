#!/usr/bin/env python3
"""pix2pix: photo -> colour mask image. `python pix2pix.py --help` for the options."""

import sys

from lipseg_tf.cli.pix2pix import main

if __name__ == "__main__":
    sys.exit(main())
