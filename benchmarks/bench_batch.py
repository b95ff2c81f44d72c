"""`gradcam-viewer explain` against its compute bound, on >= 200 images with one overlay each.

Compute bound: load + prepare (display pixels, model input) + explain per image, run one after
the other in this process with the explainer warm and the explain in batches as the command
sends them. Wall: the command itself (`cli.main`), per image, from the first image handed to
the pipeline to the last output written (model load and tracing are printed apart).
Models: the demo model, and the CheXNet preset (DenseNet121 at 320x320, weights=None, saved
by this script). Images: the NIH PNGs in ../shared/data/cxr-png (copied to a temporary folder,
cycled to --images names: the scanner lists a linked file once), else demo phantoms at 1024x1024.
Run: .venv/bin/python benchmarks/bench_batch.py [--images 200] [--models demo,densenet]
     [--overlays Nodule|none]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT.parent / "shared" / "data" / "cxr-png"


def make_inputs(folder: Path, n: int) -> str:
    folder.mkdir(parents=True)
    real = sorted(REAL.glob("*.png")) if REAL.is_dir() else []
    if real:
        for i in range(n):
            shutil.copyfile(real[i % len(real)], folder / f"img{i:05d}.png")
        return f"{n} temporary copies of the {len(real)} NIH PNGs in {REAL}"
    import numpy as np
    from PIL import Image

    from gradcam_viewer.demo.phantoms import make_phantoms

    pix = make_phantoms(min(n, 32), seed=15, size=1024, with_masks=False).images
    for i in range(n):
        Image.fromarray((pix[i % len(pix)] * 255).astype(np.uint8)).save(folder / f"img{i:05d}.png")
    return f"{n} demo phantoms, 1024x1024 (../shared/data is absent)"


def compute_bound(files: list[Path], model_args: list[str], batch: int) -> dict[str, float]:
    """Seconds per image of each stage, serially, with the same settings as the command."""
    import numpy as np

    from gradcam_viewer.batch.job import ExplainJob, JobSettings
    from gradcam_viewer.outputs.layout import Planned

    chexnet = bool(model_args) and model_args[0] == "--chexnet-weights"
    settings = JobSettings(model=None if chexnet else Path(model_args[1]) if model_args else None,
                           chexnet_weights=Path(model_args[1]) if chexnet else None)
    job = ExplainJob.from_settings(settings)
    job.explain([job.decode(Planned(files[0], "", Path("."), "x"))] * batch)  # trace
    from gradcam_viewer.imaging import load_image, to_display

    load = prep = expl = 0.0
    pending = []
    for path in files:
        t0 = time.perf_counter()
        image = load_image(path)
        t1 = time.perf_counter()
        x = job.bundle.prepare(to_display(image))
        t2 = time.perf_counter()
        load, prep = load + t1 - t0, prep + t2 - t1
        pending.append(x)
        if len(pending) == batch or path == files[-1]:
            t3 = time.perf_counter()
            job.explainer.explain(np.concatenate(pending))
            expl += time.perf_counter() - t3
            pending = []
    n = len(files)
    return {"load": load / n, "prepare": prep / n, "explain": expl / n}


def wall(folder: Path, out: Path, model_args: list[str], label: str, batch: int) -> dict:
    import gradcam_viewer.batch.pipeline as pipeline
    from gradcam_viewer.cli import main

    original = pipeline.run_pipeline
    marks: dict[str, float] = {}

    def timed(*args, **kwargs):
        marks["first"] = time.perf_counter()
        yield from original(*args, **kwargs)
        marks["last"] = time.perf_counter()

    pipeline.run_pipeline = timed
    try:
        start = time.perf_counter()
        code = main(["explain", str(folder), "--out", str(out), "--overlays", label,
                     "--batch-size", str(batch), *model_args])
        total = time.perf_counter() - start
    finally:
        pipeline.run_pipeline = original
    assert code == 0, f"explain failed ({code})"
    return {"images": marks["last"] - marks["first"], "startup": marks["first"] - start,
            "total": total}


def ray_throughput(folder: Path, out: Path, workers: int, batch: int) -> tuple[float, float]:
    """(images per second from the first finished task to the last, whole command in s) of
    `explain --ray` on the running Ray instance."""
    import gradcam_viewer.batch.ray_runner as runner
    from gradcam_viewer.cli import main

    original = runner.explain_on_ray
    stamps: list[float] = []

    def timed(*args, **kwargs):
        for result in original(*args, **kwargs):
            stamps.append(time.perf_counter())
            yield result

    runner.explain_on_ray = timed
    try:
        start = time.perf_counter()
        code = main(["explain", str(folder), "--out", str(out), "--overlays", "Nodule",
                     "--batch-size", str(batch), "--ray", "--ray-workers", str(workers)])
        total = time.perf_counter() - start
    finally:
        runner.explain_on_ray = original
    assert code == 0, f"explain --ray failed ({code})"
    # results come a task (4 batches) at a time: count those after the first task's
    after = sum(t > stamps[0] + 1e-3 for t in stamps)
    return after / (stamps[-1] - stamps[0]), total


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--models", default="demo,densenet")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--overlays", default="Nodule",
                        help="what the command's --overlays gets (default: one overlay)")
    parser.add_argument("--ray", action="store_true",
                        help="instead: explain --ray throughput (demo model) with 1 and 2 "
                             "workers on a local Ray instance of 2 CPUs")
    args = parser.parse_args()
    if args.ray:
        import ray

        tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
        try:
            print(make_inputs(tmp / "in", args.images), f"; load average {os.getloadavg()[0]:.1f}")
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
            for workers in (1, 2):
                rate, total = ray_throughput(tmp / "in", tmp / f"out{workers}", workers,
                                             args.batch_size)
                print(f"explain --ray, {workers} worker(s): {rate:.1f} images/s once running "
                      f"({args.images} images, whole command {total:.1f} s with actor start)")
        finally:
            ray.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        what = make_inputs(tmp / "in", args.images)
        files = sorted((tmp / "in").iterdir())
        print(f"{what}; batch size {args.batch_size}, --overlays {args.overlays}; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
        runs = []
        for name in args.models.split(","):
            if name == "demo":
                model_args, label = [], args.overlays
            else:
                from gradcam_viewer.models.chexnet import build_chexnet

                weights = tmp / "chexnet.weights.h5"
                if not weights.exists():
                    build_chexnet().save_weights(weights)
                model_args, label = ["--chexnet-weights", str(weights)], args.overlays
                name = "DenseNet121 320x320"
            bound = compute_bound(files, model_args, args.batch_size)
            w = wall(tmp / "in", tmp / f"out-{len(runs)}", model_args, label, args.batch_size)
            runs.append((name, bound, w))
            shutil.rmtree(tmp / f"out-{len(runs) - 1}")
        n = args.images
        print(f"{'model':<22}{'load':>7}{'prep':>7}{'expl':>7}{'bound':>8}{'wall':>8}"
              f"{'ratio':>7}   (ms per image; goal ratio <= 1.3)")
        for name, b, w in runs:
            bound_ms = 1e3 * sum(b.values())
            wall_ms = 1e3 * w["images"] / n
            print(f"{name:<22}{1e3 * b['load']:7.1f}{1e3 * b['prepare']:7.1f}"
                  f"{1e3 * b['explain']:7.1f}{bound_ms:8.1f}{wall_ms:8.1f}"
                  f"{wall_ms / bound_ms:7.2f}   (+{w['startup']:.1f} s model load and "
                  f"tracing; whole command {w['total']:.1f} s)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory of this process: {peak:.0f} MB; load average at the end "
              f"{os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
