"""The result cache keeps small raw maps per result and few upsampled maps, within bytes."""

import numpy as np
import pytest

from gradcam_viewer.cam.heatmap import upsample_heatmap
from gradcam_viewer.session.results import ExplainResult, ResultCache, overlay_size


def result(i: int, labels: int = 14, cells: int = 7) -> ExplainResult:
    rng = np.random.default_rng(i)
    return ExplainResult(key=(f"/x/{i}.dcm", 0, "gradcam", 1),
                         probabilities=rng.random(labels),
                         heatmaps=rng.random((labels, cells, cells)).astype(np.float32),
                         layer="conv", method="gradcam", score="logit", seconds=0.0)


def test_upsampled_maps_stay_within_the_budget():
    cache = ResultCache(budget_bytes=20 << 20)
    size = (1024, 1024)  # 4 MB per float32 map
    for i in range(30):
        r = result(i)
        cache.put(r)
        for label in range(3):
            heat = cache.display_map(r, label, size)
            np.testing.assert_array_equal(heat, upsample_heatmap(r.normalized[label], size))
        assert cache.nbytes <= 20 << 20
    assert len(cache) == 30  # small results are all still there: only the big maps went


def test_results_go_last_oldest_first():
    one = result(0)
    cache = ResultCache(budget_bytes=3 * one.nbytes + 10)
    for i in range(6):
        cache.put(result(i))
    assert len(cache) == 3
    assert cache.get(result(0).key) is None and cache.get(result(5).key) is not None


def test_a_map_over_budget_is_still_returned():
    cache = ResultCache(budget_bytes=1000)
    r = result(1)
    heat = cache.display_map(r, 0, (100, 100))
    assert heat.shape == (100, 100)


def test_get_refreshes_recency():
    one = result(0)
    cache = ResultCache(budget_bytes=2 * one.nbytes + 10)
    cache.put(result(0))
    cache.put(result(1))
    cache.get(result(0).key)
    cache.put(result(2))
    assert cache.get(result(0).key) is not None and cache.get(result(1).key) is None


@pytest.mark.parametrize("size, expected", [((768, 768), (768, 768)),
                                            ((3064, 4664), (673, 1024)),
                                            ((4664, 3064), (1024, 673)), ((10, 2000), (5, 1024))])
def test_overlay_size(size, expected):
    assert overlay_size(size) == expected


def test_number_of_upsampled_maps_is_bounded():
    cache = ResultCache(max_maps=4)
    r = result(3)
    cache.put(r)
    for label in range(10):
        cache.display_map(r, label, (64, 64))
    assert cache.nbytes == r.nbytes + 4 * 64 * 64 * 4
