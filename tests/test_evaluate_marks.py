"""`evaluate` on a radiologist's marks: DICOM SR reports and the viewer's own store give the
same figures as the same boxes in NIH's CSV; marks alone are the truth ("no finding" images
negative, marked images positive); operating points equal a reference computed with
scikit-learn's `roc_curve` (a test-only oracle) and land in the manifest."""

import csv
import json
import shutil

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings, strategies as st

import requirements
from dicom_factory import make_dataset, write
from gradcam_viewer.cli import main
from gradcam_viewer.demo.metrics import auroc as card_auroc
from gradcam_viewer.marks.shapes import ImageKey, ImageMarks, Mark
from gradcam_viewer.marks.store import MarkStore
from gradcam_viewer.outputs.dicom import write_objects
from gradcam_viewer.outputs.dicom.marks_sr import marks_objects
from gradcam_viewer.trust import operating_points as op

N = 24


@pytest.fixture(scope="module")
def phantom_study(tmp_path_factory):
    """N phantoms as DICOM files, with their labels and boxes three ways: NIH's CSV, one SR
    report per image (a rectangle per boxed finding; "no finding" on normal images) and the
    viewer's store."""
    from gradcam_viewer.demo.phantoms import LABELS, make_phantoms

    root = tmp_path_factory.mktemp("study")
    ph = make_phantoms(N, seed=424_242, size=224)
    images, reports, store = root / "images", root / "reports", MarkStore(root / "store")
    images.mkdir()
    study = pydicom.uid.generate_uid()
    boxes = [["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]]
    labels = [["Image", *LABELS]]
    for i in range(N):
        name = f"p{i:03d}.dcm"
        pixels = np.rint(ph.images[i] * 255).astype(np.uint8)
        ds = make_dataset(pixels, bits_stored=8, StudyInstanceUID=study,
                          SeriesInstanceUID=pydicom.uid.generate_uid(), SeriesNumber=1,
                          InstanceNumber=i + 1)
        path = write(images / name, ds)
        labels.append([name, *map(str, ph.labels[i])])
        marks = []
        for k, lab in enumerate(LABELS):
            if ph.labels[i, k] and ph.masks[i, k].any():
                ys, xs = np.nonzero(ph.masks[i, k])
                x, y, w, h = xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
                boxes.append([name, lab, str(x), str(y), str(w), str(h)])
                marks.append(Mark.rectangle(x, y, x + w, y + h, lab))
        if not ph.labels[i].any():
            marks.append(Mark.no_finding())
        image_marks = ImageMarks(ImageKey("sop", str(ds.SOPInstanceUID)), tuple(marks), name,
                                 (224, 224))
        write_objects(marks_objects(path, image_marks, "Reader^One"), reports / f"s{i}",
                      f"p{i:03d}")
        store.save(image_marks)
    for name, rows in (("labels.csv", labels), ("boxes.csv", boxes)):
        with open(root / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return root, ph


def _evaluate(root, out, *args):
    code = main(["evaluate", str(root / "images"), "--out", str(root / out), "--bootstrap",
                 "200", *map(str, args)])
    assert code == 0
    return {r["label"]: r for r in csv.DictReader((root / out / "evaluation.csv").open())}


def test_sr_boxes_and_the_store_equal_the_same_boxes_as_nih_csv(phantom_study, capsys):
    root, ph = phantom_study
    with_csv = _evaluate(root, "csv", "--labels", root / "labels.csv", "--boxes",
                         root / "boxes.csv")
    with_sr = _evaluate(root, "sr", "--labels", root / "labels.csv", "--boxes",
                        root / "reports")
    with_store = _evaluate(root, "store", "--labels", root / "labels.csv", "--marks",
                           root / "store")
    assert "Traceback" not in capsys.readouterr().err
    boxed = 0
    for label, row in with_csv.items():
        assert with_sr[label] == row, label
        assert with_store[label] == row, label
        boxed += int(row["marked"])
    assert boxed > 10  # the comparison is about something


def test_marks_alone_are_the_truth(phantom_study):
    """Without a labels file: marked images are positives, "no finding" images negatives for
    every label, the rest unknown; the AUROC equals the card's on exactly those images."""
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.models import load_model_bundle

    root, ph = phantom_study
    rows = _evaluate(root, "alone", "--boxes", root / "reports")
    bundle = load_model_bundle()
    explainer = Explainer(bundle.model, layer=bundle.target_layer)
    values = np.array([bundle.values(explainer.explain(bundle.prepare(load_image(p)))
                                     .probabilities[0])
                       for p in sorted((root / "images").glob("*.dcm"))])
    normal = ~ph.labels.any(axis=1)
    for k, label in enumerate(bundle.labels):
        boxed = np.array([bool(ph.labels[i, k]) and ph.masks[i, k].any() for i in range(N)])
        known = boxed | normal
        row = rows[label]
        assert int(row["images"]) == known.sum() and int(row["positives"]) == boxed.sum()
        want = card_auroc(values[known, k], boxed[known])
        if np.isnan(want):
            assert row["auroc"] == ""
        else:
            assert float(row["auroc"]) == pytest.approx(want, abs=6e-5)


# --- operating points ------------------------------------------------------------------------

def _sklearn_threshold(scores, truth, rule, drop_intermediate=False):
    """The reference: scikit-learn's ROC curve, read the way the rule says. Every vertex is
    an operating point (scikit-learn's default drops collinear ones, which a sensitivity
    target may fall on); Youden's maximum is at a vertex it keeps."""
    metrics = requirements.module("sklearn.metrics", "pip install -e '.[test]'")
    fpr, tpr, thresholds = metrics.roc_curve(truth, scores,
                                             drop_intermediate=drop_intermediate)
    if rule.measure == "youden":
        at = int(np.argmax(tpr - fpr))
    elif rule.measure == "sensitivity":
        at = int(np.flatnonzero(tpr >= rule.target)[0])
    else:
        at = int(np.flatnonzero(1 - fpr >= rule.target)[-1])
    return None if np.isinf(thresholds[at]) else float(thresholds[at])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=2, max_size=80),
       st.sampled_from(["youden", "sensitivity=0.9", "sensitivity=0.5", "specificity=0.9",
                        "specificity=0.75", "sensitivity=1"]))
def test_thresholds_equal_scikit_learns(pairs, text):
    scores = np.array([p[0] / 12 for p in pairs])  # few distinct values: many ties
    truth = np.array([p[1] for p in pairs])
    rule = op.Rule.parse(text)
    got = op.threshold_for(scores, truth, rule)
    if truth.all() or not truth.any():
        assert got is None
        return
    assert got == _sklearn_threshold(scores, truth, rule)
    if rule.measure == "youden":
        assert got == _sklearn_threshold(scores, truth, rule, drop_intermediate=True)


def test_rules_are_parsed_or_refused():
    assert str(op.Rule.parse("Youden")) == "youden"
    assert op.Rule.parse("sensitivity=0.9") == op.Rule("sensitivity", 0.9)
    for bad in ("sensitivity", "specificity=1.5", "accuracy=0.9", "youden=1"):
        with pytest.raises(ValueError, match="give youden, sensitivity=X or specificity=X"):
            op.Rule.parse(bad)


@pytest.fixture
def own_model(tmp_path):
    """A copy of the demo model (with manifest and calibration) that a test may change."""
    from gradcam_viewer.resources import demo_model_path

    src = demo_model_path()
    folder = tmp_path / "model"
    folder.mkdir()
    for f in src.parent.iterdir():
        shutil.copy(f, folder / f.name)
    return folder / src.name


def test_operating_points_land_in_the_manifest(phantom_study, own_model, capsys):
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.models import load_model_bundle
    from gradcam_viewer.models.manifest import read_manifest, sha256_of

    root, ph = phantom_study
    manifest_file = own_model.with_suffix(".json")
    before = read_manifest(manifest_file)
    rows = _evaluate(root, "points", "--labels", root / "labels.csv", "--model", own_model,
                     "--operating-points", "youden", "--write-manifest")
    err = capsys.readouterr().err
    assert "operating points (youden, 24 cases) written into" in err
    after = read_manifest(manifest_file)  # valid against the schema
    assert {k: v for k, v in after.items() if k != "operating_points"} == before
    entry = after["operating_points"]
    assert entry["cases"] == N and entry["rule"] == "youden"
    assert entry["weights_sha256"] == sha256_of(own_model) == before["weights_sha256"]
    bundle = load_model_bundle(own_model)
    explainer = Explainer(bundle.model, layer=bundle.target_layer)
    values = np.array([bundle.values(explainer.explain(bundle.prepare(load_image(p)))
                                     .probabilities[0])
                       for p in sorted((root / "images").glob("*.dcm"))])
    for k, label in enumerate(bundle.labels):
        want = _sklearn_threshold(values[:, k], ph.labels[:, k], op.Rule("youden"), True)
        if want is None:
            assert label not in entry["labels"]
            continue
        point = entry["labels"][label]
        assert point["threshold"] == pytest.approx(want, abs=1e-7)
        lo, hi = point["threshold_ci"]
        assert lo <= hi
        called = values[:, k] >= point["threshold"]
        truth = ph.labels[:, k].astype(bool)
        assert point["sensitivity"] == pytest.approx(called[truth].mean(), abs=1e-4)
        assert point["specificity"] == pytest.approx((~called[~truth]).mean(), abs=1e-4)
        assert float(rows[label]["op_threshold"]) == pytest.approx(want, abs=1e-4)
    # the model now calls findings with them
    points = bundle.identity.operating_points
    assert points is not None and points.rule == "youden" and points.cases == N


def test_write_manifest_needs_what_it_writes(phantom_study, own_model, capsys):
    root, _ = phantom_study
    assert main(["evaluate", str(root / "images"), "--labels", str(root / "labels.csv"),
                 "--write-manifest", "--model", str(own_model)]) == 2
    assert "give --operating-points too" in capsys.readouterr().err
    assert main(["evaluate", str(root / "images"), "--labels", str(root / "labels.csv"),
                 "--operating-points", "youden", "--write-manifest"]) == 2
    assert "needs --model with a manifest" in capsys.readouterr().err
    assert main(["evaluate", str(root / "images"), "--labels", str(root / "labels.csv"),
                 "--operating-points", "accuracy"]) == 2
    assert "unknown operating point rule" in capsys.readouterr().err
    # weights changed since the manifest was written: no points for them
    own_model.with_suffix(".json").write_text(json.dumps(
        {**json.loads(own_model.with_suffix(".json").read_text()),
         "weights_sha256": "0" * 64}))
    assert main(["evaluate", str(root / "images"), "--labels", str(root / "labels.csv"),
                 "--model", str(own_model), "--operating-points", "youden",
                 "--write-manifest"]) == 2
    assert "SHA-256" in capsys.readouterr().err


def test_points_set_on_other_weights_are_not_used():
    from gradcam_viewer.models.operating_points import OperatingPoints

    entry = {"rule": "youden", "cases": 5, "date": "2026-01-02", "weights_sha256": "a" * 64,
             "labels": {"Nodule": {"threshold": 0.4, "sensitivity": 0.8, "specificity": 0.7,
                                   "positives": 2, "negatives": 3}}}
    points = OperatingPoints.of({"weights_sha256": "a" * 64, "operating_points": entry})
    assert points is not None and points.call("Nodule", 0.4) and not points.call("Nodule", 0.39)
    assert points.call("Mass", 0.9) is None
    assert points.describe("Nodule", 0.5) == ("positive at the operating point set on 5 local "
                                              "cases, Youden's J: sensitivity 0.80, "
                                              "specificity 0.70")
    assert OperatingPoints.of({"weights_sha256": "b" * 64, "operating_points": entry}) is None
