#!/usr/bin/env python3
"""Photo + mask -> side-by-side AB training pairs in train/val/test folders (lipseg_tf/prep/pairs.py).

    python process.py --data-dir CelebAMask-HQ --masks masks --out-dir pairs [--size 256]
    python process.py --images photos --masks masks --out-dir pairs [--split 0.8,0.1,0.1 --seed 0]
"""

import sys

from lipseg_tf.cli.process import main

if __name__ == "__main__":
    sys.exit(main())
