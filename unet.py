#!/usr/bin/env python3
"""U-Net segmenter: photo -> per-pixel classes. `python unet.py --help` for the options."""

import sys

from lipseg_tf.cli.unet import main

if __name__ == "__main__":
    sys.exit(main())
