import pandas as pd

from bdnn.io import atomic_path
from bdnn.report.tables import summary_tables
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
with atomic_path(snakemake.output.tables) as temporary:
    temporary.write_text(summary_tables(pd.read_csv(snakemake.input.summary)))
