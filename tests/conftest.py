"""Fixtures shared by every test tier."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def trained_model(models_root: Path) -> Path:
    """A model trained once per test session on the bundled synthetic sample (version 'v1')."""
    from nepse_predictor.training import train

    return train(out_root=models_root, version="v1", seed=1).model_dir


@pytest.fixture(scope="session")
def second_model(models_root: Path) -> Path:
    """A second model version ('v2', another seed) for tests that need two tracks."""
    from nepse_predictor.training import train

    return train(out_root=models_root, version="v2", seed=2).model_dir
