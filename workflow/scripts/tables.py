from bdnn.report.tables import write_tables
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
write_tables(snakemake.input.summary, snakemake.output.tables)
