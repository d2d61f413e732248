"""Export a trained pathway policy to a compact, standalone form (``neuropath export``).

What is exported: the deterministic part of the policy network. SAC: the actor up to the
Gaussian mean (the log-std rows of the last layer are dropped: nothing deterministic reads
them). PPO: the actor's mean (continuous) or logits (discrete, greedy action), with the run's
observation statistics. DQN: the Q-network, its dense convolutions as they are, the greedy
action. Of the fully connected layers only the active weights are kept, in CSR, and dead
units are removed; the layers shrink accordingly. Dead units, removed repeatedly until
nothing changes:

- a hidden unit with no active outgoing weight is dropped with its incoming weights;
- a hidden unit with no active incoming weight outputs ``act(bias)`` whatever the input (act:
  ReLU or tanh): a constant. Its contribution ``W[:, u] * act(b_u)`` is folded into the next
  layer's bias and the unit is dropped. Folding can leave units of the next layer input-less.

The fixed point keeps exactly the hidden units on some active path from an input to a mean
output; the result computes the same function as the masked network (up to float rounding).

OUT is a folder: ``policy.npz`` (the format is described in `compact_policy`), a copy of
``compact_policy.py`` (the loader: numpy and, optionally, numba; no neuropath, no torch)
and ``README.txt``.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UsageError
from ..pathways import MaskedLinear
from . import compact_policy

FORMATS = ("npz",)


@dataclass
class CompactLayers:
    """The result of dead-unit removal: per layer a dense-free CSR triple and its bias."""
    sizes: list[int]
    """obs_dim, the hidden widths after removal, the output width"""
    layers: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
    """(indptr int32, indices int32, data float32, bias float32) per layer, rows = outputs"""
    kept: list[np.ndarray]
    """original indices of the kept hidden units, one array per hidden layer"""
    nnz_before: list[int]
    """active weights per layer in the mask (the exported output rows only)"""
    removed_constant: list[int]
    """hidden units per layer that had no active input (their constant folded into a bias)"""
    removed_no_output: list[int]
    """hidden units per layer dropped for having no active output"""

    @property
    def nnz_after(self) -> list[int]:
        return [len(lay[2]) for lay in self.layers]


def compact_layers(weights: list[np.ndarray], biases: list[np.ndarray], masks: list[np.ndarray],
                   outputs: np.ndarray | None = None, activation: str = "relu") -> CompactLayers:
    """Remove dead units of a masked MLP with ``activation`` (relu or tanh) between layers
    (``weights[k]`` is [out, in]); ``outputs`` are the indices of the last layer's units to keep
    (default: all)."""
    constant = (lambda b: max(b, 0.0)) if activation == "relu" else np.tanh
    n = len(weights)
    m = [np.asarray(mk, bool).copy() for mk in masks]
    w = [np.asarray(wk, np.float32) for wk in weights]
    b = [np.asarray(bk, np.float64).copy() for bk in biases]     # folded in float64, stored float32
    sizes = [w[0].shape[1], *(wk.shape[0] for wk in w)]
    alive = [np.ones(s, bool) for s in sizes]
    if outputs is not None:
        alive[-1][:] = False
        alive[-1][np.asarray(outputs)] = True
    m[-1][~alive[-1]] = False
    nnz_before = [int(mk.sum()) for mk in m]
    n_const = [0] * (n - 1)
    n_no_out = [0] * (n - 1)
    changed = True
    while changed:
        changed = False
        for u in range(1, n):          # hidden unit layer u: output of weight layer u-1, input of u
            has_in = m[u - 1].any(axis=1)
            has_out = m[u].any(axis=0)
            const = alive[u] & ~has_in
            for j in np.flatnonzero(const):
                c = constant(b[u - 1][j])
                if c:
                    b[u] += np.where(m[u][:, j], w[u][:, j], 0.0) * c
            n_const[u - 1] += int(const.sum())
            no_out = alive[u] & has_in & ~has_out
            n_no_out[u - 1] += int(no_out.sum())
            dead = const | no_out
            if dead.any():
                alive[u] &= ~dead
                m[u - 1][dead, :] = False
                m[u][:, dead] = False
                changed = True
    layers = []
    for k in range(n):
        rows, cols = np.flatnonzero(alive[k + 1]), np.flatnonzero(alive[k])
        mk, wk = m[k][np.ix_(rows, cols)], w[k][np.ix_(rows, cols)]
        r, c = np.nonzero(mk)                                   # row-major: CSR order
        indptr = np.zeros(len(rows) + 1, np.int32)
        np.cumsum(np.bincount(r, minlength=len(rows)), out=indptr[1:])
        layers.append((indptr, c.astype(np.int32), wk[r, c].astype(np.float32),
                       b[k][rows].astype(np.float32)))
    return CompactLayers(sizes=[int(a.sum()) for a in alive], layers=layers,
                         kept=[np.flatnonzero(a).astype(np.int32) for a in alive[1:-1]],
                         nnz_before=nnz_before, removed_constant=n_const, removed_no_output=n_no_out)


@dataclass
class ExportedNetwork:
    """What `export_policy` writes, gathered from a policy of any algorithm."""
    linears: list[torch.nn.Module]
    hidden: str                       # relu | tanh (compact_policy.HIDDEN)
    head: str                         # tanh | clip | argmax (compact_policy.HEADS)
    outputs: np.ndarray | None        # rows of the last layer kept (SAC: the mean rows)
    low: np.ndarray
    high: np.ndarray
    env_id: str
    output: str                       # in words, for meta and README
    extra: dict[str, np.ndarray]      # a convolutional torso, observation statistics


def _mlp_linears(net: torch.nn.Sequential, activation: type, where: str) -> list[torch.nn.Module]:
    mods = list(net)
    if len(mods) % 2 == 0 or not all(isinstance(mod, torch.nn.Linear if i % 2 == 0 else activation)
                                     for i, mod in enumerate(mods)):
        raise UsageError(f"export supports policies whose layers are an MLP (Linear, {activation.__name__}, ..., "
                         f"Linear); {where} has {', '.join(type(mod).__name__ for mod in mods)}")
    return mods[::2]


def network_of(policy) -> ExportedNetwork:
    """The exportable network of a SAC `Policy`, a `PPOPolicy` or a `DQNPolicy`."""
    from ..training.loops.dqn import DQNPolicy
    from ..training.loops.ppo import EPS, OBS_CLIP, PPOPolicy
    if isinstance(policy, PPOPolicy):
        actor = policy.algo.actor
        linears = _mlp_linears(actor.net, torch.nn.Tanh, "this PPO actor")
        extra = {}
        if policy.mean is not None:
            extra = {"obs_mean": np.asarray(policy.mean, np.float32),
                     "obs_std": np.sqrt(np.asarray(policy.var, np.float64) + EPS).astype(np.float32),
                     "obs_clip": np.array(OBS_CLIP)}
        if policy.discrete:
            low = high = np.zeros(0, np.float32)
            head, output = "argmax", "argmax of the PPO actor's logits (the most likely action)"
        else:
            low, high = _action_bounds(policy.env_id)
            head, output = "clip", "mean of the PPO Gaussian, clipped to [-1, 1], rescaled to the bounds"
        return ExportedNetwork(linears, "tanh", head, None, low, high, policy.env_id, output, extra)
    if isinstance(policy, DQNPolicy):
        q = policy.algo.q
        convs = [m for m in q.conv if isinstance(m, torch.nn.Conv2d)]
        if any(getattr(m, "use_mask", False) for m in convs):
            raise UsageError("this DQN run masked its convolutions (--mask-conv): export keeps convolutions "
                             "dense, so it would not be the trained network")
        extra: dict[str, np.ndarray] = {"input_shape": np.asarray(policy.algo.obs_shape, np.int64),
                                        "input_scale": np.array(q.scale, np.float32)}
        for k, m in enumerate(convs):
            if m.padding not in ((0, 0), 0, "valid") or m.dilation != (1, 1) or m.groups != 1 \
                    or m.stride[0] != m.stride[1]:
                raise UsageError("export supports unpadded, undilated convolutions with square strides")
            extra.update({f"conv_w_{k}": m.weight.detach().float().cpu().numpy(),
                          f"conv_b_{k}": m.bias.detach().float().cpu().numpy(),
                          f"conv_stride_{k}": np.array(m.stride[0], np.int64)})
        linears = _mlp_linears(q.head, torch.nn.ReLU, "this Q-network's head")
        empty = np.zeros(0, np.float32)
        return ExportedNetwork(linears, "relu", "argmax", None, empty, empty, policy.env_id,
                               "argmax of the Q-values (the greedy action)", extra)
    linears = _mlp_linears(policy.actor.net, torch.nn.ReLU, "this actor")
    act_dim = linears[-1].out_features // 2                        # [mean, log_std] of the tanh Gaussian
    return ExportedNetwork(linears, "relu", "tanh", np.arange(act_dim), np.asarray(policy.low),
                           np.asarray(policy.high), policy.env_id,
                           "mean of the tanh-Gaussian actor (log-std rows dropped): deterministic actions only", {})


def _action_bounds(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    from ..envs.make import make_env
    env = make_env(env_id, actions="any")
    try:
        space = env.unwrapped.action_space
        return np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
    finally:
        env.close()


def export_policy(policy, out: str | Path, fmt: str = "npz", *, source: str | None = None,
                  keep_ratio: float | None = None, step: int | None = None) -> Path:
    """Write ``policy`` (a SAC `neuropath.Policy`, a PPO or a DQN run's policy, with pathway masks)
    to the folder ``out`` in the compact format; returns ``out``."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = _check_out(out)
    spec = network_of(policy)
    linears = spec.linears
    masked = [mod for mod in linears if isinstance(mod, MaskedLinear) and mod.use_mask]
    where = source or "this policy"
    if not masked:
        raise UsageError(f"{where} is dense (its network has no pathway masks): nothing to export "
                         "sparsely; export a run trained with a pathway (e.g. --pathway dapd)")
    if any(mod.tasks != 1 for mod in masked):
        raise UsageError(f"{where} has per-task masks; export supports single-task policies only")
    weights, biases, masks = [], [], []
    with torch.no_grad():
        for mod in linears:
            weights.append(mod.weight.detach().float().cpu().numpy())
            biases.append(mod.bias.detach().float().cpu().numpy() if mod.bias is not None
                          else np.zeros(mod.out_features, np.float32))
            use = isinstance(mod, MaskedLinear) and mod.use_mask
            masks.append(mod.mask[0].cpu().numpy() if use else np.ones(mod.weight.shape, bool))
    if all(mk.all() for mk in masks):
        raise UsageError(f"{where} has all-ones masks (no pathway selected yet): nothing to export sparsely")
    n_out = len(spec.outputs) if spec.outputs is not None else linears[-1].out_features
    comp = compact_layers(weights, biases, masks, outputs=spec.outputs, activation=spec.hidden)
    total = sum(mk.size for mk in masks)
    meta = {
        "format": compact_policy.FORMAT, "version": compact_policy.FORMAT_VERSION,
        "env_id": spec.env_id, "source": source, "step": step, "keep_ratio": keep_ratio,
        "density": float(sum(int(mk.sum()) for mk in masks) / total),
        "hidden": spec.hidden, "head": spec.head, "output": spec.output,
        "action": {"tanh": "low + (tanh(out) + 1) / 2 * (high - low)",
                   "clip": "low + (clip(out, -1, 1) + 1) / 2 * (high - low)", "argmax": "argmax(out)"}[spec.head],
        "conv_layers": sum(1 for k in spec.extra if k.startswith("conv_w_")),
        "obs_normalised": "obs_mean" in spec.extra,
        "sizes_before": [weights[0].shape[1], *(w.shape[0] for w in weights[:-1]), n_out],
        "sizes_after": comp.sizes,
        "nnz_mask": [int(mk.sum()) for mk in masks],
        "nnz_before": comp.nnz_before, "nnz_after": comp.nnz_after,
        "removed_constant": comp.removed_constant, "removed_no_output": comp.removed_no_output,
        "neuropath": _version(),
    }
    arrays = {"format": np.array(compact_policy.FORMAT), "version": np.array(compact_policy.FORMAT_VERSION),
              "meta": np.array(json.dumps(meta)), "sizes": np.array(comp.sizes, np.int64),
              "low": np.asarray(spec.low), "high": np.asarray(spec.high),
              "hidden_act": np.array(compact_policy.HIDDEN.index(spec.hidden), np.int64),
              "head": np.array(compact_policy.HEADS.index(spec.head), np.int64), **spec.extra}
    for k, (indptr, indices, data, bias) in enumerate(comp.layers):
        arrays.update({f"indptr_{k}": indptr, f"indices_{k}": indices, f"data_{k}": data,
                       f"bias_{k}": bias})
    for k, kept in enumerate(comp.kept, start=1):
        arrays[f"kept_{k}"] = kept
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"   # written aside, then renamed
    tmp.mkdir()
    try:
        np.savez(tmp / compact_policy.DATA_FILE, **arrays)
        shutil.copyfile(compact_policy.__file__, tmp / "compact_policy.py")
        (tmp / "README.txt").write_text(_readme(meta))
        if out.is_dir():
            out.rmdir()                                            # empty (checked above)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def export_run(run_dir: str | Path, out: str | Path, fmt: str = "npz") -> Path:
    """Export the policy of a run's latest checkpoint (or of a saved policy file) to the
    folder ``out``; `UsageError` for dense runs, runs without masks, unknown formats and an
    existing non-empty ``out``."""
    from ..policy import load_policy                            # loads MuJoCo etc.: import late
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    _check_out(out)
    run_dir = Path(run_dir)
    keep_ratio = step = None
    if run_dir.is_dir():                                        # a run (else a saved policy file)
        from ..training import checkpoint
        from ..training.run_dir import load_run_config
        from ..kinds import kind_of
        cfg = load_run_config(run_dir)
        kind = kind_of(cfg)
        if not kind.exports:
            raise kind.refusal("export", run_dir)
        if cfg.pathway.pathway == "dense":
            raise UsageError(f"{str(run_dir)!r} is a dense run (pathway 'dense'): nothing to export "
                             "sparsely; export a run trained with a pathway (e.g. --pathway dapd)")
        keep_ratio = cfg.keep_ratio_of(kind.exported_network)
        step = checkpoint.read_meta(checkpoint.latest(run_dir)).get("step")
    policy = load_policy(run_dir)
    return export_policy(policy, out, fmt, source=str(run_dir), keep_ratio=keep_ratio, step=step)


def summary(out: str | Path) -> str:
    """A few lines on an exported folder, for the CLI to print."""
    out = Path(out)
    with np.load(out / compact_policy.DATA_FILE, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
    before, after = meta["sizes_before"], meta["sizes_after"]
    return "\n".join([
        f"exported {meta['env_id']} actor ({meta['density']:.1%} of weights active) to {out}",
        f"  layers {'→'.join(map(str, before))}  →  {'→'.join(map(str, after))} after removing dead units "
        f"(input-less, folded into biases: {meta['removed_constant']}; output-less: {meta['removed_no_output']})",
        f"  active weights per layer {meta['nnz_before']} → {meta['nnz_after']} "
        f"({sum(meta['nnz_after'])} multiply-adds per action in the sparse layers; "
        f"{meta.get('output', 'deterministic mean only')})",
        f"  load without neuropath: sys.path.insert(0, {str(out)!r}); import compact_policy; "
        f"p = compact_policy.load({str(out)!r}); action, _ = p.predict(obs, deterministic=True)",
    ])


def _check_out(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{str(out)!r} already exists and is not an empty folder; choose a new OUT")
    if not out.parent.is_dir():
        raise UsageError(f"the parent folder of {str(out)!r} does not exist")
    return out


def _version() -> str:
    from .._version import __version__
    return __version__


def _readme(meta: dict) -> str:
    sizes = "→".join(map(str, meta["sizes_after"]))
    return f"""A neuropath policy, exported in compact form (format {meta['format']} v{meta['version']}).

Environment: {meta['env_id']}    source run: {meta['source']} (step {meta['step']})
Network: {sizes} (obs → hidden → outputs), {sum(meta['nnz_after'])} active weights, hidden activation
{meta.get('hidden', 'relu')}{f", after {meta['conv_layers']} dense convolutions" if meta.get('conv_layers') else ''}{", on normalised observations" if meta.get('obs_normalised') else ''}.
Output: {meta['output']}; action = {meta['action']}.
Deterministic actions only; they equal the run's policy with deterministic=True.

Load it with numpy (and numba, if installed, for the fast kernel); neuropath and torch are not needed:

    import sys
    sys.path.insert(0, "/path/to/this/folder")
    import compact_policy
    policy = compact_policy.load("/path/to/this/folder")
    action, _ = policy.predict(obs, deterministic=True)    # one observation or a batch of them

policy.npz holds the layers in CSR (indptr_k, indices_k, data_k, bias_k), the action bounds
(low, high), the layer sizes and a JSON "meta" string; compact_policy.py documents the format.
"""
