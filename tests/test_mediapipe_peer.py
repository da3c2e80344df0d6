"""benchmarks/mediapipe_peer: the contour loops, polygon filling and target resizing, without mediapipe.

The connections are copied from mediapipe 0.10.21 (solutions/face_mesh_connections.py); landmark
positions are made up so that every part is a rectangle whose pixels can be counted by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import mediapipe_peer as peer
from lipseg_tf.errors import UserError

FACEMESH_LIPS = frozenset([(61, 146), (146, 91), (91, 181), (181, 84), (84, 17),
                           (17, 314), (314, 405), (405, 321), (321, 375),
                           (375, 291), (61, 185), (185, 40), (40, 39), (39, 37),
                           (37, 0), (0, 267),
                           (267, 269), (269, 270), (270, 409), (409, 291),
                           (78, 95), (95, 88), (88, 178), (178, 87), (87, 14),
                           (14, 317), (317, 402), (402, 318), (318, 324),
                           (324, 308), (78, 191), (191, 80), (80, 81), (81, 82),
                           (82, 13), (13, 312), (312, 311), (311, 310),
                           (310, 415), (415, 308)])
FACEMESH_LEFT_EYE = frozenset([(263, 249), (249, 390), (390, 373), (373, 374),
                               (374, 380), (380, 381), (381, 382), (382, 362),
                               (263, 466), (466, 388), (388, 387), (387, 386),
                               (386, 385), (385, 384), (384, 398), (398, 362)])
FACEMESH_RIGHT_EYE = frozenset([(33, 7), (7, 163), (163, 144), (144, 145),
                                (145, 153), (153, 154), (154, 155), (155, 133),
                                (33, 246), (246, 161), (161, 160), (160, 159),
                                (159, 158), (158, 157), (157, 173), (173, 133)])

# The lip contours as FaceMesh's topology has them (upper: through 0 and 13; lower: through 17 and 14).
OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]

BG, L_EYE, R_EYE, U_LIP, L_LIP = range(5)
CLASS_IDS = {"l_eye": L_EYE, "r_eye": R_EYE, "u_lip": U_LIP, "l_lip": L_LIP}
# At 8 px, with the landmarks of face_landmarks(): each part a rectangle on pixel boundaries.
EXPECTED_8PX = np.array([
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 2, 2, 1, 1, 0, 0],    # r_eye x 2/8..4/8 (image left), l_eye x 4/8..6/8 (image right)
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 3, 3, 3, 3, 0, 0],    # u_lip y 4/8..5/8
    [0, 0, 4, 4, 4, 4, 0, 0],    # l_lip y 5/8..6/8
    [0, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0, 0, 0],
], np.uint8)


def _along(start, end, count):
    return [tuple(p) for p in np.linspace(start, end, count)]


def _rectangle_loop(loop, x0, y0, x1, y1):
    """Positions for a loop of landmark ids spread over the rectangle's outline, in loop order."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    per_side = len(loop) // 4
    points = [p for i in range(4) for p in _along(corners[i], corners[(i + 1) % 4], per_side + 1)[:-1]]
    return dict(zip(loop, points))


def face_landmarks(polygons) -> np.ndarray:
    """(478, 2) landmarks in [0, 1]: the lips two stacked rectangles sharing the mouth line y = 5/8,
    the eyes two rectangles side by side, the subject's left eye on the image's right."""
    landmarks = np.full((478, 2), np.nan)
    lip_line, x0, x1 = 5 / 8, 2 / 8, 6 / 8
    for ids, y in ((OUTER_UPPER, 4 / 8), (OUTER_LOWER, 6 / 8), (INNER_UPPER, lip_line), (INNER_LOWER, lip_line)):
        inner = _along((x0, y), (x1, y), len(ids) - 2)
        for landmark, position in zip(ids, [(x0, lip_line)] + inner + [(x1, lip_line)]):
            landmarks[landmark] = position
    for part, x in (("r_eye", 2 / 8), ("l_eye", 4 / 8)):
        for landmark, position in _rectangle_loop(polygons[part], x, 2 / 8, x + 2 / 8, 3 / 8).items():
            landmarks[landmark] = position
    return landmarks


@pytest.fixture(scope="module")
def polygons():
    return peer.part_polygons(FACEMESH_LIPS, FACEMESH_LEFT_EYE, FACEMESH_RIGHT_EYE)


def test_lip_polygons_are_outer_contour_then_inner_contour_back(polygons):
    assert polygons["u_lip"] == OUTER_UPPER + INNER_UPPER[::-1]
    assert polygons["l_lip"] == OUTER_LOWER + INNER_LOWER[::-1]


@pytest.mark.parametrize("part, edges", [("l_eye", FACEMESH_LEFT_EYE), ("r_eye", FACEMESH_RIGHT_EYE)])
def test_eye_polygon_walks_its_whole_loop(polygons, part, edges):
    loop = polygons[part]
    undirected = {frozenset(edge) for edge in edges}
    assert len(loop) == len(set(loop)) == 16
    assert {frozenset(step) for step in zip(loop, loop[1:] + loop[:1])} == undirected


def test_cycle_order_rejects_a_branch():
    with pytest.raises(ValueError, match="neighbours"):
        peer.cycle_order([(1, 2), (2, 3), (3, 1), (3, 4)], 1)


