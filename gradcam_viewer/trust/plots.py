"""Small charts drawn with Pillow (the installer ships no plotting library): line charts for
ROC curves and the sanity check, grouped bars for per-label figures, a one-page report."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))
GRID = (225, 225, 225)
INK = (20, 20, 20)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def colour(i: int) -> tuple[int, int, int]:
    return PALETTE[i % len(PALETTE)]


class Axes:
    """A plotting area on `draw` at box (x0, y0, x1, y1) with data limits."""

    def __init__(self, draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int],
                 xlim: tuple[float, float], ylim: tuple[float, float], title: str = "",
                 xlabel: str = "", ylabel: str = "", xticks: Sequence[float] = (),
                 yticks: Sequence[float] = (), xticklabels: Sequence[str] | None = None):
        self.d, self.box, self.xlim, self.ylim = draw, box, xlim, ylim
        x0, y0, x1, y1 = box
        f = _font(14)
        draw.rectangle(box, outline=INK)
        for t in yticks:
            y = self.py(t)
            draw.line((x0, y, x1, y), fill=GRID)
            draw.text((x0 - 6, y), f"{t:g}", fill=INK, font=f, anchor="rm")
        labels = xticklabels or [f"{t:g}" for t in xticks]
        for t, text in zip(xticks, labels, strict=False):  # labels may be fewer
            x = self.px(t)
            draw.line((x, y0, x, y1), fill=GRID)
            draw.text((x, y1 + 6), text, fill=INK, font=f, anchor="ma")
        draw.rectangle(box, outline=INK)
        draw.text(((x0 + x1) / 2, y0 - 10), title, fill=INK, font=_font(16), anchor="md")
        draw.text(((x0 + x1) / 2, y1 + 26), xlabel, fill=INK, font=f, anchor="ma")
        draw.text((x0 - 44, (y0 + y1) / 2), ylabel, fill=INK, font=f, anchor="rm")

    def px(self, x: float) -> float:
        x0, _, x1, _ = self.box
        return x0 + (x - self.xlim[0]) / (self.xlim[1] - self.xlim[0]) * (x1 - x0)

    def py(self, y: float) -> float:
        _, y0, _, y1 = self.box
        return y1 - (y - self.ylim[0]) / (self.ylim[1] - self.ylim[0]) * (y1 - y0)

    def line(self, xs: Iterable[float], ys: Iterable[float], fill, width: int = 2,
             marker: bool = False) -> None:
        pts = [(self.px(x), self.py(y)) for x, y in zip(xs, ys, strict=True)
               if not (math.isnan(x) or math.isnan(y))]
        if len(pts) > 1:
            self.d.line(pts, fill=fill, width=width)
        if marker:
            for x, y in pts:
                self.d.ellipse((x - 3, y - 3, x + 3, y + 3), fill=fill)

    def bar(self, x: float, width: float, y: float, fill) -> None:
        if math.isnan(y):
            return
        self.d.rectangle((self.px(x - width / 2), self.py(y), self.px(x + width / 2),
                          self.py(self.ylim[0])), fill=fill)

    def whisker(self, x: float, lo: float, hi: float) -> None:
        if math.isnan(lo) or math.isnan(hi):
            return
        px = self.px(x)
        self.d.line((px, self.py(lo), px, self.py(hi)), fill=INK, width=2)
        for v in (lo, hi):
            self.d.line((px - 4, self.py(v), px + 4, self.py(v)), fill=INK, width=2)


def legend(draw: ImageDraw.ImageDraw, x: int, y: int, names: Sequence[str]) -> None:
    f = _font(14)
    for i, name in enumerate(names):
        draw.rectangle((x, y + 20 * i + 3, x + 14, y + 20 * i + 15), fill=colour(i))
        draw.text((x + 20, y + 20 * i), name, fill=INK, font=f)


def text_lines(draw: ImageDraw.ImageDraw, x: int, y: int, lines: Sequence[str],
               size: int = 14, step: int = 19) -> int:
    f = _font(size)
    for i, line in enumerate(lines):
        draw.text((x, y + step * i), line, fill=INK, font=f)
    return y + step * len(lines)


def page(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (width, height), "white")
    return img, ImageDraw.Draw(img)
