"""Batch explain: the pipeline's outputs are those of explaining each image alone,
and the scheduler hands back every input once, in order, with a bounded number in flight."""

import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from gradcam_viewer.batch.pipeline import run_pipeline
from gradcam_viewer.cli import main
from gradcam_viewer.outputs.layout import common_root, plan_outputs

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
LABELS = ["Nodule", "Effusion"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The bundled phantoms (PNG and DICOM) and, when present, 6 real NIH radiographs."""
    from conftest import SHARED

    files = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".png", ".dcm"))
    real = SHARED / "cxr-png"
    if real.is_dir():
        files += sorted(real.glob("*.png"))[:6]
    return files


def single_image_outputs(files, bundle, explainer):
    """The one-image path, written out: load, prepare, explain alone, upsample, blend."""
    from gradcam_viewer.imaging import load_image, to_display
    from gradcam_viewer.render import OverlayStyle, composite

    out = {}
    for path in files:
        image = load_image(path)
        result = explainer.explain(bundle.prepare(image))
        values = bundle.values(result.probabilities[0])
        overlays = {bundle.labels[k]: composite(to_display(image),
                                                result.display_heatmap(0, k, image.size),
                                                OverlayStyle())
                    for k in (bundle.labels.index(lab) for lab in LABELS)}
        out[path] = (values, overlays)
    return out


@pytest.fixture(scope="module")
def expected(inputs, reference):
    from gradcam_viewer.cam import Explainer

    bundle, _ = reference
    return single_image_outputs(inputs, bundle, Explainer(bundle.model,
                                                          layer=bundle.target_layer))


def explain(inputs, out, *extra):
    args = ["explain", *map(str, inputs), "--out", str(out), "--overlays", ",".join(LABELS)]
    assert main([*args, *extra]) == 0


def compare(inputs, out, expected, bundle, exact):
    plan = plan_outputs(inputs, common_root(inputs), out, LABELS)
    changed = total = 0
    for item in plan:
        values, overlays = expected[item.source]
        record = json.loads(item.json_path.read_text())
        got = [record["probabilities"][lab] for lab in bundle.labels]
        if exact:
            assert got == [round(float(v), 6) for v in values], item.rel
        else:
            np.testing.assert_allclose(got, values, atol=2e-6, err_msg=item.rel)
        for label, rgb in overlays.items():
            png = Image.open(item.overlay_path(label))
            assert (png.text["Label"], png.text["Source"]) == (label, item.rel)
            pixels = np.asarray(png.convert("RGB"))
            assert pixels.shape == rgb.shape
            if exact:
                np.testing.assert_array_equal(pixels, rgb, err_msg=item.rel)
            moved = (pixels != rgb).any(axis=-1)
            changed += int(moved.sum())
            total += moved.size
    return changed / total


def test_batch_of_one_is_bit_identical_to_the_single_image_path(inputs, expected, reference,
                                                                tmp_path):
    bundle, _ = reference
    explain(inputs, tmp_path / "one", "--batch-size", "1")
    compare(inputs, tmp_path / "one", expected, bundle, exact=True)


def test_batches_match_the_single_image_path(inputs, expected, reference, tmp_path):
    """Larger batches go through other oneDNN kernels (sums in another order): probabilities
    agree to 2e-6, and the only overlay pixels that differ are those whose heatmap value sits
    on a rounding edge (colour index) or on the 0.2 threshold: a few in 100,000."""
    bundle, _ = reference
    explain(inputs, tmp_path / "eight", "--batch-size", "8")
    moved = compare(inputs, tmp_path / "eight", expected, bundle, exact=False)
    print(f"overlay pixels that differ with batches of 8: {moved:.2e}")
    assert moved < 1e-4


def test_no_overlays_writes_predictions_only(inputs, tmp_path):
    out = tmp_path / "none"
    assert main(["explain", *map(str, inputs[:3]), "--out", str(out), "--overlays", "none"]) == 0
    assert not list(out.rglob("*.png"))
    assert len(list(out.rglob("*.json"))) == 3
    assert len((out / "predictions.csv").read_text().splitlines()) == 4


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 30), batch=st.integers(1, 6), limit=st.integers(1, 12),
       workers=st.integers(1, 3), data=st.data())
def test_scheduler_returns_each_item_once_in_order_with_few_in_flight(n, batch, limit, workers,
                                                                       data):
    """Random stage delays and failures: every item comes back once, in input order, with the
    failing stage's exception, and never more than max(limit, batch) items are held."""
    fail_decode = data.draw(st.sets(st.integers(0, max(n - 1, 0))), label="decode fails")
    fail_write = data.draw(st.sets(st.integers(0, max(n - 1, 0))), label="write fails")
    fail_batch = data.draw(st.booleans(), label="one batch fails")
    delays = data.draw(st.lists(st.floats(0, 0.002), min_size=n, max_size=n), label="delays")
    lock = threading.Lock()
    live, peak, batches = [0], [0], []

    def decode(i):
        time.sleep(delays[i])
        if i in fail_decode:
            raise ValueError(f"decode {i}")
        with lock:
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        return i * 10

    def explain_batch(decoded):
        batches.append(len(decoded))
        if fail_batch and len(batches) == 2:
            with lock:
                live[0] -= len(decoded)
            raise RuntimeError("batch")
        return [d + 1 for d in decoded]

    def write(i, decoded, result):
        time.sleep(delays[-1 - i])
        with lock:
            live[0] -= 1
        if i in fail_write:
            raise OSError(f"write {i}")
        return (i, decoded, result)

    done = list(run_pipeline(range(n), decode, explain_batch, write, batch_size=batch,
                             decode_workers=workers, write_workers=workers,
                             max_in_flight=limit))
    assert [d.index for d in done] == list(range(n))
    assert [d.item for d in done] == list(range(n))
    for d in done:
        if d.error is None:
            assert d.result == (d.item, d.item * 10, d.item * 10 + 1)
            assert d.item not in fail_decode | fail_write
        else:
            assert (d.item in fail_decode or d.item in fail_write
                    or str(d.error) == "batch")
    assert all(0 < b <= batch for b in batches)
    assert peak[0] <= max(limit, batch)


def test_stopping_the_pipeline_starts_no_more_work():
    """Ctrl-C (or a caller that stops reading) used to let every queued decode and write run to
    the end first (explain on the NIH PNGs: 5.5 s and 132 more output files after Ctrl-C)."""
    started = [0]
    lock = threading.Lock()

    def decode(i):
        with lock:
            started[0] += 1
        time.sleep(0.02)
        return i

    results = run_pipeline(range(300), decode, lambda b: b, lambda i, d, e: i, batch_size=4,
                           decode_workers=2, write_workers=2, max_in_flight=300)
    assert next(results).item == 0
    at_stop = started[0]
    results.close()  # what a KeyboardInterrupt in the caller's loop does too
    time.sleep(0.1)
    assert started[0] <= at_stop + 4, started[0]  # those running, not the ~290 queued


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 50), w=st.integers(1, 50),
       rgb=st.booleans(),
       text=st.dictionaries(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabc", min_size=1, max_size=12),
                            st.text(st.characters(blacklist_categories=("Cs",),
                                                  blacklist_characters="\x00"), max_size=30),
                            max_size=4))
