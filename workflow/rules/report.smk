# Summary table with reference values and the mAP-vs-code-length figures.


rule summary:
    input:
        metrics=run_results("metrics.json"),
    output:
        summary="results/summary.csv",
    params:
        experiments={name: config["experiments"][name] for name in config["run"]},
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/report/summary.log",
    script:
        "../scripts/summary.py"


rule map_figure:
    input:
        summary="results/summary.csv",
    output:
        figure="figures/{experiment}_map.png",
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/report/{experiment}_map.log",
    script:
        "../scripts/map_figure.py"


rule tables:
    input:
        summary="results/summary.csv",
    output:
        tables="results/tables.md",
    conda:
        "../envs/bdnn.yaml"
    log:
        "logs/report/tables.log",
    script:
        "../scripts/tables.py"
