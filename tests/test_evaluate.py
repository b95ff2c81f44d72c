"""`gradcam-viewer evaluate`: the figures against independent references
(the demo model's card functions in demo/metrics.py, scipy as a test-only oracle), the NIH box
file, and clear messages for annotations that do not fit."""

import csv

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

import requirements
from gradcam_viewer.cli import main
from gradcam_viewer.demo.metrics import auroc as card_auroc, localisation as card_localisation
from gradcam_viewer.trust import evaluate as ev

NIH_LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema",
              "Fibrosis", "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening",
              "Pneumonia", "Pneumothorax"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=2, max_size=60))
def test_auroc_equals_the_mann_whitney_statistic(pairs):
    scores = np.array([p[0] for p in pairs], float)  # few distinct values: many ties
    truth = np.array([p[1] for p in pairs])
    got, want = ev.roc_auc(scores, truth), card_auroc(scores, truth)
    assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, abs=1e-12)


def test_rankdata_matches_scipy():
    stats = requirements.module("scipy.stats", "pip install -e \'.[test]\'")
    x = np.random.default_rng(0).integers(0, 10, 300).astype(float)
    np.testing.assert_allclose(ev.rankdata(x), stats.rankdata(x))


def test_bootstrap_interval_is_the_percentile_interval_of_resampled_aurocs():
    rng = np.random.default_rng(4)
    truth = rng.random(80) < 0.3
    scores = truth * 0.8 + rng.normal(0, 0.5, 80)
    lo, hi = ev.bootstrap_ci(scores, truth, n=300, seed=9)
    draw, values = np.random.default_rng(9), []
    while len(values) < 300:  # the same resamples, scored by the card's AUROC
        idx = draw.integers(0, 80, 80)
        if truth[idx].all() or not truth[idx].any():
            continue
        values.append(card_auroc(scores[idx], truth[idx]))
    assert (lo, hi) == pytest.approx(tuple(np.percentile(values, [2.5, 97.5])), abs=1e-12)
    assert lo < ev.roc_auc(scores, truth) < hi


def test_connected_regions_match_scipy():
    ndimage = requirements.module("scipy.ndimage", "pip install -e \'.[test]\'")
    mask = np.random.default_rng(2).random((40, 50)) < 0.35
    labelled, _ = ndimage.label(mask)  # 4-connectivity by default
    want = sorted((s[1].start, s[0].start, s[1].stop, s[0].stop)
                  for s in ndimage.find_objects(labelled))
    assert sorted(ev.connected_regions(mask)) == want


def test_iobb_and_iou_of_a_known_map():
    raw = np.zeros((10, 10), np.float32)
    raw[2:4, 2:6] = 0.8  # one hot region: about x 20..60, y 20..40 at 100x100
    raw[3, 5] = 1.0  # its peak, inside the box
    box = ev.Box("a.png", "x", 40, 20, 40, 40)  # x 40..80, y 20..60
    got = ev.localise(raw, box, (100, 100))
    assert got["hit"] == 1.0
    assert ev.localise(raw, ev.Box("a.png", "x", 0, 60, 30, 30), (100, 100))["hit"] == 0.0
    # IoBB = |B ∩ GT| / |B| with B the region's box (20 x 40, about 20..60 x 20..40)
    assert got["iobb"] == pytest.approx(0.5, abs=0.06)
    assert 0.1 < got["iou"] < 0.4
    # a box in another image's pixels (NIH's 1024 boxes on a 512 copy) is not scored silently
    with pytest.raises(ev.AnnotationError, match="outside the 100x100 image"):
        ev.localise(raw, ev.Box("a.png", "x", 60, 20, 50, 40), (100, 100))


