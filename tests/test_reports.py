"""The evaluate and sanity reports (matplotlib): legends list only what is drawn, the table
says the CSV's figures and every cell's text fits its cell, PNG at the page's size and a PDF of
one page."""

import csv
import io
import re

import numpy as np
import pytest
from PIL import Image

from gradcam_viewer.outputs import reports
from gradcam_viewer.trust.evaluate import Evaluation, table_csv
from gradcam_viewer.trust.sanity import SanityResult, SanityStep

LABELS = ["Cardiomegaly", "Effusion", "Pneumothorax (tension)", "Nodule"]


def evaluation(with_boxes: bool, seed: int = 0) -> Evaluation:
    """Scores and 0/1 truth for 40 images; Nodule is never positive (no ROC curve)."""
    rng = np.random.default_rng(seed)
    ev = Evaluation(list(LABELS))
    for _ in range(40):
        truth = (rng.random(len(LABELS)) < 0.4).astype(int)
        truth[3] = 0
        ev.add(np.clip(truth * 0.5 + rng.random(len(LABELS)) * 0.6, 0, 1), truth)
    if with_boxes:
        for label in LABELS[:2]:
            for _ in range(5):
                ev.add_case(label, {"hit": float(rng.random() < 0.7), "iou": rng.random(),
                                   "iobb": rng.random(), "energy": rng.random()})
    return ev


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def figure_of(ev: Evaluation):
    rows = ev.table(200)
    return rows, reports.evaluation_figure(rows, ev.curves(), ["title", "method", "notice"])


def test_legends_list_only_what_is_drawn():
    rows, fig = figure_of(evaluation(with_boxes=False))
    roc, bars = fig.axes[0], fig.axes[1]
    # a ROC curve for each label that has positives and negatives, and a legend entry each
    assert legend_texts(roc) == [f"{r['label']} ({r['auroc']:.3f})" for r in rows[:3]]
    assert len(roc.get_lines()) == 1 + 3  # the chance diagonal and three curves
    # without boxes only the AUROC bars are drawn, so the legend names only them
    assert legend_texts(bars) == ["AUROC"]
    assert len(bars.patches) == len(rows)
    rows, fig = figure_of(evaluation(with_boxes=True))
    assert legend_texts(fig.axes[1]) == ["AUROC", "pointing game", "IoBB accuracy, T = 0.5",
                                         "mean IoU"]
    assert len(fig.axes[1].patches) == 4 * len(rows)


def test_table_says_the_csv_figures_and_every_text_fits_its_cell():
    ev = evaluation(with_boxes=True)
    rows, fig = figure_of(ev)
    table = fig.axes[2].tables[0]
    cells = table.get_celld()
    n_cols = len(reports.TABLE_COLUMNS)
    assert max(r for r, _ in cells) == len(rows) and max(c for _, c in cells) == n_cols - 1
    # the CSV (trust.evaluate.table_csv) and the table agree, to the table's 3 decimals
    written = list(csv.DictReader(io.StringIO(table_csv(rows))))
    for i, line in enumerate(written, start=1):
        assert cells[i, 0].get_text().get_text() == line["label"]
        assert cells[i, 1].get_text().get_text() == line["images"]
        auroc = cells[i, 3].get_text().get_text()
        if line["auroc"] == "":  # no positives (Nodule): unknown, said as such
            assert auroc == "– [–, –]"
        else:
            got = [float(x) for x in re.findall(r"\d\.\d{3}", auroc)]
            assert got == pytest.approx([float(line[k]) for k in
                                         ("auroc", "auroc_ci_low", "auroc_ci_high")], abs=6e-4)
        iou = cells[i, n_cols - 1].get_text().get_text()
        if line["mean_iou"] == "":
            assert iou == "–"
        else:  # the mean and its interval
            got = [float(x) for x in re.findall(r"\d\.\d+", iou)]
            assert got == pytest.approx([float(line[k]) for k in
                                         ("mean_iou", "mean_iou_ci_low", "mean_iou_ci_high")],
                                        abs=6e-3)
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    page = fig.bbox
    for (r, c), cell in cells.items():
        box = cell.get_window_extent(renderer)
        text = cell.get_text().get_window_extent(renderer)
        assert text.width <= box.width - 2 and text.height <= box.height, (r, c)
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0, (r, c)
        assert cell.get_text().get_fontsize() >= 9


