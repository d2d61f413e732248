"""``neuropath runs``: one line per run directory under a folder, to find and compare runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import UsageError
from ..training.logging import read_csv
from ..training.run_lock import holder


def runs_table(root: Path) -> str:
    if not root.is_dir():
        raise UsageError(f"folder {str(root)!r} does not exist")
    rows = []
    for cfg_path in sorted(root.rglob("config.yaml")):
        run = cfg_path.parent
        try:
            cfg = yaml.safe_load(cfg_path.read_text())
            r, _ = cfg["run"], cfg["pathway"]      # both sections, or the config is unreadable
        except Exception:  # noqa: BLE001 - a broken run is listed, not fatal
            rows.append((str(run.relative_to(root)), "?", "?", "?", "?", "unreadable config.yaml"))
            continue
        evals = read_csv(run / "metrics.csv")
        last = evals[-1] if evals else None
        has_ckpt = (run / "checkpoints" / "latest").is_file()
        step = int(last["step"]) if last else 0
        pid = holder(run)
        status = ("done" if step >= r["steps"] else "running" + (f" (pid {pid})" if pid else "") if pid is not None
                  else "resumable" if has_ckpt else "no checkpoint")
        ret = ("-" if not last else f"success {float(last['success_mean']):.2f}" if "success_mean" in last
               else f"{float(last['return_mean']):.1f}")
        offline = (cfg.get("offline") or {}).get("dataset")
        algo = r.get("algo") or (cfg.get("offline") or {}).get("algo")     # older configs kept it under offline
        what = (f"{r.get('benchmark') or ''} offline {offline}".strip() if offline
                else r.get("benchmark") or r["env"])
        if algo in ("ppo", "dqn", "iql", "bcq"):
            what += f" ({algo})"
        rows.append((str(run.relative_to(root)), what, pathway_label(cfg),
                     f"{step}/{r['steps']}", ret, f"{status}, {last.get('phase') or 'offline'}" if last else status))
    if not rows:
        return f"no runs under {root}"
    head = ("run", "env", "pathway", "steps", "last eval", "status")
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip() for row in [head, *rows])


def pathway_label(cfg: dict) -> str:
    """``dapd 0.05``, with whatever departs from the defaults: ``dapd+grasp 0.05``, ``npf 0.05 scope member``,
    ``npf 0.05 actor-loss bc`` (so that the variants of one method tell apart in a listing)."""
    p = cfg["pathway"]
    if p["pathway"] == "dense":
        return "dense"
    score = p.get("score", "snip")
    label = p["pathway"] + (f"+{score}" if score != "snip" else "") + f" {p['keep_ratio']}"
    if p.get("scope", "global") != "global":
        label += f" scope {p['scope']}"
    if (cfg.get("offline") or {}).get("npf_actor_loss", "own") != "own":
        label += f" actor-loss {cfg['offline']['npf_actor_loss']}"
    return label

