"""`gradcam-viewer manifest`: writes a manifest beside a model that has none; `explain` then
shows what Keras + the chosen preprocessing and activation give (computed here without the
viewer's code: Pillow resize, keras.applications preprocess_input, keras activations)."""

import csv
import json
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

import models_zoo as zoo
from gradcam_viewer.cli import main
from gradcam_viewer.imaging import load_image, to_display
from gradcam_viewer.models.manifest import read_manifest, sha256_of
from gradcam_viewer.resources import samples_dir

PNG = samples_dir() / "phantom_03_nodule.png"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    zoo.small_cnn_gap(activation=None).save(folder / "linear.keras")
    zoo.small_cnn_gap().save(folder / "sigmoid.keras")
    inp = keras.Input((None, None, 3))
    g = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="c")(inp))
    keras.Model([inp], [keras.layers.Dense(2)(g)]).save(folder / "anysize.keras")
    return folder


def _copy(models, name, tmp_path):
    path = tmp_path / name
    shutil.copy(models / name, path)
    return path


def _keras_reference(model_path, image_path, preprocess, activation, size=32):
    model = keras.models.load_model(model_path, compile=False)
    display = to_display(load_image(image_path))
    small = np.asarray(Image.fromarray(display).resize((size, size), Image.Resampling.BILINEAR))
    x = preprocess(np.repeat(small[..., None], 3, axis=-1).astype(np.float32)[None])
    out = model.predict(x, verbose=0)
    return keras.ops.convert_to_numpy(activation(out))[0] if activation else out[0]


def test_manifest_then_explain_gives_keras_probabilities(models, tmp_path, capsys):
    path = _copy(models, "linear.keras", tmp_path)
    code = main(["manifest", str(path), "--labels", "Effusion, Mass,Nodule",
                 "--preprocessing", "tf", "--activation", "sigmoid", "--name", "My CNN"])
    out, err = capsys.readouterr()
    assert code == 0, err
    written = tmp_path / "linear.json"
    assert str(written) in out
    manifest = read_manifest(written)
    assert manifest["weights_sha256"] == sha256_of(path)
    assert manifest["labels"] == ["Effusion", "Mass", "Nodule"]
    assert (manifest["output_kind"], manifest["output_activation"]) == ("logits", "sigmoid")
    assert manifest["name"] == "My CNN" and manifest["target_layer"] == "auto"
    assert main(["explain", str(PNG), "--model", str(path), "--out", str(tmp_path / "o")]) == 0
    record = json.loads((tmp_path / "o" / f"{PNG.stem}.json").read_text())
    expected = _keras_reference(path, PNG, keras.applications.xception.preprocess_input,
                                keras.activations.sigmoid)
    assert "scores" not in record and list(record["probabilities"]) == manifest["labels"]
    np.testing.assert_allclose(list(record["probabilities"].values()), expected, atol=1e-5)


def test_linear_model_without_activation_gives_scores(models, tmp_path, capsys):
    path = _copy(models, "linear.keras", tmp_path)
    assert main(["manifest", str(path), "--labels", "a,b,c", "--preprocessing", "caffe"]) == 0
    assert "scores (not probabilities)" in capsys.readouterr().err
    assert read_manifest(tmp_path / "linear.json")["output_kind"] == "scores"
    assert main(["explain", str(PNG), "--model", str(path), "--out", str(tmp_path / "o")]) == 0
    record = json.loads((tmp_path / "o" / f"{PNG.stem}.json").read_text())
    assert "probabilities" not in record and record["output_kind"] == "scores"
    expected = _keras_reference(path, PNG, keras.applications.vgg16.preprocess_input, None)
    np.testing.assert_allclose(list(record["scores"].values()), expected, rtol=1e-5, atol=1e-4)
    rows = list(csv.reader((tmp_path / "o" / "predictions.csv").open()))
    assert rows[0][-2] == "values" and rows[1][-2] == "scores (not probabilities)"
    with Image.open(tmp_path / "o" / f"{PNG.stem}_a.png") as im:
        assert "Score" in im.text and "Probability" not in im.text


def test_manifest_less_linear_model_is_scores_in_explain(models, tmp_path, capsys):
    path = _copy(models, "linear.keras", tmp_path)
    assert main(["explain", str(PNG), "--model", str(path), "--out", str(tmp_path / "o")]) == 0
    assert "scores (not probabilities)" in capsys.readouterr().err
    record = json.loads((tmp_path / "o" / f"{PNG.stem}.json").read_text())
    assert set(record["scores"]) == {"class 0", "class 1", "class 2"}


