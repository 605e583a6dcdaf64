from threadpoolctl import threadpool_limits

from bdnn.pipeline import write_ground_truth
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
with threadpool_limits(limits=snakemake.threads):
    write_ground_truth(snakemake.input.features, snakemake.input.labels, snakemake.input.split,
                       snakemake.params.ground_truth, snakemake.output.ground_truth)
