#!/usr/bin/env python3
"""Merge CelebAMask-HQ's per-part annotation files into one mask per photo (lipseg_tf/prep/masks.py).

    python g_mask.py --data-dir CelebAMask-HQ --out-dir masks [--parts l_eye,r_eye,u_lip,l_lip]
                     [--style color|binary|index] [--fix-sides] [--workers N] [--limit N] [--force]
"""

import sys

from lipseg_tf.cli.g_mask import main

if __name__ == "__main__":
    sys.exit(main())