@pytest.mark.parametrize("args,fragment", [
    (["--labels", "a,b", "--preprocessing", "tf"], "3 outputs but 2 label names"),
    (["--labels", "a,b,c,d", "--preprocessing", "tf"], "3 outputs but 4 label names"),
    (["--labels", "a,a,b", "--preprocessing", "tf"], "must be different"),
    (["--labels", "a,b,c", "--preprocessing", "tf", "--layer", "nope"], "no layer named 'nope'"),
    (["--labels", "a,b,c", "--preprocessing", "tf", "--size", "64x64"], "input is 32x32"),
    (["--labels", "a,b,c", "--preprocessing", "fixed"], "needs a mean and a std"),
    (["--preprocessing", "tf"], "Name the labels"),
])
def test_bad_choices_exit_2(models, tmp_path, capsys, args, fragment):
    path = _copy(models, "linear.keras", tmp_path)
    assert main(["manifest", str(path), *args]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "linear.json").exists()


def test_sigmoid_model_refuses_another_activation(models, tmp_path, capsys):
    path = _copy(models, "sigmoid.keras", tmp_path)
    assert main(["manifest", str(path), "--labels", "a,b,c", "--preprocessing", "unit",
                 "--activation", "softmax"]) == 2
    assert "already ends in a sigmoid" in capsys.readouterr().err
    assert main(["manifest", str(path), "--labels", "a,b,c", "--preprocessing", "unit"]) == 0
    assert read_manifest(tmp_path / "sigmoid.json")["output_kind"] == "probabilities"


def test_existing_manifest_needs_force(models, tmp_path, capsys):
    path = _copy(models, "linear.keras", tmp_path)
    base = ["manifest", str(path), "--labels", "a,b,c", "--preprocessing", "tf"]
    assert main(base) == 0
    before = (tmp_path / "linear.json").read_text()
    assert main(base[:3] + ["x,y,z"] + base[4:]) == 2
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "linear.json").read_text() == before
    assert main(base[:3] + ["x,y,z"] + base[4:] + ["--force"]) == 0
    assert read_manifest(tmp_path / "linear.json")["labels"] == ["x", "y", "z"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("name,text", [
    ("labels.txt", "Effusion\n\nMass \nNodule\n"),
    ("labels.csv", "Effusion,Mass,Nodule\n0,1,0\n1,0,0\n"),
])
def test_labels_file(models, tmp_path, name, text):
    path = _copy(models, "linear.keras", tmp_path)
    (tmp_path / name).write_text(text)
    assert main(["manifest", str(path), "--labels-file", str(tmp_path / name),
                 "--preprocessing", "torch", "--activation", "softmax"]) == 0
    assert read_manifest(tmp_path / "linear.json")["labels"] == ["Effusion", "Mass", "Nodule"]


def test_any_size_model_needs_size(models, tmp_path, capsys):
    path = _copy(models, "anysize.keras", tmp_path)
    args = ["manifest", str(path), "--labels", "no,yes", "--preprocessing", "none",
            "--activation", "softmax", "--layer", "c"]
    assert main(args) == 2
    assert "any input size" in capsys.readouterr().err
    assert main(args + ["--size", "48x40"]) == 0
    manifest = read_manifest(tmp_path / "anysize.json")
    assert manifest["input"] == {"height": 48, "width": 40, "channels": 3, "colour": "grey"}
    assert manifest["target_layer"] == "c"


def test_two_output_model_needs_output(tmp_path, capsys):
    from gradcam_viewer.models import load_model_bundle

    inp = keras.Input((32, 32, 3))
    g = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, name="c")(inp))
    aux = keras.layers.Dense(1, name="aux")(g)
    scores = keras.layers.Dense(2, activation="sigmoid", name="scores")(g)
    path = tmp_path / "two.keras"
    keras.Model(inp, [aux, scores]).save(path)
    base = ["manifest", str(path), "--labels", "A,B", "--preprocessing", "unit"]
    assert main(base) == 2 and "2 outputs" in capsys.readouterr().err
    code = main(base + ["--output", "scores"])
    assert code == 0, capsys.readouterr().err
    assert read_manifest(tmp_path / "two.json")["output"] == "scores"
    bundle = load_model_bundle(path)
    assert bundle.labels == ["A", "B"] and bundle.output_kind == "probabilities"
