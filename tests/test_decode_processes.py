"""Large compressed frames decoded in child processes (imaging/decode_processes.py): the same
pixels and the same messages as decoding in the viewer's process, for every compressed file
of pydicom's test corpus and the shared radiographs; a decode given up when no longer wanted; a
child that dies becomes a clear message and the next file still opens."""

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydicom.uid import JPEG2000Lossless

from dicom_factory import make_dataset
from gradcam_viewer.imaging import ImageLoadError, load_image
from gradcam_viewer.imaging.decode_processes import DecodeCancelled, DecodePool, Offload


@pytest.fixture(scope="module")
def pool():
    p = DecodePool(keep=2, min_pixels=0)  # every compressed frame, however small
    yield p
    p.close()


def _corpus():
    """The compressed files of pydicom's own test corpus (on disk: nothing is downloaded)."""
    import pydicom
    import pydicom.data

    found = []
    for path in sorted((Path(pydicom.data.__file__).parent / "test_files").glob("*.dcm")):
        try:
            meta = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            compressed = meta.file_meta.TransferSyntaxUID.is_compressed
            frames = int(meta.get("NumberOfFrames", 1) or 1)
        except Exception:  # noqa: BLE001 - no file meta, a damaged header: not this test's
            continue
        if compressed:
            found += [(path, 0)] + ([(path, frames - 1)] if frames > 1 else [])
    return found


def _outcome(path, frame=0, offload=None):
    try:
        image = load_image(path, frame, offload)
    except ImageLoadError as exc:
        return "error", str(exc)
    return "image", image


def test_every_compressed_corpus_file_gives_the_same_image_in_a_child(pool):
    files = _corpus()
    assert len(files) >= 40
    for path, frame in files:
        here = _outcome(path, frame)
        there = _outcome(path, frame, offload=Offload(pool))
        assert here[0] == there[0], (path.name, here, there)
        if here[0] == "error":
            assert here[1] == there[1]
            continue
        a, b = here[1], there[1]
        np.testing.assert_array_equal(a.pixels, b.pixels, err_msg=path.name)
        assert (a.window, a.presets, a.invert, a.source_format) == (b.window, b.presets,
                                                                     b.invert, b.source_format)
    assert pool.starts >= 1  # children did the decoding


def test_every_shared_compressed_radiograph_gives_the_same_pixels(pool, shared_data):
    import pydicom

    done = 0
    for path in sorted(shared_data.rglob("*.dcm")):
        try:
            syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        except Exception:  # noqa: BLE001 - a damaged header: test_imaging_corpus's business
            continue
        if not syntax.is_compressed:
            continue
        here, there = _outcome(path), _outcome(path, offload=Offload(pool))
        assert here[0] == there[0], path.name
        if here[0] == "image":
            np.testing.assert_array_equal(here[1].pixels, there[1].pixels, err_msg=path.name)
            done += 1
        else:
            assert here[1] == there[1]
    assert done >= 3


@pytest.fixture(scope="module")
def big_j2k(tmp_path_factory):
    """A JPEG 2000 lossless radiograph large enough to take a while to decode (about 9 MP)."""
    rng = np.random.default_rng(1)
    pixels = rng.normal(2000, 300, (3000, 3000)).clip(0, 4095).astype(np.uint16)
    ds = make_dataset(pixels, bits_stored=12)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    path = tmp_path_factory.mktemp("j2k") / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, pixels


def test_a_decode_no_longer_wanted_is_given_up_and_the_next_one_works(pool, big_j2k):
    path, pixels = big_j2k
    full = load_image(path, offload=Offload(pool))  # also: a child is ready for what follows
    np.testing.assert_array_equal(full.pixels, pixels)
    wanted = threading.Event()
    wanted.set()
    threading.Timer(0.05, wanted.clear).start()
    given_up = pool.given_up
    with pytest.raises(DecodeCancelled):
        load_image(path, offload=Offload(pool, cancelled=lambda: not wanted.is_set()))
    assert pool.given_up == given_up + 1
    again = load_image(path, offload=Offload(pool))
    np.testing.assert_array_equal(again.pixels, pixels)


def test_a_decode_not_wanted_before_it_starts_uses_no_child(pool, big_j2k):
    path, _ = big_j2k
    starts = pool.starts
    with pytest.raises(DecodeCancelled):
        load_image(path, offload=Offload(pool, cancelled=lambda: True))
    assert pool.starts == starts


def test_a_child_that_dies_is_a_clear_message_and_the_next_file_opens(big_j2k):
    path, pixels = big_j2k
    pool = DecodePool(keep=1, min_pixels=0)
    try:
        load_image(path, offload=Offload(pool))  # the child is up and idle
        (child,) = pool._idle
        asked = []

        def kill_it():  # asked again while the child decodes: it dies as on damaged data
            asked.append(1)
            if len(asked) == 2:
                os.kill(child.process.pid, 9)
                child.process.join(5)
            return False

        with pytest.raises(ImageLoadError) as info:
            load_image(path, offload=Offload(pool, cancelled=kill_it))
        assert "the decoder stopped on damaged data" in str(info.value)
        assert not info.value.unexpected
        np.testing.assert_array_equal(load_image(path, offload=Offload(pool)).pixels, pixels)
    finally:
        pool.close()


