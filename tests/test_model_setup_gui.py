"""The set-up dialog (pytest-qt): a model without a manifest opens it; labels, preset and
output kind are chosen with a live preview; Save writes the manifest beside the model; the
model reopens without the dialog and shows what Keras + the chosen activation give."""

import keras
import numpy as np
import pytest
from PIL import Image

import models_zoo as zoo
from gradcam_viewer.imaging import load_image, to_display
from gradcam_viewer.models.manifest import read_manifest, sha256_of
from gradcam_viewer.resources import samples_dir
from gui_helpers import wait_result, wait_until

PNG = samples_dir() / "phantom_04_mass_consolidation.png"
LABELS = ["Mass", "Consolidation", "Effusion"]


def _oracle(model_path, size=32):
    """Keras on keras.applications.xception preprocessing, then keras' sigmoid."""
    model = keras.models.load_model(model_path, compile=False)
    small = np.asarray(Image.fromarray(to_display(load_image(PNG))).resize(
        (size, size), Image.Resampling.BILINEAR))
    x = keras.applications.xception.preprocess_input(
        np.repeat(small[..., None], 3, axis=-1).astype(np.float32)[None])
    return keras.ops.convert_to_numpy(keras.activations.sigmoid(model.predict(x, verbose=0)))[0]


def _dialog(win):
    wait_until(lambda: win.model_setup.dialog is not None
               and win.model_setup.dialog.isVisible(), 120)
    return win.model_setup.dialog


def test_setup_dialog_writes_manifest_and_model_reopens_in_one_step(win, qtbot, tmp_path):
    path = tmp_path / "logits_cnn.keras"
    zoo.small_cnn_gap(activation=None).save(path)
    expected = _oracle(path)
    win.open_file(PNG)
    wait_result(win, PNG)
    win.load_model("keras", str(path))
    dialog = _dialog(win)
    assert win.session.model.name == "logits_cnn"  # usable with defaults meanwhile, and honest:
    assert win.findings.labels.header_title() == "scores (not probabilities)"
    assert dialog.found.final_activation == "linear" and dialog.found.preset == "unit"
    assert dialog.layer.currentData() == "conv2"

    dialog.labels_edit.setPlainText("Mass, Consolidation, Effusion")
    dialog.preset.setCurrentIndex(dialog.preset.findData("tf"))
    dialog.output.setCurrentIndex(dialog.output.findData("logits:sigmoid"))
    dialog.name.setText("Logits CNN")
    sent = dialog.preview_id
    wait_until(lambda: dialog.preview_id > sent and dialog.preview_values is not None
               and dialog.preview.topLevelItemCount() == 3, 60)
    np.testing.assert_allclose(dialog.preview_values, expected, atol=1e-5)
    assert dialog.save_button.isEnabled()

    qtbot.mouseClick(dialog.save_button, qtbot_left())
    manifest = read_manifest(tmp_path / "logits_cnn.json")
    assert manifest["labels"] == LABELS and manifest["weights_sha256"] == sha256_of(path)
    assert manifest["preprocessing"] == {"kind": "tf"}
    assert (manifest["output_kind"], manifest["output_activation"]) == ("logits", "sigmoid")

    wait_until(lambda: win.session.model is not None and win.session.model.name == "Logits CNN", 120)
    result = wait_result(win, PNG)
    for _ in range(20):  # a set-up request would have been queued with the model
        qtbot.wait(10)
    assert win.model_setup.dialog is None
    assert win.findings.labels.header_title() == "Probability"
    assert win.session.model.labels == LABELS
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    shown = win.findings.labels.shown_probabilities()
    np.testing.assert_allclose([shown[k] for k in LABELS], expected, atol=1e-3)


