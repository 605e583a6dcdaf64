from pathlib import Path

from bdnn.data.datasets import prepare_dataset
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
manifest = snakemake.input[0] if len(snakemake.input) else None
prepare_dataset(snakemake.wildcards.dataset, manifest, Path(snakemake.output.info).parent)
