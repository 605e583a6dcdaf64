"""End-to-end runs of the Snakemake workflow in a scratch copy of the repository."""

import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPOSITORY = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles")

pytestmark = pytest.mark.slow


def copy_workflow(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPOSITORY / name
        if source.is_dir():
            shutil.copytree(source, destination / name, symlinks=True)
        else:
            shutil.copy(source, destination / name)
    return destination


def run_snakemake(directory: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", *arguments], cwd=directory, capture_output=True,
                          text=True, timeout=900)


def require_success(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


@pytest.mark.parametrize("arguments", [
    ("--cores", "2"),
    ("--profile", "profiles/demo"),
    ("--cores", "2", "--configfile", "config/local-mirror.yaml"),
])
def test_workflow_dry_run_and_lint(tmp_path, arguments):
    directory = copy_workflow(tmp_path)
    dry_run = run_snakemake(directory, "-n", *arguments)
    require_success(dry_run)
    lint = run_snakemake(directory, "--lint", *arguments)
    require_success(lint)
    assert "Congratulations" in lint.stdout + lint.stderr


def test_workflow_rejects_config_typo(tmp_path):
    directory = copy_workflow(tmp_path)
    result = run_snakemake(directory, "-n", "--cores", "1", "--config", "bitz=[8]")
    assert result.returncode != 0
    assert "bitz" in result.stdout + result.stderr


def test_demo_profile_end_to_end(tmp_path):
    directory = copy_workflow(tmp_path)
    require_success(run_snakemake(directory, "--profile", "profiles/demo"))

    summary = pd.read_csv(directory / "results" / "summary.csv")
    maps = summary[(summary["metric"] == "mAP") & (summary["ap_form"] == "trapezoid")]
    assert set(maps["experiment"]) == {"digits-knn", "digits-labels"}
    assert set(maps["method"]) == {"itq", "uh_bdnn"}
    assert sorted(maps["bits"].unique()) == [8, 16, 24, 32]
    assert len(maps) == 16
    assert maps["value"].between(0, 100).all()
    assert (maps["reference_source"] == "none available").all()
    for experiment in ("digits-knn", "digits-labels"):
        figure = directory / "figures" / f"{experiment}_map.png"
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    split = np.load(directory / "results" / "digits-knn" / "split.npz")
    assert split["query"].size == 297
    assert split["database"].size == 1797 - 297
    assert int(split["seed"]) == 0

    rerun = run_snakemake(directory, "--profile", "profiles/demo")
    require_success(rerun)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def vecs_bytes(rows: np.ndarray) -> bytes:
    """Serialise rows in the TEXMEX vecs layout: int32 dimension, then the values."""
    dimension = np.full((rows.shape[0], 1), rows.shape[1], dtype=np.int32)
    return np.hstack([dimension.view(rows.dtype), rows]).tobytes()


def write_tiny_sift(mirror: Path, rows: dict[str, int]) -> None:
    rng = np.random.default_rng(7)
    members = {f"sift/sift_{name}.fvecs": vecs_bytes(rng.integers(0, 120, (count, 128)).astype(np.float32))
               for name, count in rows.items()}
    members["sift/sift_groundtruth.ivecs"] = vecs_bytes(rng.integers(0, rows["base"], (rows["query"], 100)).astype(np.int32))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    (mirror / "sift1m").mkdir(parents=True)
    (mirror / "sift1m" / "sift.tar.gz").write_bytes(buffer.getvalue())


def sift_registry(rows: dict[str, int], unreachable_url: str) -> dict:
    files = {name: {"path": f"sift/sift_{name}.fvecs", "archive": "sift.tar.gz", "format": "fvecs",
                    "shape": [count, 128], "size": count * (4 + 4 * 128)} for name, count in rows.items()}
    files["groundtruth"] = {"path": "sift/sift_groundtruth.ivecs", "archive": "sift.tar.gz", "format": "ivecs",
                            "shape": [rows["query"], 100], "size": rows["query"] * (4 + 4 * 100)}
    return {"format_version": 1, "datasets": {"sift1m": {
        "title": "SIFT1M-shaped test data", "checksums": "pin-on-first-use",
        "archives": {"sift.tar.gz": {"url": f"{unreachable_url}/sift.tar.gz"}}, "files": files}}}


def test_sift_workflow_end_to_end(tmp_path, closed_port):
    rows = {"learn": 400, "base": 1500, "query": 30}
    mirror = tmp_path / "mirror"
    write_tiny_sift(mirror, rows)
    directory = copy_workflow(tmp_path / "work")
    registry = directory / "config" / "sift-registry.yaml"
    registry.write_text(yaml.safe_dump(sift_registry(rows, f"ftp://127.0.0.1:{closed_port}")))
    scenario = {
        "bits": [8, 16],
        "data": {"mirror": str(mirror), "registry": str(registry)},
        "methods": {"uh_bdnn": {"max_outer": 2, "lbfgs_iter": 20, "n_validation": 100, "validation_k": 10}},
        "threads": {"ground_truth": 1, "train": 1, "features": 1},
        "run": ["sift1m"],
        "experiments": {"sift1m": {"ground_truth": {"type": "knn", "k": 25}}},
    }
    (directory / "config" / "sift-test.yaml").write_text(yaml.safe_dump(scenario))
    require_success(run_snakemake(directory, "--cores", "2", "--configfile", "config/sift-test.yaml"))

    split = np.load(directory / "results" / "sift1m" / "split.npz")
    assert split["train"].size == rows["learn"]
    assert split["database"].size == rows["base"]
    assert split["query"].size == rows["query"]
    codes = np.load(directory / "results" / "sift1m" / "uh_bdnn" / "16" / "codes.npz")
    assert codes["database"].shape == (rows["base"], 16)
    assert codes["query"].shape == (rows["query"], 16)
    truth = np.load(directory / "results" / "sift1m" / "ground_truth.npz")
    assert truth["neighbours"].shape == (rows["query"], 25)

    summary = pd.read_csv(directory / "results" / "summary.csv")
    maps = summary[(summary["metric"] == "mAP") & (summary["ap_form"] == "trapezoid")]
    assert set(maps["method"]) == {"itq", "uh_bdnn"}
    assert sorted(maps["bits"].unique()) == [8, 16]
    assert (directory / "data" / "raw" / "sift1m" / "checksums.pinned.json").exists()
