import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def small_world():
    from codealign.tinyworld.world import build_world

    return build_world(seed=0, n_train=800, n_pool=150, n_eval=100, n_dev=60)


def _tracked_changes() -> str:
    """`git status` of the repository's tracked files (empty outside a git checkout)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    return done.stdout if done.returncode == 0 else ""


@pytest.fixture(scope="session", autouse=True)
def suite_leaves_the_checkout_alone():
    """No test writes into the checkout: a stage run with its default paths would overwrite the
    committed metrics (metrics/seed.json once held the smoke world's counts this way)."""
    before = _tracked_changes()
    yield
    after = _tracked_changes()
    if after != before:
        pytest.fail(f"the test suite changed tracked files:\n{after}", pytrace=False)
