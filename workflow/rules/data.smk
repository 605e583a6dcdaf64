# Acquisition (download, mirror or verified local copy) and conversion to the
# canonical layout: items.npy, labels.npy, parts.npy and info.json.


rule acquire:
    output:
        manifest=f"{RAW_DIR}/{{dataset}}/manifest.json",
    params:
        mirror=config["data"]["mirror"],
        allow_unverified=config["data"]["allow_unverified"],
        timeout_s=config["data"]["timeout_s"],
        registry=config["data"]["registry"],
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/acquire/{dataset}.log",
    benchmark:
        "logs/benchmark/acquire/{dataset}.tsv"
    script:
        "../scripts/acquire.py"


rule prepare:
    input:
        prepare_input,
    output:
        item_array="data/datasets/{dataset}/items.npy",
        labels="data/datasets/{dataset}/labels.npy",
        parts="data/datasets/{dataset}/parts.npy",
        info="data/datasets/{dataset}/info.json",
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmark/prepare/{dataset}.tsv"
    script:
        "../scripts/prepare.py"
