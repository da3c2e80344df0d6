#!/usr/bin/env python3
"""Grids of test results: photo | target | prediction | overlay. `python print.py --help`."""

import sys

from lipseg_tf import cli, plots

if __name__ == "__main__":
    cli.setup_logging()
    sys.exit(cli.run(plots.main))
