"""What one batch overlay costs to blend and encode, against the alternatives the README names.

Backs the README's figures in "Speed: the batch pipeline": the grey table blend against the
per-pixel formula, and `encode_png_fast` (Up filter + ISA-L level 1) against zlib's
Huffman-only, Pillow's level 1 and Pillow's default, with the file sizes. A real NIH PNG
(1024x1024) when /work/shared/data is reachable, else a synthetic chest-like image; the heatmap
is a smooth blob, as Grad-CAM gives. Times are medians of interleaved calls in one run.
Run: .venv/bin/python benchmarks/bench_overlay_write.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcam_viewer.outputs.export import encode_png_fast
from gradcam_viewer.render import OverlayStyle, composite
from gradcam_viewer.render.overlay import as_rgb, effective_opacity, heat_rgba
from timing import interleaved

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cxr-png"


def _grey() -> tuple[np.ndarray, str]:
    for png in sorted(DATA.glob("*.png")) if DATA.is_dir() else []:
        with Image.open(png) as im:
            if im.size == (1024, 1024):  # the full-size NIH images (others are 512x512)
                return np.asarray(im.convert("L")), png.name
    y, x = np.mgrid[0:1024, 0:1024] / 1024.0
    img = 128 + 60 * np.sin(6 * x) * np.cos(4 * y) + np.random.default_rng(0).normal(0, 8, x.shape)
    return np.clip(img, 0, 255).astype(np.uint8), "synthetic"


def _per_pixel(display: np.ndarray, heat: np.ndarray, style: OverlayStyle) -> np.ndarray:
    """The general path of `composite` (what a grey image took before the table)."""
    rgba = heat_rgba(heat, style)
    a = (rgba[..., 3:4].astype(np.float32) / 255.0) * effective_opacity(style)
    out = as_rgb(display).astype(np.float32) * (1 - a) + rgba[..., :3].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _pillow(rgb: np.ndarray, level: int | None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", **({} if level is None else
                                                  {"compress_level": level}))
    return buf.getvalue()


def _zlib_huffman(rgb: np.ndarray) -> bytes:
    """zlib's Huffman-only deflate of the same Up-filtered rows as ours."""
    flat = rgb.reshape(rgb.shape[0], -1)
    rows = np.empty((flat.shape[0], flat.shape[1] + 1), np.uint8)
    rows[:, 0] = 2
    rows[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    z = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    return z.compress(rows.tobytes()) + z.flush()  # the IDAT stream only (chunks are tiny)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    display, source = _grey()
    h, w = display.shape
    y, x = np.mgrid[0:h, 0:w]
    heat = np.exp(-(((x - w * 0.4) / (w * 0.2)) ** 2 + ((y - h * 0.5) / (h * 0.25)) ** 2))
    heat = heat.astype(np.float32)
    style = OverlayStyle()
    rgb = composite(display, heat, style)
    assert np.array_equal(rgb, _per_pixel(display, heat, style)), "table blend differs"
    text = {"Label": "Nodule", "Probability": "0.1234"}
    print(f"{source}: {w}x{h}, load average {os.getloadavg()[0]:.1f}, "
          f"median of {args.repeats} interleaved calls")
    table, formula = interleaved([lambda: composite(display, heat, style),
                                  lambda: _per_pixel(display, heat, style)], args.repeats)
    print(f"blend  grey table {table * 1e3:6.1f} ms   per-pixel formula {formula * 1e3:6.1f} ms"
          f"   ratio {formula / table:.1f}x")
    coders = {"encode_png_fast (Up + ISA-L 1)": lambda: encode_png_fast(rgb, text),
              "zlib Huffman-only": lambda: _zlib_huffman(rgb),
              "Pillow level 1": lambda: _pillow(rgb, 1),
              "Pillow default": lambda: _pillow(rgb, None)}
    times = interleaved(list(coders.values()), args.repeats)
    sizes = [len(fn()) for fn in coders.values()]
    with Image.open(io.BytesIO(encode_png_fast(rgb, text))) as back:
        assert np.array_equal(np.asarray(back), rgb), "fast PNG does not read back"
    for (name, _), t, size in zip(coders.items(), times, sizes, strict=True):
        print(f"encode {name:32s} {t * 1e3:7.1f} ms  {t / times[0]:5.1f}x   "
              f"{size / 1e6:5.2f} MB ({size / sizes[0]:.2f} of ours)")


if __name__ == "__main__":
    main()
