"""A model with operating points calls each finding positive or negative: the window shows the
call (bold finding, the tick on its bar, the sentence under the list), and the JSON and CSV of
`explain` and of the window's exports carry it."""

import csv
import json
import shutil

import pytest

from gradcam_viewer.cli import main
from gradcam_viewer.resources import demo_model_path, samples_dir
from gui_helpers import wait_result, wait_until

SAMPLE = samples_dir() / "phantom_02_cardiomegaly_effusion.png"


@pytest.fixture
def model_with_points(tmp_path):
    """The demo model with operating points for all labels but Consolidation (thresholds
    around the sample's values, so that some calls are positive and some negative)."""
    from gradcam_viewer.models.manifest import write_manifest

    folder = tmp_path / "model"
    folder.mkdir()
    for f in demo_model_path().parent.iterdir():
        shutil.copy(f, folder / f.name)
    model = folder / demo_model_path().name
    manifest = json.loads(model.with_suffix(".json").read_text())
    thresholds = {"Cardiomegaly": 0.3, "Effusion": 0.95, "Nodule": 0.2, "Mass": 0.5,
                  "Pneumothorax": 0.001}
    manifest["operating_points"] = {
        "rule": "sensitivity=0.9", "cases": 212, "date": "2026-03-01",
        "weights_sha256": manifest["weights_sha256"],
        "labels": {label: {"threshold": t, "threshold_ci": [t - 0.1, t + 0.1],
                           "sensitivity": 0.9, "specificity": 0.6, "positives": 40,
                           "negatives": 172} for label, t in thresholds.items()}}
    write_manifest(model.with_suffix(".json"), manifest)
    return model, thresholds


def _values(path):
    with open(path) as f:
        return json.load(f)


def test_explain_outputs_carry_the_calls(model_with_points, tmp_path):
    model, thresholds = model_with_points
    out = tmp_path / "out"
    assert main(["explain", str(SAMPLE), "--model", str(model), "--out", str(out)]) == 0
    [record_path] = out.glob("*.json")
    record = _values(record_path)
    values = record["probabilities"]
    want = {label: (values[label] >= thresholds[label] if label in thresholds else None)
            for label in values}
    assert record["calls"] == want
    assert True in want.values() and False in want.values()  # both kinds of call are tested
    assert record["operating_points"] == {"rule": "sensitivity=0.9", "cases": 212,
                                          "date": "2026-03-01"}
    [row] = list(csv.DictReader((out / "predictions.csv").open()))
    words = {True: "positive", False: "negative", None: ""}
    assert {label: row[f"{label} call"] for label in values} == \
        {label: words[c] for label, c in want.items()}
    # a model without points: no calls, the columns as before
    plain = tmp_path / "plain"
    assert main(["explain", str(SAMPLE), "--out", str(plain)]) == 0
    assert "calls" not in _values(next(plain.glob("*.json")))
    assert not any(c.endswith(" call") for c in next(csv.reader((plain / "predictions.csv")
                                                               .open())))


def test_the_window_shows_and_exports_the_calls(qapp, qtbot, tmp_path, model_with_points):
    from PySide6.QtCore import QSettings

    from gradcam_viewer.ui.main_window import MainWindow

    model, thresholds = model_with_points
    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.show()
    try:
        win.load_model("keras", str(model))
        wait_until(lambda: win.session.model is not None, 180)
        win.open_file(SAMPLE)
        result = wait_result(win, SAMPLE)
        labels = win.session.model.labels
        values = dict(zip(labels, map(float, result.probabilities), strict=True))
        shown = win.findings.labels.calls()
        assert shown == {label: values[label] >= t for label, t in thresholds.items()}
        positive = next(label for label, on in shown.items() if on)
        win.findings.labels.select_label(labels.index(positive))
        assert win.findings.call.text() == (
            f"{positive}: positive at the operating point set on 212 local cases, "
            "sensitivity 0.90")
        win.findings.labels.select_label(labels.index("Consolidation"))
        assert not win.findings.call.isVisible()  # no point for it: no call
        win.exports.predictions(tmp_path / "w.json", "json")
        assert _values(tmp_path / "w.json")["calls"] == {
            label: (values[label] >= thresholds[label] if label in thresholds else None)
            for label in labels}
        win.exports.predictions(tmp_path / "w.csv", "csv")
        [row] = list(csv.DictReader((tmp_path / "w.csv").open()))
        assert row[f"{positive} call"] == "positive" and row["Consolidation call"] == ""
    finally:
        win.shutdown()
