"""Markdown tables of the summary: one per experiment, methods by code length, with published deltas."""

from __future__ import annotations

import argparse
import logging
import math
import os

import pandas as pd

from bdnn.io import atomic_path
from bdnn.report.summary import NO_REFERENCE

logger = logging.getLogger(__name__)


def _metric_label(metric: str, ap_form: str) -> str:
    return f"{metric} ({ap_form} AP)" if isinstance(ap_form, str) and ap_form else metric


def _cell(value: float, reference: float) -> str:
    if reference is None or (isinstance(reference, float) and math.isnan(reference)):
        return f"{value:.2f}"
    return f"{value:.2f} (published {reference:.2f}, Δ {value - reference:+.2f})"


def experiment_table(summary: pd.DataFrame, experiment: str) -> str:
    """Render one experiment's rows as a Markdown table: method and metric by code length, in percent.

    Raises
    ------
    ValueError
        If the summary has no rows for ``experiment``.
    """
    rows = summary[summary["experiment"] == experiment].copy()
    if rows.empty:
        raise ValueError(f"the summary has no rows for experiment {experiment!r}")
    rows["ap_form"] = rows["ap_form"].fillna("")
    rows["label"] = [_metric_label(m, a) for m, a in zip(rows["metric"], rows["ap_form"])]
    bits = sorted(rows["bits"].unique())
    first = rows.iloc[0]
    lines = [
        f"### {experiment}",
        "",
        f"Dataset {first['dataset']}, feature {first['feature']}, protocol {first['protocol']}; values in percent.",
        "",
        "| method | metric | " + " | ".join(f"{b} bits" for b in bits) + " |",
        "|---|---|" + "---|" * len(bits),
    ]
    for (method, label), group in rows.sort_values("method", kind="stable").groupby(["method", "label"], sort=False):
        by_bits = {row.bits: _cell(row.value, row.reference_value) for row in group.itertuples()}
        lines.append(f"| {method} | {label} | " + " | ".join(by_bits.get(b, "–") for b in bits) + " |")
    sources = sorted(set(rows["reference_source"]) - {NO_REFERENCE})
    lines.append("")
    lines.append("Published values: " + ("; ".join(sources) if sources else "none available for this protocol") + ".")
    return "\n".join(lines) + "\n"


def summary_tables(summary: pd.DataFrame) -> str:
    """Render every experiment of the summary, in name order."""
    return "\n".join(experiment_table(summary, name) for name in sorted(summary["experiment"].unique()))


def write_tables(summary_path: str | os.PathLike, output: str | os.PathLike) -> None:
    """Write the Markdown tables of the summary CSV at ``summary_path`` to ``output`` atomically."""
    text = summary_tables(pd.read_csv(summary_path))
    with atomic_path(output) as temporary:
        temporary.write_text(text)
    logger.info("wrote the tables of %s to %s", summary_path, output)


def main(argv: list[str] | None = None) -> None:
    """Print or write the Markdown tables of a summary CSV."""
    parser = argparse.ArgumentParser(description="Render results/summary.csv as Markdown tables.")
    parser.add_argument("summary", help="path of the summary CSV written by the pipeline")
    parser.add_argument("--output", help="Markdown file to write; standard output if absent")
    arguments = parser.parse_args(argv)
    if arguments.output is None:
        print(summary_tables(pd.read_csv(arguments.summary)), end="")
        return
    write_tables(arguments.summary, arguments.output)


if __name__ == "__main__":
    main()
