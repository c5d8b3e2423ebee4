"""The default Best-of-n figure reads: no two pieces of text drawn over each other, the legend off the data."""

import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from goodhart.bon.curve import default_ns
from goodhart.report.plots import plot_bon


def _rows() -> list[dict]:
    """Three proxies and the gold ceiling over a 16,384-sample pool; two proxies peak at the same n with
    nearly the same gold (the case whose peak labels were drawn on top of each other)."""
    rows = []
    for name, pairs, peak, top in (("proxy_64", 64, 128, 0.50), ("proxy_512", 512, 128, 0.52),
                                   ("proxy", 8192, 2048, 1.4), ("gold", 8192, 16384, 2.5)):
        for n in default_ns(16384):
            d = math.sqrt(max(0.0, math.log(n) - (n - 1) / n))
            x = math.log(n) / math.log(peak) if peak > 1 else 1.0
            gold = top * (x if x <= 1 else max(0.0, 2 - x)) if name != "gold" else top * d / 3
            rows.append({"method": "bon", "reward_model": name, "world": "lab", "rm_backbone": "lab-lm 3x96",
                         "rm_pairs": pairs, "rm_val_acc": 0.7, "n": int(n), "d": d, "gold": gold,
                         "gold_lo": gold - 0.1, "gold_hi": gold + 0.1, "proxy": 1.5 * d, "proxy_lo": 1.4 * d,
                         "proxy_hi": 1.6 * d})
    return rows


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_default_plot_has_no_overlapping_text_and_the_legend_is_off_the_data():
    fig = plot_bon(_rows())
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    clashes = [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if _overlap(ba, bb)]
    assert not clashes, clashes[:5]
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    assert not _overlap(legend, ax.get_window_extent(renderer)), "the legend covers the data"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    peaks = [s.rsplit("peak n=", 1)[1] for s in labels if "peak n=" in s]
    assert len(peaks) == 3 and peaks[0] == peaks[1] != peaks[2], labels  # each proxy's peak, named once
    ticks = [t.get_text() for t in ax.child_axes[0].get_xticklabels()] if ax.child_axes else []
    assert ticks[-1] == "16,384" and len(ticks) == 8, ticks
