#!/usr/bin/env python3
"""Lips and eyes in any photo: detect and align faces, segment, paste the masks back. `python predict.py --help`."""

import sys

from lipseg_tf.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
