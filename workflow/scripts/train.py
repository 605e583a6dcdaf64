from threadpoolctl import threadpool_limits

from bdnn.pipeline import train_and_encode
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
with threadpool_limits(limits=snakemake.threads):
    train_and_encode(snakemake.input.features, snakemake.input.split, snakemake.wildcards.method,
                     int(snakemake.wildcards.bits), snakemake.params.method_params, snakemake.params.seed,
                     snakemake.output.model, snakemake.output.codes)
