"""The built-in synthetic face dataset, in the CelebAMask-HQ layout (see dataset.py)."""

from lipseg_tf.prep.sample.dataset import (
    CELEBA_TOTAL,
    generate,
    jpeg_quality,
    mapping_rows,
    render_face,
    split_counts,
    write_face,
)

__all__ = ["CELEBA_TOTAL", "generate", "jpeg_quality", "mapping_rows", "render_face", "split_counts", "write_face"]
