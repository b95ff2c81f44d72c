"""`gradcam-viewer explain` end to end, on the bundled model and samples."""

import csv
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from dicom_factory import make_dataset, write
from gradcam_viewer.cli import main
from gradcam_viewer.resources import samples_dir

DCM = samples_dir() / "phantom_02_cardiomegaly_effusion.dcm"
PNG = samples_dir() / "phantom_03_nodule.png"


def test_explain_writes_overlays_json_and_csv(tmp_path, reference, capsys):
    bundle, run = reference
    out = tmp_path / "out"
    code = main(["explain", str(DCM), str(PNG), "--out", str(out), "--overlays",
                 "Cardiomegaly,Nodule"])
    assert code == 0, capsys.readouterr().err
    for path in (DCM, PNG):
        record = json.loads((out / f"{path.stem}.json").read_text())
        expected = run(path).probabilities[0]
        assert list(record["probabilities"]) == bundle.labels
        np.testing.assert_allclose(list(record["probabilities"].values()), expected, atol=1e-5)
        assert record["layer"] == "cam_features" and record["method"] == "gradcam"
        assert record["model"]["sha256"] == bundle.manifest["weights_sha256"]
        for label in ("Cardiomegaly", "Nodule"):
            with Image.open(out / f"{path.stem}_{label}.png") as im:
                assert im.size == (768, 768) and im.mode == "RGB"
                assert im.text["Label"] == label
        assert not (out / f"{path.stem}_Mass.png").exists()
    rows = list(csv.reader((out / "predictions.csv").open()))
    ids = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]
    assert rows[0] == ["path", "frame", *ids, *bundle.labels, "values", "ood_flagged"] and len(rows) == 3
    assert [r[0] for r in rows[1:]] == [DCM.name, PNG.name]
    assert rows[1][-2] == "probabilities"
    np.testing.assert_allclose([float(v) for v in rows[1][5:-2]],
                               run(DCM).probabilities[0], atol=1e-5)


def test_overlay_is_drawn_where_the_heatmap_is(tmp_path, reference):
    from gradcam_viewer.imaging import load_image, to_display

    bundle, run = reference
    out = tmp_path / "o"
    assert main(["explain", str(PNG), "--out", str(out), "--overlays", "Nodule",
                 "--opacity", "0.6"]) == 0
    result = run(PNG)
    heat = result.display_heatmap(0, bundle.labels.index("Nodule"), (768, 768))
    overlay = np.asarray(Image.open(out / f"{PNG.stem}_Nodule.png")).astype(int)
    base = np.repeat(to_display(load_image(PNG))[..., None], 3, -1).astype(int)
    changed = np.abs(overlay - base).sum(-1) > 0
    assert changed[heat > 0.8].mean() > 0.99 and not changed[heat < 0.1].any()


def test_bad_input_among_good(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(PNG.read_bytes()[:500])
    code = main(["explain", str(bad), str(PNG), "--out", str(tmp_path / "o"), "--overlays", "Mass"])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "broken.png" in lines[0]
    # the inputs' common root is '/': the output tree mirrors the sample's absolute path
    assert len(list((tmp_path / "o").rglob(f"{PNG.stem}.json"))) == 1


def test_no_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["explain", str(PNG), "--out", str(out), "--overlays", "Mass"]) == 0
    before = (out / f"{PNG.stem}.json").read_bytes()
    assert main(["explain", str(PNG), "--out", str(out), "--overlays", "Mass"]) == 1
    assert "--force" in capsys.readouterr().err
    assert (out / f"{PNG.stem}.json").read_bytes() == before
    assert main(["explain", str(PNG), "--out", str(out), "--overlays", "Mass", "--force"]) == 0


def test_bad_arguments(tmp_path, capsys):
    assert main(["explain", str(PNG), "--out", str(tmp_path), "--overlays", "Unicorn"]) == 2
    assert "unknown label" in capsys.readouterr().err
    broken = tmp_path / "m.keras"
    broken.write_bytes(b"not a model")
    assert main(["explain", str(PNG), "--model", str(broken), "--out", str(tmp_path)]) == 2
    assert "m.keras" in capsys.readouterr().err


