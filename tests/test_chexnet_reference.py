"""CheXNet normalisation by the mean/std of reference images (the course's
`get_mean_std_per_batch`), stored beside the weights; per-image z-score without them."""

import shutil

import numpy as np
import pytest
from PIL import Image

from gradcam_viewer.cli import main
from gradcam_viewer.models import ModelLoadError
from gradcam_viewer.models.chexnet import SIZE, reference_stats
from gradcam_viewer.models.manifest import read_manifest
from gradcam_viewer.resources import samples_dir


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    for png in sorted(samples_dir().glob("*.png")):
        shutil.copy(png, folder / png.name)
    (folder / "notes.txt").write_text("not an image")
    return folder


def _numpy_stats(folder):
    """The course's way: load each image at 320x320 RGB, stack, np.mean / np.std."""
    stack = []
    for png in sorted(folder.glob("*.png")):
        with Image.open(png) as im:
            stack.append(np.asarray(im.convert("RGB").resize((SIZE, SIZE),
                                                             Image.Resampling.BILINEAR)))
    stack = np.asarray(stack, np.float64)
    return stack.mean(), stack.std(), len(stack)


def test_reference_stats_match_numpy(reference_folder):
    mean, std, used, skipped = reference_stats(reference_folder)
    ref_mean, ref_std, n = _numpy_stats(reference_folder)
    assert (used, skipped) == (n, 1)
    assert mean == pytest.approx(ref_mean, rel=1e-4) and std == pytest.approx(ref_std, rel=1e-3)


def test_reference_folder_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        reference_stats(tmp_path / "missing")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="no image that can be read"):
        reference_stats(tmp_path)


@pytest.mark.slow
def test_chexnet_with_reference_images(tmp_path, reference_folder, capsys):
    from gradcam_viewer.models.chexnet import build_chexnet, load_chexnet_weights
    from gradcam_viewer.ui.dialogs import model_card_html

    weights = tmp_path / "chexnet.weights.h5"
    build_chexnet().save_weights(weights)
    plain = load_chexnet_weights(weights)
    assert plain.manifest["preprocessing"] == {"kind": "zscore"}
    assert "each image to mean 0" in model_card_html(plain.manifest)

    bundle = load_chexnet_weights(weights, reference_folder)
    stored = read_manifest(tmp_path / "chexnet.weights.json")
    prep = stored["preprocessing"]
    assert prep["kind"] == "fixed" and prep["reference"]["images"] == 5
    assert stored["weights_sha256"] == bundle.manifest["weights_sha256"]
    ref_mean, ref_std, _ = _numpy_stats(reference_folder)
    pixels = np.asarray(Image.open(samples_dir() / "phantom_03_nodule.png").convert("L"))
    small = np.asarray(Image.fromarray(pixels).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    expected = (np.repeat(small[..., None], 3, -1) - ref_mean) / ref_std
    np.testing.assert_allclose(bundle.prepare(pixels)[0], expected, rtol=1e-3, atol=1e-3)
    assert "reference images" in model_card_html(bundle.manifest)
    assert any("saved in 'chexnet.weights.json'" in n for n in bundle.notices)

    again = load_chexnet_weights(weights)  # no folder: the stored mean/std are used
    assert again.manifest["preprocessing"] == prep
    code = main(["explain", str(samples_dir() / "phantom_03_nodule.png"), "--chexnet-weights",
                 str(weights), "--reference-images", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_reference_images_need_chexnet_weights(tmp_path, capsys):
    png = samples_dir() / "phantom_03_nodule.png"
    assert main(["explain", str(png), "--reference-images", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2
    assert "goes with --chexnet-weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["--reference-images", str(tmp_path)])
    assert exit_.value.code == 2
