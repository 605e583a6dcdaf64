from pathlib import Path

from bdnn.data.acquire import acquire
from bdnn.data.registry import load_registry
from bdnn.runlog import configure_logging

configure_logging(snakemake.log[0])
registry = load_registry(snakemake.params.registry) if snakemake.params.registry else None
acquire(snakemake.wildcards.dataset, Path(snakemake.output.manifest).parent, mirror=snakemake.params.mirror,
        allow_unverified=snakemake.params.allow_unverified, timeout=snakemake.params.timeout_s, registry=registry)
