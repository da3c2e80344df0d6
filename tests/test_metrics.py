"""metrics: confusion counts, per-part F1/IoU and their means against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from lipseg_tf.train import metrics

# Classes 0 (background), 1, 2, 3; class 3 appears in neither GT nor PR.
GT = np.array([[0, 1, 1],
               [2, 2, 0]])
PR = np.array([[0, 1, 2],
               [2, 0, 0]])
NAMES = ("background", "l_eye", "r_eye", "u_lip")
# By hand (rows = true class, columns = predicted):
#   class 0: (0,0)->0, (1,2)->0                 TP 2, FP 1 ((1,1) true 2 -> 0), FN 0
#   class 1: (0,1)->1, (0,2)->2                 TP 1, FP 0, FN 1
#   class 2: (1,0)->2, (1,1)->0, (0,2) 1->2     TP 1, FP 1, FN 1
EXPECTED_CONFUSION = np.array([[2, 0, 0, 0],
                               [0, 1, 1, 0],
                               [1, 0, 1, 0],
                               [0, 0, 0, 0]])
F1 = {0: 2 * 2 / (2 * 2 + 1 + 0), 1: 2 * 1 / (2 * 1 + 0 + 1), 2: 2 * 1 / (2 * 1 + 1 + 1)}
IOU = {0: 2 / (2 + 1 + 0), 1: 1 / (1 + 0 + 1), 2: 1 / (1 + 1 + 1)}


def test_confusion_matrix_counts_true_rows_predicted_columns():
    confusion = metrics.confusion_matrix(GT, PR, 4)
    np.testing.assert_array_equal(confusion, EXPECTED_CONFUSION)
    assert confusion.dtype == np.int64
    assert confusion.sum() == GT.size


def test_confusion_matrix_rejects_different_sizes():
    with pytest.raises(ValueError, match="differ in size"):
        metrics.confusion_matrix(GT, PR[:, :2], 4)


def test_scores_match_hand_computed_f1_and_iou():
    result = metrics.scores(EXPECTED_CONFUSION)
    for k in (0, 1, 2):
        assert result["f1"][k] == pytest.approx(F1[k])
        assert result["iou"][k] == pytest.approx(IOU[k])
    # class 3: neither present nor predicted -> undefined, not 0 and not 1
    assert np.isnan(result["f1"][3]) and np.isnan(result["iou"][3])


def test_summary_excludes_background_and_absent_class_from_means():
    result = metrics.summary(EXPECTED_CONFUSION, NAMES, images=2)
    assert list(result["parts"]) == ["l_eye", "r_eye", "u_lip"]     # background is not a part
    assert result["parts"]["l_eye"] == {"f1": pytest.approx(2 / 3), "iou": pytest.approx(1 / 2)}
    assert result["parts"]["r_eye"] == {"f1": pytest.approx(1 / 2), "iou": pytest.approx(1 / 3)}
    assert result["parts"]["u_lip"] == {"f1": None, "iou": None}
    assert result["mean_f1"] == pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-6)   # 7/12, not /3
    assert result["mean_iou"] == pytest.approx((1 / 2 + 1 / 3) / 2, abs=1e-6)  # 5/12
    assert result["images"] == 2


def test_summary_counts_a_predicted_but_absent_class_as_zero():
    pred = PR.copy()
    pred[0, 0] = 3                       # a false positive of u_lip, which is absent from GT
    result = metrics.summary(metrics.confusion_matrix(GT, pred, 4), NAMES, images=1)
    assert result["parts"]["u_lip"] == {"f1": 0.0, "iou": 0.0}
    assert result["mean_f1"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3, abs=1e-6)


def test_summary_with_no_part_anywhere_has_no_mean():
    only_background = np.zeros((2, 3), int)
    result = metrics.summary(metrics.confusion_matrix(only_background, only_background, 4), NAMES, images=1)
    assert result["mean_f1"] is None and result["mean_iou"] is None
    assert all(v == {"f1": None, "iou": None} for v in result["parts"].values())


def test_mean_f1_of_one_image():
    assert metrics.mean_f1(GT, PR, 4) == pytest.approx(7 / 12)
    assert metrics.mean_f1(GT, GT, 4) == pytest.approx(1.0)
    assert metrics.mean_f1(np.zeros((2, 2)), np.zeros((2, 2)), 4) is None
    # every part pixel missed: F1 0 for each present part
    assert metrics.mean_f1(GT, np.zeros_like(GT), 4) == pytest.approx(0.0)


def test_format_table_lists_every_part_and_the_mean():
    table = metrics.format_table(metrics.summary(EXPECTED_CONFUSION, NAMES, images=2))
    lines = table.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert rows["l_eye"] == ["0.667", "0.500"]
    assert rows["r_eye"] == ["0.500", "0.333"]
    assert rows["u_lip"] == ["n/a", "n/a"]
    assert rows["mean"] == ["0.583", "0.417"]
    assert "background" not in table
    assert lines[-1] == "(2 images)"
