from snakemake.utils import validate

from bdnn.config_check import check_config


check_config(config, f"{workflow.basedir}/workflow/schemas/config.schema.yaml")
validate(config, "../schemas/config.schema.yaml")

for _name in config["run"]:
    if _name not in config["experiments"]:
        raise ValueError(
            f"run lists experiment {_name!r}, which the experiments table does not define; "
            f"defined: {sorted(config['experiments'])}"
        )


wildcard_constraints:
    dataset="[a-z0-9]+",
    feature="[a-z0-9_]+",
    experiment="[A-Za-z0-9_-]+",
    method="[a-z_]+",
    bits="[0-9]+",


RAW_DIR = config["data"]["raw_dir"]


def experiment_config(wildcards):
    return config["experiments"][wildcards.experiment]


def dataset_of(wildcards):
    return experiment_config(wildcards)["dataset"]


def feature_path(wildcards):
    settings = experiment_config(wildcards)
    return f"data/features/{settings['dataset']}/{settings['feature']}.npy"


def dataset_path(wildcards, name):
    return f"data/datasets/{dataset_of(wildcards)}/{name}"


def code_lengths(experiment, method):
    """Code lengths of one method in one experiment: its own list if given, else the global ``bits``."""
    return config["experiments"][experiment].get("bits", {}).get(method, config["bits"])


def run_results(name):
    """Paths of ``name`` for every experiment, method and code length to run."""
    return [
        f"results/{experiment}/{method}/{bits}/{name}"
        for experiment in config["run"]
        for method in config["experiments"][experiment]["methods"]
        for bits in code_lengths(experiment, method)
    ]


def prepare_input(wildcards):
    # The scikit-learn digits ship with the package and need no acquisition.
    if wildcards.dataset == "digits":
        return []
    return [f"{RAW_DIR}/{wildcards.dataset}/manifest.json"]
