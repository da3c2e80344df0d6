"""benchmarks/video_speed.py without MediaPipe: a short run of lipseg_tf's side on the synthetic clip,
and the table's ratios to FaceMesh's fps from given figures."""

from __future__ import annotations

import json

import pytest

from benchmarks import video_speed
from lipseg_tf.errors import UserError


def test_a_short_run_times_and_scores_each_system(tmp_path, capsys):
    out = tmp_path / "video.json"
    assert video_speed.main(["--systems", "small:off", "--frames", "12", "--rounds", "2", "--no-mediapipe",
                             "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    row = results["lipseg"]["small:off"]
    assert len(row["fps"]) == 2 and all(fps > 0 for fps in row["fps"])
    assert len(row["cpu_ms"]) == 2 and all(cpu > 0 for cpu in row["cpu_ms"])
    assert row["f1_moving"] > 0.8                 # the synthetic face, tracked and smoothed
    assert 0 <= row["flicker_still"] < 0.2 and row["model"].endswith("unet-small")
    assert "mediapipe" not in results and "| lipseg_tf small:off |" in capsys.readouterr().out


def test_the_table_gives_each_system_its_ratio_to_facemesh():
    results = {"data": "synthetic", "frames": 10, "rounds": 3,
               "lipseg": {"fast": {"fps": [90.0, 100.0, 120.0], "cpu_ms": [14.0, 12.0, 13.0], "f1_moving": 0.93,
                                   "flicker_still": 0.015}},
               "mediapipe": {"version": "0.10.21", "fps_facemesh": [200.0, 150.0, 250.0],
                             "fps_with_fill": [100.0, 80.0, 120.0], "cpu_ms": [9.0, 10.0, 11.0], "f1_moving": 0.87,
                             "flicker_still": 0.044}}
    table = video_speed.format_report(results)
    assert "| lipseg_tf fast | 100 (90-120) | 0.50 | 1.00 | 13.0 | 0.930 | 0.0150 |" in table
    assert "| MediaPipe FaceMesh, parts filled | 100 (80-120) | — | 1.00 | 10.0 | 0.870 | 0.0440 |" in table


def test_a_system_names_a_model_and_at_most_a_tta():
    assert video_speed.parse_system("small:off") == ("small", "off", True)
    assert video_speed.parse_system("export/unet") == ("export/unet", None, True)
    assert video_speed.parse_system("small:both") == ("small", None, False)  # both flip runs every frame
    for bad in ("fast:fast", "", ":off"):
        with pytest.raises(UserError, match="MODEL:off"):
            video_speed.parse_system(bad)
    with pytest.raises(SystemExit):   # argparse's one line: --rounds 0
        video_speed.build_parser().parse_args(["--rounds", "0"])
