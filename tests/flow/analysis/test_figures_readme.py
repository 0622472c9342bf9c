"""The README's figure blocks (flow/analysis/figures_readme.py): README.md agrees with
figures.json, a number changed on either side is seen, and the block markers pair up."""

from __future__ import annotations

import copy

import pytest

from xbarflow.flow.analysis.figures_readme import (
    README,
    BLOCKS,
    ReadmeError,
    check_readme,
    render_readme,
)


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text()


def test_readme_blocks_are_what_the_figures_render(readme, stored):
    assert check_readme(readme, stored) == []
    opening = [ln for ln in readme.splitlines() if ln.startswith("<!-- figures:") and ln.endswith(" -->")]
    assert len(opening) == len(BLOCKS)


def test_a_number_changed_in_the_readme_or_the_json_is_seen(readme, stored):
    typed = readme.replace("| golden-model accuracy, full 10k test set, wire resistance on | **",
                           "| golden-model accuracy, full 10k test set, wire resistance on | **9", 1)
    assert typed != readme
    (problem,) = check_readme(typed, stored)
    assert "figures-table" in problem
    edited = copy.deepcopy(stored)
    edited["figures"]["programming"]["dead_partition_3"]["failures"] += 1
    problems = check_readme(readme, edited)
    assert any("faults-table" in p for p in problems), problems
    # a number outside any block is the README's own text: not checked, not rewritten
    outside = readme.replace("## Two commands", "## Two commands (2)")
    assert check_readme(outside, stored) == [] and render_readme(outside, stored) == outside


def test_blocks_must_pair_up(readme, stored):
    with pytest.raises(ReadmeError, match="never closed"):
        render_readme(readme.replace("<!-- /figures:faults-cosim -->", ""), stored)
    with pytest.raises(ReadmeError, match="opens inside .sweep."):
        render_readme(readme.replace("<!-- /figures:sweep -->", ""), stored)
    with pytest.raises(ReadmeError, match="unknown figures block 'nope'"):
        render_readme(readme + "\n<!-- figures:nope -->\n<!-- /figures:nope -->\n", stored)
    with pytest.raises(ReadmeError, match="missing: cost-table"):
        render_readme(readme.replace("<!-- figures:cost-table -->", "").replace(
            "<!-- /figures:cost-table -->", ""), stored)
