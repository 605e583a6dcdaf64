# Reproduction of Do, Doan and Cheung, "Learning to Hash with Binary Deep
# Neural Network" (ECCV 2016). Stages: data -> features -> ground truth ->
# train -> evaluate -> report. Run `snakemake --cores 16`, or the offline
# demo with `snakemake --profile profiles/demo`.

from snakemake.utils import min_version

min_version("8.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/ground_truth.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        "results/summary.csv",
        "results/tables.md",
        expand("figures/{experiment}_map.png", experiment=config["run"]),
