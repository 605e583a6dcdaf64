from bdnn.pipeline import evaluate_codes
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
evaluate_codes(snakemake.input.codes, snakemake.input.ground_truth, snakemake.params.ks, snakemake.params.radius,
               snakemake.output.metrics)
