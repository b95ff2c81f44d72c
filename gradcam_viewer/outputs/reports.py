"""The one-page reports of `evaluate` (ROC curves, per-label bars, the table) and `sanity` (the
similarity of the maps per randomisation step), drawn with matplotlib on its Agg canvas (no
window, no pyplot state, safe off the GUI thread) and written as PNG and PDF.

A legend lists only what is drawn: a label without a ROC curve (all positive or all negative)
and a measure no image has (localisation without boxes) get no entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from gradcam_viewer.outputs.safe_write import write_atomic

if TYPE_CHECKING:
    from PIL.Image import Image

    from gradcam_viewer.trust.sanity import SanityResult

DPI = 100
EVALUATION_SIZE = (14.0, 15.0)  # inches: 1400 x 1500 pixels at DPI
SANITY_SIZE = (11.0, 7.0)
TABLE_FONT = 10  # points
MIN_TABLE_FONT = 9  # a wide table (many columns, long labels) may go down to this
TABLE_WIDTH = 0.92  # of the page
TABLE_ROW = 0.022  # a table row's height, as a share of the page's height
BARS = (("AUROC", "auroc"), ("pointing game", "pointing_game"),
        ("IoBB accuracy, T = 0.5", "iobb_acc_0.5"), ("mean IoU", "mean_iou"))
# the page's table: per label, the images and positives, the AUROC, the marked cases (and
# their boxes or shapes) and the localisation figures, each with its 95% interval (the IoBB
# accuracy at T = 0.5, which the bars draw; the CSV has every T); with operating points, the
# threshold with its interval and its sensitivity and specificity on the cases
TABLE_COLUMNS = (("label", "label"), ("images", "images"), ("positives", "positives"),
                 ("AUROC [95% CI]", "auroc"), ("marked", "marked"), ("shapes", "boxes"),
                 ("pointing [CI]", "pointing_game"), ("energy [CI]", "energy_pointing_game"),
                 ("IoBB@.5 [CI]", "iobb_acc_0.5"), ("IoU [CI]", "mean_iou"))
POINT_COLUMNS = (("threshold [CI]", "op_threshold"), ("sens. / spec.", "op_sensitivity"))


def _page(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _known(value: Any) -> bool:
    return not (isinstance(value, float) and math.isnan(value))


def _cell(value: Any) -> str:
    if not _known(value):
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


# --- sanity ----------------------------------------------------------------------------------

def sanity_figure(result: SanityResult, title: str) -> Figure:
    """Spearman and SSIM per cumulative randomisation step, and the flag threshold."""
    from gradcam_viewer.trust.sanity import FLAG_CORRELATION

    figure = _page(SANITY_SIZE)
    figure.text(0.04, 0.965, title, fontsize=13, va="top")
    figure.text(0.04, 0.92, result.verdict(), fontsize=10, va="top", wrap=True,
                color="firebrick" if result.flagged else "black")
    ax = figure.add_axes((0.08, 0.24, 0.88, 0.58))
    xs = np.arange(1, len(result.steps) + 1)
    if len(xs):
        ax.plot(xs, [s.spearman for s in result.steps], "o-", label="Spearman (absolute maps)")
        ax.plot(xs, [s.ssim for s in result.steps], "s-", label="SSIM")
    ax.axhline(FLAG_CORRELATION, color="firebrick", linestyle="--", linewidth=1,
               label=f"flag threshold ({FLAG_CORRELATION:g}, Spearman)")
    ax.set_xticks(xs, [s.name[:28] for s in result.steps], rotation=30, ha="right",
                  fontsize=9)
    ax.set_xlim(0.5, max(len(xs), 1) + 0.5)
    low = min([-0.2, *(min(s.spearman, s.ssim) - 0.05 for s in result.steps)])
    ax.set_ylim(low, 1.05)
    ax.set_xlabel("randomised up to (cumulative, from the top)")
    ax.set_ylabel("similarity to the original maps")
    ax.set_title("Cascading randomisation")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    return figure


# --- evaluate --------------------------------------------------------------------------------

def evaluation_figure(rows: Sequence[dict[str, Any]],
                      curves: dict[str, tuple[np.ndarray, np.ndarray]],
                      header: Sequence[str]) -> Figure:
    """ROC curves, per-label bars (AUROC with its interval, and the localisation measures the
    boxes gave) and the whole table, on one page."""
    figure = _page(EVALUATION_SIZE)
    for i, line in enumerate(header):
        figure.text(0.04, 0.975 - 0.018 * i, line, fontsize=12 if i == 0 else 10, va="top")
    _roc_axes(figure.add_axes((0.06, 0.55, 0.36, 0.34)), rows, curves)
    _bar_axes(figure.add_axes((0.50, 0.55, 0.47, 0.34)), rows)
    _table(figure, rows, top=0.40)
    return figure


def _roc_axes(ax: Axes, rows: Sequence[dict[str, Any]],
              curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    ax.plot((0, 1), (0, 1), color="0.7", linestyle="--", linewidth=1)  # chance
    drawn = [row for row in rows if row["label"] in curves]
    for i, row in enumerate(drawn):
        fpr, tpr = curves[row["label"]]
        # the colour cycle has ten colours: the next ten curves are dashed
        ax.plot(fpr, tpr, linewidth=1.5, linestyle="-" if i % 20 < 10 else "--",
                label=f"{row['label']} ({row['auroc']:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="false positive rate", ylabel="true positive rate",
           title="ROC curves (AUROC)")
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right", fontsize=8)


def _bar_axes(ax: Axes, rows: Sequence[dict[str, Any]]) -> None:
    drawn = [(name, key) for name, key in BARS if any(_known(r[key]) for r in rows)]
    width = 0.8 / max(len(drawn), 1)
    for j, (name, key) in enumerate(drawn):
        xs = np.arange(len(rows)) - 0.4 + width * (j + 0.5)
        values = np.array([float(r[key]) for r in rows])
        ax.bar(xs, np.nan_to_num(values, nan=0.0), width * 0.9, label=name)
        if key == "auroc":  # the 95% interval, which a percentile bootstrap may place off the bar
            low = np.array([float(r["auroc_ci_low"]) for r in rows])
            high = np.array([float(r["auroc_ci_high"]) for r in rows])
            known = ~(np.isnan(low) | np.isnan(high))
            ax.errorbar(xs[known], ((low + high) / 2)[known], yerr=((high - low) / 2)[known],
                        fmt="none", ecolor="black", elinewidth=1, capsize=2)
    ax.set_xticks(np.arange(len(rows)), [r["label"][:18] for r in rows], rotation=45,
                  ha="right", fontsize=9)
    ax.set(ylim=(0, 1.05), title="Per label")
    ax.grid(axis="y", alpha=0.3)
    if drawn:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=len(drawn),
                  fontsize=9, frameon=False)


def table_columns(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The table's columns: the operating point's only when the rows have one."""
    return TABLE_COLUMNS + (POINT_COLUMNS if rows and "op_threshold" in rows[0] else ())


