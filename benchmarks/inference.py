"""Acting speed of an exported pathway policy against the dense PyTorch policy, in one run.

Every candidate maps a numpy float64 observation (batch 1: [obs_dim]; batch 256:
[256, obs_dim]) to numpy actions in the environment's bounds, deterministic, like
``Policy.predict``:

- ``torch dense``: the same actor as a plain dense network (``use_mask`` off, the masked
  weights baked in), through ``Policy.predict``: the baseline of every ratio;
- ``torch dense, lean``: the same dense network with the least torch around it (mean head
  only, ``inference_mode``), i.e. the best a torch deployment of the dense actor does;
- ``torch masked``: the trained actor as training runs it (``W * mask`` each call);
- ``exported (numba)``: `compact_policy.CompactPolicy.predict`, the shipped default: the
  whole forward pass in one compiled numba call over CSR weights, dead units removed;
- alternatives measured for the choice of kernel: ``exported (numpy)`` (dead units removed,
  the shrunk layers as dense numpy matrices; the loader's fallback without numba),
  ``scipy CSR`` and ``torch CSR`` (``torch.sparse.addmm``) over the same shrunk layers.

Rounds are interleaved (every candidate once per round, at each batch size) so that a slow
moment of the shared machine hits all of them; the median over rounds is printed with the
ratio ``torch dense time / candidate time`` (> 1: faster than dense). Then where the time
goes: torch per layer and its numpy<->tensor conversion, the exported kernel per layer,
numba's call overhead and the Python wrapper. numba's compile time (first load, and a load
from its on-disk cache) is measured outside the timed calls and printed.

torch runs with 1 and then 2 threads (``--threads``); numpy's BLAS runs 1 thread, and the
exported kernel is single-threaded by design, so at 2 threads only torch gains.

    python benchmarks/inference.py                    # ~/neuropath-bench/learning/HalfCheetah-v5__dapd__s0
    python benchmarks/inference.py --run RUN_DIR --rounds 9 --threads 1
    python benchmarks/inference.py --random           # 17→256→256→12 actor, random 95% mask

Targets (issue: export): a 95%-sparse 256×256 SAC actor at ≥ 5× torch dense at batch 1
and ≥ 2.5× at batch 256 on this CPU (FLOP limit 20×).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # numpy's BLAS: 1 thread (before numpy loads)
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DEFAULT_RUN = Path.home() / "neuropath-bench/learning/HalfCheetah-v5__dapd__s0"


def random_policy(obs_dim=17, act_dim=6, hidden=(256, 256), keep=0.05, seed=0):
    """A 17→256→256→12 actor with a random ``keep`` mask per layer (untrained weights)."""
    from neuropath.algos.sac import Actor
    from neuropath.pathways import MaskedLinear
    from neuropath.policy import Policy
    torch.manual_seed(seed)
    actor = Actor(obs_dim, act_dim, list(hidden))
    g = torch.Generator().manual_seed(seed)
    for mod in actor.net:
        if isinstance(mod, MaskedLinear):
            scores = torch.rand(mod.weight.shape, generator=g)
            k = max(1, round(keep * scores.numel()))
            mask = torch.zeros(scores.numel(), dtype=torch.bool)
            mask[scores.flatten().topk(k).indices] = True
            mod.set_mask(mask.view_as(scores))
    return Policy(actor, -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32), "random")


def dense_copy(policy):
    """The same function as a plain dense network: masked weights baked in, masks off."""
    from neuropath.pathways import MaskedLinear
    from neuropath.policy import Policy
    actor = copy.deepcopy(policy.actor)
    with torch.no_grad():
        for mod in actor.net:
            if isinstance(mod, MaskedLinear):
                mod.weight.copy_(mod.effective_weight())
                mod.use_mask = False
    return Policy(actor, policy.low, policy.high, policy.env_id)


def lean_torch(policy):
    """The dense network with the least torch around it: mean head only, no log-std, no
    autograd bookkeeping (``inference_mode``), bounds in one numpy multiply-add."""
    net, act = policy.actor.net, len(policy.low)
    half = ((policy.high - policy.low) / 2).astype(np.float32)
    mid = (policy.low + half).astype(np.float32)

    def predict(obs):
        with torch.inference_mode():
            x = torch.from_numpy(np.asarray(obs, np.float32))
            a = torch.tanh(net(x.reshape(-1, x.shape[-1]))[:, :act]).numpy()
        a = a * half + mid
        return a[0] if x.dim() == 1 else a
    return predict


class ScipyCSR:
    """The exported (shrunk) layers as scipy CSR matrices, activations [units, batch]."""

    def __init__(self, cp):
        import scipy.sparse as sp
        self.layers = [(sp.csr_matrix((cp.layers[k][2], cp.layers[k][1], cp.layers[k][0]),
                                      shape=(cp.sizes[k + 1], cp.sizes[k])), cp.layers[k][3][:, None])
                       for k in range(cp.n_layers)]
        self.scale, self.shift = cp._scale, cp._shift

    def predict(self, obs):
        x = np.asarray(obs, np.float32)
        h = x.reshape(-1, x.shape[-1]).T
        for k, (w, b) in enumerate(self.layers):
            h = w @ h + b
            if k < len(self.layers) - 1:
                np.maximum(h, 0, out=h)
        a = np.tanh(h.T) * self.scale + self.shift
        return a[0] if x.ndim == 1 else a


class TorchCSR:
    """The exported (shrunk) layers as torch sparse CSR tensors (``torch.sparse.addmm``)."""

    def __init__(self, cp):
        self.layers = []
        for k in range(cp.n_layers):
            ip, ix, d, b = cp.layers[k]
            w = torch.sparse_csr_tensor(torch.from_numpy(ip.astype(np.int64)), torch.from_numpy(ix.astype(np.int64)),
                                        torch.from_numpy(d), size=(cp.sizes[k + 1], cp.sizes[k]),
                                        check_invariants=False)
            self.layers.append((w, torch.from_numpy(b)[:, None]))
        self.scale, self.shift = torch.from_numpy(cp._scale), torch.from_numpy(cp._shift)

    @torch.inference_mode()
    def predict(self, obs):
        x = torch.as_tensor(obs, dtype=torch.float32)
        h = x.reshape(-1, x.shape[-1]).T
        for k, (w, b) in enumerate(self.layers):
            h = torch.sparse.addmm(b, w, h)
            if k < len(self.layers) - 1:
                h = h.relu_()
        a = (torch.tanh(h.T) * self.scale + self.shift).numpy()
        return a[0] if x.dim() == 1 else a


def per_call_us(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def interleaved(cands: dict, calls: int, rounds: int) -> dict[str, float]:
    """Median µs per call of every candidate, rounds interleaved."""
    for fn in cands.values():
        fn()                                                     # warm
    times = {k: [] for k in cands}
    for _ in range(rounds):
        for k, fn in cands.items():
            times[k].append(per_call_us(fn, calls))
    return {k: statistics.median(v) for k, v in times.items()}


def kernel_prefix(cp, k: int):
    """Arguments of the exported kernel running only the first ``k`` layers, each with its
    ReLU: a last layer of width 0 closes the network, so no tanh is timed."""
    stop = np.array([[cp.sizes[k], 0, 0, 0, 0]], np.int64)
    return (*cp._cat, np.ascontiguousarray(np.concatenate([cp._layout[:k], stop])),
            np.ones(0, np.float32), np.zeros(0, np.float32))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=DEFAULT_RUN, help="a trained pathway run to export")
    ap.add_argument("--random", action="store_true", help="a random 95%%-sparse 17→256→256→12 actor instead")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts")
    ap.add_argument("--calls1", type=int, default=2000, help="calls per round at batch 1")
    ap.add_argument("--calls256", type=int, default=100, help="calls per round at batch 256")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")

    from neuropath.efficiency.export import export_policy, export_run
    from neuropath.policy import load_policy

    tmp = Path(tempfile.mkdtemp(prefix="np-inference-"))
    out = tmp / "exported"
    if args.random or not args.run.exists():
        if not args.random:
            print(f"no run at {args.run}: using a random 95% mask (--random)")
        masked = random_policy()
        export_policy(masked, out, source="random")
        source = "random 95% mask, untrained"
    else:
        masked = load_policy(args.run)
        export_run(args.run, out)
        source = str(args.run)
    dense = dense_copy(masked)

    sys.path.insert(0, str(out))                               # load as a user would: no neuropath
    import compact_policy
    if compact_policy._forward_numba is None:
        raise SystemExit("numba does not import here: this benchmark times the numba kernel")
    t0 = time.perf_counter()
    exported = compact_policy.load(out)                        # compiles (first use of this folder)
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    compact_policy.load(out)
    t_cached = time.perf_counter() - t0
    exported_np = compact_policy.load(out, kernel="numpy")
    scipy_csr, torch_csr = ScipyCSR(exported), TorchCSR(exported)

    lins = [m for m in dense.actor.net if isinstance(m, torch.nn.Linear)]
    sizes_before = [lins[0].in_features] + [m.out_features for m in lins]
    print(f"policy: {source}")
    print(f"actor {'→'.join(map(str, sizes_before))}, {masked.density:.1%} of weights active; exported "
          f"{'→'.join(map(str, exported.sizes))} (mean only), {exported.nnz} active weights "
          f"(the dense actor: {sum(m.weight.numel() for m in lins)} multiply-adds)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch "
          f"{torch.__version__}, numpy {np.__version__}, numba "
          f"{getattr(sys.modules.get('numba'), '__version__', 'absent')}")
    print(f"numba compile at first load: {t_compile:.2f} s; load from numba's disk cache: "
          f"{t_cached * 1e3:.0f} ms (both outside the timed calls)")

    rng = np.random.default_rng(0)
    obs = {1: rng.normal(size=sizes_before[0]), 256: rng.normal(size=(256, sizes_before[0]))}
    cands = {
        "torch dense": lambda o: dense.predict(o, deterministic=True)[0],
        "torch dense, lean": lean_torch(dense),
        "torch masked": lambda o: masked.predict(o, deterministic=True)[0],
        "exported (numba)": lambda o: exported.predict(o)[0],
        "exported (numpy)": lambda o: exported_np.predict(o)[0],
        "scipy CSR": scipy_csr.predict,
        "torch CSR": torch_csr.predict,
    }
    for b, o in obs.items():                                    # every candidate computes the same
        ref = masked.predict(o, deterministic=True)[0]
        err = max(float(np.abs(fn(o) - ref).max()) for fn in cands.values())
        assert err < 1e-4, f"batch {b}: a candidate differs from the masked policy by {err}"

    results = {}
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            print(f"\n== torch threads: {threads} (numpy BLAS 1 thread; exported kernel single-threaded) ==")
            for b, calls in ((1, args.calls1), (256, args.calls256)):
                res = interleaved({k: (lambda fn=fn, o=obs[b]: fn(o)) for k, fn in cands.items()},
                                  calls, args.rounds)
                base = res["torch dense"]
                print(f"batch {b}: µs per call (median of {args.rounds} interleaved rounds), "
                      "× = torch dense / candidate")
                for k, v in res.items():
                    per_obs = f"  ({v / b:.2f} µs per observation)" if b > 1 else ""
                    print(f"  {k:18s} {v:9.1f} µs  {base / v:5.2f}×{per_obs}")
                breakdown(dense, exported, compact_policy, obs[b], res, calls, args.rounds)
                results[threads, b] = (base / res["exported (numba)"],
                                       res["torch dense, lean"] / res["exported (numba)"])
    finally:
        torch.set_num_threads(args.threads[0])
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nexported (numba) vs torch dense (Policy.predict) and vs torch dense, lean:")
    for (t, b), (x, y) in results.items():
        print(f"  batch {b:3d}, torch {t} thread(s): {x:5.1f}×, {y:5.1f}× (target {5.0 if b == 1 else 2.5}×)")


def breakdown(dense, exported, compact_policy, obs, res, calls, rounds) -> None:
    """Where the time goes: torch per layer and its conversions; the exported kernel per
    layer, numba's call overhead and the Python wrapper."""
    import numba

    @numba.njit
    def noop(x, a, b, c, d, e, f, g, out):
        return None

    b = len(obs) if obs.ndim == 2 else 1
    x = torch.as_tensor(obs, dtype=torch.float32).reshape(b, -1)
    f = np.ascontiguousarray(obs, np.float32).reshape(b, -1)
    out = np.empty((b, exported.act_dim), np.float32)
    kernel = compact_policy._forward_numba
    full = (*exported._cat, exported._layout, exported._scale, exported._shift)
    parts = {"torch net": lambda: dense.actor.net(x)}
    for m in (m for m in dense.actor.net if isinstance(m, torch.nn.Linear)):
        xi = torch.zeros(b, m.in_features)
        parts[f"F.linear {m.in_features}→{m.out_features}"] = lambda m=m, xi=xi: F.linear(xi, m.weight, m.bias)
    parts["kernel"] = lambda: kernel(f, *full, out)
    for k in range(1, exported.n_layers + 1):
        pre, buf = kernel_prefix(exported, k), np.empty((b, 0), np.float32)
        parts[f"prefix {k}"] = lambda pre=pre, buf=buf: kernel(f, *pre, buf)
    parts["noop"] = lambda: noop(f, *full, out)
    with torch.no_grad():
        r = interleaved(parts, calls, rounds)
    base, t_net = res["torch dense"], r["torch net"]
    print(f"  where the time goes (batch {b}):")
    print(f"    torch dense: predict {base:.1f} µs = network on tensors {t_net:.1f} + numpy↔tensor, chunk, "
          f"tanh, bounds {base - t_net:.1f}; per layer (F.linear): "
          + ", ".join(f"{k.split()[-1]} {v:.1f}" for k, v in r.items() if k.startswith("F.linear")))
    t_k, t_noop, t_pred = r["kernel"], r["noop"], res["exported (numba)"]
    print(f"    exported: predict {t_pred:.1f} µs = Python wrapper (dtype, shape, output) {t_pred - t_k:.1f} "
          f"+ numba call overhead {t_noop:.1f} + kernel work {t_k - t_noop:.1f} "
          f"({(t_k - t_noop) * 1e3 / (exported.nnz * b):.2f} ns per active weight and observation)")
    prev, per_layer = t_noop, []
    for k in range(1, exported.n_layers + 1):
        t = r[f"prefix {k}"]
        per_layer.append(f"{exported.sizes[k - 1]}→{exported.sizes[k]} ({len(exported.layers[k - 1][2])} weights) "
                         f"{t - prev:.1f}")
        prev = t
    print("    exported kernel per layer with its ReLU, µs (differences of prefixes; the first includes "
          "reading the input): " + ", ".join(per_layer) + f"; tanh + bounds {t_k - prev:.1f}")


if __name__ == "__main__":
    main()
