"""The documentation: the site builds with no warning, the docstring examples and the fast page
examples run, and README stays a front door that links to pages that exist.

* ``mkdocs build --strict`` (``mkdocs.yml``): a broken link, a missing page or image, an API
  reference (``::: tf_mtl.<module>``) that does not resolve or a docstring mkdocstrings cannot
  parse fails the build. ``docs/hooks.py`` draws the figures with the library's own plotting
  code during the build. Skipped only where MkDocs is not installed (``pip install -e
  ".[test]"`` installs it).
* The ``>>>`` examples of ``DOCTESTS`` (modules, or single objects of a module whose other
  examples need data, trained models or files) run with ``doctest``. The docstrings use
  ``tf_mtl``, ``np``, ``keras`` and ``tf`` without importing them; the runner provides them.
* ``FAST_PAGES``: the "## Example" block of these pages runs (the other pages' examples train
  models and take longer than this file's budget; they were run by hand).
"""

import doctest
import importlib
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
README_MAX_LINES = 220
PAPERS = {"000": "Zhang", "001": "Fifty", "002": "Standley", "003": "Pascal", "004": "Ding"}

# Docstring examples that are self-contained and run in well under a second each.
DOCTESTS = [
    "tf_mtl.grouping.standley", "tf_mtl.dense.taskonomy_losses", "tf_mtl.data.taskonomy_files",
    "tf_mtl.data.taskonomy",
    "tf_mtl.rl.policy", "tf_mtl.rl.critic", "tf_mtl.rl.replay", "tf_mtl.rl.sac.soft_target",
    "tf_mtl.rl.sac.temperature_loss", "tf_mtl.rl.sac.policy_loss",
    "tf_mtl.rl.critic_transference.critic_model",
    "tf_mtl.metrics",
    "tf_mtl.losses",
    "tf_mtl.encoders",
    "tf_mtl.data.synthetic",
    "tf_mtl.data.domains.synthetic_domain",
    "tf_mtl.data.movielens.MovieLensEncoder",
    "tf_mtl.dense.metrics",
    "tf_mtl.dense.streaming_metrics",
    "tf_mtl.experiments.dense_setup",
    "tf_mtl.experiments.loss_plateau",
    "tf_mtl.experiments.reporting",
    "tf_mtl.experiments.results",
    "tf_mtl.grouping.network_selection",
    "tf_mtl.interference.stats",
    "tf_mtl.interference.metrics.interference_transfer",
    "tf_mtl.interference.metrics.linear_cka",
    "tf_mtl.routing.etr_nlp",
    "tf_mtl.routing.masks",
    "tf_mtl.routing.maximum_roaming",
    "tf_mtl.routing.task_norm",
    "tf_mtl.updates.aligned_mtl",
    "tf_mtl.updates.cagrad",
    "tf_mtl.updates.config_rule",
    "tf_mtl.updates.cov",
    "tf_mtl.updates.dbmtl",
    "tf_mtl.updates.dual_cone",
    "tf_mtl.updates.excess_mtl",
    "tf_mtl.updates.fairgrad",
    "tf_mtl.updates.famo",
    "tf_mtl.updates.gls",
    "tf_mtl.updates.graddrop",
    "tf_mtl.updates.gradnorm",
    "tf_mtl.updates.gradvac",
    "tf_mtl.updates.imtl",
    "tf_mtl.updates.itmtl",
    "tf_mtl.updates.mgda",
    "tf_mtl.updates.moco",
    "tf_mtl.updates.nash_mtl",
    "tf_mtl.updates.pcgrad",
    "tf_mtl.updates.rlw",
    "tf_mtl.updates.stch",
    "tf_mtl.updates.uncertainty",
]

FAST_PAGES = ["grouping.md", "interference.md"]


