# One feature matrix per dataset and feature type, aligned with items.npy and
# computed once for every experiment that uses it.


rule features:
    input:
        item_array="data/datasets/{dataset}/items.npy",
        parts="data/datasets/{dataset}/parts.npy",
        info="data/datasets/{dataset}/info.json",
    output:
        features="data/features/{dataset}/{feature}.npy",
    params:
        cnn_weights=config["features"]["cnn_weights"],
        cnn_device=config["features"]["cnn_device"],
        cnn_batch_size=config["features"]["cnn_batch_size"],
    threads: config["threads"]["features"]
    resources:
        mem_mb=16000,
    conda:
        "../envs/features.yaml"
    log:
        "logs/features/{dataset}/{feature}.log",
    benchmark:
        "logs/benchmark/features/{dataset}/{feature}.tsv"
    script:
        "../scripts/features.py"
