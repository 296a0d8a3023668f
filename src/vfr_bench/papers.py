"""The papers' result tables as data: ``configs/papers/<paper>-<table>.yaml``.

Each file holds one printed table of a method paper (KEEP, Feng et al. ECCV 2024;
DicFace, Chen et al. ICCV 2025; VQFR, Gu et al. ECCV 2022; FLAIR, Zou et al. WACV 2025):
its numbers as printed (strings, so ``27.9994`` stays ``27.9994``), each printed column
mapped to one of our leaderboard columns (or ``none``) with its scale, each test set
mapped to one of our split recipes (or ``none``), each row mapped to one of our methods
(or ``none``), and the protocol facts the paper states or leaves open, each with the
place in the paper's text it comes from. ``vfr_bench.compare`` sets our numbers beside
them; the README's paper tables are rendered from these files.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Optional

import yaml

from vfr_bench.config import ConfigError, read_yaml, to_dataclass
from vfr_bench.registry import unknown

NONE = "none"
LQ_SOURCES = ("paper", "regenerated")


@dataclass(frozen=True)
class Column:
    """One printed column.

    Attributes:
        paper: the header as printed (transcribed to plain text, scale kept: ``σ_IDS (x1e-2)``).
        ours: our leaderboard column for it, backend in brackets (``IDS[arcface]``), or ``none``.
            It may name a column the registry does not have yet (``FID``): compare then says
            ``not in this suite`` until it exists.
        backend: the backend the paper states (``arcface``; then ``ours`` ends in ``[arcface]``),
            ``unstated`` when the paper leaves it open, or empty for a metric without one (PSNR).
        scale: paper value = our value x scale (KID printed x1e3 against our raw KID: 1000).
        higher_is_better: the printed arrow.
        source: where in the paper the column and its backend are defined.
        note: anything else a reader must know.
    """
    paper: str
    ours: str
    higher_is_better: bool
    backend: str = ""
    scale: float = 1.0
    source: str = ""
    note: str = ""

    @property
    def family(self) -> str:
        """``IDS`` for ``IDS[arcface]``: columns of one family differ only in backend."""
        return self.ours.split("[", 1)[0]


@dataclass(frozen=True)
class TestSet:
    """A test set of the paper and the split recipe that regenerates it.

    Attributes:
        name: as the paper names it (``VFHQ-mild``).
        recipe: our recipe (``configs/splits/<recipe>.yaml``) or ``none``.
        hq_source: when one recipe serves several HQ datasets (CelebV-Text, CelebV-HQ), a
            keyword the split's HQ source or folder name must contain (``celebv-hq``).
        lq_source: ``paper`` (the paper scored its own LQ files, which we regenerate from the
            recipe) or ``regenerated`` (the paper's numbers were computed on our regenerated
            split); only ``regenerated`` can give the verdict ``same protocol``.
        source: where the paper defines the test set.
        note: what differs or is left open.
    """
    __test__ = False  # not a pytest class
    name: str
    recipe: str
    lq_source: str = "paper"
    hq_source: str = ""
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class Row:
    """One printed row on one test set (a printed line covering several test sets is split).

    Attributes:
        method: the method as printed (citation numbers and bold dropped).
        test_set: a :class:`TestSet` name.
        values: the printed numbers in column order, as strings; ``None`` where the table
            prints nothing (or the text is illegible: see ``note``).
        ours: our method name, or ``none``.
        note: e.g. which variant of ours and why.
    """
    method: str
    test_set: str
    values: tuple[Optional[str], ...]
    ours: str = NONE
    note: str = ""


@dataclass(frozen=True)
class Fact:
    """A protocol fact: what the paper states (``stated``) or leaves open, and where."""
    topic: str
    value: str
    stated: bool
    source: str


@dataclass(frozen=True)
class PaperTable:
    """One printed table; ``name`` is the file stem (``keep-table1``)."""
    name: str
    paper: str
    table: str
    title: str
    citation: str
    source: str
    columns: tuple[Column, ...]
    test_sets: tuple[TestSet, ...]
    rows: tuple[Row, ...]
    protocol: tuple[Fact, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.paper} {self.table}"

    def test_set(self, name: str) -> TestSet:
        return next(t for t in self.test_sets if t.name == name)


def papers_dir() -> Path:
    return Path(str(files("vfr_bench.configs").joinpath("papers")))


def table_names() -> list[str]:
    return sorted(p.stem for p in papers_dir().glob("*.yaml"))


def _number(value, where: str) -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {value!r} must be a quoted string (numbers stay as printed) or null")
    try:
        float(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not a number") from None
    return value


def read_table(path: Path) -> PaperTable:
    """Load and check one table file.

    Raises:
        ConfigError: unknown key, unquoted number, a row of the wrong length, a row naming an
            unknown test set, a stated backend that ``ours`` does not carry, a bad lq_source.
    """
    path = Path(path)
    where = str(path)
    try:
        d = read_yaml(path)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}".replace("\n", " ")) from None
    cols = tuple(to_dataclass(Column, c, f"{where}: columns[{i}]") for i, c in enumerate(d.pop("columns", [])))
    sets = tuple(to_dataclass(TestSet, t, f"{where}: test_sets[{i}]") for i, t in enumerate(d.pop("test_sets", [])))
    facts = tuple(to_dataclass(Fact, f, f"{where}: protocol[{i}]") for i, f in enumerate(d.pop("protocol", [])))
    rows = []
    for i, r in enumerate(d.pop("rows", [])):
        w = f"{where}: rows[{i}]"
        vals = r.get("values")
        if not isinstance(vals, list) or len(vals) != len(cols):
            raise ConfigError(f"{w}: values must be a list of {len(cols)} (one per column), got {vals!r}")
        r = {**r, "values": tuple(_number(v, f"{w}: values[{j}]") for j, v in enumerate(vals))}
        rows.append(to_dataclass(Row, r, w))
    t = to_dataclass(PaperTable, {**d, "name": path.stem, "columns": cols, "test_sets": sets,
                                  "rows": tuple(rows), "protocol": facts}, where)
    names = {s.name for s in sets}
    for i, r in enumerate(t.rows):
        if r.test_set not in names:
            raise ConfigError(f"{where}: rows[{i}]: test_set {r.test_set!r} not in test_sets ({', '.join(names)})")
    for i, s in enumerate(sets):
        if s.lq_source not in LQ_SOURCES:
            raise ConfigError(f"{where}: test_sets[{i}]: lq_source {s.lq_source!r}; valid: {', '.join(LQ_SOURCES)}")
    for i, c in enumerate(cols):
        if c.backend not in ("", "unstated") and c.ours != NONE and not c.ours.endswith(f"[{c.backend}]"):
            raise ConfigError(f"{where}: columns[{i}]: the paper states backend {c.backend!r} "
                              f"but ours is {c.ours!r} (expected NAME[{c.backend}])")
    return t


def load_table(name: str) -> PaperTable:
    """A table by name (``keep-table1``).

    Raises:
        UnknownNameError: no such table; the message lists them.
    """
    p = papers_dir() / f"{name}.yaml"
    if not p.is_file():
        raise unknown("paper table", name, table_names())
    return read_table(p)


def select(name: str) -> list[PaperTable]:
    """``all``, a paper (``keep``: all its tables) or one table (``keep-table1``).

    Raises:
        UnknownNameError: none of these; the message lists the tables and papers.
    """
    names = table_names()
    if name == "all":
        return [load_table(n) for n in names]
    if name in names:
        return [load_table(name)]
    tables = [load_table(n) for n in names]
    picked = [t for t in tables if t.paper.lower() == name.lower()]
    if not picked:
        raise unknown("paper table", name, names + sorted({t.paper.lower() for t in tables}) + ["all"])
    return picked
