"""DICOM outputs: Secondary Capture, Parametric Map and TID 1500 SR from the command,
checked with dciodvfy (dicom3tools), read back with pydicom and highdicom, and compared with the
engine called directly and with the JSON record of the same run."""

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_checks import content_items, dciodvfy
from dicom_factory import make_dataset, write, write_multiframe
from gradcam_viewer.cli import main
from gradcam_viewer.resources import samples_dir

LABELS = ("Nodule", "Mass")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of `explain --dicom-out` on a sample DICOM, a sample PNG and a CT from pydicom
    (a source with a frame of reference, which the sample radiographs lack)."""
    from pydicom.data import get_testdata_file

    root = tmp_path_factory.mktemp("dicom_run")
    inputs = root / "in"
    inputs.mkdir()
    for name in ("phantom_03_nodule.dcm", "phantom_01_normal.png"):
        shutil.copy(samples_dir() / name, inputs / name)
    shutil.copy(get_testdata_file("CT_small.dcm"), inputs / "ct_small.dcm")
    code = main(["explain", str(inputs), "--out", str(root / "out"), "--overlays", ",".join(LABELS),
                 "--dicom-out", str(root / "dicom")])
    assert code == 0
    return inputs, root / "out", root / "dicom"


def _objects(folder: Path, stem: str) -> dict[str, pydicom.Dataset]:
    return {p.stem[len(stem) + 1:]: pydicom.dcmread(p) for p in sorted(folder.glob(f"{stem}_*.dcm"))}


def test_objects_per_source(run):
    _, _, dicom = run
    names = {stem: set(_objects(dicom, stem)) for stem in ("phantom_03_nodule", "ct_small",
                                                            "phantom_01_normal")}
    full = {*(f"SC_{x}" for x in LABELS), *(f"PM_{x}" for x in LABELS), "SR"}
    assert names["phantom_03_nodule"] == full and names["ct_small"] == full
    assert names["phantom_01_normal"] == {f"SC_{x}" for x in LABELS}


def test_every_object_passes_dciodvfy(run):
    _, _, dicom = run
    files = sorted(dicom.glob("*.dcm"))
    assert len(files) == 12
    for f in files:
        errors, _ = dciodvfy(f)
        assert errors == [], (f.name, errors)


def test_secondary_capture_files_under_the_source_study(run):
    inputs, _, dicom = run
    for stem in ("phantom_03_nodule", "ct_small"):
        src = pydicom.dcmread(next(inputs.glob(f"{stem}.dcm")))
        objs = _objects(dicom, stem)
        for name, ds in objs.items():
            assert ds.StudyInstanceUID == src.StudyInstanceUID, name
            assert ds.PatientID == src.PatientID and ds.PatientName == src.PatientName
            assert ds.SeriesInstanceUID != src.SeriesInstanceUID
        sc = objs["SC_Nodule"]
        assert list(sc.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert sc.BurnedInAnnotation == "YES"
        assert sc.SeriesDescription.startswith("Grad-CAM ")
        assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
        assert (sc.Rows, sc.Columns) == (src.Rows, src.Columns)
        # both labels' captures are one series; each object its own SOP Instance
        assert objs["SC_Mass"].SeriesInstanceUID == sc.SeriesInstanceUID
        assert len({d.SOPInstanceUID for d in objs.values()}) == len(objs)


def test_png_source_gets_a_new_study_without_patient(run):
    _, _, dicom = run
    objs = _objects(dicom, "phantom_01_normal")
    studies = {d.StudyInstanceUID for d in objs.values()}
    assert len(studies) == 1
    for ds in objs.values():
        assert str(ds.get("PatientName", "")) == "" and str(ds.get("PatientID", "")) == ""
        assert str(ds.get("PatientBirthDate", "")) == ""
        assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage


def test_secondary_capture_opens_in_the_viewer(run):
    from gradcam_viewer.imaging import load_image

    _, _, dicom = run
    src = load_image(samples_dir() / "phantom_03_nodule.dcm")
    image = load_image(dicom / "phantom_03_nodule_SC_Nodule.dcm")
    assert image.is_color and image.size == src.size


def test_parametric_map_is_the_engines_heatmap(run, reference):
    """The map's float pixels are the heatmap of the engine called directly (not via the CLI)."""
    import highdicom as hd

    inputs, _, dicom = run
    bundle, explain = reference
    for stem in ("phantom_03_nodule", "ct_small"):
        src = inputs / f"{stem}.dcm"
        result = explain(src)
        objs = _objects(dicom, stem)
        for label in LABELS:
            ds = objs[f"PM_{label}"]
            hd.pm.ParametricMap.from_dataset(ds)  # highdicom reads back what it wrote
            mapping = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
            assert mapping.LUTExplanation == "Class Activation"
            pixels = ds.pixel_array  # Float Pixel Data, decoded by pydicom
            expected = result.display_heatmap(0, bundle.labels.index(label),
                                              (int(ds.Rows), int(ds.Columns)))
            np.testing.assert_allclose(np.asarray(pixels, np.float32), expected, atol=1e-5)
            ref = ds.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0]
            assert ref.SourceImageSequence[0].ReferencedSOPInstanceUID == \
                pydicom.dcmread(src).SOPInstanceUID


