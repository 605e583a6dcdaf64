import pandas as pd

from bdnn.report.figures import plot_map_vs_bits
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
plot_map_vs_bits(pd.read_csv(snakemake.input.summary), snakemake.wildcards.experiment, snakemake.output.figure)
