"""The ``neuropath`` command: train | eval | inspect | runs | presets | sweep | report | flops | export | lottery | dataset.

Every user mistake ends in one line on stderr and exit status 2; nothing on disk is
overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import RunFault, UsageError

EPILOG = "Docs: README.md."
TRAIN_EPILOG = "Docs: README.md. Every setting is also a key of a --preset YAML file (and of a run's config.yaml)."


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (its default prints the whole usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    from .training.config import Config, field_default, setting_choices

    titles = {"run": "run settings",
              "sac": "SAC settings (γ serves every algorithm; τ IQL and BCQ; --hidden, --batch-size IQL)",
              "pathway": "pathway settings", "rlx2": "RLx2 settings (--pathway rlx2)",
              "offline": "offline settings (--dataset: IQL, BCQ, NPF)", "ppo": "PPO settings (--algo ppo)",
              "dqn": "DQN settings (--algo dqn)"}
    groups = {s: p.add_argument_group(titles.get(s, f"{s} settings")) for s in Config.SECTIONS}
    choices = setting_choices()
    for name, (section, f, doc) in Config.fields().items():
        flag = "--" + name.replace("_", "-")
        kind = str(f.type)
        default = field_default(f)
        shown = " ".join(map(str, default)) if isinstance(default, list) else default
        # a docstring that states its own default ("(default: all)") is not given a second one
        help_text = doc if "(default" in doc else (f"{doc} (default: {shown})" if doc else f"(default: {shown})")
        help_text = help_text.replace("%", "%%")
        if kind.startswith("list"):
            groups[section].add_argument(flag, dest=name, nargs="+", metavar="N", default=None, help=help_text)
        elif kind == "bool":
            groups[section].add_argument(flag, dest=name, default=None, action=argparse.BooleanOptionalAction,
                                         help=help_text)
        else:
            # the allowed values are shown, and checked by Config.validate (its messages say more than argparse's)
            metavar = "{" + ",".join(choices[name]) + "}" if name in choices else kind.split(" ")[0].upper()
            groups[section].add_argument(flag, dest=name, default=None, metavar=metavar, help=help_text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuropath", description="Reinforcement learning through neural pathways (DAPD).",
                     epilog=EPILOG)
    from ._version import __version__
    parser.add_argument("--version", action="version", version=f"neuropath {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    t = sub.add_parser("train", help="train an agent (SAC, PPO, DQN; BCQ, IQL offline), dense or through pathways",
                       epilog=TRAIN_EPILOG,
                       description="Train an agent dense or through neural pathways: SAC (default), PPO or DQN on a "
                       "Gymnasium environment, SAC on Meta-World MT10 (--benchmark), IQL or BCQ on an offline "
                       "dataset (--dataset).")
    t.add_argument("--preset", help="a preset name (see `neuropath presets`) or a YAML file")
    t.add_argument("--config", metavar="FILE", help="start a new run from a run's config.yaml (or its run "
                   "directory): the same settings, a new folder unless --run-dir; flags override it")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint "
                   "(only --steps, --device, --threads, --progress may change)")
    t.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")
    _add_config_flags(t)

    e = sub.add_parser("eval", help="evaluate a run's policy", epilog=EPILOG,
                       description="Run a trained policy for some episodes and print the mean return; deterministic "
                       "actions unless --stochastic. Multi-task (MT10) runs report per-task success in "
                       "their metrics.csv (`neuropath inspect`).")
    e.add_argument("run_dir", help="run directory (or a saved policy file)")
    e.add_argument("--episodes", type=int, default=10, help="episodes to run (default: 10)")
    e.add_argument("--seed", type=int, default=0, help="seed of the first episode's environment reset; episode i "
                   "uses seed + i (default: 0)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean")
    e.add_argument("--video", metavar="FILE.mp4|FILE.gif", help="save a video of the episodes (needs rendering)")

    i = sub.add_parser("inspect", help="show a run's pathway: sparsity, updates, freeze", epilog=EPILOG,
                       description="Summarise a run's pathway: density per network and layer, mask updates, "
                       "when and why it froze, and plot them.")
    i.add_argument("run_dir", help="run directory")
    i.add_argument("--plot", metavar="PNG", help="where to write the plot (default: RUN_DIR/pathway.png)")
    i.add_argument("--no-plot", action="store_true", help="print the summary only")
    i.add_argument("--updates", action="store_true", help="list every mask event, not just a summary")

    sub.add_parser("presets", help="list the presets")

    r = sub.add_parser("runs", help="list the runs under a folder: env, method, progress, last return",
                       description="List the runs under a folder (searched recursively): environment, method, "
                       "steps done, last evaluation return, and whether each is finished, running or resumable.")
    r.add_argument("root", nargs="?", default="runs", help="folder to search (default: runs)")

    s = sub.add_parser("sweep", help="run a grid: envs x methods x keep ratios x seeds (local or Ray)",
                       epilog=EPILOG, description="Run every (env, method, keep ratio, seed) of a grid as its "
                       "own run under OUT/runs/. Re-running skips finished runs and resumes interrupted ones; "
                       "`neuropath sweep OUT` with no grid re-runs what OUT/sweep.yaml holds.")
    s.add_argument("out", help="sweep folder (created; an existing sweep is continued or extended)")
    s.add_argument("--envs", nargs="+", help="environment ids, e.g. Hopper-v5 HalfCheetah-v5")
    s.add_argument("--methods", nargs="+", default=["dense", "dapd"],
                   help="pathway methods: dapd dense static random set rigl rlx2, METHOD+SCORE e.g. dapd+grasp (default: dense dapd)")
    s.add_argument("--keep", nargs="+", type=float, default=[0.05], help="keep ratios (default: 0.05)")
    s.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds (default: 0 1 2)")
    s.add_argument("--steps", type=int, default=1_000_000, help="environment steps per run (default: 1000000)")
    s.add_argument("--set", dest="settings", action="append", default=[], metavar="[SCOPE:]KEY=VALUE",
                   help="any train setting for all runs, or for one method/env: --set dapd:freeze_step=60000")
    s.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="runs at a time on this machine (default: all cores)")
    s.add_argument("--threads", type=int, default=1, help="torch threads per run (default: 1; e.g. 2 with --jobs 1 "
                   "on two cores, so that each run finishes in about half the wall time)")
    s.add_argument("--ray", metavar="ADDRESS", help="run as Ray tasks: local (a Ray instance here), auto, "
                   "or HOST:PORT of a cluster head; needs pip install -e \".[ray]\" and a shared filesystem")
    s.add_argument("--dry-run", action="store_true", help="list the runs and their state, run nothing")
    s.add_argument("--report", action="store_true", help="write the report when the sweep is done")

    rp = sub.add_parser("report", help="tables, IQM with CIs and plots of a sweep folder", epilog=EPILOG)
    rp.add_argument("root", nargs="+", help="a sweep folder, or any folder of runs (several: compared in one report)")
    rp.add_argument("--out", help="where to write (default: ROOT/report)")
    rp.add_argument("--reps", type=int, default=2000, help="bootstrap resamples for the CIs (default: 2000)")
    rp.add_argument("--versus", metavar="METHOD", nargs="+", help="the method(s) whose probability of improvement "
                    "the others are measured against, e.g. dapd for a score ablation, or dense rigl rlx2 (default: dense)")
    rp.add_argument("--at", metavar="START:END", nargs="+", default=[], help="also score the runs on their "
                    "evaluations in these step windows, e.g. 250000:300000 (a claim about the middle of the curves); "
                    "unfinished runs that have passed a window's end count in it")

    f = sub.add_parser("flops", help="parameters and FLOPs of a run: forward, per update, whole run, dense vs pathway",
                       epilog=EPILOG)
    f.add_argument("run_dir")
    f.add_argument("--json", action="store_true", help="print the numbers as JSON")

    ov = sub.add_parser("overlap", help="which weights each score would choose: Jaccard of their masks on a SAC run's "
                        "checkpoints", epilog=EPILOG)
    ov.add_argument("run_dir", help="a single-task SAC run (every checkpoint it kept is compared)")
    ov.add_argument("--scores", nargs="+", help="scores to compare (default: all)")
    ov.add_argument("--seed", type=int, default=0, help="seed of the scoring batch and the random score")
    ov.add_argument("--csv", metavar="FILE", help="also write every Jaccard (overall and per layer) as CSV")

    lt = sub.add_parser("lottery", help="draw several pathways from one warm-up state, train each, compare",
                        epilog=EPILOG)
    lt.add_argument("run_dir", help="a single-task dapd run (its latest checkpoint is the starting state)")
    lt.add_argument("--n", type=int, default=3, help="pathways to draw (default: 3)")
    lt.add_argument("--steps", type=int, default=50_000, help="training steps for each draw (default: 50000)")
    lt.add_argument("--out", help="where the draws go (default: RUN_DIR/lottery)")

    d = sub.add_parser("dataset", help="offline datasets in Minari's format: make | list | show", epilog=EPILOG)
    dsub = d.add_subparsers(dest="dataset_command", parser_class=_Parser, metavar="ACTION")
    dm = dsub.add_parser("make", help="make a dataset from a training run")
    dm.add_argument("run_dir", help="a single-task run directory (MuJoCo), or MT10 (scripted policies, per task)")
    dm.add_argument("kind", help="MuJoCo: expert, medium, medium-replay, expert-replay, medium-expert, random; "
                    "MT10: expert, medium, medium-expert")
    dm.add_argument("--transitions", type=int, default=100_000, help="dataset size, per task for MT10 (default: 100000)")
    dm.add_argument("--seed", type=int, default=0)
    dm.add_argument("--id", dest="dataset_id", help="dataset id (default: neuropath/<env>/<kind>-v0)")
    dsub.add_parser("list", help="the local datasets: sizes, returns, reference scores")
    ds = dsub.add_parser("show", help="one dataset: spaces, sizes, how it was made")
    ds.add_argument("dataset_id")

    x = sub.add_parser("export", help="export a pathway policy: active weights only, dead units removed",
                       epilog=EPILOG, description="Write a compact policy (sparse weights, no dead units) that "
                       "loads with numpy alone (numba optional) into the new folder OUT.")
    x.add_argument("run_dir", help="run directory (a masked run)")
    x.add_argument("out", help="folder to create")
    x.add_argument("--format", default="npz", help="file format (npz)")
    return parser


def _train(args: argparse.Namespace) -> int:
    from .training.config import Config

    values = {k: v for k, v in vars(args).items()
              if k in Config.fields() and v is not None}
    from .kinds import Trainer
    if args.resume:
        allowed = {"steps", "device", "threads", "progress"}
        extra = sorted(set(values) - allowed)
        if extra or args.preset or args.config:
            bad = ["preset"] * bool(args.preset) + ["config"] * bool(args.config) + extra
            raise UsageError(f"--resume continues a run with its own config; cannot change "
                             f"{', '.join('--' + b.replace('_', '-') for b in bad)}")
        if "steps" in values:
            Config().set({"steps": values["steps"]}).validate()      # a bad --steps fails here
        trainer = Trainer.resume(args.resume, **{k: v for k, v in values.items() if k in allowed})
    else:
        from .experiments.presets import config_file_values, preset_values

        if args.preset and args.config:
            raise UsageError("--preset and --config each give a whole set of settings: use one")
        cfg = Config()
        preset = preset_values(args.preset) if args.preset else config_file_values(args.config) if args.config else {}
        cfg.set(preset)
        cfg.set(values)
        cfg.validate(given=set(values))      # a flag of another algorithm is refused even at its default value
        if cfg.run.algo == "dqn":
            from .envs.pixels import check_dqn_env
            check_dqn_env(cfg.run.env)
        elif cfg.run.benchmark is None and cfg.offline.dataset is None:
            from .envs.make import check_env_id
            check_env_id(cfg.run.env)
        if args.print_config:
            import yaml
            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            return 0
        trainer = Trainer(cfg)
    return _run_trainer(trainer)


def _run_trainer(trainer) -> int:
    """Train any kind of run to its budget: the same messages for all, Ctrl-C (or SIGTERM) included, after
    which every loop has checkpointed what it could."""
    from .training.checkpoint import checkpoint_root
    print(f"run directory: {trainer.run_dir}", file=sys.stderr)
    try:
        row = trainer.train()
    except KeyboardInterrupt:
        if (checkpoint_root(trainer.run_dir) / "latest").is_file():
            print(f"\nneuropath: interrupted; a checkpoint was saved: continue with "
                  f"`neuropath train --resume {trainer.run_dir}`", file=sys.stderr)
        else:
            print(f"\nneuropath: interrupted before the first checkpoint; none in "
                  f"{trainer.run_dir}: start the run again", file=sys.stderr)
        return 130
    if row:
        print(trainer.result_line(row))
    print(f"run directory: {trainer.run_dir}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .policy import evaluate, load_policy

    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    render = bool(args.video)
    if render and Path(args.video).exists():
        raise UsageError(f"{args.video!r} exists; not overwriting it")
    if render:   # headless MuJoCo rendering: OSMesa (apt: libosmesa6) unless the user chose a backend
        os.environ.setdefault("MUJOCO_GL", "osmesa")
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    try:   # loading builds the environment, which imports the rendering backend: inside the try too
        policy = load_policy(args.run_dir)
        res = evaluate(policy, episodes=args.episodes, seed=args.seed, deterministic=not args.stochastic,
                       render=render)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - rendering backends fail in many ways
        if render:
            raise UsageError(f"cannot render on this machine ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}); install libosmesa6 or set "
                             "MUJOCO_GL=egl on a GPU machine, or drop --video") from None
        raise
    print(f"{policy.env_id}: return {res['return_mean']:.1f} ± {res['return_std']:.1f} over "
          f"{args.episodes} episodes (min {res['return_min']:.1f}, max {res['return_max']:.1f}; "
          f"actor density {policy.density:.3f})")
    if render:
        _write_video(Path(args.video), res["frames"], policy.env_id)
    return 0


def _write_video(path: Path, frames: list, env_id: str) -> None:
    import imageio.v2 as imageio

    try:
        imageio.mimsave(path, frames, fps=30)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"cannot write video {str(path)!r}: {type(exc).__name__} "
                         "(mp4 needs imageio-ffmpeg; .gif always works)") from None
    print(f"video: {path} ({len(frames)} frames of {env_id})")


def _inspect(args: argparse.Namespace) -> int:
    from .experiments.inspect import inspect_run

    plot = None if args.no_plot else Path(args.plot) if args.plot else Path(args.run_dir) / "pathway.png"
    print(inspect_run(Path(args.run_dir), plot, list_updates=args.updates))
    return 0


def _presets(_: argparse.Namespace) -> int:
    from .experiments.presets import list_presets

    for name, desc in list_presets().items():
        print(f"{name:22s} {desc}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from .experiments.runs import runs_table

    print(runs_table(Path(args.root)))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .experiments import sweep

    out = Path(args.out)
    grid = None
    if args.envs:
        grid = sweep.Grid(args.envs, args.methods, args.keep, args.seeds, args.steps, args.settings).validate()
    if args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    specs = sweep.merge_into(out, grid, write=not args.dry_run)
    if args.dry_run:
        for spec in specs:
            print(f"{sweep.status(out / 'runs' / spec.name, int(spec.settings['steps'])):9s}  {spec.name}")
        return 0
    results = sweep.run_sweep(out, specs, jobs=args.jobs, ray_address=args.ray, threads=args.threads)
    failed = sorted(n for n, rc in results.items() if rc != 0)
    if args.report:
        _report(argparse.Namespace(root=[str(out)], out=None, reps=2000, versus=None, at=[]))
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; fix and re-run `neuropath sweep {out}` "
              "(finished runs are kept)", file=sys.stderr)
        return 1
    print(f"sweep done: {out}; `neuropath report {out}` for the comparison")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .experiments.report import write_report

    if args.reps < 100:
        raise UsageError(f"--reps must be >= 100, got {args.reps}")
    windows = []
    for text in getattr(args, "at", []) or []:
        start, colon, end = text.partition(":")
        try:
            windows.append((int(float(start)), int(float(end))))
        except ValueError:
            raise UsageError(f"--at expects START:END in steps, e.g. 250000:300000; got {text!r}") from None
        if not colon:
            raise UsageError(f"--at expects START:END in steps, e.g. 250000:300000; got {text!r}")
    out = write_report([Path(r) for r in args.root], Path(args.out) if args.out else None, reps=args.reps,
                       versus=args.versus, at=windows)
    print((out / "report.md").read_text(), end="")
    print(f"report: {out / 'report.md'}")
    return 0


def _flops(args: argparse.Namespace) -> int:
    import json

    from .efficiency.counted_flops import count_run

    report, text, _ = count_run(args.run_dir)
    print(json.dumps(report.to_dict(), indent=2) if args.json else text)
    return 0


def _overlap(args: argparse.Namespace) -> int:
    from .experiments.score_overlap import format_overlap, overlap_rows, score_overlap, write_csv
    from .training.run_dir import load_run_config

    if args.csv and Path(args.csv).exists():
        raise UsageError(f"{args.csv!r} exists; refusing to overwrite it")
    results = score_overlap(args.run_dir, args.scores, seed=args.seed)
    print(format_overlap(results, load_run_config(Path(args.run_dir)).pathway.keep_ratio))
    if args.csv:
        write_csv(overlap_rows(results), Path(args.csv))
    return 0


def _lottery(args: argparse.Namespace) -> int:
    from .experiments.lottery import run_lottery

    print(run_lottery(Path(args.run_dir), args.n, args.steps, Path(args.out) if args.out else None))
    return 0


def _is_mt10_run(run_dir: str) -> bool:
    from .training.run_dir import load_run_config
    return Path(run_dir).is_dir() and load_run_config(Path(run_dir)).run.benchmark == "MT10"


def _dataset(args: argparse.Namespace) -> int:
    from .data import datasets

    if args.dataset_command == "make" and args.run_dir == "MT10":
        from .data.metaworld_datasets import make_mt10_datasets
        if args.dataset_id:
            raise UsageError("--id names one dataset; MT10 makes one per task (neuropath/mt10/<task>-<kind>-v0)")
        for made in make_mt10_datasets(args.kind, transitions=args.transitions, seed=args.seed):
            print(made)
    elif args.dataset_command == "make" and args.kind == "expert-replay" and _is_mt10_run(args.run_dir):
        from .experiments.make_datasets import make_mt10_replay_datasets
        for made in make_mt10_replay_datasets(args.run_dir, transitions=args.transitions, seed=args.seed):
            print(made)
    elif args.dataset_command == "make":
        from .experiments.make_datasets import make_mujoco_dataset
        made = make_mujoco_dataset(args.run_dir, args.kind, transitions=args.transitions, seed=args.seed,
                                   dataset_id=args.dataset_id)
        print(datasets.show_dataset(made))
    elif args.dataset_command == "list":
        print(datasets.list_datasets())
    elif args.dataset_command == "show":
        print(datasets.show_dataset(args.dataset_id))
    else:
        raise UsageError("neuropath dataset: choose make, list or show (see --help)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .efficiency.export import export_run, summary

    out = export_run(args.run_dir, args.out, fmt=args.format)
    print(summary(out))
    return 0


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt     # SIGTERM (a scheduler, a sweep stopping): checkpoint like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        rc = {"train": _train, "eval": _eval, "inspect": _inspect, "presets": _presets,
              "runs": _runs, "sweep": _sweep, "report": _report, "flops": _flops, "export": _export,
              "lottery": _lottery, "dataset": _dataset, "overlap": _overlap}[args.command](args)
        sys.stdout.flush()          # a reader that left (`| head`) shows here, not as a traceback at exit
        return rc
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())     # nothing more to flush at exit
        return 141                  # 128 + SIGPIPE, what a shell reports for a Unix tool cut off this way
    except UsageError as exc:
        print(f"neuropath: error: {exc}", file=sys.stderr)
        return 2
    except RunFault as exc:
        print(f"neuropath: stopped: {exc}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError) as exc:
        from .training.checkpoint import is_disk_full
        if not is_disk_full(exc):
            raise
        where = f" writing {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"neuropath: stopped: the disk is full{where}; free space and resume (--resume)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args is not None and args.command == "sweep":
            print(f"\nneuropath: interrupted; runs saved checkpoints: `neuropath sweep {args.out}` "
                  "continues the sweep", file=sys.stderr)
        else:
            print("\nneuropath: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