def test_report_holds_the_records_values_and_the_model(run):
    inputs, out, dicom = run
    for stem in ("phantom_03_nodule", "ct_small"):
        record = json.loads((out / f"{stem}.json").read_text())
        sr = _objects(dicom, stem)["SR"]
        assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
        values = {}
        texts = {}
        for item in content_items(sr):
            name = item.ConceptNameCodeSequence[0].CodeMeaning
            if item.ValueType == "NUM" and name.endswith(" probability"):
                values[name] = float(item.MeasuredValueSequence[0].NumericValue)
            elif item.ValueType == "TEXT":
                texts.setdefault(name, []).append(item.TextValue)
        expected = {f"{k} probability": v for k, v in record["probabilities"].items()}
        assert values.keys() == expected.keys()
        for key, value in expected.items():
            assert values[key] == pytest.approx(value, abs=1e-6)
        model = record["model"]
        assert model["name"] in texts["Algorithm Name"]
        assert model["version"] in texts["Algorithm Version"]
        assert any(model["sha256"] in t for t in texts["Algorithm Parameters"])
        assert any(record["method"] in t for t in texts["Algorithm Parameters"])
        src_uid = pydicom.dcmread(inputs / f"{stem}.dcm").SOPInstanceUID
        refs = [i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for i in content_items(sr)
                if i.ValueType == "IMAGE"]
        assert src_uid in refs


def test_sample_dicoms_pass_dciodvfy():
    files = sorted(samples_dir().glob("*.dcm"))
    assert len(files) == 5
    for f in files:
        errors, _ = dciodvfy(f)
        assert errors == [], (f.name, errors)


def test_sample_dicoms_keep_the_pngs_pixels():
    """The DICOM samples are the PNGs at 12 bits: regenerating them (now with the attributes
    dciodvfy wants) kept their pixels, so the demo model's tests still hold."""
    from PIL import Image

    for f in sorted(samples_dir().glob("*.dcm")):
        stored = pydicom.dcmread(f).pixel_array.astype(np.float64)
        png = np.asarray(Image.open(f.with_suffix(".png")), np.float64)
        assert np.abs(np.rint(stored / 4095 * 255) - png).max() <= 1, f.name


