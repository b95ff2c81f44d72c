"""Seeded synthetic chest radiograph phantoms with a pixel mask for every finding.

The image is built as an attenuation map (soft tissue, lungs as air, heart, mediastinum,
spine, ribs, clavicles, diaphragm domes, vessel markings), then exposed (1 - exp(-mu)),
with varying exposure, patient size, position and noise. Bright is dense, as on a PA film.
Every finding is drawn from its own mask, so the masks are ground truth for the heatmaps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LABELS = ("Cardiomegaly", "Effusion", "Nodule", "Mass", "Pneumothorax", "Consolidation")
PREVALENCE = (0.3, 0.3, 0.3, 0.25, 0.25, 0.3)


@dataclass
class Phantoms:
    images: np.ndarray  # float32 [N, H, W] in [0, 1]
    labels: np.ndarray  # uint8 [N, len(LABELS)], in LABELS order
    masks: np.ndarray | None  # bool [N, len(LABELS), H, W]; empty where a finding is absent


def make_phantoms(n: int, seed: int, size: int = 256, with_masks: bool = True,
                  prevalence: tuple[float, ...] = PREVALENCE) -> Phantoms:
    """`n` phantoms, reproducible for a `seed` (each image has its own child seed)."""
    children = np.random.SeedSequence(seed).spawn(n)
    images = np.empty((n, size, size), np.float32)
    labels = np.zeros((n, len(LABELS)), np.uint8)
    masks = np.zeros((n, len(LABELS), size, size), bool) if with_masks else None
    for i, child in enumerate(children):
        rng = np.random.default_rng(child)
        findings = tuple(bool(rng.random() < p) for p in prevalence)
        img, m = draw_phantom(rng, size, findings)
        images[i] = img
        labels[i] = findings
        if masks is not None:
            masks[i] = m
    return Phantoms(images, labels, masks)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Band-limited noise in [-1, 1]: coarse random grid, bilinearly enlarged."""
    from PIL import Image

    coarse = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((size, size),
                                                         Image.Resampling.BILINEAR))


def _segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy + 1e-12), 0, 1)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy)), t