def test_bad_overlay_options_are_refused_before_any_work(tmp_path, capsys):
    """An unknown colormap used to fail every image, one by one, after the model ran (exit 1)."""
    out = tmp_path / "o"
    try:
        main(["explain", str(PNG), "--out", str(out), "--colormap", "bogus"])
    except SystemExit as exc:  # argparse's own refusal
        assert exc.code == 2
    else:
        raise AssertionError("--colormap bogus was accepted")
    assert "bogus" in capsys.readouterr().err
    for option in (["--opacity", "1.5"], ["--opacity", "-0.1"], ["--frame", "0"],
                   ["--ray-workers", "2"], ["--ray-workers", "0", "--ray"]):
        assert main(["explain", str(PNG), "--out", str(out), *option]) == 2, option
        assert capsys.readouterr().err.startswith("error: " + option[0])
    assert not out.exists()


def test_other_methods(tmp_path, reference):
    _, run = reference
    out = tmp_path / "pp"
    assert main(["explain", str(PNG), "--out", str(out), "--method", "gradcam++",
                 "--overlays", "Nodule"]) == 0
    record = json.loads((out / f"{PNG.stem}.json").read_text())
    assert record["method"] == "gradcam++"


def test_patient_data_stays_out(tmp_path):
    pix = (np.random.default_rng(0).random((300, 300)) * 4000).astype(np.uint16)
    ds = make_dataset(pix, bits_stored=12, PatientName="ZZSECRET^NAME", PatientID="ID-77665544",
                      PatientBirthDate="19121212")
    src = write(tmp_path / "patient.dcm", ds)
    out = tmp_path / "o"
    assert main(["explain", str(src), "--out", str(out)]) == 0
    blobs = b"".join(p.read_bytes() for p in out.iterdir())
    for secret in (b"ZZSECRET", b"77665544", b"19121212"):
        assert secret not in blobs


