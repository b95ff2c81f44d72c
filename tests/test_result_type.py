"""One per-image result (`cam.result.ExplainResult`) from the engine to every output, and one
model identity for every record: the batch job, the window and the DICOM objects say the same
as the engine called directly."""

import json

import numpy as np
import pytest

from gradcam_viewer.cam.result import ExplainResult
from gradcam_viewer.models.identity import ModelIdentity
from gradcam_viewer.resources import samples_dir
from gradcam_viewer.session.results import ModelInfo

PNG = samples_dir() / "phantom_03_nodule.png"
DCM = samples_dir() / "phantom_02_cardiomegaly_effusion.dcm"


def window_model(bundle) -> ModelInfo:
    """What the worker tells the window about its model (ui/worker.py)."""
    return ModelInfo(1, bundle.name, list(bundle.labels), dict(bundle.manifest),
                     bundle.is_demo, list(bundle.notices), loader=bundle.loader)


def test_the_batch_job_gives_the_engines_result_for_each_image(reference, tmp_path):
    from gradcam_viewer.batch.job import ExplainJob, JobSettings
    from gradcam_viewer.outputs.layout import common_root, plan_outputs

    bundle, run = reference
    job = ExplainJob.from_settings(JobSettings(overlays=("Nodule",)))
    items = plan_outputs([PNG, DCM], common_root([PNG, DCM]), tmp_path, ["Nodule"])
    decoded = [job.decode(item) for item in items]
    results = job.explain(decoded)
    assert all(type(r) is ExplainResult for r in results)
    for item, image, result in zip(items, decoded, results, strict=True):
        alone = run(item.source)  # the engine on this image alone
        np.testing.assert_allclose(result.probabilities, bundle.values(alone.probabilities[0]),
                                   atol=1e-5)
        np.testing.assert_allclose(result.heatmaps, alone.heatmaps[0], atol=1e-5)
        assert (result.layer, result.method, result.score) == (alone.layer_name, "gradcam",
                                                               alone.score)
        assert result.key[0] == str(item.source) and result.ood["calibrated"]
        row = job.write(item, image, result).row
        record = json.loads(item.json_path.read_text())
        assert record["ood"] == json.loads(json.dumps(result.ood)) and row[0] == record["path"]


def test_window_and_bundle_give_one_model_identity(reference):
    bundle, _ = reference
    info = window_model(bundle)
    assert info.identity == bundle.identity
    assert info.identity.labels == tuple(bundle.labels)
    assert bundle.identity.as_record() == {
        "name": bundle.name, "version": str(bundle.manifest["version"]),
        "sha256": bundle.manifest["weights_sha256"], "synthetic_demo": True}
    # a manifest that does not say what the outputs are: scores, whoever asks
    bare = ModelIdentity.of("m", ["a"], {})
    assert bare.output_kind == "scores" and bare.sha256 is None


def test_window_and_command_write_the_same_record(reference, tmp_path):
    """The window builds records from what it has (no Keras model): the same JSON as the
    command for the same image, apart from nothing."""
    from gradcam_viewer.cli import main
    from gradcam_viewer.imaging import load_image
    from gradcam_viewer.outputs.records import prediction_record, source_id
    from gradcam_viewer.trust.ood import check_for

    bundle, _ = reference
    assert main(["explain", str(PNG), "--out", str(tmp_path), "--overlays", "none"]) == 0
    written = json.loads((tmp_path / f"{PNG.stem}.json").read_text())
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.trust.ood import feature_layer_of

    explainer = Explainer(bundle.model, layer=bundle.target_layer,
                          feature_layer=feature_layer_of(bundle.manifest))
    ood = check_for(bundle, explainer)
    batch = explainer.explain(bundle.prepare(load_image(PNG)))
    result = batch.result(0, (str(PNG), 0, "gradcam", 1), bundle.values(batch.probabilities[0]),
                          ood=ood.record(batch.features[0]))
    record = prediction_record(source_id(load_image(PNG), PNG.name), load_image(PNG),
                               window_model(bundle).identity, result)
    record = json.loads(json.dumps(record))
    assert record.keys() == written.keys()
    for key, value in written.items():
        if key in ("probabilities", "ood"):
            got = record[key]
            assert got.keys() == value.keys()
            for k, v in value.items():
                assert got[k] == (pytest.approx(v, abs=2e-5) if isinstance(v, float) else v), k
        else:
            assert record[key] == value, key


@pytest.mark.parametrize("feature_layer", [None, "ctx1_conv"])
def test_feature_channels_are_those_the_engine_pools(reference, feature_layer):
    """What the out-of-distribution check compares a calibration's dimension with."""
    from gradcam_viewer.cam import Explainer
    from gradcam_viewer.imaging import load_image

    bundle, _ = reference
    explainer = Explainer(bundle.model, layer=bundle.target_layer, feature_layer=feature_layer)
    features = explainer.explain(bundle.prepare(load_image(PNG))).features
    assert explainer.feature_channels == features.shape[-1]
