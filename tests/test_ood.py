"""Out-of-distribution warning: the k-NN score against a brute-force reference, the
calibration and its sidecar, the demo model on real radiographs and on fresh phantoms, and a
second small model calibrated on a reference folder of its own through the CLI."""

import csv
import hashlib
import json
import shutil

import keras
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from gradcam_viewer.cli import main
from gradcam_viewer.models.manifest import sha256_of, write_manifest
from gradcam_viewer.trust import ood

FRESH_SEED = 31_415_926  # never used by training (1234 * 1_000_003 + k), its card or calibration


def _brute_kth(queries, reference, k):
    """Distance to the k-th nearest neighbour, one pair at a time (the definition)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    r = reference.astype(np.float64)
    out = []
    for row in q:
        d = sorted(float(np.sqrt(np.sum((row - x) ** 2))) for x in r)
        out.append(d[k - 1])
    return np.array(out)


@settings(max_examples=25, deadline=None)
@given(n_ref=st.integers(1, 40), n_q=st.integers(1, 6), dim=st.integers(2, 12),
       k=st.integers(1, 50), seed=st.integers(0, 2**31))
def test_knn_distance_is_the_kth_smallest_distance(n_ref, n_q, dim, k, seed):
    rng = np.random.default_rng(seed)
    ref = ood.l2_normalise(rng.normal(size=(n_ref, dim)))
    queries = rng.normal(size=(n_q, dim)) * rng.uniform(0.1, 10)
    got = ood.knn_distances(queries, ref, k)
    np.testing.assert_allclose(got, _brute_kth(queries, ref, min(k, n_ref)), atol=2e-5)


def test_calibration_threshold_is_the_95th_percentile_of_held_out_scores():
    rng = np.random.default_rng(3)
    feats = np.abs(rng.normal(size=(400, 16)))
    ref = ood.calibrate_features(feats, holdout=0.25, seed=5)
    assert ref.features.dtype == np.float16 and len(ref.features) == 300 and ref.k == 50
    order = np.random.default_rng(5).permutation(400)
    held = feats[order[:100]]
    scores = _brute_kth(held, ref.features.astype(np.float32), 50)
    assert ref.threshold == pytest.approx(np.percentile(scores, 95), abs=1e-5)
    assert np.mean(scores > ref.threshold) == pytest.approx(0.05, abs=0.011)
    assert ref.percentile(ref.holdout_scores.max()) == 100.0
    assert ref.percentile(-1.0) == 0.0
    far = ref.assess(-np.ones((1, 16)))[0]  # pointing away from every (positive) reference
    assert far["flagged"] and far["percentile"] == 100.0


def test_small_sets_use_a_smaller_k_and_too_few_images_are_refused():
    assert ood.choose_k(40) == 8 and ood.choose_k(10_000) == 50 and ood.choose_k(2) == 1
    with pytest.raises(ood.CalibrationError, match="too few"):
        ood.calibrate_features(np.ones((6, 4)))


def test_sidecar_round_trip_and_checks(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"not read")
    ref = ood.calibrate_features(np.random.default_rng(0).random((60, 8)))
    data = ref.to_bytes()
    back = ood.OodReference.from_bytes(data)
    np.testing.assert_array_equal(back.features, ref.features)
    assert back.k == ref.k and back.threshold == ref.threshold
    side = ood.sidecar_path(model)
    side.write_bytes(data)
    manifest = {"ood": ood.manifest_entry(ref, side, hashlib.sha256(data).hexdigest(), "c", 60,
                                          0.2)}
    got, why = ood.reference_for(manifest, model, "c")
    assert got is not None and why == ""
    assert ood.reference_for({}, model, "c") == (None, "not calibrated")
    assert "calibrated at 'c'" in ood.reference_for(manifest, model, "other")[1]
    side.write_bytes(data + b"x")
    got, why = ood.reference_for(manifest, model, "c")
    assert got is None and "does not match the SHA-256" in why
    side.unlink()
    assert "is missing" in ood.reference_for(manifest, model, "c")[1]


def test_two_models_in_one_folder_keep_their_own_calibrations(tmp_path):
    from gradcam_viewer.resources import demo_model_path

    base = json.loads(demo_model_path().with_suffix(".json").read_text())
    base.pop("ood", None)
    rng = np.random.default_rng(3)
    for name in ("chest.v1", "chest.v2"):
        (tmp_path / f"{name}.keras").write_bytes(b"not read")
        write_manifest(tmp_path / f"{name}.json", base)
        ref = ood.calibrate_features(rng.random((40, 8)))
        ood.store_calibration(tmp_path / f"{name}.keras", ref, "c", 40, 0.2)
    for name in ("chest.v1", "chest.v2"):
        manifest = json.loads((tmp_path / f"{name}.json").read_text())
        got, why = ood.reference_for(manifest, tmp_path / f"{name}.keras", "c")
        assert got is not None, why


# --- the demo model ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo():
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.models import load_model_bundle

    bundle = load_model_bundle()
    explainer = Explainer(bundle.model, layer=bundle.target_layer,
                          feature_layer=ood.feature_layer_of(bundle.manifest))
    check = ood.check_for(bundle, explainer)
    assert check.calibrated, check.status
    return bundle, explainer, check


def test_demo_sidecar_is_small_float16_and_named_in_the_manifest(demo):
    bundle, _, _ = demo
    entry = bundle.manifest["ood"]
    side = bundle.path.with_name(entry["file"])
    assert sha256_of(side) == entry["sha256"] and side.stat().st_size < 300_000
    with np.load(side) as z:
        assert z["features"].dtype == np.float16


def test_demo_model_flags_real_radiographs(demo, shared_data):
    from gradcam_viewer.imaging import ImageLoadError, load_image

    bundle, explainer, check = demo
    files = sorted((shared_data / "cxr-png").glob("*.png"))
    files += sorted((shared_data / "cxr-dicom").rglob("*.dcm"))
    flagged, opened = [], 0
    for path in files:
        try:
            x = bundle.prepare(load_image(path))
        except ImageLoadError:
            continue
        opened += 1
        if check.record(explainer.explain(x).features[0])["flagged"]:
            flagged.append(path.name)
    assert opened >= 65
    assert len(flagged) >= 0.95 * opened, f"{len(flagged)}/{opened} flagged"


@pytest.mark.slow
def test_demo_model_flags_few_fresh_phantoms(demo):
    from gradcam_viewer.demo.phantoms import make_phantoms
    from gradcam_viewer.demo.train import phantom_batch

    bundle, explainer, check = demo
    flags = []
    for start in range(0, 500, 100):  # 100 phantoms a batch
        ph = make_phantoms(100, seed=FRESH_SEED + start, size=bundle.input_size[0],
                           with_masks=False)
        feats = explainer.explain(phantom_batch(ph.images)).features
        flags += [r["flagged"] for r in check.reference.assess(feats)]
    assert len(flags) == 500 and np.mean(flags) <= 0.08, np.mean(flags)


def test_explain_json_and_csv_carry_the_flag(demo, tmp_path, shared_data, capsys):
    from gradcam_viewer.resources import samples_dir

    real = shared_data / "cxr-png" / "00013553_000.png"
    sample = samples_dir() / "phantom_01_normal.png"
    out = tmp_path / "o"
    assert main(["explain", str(real), str(sample), "--out", str(out), "--overlays", "Mass"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("warning:")]
    assert len(warnings) == 1 and real.name in warnings[0]  # the flagged image only
    flagged = json.loads(next(out.rglob(f"{real.stem}.json")).read_text())["ood"]
    normal = json.loads(next(out.rglob(f"{sample.stem}.json")).read_text())["ood"]
    assert {"score", "percentile", "flagged"} <= set(flagged)
    assert flagged["flagged"] is True and flagged["percentile"] > 95
    assert normal["flagged"] is False and normal["score"] < flagged["score"]
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in csv.DictReader((out / "predictions.csv").open())}
    assert rows[real.name]["ood_flagged"] == "true" and rows[sample.name]["ood_flagged"] == "false"
    with Image.open(next(out.rglob(f"{real.stem}_Mass.png"))) as im:
        assert im.text["OutOfDistribution"] == "true"


# --- a second model with its own reference folder --------------------------------------------

def _blobs(folder, n, seed):
    """Smooth grey images: a bright disc on a gradient (the 'in-distribution' kind)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(n):
        cx, cy, r = rng.uniform(16, 48), rng.uniform(16, 48), rng.uniform(6, 14)
        img = 60 + 80 * xx / 64 + 90 * ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r)
        img = img + rng.normal(0, 3, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"b{i:03d}.png")
    return folder


