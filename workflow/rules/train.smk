# Train one hashing method at one code length and encode queries and database.


rule train:
    input:
        features=feature_path,
        split="results/{experiment}/split.npz",
    output:
        model="results/{experiment}/{method}/{bits}/model.npz",
        codes="results/{experiment}/{method}/{bits}/codes.npz",
    params:
        method_params=lambda wildcards: config["methods"].get(wildcards.method, {}),
        seed=config["seed"],
    threads: config["threads"]["train"]
    resources:
        mem_mb=16000,
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/train/{experiment}/{method}/{bits}.log",
    benchmark:
        "logs/benchmark/train/{experiment}/{method}/{bits}.tsv"
    script:
        "../scripts/train.py"
