"""Blind pairwise user study: export side-by-side clips of restored videos, then score the votes.

Metrics without GT disagree with each other and with people, so on real footage the final word
is a preference study. ``export`` restores the split's LQ clips with each method (the runner
keeps no restored clips), picks (clip, method pair) comparisons with a seeded generator, puts
the two outputs side by side with the sides and the order randomised, and encodes every pair
with the same fixed, reproducible encoder settings: the same seed gives byte-identical files.
Participants get ``OUT/study/`` (clips and ``pairs.csv`` to fill in: ``left`` or ``right``);
``OUT/key.csv`` (which method is on which side) stays with the experimenter.

``score`` reads the filled ``pairs.csv`` (several participants' rows may be concatenated) and
the key, and reports per pair of methods the win rate with its Wilson score interval (Wilson,
JASA 1927) and a Bradley-Terry ranking (Bradley & Terry, Biometrika 1952) fitted with the MM
algorithm of Hunter (Ann. Statist. 32(1), 2004), with percentile-bootstrap intervals over votes.
"""
from __future__ import annotations

import csv
import itertools
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Callable, Optional, Sequence

import numpy as np

CRF = 18
CHOICES = {"left": "left", "l": "left", "right": "right", "r": "right"}
N_BOOT = 1000
PARTICIPANT_README = """Blind comparison of face restorations.

Each clip in clips/ shows the same video restored by two methods, side by side.
For every row of pairs.csv, watch clips/<pair_id>.mp4 and write in the choice column which
side looks better overall (a natural, sharp, stable face that looks like the same person):
left or right. Leave it empty to skip a pair. Please do not rename the files.
"""


class StudyError(ValueError):
    """The study cannot be exported or scored as asked; the message says what to do."""


@dataclass(frozen=True)
class Pair:
    pair_id: str
    clip_id: str
    left: str
    right: str


# --- planning and export ---------------------------------------------------------------------

