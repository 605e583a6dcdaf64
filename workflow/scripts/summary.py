from bdnn.report.summary import build_summary, write_summary
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
write_summary(build_summary(snakemake.input.metrics, snakemake.params.experiments), snakemake.output.summary)
