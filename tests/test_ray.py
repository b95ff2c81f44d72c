"""`explain --ray` on a local Ray instance with 2 workers gives the same files as the local
run. Skipped when Ray is not installed (`pip install -e '.[test]'` installs it)."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import requirements
from gradcam_viewer.cli import main

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_instance():
    ray = requirements.module("ray", "pip install -e '.[test]' (or '.[cluster]')")
    requirements.module("ray.data", "pip install 'ray[data]'")
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ray_outputs_equal_the_local_run(ray_instance, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for p in sorted(SAMPLES.iterdir()):
        if p.suffix in (".png", ".dcm"):
            (inputs / p.name).write_bytes(p.read_bytes())
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    noise = np.random.default_rng(15).integers(0, 256, (128, 128), dtype=np.uint8)
    Image.fromarray(noise).save(inputs / "noise.png")  # out of distribution for the demo model
    common = ["explain", str(inputs), "--overlays", "Nodule,Mass", "--batch-size", "1"]
    assert main([*common, "--out", str(tmp_path / "local")]) == 1  # the broken file fails
    local_err = capsys.readouterr().err
    assert ray_instance.cluster_resources().get("CPU") == 2
    assert main([*common, "--out", str(tmp_path / "ray"), "--ray", "--ray-workers", "2"]) == 1
    ray_err = capsys.readouterr().err
    local, remote = files_of(tmp_path / "local"), files_of(tmp_path / "ray")
    assert len(local) == 1 + 11 * 3  # predictions.csv, and per image a JSON and two overlays
    assert local.keys() == remote.keys()
    for name in local:
        assert local[name] == remote[name], name
    problem = [line for line in local_err.splitlines() if "broken.png" in line]
    assert problem and problem[0] in ray_err.splitlines()
    assert "11 images explained" in ray_err and "1 failed" in ray_err
    warning = [line for line in local_err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "noise.png" in warning[0]  # the OOD warning
    assert warning[0] in ray_err.splitlines()


def test_ray_missing_is_a_clear_error(monkeypatch, tmp_path, capsys):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    png = next(SAMPLES.glob("*.png"))
    assert main(["explain", str(png), "--out", str(tmp_path), "--ray"]) == 2
    assert "pip install 'gradcam-viewer[cluster]'" in capsys.readouterr().err
