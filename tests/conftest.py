"""Shared fixtures: the default config, the shipped MNIST and the trained SLP (cached)."""

import pytest

from flow import config as cfgmod


@pytest.fixture(scope="session")
def cfg():
    return cfgmod.load()


@pytest.fixture(scope="session")
def dataset():
    from flow.data import load_dataset
    return load_dataset()


@pytest.fixture(scope="session")
def weights(cfg, dataset):
    from flow.cli import WEIGHTS_DIR
    from flow.train import load_or_train
    return load_or_train(cfg, dataset, WEIGHTS_DIR)