def draw_phantom(rng: np.random.Generator, size: int,
                 findings: tuple[bool, ...]) -> tuple[np.ndarray, np.ndarray]:
    """One phantom and its masks, in LABELS order."""
    has = dict(zip(LABELS, findings, strict=True))
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = np.meshgrid(c, c)
    masks = np.zeros((len(LABELS), size, size), bool)

    s = rng.uniform(0.88, 1.04)  # patient size
    cx = 0.5 + rng.normal(0, 0.012)  # midline
    top = rng.normal(0, 0.012)  # vertical position

    # --- body: neck, shoulders and torso -------------------------------------------------
    torso = ((x - cx) / (0.44 * s)) ** 2 + ((y - (0.70 + top)) / 0.66) ** 2
    body_t = np.sqrt(np.clip(1 - torso, 0, 1))
    shoulders = ((x - cx) / (0.47 * s)) ** 2 + ((y - (0.24 + top)) / 0.15) ** 2
    body_t = np.maximum(body_t, 0.85 * np.sqrt(np.clip(1 - shoulders, 0, 1)))
    neck = ((x - cx) / (0.09 * s)) ** 2 + ((y - (0.02 + top)) / 0.2) ** 2
    body_t = np.maximum(body_t, 0.75 * np.sqrt(np.clip(1 - neck, 0, 1)))
    body = body_t > 0
    mu = 1.1 * body_t

    # --- lungs: rounded apex and lateral wall, straight medial edge, diaphragm domes ---------
    lung_w = 0.16 * s * rng.uniform(0.96, 1.04)
    lung_top, lung_base = 0.15 + top, 0.74 + top + rng.normal(0, 0.015)
    lungs = []
    lung_any = np.zeros_like(body)
    lung_depth = np.zeros_like(x)
    for side in (-1, 1):  # -1: patient's right, on the image's left
        lcx = cx + side * (0.045 * s + lung_w)
        u = (x - lcx) / lung_w
        shell = u ** 2 + ((y - (lung_base + 0.02)) / (lung_base + 0.02 - lung_top)) ** 2
        base = lung_base - (0.025 if side == -1 else 0.0)  # right dome higher
        dome = base - 0.075 * np.clip(1 - (u * side + 0.25) ** 2 / 1.6, 0, 1)
        lung = (shell < 1) & (y < dome) & (side * (x - cx) > 0.045 * s)
        lungs.append((lung, lcx, dome, side))
        lung_any |= lung
        lung_depth = np.maximum(lung_depth, lung * np.sqrt(np.clip(1 - shell, 0, 1)))
    # gastric bubble under the left dome
    gx, gy = cx + 0.17 * s, lungs[1][2][0, 0] * 0 + lung_base + 0.05
    bubble = ((x - gx) / 0.05) ** 2 + ((y - gy) / 0.03) ** 2 < 1
    mu = mu - 0.25 * bubble

    # --- heart and mediastinum -------------------------------------------------------------
    thorax = 2 * (0.045 * s + 2 * lung_w)
    ctr = rng.uniform(0.55, 0.64) if has["Cardiomegaly"] else rng.uniform(0.38, 0.46)
    hw = ctr * thorax / 2
    hcx = cx + 0.3 * hw
    hh = 0.09 + 0.35 * hw
    hcy = lung_base - 0.85 * hh + rng.normal(0, 0.008)
    r_heart = ((x - hcx) / hw) ** 2 + ((y - hcy) / hh) ** 2
    heart = r_heart < 1
    medi_w = 0.05 * s + 0.03 * np.clip((y - (lung_top + 0.1)) / 0.25, 0, 1)
    medi = (np.abs(x - cx) < medi_w) & (y > 0.05 + top) & (y < hcy)
    knob = ((x - (cx + 0.045 * s)) / 0.032) ** 2 + ((y - (lung_top + 0.1)) / 0.045) ** 2 < 1
    if has["Cardiomegaly"]:
        masks[0] = heart
    soft = heart | medi | knob
    lung_any &= ~soft
    mu = mu - 0.85 * lung_any * (0.35 + 0.65 * lung_depth)
    mu = mu + 0.28 * medi + 0.28 * knob + 0.2 * heart * np.sqrt(np.clip(1 - r_heart, 0, 1)) \
        + 0.06 * heart

    trachea = (np.abs(x - cx) < 0.016 * s) & (y < lung_top + 0.15) & (y > top)
    mu = mu - 0.22 * trachea * body

    # --- vessel markings from the hila, none beyond a pneumothorax edge --------------------
    marks = np.zeros_like(x)
    for *_, side in lungs:
        hx, hy = cx + side * 0.085 * s, 0.45 + top
        for _ in range(22):
            ang = rng.uniform(-0.9, 0.9) * np.pi / 2
            ang = ang if side == 1 else np.pi - ang
            length = rng.uniform(0.09, 0.24)
            ax, ay = hx, hy + rng.normal(0, 0.04)
            bx, by = ax + np.cos(ang) * length, ay + np.sin(ang) * length * 1.2
            _draw_line(marks, x, y, ax, ay, bx, by, 0.0065, 0.1)
    ptx = np.zeros_like(body)
    if has["Pneumothorax"]:
        lung, lcx, dome, side = lungs[rng.integers(2)]
        collapse = rng.uniform(0.72, 0.85)  # the lung edge moves toward the hilum
        hx, hy = cx + side * 0.06 * s, 0.45 + top
        inner = _lookup(lung, hx + (x - hx) / collapse, hy + (y - hy) / collapse)
        ptx = lung & ~inner & ~soft & (y < dome - 0.015)
        masks[4] = ptx
        edge = inner & ~_erode(inner, 1) & lung
        mu = mu + 0.14 * edge
    marks *= lung_any & ~ptx
    mu = mu + marks - 0.13 * ptx  # beyond the edge: no lung tissue, darker

    # --- bones: spine, ribs, clavicles -----------------------------------------------------
    spine = np.abs(x - cx) < 0.03 * s
    level = np.mod((y - top) / 0.034, 1.0)
    mu = mu + body * spine * (0.12 + 0.08 * (level > 0.18)) * (y > lung_top - 0.05)
    d_all = x - cx
    for side in (-1, 1):
        d = side * d_all
        for k in range(10):
            y0 = lung_top - 0.03 + k * 0.06 * (0.9 + 0.1 * s)
            rows = slice(max(0, int((y0 - 0.06) * size)), min(size, int((y0 + 0.32) * size)))
            dd, yy = d[rows], y[rows]
            curve = y0 - 0.1 * dd + 1.3 * dd ** 2
            prof = np.exp(-((yy - curve) / 0.011) ** 4)
            mu[rows] += 0.12 * prof * (dd > 0.03) * (dd < 0.41 * s) * body[rows]
            curve_a = y0 + 0.16 + 0.35 * (0.3 - dd)  # fainter anterior ribs, sloping medially
            prof_a = np.exp(-((yy - curve_a) / 0.009) ** 4)
            mu[rows] += 0.05 * prof_a * (dd > 0.12) * (dd < 0.36 * s) * lung_any[rows]
        clav = 0.13 + top - 0.1 * (d - 0.05) + 0.25 * (d - 0.15) ** 2
        mu = mu + 0.22 * np.exp(-((y - clav) / 0.014) ** 4) * (d > 0.035) * (d < 0.3 * s)

    # --- findings -------------------------------------------------------------------------
    if has["Effusion"]:
        lung, lcx, dome, side = lungs[rng.integers(2)]
        level_y = lung_base - rng.uniform(0.07, 0.16)
        meniscus = level_y - 0.09 * np.clip(side * (x - lcx) / lung_w + 0.3, 0, 1.3) ** 2
        fluid = lung & (y > meniscus) & ~soft
        masks[1] = fluid
        mu = mu + 0.75 * fluid * np.clip((y - meniscus) / 0.025, 0, 1)
    free = lung_any & ~ptx & ~masks[1]
    for label, radius in (("Nodule", (0.02, 0.032)), ("Mass", (0.05, 0.075))):
        if has[label]:
            r = rng.uniform(*radius)
            ny_, nx_ = _point_in(rng, free, r)
            dist = np.hypot(x - nx_, y - ny_) / r
            masks[LABELS.index(label)] = dist < 1
            mu = mu + (0.5 if label == "Nodule" else 0.6) * np.sqrt(np.clip(1 - dist ** 2, 0, 1))
    if has["Consolidation"]:
        r = rng.uniform(0.06, 0.1)
        py_, px_ = _point_in(rng, free, r * 0.6)
        field = 1 - np.hypot(x - px_, y - py_) / r + 0.45 * _smooth_noise(rng, size, 12)
        patch = (field > 0.25) & lung_any
        masks[5] = patch
        mu = mu + 0.5 * patch * np.clip((field - 0.25) / 0.2, 0, 1)

    # --- exposure and noise -----------------------------------------------------------------
    gain = rng.uniform(1.0, 1.5)
    img = (1 - np.exp(-gain * np.clip(mu, 0, None))) / (1 - np.exp(-gain * 2.0))
    img = img + 0.025 * _smooth_noise(rng, size, 6) + rng.normal(0, rng.uniform(0.008, 0.02), x.shape)
    img = 0.03 + 0.94 * np.clip(img, 0, 1)
    return img.astype(np.float32), masks


