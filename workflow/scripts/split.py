from bdnn.pipeline import write_split
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
write_split(snakemake.input.parts, snakemake.input.info, snakemake.params.experiment, snakemake.params.seed,
            snakemake.output.split)
