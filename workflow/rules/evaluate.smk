# Hamming ranking of the whole database: mAP (both AP forms), precision@k,
# precision-recall by Hamming radius and precision within a Hamming radius.


rule evaluate:
    input:
        codes="results/{experiment}/{method}/{bits}/codes.npz",
        ground_truth="results/{experiment}/ground_truth.npz",
    output:
        metrics="results/{experiment}/{method}/{bits}/metrics.json",
    params:
        ks=config["evaluation"]["precision_at_k"],
        radius=config["evaluation"]["hamming_radius"],
    resources:
        mem_mb=8000,
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/evaluate/{experiment}/{method}/{bits}.log",
    benchmark:
        "logs/benchmark/evaluate/{experiment}/{method}/{bits}.tsv"
    script:
        "../scripts/evaluate.py"
