"""Packaging: every subpackage is installed, and importing vfr_bench stays cheap."""
from __future__ import annotations

import configparser
import subprocess
import sys

from tests.helpers import REPO

ROOTS = {"methods": "vfr_bench.methods", "datasets": "vfr_bench.datasets", "metrics": "vfr_bench.metrics",
         "configs": "vfr_bench.configs", "src/vfr_bench": "vfr_bench"}


def test_every_subpackage_is_listed_in_setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = set(cfg["options"]["packages"].split())
    found = set()
    for folder, pkg in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((pkg,) + rel))
    assert found <= listed, f"add to setup.cfg [options] packages: {sorted(found - listed)}"


def test_import_is_light_and_registries_are_lazy():
    code = ("import sys, vfr_bench, vfr_bench.methods as M, vfr_bench.metrics as X\n"
            "names = M.method_names(); X.metric_names()\n"
            "assert 'lq-upsample' in names, names\n"
            "heavy = [m for m in ('dlib', 'pytorch_lightning', 'lpips', 'vfr_bench.methods.baselines', "
            "'vfr_bench.metrics.psnr', 'decord', 'av') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "make install" in ci and "make test" in ci
    assert "make test" in readme and "make bench" in readme


def test_setup_cfg_lists_each_package_once():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    listed = cfg["options"]["packages"].split()
    assert len(listed) == len(set(listed)), sorted(p for p in listed if listed.count(p) > 1)