def test_rasterised_parts_land_on_the_hand_counted_pixels(polygons):
    landmarks = face_landmarks(polygons)
    np.testing.assert_array_equal(peer.predict_labels(landmarks, polygons, CLASS_IDS, 8, 5), EXPECTED_8PX)
    parts = [(CLASS_IDS[part], landmarks[ids]) for part, ids in polygons.items()]
    np.testing.assert_array_equal(peer.rasterise(parts, 8, 5, supersample=1), EXPECTED_8PX)
    assert peer.eye_and_lip_order(landmarks, polygons) == (True, True)
    mirrored = landmarks * [-1, 1] + [1, 0]
    assert peer.eye_and_lip_order(mirrored, polygons) == (False, True)


def test_a_face_not_found_is_all_background(polygons):
    np.testing.assert_array_equal(peer.predict_labels(None, polygons, CLASS_IDS, 8, 5), np.zeros((8, 8)))


def test_a_pixel_takes_the_class_of_most_of_its_samples():
    # One pixel, 4x4 samples: a polygon over its left 3/4 takes it, over its left 1/4 does not.
    three_quarters = np.array([(0, 0), (0.75, 0), (0.75, 1), (0, 1)])
    quarter = np.array([(0, 0), (0.25, 0), (0.25, 1), (0, 1)])
    assert peer.rasterise([(U_LIP, three_quarters)], 1, 5).tolist() == [[U_LIP]]
    assert peer.rasterise([(U_LIP, quarter)], 1, 5).tolist() == [[BG]]


def test_fill_polygon_counts_pixel_centres_inside_a_triangle():
    # Right triangle (0,0), (3.8,0), (0,3.8): centres (j+.5, i+.5) with j + i + 1 < 3.8.
    inside = peer.fill_polygon(np.array([(0, 0), (3.8, 0), (0, 3.8)]), 4, 4)
    expected = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(inside, expected)


def centres_inside(vertices, height, width):
    """The even-odd test at every pixel centre, one edge at a time: the reference for fill_polygon."""
    px, py = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    inside = np.zeros((height, width), bool)
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0)):
        if ay != by:
            inside ^= ((ay > py) != (by > py)) & (px < ax + (py - ay) * (bx - ax) / (by - ay))
    return inside


def test_fill_polygon_matches_the_centre_test_on_random_polygons_and_a_ring():
    rng = np.random.default_rng(0)
    # a ring drawn as one polygon (outer contour, then the inner one back, as the lips are), and one
    # reaching past the image
    ring = np.array([(1.2, 1.2), (10.7, 1.2), (10.7, 9.6), (1.2, 9.6), (1.2, 1.2),
                     (3.6, 3.4), (3.6, 6.7), (8.3, 6.7), (8.3, 3.4), (3.6, 3.4)])
    shapes = [ring, np.array([(-3.0, 2.5), (20.0, 4.0), (6.0, 15.0)])]
    shapes += [rng.uniform(-1, 15, (int(rng.integers(3, 12)), 2)) for _ in range(30)]
    for shape in shapes:
        np.testing.assert_array_equal(peer.fill_polygon(shape, 12, 14), centres_inside(shape, 12, 14))
    assert peer.fill_polygon(ring, 12, 14).sum() > 20 and not peer.fill_polygon(ring, 12, 14)[5, 5]


def test_fill_parts_draws_the_parts_in_order_from_landmark_ids():
    points = np.array([(1.0, 1.0), (9.0, 1.0), (9.0, 5.0), (1.0, 5.0), (5.0, 1.0), (5.0, 5.0)])
    polygons = {"l_eye": [0, 1, 2, 3], "r_eye": [4, 1, 2, 5]}
    labels = peer.fill_parts(np.zeros((6, 10), np.uint8), points, polygons, {"l_eye": 1, "r_eye": 2})
    expected = np.zeros((6, 10), np.uint8)
    expected[1:5, 1:5], expected[1:5, 5:9] = 1, 2   # the later part wins where they overlap
    np.testing.assert_array_equal(labels, expected)


def test_resize_labels_picks_tf_nearest_pixels():
    labels = np.arange(16, dtype=np.uint8).reshape(4, 4)
    # tf.image.resize "nearest", 4 -> 2: source index floor((i + 0.5) * 2) = 1, 3.
    np.testing.assert_array_equal(peer.resize_labels(labels, 2), [[5, 7], [13, 15]])
    np.testing.assert_array_equal(peer.resize_labels(labels, 4), labels)


def test_decode_mask_takes_the_nearest_palette_colour():
    palette = np.array([(0, 0, 0), (0, 255, 0), (0, 0, 255), (255, 0, 0), (255, 255, 0)], np.uint8)
    mask = np.array([[(0, 0, 0), (250, 3, 4)], [(255, 250, 10), (0, 12, 240)]], np.uint8)
    np.testing.assert_array_equal(peer.decode_mask(mask, palette), [[BG, U_LIP], [L_LIP, R_EYE]])


def test_part_class_ids_follow_pairs_json(polygons):
    meta = {"parts": ["u_lip", "l_lip", "l_eye"], "style": "color"}
    assert peer.part_class_ids(meta, polygons) == {"u_lip": 1, "l_lip": 2, "l_eye": 3}
    assert set(peer.part_class_ids({**meta, "style": "binary"}, polygons).values()) == {1}
    with pytest.raises(UserError, match="nose"):
        peer.part_class_ids({"parts": ["l_eye", "nose"], "style": "color"}, polygons)