def _phantom_folder(tmp_path, n=40, seed=777_777):
    from gradcam_viewer.demo.phantoms import LABELS, make_phantoms

    ph = make_phantoms(n, seed=seed, size=224)
    folder = tmp_path / "imgs"
    folder.mkdir()
    boxes = [["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]"]]
    labels = [["Image", *LABELS, "PatientId"]]
    box_masks = np.zeros_like(ph.masks)
    for i in range(n):
        name = f"p{i:03d}.png"
        Image.fromarray(np.rint(ph.images[i] * 255).astype(np.uint8)).save(folder / name)
        labels.append([name, *map(str, ph.labels[i]), str(i)])
        for k, lab in enumerate(LABELS):
            if ph.labels[i, k] and ph.masks[i, k].any():
                ys, xs = np.nonzero(ph.masks[i, k])
                boxes.append([name, lab, str(xs.min()), str(ys.min()),
                              str(xs.max() - xs.min() + 1), str(ys.max() - ys.min() + 1)])
                box_masks[i, k, ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
    for name, rows in (("labels.csv", labels), ("boxes.csv", boxes)):
        with open(tmp_path / name, "w", newline="") as f:
            csv.writer(f).writerows(rows)
    return folder, ph, box_masks


def test_phantom_figures_equal_the_card_computed_independently(tmp_path, capsys):
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.demo.train import phantom_batch
    from gradcam_viewer.models import load_model_bundle

    folder, ph, box_masks = _phantom_folder(tmp_path)
    out = tmp_path / "ev"
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--boxes",
                 str(tmp_path / "boxes.csv"), str(folder), "--out", str(out)]) == 0
    rows = {r["label"]: r for r in csv.DictReader((out / "evaluation.csv").open())}
    with Image.open(out / "evaluation.png") as im:
        assert im.size == (1400, 1500)
    bundle = load_model_bundle()
    exp = Explainer(bundle.model, layer=bundle.target_layer).explain(phantom_batch(ph.images))
    hits, ious, counts = card_localisation(exp.heatmaps, box_masks, ph.labels)
    for k, label in enumerate(bundle.labels):
        row = rows[label]
        want = card_auroc(exp.probabilities[:, k], ph.labels[:, k])
        assert float(row["auroc"]) == pytest.approx(want, abs=6e-5)
        assert float(row["auroc_ci_low"]) <= want + 1e-4 <= float(row["auroc_ci_high"]) + 2e-4
        assert int(row["boxes"]) == counts[k] and int(row["positives"]) == ph.labels[:, k].sum()
        if counts[k]:
            assert float(row["pointing_game"]) == pytest.approx(hits[k], abs=6e-5)
            assert float(row["mean_iou"]) == pytest.approx(ious[k], abs=2e-3)
            acc = [float(row[f"iobb_acc_{t:g}"]) for t in ev.IOBB_THRESHOLDS]
            assert acc == sorted(acc, reverse=True)  # a stricter T never finds more
    assert "Traceback" not in capsys.readouterr().err


def test_nih_box_file_parses(shared_data):
    path = shared_data / "cxr-png" / "BBox_List_2017.csv"
    boxes, notes = ev.read_boxes(path, NIH_LABELS)
    assert len(boxes) == 984 and notes == []  # 'Infiltrate' is NIH's box name of Infiltration
    assert {b.label for b in boxes} == {"Atelectasis", "Cardiomegaly", "Effusion",
                                        "Infiltration", "Mass", "Nodule", "Pneumonia",
                                        "Pneumothorax"}
    assert len({b.image for b in boxes}) == 880
    truth, found, _ = ev.read_labels(shared_data / "cxr-png" / "labels.csv", NIH_LABELS)
    assert found == NIH_LABELS and len(truth) >= 60