def _stripes(folder, n, seed):
    """High-frequency stripes and noise: nothing like the blobs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:64, 0:64]
    for i in range(n):
        period = rng.uniform(2.5, 5)
        img = 128 + 100 * np.sign(np.sin(2 * np.pi * (xx + yy * rng.uniform(-1, 1)) / period))
        img = img + rng.normal(0, 20, img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"s{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    keras.utils.set_random_seed(11)
    inp = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="c2")(x)
    out = keras.layers.Dense(2, activation="sigmoid", name="out")(
        keras.layers.GlobalAveragePooling2D()(x))
    path = folder / "small.keras"
    keras.Model(inp, out).save(path)
    write_manifest(folder / "small.json", {
        "name": "small", "version": "1", "labels": ["a", "b"],
        "input": {"height": 32, "width": 32, "channels": 1}, "preprocessing": {"kind": "unit"},
        "target_layer": "c2", "output_activation": "sigmoid", "trained_on": "nothing",
        "metrics": {}, "intended_use": "tests", "disclaimer": "random weights",
        "weights_file": "small.keras", "weights_sha256": sha256_of(path)})
    return path


def test_second_model_calibrated_on_its_own_folder(small_model, tmp_path, capsys):
    model = tmp_path / "m" / small_model.name
    model.parent.mkdir()
    shutil.copy(small_model, model)
    shutil.copy(small_model.with_suffix(".json"), model.with_suffix(".json"))
    before = sha256_of(model)
    out = tmp_path / "before"
    assert main(["explain", str(_blobs(tmp_path / "one", 1, 5) / "b000.png"), "--model",
                 str(model), "--out", str(out)]) == 0
    assert "not calibrated" in capsys.readouterr().err
    assert json.loads((out / "b000.json").read_text())["ood"]["calibrated"] is False
    assert next(csv.DictReader((out / "predictions.csv").open()))["ood_flagged"] == \
        "not calibrated"

    ref = _blobs(tmp_path / "ref", 80, 1)
    assert main(["calibrate", str(model), str(ref), "--holdout", "0.25"]) == 0
    err = capsys.readouterr().err
    assert "calibrated on 80 images at layer 'c2'" in err
    assert sha256_of(model) == before  # the model file is never changed
    manifest = json.loads(model.with_suffix(".json").read_text())
    side = model.with_name(manifest["ood"]["file"])
    assert manifest["ood"]["sha256"] == sha256_of(side) and manifest["ood"]["k"] == 12

    inside, outside = _blobs(tmp_path / "in", 30, 2), _stripes(tmp_path / "out", 30, 3)
    res = tmp_path / "res"
    assert main(["explain", str(inside), str(outside), "--model", str(model), "--out",
                 str(res)]) == 0
    rows = list(csv.DictReader((res / "predictions.csv").open()))
    flag = {r["path"]: r["ood_flagged"] == "true" for r in rows}
    ins = [v for k, v in flag.items() if k.startswith("in/")]
    outs = [v for k, v in flag.items() if k.startswith("out/")]
    assert len(ins) == len(outs) == 30
    assert np.mean(outs) >= 0.9 and np.mean(ins) <= 0.2, (np.mean(ins), np.mean(outs))


def test_calibrate_fails_on_a_missing_input_and_uses_the_others(small_model, tmp_path,
                                                                capsys):
    """As for explain: an input named but missing, or an image that does not open, is a
    failure (exit 1, named on stderr); the images that open are still calibrated on."""
    model = tmp_path / "m" / small_model.name
    model.parent.mkdir()
    shutil.copy(small_model, model)
    shutil.copy(small_model.with_suffix(".json"), model.with_suffix(".json"))
    ref = _blobs(tmp_path / "ref", 12, 4)
    (ref / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a picture")
    assert main(["calibrate", str(model), str(ref), str(tmp_path / "absent")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "absent" in err and "broken.png" in err
    assert "calibrated on 12 images" in err and "Traceback" not in err
    assert json.loads(model.with_suffix(".json").read_text())["ood"]["k"] > 0
    (ref / "broken.png").unlink()
    assert main(["calibrate", str(model), str(ref)]) == 0


def test_calibrate_says_why_it_cannot(small_model, tmp_path, capsys):
    model = tmp_path / "bare.keras"
    shutil.copy(small_model, model)  # no manifest beside it
    assert main(["calibrate", str(model), str(_blobs(tmp_path / "r", 12, 0))]) == 2
    assert "has no manifest" in capsys.readouterr().err
    manifested = tmp_path / "x" / small_model.name
    manifested.parent.mkdir()
    shutil.copy(small_model, manifested)
    shutil.copy(small_model.with_suffix(".json"), manifested.with_suffix(".json"))
    assert main(["calibrate", str(manifested), str(_blobs(tmp_path / "few", 4, 0))]) == 1
    err = capsys.readouterr().err
    assert "too few" in err and "Traceback" not in err
    assert main(["calibrate", str(manifested), str(tmp_path / "r"), "--holdout", "1.5"]) == 2