def _interval(r: dict[str, Any], key: str, decimals: int = 3) -> str:
    lo, hi = r.get(f"{key}_ci_low"), r.get(f"{key}_ci_high")
    if not _known(r[key]) or lo is None or not _known(lo) or hi is None or not _known(hi):
        return _cell(r[key])
    return f"{r[key]:.3f} [{lo:.{decimals}f}, {hi:.{decimals}f}]"


def table_cells(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The report's table in words: one row per label, a dash where a figure is unknown."""
    cells = []
    for r in rows:
        line = []
        for _, key in table_columns(rows):
            if key == "auroc":
                line.append(f"{_cell(r['auroc'])} [{_cell(r['auroc_ci_low'])}, "
                            f"{_cell(r['auroc_ci_high'])}]")
            elif key == "op_sensitivity":
                line.append(f"{r['op_sensitivity']:.2f} / {r['op_specificity']:.2f}"
                            if _known(r["op_sensitivity"]) else "–")
            elif key in ("pointing_game", "energy_pointing_game", "iobb_acc_0.5", "mean_iou",
                         "op_threshold"):
                line.append(_interval(r, key, 2))
            else:
                line.append(_cell(r[key]))
        cells.append(line)
    return cells


def _table(figure: Figure, rows: Sequence[dict[str, Any]], top: float) -> None:
    cells = table_cells(rows)
    titles = [title for title, _ in table_columns(rows)]
    size, widths = _column_widths(figure, titles, cells)
    height = min(top - 0.02, TABLE_ROW * (len(cells) + 1))
    ax = figure.add_axes((0.04, top - height, TABLE_WIDTH, height))
    ax.axis("off")
    table = ax.table(cellText=cells or None, colLabels=titles, cellLoc="center",
                     colWidths=widths, bbox=Bbox.from_bounds(0, 0, 1, 1))
    table.auto_set_font_size(False)
    table.set_fontsize(size)
    for (row, col), cell in table.get_celld().items():
        if row == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("0.9")
        if col == 0 and row > 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.04


def _column_widths(figure: Figure, titles: list[str],
                   cells: list[list[str]]) -> tuple[float, list[float]]:
    """The font size (TABLE_FONT, smaller down to MIN_TABLE_FONT when the columns need it)
    and each column's share of the table's width: its widest text as drawn (the titles
    bold) and a margin, measured with the page's renderer."""
    from matplotlib.font_manager import FontProperties

    renderer = FigureCanvasAgg(figure).get_renderer()
    available = TABLE_WIDTH * figure.bbox.width
    size = float(TABLE_FONT)
    while True:
        def width(text: str, bold: bool, points: float = size) -> float:
            font = FontProperties(size=points, weight="bold" if bold else "normal")
            return float(renderer.get_text_width_height_descent(text, font, ismath=False)[0])

        need = [max([width(t, True), *(width(line[i], False) for line in cells)])
                + 2.5 * size for i, t in enumerate(titles)]
        if sum(need) <= available or size <= MIN_TABLE_FONT:
            return size, [n / sum(need) for n in need]
        size = max(MIN_TABLE_FONT, size - 0.5)


# --- writing ---------------------------------------------------------------------------------

def save_report(figure: Figure, stem: Path) -> list[Path]:
    """`stem`.png and `stem`.pdf (one page), each written atomically over an earlier one."""
    written = []
    for fmt in ("png", "pdf"):
        def save(tmp: Path, fmt: str = fmt) -> None:
            figure.savefig(tmp, format=fmt, dpi=DPI, metadata={"Creator": "gradcam-viewer"})

        written.append(write_atomic(stem.with_suffix(f".{fmt}"), save, overwrite=True))
    return written


def figure_image(figure: Figure) -> Image:
    """The figure as an RGB picture (the window shows the sanity report)."""
    from PIL import Image as PILImage

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return PILImage.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())