def test_burned_in_text_has_no_patient_field(tmp_path, monkeypatch):
    """Text drawn as pixels cannot be searched for in the file: the strings handed to the
    burn-in renderer are checked instead."""
    from gradcam_viewer.outputs.dicom import objects

    pix = (np.random.default_rng(1).random((128, 128)) * 4000).astype(np.uint16)
    src = write(tmp_path / "p.dcm", make_dataset(
        pix, bits_stored=12, PatientName="ZZSECRET^NAME", PatientID="ID-77665544",
        PatientBirthDate="19121212", StudyInstanceUID=pydicom.uid.generate_uid(),
        SeriesInstanceUID=pydicom.uid.generate_uid()))
    drawn: list[list[str]] = []
    real = objects.burn_in

    def spy(rgb, lines):
        drawn.append(list(lines))
        return real(rgb, lines)

    monkeypatch.setattr(objects, "burn_in", spy)
    assert main(["explain", str(src), "--out", str(tmp_path / "o"), "--overlays", "Nodule",
                 "--dicom-out", str(tmp_path / "d")]) == 0
    assert len(drawn) == 1
    text = "\n".join(drawn[0])
    assert "Nodule" in text and "NOT FOR DIAGNOSTIC USE" in text and "gradcam" in text
    for secret in ("ZZSECRET", "77665544", "19121212"):
        assert secret not in text
    sc = pydicom.dcmread(tmp_path / "d" / "p_SC_Nodule.dcm")
    assert sc.PatientName == "ZZSECRET^NAME"  # the patient module itself is kept (files in PACS)


def test_dicom_out_uses_no_network(tmp_path, no_network):
    assert main(["explain", str(samples_dir() / "phantom_03_nodule.dcm"), "--overlays", "Mass",
                 "--out", str(tmp_path / "o"), "--dicom-out", str(tmp_path / "d")]) == 0
    assert len(list((tmp_path / "d").glob("*.dcm"))) == 3 and no_network == []


