"""Merge CelebAMask-HQ's per-part annotation files into one mask per photo (see lipseg_tf/masks.py).

    python g_mask.py --data-dir CelebAMask-HQ --out-dir masks [--parts l_eye,r_eye,u_lip,l_lip]
                     [--style color|binary|index] [--workers N] [--limit N] [--force]
"""

import sys

from lipseg_tf import cli, masks

if __name__ == "__main__":
    cli.setup_logging()
    sys.exit(masks.main())
