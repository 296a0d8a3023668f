"""``vfr-bench`` command line: bench, weights, methods, metrics, splits, degrade, restore, perf, study."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vfr_bench.config import ConfigError, parse_override
from vfr_bench.registry import UnknownNameError


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cmd_bench(a) -> int:
    from vfr_bench.bench import BenchOptions, run_bench
    opts = BenchOptions(methods=_csv(a.method), split=a.split, out=Path(a.out), devices=a.devices,
                        accelerator=a.accelerator, strategy=a.strategy,
                        metrics=_csv(a.metrics) if a.metrics else None, num_workers=a.num_workers,
                        overrides=dict(parse_override(s) for s in a.set), progress=not a.no_progress,
                        wandb="off" if a.no_wandb else a.wandb, amp=a.amp,
                        clips=_csv(a.clips) if a.clips else None, max_frames=a.max_frames)
    return run_bench(opts)


def cmd_weights(a) -> int:
    from vfr_bench import weights as W
    if a.action == "list":
        for e in W.REGISTRY:
            state = "present" if W.is_present(e.name) else "missing"
            print(f"{e.name:20s} {state:8s} {e.filename:40s} {e.license}  [{e.used_by}]\n"
                  f"{'':20s} {W.path_of(e)}  <- {e.url}")
        return 0
    if a.action == "path":
        for n in a.names:
            print(W.path_of(W.get(n)))
        return 0
    if a.action == "verify":
        bad = 0
        for n in a.names or [e.name for e in W.REGISTRY if W.is_present(e.name)]:
            try:
                print(f"{n}: ok {W.verify(n)}")
            except (W.MissingWeightsError, W.WeightsMismatchError) as e:
                print(f"{n}: {e}")
                bad += 1
        return 1 if bad else 0
    if a.action == "fetch":
        for n in a.names:
            try:
                print(W.fetch(n, url=a.url))
            except (ConnectionError, W.WeightsMismatchError) as e:
                print(f"{n}: {e}", file=sys.stderr)
                return 1
        return 0
    return 2


def cmd_methods(a) -> int:
    from vfr_bench import weights as W
    from vfr_bench.methods import build_method, method_names, method_spec
    for n in method_names():
        spec = method_spec(n)
        req = build_method(n).required_weights()
        missing = [w for w in req if not W.is_present(w)]
        state = "ready" if not missing else f"missing weights: {', '.join(missing)}"
        print(f"{n:18s} {state:30s} {spec.get('description', '')}")
    return 0


def cmd_metrics(a) -> int:
    from vfr_bench.metrics import DEFAULT_METRICS, build_metric, metric_names
    for n in metric_names():
        m = build_metric(n)
        why = m.unavailable_reason()
        arrow = "higher is better" if m.higher_is_better else "lower is better"
        default = "default" if n in DEFAULT_METRICS else ""
        print(f"{n:20s} {arrow:17s} {default:8s} {'available' if not why else 'unavailable: ' + why}")
    return 0


def cmd_splits(a) -> int:
    from vfr_bench.datasets.recipes import load_recipe, recipe_names
    from vfr_bench.datasets.splits import built_splits
    print("recipes (vfr-bench degrade --recipe NAME --src HQ_DIR --out OUT_DIR):")
    for n in recipe_names():
        r = load_recipe(n)
        print(f"  {n:22s} {r.degradation:18s} {r.description}\n  {'':22s} source: {r.source}")
    print("built splits:")
    for n in built_splits():
        print(f"  {n}")
    return 0


def cmd_degrade(a) -> int:
    from vfr_bench.datasets.build import DegradeError, degrade, verify
    if a.verify is not None:
        root = a.out if a.verify is True else a.verify
        if root is None:
            print("vfr-bench: error: --verify needs OUT_DIR (or --out)", file=sys.stderr)
            return 2
        problems = verify(Path(root))
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
                      overwrite=a.overwrite, progress=not a.no_progress, detector=a.detector)
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
    if not reports:
        print(f"no rows{' for split ' + a.split if a.split else ''} in {Path(a.results) / 'leaderboard.csv'}",
              file=sys.stderr)
        return 1
    text = render(reports, a.format)
    if a.out:
        Path(a.out).write_text(text)
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
    import torch
    from vfr_bench.methods import build_method
    from vfr_bench.restore import restore_video
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    method = build_method(a.method, dict(parse_override(s) for s in a.set)).prepare(device)
    try:
        r = restore_video(method, Path(a.input), Path(a.output), aligned=a.aligned, save_frames=a.frames,
                          chunk=a.chunk, device=device, detector=a.detector, fps=a.fps,
                          progress=not a.no_progress)
    except (FileNotFoundError, ValueError) as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    print(f"{r.video}: {r.frames} frames {r.size[1]}x{r.size[0]} at {r.fps:g} fps ({a.method} on {device}, "
          f"{'aligned input' if r.aligned else 'faces: ' + r.backend})")
    if r.no_face:
        print(f"{len(r.no_face)} frame(s) without a face passed through unchanged: {r.no_face}")
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
                       flair_steps=a.flair_steps, flair_frames=a.flair_frames, flair_size=a.flair_size,
                       command=a.command_line or shlex.join(sys.argv))
    try:
        run_perf(opts)
    except ValueError as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vfr-bench", description="Video face restoration benchmark")
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("bench", help="run methods on a split and update the leaderboard")
    b.add_argument("--method", default="all", help="NAME[,NAME...] or 'all' (every method whose weights are present)")
    b.add_argument("--split", default="sample")
    b.add_argument("--out", default="results", help="results root: per-clip files and leaderboard.csv")
    b.add_argument("--metrics", default=None, help="METRIC[,METRIC...] (default: every available default metric)")
    b.add_argument("--devices", type=int, default=1)
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
    b.set_defaults(func=cmd_bench)

    w = sub.add_parser("weights", help="list, locate, verify or download network files")
    w.add_argument("action", choices=["list", "path", "verify", "fetch"])
    w.add_argument("names", nargs="*")
    w.add_argument("--url", default=None, help="fetch from this URL instead of the registry's")
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
    pf.add_argument("--naive-outputs", type=int, default=1,
                    help="output frames of the naive DicFace path that are timed (each costs the same)")
    pf.add_argument("--full", action="store_true", help="time the naive DicFace path on every output frame")
    pf.add_argument("--flair-steps", type=int, default=2, help="diffusion steps of the FLAIR row (official 100)")
    pf.add_argument("--flair-frames", type=int, default=2, help="frames of the FLAIR row's synthetic x8 clip")
    pf.add_argument("--flair-size", type=int, default=128,
                    help="output size of that clip (official 512; the LQ is size/8); small by default for CPU")
    pf.set_defaults(func=cmd_perf, command_line=None)
    return p


def main(argv=None) -> int:
    from vfr_bench.bench import BenchError
    from vfr_bench.weights import MissingWeightsError
    args = build_parser().parse_args(argv)
    if argv is not None:
        import shlex
        args.command_line = shlex.join(["vfr-bench", *argv])
    try:
        return args.func(args)
    except (UnknownNameError, BenchError, MissingWeightsError, ConfigError) as e:
        print(f"vfr-bench: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