def test_setup_dialog_checks_choices(win, qtbot, tmp_path):
    path = tmp_path / "plain.keras"
    zoo.small_cnn_gap(activation=None).save(path)
    win.open_file(PNG)  # the preview runs on the image shown (each test has its own window)
    wait_result(win, PNG)
    win.load_model("keras", str(path))
    dialog = _dialog(win)
    dialog.labels_edit.setPlainText("a\nb")
    assert not dialog.save_button.isEnabled() and "3 outputs but 2" in dialog.problem.text()
    (tmp_path / "labels.csv").write_text("x,y,z\n1,0,0\n")
    dialog.load_labels_file(tmp_path / "labels.csv")
    assert dialog.labels() == ["x", "y", "z"] and dialog.save_button.isEnabled()
    dialog.output.setCurrentIndex(dialog.output.findData("scores"))
    wait_until(lambda: dialog.preview_values is not None
               and dialog.preview.headerItem().text(1) == "scores (not probabilities)", 60)
    dialog.reject()
    assert not (tmp_path / "plain.json").exists()
    assert win.model_setup.dialog is None
    # cancelled: the model runs with defaults, and its exports do not say "probabilities"
    import json

    from gradcam_viewer.ui import exporting

    win.open_file(PNG)
    wait_result(win, PNG)
    assert win.session.model.name == "plain" and win.session.model.labels == ["class 0", "class 1", "class 2"]
    record = json.loads(win.exports.predictions(tmp_path / "p.json", "json").read_text())
    assert "probabilities" not in record and set(record["scores"]) == set(win.session.model.labels)
    csv_text = win.exports.predictions(tmp_path / "p.csv", "csv").read_text()
    assert csv_text.splitlines()[1].endswith(",scores (not probabilities),not calibrated")
    assert ("score", False) in [(t.split(" ")[0], b) for t, b in exporting.panel_lines(win.snapshot())]
    win.load_model("demo", "")
    wait_until(lambda: win.session.model is not None and win.session.model.is_demo, 120)


def qtbot_left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


@pytest.mark.slow
def test_open_chexnet_weights_with_reference_folder(win, tmp_path, monkeypatch):
    """File > Open CheXNet weights, then the optional folder dialog: a fixed preset is stored."""
    import shutil

    from PySide6.QtWidgets import QFileDialog

    from gradcam_viewer.models.chexnet import build_chexnet

    weights = tmp_path / "w.weights.h5"
    build_chexnet().save_weights(weights)
    folder = tmp_path / "ref"
    folder.mkdir()
    for png in sorted(samples_dir().glob("*.png"))[:3]:
        shutil.copy(png, folder / png.name)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(weights), ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    win.act["chexnet"].trigger()
    wait_until(lambda: win.session.model is not None and win.session.model.name.startswith("CheXNet"), 300)
    prep = win.session.model.manifest["preprocessing"]
    assert prep["kind"] == "fixed" and prep["reference"] == {"folder": "ref", "images": 3}
    assert read_manifest(tmp_path / "w.weights.json")["preprocessing"] == prep
    assert not hasattr(win.worker, "reference_images")  # carried by its request: nothing kept
    win.load_model("demo", "")
    wait_until(lambda: win.session.model is not None and win.session.model.is_demo, 120)


def test_cancelled_file_dialogs_load_and_open_nothing(win, monkeypatch):
    """Cancel in File > Open, Open folder, Load model and CheXNet weights changes nothing;
    what is chosen reaches the session (the dialogs return the window's arguments)."""
    from PySide6.QtWidgets import QFileDialog

    sent = []
    monkeypatch.setattr(win.link, "send", sent.append)
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([], ""))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("", ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: "")
    model, asked = win.session.model, win.session.asked
    for name in ("open", "open_folder", "model", "chexnet"):
        win.act[name].trigger()
    assert sent == [] and win.session.model is model and win.session.asked == asked
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: ("/m/x.keras", ""))
    win.act["model"].trigger()
    assert [(r.kind, r.path) for r in sent] == [("keras", "/m/x.keras")]
