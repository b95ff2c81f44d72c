"""Cascading randomisation: Spearman and SSIM against independent formulas,
the demo model passes, a model whose maps are the input is flagged, and the loaded model's
weights never change."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import requirements
from gradcam_viewer.cli import main
from gradcam_viewer.resources import samples_dir
from gradcam_viewer.trust import sanity


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 80), st.integers(0, 2**31), st.integers(2, 9))
def test_spearman_matches_scipy(n, seed, levels):
    stats = requirements.module("scipy.stats", "pip install -e \'.[test]\'")
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, levels, n).astype(float), rng.integers(0, levels, n).astype(float)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        assert sanity.spearman(a, b) == 0.0  # constant input: no correlation is defined
        return
    assert sanity.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def _naive_ssim(a, b, size=11, sigma=1.5, data_range=1.0):
    """Wang et al. 2004 eq. 13-14, one window position at a time."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    g /= g.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for i in range(a.shape[0] - size + 1):
        for j in range(a.shape[1] - size + 1):
            pa, pb = a[i:i + size, j:j + size], b[i:i + size, j:j + size]
            ma, mb = (g * pa).sum(), (g * pb).sum()
            va, vb = (g * (pa - ma) ** 2).sum(), (g * (pb - mb) ** 2).sum()
            cov = (g * (pa - ma) * (pb - mb)).sum()
            values.append((2 * ma * mb + c1) * (2 * cov + c2)
                          / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2)))
    return float(np.mean(values))


def test_ssim_matches_the_formula_window_by_window():
    rng = np.random.default_rng(1)
    a = rng.random((24, 30))
    b = np.clip(a + rng.normal(0, 0.2, a.shape), 0, 1)
    assert sanity.ssim(a, b) == pytest.approx(_naive_ssim(a, b), abs=1e-10)
    assert sanity.ssim(a, a) == pytest.approx(1.0)
    assert sanity.ssim(a, 1 - a) < 0


@pytest.fixture(scope="module")
def samples():
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.models import load_model_bundle

    bundle = load_model_bundle()
    batch = np.concatenate([bundle.prepare(load_image(p))
                            for p in sorted(samples_dir().glob("*.png"))])
    return bundle, batch


def test_demo_model_passes_and_stays_unchanged(samples):
    bundle, batch = samples
    before = sanity.weights_hash(bundle.model)
    probs = bundle.model.predict(batch, verbose=0)
    result = sanity.cascading_randomisation(bundle.model, batch, bundle.target_layer,
                                            max_steps=3)
    assert [s.name for s in result.steps] == ["head", "cam_features_conv+cam_features_bn",
                                              "ctx1_conv+ctx1_bn"]
    assert not result.flagged and result.steps[1].spearman < 0.5
    assert result.weights_unchanged and sanity.weights_hash(bundle.model) == before
    np.testing.assert_array_equal(bundle.model.predict(batch, verbose=0), probs)


def input_dominated_model(size=64):
    """The target layer is the image itself (eight copies; nothing learned before it), and the
    head's own initialiser draws positive weights: every head gives a map of the input."""
    inp = keras.Input((size, size, 1))
    feats = keras.layers.Activation("relu", name="copies")(
        keras.layers.Concatenate()([inp] * 8))
    pooled = keras.layers.GlobalAveragePooling2D()(feats)
    out = keras.layers.Dense(2, activation="sigmoid", name="head",
                             kernel_initializer=keras.initializers.RandomUniform(0.1, 1.0))(pooled)
    return keras.Model(inp, out)


def test_input_dominated_model_is_flagged(tmp_path):
    keras.utils.set_random_seed(3)
    model = input_dominated_model()
    rng = np.random.default_rng(0)
    batch = np.stack([np.clip(rng.normal(0.5, 0.2, (64, 64, 1)), 0, 1) for _ in range(4)])
    batch = batch.astype(np.float32)
    result = sanity.cascading_randomisation(model, batch, "copies")
    assert result.flagged and result.steps[0].name == "head"
    assert result.steps[-1].spearman > 0.99
    assert "FLAGGED" in result.verdict()


def test_sanity_command_writes_table_and_plot(tmp_path, capsys):
    code = main(["sanity", str(samples_dir() / "phantom_03_nodule.png"), "--steps", "2",
                 "--out", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "passed" in err and (tmp_path / "s" / "sanity.png").stat().st_size > 5000
    rows = (tmp_path / "s" / "sanity.csv").read_text().splitlines()
    assert rows[0] == "step,randomised up to,spearman,ssim" and len(rows) == 3


def test_sanity_exit_codes_tell_a_missing_input_from_a_flag(tmp_path, capsys):
    """As for explain, 1 is an input named but missing (the others are still checked); a
    flagged model has a code of its own, 4, whatever else happened."""
    sample = str(samples_dir() / "phantom_03_nodule.png")
    out = tmp_path / "s"
    code = main(["sanity", sample, str(tmp_path / "absent.png"), "--steps", "1",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "error:" in err and "absent.png" in err and "passed" in err
    assert (out / "sanity.csv").is_file()
    keras.utils.set_random_seed(3)
    model = tmp_path / "copies.keras"
    input_dominated_model().save(model)
    for extra, expected in (([], 4), ([str(tmp_path / "absent.png")], 4)):
        code = main(["sanity", sample, *extra, "--model", str(model), "--layer", "copies",
                     "--steps", "2", "--out", str(out)])
        err = capsys.readouterr().err
        assert code == expected and "FLAGGED" in err, err
