"""Training on a fixed pathway: one SAC update with sparse kernels vs the dense update.

    python benchmarks/sparse_update.py                      # random 95% global masks, 1 and 2 threads
    python benchmarks/sparse_update.py --run ~/neuropath-bench/learning/HalfCheetah-v5__dapd__s0
    python benchmarks/sparse_update.py --densities 0.02 0.05 0.1 0.2 0.3 0.5   # where sparse stops winning

HalfCheetah-v5 sizes (17 obs, 6 actions), 256×256 actor and twin critic, batch 256. Measured side by
side in one process, interleaved rounds, medians, ms per update:

- ``dense``: the dense network, no masks (what a dense SAC run pays);
- ``masked``: the pathway as ``W ⊙ m`` in dense matmuls (``--sparse off``);
- ``layers``: the pathway through the CSR/SDDMM kernels layer by layer (one autograd node per layer);
- ``sparse``: the same kernels, one autograd node per network (`MaskedMLP`: feature-major activations
  from input to output, bias and ReLU fused), torch's autograd, Adam and Polyak around them;
- ``fused``: the whole update in compiled kernels over the pathway's entries only
  (`engine/fused_sac.FusedSACUpdate`: forwards, backwards, Adam, Polyak; ``--sparse on``/``auto``).

With ``--run``, masks and weights come from that run's latest checkpoint (a frozen DAPD run: the
masks training really ends with); without it, every layer gets a random mask of the given density
(uniform per layer). A per-layer table shows forward+backward of one 256×256 layer at several
densities, which is where ``MAX_DENSITY`` in ``engine/sparse_exec.py`` comes from.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from neuropath.algos.common import Batch
from neuropath.algos.sac import SAC, SACConfig
from neuropath.engine.fused_sac import FusedSACUpdate
from neuropath.engine.kernels import SparsePlan, sparse_linear
from neuropath.engine.sparse_exec import enable_sparse_execution
from neuropath.pathways.masks import copy_masks, density, masked_layers

OBS, ACT, HIDDEN = 17, 6, [256, 256]


def make_sac(run: str | None, keep: float, seed: int) -> SAC:
    torch.manual_seed(seed)
    sac = SAC(OBS, ACT, SACConfig(hidden=HIDDEN))
    if run:
        from neuropath.training import checkpoint
        state = checkpoint.load_state(checkpoint.latest(run))
        sac.load_state_dict(state["algo"], strict=False)
    else:
        for net in (sac.actor, sac.critic):
            for layer in masked_layers(net).values():
                layer.set_mask(torch.rand_like(layer.weight) < keep)
        copy_masks(sac.critic, sac.critic_target)
    return sac


def dense_copy(sac: SAC) -> SAC:
    d = SAC(OBS, ACT, SACConfig(hidden=HIDDEN))
    d.load_state_dict(sac.state_dict())
    for net in (d.actor, d.critic, d.critic_target):
        for layer in masked_layers(net).values():
            layer.use_mask = False
    return d


def batch(seed: int, b: int = 256) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(torch.randn(b, OBS, generator=g), torch.rand(b, ACT, generator=g) * 2 - 1,
                 torch.randn(b, 1, generator=g), torch.randn(b, OBS, generator=g), torch.ones(b, 1))


def time_updates(update, b: Batch, n: int) -> float:
    for _ in range(3):
        update(b)
    t = time.perf_counter()
    for _ in range(n):
        update(b)
    return (time.perf_counter() - t) / n * 1e3


class _Fused:
    """The fused engine with the optimizers it writes into; ``update(b)`` like the others."""

    def __init__(self, sac: SAC) -> None:
        self.sac, self.opts = sac, sac.make_optimizers()
        self.engine = FusedSACUpdate(sac, self.opts)

    def __call__(self, b: Batch):
        out = self.engine.update(b)
        if out is None:
            raise RuntimeError("the fused update declined these masks (too dense?)")
        return out


def update_table(args) -> None:
    masked = make_sac(args.run, args.keep, 0)
    sparse = make_sac(args.run, args.keep, 0)
    enable_sparse_execution(sparse.actor, sparse.critic, sparse.critic_target)
    layers = make_sac(args.run, args.keep, 0)       # the kernels layer by layer, no network-level fusion
    enable_sparse_execution(layers.actor, layers.critic, layers.critic_target, fuse=False)
    fused = make_sac(args.run, args.keep, 0)
    dense = dense_copy(masked)
    print(f"actor density {density(masked.actor):.4f}, critic density {density(masked.critic):.4f}"
          f" ({'masks of ' + args.run if args.run else 'random masks'})")
    b = batch(1)
    for threads in args.threads:
        torch.set_num_threads(threads)
        agents = {"dense": dense, "masked": masked, "layers": layers, "sparse": sparse}
        updates = {k: (lambda bb, a=a, o=a.make_optimizers(): a.update(bb, o)) for k, a in agents.items()}
        updates["fused"] = _Fused(fused)
        times = {k: [] for k in updates}
        for _ in range(args.rounds):
            for k, update in updates.items():
                times[k].append(time_updates(update, b, args.updates))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\n{threads} thread(s), {args.rounds} rounds × {args.updates} updates, ms/update (median; all rounds)")
        for k in updates:
            print(f"  {k:7s} {med[k]:7.2f}   ({', '.join(f'{x:.2f}' for x in times[k])})")
        print(f"  fused vs dense: {med['dense'] / med['fused']:.2f}x   fused vs sparse: {med['sparse'] / med['fused']:.2f}x")
        print(f"  sparse vs dense: {med['dense'] / med['sparse']:.2f}x   sparse vs masked: "
              f"{med['masked'] / med['sparse']:.2f}x   masked vs dense: {med['dense'] / med['masked']:.2f}x   "
              f"fused vs layer by layer: {med['layers'] / med['sparse']:.2f}x")


def layer_table(args) -> None:
    torch.set_num_threads(1)
    print("\nOne 256×256 layer, batch 256, forward + backward (weight and input grads), 1 thread, µs (median of 5)")
    print(f"  {'density':>8s} {'masked dense':>13s} {'sparse':>8s} {'ratio':>6s}")
    x0 = torch.randn(256, 256)
    g = torch.randn(256, 256)
    for d in args.densities:
        w = torch.randn(256, 256, requires_grad=True)
        bias = torch.zeros(256, requires_grad=True)
        m = torch.rand(256, 256) < d
        mf, plan = m.float(), SparsePlan.from_mask(m)
        xT = x0.t().contiguous().requires_grad_(True)      # activations arrive feature-major
        x = xT.t()

        def dense_step():
            torch.nn.functional.linear(x, w * mf, bias).backward(g)

        def sparse_step():
            sparse_linear(x, w, bias, plan).backward(g)

        res = {}
        for name, fn in (("dense", dense_step), ("sparse", sparse_step)):
            for _ in range(5):
                fn()
            runs = []
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(50):
                    fn()
                runs.append((time.perf_counter() - t) / 50 * 1e6)
            res[name] = statistics.median(runs)
        print(f"  {d:8.2f} {res['dense']:13.1f} {res['sparse']:8.1f} {res['dense'] / res['sparse']:6.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="take masks and weights from this run's latest checkpoint")
    p.add_argument("--keep", type=float, default=0.05, help="density of the random masks without --run")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--updates", type=int, default=30)
    p.add_argument("--densities", type=float, nargs="*", default=[0.02, 0.05, 0.1, 0.2, 0.3, 0.5])
    args = p.parse_args()
    update_table(args)
    if args.densities:
        layer_table(args)


if __name__ == "__main__":
    main()
