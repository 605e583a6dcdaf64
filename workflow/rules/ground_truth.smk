# Index sets of each experiment (written out with their seed) and its ground
# truth: Euclidean K nearest neighbours or class labels.


rule split:
    input:
        parts=lambda wildcards: dataset_path(wildcards, "parts.npy"),
        info=lambda wildcards: dataset_path(wildcards, "info.json"),
    output:
        split="results/{experiment}/split.npz",
    params:
        experiment=experiment_config,
        seed=config["seed"],
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/split/{experiment}.log",
    script:
        "../scripts/split.py"


rule ground_truth:
    input:
        features=feature_path,
        labels=lambda wildcards: dataset_path(wildcards, "labels.npy"),
        split="results/{experiment}/split.npz",
    output:
        ground_truth="results/{experiment}/ground_truth.npz",
    params:
        ground_truth=lambda wildcards: experiment_config(wildcards)["ground_truth"],
    threads: config["threads"]["ground_truth"]
    resources:
        mem_mb=8000,
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/ground_truth/{experiment}.log",
    benchmark:
        "logs/benchmark/ground_truth/{experiment}.tsv"
    script:
        "../scripts/ground_truth.py"
