"""Phantoms: determinism and masks where findings are drawn; the shipped demo model's measured
quality on a freshly generated phantom set; the bundled samples."""

import json

import numpy as np
import pytest

from gradcam_viewer.demo.metrics import auroc
from gradcam_viewer.demo.phantoms import LABELS, draw_phantom, make_phantoms
from gradcam_viewer.resources import demo_model_path, samples_dir


def test_generator_is_deterministic():
    a = make_phantoms(6, seed=7, size=96)
    b = make_phantoms(6, seed=7, size=96)
    c = make_phantoms(6, seed=8, size=96)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    assert a.labels.shape == (6, len(LABELS)) and a.images.dtype == np.float32


def _single(label, seed, size=256):
    """A phantom with only `label`: (image, its mask, all masks)."""
    k = LABELS.index(label)
    img, masks = draw_phantom(np.random.default_rng(seed), size,
                              tuple(i == k for i in range(len(LABELS))))
    return img, masks[k], masks


def _ring(mask, width=4):
    grown = mask.copy()
    for _ in range(width):
        g = grown.copy()
        g[1:] |= grown[:-1]
        g[:-1] |= grown[1:]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    return grown & ~mask


@pytest.mark.parametrize("label", ["Effusion", "Nodule", "Mass", "Consolidation"])
def test_opacity_masks_are_brighter_than_their_surroundings(label):
    k = LABELS.index(label)
    for seed in range(8):
        img, mask, masks = _single(label, seed)
        assert mask.any() and not masks[[i for i in range(len(LABELS)) if i != k]].any()
        ring = _ring(mask) & (img < np.percentile(img, 80))  # surrounding lung, not bone
        assert img[mask].mean() > img[ring].mean() + 0.03, (label, seed)


def test_pneumothorax_mask_is_dark_and_without_markings():
    for seed in range(8):
        img, ptx, _ = _single("Pneumothorax", seed)
        assert ptx.sum() > 100
        ring = _ring(ptx, 6) & ~ptx & (img < np.percentile(img, 60))
        assert img[ptx].mean() < img[ring].mean(), seed


def test_cardiomegaly_mask_is_the_heart_wider_than_half_the_thorax():
    for seed in range(8):
        img, heart, _ = _single("Cardiomegaly", seed)
        cols = np.flatnonzero(heart.any(axis=0))
        heart_w = cols[-1] - cols[0] + 1
        row = int(np.flatnonzero(heart.any(axis=1)).mean())
        body = np.flatnonzero(img[row] > 0.15)  # the thorax at the heart's level
        assert heart_w / (body[-1] - body[0] + 1) > 0.45, seed
        assert img[heart].mean() > np.median(img), seed


def test_auroc_equals_pairwise_count():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random(60), 1)  # ties on purpose
    truth = rng.random(60) < 0.4
    pos, neg = scores[truth], scores[~truth]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auroc(scores, truth) == pytest.approx(pairs / (len(pos) * len(neg)))


@pytest.fixture(scope="module")
def demo():
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.models import load_model_bundle

    bundle = load_model_bundle()
    return bundle, Explainer(bundle.model, layer=bundle.target_layer)


def test_manifest_says_what_the_model_is(demo):
    from gradcam_viewer.models.manifest import sha256_of

    bundle, _ = demo
    m = bundle.manifest
    assert m["synthetic_demo"] is True and "NOT FOR DIAGNOSTIC USE" in m["disclaimer"]
    assert m["labels"] == list(LABELS) and m["weights_sha256"] == sha256_of(demo_model_path())
    assert demo_model_path().stat().st_size < 20e6
    assert m["metrics"]["held_out_images"] >= 1000


def test_shipped_model_meets_its_card_on_fresh_phantoms(demo):
    """A new seeded set (not the training or the card's set): AUROC and pointing game floors a
    little below the manifest's figures."""
    from gradcam_viewer.demo.metrics import localisation
    from gradcam_viewer.demo.train import phantom_batch

    bundle, explainer = demo
    size = bundle.input_size[0]
    probs, labels, hits, counts = [], [], np.zeros(len(LABELS)), np.zeros(len(LABELS))
    for start in range(0, 300, 50):
        ph = make_phantoms(50, seed=777_000 + start, size=size)
        exp = explainer.explain(phantom_batch(ph.images))
        probs.append(exp.probabilities)
        labels.append(ph.labels)
        h, _, c = localisation(exp.heatmaps, ph.masks, ph.labels)
        hits += h * c
        counts += c
    probs, labels = np.concatenate(probs), np.concatenate(labels)
    card = bundle.manifest["metrics"]["per_label"]
    for k, name in enumerate(LABELS):
        a = auroc(probs[:, k], labels[:, k])
        pointing = hits[k] / max(counts[k], 1)
        assert a >= min(card[name]["auroc"] - 0.04, 0.95), (name, a)
        assert pointing >= card[name]["pointing_game"] - 0.1, (name, pointing)


def test_samples_are_recognised(demo):
    from gradcam_viewer.imaging import load_image

    bundle, explainer = demo
    index = json.loads((samples_dir() / "samples.json").read_text())["samples"]
    for entry in index:
        for ext in ("png", "dcm"):
            path = samples_dir() / f"{entry['stem']}.{ext}"
            probs = explainer.explain(bundle.prepare(load_image(path))).probabilities[0]
            found = {n for n, p in zip(bundle.labels, probs, strict=True) if p >= 0.5}
            assert found == set(entry["findings"]), (path.name, dict(zip(bundle.labels, probs, strict=True)))


def test_png_and_dicom_samples_give_the_same_input(demo):
    from gradcam_viewer.imaging import load_image

    bundle, _ = demo
    stem = samples_dir() / "phantom_03_nodule"
    a = bundle.prepare(load_image(stem.with_suffix(".png")))
    b = bundle.prepare(load_image(stem.with_suffix(".dcm")))
    assert np.abs(a - b).max() < 0.05


def test_sample_dicom_is_a_made_up_dx(demo):
    import pydicom

    for path in sorted(samples_dir().glob("*.dcm")):
        ds = pydicom.dcmread(path)
        assert ds.Modality == "DX" and ds.PhotometricInterpretation == "MONOCHROME2"
        assert ds.BitsAllocated == 16 and str(ds.PatientName) == "PHANTOM^DEMO"