def test_console_script_and_module(tmp_path):
    exe = [sys.executable, "-m", "gradcam_viewer"]
    done = subprocess.run(exe + ["--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("gradcam-viewer ")
    done = subprocess.run(exe + ["explain", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--chexnet-weights" in done.stdout
    script = sys.executable.rsplit("/", 1)[0] + "/gradcam-viewer"
    done = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0


def test_self_test_flag_passes_on_the_source_tree():
    done = subprocess.run([sys.executable, "-m", "gradcam_viewer", "--self-test"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "self-test: OK" in done.stdout


FAILING_CALLBACK = r"""
import sys
from types import SimpleNamespace
from gradcam_viewer.ui import app, main_window

def broken(self, result):
    raise RuntimeError("bug inside a Qt callback")

main_window.MainWindow._show_result = broken
args = SimpleNamespace(files=[], model=None, chexnet_weights=None, self_test=True)
sys.exit(app.run_gui(args))
"""


def test_self_test_fails_on_an_exception_inside_a_qt_callback():
    done = subprocess.run([sys.executable, "-c", FAILING_CALLBACK], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1, (done.stdout, done.stderr[-2000:])
    assert "self-test: FAIL: RuntimeError: bug inside a Qt callback" in done.stderr


def test_folder_with_csv_and_text_counts_only_images(tmp_path, reference, capsys):
    """A CD-style folder (no extensions, subfolders) with a CSV and notes beside the images."""
    import shutil

    bundle, run = reference
    folder = tmp_path / "DICOM" / "ST000000" / "SE000000"
    folder.mkdir(parents=True)
    shutil.copy(DCM, folder / "IM000001")
    shutil.copy(PNG, tmp_path / "1.2.840.113619.2.55.3.971")  # a UID as the name
    (tmp_path / "labels.csv").write_text("image,finding\nIM000001,none\n")
    (tmp_path / "notes.txt").write_text("read by Dr X\n")
    out = tmp_path / "o"
    code = main(["explain", str(tmp_path), "--out", str(out), "--overlays", "Nodule"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "2 images explained, 2 other files skipped" in err
    assert not [line for line in err.splitlines() if line.startswith("error:")]
    record = json.loads((out / "DICOM/ST000000/SE000000/IM000001.json").read_text())
    assert record["path"] == "DICOM/ST000000/SE000000/IM000001"  # the output mirrors the tree
    np.testing.assert_allclose(list(record["probabilities"].values()),
                               run(DCM).probabilities[0], atol=1e-5)


def test_no_images_at_all_is_an_error(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "only.csv").write_text("a,b\n")
    assert main(["explain", str(folder), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "no image files" in err and "0 images explained, 1 other files skipped" in err
    # a non-image named explicitly is an error with the loader's reason, not a skip
    assert main(["explain", str(folder / "only.csv"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "error: cannot open 'only.csv'" in err and "0 other files skipped" in err


def test_explain_reads_a_dicomdir_medium_in_study_order(tmp_path, capsys):
    from media_factory import lower_case_copy, write_fileset

    dicomdir, order = write_fileset(tmp_path / "CD")
    medium = lower_case_copy(dicomdir.parent, tmp_path / "cdrom")  # as some systems mount it
    out = tmp_path / "o"
    code = main(["explain", str(medium / "dicomdir"), "--out", str(out), "--overlays", "Nodule"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"{len(order)} images explained, 0 other files skipped" in err
    rows = list(csv.reader((out / "predictions.csv").open()))[1:]
    assert len(rows) == len(order)


def test_scanner_notices_do_not_fail_explain_but_missing_files_do(tmp_path, monkeypatch, capsys):
    """Exit codes: the depth limit and skipped non-images are notices (exit 0); a file the
    DICOMDIR lists but the medium lacks could not be explained (exit 1)."""
    import shutil

    from gradcam_viewer.imaging import scanner
    from media_factory import write_fileset

    monkeypatch.setattr(scanner, "MAX_DEPTH", 1)
    folder = tmp_path / "in"
    (folder / "a" / "b").mkdir(parents=True)
    shutil.copy(PNG, folder / "chest.png")
    shutil.copy(PNG, folder / "a" / "b" / "deep.png")
    (folder / "notes.txt").write_text("read by Dr X\n")
    code = main(["explain", str(folder), "--out", str(tmp_path / "o"), "--overlays", "none"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "note: folders deeper than 1 levels below 'in' were not searched" in err
    assert not [line for line in err.splitlines() if line.startswith("error:")]
    assert "1 images explained, 1 other files skipped" in err

    monkeypatch.undo()
    dicomdir, order = write_fileset(tmp_path / "CD")
    missing = sorted(dicomdir.parent.rglob("IM*"))[0]
    missing.unlink()
    code = main(["explain", str(dicomdir), "--out", str(tmp_path / "o2"), "--overlays", "none"])
    err = capsys.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "missing" in errors[0] and missing.name in errors[0]
    assert f"{len(order) - 1} images explained" in err


def test_calibrate_evaluate_and_sanity_use_the_output_the_manifest_names(tmp_path, capsys):
    """A model with two outputs, its class scores named by the manifest's "output": explain
    already used it; calibrate, evaluate and sanity refused the model ("name the one...")."""
    import keras

    import models_zoo as zoo

    inp = keras.Input((32, 32, 3))
    feats = keras.layers.Conv2D(4, 3, activation="relu", name="feats")(inp)
    pooled = keras.layers.GlobalAveragePooling2D()(feats)
    findings = keras.layers.Dense(2, activation="sigmoid", name="findings")(pooled)
    age = keras.layers.Dense(1, name="age")(keras.layers.Flatten()(feats))
    path = tmp_path / "two.keras"
    keras.Model(inp, [age, findings]).save(path)
    zoo.write_beside(path, zoo.manifest_for(path, ["a", "b"], name="two", output="findings"))
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for k in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 40), np.uint8)).save(images / f"i{k}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("Image Index,a,b\n" + "".join(f"i{k}.png,{k % 2},{(k // 2) % 2}\n"
                                                    for k in range(12)))
    code = main(["calibrate", str(path), str(images)])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["evaluate", str(images), "--model", str(path), "--labels", str(labels),
                 "--out", str(tmp_path / "ev"), "--bootstrap", "20"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["sanity", str(images), "--model", str(path), "--steps", "2",
                 "--out", str(tmp_path / "sanity")])
    err = capsys.readouterr().err
    assert code in (0, 4), err  # passed or flagged: the check ran on the named output
    assert "name the one" not in err
    assert (tmp_path / "sanity").is_dir(), err
