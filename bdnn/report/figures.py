"""Figures drawn from the summary table: mAP against code length."""

from __future__ import annotations

import logging
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

from bdnn.io import atomic_path  # noqa: E402

logger = logging.getLogger(__name__)

METHOD_LABELS = {"itq": "ITQ", "uh_bdnn": "UH-BDNN", "sh_bdnn": "SH-BDNN", "deep_hashing": "DH"}


def plot_map_vs_bits(summary: pd.DataFrame, experiment: str, path: str | os.PathLike, ap_form: str = "trapezoid") -> None:
    """Draw mAP against code length for every method of one experiment, with published values where known.

    Raises
    ------
    ValueError
        If the summary has no mAP rows for ``experiment``.
    """
    rows = summary[(summary["experiment"] == experiment) & (summary["metric"] == "mAP") & (summary["ap_form"] == ap_form)]
    if rows.empty:
        raise ValueError(f"the summary has no mAP rows ({ap_form} AP) for experiment {experiment!r}")

    figure, axes = plt.subplots(figsize=(4.8, 3.6))
    for method, group in rows.groupby("method", sort=True):
        group = group.sort_values("bits")
        line, = axes.plot(group["bits"], group["value"], marker="o", label=METHOD_LABELS.get(method, method))
        known = group.dropna(subset=["reference_value"])
        if not known.empty:
            axes.plot(known["bits"], known["reference_value"], linestyle="none", marker="x", color=line.get_color(),
                      label=f"{METHOD_LABELS.get(method, method)} (published)")
    first = rows.iloc[0]
    axes.set_xlabel("code length (bits)")
    axes.set_ylabel(f"mAP (%, {ap_form} AP)")
    axes.set_title(f"{experiment}: {first['feature']}, {first['protocol']}")
    axes.set_xticks(sorted(rows["bits"].unique()))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=150, format="png")
    plt.close(figure)
    logger.info("wrote %s", path)