def sanity_result(flagged: bool) -> SanityResult:
    result = SanityResult("conv", "gradcam", 4, flag_step=1)
    for i, name in enumerate(["head", "block4_conv+block4_bn", "block3_conv", "block2_conv"]):
        rho = 0.9 if flagged else 0.9 - 0.45 * i
        result.steps.append(SanityStep(name, rho, rho - 0.1))
    return result


@pytest.mark.parametrize("flagged", [False, True])
def test_sanity_figure_draws_both_measures_and_the_threshold(flagged):
    fig = reports.sanity_figure(sanity_result(flagged), "demo: gradcam at conv")
    ax = fig.axes[0]
    assert legend_texts(ax) == ["Spearman (absolute maps)", "SSIM",
                                "flag threshold (0.5, Spearman)"]
    spearman = ax.get_lines()[0].get_ydata()
    assert list(spearman) == [s.spearman for s in sanity_result(flagged).steps]
    texts = [t.get_text() for t in fig.texts]
    assert any(t.startswith("FLAGGED" if flagged else "passed") for t in texts)


def test_reports_are_a_png_of_the_page_and_a_one_page_pdf(tmp_path):
    _, fig = figure_of(evaluation(with_boxes=True))
    png, pdf = reports.save_report(fig, tmp_path / "evaluation")
    assert (png.name, pdf.name) == ("evaluation.png", "evaluation.pdf")
    with Image.open(png) as im:
        assert im.size == (1400, 1500)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) == 1
    picture = reports.figure_image(reports.sanity_figure(sanity_result(False), "t"))
    assert picture.mode == "RGB" and picture.size == (1100, 700)
    assert not list(tmp_path.glob("*.part"))



def test_operating_points_join_the_table_and_fit():
    """Fourteen labels with NIH's longest names, localisation and operating points: the
    table says the points' figures, and every text still fits its cell."""
    from gradcam_viewer.cli.evaluate import add_points
    from gradcam_viewer.models.operating_points import OperatingPoint, OperatingPoints

    names = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion",
             "Emphysema", "Fibrosis", "Hernia", "Infiltration", "Mass", "Nodule",
             "Pleural_Thickening", "Pneumonia", "Pneumothorax"]
    rng = np.random.default_rng(5)
    ev = Evaluation(names)
    for _ in range(60):
        truth = (rng.random(len(names)) < 0.4).astype(int)
        ev.add(np.clip(truth * 0.5 + rng.random(len(names)) * 0.6, 0, 1), truth)
    for label in names:
        for _ in range(4):
            ev.add_case(label, {"hit": 1.0, "iou": rng.random(), "iobb": rng.random(),
                                "energy": rng.random()}, 2)
    rows = ev.table(100)
    points = OperatingPoints("sensitivity=0.9", 60, "2026-01-01", "a" * 64, tuple(
        OperatingPoint(label, 0.4321, 0.9, 0.55, 20, 40, (0.3012, 0.5567))
        for label in names[:-1]))
    add_points(rows, points)
    fig = reports.evaluation_figure(rows, ev.curves(), ["t", "m", "n"])
    cells = fig.axes[2].tables[0].get_celld()
    titles = [cells[0, c].get_text().get_text() for c in range(len(reports.table_columns(rows)))]
    assert titles[-2:] == ["threshold [CI]", "sens. / spec."] and "marked" in titles
    assert cells[1, len(titles) - 2].get_text().get_text() == "0.432 [0.30, 0.56]"
    assert cells[1, len(titles) - 1].get_text().get_text() == "0.90 / 0.55"
    assert cells[len(names), len(titles) - 2].get_text().get_text() == "–"  # no point
    assert cells[1, titles.index("marked")].get_text().get_text() == "4"
    assert cells[1, titles.index("shapes")].get_text().get_text() == "8"
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    for (r, c), cell in cells.items():
        box = cell.get_window_extent(renderer)
        assert cell.get_text().get_window_extent(renderer).width <= box.width - 2, (r, c)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, (r, c)
