#!/usr/bin/env python3
"""Grids of test results: photo | target | prediction | overlay. `python print.py --help`."""

import sys

from lipseg_tf.cli.print import main

if __name__ == "__main__":
    sys.exit(main())