def test_damaged_jpeg2000_gives_the_same_message_here_and_in_a_child(pool, big_j2k, tmp_path):
    path, _ = big_j2k
    data = path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2] + b"\x00" * 64 + data[-64:])
    here, there = _outcome(cut), _outcome(cut, offload=Offload(pool))
    assert here[0] == there[0]
    if here[0] == "error":
        assert here[1] == there[1]


def test_the_spawn_start_method_gives_the_same_pixels(big_j2k):
    """Children spawned (as on Windows and in the packaged program, where there is no fork
    server), with a frame of pydicom's corpus and the large one."""
    import pydicom
    from pydicom.data import get_testdata_file

    path, pixels = big_j2k
    pool = DecodePool(keep=1, min_pixels=0, start_method="spawn")
    try:
        np.testing.assert_array_equal(load_image(path, offload=Offload(pool)).pixels, pixels)
        small = Path(get_testdata_file("MR_small_jp2klossless.dcm"))
        np.testing.assert_array_equal(pool.decode(small, None, "pylibjpeg"),
                                      pydicom.dcmread(small).pixel_array)
        (child,) = pool._idle
        assert child.process._start_method == "spawn" and pool.starts == 1
    finally:
        pool.close()


def _wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_warm_called_many_times_starts_only_the_children_kept():
    pool = DecodePool(keep=2, min_pixels=0)
    try:
        for _ in range(6):
            pool.warm()
        _wait_for(lambda: not pool._refilling)
        time.sleep(0.2)  # a second refill, had one started, would be counted by now
        assert pool.starts == 2 and len(pool._idle) == 2
    finally:
        pool.close()


def test_a_worker_stopping_gives_its_decodes_up_without_replacing_their_children(
        qapp, big_j2k):
    """At exit a decode in flight is given up: its child is killed and no other started."""
    from gradcam_viewer.session.agenda import Job, Stage
    from gradcam_viewer.session.controller import RequestTracker
    from gradcam_viewer.ui.worker import Worker

    path, _ = big_j2k
    worker = Worker(RequestTracker())
    worker.decoders.close()
    worker.decoders = pool = DecodePool(keep=2, min_pixels=0)
    job = Job(("open", worker.tracker.new_open()), path, 0, "gradcam", Stage.DECODING)
    worker._reading.submit(worker._read, job)
    _wait_for(lambda: pool.starts == 1)
    time.sleep(0.3)  # the child is decoding
    worker.stop()
    time.sleep(0.5)  # a replacement, had one been asked for, would be started by now
    assert pool.given_up == 1 and pool.starts == 1 and not pool._idle


def test_an_idle_child_keeps_nothing_of_the_last_frame(monkeypatch, tmp_path):
    """The child's loop, run here on a thread: once a frame is sent, the dataset and the array
    are let go (an idle child at 14 MP held about 40 MB)."""
    import gc
    import weakref
    from multiprocessing import Pipe

    import pydicom

    import gradcam_viewer.imaging.decode_processes as processes

    datasets, arrays = [], []
    real_dcmread = pydicom.dcmread

    def dcmread(*args, **kwargs):
        ds = real_dcmread(*args, **kwargs)
        datasets.append(weakref.ref(ds))
        return ds

    real_contiguous = np.ascontiguousarray

    class Pixels(np.ndarray):  # an ndarray that can be watched with a weak reference
        pass

    def contiguous(a):
        arr = real_contiguous(a).view(Pixels)
        arrays.append(weakref.ref(arr))
        return arr

    monkeypatch.setattr(pydicom, "dcmread", dcmread)
    monkeypatch.setattr(processes.np, "ascontiguousarray", contiguous)
    monkeypatch.setattr(processes.os, "dup2", lambda *a: None)  # this process's stderr stays
    rng = np.random.default_rng(2)
    ds = make_dataset(rng.integers(0, 4096, (64, 64), dtype=np.uint16), bits_stored=12)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    path = tmp_path / "small.dcm"
    ds.save_as(path, enforce_file_format=True)
    here, there = Pipe()
    child = threading.Thread(target=processes._serve, args=(there,), daemon=True)
    child.start()
    try:
        here.send((processes.frame_here, (str(path), None, "pylibjpeg")))
        status, dtype, shape = here.recv()
        assert status == "ok" and shape == (64, 64)
        here.recv_bytes()
        time.sleep(0.2)  # the child is back waiting for the next request
        gc.collect()
        assert len(datasets) == 1 and arrays
        assert datasets[0]() is None and all(ref() is None for ref in arrays)
    finally:
        here.close()
        child.join(5)