def plan_pairs(clip_ids: Sequence[str], methods: Sequence[str], n_pairs: Optional[int],
               seed: int) -> list[Pair]:
    """Seeded choice of ``n_pairs`` distinct (clip, method pair) comparisons (all when None), in
    random order, each with its sides drawn at random. Depends on the set of methods, not on the
    order they were typed in.

    Raises:
        StudyError: fewer than two methods, or more pairs asked than exist.
    """
    methods = sorted(set(methods))
    if len(methods) < 2:
        raise StudyError(f"a pairwise study needs at least two methods, got {', '.join(methods) or 'none'}")
    candidates = [(c, a, b) for c in clip_ids for a, b in itertools.combinations(methods, 2)]
    n = len(candidates) if n_pairs is None else int(n_pairs)
    if not 1 <= n <= len(candidates):
        raise StudyError(f"--pairs {n}: choose 1..{len(candidates)} ({len(clip_ids)} clips x "
                         f"{len(methods) * (len(methods) - 1) // 2} method pairs)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(candidates))[:n]
    swap = rng.integers(0, 2, n)
    width = max(3, len(str(n)))
    return [Pair(f"p{k + 1:0{width}d}", candidates[i][0], *(candidates[i][2:0:-1] if s else candidates[i][1:]))
            for k, (i, s) in enumerate(zip(order, swap))]


def run_dir(results: Path, method: str, split) -> Path:
    """The folder of a (method, split) run's clip records under a results root."""
    try:
        from vfr_bench.results import run_folder  # <method>/<split>@<sha8> where the runner has it
    except ImportError:
        return Path(results) / method / split.name
    return run_folder(results, method, split.name, split.manifest_sha256)


def finished_clips(results: Path, split, methods: Sequence[str]) -> set[str]:
    """Clip ids every method finished (``ok``) on this split (same manifest hash) in a results root."""
    from vfr_bench.results import read_records
    done = None
    for m in methods:
        recs = read_records(run_dir(results, m, split))
        ok = {cid for cid, r in recs.items() if r.status == "ok" and r.run.get("split_sha256") == split.manifest_sha256}
        done = ok if done is None else done & ok
    return done or set()


def _output_size(clip) -> tuple[int, int]:
    """The size a method must return: the GT's, or the LQ's on a split without GT."""
    import cv2

    from vfr_bench.datasets.splits import frame_files
    img = cv2.imread(str(frame_files(clip.gt if clip.gt is not None else clip.lq)[0]), cv2.IMREAD_UNCHANGED)
    return tuple(img.shape[:2])


def restore_clip(method, clip, degradation: str, device: str = "cpu", max_frames: Optional[int] = None) -> np.ndarray:
    """[T,H,W,3] uint8 RGB: ``method.restore`` on the clip's LQ frames.

    Raises:
        StudyError: unreadable clip, or an output of the wrong shape, with NaN/Inf or out of [0,1].
    """
    import torch

    from vfr_bench.datasets import degradations as D
    from vfr_bench.datasets.clips import read_frames, to_tensor
    from vfr_bench.interface import ClipMeta
    try:
        lq = to_tensor(read_frames(clip.lq, max_frames)).to(device)
        mask = to_tensor(read_frames(clip.mask, max_frames)[..., :1]).to(device) if clip.mask is not None else None
        size = _output_size(clip)
    except (ValueError, OSError) as e:
        raise StudyError(f"cannot read clip {clip.id}: {e}") from None
    with torch.no_grad():
        out = method.restore(lq, ClipMeta(clip.id, clip.fps, size, mask, degradation))
    why = _bad_output(out, (lq.shape[0], 3, *size))
    if why:
        raise StudyError(f"{method.method_name} on clip {clip.id}: {why}")
    return D.to_uint8(out.detach().float().cpu())


def _bad_output(out, shape: tuple[int, ...], slack: float = 1e-3) -> Optional[str]:
    """Why a restored clip cannot be shown (wrong shape, NaN/Inf, outside [0,1]), or None."""
    import torch
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(shape):
        return f"output shape {tuple(getattr(out, 'shape', ()))} != {tuple(shape)}"
    if not bool(torch.isfinite(out).all()):
        return "output has NaN/Inf values"
    lo, hi = float(out.min()), float(out.max())
    return f"output range [{lo:.4g}, {hi:.4g}] is outside [0, 1]" if lo < -slack or hi > 1 + slack else None


def _build(name: str, degradation: str):
    """The method built for the split's degradation (where ``build_method`` takes it)."""
    import inspect

    from vfr_bench.methods import build_method
    if "degradation" in inspect.signature(build_method).parameters:
        return build_method(name, None, degradation)
    return build_method(name)


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


@dataclass
class ExportResult:
    out: Path
    pairs: list[Pair]


def export(split: str, methods: Sequence[str], out: Path, n_pairs: Optional[int] = None, seed: int = 0,
           results: Optional[Path] = None, device: str = "cpu", max_frames: Optional[int] = None,
           overwrite: bool = False, progress: bool = True, log: Callable[[str], None] = print) -> ExportResult:
    """Restore, pair, encode; see the module docstring. ``OUT`` is written atomically.

    Raises:
        UnknownNameError: unknown split or method.
        MissingWeightsError: a method's checkpoint is absent.
        StudyError: anything else the user must change (existing output, too few methods, no clips...).
    """
    from tqdm import tqdm

    from vfr_bench import __version__
    from vfr_bench.datasets.splits import load_split, replace_folder
    from vfr_bench.video_io import Mp4Writer
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise StudyError(f"{out} exists and is not empty; pass --overwrite to replace it")
    s = load_split(split)
    methods = sorted(set(methods))
    restorers = {m: _build(m, s.degradation) for m in methods}
    for m, r in restorers.items():
        why = r.applicable(s.degradation)
        if why:
            raise StudyError(f"{m} does not apply to split {s.name}: {why}")
    clips = {c.id: c for c in s.clips}
    if results is not None:
        keep = finished_clips(Path(results), s, methods)
        clips = {k: v for k, v in clips.items() if k in keep}
        if not clips:
            raise StudyError(f"no clip of split {s.name} is finished by every one of {', '.join(methods)} "
                             f"in {results}; run vfr-bench bench first or drop --results")
    pairs = plan_pairs(sorted(clips), methods, n_pairs, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        cache = tmp / "restored"  # lossless per-(method, clip) frames, removed at the end
        for m in methods:
            needed = sorted({p.clip_id for p in pairs if m in (p.left, p.right)})
            restorer = restorers[m].prepare(device)
            (cache / m).mkdir(parents=True)
            for cid in tqdm(needed, desc=f"restore {m}", unit="clip", disable=not progress):
                np.save(cache / m / f"{cid}.npy", restore_clip(restorer, clips[cid], s.degradation, device, max_frames))
            del restorer
        study = tmp / "study"
        (study / "clips").mkdir(parents=True)
        for p in tqdm(pairs, desc="encode pairs", unit="pair", disable=not progress):
            left, right = (np.load(cache / m / f"{p.clip_id}.npy", mmap_mode="r") for m in (p.left, p.right))
            writer = Mp4Writer(study / "clips" / f"{p.pair_id}.mp4", clips[p.clip_id].fps,
                               (left.shape[1], left.shape[2] * 2), CRF, reproducible=True)
            for t in range(len(left)):
                writer.write(np.concatenate([left[t], right[t]], axis=1)[None])
            writer.close()
        shutil.rmtree(cache)
        _write_csv(study / "pairs.csv", ["pair_id", "choice"], [[p.pair_id, ""] for p in pairs])
        (study / "README.txt").write_text(PARTICIPANT_README)
        _write_csv(tmp / "key.csv", ["pair_id", "clip_id", "left", "right"],
                   [[p.pair_id, p.clip_id, p.left, p.right] for p in pairs])
        (tmp / "study.json").write_text(json.dumps({
            "split": s.name, "split_sha256": s.manifest_sha256, "track": s.track,
            "methods": methods, "seed": seed, "n_pairs": len(pairs), "max_frames": max_frames,
            "restricted_to_finished_clips": results is not None,
            "layout": "left | right, each at the method's output size",
            "encoder": {"codec": "libx264", "pix_fmt": "yuv420p", "crf": CRF, "threads": 1, "x264-params": "asm=0"},
            "vfr_bench": __version__}, indent=1, sort_keys=True) + "\n")
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"{out}: {len(pairs)} pairs of {len(clips)} clips x {len(methods)} methods (seed {seed}); "
        f"give participants {out / 'study'}, keep {out / 'key.csv'}")
    return ExportResult(out, pairs)


# --- scoring -----------------------------------------------------------------------------------

def wilson_interval(wins: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (NaN, NaN when n == 0)."""
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p, z2 = wins / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bradley_terry(wins: np.ndarray, iters: int = 100_000, tol: float = 1e-12) -> np.ndarray:
    """Bradley-Terry strengths (summing to 1) by Hunter's MM iteration.

    ``p_i <- W_i / sum_j n_ij / (p_i + p_j)``, then normalised; ``W_i`` are i's wins and
    ``n_ij`` the comparisons of i and j. A method that never wins gets strength 0 (its
    maximum-likelihood strength); with every comparison graph connected the iteration
    converges to the unique maximum (Hunter 2004, Theorem 1).

    Args:
        wins: [m,m] counts, ``wins[i, j]`` = times i was preferred to j.
    """
    wins = np.asarray(wins, np.float64)
    n = wins + wins.T
    w = wins.sum(1)
    p = np.full(len(w), 1.0 / len(w))
    for _ in range(iters):
        s = p[:, None] + p[None, :]
        denom = np.divide(n, s, out=np.zeros_like(n), where=s > 0).sum(1)
        new = np.divide(w, denom, out=np.zeros_like(w), where=denom > 0)
        new /= new.sum()
        done = np.abs(new - p).max() < tol
        p = new
        if done:
            break
    return p


@dataclass
class Votes:
    methods: list[str]
    winners: np.ndarray   # [V] index into methods
    losers: np.ndarray    # [V]
    unanswered: int

    def wins(self, rows: Optional[np.ndarray] = None) -> np.ndarray:
        m = np.zeros((len(self.methods),) * 2)
        idx = slice(None) if rows is None else rows
        np.add.at(m, (self.winners[idx], self.losers[idx]), 1)
        return m


def _read_rows(path: Path, need: Sequence[str]) -> list[dict]:
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in need if c not in (reader.fieldnames or [])]
            if missing:
                raise StudyError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(need)}")
            return list(reader)
    except OSError as e:
        raise StudyError(f"cannot read {path}: {e.strerror}") from None


def read_votes(votes_csv: Path, key_csv: Path) -> Votes:
    """Votes (``pair_id,choice``; ``left``/``right``, empty = unanswered) resolved through the key.

    Raises:
        StudyError: a missing column, a pair not in the key, or a choice that is not left/right.
    """
    key = {r["pair_id"]: r for r in _read_rows(Path(key_csv), ["pair_id", "clip_id", "left", "right"])}
    methods = sorted({r[s] for r in key.values() for s in ("left", "right")})
    index = {m: i for i, m in enumerate(methods)}
    winners, losers, unanswered = [], [], 0
    for line, r in enumerate(_read_rows(Path(votes_csv), ["pair_id", "choice"]), start=2):
        choice = (r["choice"] or "").strip().lower()
        if not choice:
            unanswered += 1
            continue
        if r["pair_id"] not in key:
            raise StudyError(f"{votes_csv}: line {line}: pair {r['pair_id']!r} is not in {key_csv}")
        if choice not in CHOICES:
            raise StudyError(f"{votes_csv}: line {line}: choice {r['choice']!r} is not left or right")
        k = key[r["pair_id"]]
        win, lose = (k["left"], k["right"]) if CHOICES[choice] == "left" else (k["right"], k["left"])
        winners.append(index[win])
        losers.append(index[lose])
    if not winners:
        raise StudyError(f"{votes_csv}: no answered vote (write left or right in the choice column)")
    return Votes(methods, np.array(winners), np.array(losers), unanswered)


@dataclass
class Score:
    votes: Votes
    pairs: "object"      # DataFrame: method_a, method_b, n, wins_a, rate_a, ci_low, ci_high
    ranking: "object"    # DataFrame: rank, method, strength, ci_low, ci_high
    seed: int
    n_boot: int


def score(votes_csv: Path, key_csv: Path, seed: int = 0, n_boot: int = N_BOOT) -> Score:
    """Win rates with Wilson intervals and the Bradley-Terry ranking with bootstrap intervals."""
    import pandas as pd
    v = read_votes(votes_csv, key_csv)
    wins = v.wins()
    rows = []
    for i, j in itertools.combinations(range(len(v.methods)), 2):
        n = int(wins[i, j] + wins[j, i])
        lo, hi = wilson_interval(int(wins[i, j]), n)
        rows.append({"method_a": v.methods[i], "method_b": v.methods[j], "n": n, "wins_a": int(wins[i, j]),
                     "rate_a": wins[i, j] / n if n else math.nan, "ci_low": lo, "ci_high": hi})
    strength = bradley_terry(wins)
    rng = np.random.default_rng(seed)
    boot = np.array([bradley_terry(v.wins(rng.integers(0, len(v.winners), len(v.winners))))
                     for _ in range(n_boot)]) if n_boot else np.full((1, len(v.methods)), math.nan)
    lo, hi = np.quantile(boot, [0.025, 0.975], axis=0)
    order = np.argsort(-strength, kind="stable")
    ranking = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "method": [v.methods[i] for i in order],
                            "strength": strength[order], "ci_low": lo[order], "ci_high": hi[order]})
    return Score(v, pd.DataFrame(rows), ranking, seed, n_boot)


def render_score(s: Score, votes_csv: Path) -> str:
    v = s.votes
    head = (f"{len(v.winners)} answered votes ({v.unanswered} unanswered) in {votes_csv}; "
            f"methods: {', '.join(v.methods)}")
    pairs = s.pairs.to_string(index=False, float_format=lambda x: f"{x:.3f}")
    rank = s.ranking.to_string(index=False, float_format=lambda x: f"{x:.3f}")
    return (f"{head}\n\nwin rate of method_a over method_b, Wilson 95% interval:\n{pairs}\n\n"
            f"Bradley-Terry ranking (MM, Hunter 2004; strengths sum to 1; 95% percentile bootstrap over "
            f"votes, {s.n_boot} resamples, seed {s.seed}):\n{rank}\n")
