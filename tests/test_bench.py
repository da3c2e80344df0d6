"""The benchmark runs end to end at a tiny size and writes the JSON it promises. (A benchmark is not a
test: the figures themselves are not checked, only that every row holds a measured pair and its ratio.)"""

from __future__ import annotations

import json

import pytest

from lipseg_tf.errors import UserError
from lipseg_tf.tools import bench, bench_models


def test_bench_runs_every_section_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    work = tmp_path / "work"
    # One network (pix2pix's step is gan.Pix2Pix, tested on its own): the section runs, and quickly.
    assert bench.main(["--count", "3", "--photo-size", "64", "--size", "32", "--ngf", "4", "--models", "unet",
                       "--batch-sizes", "1", "--precisions", "float32", "--jit", "off", "--train-steps", "1",
                       "--pipeline-batch", "1",
                       "--pipeline-epochs", "1", "--inference-runs", "2", "--inference-batch", "2",
                       "--workers", "1", "--workdir", str(work), "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    assert set(document) == {"machine", "settings", "seconds", "rows"}
    assert document["machine"]["cores"] >= 1 and document["machine"]["tensorflow"]
    assert document["settings"]["size"] == 32 and document["seconds"]["total"] > 0
    rows = document["rows"]
    assert all(set(row) == set(bench_models.ROW_KEYS) for row in rows)
    assert {row["section"] for row in rows} == set(bench.SECTIONS)
    names = [row["name"] for row in rows]
    assert "masks/s" in names and "pairs/s, TFRecord" in names and "AB pairs/s delivered, TFRecord" in names
    assert "unet 32px batch 1: float32" in names and "unet 32px latency p95, batch 1" in names
    for row in rows:
        assert row["skipped"] is None and row["ours"] > 0 and row["baseline"] > 0, row
        speedup = row["ours"] / row["baseline"] if row["unit"] != "ms" else row["baseline"] / row["ours"]
        assert row["ratio"] == pytest.approx(speedup)
    g_mask = next(row for row in rows if row["section"] == "g_mask")
    assert g_mask["details"] == {"masks": 3, "outputs_identical": True}     # baseline and ours: same masks
    table = capsys.readouterr().out
    assert table.startswith("| section | measure |") and "pairs/s, PNG" in table


def test_bench_rejects_an_unknown_section(tmp_path):
    with pytest.raises(UserError, match="--sections: unknown gpu; valid: g_mask, process"):
        bench.main(["--sections", "gpu", "--json", str(tmp_path / "b.json")])