def _draw_line(canvas, x, y, ax, ay, bx, by, width, strength):
    """Add a tapering Gaussian line, computed only inside its bounding box."""
    n = canvas.shape[0]
    pad = 3 * width
    x0, x1 = int(max(0, (min(ax, bx) - pad) * n)), int(min(n, (max(ax, bx) + pad) * n + 1))
    y0, y1 = int(max(0, (min(ay, by) - pad) * n)), int(min(n, (max(ay, by) + pad) * n + 1))
    if x1 <= x0 or y1 <= y0:
        return
    px, py = x[y0:y1, x0:x1], y[y0:y1, x0:x1]
    d, t = _segment_distance(px, py, ax, ay, bx, by)
    w = width * (1.2 - t)
    canvas[y0:y1, x0:x1] += strength * np.exp(-(d / w) ** 2) * (1 - 0.7 * t)


def _lookup(mask: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """mask sampled at normalised coordinates (nearest neighbour)."""
    n = mask.shape[0]
    ix = np.clip((sx * n).astype(int), 0, n - 1)
    iy = np.clip((sy * n).astype(int), 0, n - 1)
    inside = (sx >= 0) & (sx < 1) & (sy >= 0) & (sy < 1)
    return mask[iy, ix] & inside


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out &= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def _point_in(rng: np.random.Generator, region: np.ndarray, margin: float) -> tuple[float, float]:
    """A random point of `region` whose disk of radius `margin` lies (mostly) inside it."""
    n = region.shape[0]
    candidates = np.flatnonzero(region)
    if candidates.size == 0:
        return 0.4, 0.3
    r = max(1, int(margin * n))
    best, best_score = candidates[0], -1.0
    for _ in range(40):
        pick = candidates[rng.integers(candidates.size)]
        iy, ix = divmod(int(pick), n)
        window = region[max(0, iy - r): iy + r + 1, max(0, ix - r): ix + r + 1]
        score = window.mean() if window.size else 0.0
        if score > best_score:
            best, best_score = pick, score
        if score > 0.97:
            break
    iy, ix = divmod(int(best), n)
    return (iy + 0.5) / n, (ix + 0.5) / n
