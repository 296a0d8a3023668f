"""``vfr-bench`` command line: bench, weights, methods, metrics, splits, degrade, restore, perf, compare, study."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vfr_bench.config import ConfigError, parse_override
from vfr_bench.registry import UnknownNameError


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_bench(a) -> int:
    from vfr_bench.bench import BenchOptions, run_bench
    from vfr_bench.supervise import needs_supervisor, supervise
    if needs_supervisor(a.devices, a.strategy):
        return supervise(a.argv, Path(a.out))
    opts = BenchOptions(methods=_csv(a.method), split=a.split, out=Path(a.out), devices=a.devices,
                        num_nodes=a.num_nodes, accelerator=a.accelerator, strategy=a.strategy,
                        metrics=_csv(a.metrics) if a.metrics else None, num_workers=a.num_workers,
                        overrides=dict(parse_override(s) for s in a.set), progress=not a.no_progress,
                        wandb="off" if a.no_wandb else a.wandb, amp=a.amp,
                        clips=_csv(a.clips) if a.clips else None, max_frames=a.max_frames,
                        fid_ref=Path(a.fid_ref) if a.fid_ref else None)
    return run_bench(opts)


def cmd_weights(a) -> int:
    from vfr_bench import weights as W
    if a.action == "list":
        lock = W.read_lock()
        for e in W.REGISTRY:
            p = W.path_of(e)
            rec = lock.get(e.filename) if not e.package else None
            state, note = ("present", "") if p.is_file() else ("missing", "")
            if rec and p.is_file() and p.stat().st_size != rec.get("size"):
                state, note = "changed", "  (size differs from weights.lock: vfr-bench weights verify)"
            elif state == "present" and not e.package and not rec:
                note = "  (not in weights.lock yet: vfr-bench weights verify records it)"
            manual = f"  MANUAL: {e.manual}" if e.manual else ""
            print(f"{e.name:20s} {state:8s} {e.kind:12s} {W.size_text(e.size_mb):>12s}  "
                  f"{e.filename:38s} {e.license}  [{e.used_by}]\n"
                  f"{'':20s} {p}  <- {e.source}{note}{manual}")
        return 0
    if a.action == "path":
        for n in a.names:
            print(W.path_of(W.get(n)))
        return 0
    if a.action == "verify":
        bad = 0
        for n in a.names or [e.name for e in W.REGISTRY if W.is_present(e.name)]:
            try:
                known = W.lock_record(W.get(n)) is not None
                digest = W.verify(n, fresh=True, record=True)
                how = "package file, no hash to compare" if W.get(n).package else (
                    "matches weights.lock" if known else "recorded in weights.lock (first use)")
                print(f"{n}: ok {digest} ({how})")
            except (W.MissingWeightsError, W.WeightsMismatchError) as e:
                print(f"{n}: FAILED: {e}; it will not be loaded. Replace it: delete it and run: "
                      f"vfr-bench weights fetch {n}")
                bad += 1
        return 1 if bad else 0
    if a.action == "fetch":
        chosen = sum(bool(x) for x in (a.names, a.all, a.for_))
        if chosen != 1:
            print("vfr-bench: error: weights fetch needs exactly one of NAME..., --for METHOD[,...] "
                  "or --all (see: vfr-bench weights list)", file=sys.stderr)
            return 2
        if a.url and len(a.names) != 1:
            print("vfr-bench: error: --url needs exactly one NAME", file=sys.stderr)
            return 2
        if a.all:
            names = [e.name for e in W.REGISTRY]
        elif a.for_:
            names = W.weights_for(_csv(a.for_))
        else:
            names = [W.get(n).name for n in a.names]  # unknown names: one-line error, exit 2
        failed = W.fetch_many(names, accept_new=a.accept_new, url=a.url, bars=not a.no_progress)
        if failed:
            print(f"vfr-bench: {failed} download(s) failed (one line each above); nothing partial "
                  f"was kept under a weights name. Run the same command again when the sources "
                  f"are reachable", file=sys.stderr)
        return 1 if failed else 0
    return 2


def method_readiness(name: str) -> str:
    """``ready``, or which weights are missing, over every split degradation the method applies to.

    Some methods pick their weights from the split (FLAIR: one UNet per operator), so their
    needs are asked per degradation (``blind`` and each recipe's): ready when one of them has
    every file, and the missing files are named per degradation otherwise.
    """
    from vfr_bench import weights as W
    from vfr_bench.datasets.recipes import load_recipe, recipe_names
    from vfr_bench.methods import build_method
    degradations = sorted({"blind"} | {load_recipe(r).degradation for r in recipe_names()})
    needs = {}
    for d in degradations:
        r = build_method(name, None, d)  # built for the split's operator (FLAIR's task)
        if r.applicable(d) is None:
            needs[d] = [w for w in r.required_weights() if not W.is_present(w)]
    if not needs:
        return "applies to no split degradation"
    ready = [d for d, miss in needs.items() if not miss]
    if len({tuple(m) for m in needs.values()}) == 1:  # the same files whatever the split
        miss = next(iter(needs.values()))
        return "ready" if not miss else f"missing weights: {', '.join(miss)}"
    if ready:
        return f"ready for {', '.join(ready)} splits" + "".join(
            f"; for {d} missing {', '.join(m)}" for d, m in needs.items() if m)
    common = [w for w in next(iter(needs.values())) if all(w in m for m in needs.values())]
    per = "; ".join(f"{d}: {', '.join(w for w in m if w not in common)}" for d, m in needs.items())
    return (f"missing weights, per split operator (one is enough): {per}"
            + (f"; for every operator: {', '.join(common)}" if common else ""))


def cmd_methods(a) -> int:
    from vfr_bench.methods import method_names, method_spec
    for n in method_names():
        spec = method_spec(n)
        print(f"{n:18s} {method_readiness(n):30s} {spec.get('description', '')}")
    return 0


def cmd_metrics(a) -> int:
    from vfr_bench.metrics import DEFAULT_METRICS, METRICS, build_metric, metric_names
    print(f"{'column':20s} {'direction':17s} {'':8s} {'backend weights':32s} state")
    for n in metric_names():
        m = build_metric(n)
        why = m.unavailable_reason()
        arrow = "higher is better" if m.higher_is_better else "lower is better"
        default = "default" if n in DEFAULT_METRICS else ""
        backend = ", ".join(m.weights) or "-"
        alias = f"alias of {METRICS[n].alias_of}; " if METRICS[n].alias_of else ""
        print(f"{n:20s} {arrow:17s} {default:8s} {backend:32s} {alias}{'available' if not why else 'unavailable: ' + why}")
    return 0


def cmd_splits(a) -> int:
    from vfr_bench import paths
    from vfr_bench.datasets.recipes import load_recipe, recipe_names
    from vfr_bench.datasets.splits import SplitError, built_split_dirs, read_split
    print("recipes (vfr-bench degrade --recipe NAME --src HQ_DIR --out OUT_DIR):")
    for n in recipe_names():
        r = load_recipe(n)
        print(f"  {n:22s} {r.degradation:18s} {r.description}\n  {'':22s} source: {r.source}")
    print(f"built splits ({paths.splits_dir()}; --split NAME, or --split PATH for a folder elsewhere):")
    dirs = built_split_dirs()
    for d in dirs:
        try:
            s = read_split(d)
            print(f"  {s.name:22s} {s.manifest_sha256[:8]}  recipe {s.recipe}, {len(s.clips)} clips, "
                  f"{s.degradation}")
        except SplitError as e:
            print(f"  {d.name:22s} unreadable: {e}")
    if "sample" not in {d.name for d in dirs}:
        print(f"  {'(sample)':22s} not built yet; built on first use (vfr-bench bench --split sample)")
    return 0


def cmd_degrade(a) -> int:
    from vfr_bench.datasets.build import DegradeError, degrade, verify
    from vfr_bench.datasets.splits import SplitError
    if a.verify is not None:
        root = a.out if a.verify is True else a.verify
        if root is None:
            print("vfr-bench: error: --verify needs OUT_DIR (or --out)", file=sys.stderr)
            return 2
        try:
            problems = verify(Path(root))
        except SplitError as e:
            print(f"vfr-bench: error: {e}", file=sys.stderr)
            return 2
        for line in problems:
            print(f"mismatch: {line}")
        print(f"{root}: {'ok, every file matches the manifest' if not problems else f'{len(problems)} mismatch(es)'}")
        return 1 if problems else 0
    missing = [f"--{k}" for k in ("recipe", "src", "out") if getattr(a, k) is None]
    if missing:
        print(f"vfr-bench: error: degrade needs {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        res = degrade(a.recipe, a.src, Path(a.out), seed=a.seed, workers=a.workers,
                      overwrite=a.overwrite, progress=not a.no_progress, detector=a.detector,
                      aligned=a.aligned)
    except DegradeError as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    m = res.manifest
    print(f"{res.root}: {len(m['clips'])} clips, {len(m['skipped'])} skipped, seed {m['seed']}")
    for s in m["skipped"]:
        print(f"  skipped {s['id']}: {s['reason']}")
    return 0


def cmd_agreement(a) -> int:
    from vfr_bench.leaderboard import agreement, render_agreement
    tables = agreement(Path(a.results), a.split)
    if not tables:
        print(f"no rows{' for split ' + a.split if a.split else ''} in {Path(a.results) / 'leaderboard.csv'}",
              file=sys.stderr)
        return 1
    text = render_agreement(tables, a.format)
    if a.out:
        Path(a.out).write_text(text)
        print(f"wrote {a.out}")
    else:
        print(text)
    return 0


def cmd_leaderboard(a) -> int:
    from vfr_bench.leaderboard import build_reports, render, write_plots
    if a.agreement:
        return cmd_agreement(a)
    reports = build_reports(Path(a.results), a.split, seed=a.seed, n_boot=a.n_boot)
    text = render(reports, a.format)
    if a.out:
        Path(a.out).write_text(text, encoding="utf-8")
        print(f"wrote {a.out}")
    else:
        print(text)
    if a.plots:
        for p in write_plots(reports, Path(a.plots)):
            print(f"wrote {p}")
    return 0


def cmd_study(a) -> int:
    from vfr_bench import study
    try:
        if a.study_command == "export":
            import torch
            device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
            study.export(a.split, _csv(a.methods), Path(a.out), n_pairs=a.pairs, seed=a.seed,
                         results=Path(a.results) if a.results else None, device=device, max_frames=a.max_frames,
                         overwrite=a.overwrite, progress=not a.no_progress)
        else:
            print(study.render_score(study.score(Path(a.votes), Path(a.key), seed=a.seed, n_boot=a.n_boot), a.votes),
                  end="")
    except study.StudyError as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_restore(a) -> int:
    import signal
    import threading

    import torch
    from vfr_bench.methods import build_method
    from vfr_bench.restore import check_paths, restore_video
    src, out = Path(a.input), Path(a.output)
    try:
        check_paths(src, out, a.frames)  # before loading any network
    except (FileNotFoundError, ValueError) as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    method = build_method(a.method, dict(parse_override(s) for s in a.set)).prepare(device)

    def interrupt(signum, frame):  # `kill` cleans up like Ctrl-C
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, interrupt) if main_thread else None
    try:
        r = restore_video(method, src, out, aligned=a.aligned, save_frames=a.frames,
                          chunk=a.chunk, device=device, detector=a.detector, fps=a.fps,
                          progress=not a.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = " (the earlier file there is unchanged)" if out.exists() else ""
        print(f"vfr-bench: interrupted; {out} not written{kept}", file=sys.stderr)
        return 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, old_term)
    (h, w), (vh, vw) = r.size, r.video_size
    print(f"{r.video}: {r.frames} frames {vw}x{vh} at {r.fps:g} fps ({a.method} on {device}, "
          f"{'aligned input' if r.aligned else 'faces: ' + r.backend})")
    if (vh, vw) != (h, w):
        keep = f"the PNG frames keep {w}x{h}" if r.frames_dir else f"--frames writes PNGs at {w}x{h}"
        print(f"the input is {w}x{h}: H.264 yuv420p needs even sizes, so the mp4 repeats its last "
              f"odd row/column ({keep})")
    if not r.aligned:
        print(f"all {r.frames} frames restored: face detected in {r.detected}, track interpolated in "
              f"{r.interpolated} (between detections), held in {r.held} (before the first or after "
              f"the last detection)")
    if r.frames_dir:
        print(f"frames: {r.frames_dir}")
    return 0


def cmd_perf(a) -> int:
    import shlex

    from vfr_bench.perf import PerfOptions, run_perf
    opts = PerfOptions(split=a.split, frames=a.frames, device=a.device, out=Path(a.out),
                       methods=None if a.methods == "all" else _csv(a.methods),
                       metrics=None if a.metrics == "all" else _csv(a.metrics),
                       ratios=_csv(a.ratios), clips=a.clips or None, metric_frames=a.metric_frames or None,
                       metric_repeats=a.metric_repeats,
                       dicface_frames=a.dicface_frames, naive_outputs=None if a.full else a.naive_outputs,
                       dicface_method=a.dicface_method, vqfr_method=a.vqfr_method,
                       flair_steps=a.flair_steps, flair_frames=a.flair_frames, flair_size=a.flair_size,
                       command=a.command_line or shlex.join(sys.argv))
    try:
        run_perf(opts)
    except ValueError as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_compare(a) -> int:
    from vfr_bench import compare as C
    from vfr_bench.papers import select, table_names
    if a.render_readme:
        try:
            changed = C.update_readme(Path(a.render_readme))
        except (OSError, ValueError) as e:
            print(f"vfr-bench: error: {a.render_readme}: {e}", file=sys.stderr)
            return 2
        print(f"{a.render_readme}: paper tables {'re-rendered' if changed else 'already up to date'}")
        return 0
    if a.list:
        from vfr_bench.papers import load_table
        for n in table_names():
            t = load_table(n)
            sets = ", ".join(f"{s.name} -> {s.recipe}" for s in t.test_sets)
            print(f"{n:16s} {t.label}: {t.title}\n{'':16s} test sets: {sets}")
        return 0
    if not a.paper:
        print("vfr-bench: error: compare needs --paper NAME (a table, a paper or 'all'; see: vfr-bench compare --list)",
              file=sys.stderr)
        return 2
    tables = select(a.paper)
    try:
        text = C.render(tables, C.compare(tables, Path(a.results)), a.format, a.results)
    except C.CompareError as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    if a.out:
        tmp = Path(a.out).with_name(f".{Path(a.out).name}.tmp")
        tmp.write_text(text)
        tmp.replace(a.out)
        print(f"wrote {a.out}")
    else:
        print(text, end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vfr-bench", description="Video face restoration benchmark")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="run methods on a split and update the leaderboard")
    b.add_argument("--method", default="all", help="NAME[,NAME...] or 'all' (every method whose weights are present)")
    b.add_argument("--split", default="sample")
    b.add_argument("--out", default="results", help="results root: per-clip files and leaderboard.csv")
    b.add_argument("--metrics", default=None, help="METRIC[,METRIC...] (default: every available default metric)")
    b.add_argument("--devices", type=int, default=1, help="devices (processes) per node")
    b.add_argument("--num-nodes", type=int, default=1,
                   help="machines taking part (start one process per node with srun or torchrun; "
                        "--out must be on a shared filesystem)")
    b.add_argument("--accelerator", default="auto")
    b.add_argument("--strategy", default="auto")
    b.add_argument("--num-workers", type=int, default=0, help="clip decoding workers")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a method param")
    b.add_argument("--no-progress", action="store_true")
    b.add_argument("--wandb", choices=["auto", "online", "offline"], default="auto",
                   help="W&B run per (method, split): auto = online if logged in, else offline (under OUT/wandb)")
    b.add_argument("--no-wandb", action="store_true", help="no W&B run")
    b.add_argument("--clips", default=None, help="ID[,ID...]: only these clips (a smoke run; noted in the row)")
    b.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each clip (smoke run)")
    b.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off",
                   help="autocast the methods' forward passes (fp16: CUDA only); recorded in the run key and notes")
    b.add_argument("--fid-ref", default=None, metavar="PATH",
                   help="reference statistics for the FID[ref] column (added to the metrics): .npz with mu/sigma "
                        "(pytorch-fid, torch-fidelity) or VQFR's inception_FFHQ_512.pth (mean/cov)")
    b.set_defaults(func=cmd_bench)

    w = sub.add_parser("weights", help="list, locate, verify or download network files",
                       description="fetch: NAME..., --for METHOD[,...] (the methods' weights plus the "
                                   "default metrics'; 'all' = every method, as `make weights`) or --all "
                                   "(every registry entry). Prints the files, sizes and licenses first "
                                   "(non-commercial ones marked) and never prompts. verify: re-hash against "
                                   "the registry and weights.lock")
    w.add_argument("action", choices=["list", "path", "verify", "fetch"])
    w.add_argument("names", nargs="*")
    w.add_argument("--for", dest="for_", default=None, metavar="METHOD[,...]",
                   help="fetch what these methods (or 'all') and the default metrics need")
    w.add_argument("--all", action="store_true", help="fetch every registry entry")
    w.add_argument("--url", default=None, help="fetch one NAME from this URL instead of its source")
    w.add_argument("--accept-new", action="store_true",
                   help="accept a download whose sha256 differs from its weights.lock record")
    w.add_argument("--no-progress", action="store_true")
    w.set_defaults(func=cmd_weights)

    lb = sub.add_parser("leaderboard", help="ranked tables with bootstrap CIs and paired tests")
    lb.add_argument("--results", default="results", help="results root holding leaderboard.csv")
    lb.add_argument("--split", default=None)
    lb.add_argument("--format", choices=["md", "csv", "html"], default="md")
    lb.add_argument("--out", default=None, help="write to this file instead of stdout")
    lb.add_argument("--plots", default=None, help="folder for PNG charts")
    lb.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    lb.add_argument("--n-boot", type=int, default=2000)
    lb.add_argument("--agreement", action="store_true",
                    help="instead: Spearman rank correlations between metric columns over (method, clip) pairs")
    lb.set_defaults(func=cmd_leaderboard)

    st = sub.add_parser("study", help="blind pairwise user study: export side-by-side clips, score the votes")
    stsub = st.add_subparsers(dest="study_command", required=True)
    se = stsub.add_parser("export", help="restore a split's clips with 2+ methods and write blind side-by-side pairs")
    se.add_argument("--split", required=True, help="split name or folder")
    se.add_argument("--methods", required=True, help="NAME,NAME[,NAME...]")
    se.add_argument("--out", required=True, help="output folder: study/ for participants, key.csv for you")
    se.add_argument("--pairs", type=int, default=None, help="number of (clip, method pair) comparisons (default: all)")
    se.add_argument("--seed", type=int, default=0, help="seeds the choice of pairs, their order and sides")
    se.add_argument("--results", default=None,
                    help="results root: only clips every method finished there (as on the leaderboard)")
    se.add_argument("--max-frames", type=int, default=None, help="only the first N frames of each clip")
    se.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    se.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    se.add_argument("--no-progress", action="store_true")
    se.set_defaults(func=cmd_study)
    ss = stsub.add_parser("score", help="win rates (Wilson intervals) and a Bradley-Terry ranking of the votes")
    ss.add_argument("votes", help="filled pairs.csv (pair_id,choice: left/right); "
                                  "participants' rows may be concatenated")
    ss.add_argument("key", help="key.csv written by study export")
    ss.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    ss.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the votes")
    ss.set_defaults(func=cmd_study)

    sub.add_parser("methods", help="registered methods").set_defaults(func=cmd_methods)
    sub.add_parser("metrics", help="registered metrics").set_defaults(func=cmd_metrics)
    sub.add_parser("splits", help="split recipes (with their papers) and built splits").set_defaults(func=cmd_splits)

    d = sub.add_parser("degrade", help="build a degraded split from a recipe and HQ clips")
    d.add_argument("--recipe", help="recipe name (see: vfr-bench splits) or YAML path")
    d.add_argument("--src", help="built split name (e.g. sample) or folder of frame folders / videos")
    d.add_argument("--out", help="output split folder")
    d.add_argument("--seed", type=int, default=None, help="override the recipe's seed")
    d.add_argument("--workers", type=int, default=1, help="clip processes (output is identical)")
    d.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    d.add_argument("--verify", nargs="?", const=True, default=None, metavar="OUT_DIR",
                   help="re-hash a built split (OUT_DIR or --out) against its manifest")
    d.add_argument("--detector", default="auto", choices=["auto", "retinaface", "mmod", "hog"],
                   help="face detector for unaligned clips without annotation")
    d.add_argument("--aligned", action="store_true",
                   help="the source clips are FFHQ-aligned 512x512 crops: use them as they are (default: "
                        "512x512 clips are checked with landmarks on a few frames, others aligned)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_degrade)
    r = sub.add_parser("restore", help="restore the face in your own video or folder of frames")
    r.add_argument("--method", required=True, help="method name (see: vfr-bench methods)")
    r.add_argument("--input", required=True, help="video file or folder of frames")
    r.add_argument("--output", required=True, help="mp4 to write")
    r.add_argument("--aligned", action="store_true", help="input is FFHQ-aligned 512 face crops (no detection/paste-back)")
    r.add_argument("--frames", action="store_true", help="also write PNG frames to OUTPUT_STEM_frames/")
    r.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda when available")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a method param")
    r.add_argument("--chunk", type=int, default=20, help="frames per restore call (bounds memory)")
    r.add_argument("--detector", default="auto", choices=["auto", "retinaface", "mmod", "hog"])
    r.add_argument("--fps", type=float, default=None, help="frame rate (default: the video's; 25 for frames)")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=cmd_restore)

    pf = sub.add_parser("perf", help="frames/s, memory and time split per method and metric, with the "
                                     "naive/reference ratios (filled weights where checkpoints are absent)")
    pf.add_argument("--split", default="sample")
    pf.add_argument("--frames", type=int, default=2,
                    help="frames of the first clip per method row (and the KEEP/VQFR ratios)")
    pf.add_argument("--methods", default="all", help="NAME[,NAME...], 'all', or '' for no method rows")
    pf.add_argument("--metrics", default="all", help="METRIC[,METRIC...], 'all', or '' for no metric rows")
    pf.add_argument("--ratios", default="dicface,keep,vqfr,metrics,decode,amp",
                    help="comparisons to run: dicface,keep,vqfr,metrics,decode,amp (or '')")
    pf.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    pf.add_argument("--out", default="results/perf.json")
    pf.add_argument("--clips", type=int, default=1, help="clips for the metric rows (0: all)")
    pf.add_argument("--metric-frames", type=int, default=8,
                    help="frames per clip for the metric rows (0: whole clips)")
    pf.add_argument("--metric-repeats", type=int, default=3,
                    help="time each metric row and reference loop at least this many times (and for >= 1 s), keep the best")
    pf.add_argument("--dicface-frames", type=int, default=24, help="clip length of the DicFace ratio")
    pf.add_argument("--naive-outputs", type=int, default=2,
                    help="frames of the clip the naive DicFace path is timed on (each output costs the same)")
    pf.add_argument("--full", action="store_true", help="time the naive DicFace path on every output frame")
    pf.add_argument("--dicface-method", default="dicface",
                    help="method of the DicFace ratio (path=cached vs path=naive)")
    pf.add_argument("--vqfr-method", default="vqfr-v2",
                    help="method of the VQFR ratio (its batch_frames vs batch_frames=1)")
    pf.add_argument("--flair-steps", type=int, default=2, help="diffusion steps of the FLAIR row (official 100)")
    pf.add_argument("--flair-frames", type=int, default=2, help="frames of the FLAIR row's synthetic x8 clip")
    pf.add_argument("--flair-size", type=int, default=128,
                    help="output size of that clip (official 512; the LQ is size/8); small by default for CPU")
    pf.set_defaults(func=cmd_perf, command_line=None)

    cp = sub.add_parser("compare", help="a paper's table beside our leaderboard, cell by cell, with a verdict")
    cp.add_argument("--paper", default=None, help="table (keep-table1), paper (keep: all its tables) or 'all'")
    cp.add_argument("--results", default="results", help="results root holding leaderboard.csv")
    cp.add_argument("--format", choices=["md", "html", "csv"], default="md")
    cp.add_argument("--out", default=None, help="write to this file instead of stdout")
    cp.add_argument("--list", action="store_true", help="list the paper tables")
    cp.add_argument("--render-readme", default=None, metavar="README",
                    help="re-render the paper tables between <!-- papers ... --> markers of this file")
    cp.set_defaults(func=cmd_compare)
    return p


def main(argv=None) -> int:
    from vfr_bench.bench import BenchError
    from vfr_bench.checkpoint import CheckpointError
    from vfr_bench.datasets.splits import SplitError
    from vfr_bench.leaderboard import NoResultsError
    from vfr_bench.results import NotWritableError
    from vfr_bench.weights import MissingWeightsError, WeightsMismatchError
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if argv is not None:
        import shlex
        args.command_line = shlex.join(["vfr-bench", *argv])
    try:
        return args.func(args)
    except (UnknownNameError, BenchError, MissingWeightsError, WeightsMismatchError, ConfigError,
            CheckpointError, SplitError, NotWritableError, NoResultsError) as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
