"""The built-in synthetic face dataset, in the CelebAMask-HQ layout (dataset.py says what it contains).

    dataset.py   generate(): the folder, the mapping file and the splits; write_face()
    face.py      render_face(): one face, back to front, then the camera and the part masks
    geometry.py  a face's random parameters (frame, colours, eyes, mouth) and its eye outlines
    scene.py     background, neck and clothes
    head.py      hair and fringe, ears, the face outline, the nose
    features.py  brows, eyes, mouth, sunglasses
    canvas.py    point lists, the face's frame, and the painter that draws photo and label map together
"""

from lipseg_tf.prep.sample.dataset import (
    CELEBA_TOTAL,
    generate,
    jpeg_quality,
    mapping_rows,
    split_counts,
    write_face,
)
from lipseg_tf.prep.sample.face import render_face

__all__ = ["CELEBA_TOTAL", "generate", "jpeg_quality", "mapping_rows", "render_face", "split_counts", "write_face"]