def test_site_builds_strict(tmp_path):
    import mkdocs  # noqa: F401  (the test extra installs it: a missing one fails, never skips)
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Not --quiet: it drops the warnings --strict counts (a broken link would pass).
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--site-dir", str(site)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    warnings = re.findall(r"^WARNING\s+-.*$", proc.stdout + proc.stderr, flags=re.M)
    assert not warnings, warnings
    for page in ["index.html", "transference/index.html", "api/core/index.html",
                 "api/metrics/index.html"]:
        assert (site / page).is_file(), page
    for figure in ["affinity.png", "fig2_metrics_vs_params.png",
                   "fig4_transfer_vs_interference.png", "fig6_similarity_differences.png"]:
        data = (site / "figures" / figure).read_bytes()
        assert data.startswith(b"\x89PNG"), figure
    # The API pages hold the rendered docstrings, not only the headings.
    api = (site / "api" / "core" / "index.html").read_text(encoding="utf-8")
    assert "tf_mtl.transference.measure" in api and "tf_mtl.model.MultiTaskModel" in api


def _doctests(target):
    """The DocTests of ``target``: a module (all of them) or an object inside one."""
    module_name, obj = target, None
    while True:
        try:
            module = importlib.import_module(module_name)
            break
        except ModuleNotFoundError:
            module_name, _, tail = module_name.rpartition(".")
            obj = tail if obj is None else f"{tail}.{obj}"
    tests = doctest.DocTestFinder().find(module)
    if obj is not None:
        tests = [t for t in tests if t.name == target or t.name.startswith(target + ".")]
    return [t for t in tests if t.examples]


@pytest.mark.parametrize("target", DOCTESTS)
def test_docstring_examples(target):
    import keras
    import numpy as np
    import tensorflow as tf

    import tf_mtl
    tests = _doctests(target)
    assert tests, f"{target} has no >>> examples (remove it from DOCTESTS?)"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in tests:
        test.globs.update({"tf_mtl": tf_mtl, "np": np, "keras": keras, "tf": tf})
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def _example_block(page):
    text = open(os.path.join(ROOT, "docs", page), encoding="utf-8").read()
    section = re.search(r"^## Example\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert section, f"docs/{page} has no '## Example' section"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), flags=re.M | re.S)
    assert block, f"docs/{page}'s example has no python block"
    return block.group(1)


@pytest.mark.parametrize("page", FAST_PAGES)
def test_fast_page_examples_run(page, capsys):
    exec(compile(_example_block(page), f"docs/{page}", "exec"), {"__name__": "__docs__"})


def test_every_concept_page_has_an_example_and_bad_input():
    docs = os.path.join(ROOT, "docs")
    pages = [p for p in os.listdir(docs) if p.endswith(".md")]
    assert len(pages) >= 11, pages
    for page in pages:
        text = open(os.path.join(docs, page), encoding="utf-8").read()
        assert re.search(r"^```python\n", text, flags=re.M), f"docs/{page}: no Python example"
        if page != "index.md":
            assert re.search(r"^## Bad input$", text, flags=re.M), f"docs/{page}: no Bad input"


def test_readme_is_a_front_door():
    text = open(README, encoding="utf-8").read()
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"
    # The paper table: one or more rows per paper.
    rows = [line for line in lines if line.startswith("| `00")]
    for number, author in PAPERS.items():
        mine = [r for r in rows if r.startswith(f"| `{number}`")]
        assert mine, f"README's paper table has no row for {number}"
        assert any(author in r for r in mine), f"README names {number} without {author}"
        for row in mine:
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert len(cells) == 5, row   # paper, idea, module, command, docs page
            assert "tf_mtl/" in cells[2] and "python -m launch." in cells[3], row
            assert "docs/" in cells[4], row
    # The table's launchers and configs exist.
    for launcher, config in re.findall(r"python -m launch\.(\w+) --config=(configs/\w+\.py)",
                                       "\n".join(rows)):
        assert os.path.isfile(os.path.join(ROOT, "launch", launcher + ".py")), launcher
        assert os.path.isfile(os.path.join(ROOT, config)), config
    # The modules the table names exist.
    for path in re.findall(r"`(tf_mtl/[\w/]+\.py)`", "\n".join(rows)):
        assert os.path.isfile(os.path.join(ROOT, path)), path
    # Every docs page README links to exists.
    links = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)]*)?\)", text)
    assert links
    for link in links:
        assert os.path.isfile(os.path.join(ROOT, link)), link
    for section in ("## Set up", "## Tour", "## How it compares", "## Citation"):
        assert section in text, section
    assert "@software{" in text and "Apache-2.0" in text