def test_resume_completes_missing_dicom_objects(tmp_path, capsys):
    """--resume makes the DICOM objects an earlier run did not (no --dicom-out then, or
    interrupted before the file written last), without new CSV rows; complete images are
    left alone."""
    dcm, png = samples_dir() / "phantom_03_nodule.dcm", samples_dir() / "phantom_01_normal.png"
    args = ["explain", str(dcm), str(png), "--overlays", "Mass", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    table = (tmp_path / "o" / "predictions.csv").read_bytes()
    capsys.readouterr()
    resume = [*args, "--resume", "--dicom-out", str(tmp_path / "d")]
    assert main(resume) == 0
    err = capsys.readouterr().err
    assert "2 images explained" in err and "get no DICOM objects" not in err
    names = ["phantom_01_normal_SC_Mass.dcm", "phantom_03_nodule_PM_Mass.dcm",
             "phantom_03_nodule_SC_Mass.dcm", "phantom_03_nodule_SR.dcm"]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == names
    assert (tmp_path / "o" / "predictions.csv").read_bytes() == table
    # an interrupted write: the first object is written last, so it is the one missing
    uids = {p.name: str(pydicom.dcmread(p).SOPInstanceUID) for p in (tmp_path / "d").iterdir()}
    (tmp_path / "d" / "phantom_03_nodule_SC_Mass.dcm").unlink()
    assert main(resume) == 0
    assert "1 images explained, 0 other files skipped, 1 already done" in capsys.readouterr().err
    again = {p.name: str(pydicom.dcmread(p).SOPInstanceUID) for p in (tmp_path / "d").iterdir()}
    assert sorted(again) == names and again[names[0]] == uids[names[0]]
    assert all(again[n] != uids[n] for n in names[1:])  # the image's objects made again
    assert main(resume) == 0
    assert "0 images explained, 0 other files skipped, 2 already done" in \
        capsys.readouterr().err
    assert (tmp_path / "o" / "predictions.csv").read_bytes() == table


def _refuse_report_for(monkeypatch, name: str) -> None:
    """highdicom refusing the report of one source (as it does for some real files)."""
    from gradcam_viewer.outputs.dicom import objects

    made = objects.structured_report

    def report(ex, ref):
        if ex.source.name == name:
            raise ValueError("refused for this test")
        return made(ex, ref)

    monkeypatch.setattr(objects, "structured_report", report)


def _snapshot(*folders: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for f in folders for p in sorted(f.rglob("*")) if p.is_file()}


def test_resume_leaves_an_image_whose_objects_cannot_be_made(tmp_path, capsys, monkeypatch):
    """With --overlays none a DICOM source's only object is its report; when that cannot be
    made nothing is written for it, and that outcome must count as done: a resume after the
    one that decided it explains nothing, repeats no note and changes no file."""
    from pydicom.data import get_testdata_file

    _refuse_report_for(monkeypatch, "phantom_03_nodule.dcm")
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(samples_dir() / "phantom_03_nodule.dcm", inputs)
    shutil.copy(get_testdata_file("CT_small.dcm"), inputs)
    args = ["explain", str(inputs), "--overlays", "none", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    capsys.readouterr()
    resume = [*args, "--resume", "--dicom-out", str(tmp_path / "d")]
    assert main(resume) == 0
    err = capsys.readouterr().err
    assert "2 images explained" in err and err.count("note: ") == 1
    assert "phantom_03_nodule.dcm: a structured report cannot be made" in err
    assert (tmp_path / "d" / "CT_small_SR.dcm").is_file()
    assert not list((tmp_path / "d").glob("phantom_03_nodule*.dcm"))
    why = json.loads((tmp_path / "d" / "phantom_03_nodule_no_DICOM_objects.json").read_text())
    assert why["dicom_objects"] == [] and "refused for this test" in why["why"][0]
    assert not (tmp_path / "d" / "CT_small_no_DICOM_objects.json").exists()
    before = _snapshot(tmp_path / "o", tmp_path / "d")
    for _ in range(2):
        assert main(resume) == 0
        err = capsys.readouterr().err
        assert "0 images explained, 0 other files skipped, 2 already done" in err
        assert "note: " not in err
        assert _snapshot(tmp_path / "o", tmp_path / "d") == before
    monkeypatch.undo()  # the report can be made now: --force makes it, and the note goes
    assert main([*args, "--force", "--dicom-out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        "CT_small_SR.dcm", "phantom_03_nodule_SR.dcm"]


@pytest.mark.parametrize("overlays, made, tail", [
    ("none", [], ("; no DICOM object is written for it (why: in "
                  "phantom_03_nodule_no_DICOM_objects.json)")),
    ("Mass", ["phantom_03_nodule_PM_Mass.dcm", "phantom_03_nodule_SC_Mass.dcm"],
     "; its other DICOM objects are written"),
])
def test_a_refused_object_is_named_with_what_was_written(tmp_path, capsys, monkeypatch,
                                                         overlays, made, tail):
    """The note says what really happened: the other objects written, or none at all."""
    _refuse_report_for(monkeypatch, "phantom_03_nodule.dcm")
    assert main(["explain", str(samples_dir() / "phantom_03_nodule.dcm"), "--overlays",
                 overlays, "--out", str(tmp_path / "o"), "--dicom-out", str(tmp_path / "d")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note: ")]
    assert notes == ["note: phantom_03_nodule.dcm: a structured report cannot be made from "
                     "'phantom_03_nodule.dcm' (refused for this test)" + tail]
    assert sorted(p.name for p in (tmp_path / "d").glob("*.dcm")) == made


def test_resume_on_real_dicoms_whose_reports_cannot_be_made(shared_data, tmp_path, capsys):
    """The reviewer's case on real files: highdicom cannot make the report of these two, so
    with --overlays none they get no object; every resume used to explain them again."""
    names = ("other/pydicom_color-pl.dcm", "other/fodicom_CR-ModalitySequenceLUT.dcm",
             "barre_CR-MONO1-10-chest.dcm")
    files = [shared_data / "cxr-dicom" / n for n in names]
    if not all(f.exists() for f in files):
        pytest.skip("the shared real DICOMs are absent")
    args = ["explain", *map(str, files), "--overlays", "none", "--out", str(tmp_path / "o"),
            "--dicom-out", str(tmp_path / "d")]
    assert main(args) == 0
    assert capsys.readouterr().err.count("note: ") == 2
    assert [p.name for p in (tmp_path / "d").rglob("*.dcm")] == ["barre_CR-MONO1-10-chest_SR.dcm"]
    before = _snapshot(tmp_path / "o", tmp_path / "d")
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert "0 images explained, 0 other files skipped, 3 already done" in err
    assert "note: " not in err and _snapshot(tmp_path / "o", tmp_path / "d") == before


@pytest.mark.parametrize("extra, message", [
    (["--dicom-out", "d", "--no-ids"], "--no-ids cannot go with"),
    (["--send", "nonsense"], "is not AET@HOST:PORT"),
    (["--send", "A@h:99999"], "not between 1 and 65535"),
    (["--send", "THIS_AE_TITLE_IS_TOO_LONG@h:104"], "1 to 16 printable"),
    (["--dicom-out", "d", "--ray"], "do not go with --ray"),
    (["--send", "A@h:104", "--ray", "h:6379"], "do not go with --ray"),
])
def test_bad_dicom_options_are_named(tmp_path, capsys, extra, message):
    code = main(["explain", str(samples_dir() / "phantom_03_nodule.png"),
                 "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_real_dicoms_give_valid_objects(shared_data, tmp_path):
    """Real exports carry values that break their VR (a hashed date, an age without unit), no
    pixel spacing or a zero one: none of that may make an invalid object."""
    names = ("SIIM_1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm",
             "barre_CR-MONO1-10-chest.dcm", "highdicom_dx_image.dcm")
    files = [shared_data / "cxr-dicom" / n for n in names]
    files = [f for f in files if f.exists()]
    if not files:
        pytest.skip("the shared real DICOMs are absent")
    assert main(["explain", *map(str, files), "--out", str(tmp_path / "o"), "--overlays", "Nodule",
                 "--dicom-out", str(tmp_path / "d")]) == 0
    made = sorted((tmp_path / "d").glob("*.dcm"))
    assert len(made) == 3 * len(files)
    for f in made:
        errors, _ = dciodvfy(f)
        assert errors == [], (f.name, errors)


def _explained(src: Path, frame: int = 0, out_of_distribution: bool | None = None):
    """An explanation made without a model: a Gaussian heatmap (the objects do not care)."""
    from gradcam_viewer.cam.result import ExplainResult
    from gradcam_viewer.imaging import load_image, to_display
    from gradcam_viewer.models.identity import ModelIdentity
    from gradcam_viewer.outputs.dicom import DicomExport

    image = load_image(src, frame=frame)
    h, w = image.size
    yy, xx = np.mgrid[0:h, 0:w]
    heat = np.exp(-((yy - h / 2) ** 2 + (xx - w / 3) ** 2) / (2 * (h / 6) ** 2))
    ood = None if out_of_distribution is None else {"flagged": out_of_distribution,
                                                    "calibrated": True}
    result = ExplainResult(key=(str(src), int(image.frame), "gradcam", 0),
                           probabilities=np.array([0.8, 0.1]),
                           heatmaps=np.stack([heat, np.zeros_like(heat)]).astype(np.float32),
                           layer="conv", method="gradcam", score="logit", ood=ood)
    model = ModelIdentity(name="m", labels=("A", "B"), version="2", sha256="ab" * 32,
                          output_kind="probabilities", output_activation="sigmoid",
                          disclaimer="", synthetic_demo=False)
    return DicomExport(image, to_display(image), result, model, ("A",))


@pytest.mark.parametrize("flag", [True, False])
def test_report_carries_the_out_of_distribution_flag(tmp_path, flag):
    from gradcam_viewer.outputs.dicom import build_objects, write_objects

    ex = _explained(samples_dir() / "phantom_01_normal.dcm", out_of_distribution=flag)
    objs = dict(build_objects(ex))
    evaluations = [i for i in content_items(objs["SR"]) if i.ValueType == "CODE"
                   and "training data" in i.ConceptNameCodeSequence[0].CodeMeaning]
    assert len(evaluations) == 1
    assert evaluations[0].ConceptCodeSequence[0].CodeMeaning == ("Yes" if flag else "No")
    path = write_objects([("SR", objs["SR"])], tmp_path, "x")[0]
    assert dciodvfy(path)[0] == []
    without = dict(build_objects(_explained(samples_dir() / "phantom_01_normal.dcm")))
    assert not [i for i in content_items(without["SR"]) if i.ValueType == "CODE"
                and "training data" in i.ConceptNameCodeSequence[0].CodeMeaning]


def test_multiframe_source_names_the_explained_frame(tmp_path):
    from gradcam_viewer.outputs.dicom import build_objects, write_objects

    src, _ = write_multiframe(tmp_path / "mf.dcm")
    notes: list[str] = []
    objs = dict(build_objects(_explained(src, frame=2), notes))
    # highdicom 0.28 derives maps only from single-frame or enhanced multi-frame images
    assert set(objs) == {"SC_A", "SR"}
    assert len(notes) == 1 and notes[0].startswith("a Parametric Map cannot be made from 'mf.dcm'")
    ref = objs["SC_A"].SourceImageSequence[0]
    assert ref.ReferencedFrameNumber == 3
    for path in write_objects(list(objs.items()), tmp_path / "d", "mf"):
        assert dciodvfy(path)[0] == [], path.name


@pytest.mark.parametrize("kind, demo, word, notice", [
    ("probabilities", True, "probability 0.250", "SYNTHETIC DEMO MODEL - NOT FOR DIAGNOSTIC USE"),
    ("scores", False, "score 0.250", "Research model - not for diagnostic use"),
    # logits are shown through their activation: probabilities, as the window calls them
    ("logits", False, "probability 0.250", "Research model - not for diagnostic use"),
])
def test_burn_in_lines_say_what_the_number_is(kind, demo, word, notice):
    from gradcam_viewer.outputs.dicom import burn_in, burn_in_lines

    lines = burn_in_lines("Mass", 0.25, kind, "gradcam++", "CheXNet", "1.2", demo)
    assert lines == ["Mass", word, "gradcam++ heatmap", "Model: CheXNet 1.2", notice]
    rgb = np.zeros((200, 300, 3), np.uint8)
    out = burn_in(rgb, lines)
    assert out.shape == rgb.shape and out[:100].any() and not out[150:].any()


def test_a_model_without_manifest_gives_names_without_spaces(tmp_path, capsys):
    """Its labels are 'class 0'...: every output name (overlay PNG and DICOM) carries them as
    'class_0', the one naming rule of outputs.layout."""
    import models_zoo as zoo

    model_path = tmp_path / "m.keras"
    zoo.small_cnn_gap().save(model_path)
    sample = samples_dir() / "phantom_03_nodule.dcm"
    code = main(["explain", str(sample), "--model", str(model_path), "--out",
                 str(tmp_path / "o"), "--overlays", "class 0", "--dicom-out", str(tmp_path / "d")])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "o").iterdir()) + \
        sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == ["phantom_03_nodule.json", "phantom_03_nodule_class_0.png",
                     "predictions.csv", "phantom_03_nodule_PM_class_0.dcm",
                     "phantom_03_nodule_SC_class_0.dcm", "phantom_03_nodule_SR.dcm"]


def test_the_first_object_is_written_last(tmp_path):
    """Its file is the sign --resume reads that all of an image's objects were written."""
    from gradcam_viewer.outputs.dicom import first_object_name, write_objects

    class Obj:
        def __init__(self, fails=False):
            self.fails = fails

        def save_as(self, path, enforce_file_format):
            if self.fails:
                raise OSError("disk full")
            Path(path).write_bytes(b"DICM")

    assert first_object_name(["a b", "c"], True) == "SC_a b"
    assert first_object_name([], True) == "SR" and first_object_name([], False) is None
    objects = [("SC_a b", Obj()), ("PM_a b", Obj()), ("SR", Obj(fails=True))]
    with pytest.raises(OSError):
        write_objects(objects, tmp_path, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x_PM_a_b.dcm"]
    objects[2] = ("SR", Obj())
    assert [p.name for p in write_objects(objects, tmp_path, "x", overwrite=True)] == [
        "x_SC_a_b.dcm", "x_PM_a_b.dcm", "x_SR.dcm"]
