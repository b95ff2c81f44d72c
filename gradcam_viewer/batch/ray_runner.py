"""`explain --ray`: the same per-image stages on a Ray cluster (Ray Data `map_batches` over an
actor pool, each actor holding one model and `Explainer`), for archives that outgrow one
machine. Ray is an optional extra (`gradcam-viewer[cluster]`), never part of the installer.

The driver plans the outputs, as the local run does; actors decode, explain and write each
image's overlays and JSON (a folder every node can reach), and return the CSV rows, which the
driver merges into one predictions.csv. Ray Data retries failed tasks and restarts actors.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gradcam_viewer.batch.job import ExplainJob, JobSettings, failure_message
from gradcam_viewer.outputs.layout import Planned

log = logging.getLogger(__name__)
RETRIES = 3  # restarts of a failed actor, and retries of its task
BATCHES_PER_TASK = 4  # model batches in one Ray task: fewer round trips, decode/write overlap


class RayUnavailableError(RuntimeError):
    pass


class ExplainActor:
    """One model per actor; each batch goes through the local pipeline (decode and write
    overlap the model inside the actor too)."""

    def __init__(self, settings: JobSettings, batch_size: int):
        self.job = ExplainJob.from_settings(settings)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from gradcam_viewer.batch.pipeline import run_pipeline

        items = [Planned(Path(s), str(r), Path(f), str(b)) for s, r, f, b in
                 zip(batch["source"], batch["rel"], batch["folder"], batch["base"], strict=True)]
        rows, messages = [], []
        for done in run_pipeline(items, self.job.decode, self.job.explain, self.job.write,
                                 batch_size=self.batch_size, decode_workers=1,
                                 write_workers=1):
            # a row comes with the image's warning, if any; no row with why it failed
            if done.error is not None:
                rows.append("")
                messages.append(failure_message(done.item, done.error))
            else:
                assert done.result is not None  # what write returned
                rows.append(json.dumps(done.result.row))
                messages.append(done.result.warning or "")
        return {"index": np.asarray(batch["index"]), "row": np.asarray(rows, dtype=object),
                "message": np.asarray(messages, dtype=object)}


def explain_on_ray(todo: list[tuple[int, Planned]], settings: JobSettings, address: str,
                   batch_size: int, workers: int | None
                   ) -> Iterator[tuple[int, Planned, list[str] | None, str | None]]:
    """(index, item, CSV row or None, message or None) for every planned image: the message
    is why the image failed (no row) or its out-of-distribution warning (with a row)."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayUnavailableError("--ray needs Ray: pip install 'gradcam-viewer[cluster]'") from exc
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                     runtime_env=_runtime_env(address))
        except Exception as exc:  # unreachable head, version mismatch...
            raise RayUnavailableError(f"cannot connect to the Ray cluster "
                                 f"'{address or 'local'}' ({type(exc).__name__}: {exc})") from exc
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # our own progress bar only
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        by_index = dict(todo)
        items = [{"index": i, "source": os.path.abspath(item.source), "rel": item.rel,
                  "folder": os.path.abspath(item.folder), "base": item.base}
                 for i, item in todo]
        dataset = ray.data.from_items(items).map_batches(
            ExplainActor, fn_constructor_kwargs={"settings": settings, "batch_size": batch_size},
            batch_size=batch_size * BATCHES_PER_TASK, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
            max_restarts=RETRIES, max_task_retries=RETRIES)
        for batch in dataset.iter_batches(batch_format="numpy", batch_size=None):
            for index, row, message in zip(batch["index"], batch["row"], batch["message"], strict=True):
                item = by_index[int(index)]
                yield (int(index), item, json.loads(row) if row else None,
                       str(message) if message else None)
    finally:
        if started_here:
            ray.shutdown()


def _runtime_env(address: str) -> dict[str, Any]:
    """On this machine, workers import the same copy of the program as the driver (an
    editable or source checkout); a cluster's nodes have it installed (see the README)."""
    if address:
        return {}
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}