def test_annotations_that_do_not_fit_get_clear_messages(tmp_path, capsys):
    from gradcam_viewer.resources import samples_dir

    png = samples_dir() / "phantom_03_nodule.png"
    other = samples_dir() / "phantom_01_normal.png"
    (tmp_path / "labels.csv").write_text(f"Image,Nodule,Mass\n{png.name},1,0\n")
    (tmp_path / "boxes.csv").write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                                        f"{png.name},Nodule,300,200,80,80\n"
                                        f"{png.name},Hernia,10,10,50,50\n")
    code = main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--boxes",
                 str(tmp_path / "boxes.csv"), str(png), str(other), "--out",
                 str(tmp_path / "o"), "--bootstrap", "50"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "'Hernia', which is not a label of the model" in err
    assert (f"have no row in 'labels.csv' and no marks or boxes and were left out "
            f"(e.g. {other.name})") in err
    assert "has no column for Cardiomegaly" in err
    (tmp_path / "bad.csv").write_text(f"Image,Nodule\n{png.name},maybe\n")
    assert main(["evaluate", "--labels", str(tmp_path / "bad.csv"), str(png)]) == 2
    err = capsys.readouterr().err
    assert "line 2: the label columns must hold 0 or 1" in err and "Traceback" not in err
    (tmp_path / "prob.csv").write_text(f"Image,Nodule\n{png.name},1.0\nb.png,0.7\n")
    assert main(["evaluate", "--labels", str(tmp_path / "prob.csv"), str(png), "--out",
                 str(tmp_path / "p")]) == 2
    assert "line 3: the label columns must hold 0 or 1" in capsys.readouterr().err
    (tmp_path / "nobox.csv").write_text("Image,Nodule\nx.png,1\n")
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--boxes",
                 str(tmp_path / "nobox.csv"), str(png)]) == 2
    assert "not in the NIH box layout" in capsys.readouterr().err


def test_a_cd_layout_is_matched_by_path_not_by_file_name(tmp_path, capsys):
    """Every series of a CD or PACS export has its IM000001: annotations naming images by file
    name alone must not hand one row to all of them; by path (or its trailing part) they match
    each image, and the figures equal those of the same images in a flat folder."""
    import shutil

    folder, _, _ = _phantom_folder(tmp_path)
    flat = tmp_path / "flat"
    assert main(["evaluate", "--labels", str(tmp_path / "labels.csv"), "--boxes",
                 str(tmp_path / "boxes.csv"), str(folder), "--out", str(flat)]) == 0
    cd = tmp_path / "CD"
    where = {}
    for png in sorted(folder.glob("*.png")):
        series = cd / "DICOM" / "ST000001" / f"SE{png.stem}"
        series.mkdir(parents=True)
        shutil.copyfile(png, series / "IM000001.png")
        where[png.name] = f"SE{png.stem}/IM000001.png"  # a trailing part of the path
    for name in ("labels.csv", "boxes.csv"):
        rows = list(csv.reader((tmp_path / name).open()))
        with open(tmp_path / f"bare_{name}", "w", newline="") as f:
            csv.writer(f).writerows([rows[0]] + [["IM000001.png", *r[1:]] for r in rows[1:]])
        with open(tmp_path / f"cd_{name}", "w", newline="") as f:
            csv.writer(f).writerows([rows[0]] + [[where[r[0]], *r[1:]] for r in rows[1:]])
    capsys.readouterr()
    assert main(["evaluate", "--labels", str(tmp_path / "bare_labels.csv"), str(cd),
                 "--out", str(tmp_path / "bare")]) == 2
    assert "share their file name" in capsys.readouterr().err
    assert not (tmp_path / "bare").exists()
    out = tmp_path / "ev_cd"
    assert main(["evaluate", "--labels", str(tmp_path / "cd_labels.csv"), "--boxes",
                 str(tmp_path / "cd_boxes.csv"), str(cd), "--out", str(out)]) == 0
    want = {r["label"]: r for r in csv.DictReader((flat / "evaluation.csv").open())}
    got = {r["label"]: r for r in csv.DictReader((out / "evaluation.csv").open())}
    assert got.keys() == want.keys()
    for label, row in want.items():
        for column in ("auroc", "positives", "boxes", "pointing_game", "mean_iou"):
            assert got[label][column] == row[column], (label, column)
