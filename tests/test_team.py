"""README's real-data recipe, command by command, as a team runs it: an archive added to DVC,
the pipeline on it, queued experiments, a remote, and a teammate's fresh clone.

The archive is a small one in notMNIST's layout (letters drawn from Pillow's font), named
like the real one, so that the recipe runs as written in a minute.
"""

import io
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import (
    REPO,
    commit,
    copy_repository,
    dvc,
    git,
    noisy_letters,
    read_params,
    run,
    wait_for_the_queue,
    with_overrides,
    write_params,
)

pytestmark = pytest.mark.slow

FAST = {
    "synthesize": {"per_class": 50},
    "minibatch": {"batch_size": 32, "epochs": 3},
    "objective": {"lbfgs_max_iter": 30},
    "sweep": {"rates": [0.001, 0.01, 0.1, 1.0], "subsample": 100},
}
UP_TO_DATE = "Data and pipelines are up to date."


def readme_block(first_line: str) -> list[str]:
    """The commands of the README block whose first line is `first_line`, comments cut."""
    text = (REPO / "README.md").read_text()
    block = text[text.index(f"    {first_line}") :].split("\n\n")[0]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def small_archive(path: Path) -> None:
    """notMNIST_small.tar.gz's layout, 40 noisy letters a class."""
    images, labels = noisy_letters(40, noise=60.0, seed=1)
    with tarfile.open(path, "w:gz") as tar:
        for i, (image, label) in enumerate(zip(images, labels)):
            data = io.BytesIO()
            Image.fromarray(image).save(data, format="PNG")
            info = tarfile.TarInfo(f"notMNIST_small/{'ABCDEFGHIJ'[label]}/{i:04d}.png")
            info.size = len(data.getvalue())
            tar.addfile(info, io.BytesIO(data.getvalue()))


def test_the_real_data_recipe_runs_and_a_teammate_pulls_a_clean_pipeline(tmp_path, monkeypatch):
    for role in ("AUTHOR", "COMMITTER"):  # the recipe's own `git commit`s
        monkeypatch.setenv(f"GIT_{role}_NAME", "test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    team, remote = tmp_path / "team", tmp_path / "remote"
    team.mkdir()
    copy_repository(team)
    write_params(team, with_overrides(read_params(team), FAST))
    git(team, "init", "-q")
    commit(team, "the template, never run on its built-in data")
    small_archive(team / "notMNIST_small.tar.gz")

    for line in readme_block("dvc add notMNIST_small.tar.gz"):
        run(team, "bash", "-c", line.replace("/mnt/team/dvc", str(remote)), timeout=900)
        if line.startswith("dvc queue start"):
            assert "Failed" not in wait_for_the_queue(team)
    assert read_params(team)["ingest"]["source"] == "notMNIST_small.tar.gz"
    assert "adam" in dvc(team, "exp", "show", "--csv").stdout  # the queued experiment ran
    assert git(team, "status", "--porcelain").stdout == ""

    clone, install, pull = readme_block("git clone <repo> notmnist")
    # the install is the first command of README's "Two commands" without its `dvc repro`, the
    # one CI runs; here the tests' own environment stands in for it
    two_commands = (REPO / "README.md").read_text().split("```")[1]
    assert two_commands.strip().startswith(install + " && dvc repro")
    run(tmp_path, "bash", "-c", f"set -e; {clone.replace('<repo>', str(team))}; {pull}", timeout=900)
    assert UP_TO_DATE in dvc(tmp_path / "notmnist", "status").stdout
    model = "models/model.npz"
    assert (tmp_path / "notmnist" / model).read_bytes() == (team / model).read_bytes()
