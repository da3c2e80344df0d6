#!/usr/bin/env python3
"""Lips and eyes in any photo: detect and align faces, segment, paste the masks back. `python predict.py --help`."""

import sys

from lipseg_tf import cli, predict

if __name__ == "__main__":
    sys.exit(cli.run(predict.main))
