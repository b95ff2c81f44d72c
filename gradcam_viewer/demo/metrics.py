"""Metrics for the demo model's card: AUROC, the Grad-CAM pointing game and heatmap IoU."""

from __future__ import annotations

import numpy as np

from gradcam_viewer.cam.heatmap import normalize_heatmaps, upsample_heatmap


def auroc(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count one half)."""
    scores = np.asarray(scores, np.float64)
    truth = np.asarray(truth).astype(bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i: j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def heatmap_hits(raw: np.ndarray, mask: np.ndarray, threshold: float = 0.5) -> tuple[bool, float]:
    """Does the maximum of the upsampled map fall in `mask`? And the IoU of map >= threshold."""
    maps, has = normalize_heatmaps(raw[None])
    if not has[0]:
        return False, 0.0
    up = upsample_heatmap(maps[0], mask.shape)
    peak = np.unravel_index(int(np.argmax(up)), up.shape)
    hot = up >= threshold
    union = np.logical_or(hot, mask).sum()
    iou = float(np.logical_and(hot, mask).sum() / union) if union else 0.0
    return bool(mask[peak]), iou


def localisation(heatmaps: np.ndarray, masks: np.ndarray, labels: np.ndarray,
                 threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: pointing-game hit rate and mean IoU over positive findings, and their count."""
    n_labels = labels.shape[1]
    hits = np.zeros(n_labels)
    ious = np.zeros(n_labels)
    counts = np.zeros(n_labels, int)
    for i in range(labels.shape[0]):
        for k in range(n_labels):
            if labels[i, k] and masks[i, k].any():
                hit, iou = heatmap_hits(heatmaps[i, k], masks[i, k], threshold)
                hits[k] += hit
                ious[k] += iou
                counts[k] += 1
    safe = np.maximum(counts, 1)
    return hits / safe, ious / safe, counts
