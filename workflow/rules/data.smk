# Acquisition (download, mirror or verified local copy) and conversion to the
# canonical layout: items.npy, labels.npy, parts.npy and info.json.


rule acquire:
    output:
        manifest=f"{RAW_DIR}/{{dataset}}/manifest.json",
    params:
        mirror=config["data"]["mirror"],
        allow_unverified=config["data"]["allow_unverified"],
        timeout_s=config["data"]["timeout_s"],
    log:
        "logs/acquire/{dataset}.log",
    benchmark:
        "logs/benchmark/acquire/{dataset}.tsv"
    script:
        "../scripts/acquire.py"


def prepare_input(wildcards):
    # The scikit-learn digits ship with the package and need no acquisition.
    if wildcards.dataset == "digits":
        return []
    return [f"{RAW_DIR}/{wildcards.dataset}/manifest.json"]


rule prepare:
    input:
        prepare_input,
    output:
        items="data/datasets/{dataset}/items.npy",
        labels="data/datasets/{dataset}/labels.npy",
        parts="data/datasets/{dataset}/parts.npy",
        info="data/datasets/{dataset}/info.json",
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmark/prepare/{dataset}.tsv"
    script:
        "../scripts/prepare.py"
