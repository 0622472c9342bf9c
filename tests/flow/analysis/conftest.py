"""Fixtures of the figures tests: figures.json as stored (test_figures.py, test_figures_readme.py)."""

import json

import pytest

from xbarflow.flow.analysis import figures


@pytest.fixture(scope="module")
def stored() -> dict:
    return json.loads(figures.FIGURES_JSON.read_text())
