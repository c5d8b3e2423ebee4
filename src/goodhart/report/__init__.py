"""Plots and the HTML report, built from a run's results table alone."""

from goodhart.report.html import build_report
from goodhart.report.plots import plot_bon

__all__ = ["build_report", "plot_bon"]
