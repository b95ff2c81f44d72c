"""Trust: bad input never crashes, nothing on disk changes, no network, no patient data where it
does not belong, and the window survives a stress of requests."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from bad_inputs import make_bad_files, make_damaged_maybe_decodable, make_odd_but_valid
from dicom_factory import make_dataset, write
from gradcam_viewer.cli import main
from gradcam_viewer.resources import samples_dir
from gui_helpers import wait_shown

SECRETS = ("ZZSECRET", "77665544", "19121212")


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def patient_dicom(tmp_path):
    pix = (np.random.default_rng(1).random((256, 256)) * 4000).astype(np.uint16)
    ds = make_dataset(pix, bits_stored=12, PatientName="ZZSECRET^NAME", PatientID="ID-77665544",
                      PatientBirthDate="19121212")
    return write(tmp_path / "patient.dcm", ds)


# --- CLI ---------------------------------------------------------------------------------

def test_cli_bad_files_each_named_and_good_files_done(tmp_path, capsys):
    bad = make_bad_files(tmp_path / "in")
    good = tmp_path / "in" / "good.png"
    code = main(["explain", *map(str, bad.values()), str(good), "--out", str(tmp_path / "o"),
                 "--overlays", "Nodule"])
    err = capsys.readouterr().err
    assert code == 1
    for name in bad:
        assert any(name in line for line in err.splitlines() if line.startswith("error:")), name
    assert "Traceback" not in err
    assert (tmp_path / "o" / "good.json").exists()


def test_cli_odd_images_open(tmp_path, capsys):
    odd = make_odd_but_valid(tmp_path / "odd")
    assert main(["explain", *map(str, odd.values()), "--out", str(tmp_path / "o"),
                 "--overlays", "Mass"]) == 0, capsys.readouterr().err


def test_cli_damaged_jpeg_opens_or_is_named(tmp_path, capsys):
    path = make_damaged_maybe_decodable(tmp_path / "d")["bitflipped.jpg"]
    code = main(["explain", str(path), "--out", str(tmp_path / "o"), "--overlays", "Mass"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (code == 0 and (tmp_path / "o" / "bitflipped.json").exists()) or (
        code == 1 and "bitflipped.jpg" in err)


# --- nothing changed, no network, no patient data ------------------------------------------

def test_offline_private_and_read_only(tmp_path, patient_dicom, no_network, monkeypatch):
    from gradcam_viewer import logs

    monkeypatch.setenv("GRADCAM_VIEWER_LOG_DIR", str(tmp_path / "logs"))
    logs._configured = None
    inputs = [patient_dicom, samples_dir() / "phantom_03_nodule.png"]
    before = [_sha(p) for p in inputs]
    out = tmp_path / "out"
    assert main(["explain", *map(str, inputs), "--out", str(out)]) == 0
    assert [_sha(p) for p in inputs] == before
    assert no_network == []
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    log_text = (tmp_path / "logs" / "gradcam-viewer.log").read_bytes()
    assert b"patient.dcm" in log_text  # the log is really written
    for secret in SECRETS:
        assert secret.encode() not in written and secret.encode() not in log_text


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    from PIL import Image

    from gradcam_viewer.outputs.safe_write import write_atomic

    def explode(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", explode)
    with pytest.raises(OSError):  # as the window's PNG export saves through write_atomic
        write_atomic(tmp_path / "x.png",
                     lambda tmp: Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp))
    assert list(tmp_path.iterdir()) == []


# --- GUI (each test on a window of its own: the `win` fixture) ---------------------------


def test_gui_bad_files_then_good(win, qtbot, tmp_path):
    bad = make_bad_files(tmp_path / "in")
    good = samples_dir() / "phantom_01_normal.png"
    for name, path in bad.items():
        win.messages.last_error = ""
        if path.is_dir():
            win.open_paths([path])  # an empty folder: nothing to open
            qtbot.waitUntil(lambda: "No image files" in win.messages.last_error, timeout=30_000)
            continue
        win.open_file(path)
        qtbot.waitUntil(lambda name=name: name in win.messages.last_error, timeout=30_000)
        assert win.session.image is None  # the window does not go on showing the previous file
        win.open_file(good)
        wait_shown(qtbot, win, good)
    for path in make_odd_but_valid(tmp_path / "odd").values():
        win.messages.last_error = ""
        win.open_file(path)
        wait_shown(qtbot, win, path)
        assert win.messages.last_error == ""
    damaged = make_damaged_maybe_decodable(tmp_path / "d")["bitflipped.jpg"]
    win.messages.last_error = ""
    win.open_file(damaged)
    qtbot.waitUntil(lambda: "bitflipped.jpg" in win.messages.last_error or (
        win.session.result is not None and win.session.result.key[0] == str(damaged)), timeout=30_000)


def _bad_models(folder: Path) -> dict[str, tuple[Path, str]]:
    import keras

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    (folder / "corrupt.keras").write_bytes(b"PK\x03\x04garbage")
    out["corrupt"] = (folder / "corrupt.keras", "corrupt.keras")
    inp = keras.Input((32, 32, 1))
    g = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    m = keras.Model(inp, keras.layers.Dense(3, activation="sigmoid")(g))
    m.save_weights(folder / "w.weights.h5")
    (folder / "weights_only.h5").write_bytes((folder / "w.weights.h5").read_bytes())
    out["weights only"] = (folder / "weights_only.h5", "weights only")
    flat = keras.Input((8, 8, 1))
    keras.Model(flat, keras.layers.Dense(2)(keras.layers.Flatten()(
        keras.layers.Conv2D(2, 8)(flat)))).save(folder / "no4d.keras")
    out["no 4-D layer"] = (folder / "no4d.keras", "no layer with a 4-D output")
    keras.Model(inp, [keras.layers.Dense(2)(g), keras.layers.Dense(2)(g)]).save(folder / "two.keras")
    out["two outputs"] = (folder / "two.keras", "2 outputs")
    vec = keras.Input((12,))
    keras.Model(vec, keras.layers.Dense(2)(vec)).save(folder / "vector.keras")
    out["not an image"] = (folder / "vector.keras", "image input")
    from gradcam_viewer.models.manifest import sha256_of

    m.save(folder / "labels.keras")
    manifest = {"name": "x", "version": "1", "labels": ["a", "b"], "input": {"height": 32,
                "width": 32, "channels": 1}, "preprocessing": {"kind": "unit"},
                "target_layer": "auto", "output_activation": "sigmoid", "trained_on": "-",
                "metrics": {}, "intended_use": "-", "disclaimer": "-",
                "weights_file": "labels.keras", "weights_sha256": sha256_of(folder / "labels.keras")}
    (folder / "labels.json").write_text(json.dumps(manifest))
    out["labels mismatch"] = (folder / "labels.keras", "lists 2 labels")
    m.save(folder / "hash.keras")
    manifest.update(labels=["a", "b", "c"], weights_file="hash.keras", weights_sha256="0" * 64)
    (folder / "hash.json").write_text(json.dumps(manifest))
    out["hash mismatch"] = (folder / "hash.keras", "SHA-256")
    return out


def test_gui_bad_models_keep_the_previous_one(win, qtbot, tmp_path):
    name = win.session.model.name
    for what, (path, fragment) in _bad_models(tmp_path / "models").items():
        win.messages.last_error = ""
        win.load_model("keras", str(path))
        qtbot.waitUntil(lambda fragment=fragment: fragment in win.messages.last_error, timeout=60_000)
        assert win.session.model.name == name, what
    sample = samples_dir() / "phantom_05_pneumothorax.png"
    win.open_file(sample)
    result = wait_shown(qtbot, win, sample)
    assert result.probabilities.shape == (len(win.session.model.labels),)


def test_gui_exports_are_private_and_inputs_unchanged(win, qtbot, tmp_path, patient_dicom,
                                                     no_network, monkeypatch):
    """Text burned into pixels cannot be found by searching the file's bytes: the strings
    handed to the renderers are checked instead (Qt's painter for the PNG view, the Pillow
    burn-in for the Secondary Capture). CSV and JSON are text: their bytes are searched."""
    from PySide6.QtGui import QPainter

    from gradcam_viewer.outputs.dicom import objects
    from gradcam_viewer.ui import exporting

    drawn: list[str] = []

    class SpyPainter(QPainter):
        def drawText(self, *args):  # noqa: N802 - overrides QPainter.drawText
            drawn.extend(a for a in args if isinstance(a, str))
            return super().drawText(*args)

    real_burn_in = objects.burn_in

    def spy_burn_in(rgb, lines):
        burned.extend(lines)
        return real_burn_in(rgb, lines)

    burned: list[str] = []
    monkeypatch.setattr(exporting, "QPainter", SpyPainter)
    monkeypatch.setattr(objects, "burn_in", spy_burn_in)
    before = _sha(patient_dicom)
    win.open_file(patient_dicom)
    wait_shown(qtbot, win, patient_dicom)
    qtbot.waitUntil(win.drawn)
    files = [win.exports.view_png(tmp_path / "v.png"),
             win.exports.predictions(tmp_path / "p.csv", "csv"),
             win.exports.predictions(tmp_path / "p.json", "json")]
    win.pacs.dialog = None
    win.pacs.export_dicom(tmp_path / "dicom")
    qtbot.waitUntil(lambda: win.pacs.dialog is not None, timeout=60000)
    win.pacs.dialog.accept()
    assert any("Model:" in t for t in drawn) and any("Image:" in t for t in drawn)
    assert any("NOT FOR DIAGNOSTIC USE" in t for t in burned)
    blob = b"".join(f.read_bytes() for f in files[1:])
    for secret in SECRETS:
        assert secret.encode() not in blob
        assert not any(secret in t for t in drawn + burned), secret
    # asked for, the identifying fields are drawn: the spy would see them
    drawn.clear()
    win.act["include_phi"].setChecked(True)
    try:
        win.exports.view_png(tmp_path / "with_phi.png")
    finally:
        win.act["include_phi"].setChecked(False)
    assert any("ZZSECRET" in t for t in drawn)
    assert _sha(patient_dicom) == before and no_network == []
    with pytest.raises(FileExistsError):
        win.exports.view_png(tmp_path / "v.png")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_200_quick_requests_end_on_the_last(win, qtbot):
    """200 opens in one go: all but the newest go stale and are dropped, the last is shown and
    nothing is left in flight. (Leaks under real decoding are measured by
    benchmarks/soak_gui.py, which waits for every image.)"""
    paths = sorted(samples_dir().glob("*.*[gm]"))  # .png and .dcm samples
    first = paths[0]
    win.open_file(first)
    wait_shown(qtbot, win, first)
    baseline = _rss_mb()
    for i in range(200):
        win.open_file(paths[i % len(paths)])
    last = paths[199 % len(paths)]
    result = wait_shown(qtbot, win, last, timeout=300)
    qtbot.waitUntil(lambda: not win.status.busy.isVisible(), timeout=120_000)
    assert win.session.image.path == last and result.key[0] == str(last)
    assert win.findings.labels.shown_probabilities()  # its own probabilities are shown
    grown = _rss_mb() - baseline
    assert grown < 300, f"memory grew by {grown:.0f} MB"