def test_fast_png_reads_back_as_written_in_pillow(seed, h, w, rgb, text):
    """Pillow, an independent PNG reader, gets the same pixels and text chunks back."""
    import io

    from gradcam_viewer.outputs.export import encode_png_fast

    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (h, w, 3) if rgb else (h, w), dtype=np.uint8)
    if seed % 2:  # smooth images too (what the filter is for)
        pixels = np.sort(pixels, axis=0)
    image = Image.open(io.BytesIO(encode_png_fast(pixels, text)))
    image.load()
    assert image.mode == ("RGB" if rgb else "L")
    np.testing.assert_array_equal(np.asarray(image), pixels)
    assert image.text == text


def test_fast_png_of_a_full_size_overlay_reads_back_as_written():
    """A radiograph-sized overlay (the deflate stream spans many blocks), read back by Pillow
    and by the standard zlib decoder, chunk by chunk."""
    import io
    import struct
    import zlib

    from gradcam_viewer.outputs.export import encode_png_fast

    rng = np.random.default_rng(15)
    yy, xx = np.mgrid[0:1024, 0:1000]
    smooth = (128 + 100 * np.sin(yy / 90.0) * np.cos(xx / 70.0))[..., None] * [1.0, 0.8, 0.6]
    pixels = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
    data = encode_png_fast(pixels, {"Label": "Nodule"})
    image = Image.open(io.BytesIO(data))
    image.load()
    np.testing.assert_array_equal(np.asarray(image), pixels)
    pos, idat = 8, b""
    while pos < len(data):  # every chunk's CRC is right; IDAT is a plain zlib stream
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == \
            zlib.crc32(tag + body)
        idat += body if tag == b"IDAT" else b""
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(1024, 1 + 3000)
    assert (rows[:, 0] <= 4).all()


FAULTS_SCRIPT = """
import resource, threading, numpy as np
from gradcam_viewer.batch.memory import keep_freed_memory
assert keep_freed_memory()
def image():  # the per-image temporaries of a batch, in miniature: 3 arrays of 4 MB
    for _ in range(20):
        a = np.ones((1024, 1024), np.float32); b = a * 2; c = b.astype(np.int32); del a, b, c
image()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
    worker = threading.Thread(target=image); worker.start(); worker.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="malloc thresholds are glibc's")
def test_batch_work_reuses_freed_memory_instead_of_faulting_it_in_again():
    """With glibc's defaults most 4 MB arrays are unmapped when freed and faulted in again
    (~60,000 of these 122,880 pages here); after keep_freed_memory the arenas reuse them."""
    import resource

    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], check=True)
    pages_touched = 120 * (4 << 20) // resource.getpagesize()
    assert int(out.stdout.split()[-1]) < pages_touched / 10
