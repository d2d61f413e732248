"""The whole SAC update of a pathway in compiled kernels: forwards, backwards, Adam and Polyak over the
pathway's own entries only.

Why: with each network's forward and backward on the sparse kernels (`sparse_exec`), a 95% SAC update
was still ~1.0× the dense one here, because everything around the kernels stayed dense or
per-op: dense gradients allocated and zeroed, fused Adam over all ~140k entries of each network,
Polyak over every target entry, ~460 small torch ops per update, and a cache swept by 4 MB of dense
state before every kernel (benchmarks/RESULTS.md, issue 34). `FusedSACUpdate.update` does what
`SAC.update` does as ~70 calls of numba kernels over preallocated feature-major buffers, and touches
nothing outside the pathway.

The torch tensors stay the source of truth and are written in place (weights, biases, Adam's moments
and step counts, the target critic, log α), so acting, evaluation and everything else that reads the
pathway see current values with no copy. The work skipped is on entries outside the pathway, whose
outcome is known (`sparse_adam`): `sync()` replays it, and must run before anything reads those
entries or the optimizers' state as a whole (a mask update: DAPD scores the dense networks; a
checkpoint; the end of training). The trainer does that.

The engine takes a call only where it computes what `SAC.update` computes: CPU float32, every actor and
Q network a `MaskedMLP` of masked layers with biases and ReLU, masks of at most `MAX_DENSITY`, plain
Adam (no AMSGrad, weight decay or step hooks such as ``--entry-rule own-age``), 1-step batches (RLx2's
n-step targets stay on the torch path), outside `unmasked()`. Otherwise `update` returns None and the
caller runs `SAC.update` (after `sync()`). The random draws are torch's, in the same order and shapes,
so both paths consume the same random stream.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit
from torch import nn

from ..algos.common import Batch
from ..algos.sac import LOG_STD_MAX, LOG_STD_MIN, SAC
from ..pathways import MaskedLinear
from ..pathways.layers import MaskedMLP
from .kernels import SparsePlan, _gather_axpy, _sddmm, _spmm, _spmm_t
from .sparse_adam import adam_entries, bias_corrections, catch_up, lerp_all, lerp_entries
from .sparse_exec import MAX_DENSITY, is_relu_chain, network_density

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_LOG2 = math.log(2.0)


# ---- the SAC-specific pieces between the networks (feature-major: [features, batch]) ------------

@njit(cache=True, nogil=True)
def _tanh_gaussian(headT, epsT, outT, row0, aT, stdT, tlT, logp, lmin, lmax):  # pragma: no cover
    """The actor head [2A, B] (mean; raw log-std) to a squashed sample tanh(u) written into rows
    ``row0..row0+A`` of ``outT`` and its log-probability ``logp`` [B]; keeps tanh(u), the std and
    tanh(raw log-std) for the backward (`SAC`'s `tanh_gaussian_sample`). tanh(u) and softplus(-2u) share
    one exp: with e = exp(-2|u|), tanh(u) = sign(u)(1 - e)/(1 + e) and softplus(-2u) = max(-2u, 0) +
    log1p(e) (torch's threshold form agrees to float rounding): four transcendentals per entry, not five,
    and none in the backward (the head was ~7% of a real run's profile)."""
    act, batch = epsT.shape
    half = 0.5 * (lmax - lmin)
    for t in range(batch):
        logp[t] = 0.0
    for j in range(act):
        for t in range(batch):
            tl = np.tanh(headT[act + j, t])
            ls = lmin + half * (tl + 1.0)
            e = epsT[j, t]
            std = np.exp(ls)
            u = headT[j, t] + e * std
            au = abs(u)
            ex = np.exp(-2.0 * au)
            sp = max(-2.0 * u, 0.0) + np.log1p(ex)
            a = (1.0 - ex) / (1.0 + ex)
            a = a if u >= 0.0 else -a
            logp[t] += -0.5 * e * e - ls - _HALF_LOG_2PI - 2.0 * (_LOG2 - u - sp)
            outT[row0 + j, t] = a
            aT[j, t] = a
            stdT[j, t] = std
            tlT[j, t] = tl


@njit(cache=True, nogil=True)
def _tanh_gaussian_back(gaT, aT, stdT, tlT, epsT, g_logp, gheadT, lmin, lmax):  # pragma: no cover
    """Gradient of the head [2A, B] from the loss's gradient at the action (``gaT`` [A, B]) and at log π
    (``g_logp``, the same for every sample): d log π / du = 2·tanh(u), d tanh(u)/du = 1 - tanh²(u)."""
    act, batch = epsT.shape
    half = 0.5 * (lmax - lmin)
    for j in range(act):
        for t in range(batch):
            a = aT[j, t]
            gu = g_logp * 2.0 * a + gaT[j, t] * (1.0 - a * a)
            gheadT[j, t] = gu
            tl = tlT[j, t]
            gls = -g_logp + gu * epsT[j, t] * stdT[j, t]
            gheadT[act + j, t] = gls * half * (1.0 - tl * tl)


@njit(cache=True, nogil=True)
def _td_target(tq1, tq2, logp, reward, not_done, alpha, gamma, y):  # pragma: no cover
    for t in range(y.shape[0]):
        v = min(tq1[t], tq2[t]) - alpha * logp[t]
        y[t] = reward[t] + not_done[t] * gamma * v


@njit(cache=True, nogil=True)
def _critic_loss_grads(q1, q2, y, g1, g2):  # pragma: no cover
    """mse(q1, y) + mse(q2, y) and its gradients at q1 and q2."""
    batch = y.shape[0]
    s1 = 0.0
    s2 = 0.0
    for t in range(batch):
        d1 = q1[t] - y[t]
        d2 = q2[t] - y[t]
        s1 += d1 * d1
        s2 += d2 * d2
        g1[t] = 2.0 * d1 / batch
        g2[t] = 2.0 * d2 / batch
    return s1 / batch + s2 / batch


@njit(cache=True, nogil=True)
def _actor_loss_grads(q1, q2, logp, alpha, g1, g2):  # pragma: no cover
    """mean(α·log π - min(q1, q2)) and its gradients at q1 and q2 (ties split in half, as torch's min)."""
    batch = logp.shape[0]
    s = 0.0
    gm = -1.0 / batch
    for t in range(batch):
        a, b = q1[t], q2[t]
        s += alpha * logp[t] - min(a, b)
        if a < b:
            g1[t], g2[t] = gm, 0.0
        elif a > b:
            g1[t], g2[t] = 0.0, gm
        else:
            g1[t], g2[t] = 0.5 * gm, 0.5 * gm
    return s / batch


@njit(cache=True, nogil=True)
def _spmm_t_cols(col_ptr, col_rows, col_src, w, gyT, gxT, j0):  # pragma: no cover
    """`kernels._spmm_t` for the input columns ``j0..`` only (the action's, for the actor's loss)."""
    n, batch = gxT.shape
    for j in range(n):
        row = gxT[j]
        for t in range(batch):
            row[t] = 0.0
        _gather_axpy(row, w, col_src, gyT, col_rows, col_ptr[j0 + j], col_ptr[j0 + j + 1])


# ---- one network's pathway, as the engine sees it --------------------------------------------

def _flat(t: torch.Tensor) -> np.ndarray:
    return t.detach().view(-1).numpy()


def _adam_state(opt: torch.optim.Optimizer, p: torch.Tensor) -> dict:
    """``p``'s Adam state, created as torch's Adam creates it when it has none yet (a float32 step count)."""
    state = opt.state[p]
    if len(state) == 0:
        state["step"] = torch.zeros((), dtype=torch.float32)
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return state


class _Net:
    """An MLP's pathway: its layers' CSR plans (from the masks at build time, kept for `sync`) and flat
    numpy views of its weights, biases, their Adam state, and its target copy's."""

    def __init__(self, mlp: MaskedMLP, opt: torch.optim.Optimizer, target: MaskedMLP | None = None,
                 plans: list[SparsePlan] | None = None) -> None:
        self.layers: list[MaskedLinear] = list(mlp)[0::2]
        self.masks = [layer.mask[0].clone() for layer in self.layers]
        self.versions = tuple(layer.mask_version for layer in self.layers)
        self.plans = plans or [SparsePlan.from_mask(m) for m in self.masks]
        self.w = [_flat(layer.weight) for layer in self.layers]
        self.b = [_flat(layer.bias) for layer in self.layers]
        self.bias_idx = [np.arange(b.shape[0], dtype=np.int64) for b in self.b]
        self.sizes = [(layer.out_features, layer.in_features) for layer in self.layers]
        sw = [_adam_state(opt, layer.weight) for layer in self.layers]
        sb = [_adam_state(opt, layer.bias) for layer in self.layers]
        self.mw, self.vw = [_flat(s["exp_avg"]) for s in sw], [_flat(s["exp_avg_sq"]) for s in sw]
        self.mb, self.vb = [_flat(s["exp_avg"]) for s in sb], [_flat(s["exp_avg_sq"]) for s in sb]
        self.steps = [s["step"].numpy() for s in sw + sb]   # 0-d views: += 1 costs ~1 µs where add_ cost ~5
        if target is not None:
            tl = list(target)[0::2]
            self.tw, self.tb = [_flat(layer.weight) for layer in tl], [_flat(layer.bias) for layer in tl]

    def forward(self, xT: np.ndarray, acts: list[np.ndarray], target: bool = False) -> np.ndarray:
        """Activations of every layer into ``acts`` (the last one: the output); ``target``: the target
        copy's values on the same pathway."""
        w, b = (self.tw, self.tb) if target else (self.w, self.b)
        last = len(self.plans) - 1
        for i, plan in enumerate(self.plans):
            _spmm(plan.indptr, plan.indices, plan.flat_np, w[i], b[i], xT, acts[i], i < last)
            xT = acts[i]
        return xT

    def backward(self, xT: np.ndarray, acts: list[np.ndarray], gyT: np.ndarray, gw: list[np.ndarray],
                 gb: list[np.ndarray], gh: list[np.ndarray]) -> None:
        """Weight and bias gradients (pathway order) from the output gradient ``gyT`` (not the input's:
        the TD loss and the actor's loss need none; `input_grad` gives the action's)."""
        for i in reversed(range(len(self.plans))):
            plan = self.plans[i]
            inp = xT if i == 0 else acts[i - 1]
            _sddmm(plan.indptr, plan.indices, plan.ident, gyT, inp, gw[i], gb[i])
            if i > 0:
                _spmm_t(plan.col_ptr, plan.col_rows, plan.csc_flat, self.w[i], gyT, gh[i - 1],
                        acts[i - 1], True)
                gyT = gh[i - 1]

    def input_grad(self, acts: list[np.ndarray], gyT: np.ndarray, gh: list[np.ndarray], gx: np.ndarray,
                   j0: int) -> None:
        """The gradient at input columns ``j0..`` only (no weight gradients)."""
        for i in reversed(range(1, len(self.plans))):
            plan = self.plans[i]
            _spmm_t(plan.col_ptr, plan.col_rows, plan.csc_flat, self.w[i], gyT, gh[i - 1],
                    acts[i - 1], True)
            gyT = gh[i - 1]
        plan = self.plans[0]
        _spmm_t_cols(plan.col_ptr, plan.col_rows, plan.csc_flat, self.w[0], gyT, gx, j0)

    def adam(self, gw: list[np.ndarray], gb: list[np.ndarray], step_size: float, bc2_sqrt: float,
             b1: float, b2: float, eps: float) -> None:
        for i, plan in enumerate(self.plans):
            adam_entries(plan.flat_np, self.w[i], gw[i], self.mw[i], self.vw[i], step_size, bc2_sqrt, b1, b2, eps)
            adam_entries(self.bias_idx[i], self.b[i], gb[i], self.mb[i], self.vb[i], step_size, bc2_sqrt, b1, b2, eps)

    def polyak(self, tau: float) -> None:
        for i, plan in enumerate(self.plans):
            lerp_entries(plan.flat_np, self.tw[i], self.w[i], tau)
            lerp_all(self.tb[i], self.b[i], tau)

    def catch_up(self, steps: np.ndarray, hp: tuple[float, float, float, float], polyak: np.ndarray | None,
                 tau: float) -> None:
        """Replay the skipped Adam steps (step counts ``steps``) and Polyak updates on the entries outside
        the pathway of the masks this net was built with."""
        lr, b1, b2, eps = hp
        step_sizes, bc2 = bias_corrections(steps, b1, b2, lr)
        empty = np.zeros(0, dtype=np.float32)
        for i, mask in enumerate(self.masks):
            target = self.tw[i] if polyak is not None else empty
            flags = polyak if polyak is not None else np.zeros(len(steps), dtype=np.bool_)
            catch_up(mask.view(-1).numpy(), self.w[i], self.mw[i], self.vw[i], step_sizes, bc2, b1, b2, eps,
                     target, flags, tau)


def _adam_hyper(opt: torch.optim.Optimizer) -> tuple[float, float, float, float] | None:
    """(lr, β1, β2, eps) of a plain Adam with one parameter group, else None (the engine declines)."""
    if type(opt) is not torch.optim.Adam or len(opt.param_groups) != 1:
        return None
    g = opt.param_groups[0]
    if g["amsgrad"] or g["weight_decay"] != 0 or g["maximize"] or isinstance(g["lr"], torch.Tensor):
        return None
    if opt._optimizer_step_pre_hooks or opt._optimizer_step_post_hooks:
        return None
    return float(g["lr"]), float(g["betas"][0]), float(g["betas"][1]), float(g["eps"])


def _fusable(mlp: nn.Module) -> bool:
    """A single-task `MaskedMLP` of the shape the kernels compute."""
    return isinstance(mlp, MaskedMLP) and is_relu_chain(mlp) and all(m.tasks == 1 for m in list(mlp)[0::2])


class FusedSACUpdate:
    """`SAC.update` over the pathway's entries (see the module's docstring); `update` returns None where
    it does not apply, `sync` makes the torch state whole again."""

    def __init__(self, sac: SAC, optimizers: dict[str, torch.optim.Optimizer],
                 max_density: float = MAX_DENSITY) -> None:
        self.sac, self.opts, self.max_density = sac, optimizers, max_density
        self.mlps = {"actor": sac.actor.net, "q1": sac.critic.q1, "q2": sac.critic.q2}
        self.static_ok = all(_fusable(m) for m in (*self.mlps.values(), sac.critic_target.q1, sac.critic_target.q2))
        self.nets: dict[str, _Net] | None = None      # None: not built, or synced since
        self._plan_cache: dict[str, tuple[tuple, list[SparsePlan]]] = {}
        self._buffers: dict[int, dict] = {}
        self._log: list[tuple[float, float | None, bool]] = []   # per update since the last sync: critic step, actor step, Polyak
        self.calls = 0                                            # updates it took (tests, benchmarks)

    # ---- when it applies ---------------------------------------------------------------------

    def _hyper(self, b: Batch) -> tuple[tuple, tuple] | None:
        """The critic's and the actor's Adam hyperparameters where the engine computes this update, else None."""
        if not self.static_ok or b.discount is not None or b.obs.device.type != "cpu" or b.obs.dtype != torch.float32:
            return None
        for mlp in self.mlps.values():
            for layer in list(mlp)[0::2]:
                if not layer.use_mask or layer.force_dense or layer.weight.dtype != torch.float32 \
                        or layer.weight.device.type != "cpu":
                    return None
        hp_c, hp_a = _adam_hyper(self.opts["critic"]), _adam_hyper(self.opts["actor"])
        return None if hp_c is None or hp_a is None else (hp_c, hp_a)

    def _build(self) -> bool:
        """Plans and views of the current masks and state; False if a network is too dense to win."""
        if any(network_density([m.mask[0] for m in list(mlp)[0::2]]) > self.max_density for mlp in self.mlps.values()):
            return False
        def plans_of(name: str, mlp: MaskedMLP) -> list[SparsePlan] | None:   # unchanged masks: reuse (a checkpoint)
            versions, plans = self._plan_cache.get(name, ((), None))
            return plans if versions == tuple(layer.mask_version for layer in list(mlp)[0::2]) else None
        sac = self.sac
        self.nets = {"actor": _Net(sac.actor.net, self.opts["actor"], plans=plans_of("actor", sac.actor.net)),
                     "q1": _Net(sac.critic.q1, self.opts["critic"], sac.critic_target.q1, plans_of("q1", sac.critic.q1)),
                     "q2": _Net(sac.critic.q2, self.opts["critic"], sac.critic_target.q2, plans_of("q2", sac.critic.q2))}
        self._buffers = {}
        return True

    def _current(self) -> bool:
        """Whether the built plans are those of the masks now (a mask changed without `sync`: sync now)."""
        if self.nets is None:
            return False
        for name, net in self.nets.items():
            if net.versions != tuple(layer.mask_version for layer in list(self.mlps[name])[0::2]):
                self.sync()
                return False
        return True

    # ---- the update ----------------------------------------------------------------------------

    def _bufs(self, batch: int) -> dict:
        if batch not in self._buffers:
            f = np.float32
            nets = self.nets
            def per_layer(net: _Net) -> list[np.ndarray]:
                return [np.empty((o, batch), f) for o, _ in net.sizes]
            def grads(net: _Net) -> tuple[list, list, list]:
                return ([np.empty(p.nnz, f) for p in net.plans], [np.empty(o, f) for o, _ in net.sizes],
                        [np.empty((o, batch), f) for o, _ in net.sizes[:-1]])
            obs, act = self.sac.obs_dim, self.sac.act_dim
            self._buffers[batch] = {
                "obsT": np.empty((obs, batch), f),
                "xT": np.empty((obs + act, batch), f), "nxT": np.empty((obs + act, batch), f),
                "axT": np.empty((obs + act, batch), f),
                "a_acts": per_layer(nets["actor"]), "q1_acts": per_layer(nets["q1"]), "q2_acts": per_layer(nets["q2"]),
                "t1_acts": per_layer(nets["q1"]), "t2_acts": per_layer(nets["q2"]),
                "a_grads": grads(nets["actor"]), "q1_grads": grads(nets["q1"]), "q2_grads": grads(nets["q2"]),
                "aT": np.empty((act, batch), f), "stdT": np.empty((act, batch), f), "tlT": np.empty((act, batch), f),
                "logp": np.empty(batch, f), "y": np.empty(batch, f), "g1": np.empty((1, batch), f),
                "g2": np.empty((1, batch), f), "ga1": np.empty((act, batch), f), "ga2": np.empty((act, batch), f),
                "gheadT": np.empty((2 * act, batch), f),
            }
        return self._buffers[batch]

    @torch.no_grad()
    def update(self, b: Batch) -> dict[str, torch.Tensor] | None:
        """One SAC update, as `SAC.update` computes it; None (nothing done) where the engine does not apply."""
        hyper = self._hyper(b)
        if hyper is None or (not self._current() and not self._build()):
            return None
        hp_c, hp_a = hyper
        sac, cfg, nets = self.sac, self.sac.cfg, self.nets
        obs_dim, act = sac.obs_dim, sac.act_dim
        batch = b.obs.shape[0]
        B = self._bufs(batch)
        sac.updates += 1
        alpha = float(sac.log_alpha.detach().exp())

        # ---- critic: TD target from the target critic at a sampled next action, then its Adam step
        xT, nxT = B["xT"], B["nxT"]
        xT[:obs_dim] = b.obs.numpy().T
        xT[obs_dim:] = b.action.numpy().T
        nxT[:obs_dim] = b.next_obs.numpy().T
        eps1 = np.ascontiguousarray(torch.randn(batch, act).numpy().T)
        head = nets["actor"].forward(nxT[:obs_dim], B["a_acts"])
        logp = B["logp"]
        _tanh_gaussian(head, eps1, nxT, obs_dim, B["aT"], B["stdT"], B["tlT"], logp, LOG_STD_MIN, LOG_STD_MAX)
        tq1 = nets["q1"].forward(nxT, B["t1_acts"], target=True)[0]
        tq2 = nets["q2"].forward(nxT, B["t2_acts"], target=True)[0]
        y = B["y"]
        _td_target(tq1, tq2, logp, b.reward.numpy().reshape(-1), b.not_done.numpy().reshape(-1), alpha, cfg.gamma, y)
        q1 = nets["q1"].forward(xT, B["q1_acts"])[0]
        q2 = nets["q2"].forward(xT, B["q2_acts"])[0]
        critic_loss = _critic_loss_grads(q1, q2, y, B["g1"][0], B["g2"][0])
        nets["q1"].backward(xT, B["q1_acts"], B["g1"], *B["q1_grads"])
        nets["q2"].backward(xT, B["q2_acts"], B["g2"], *B["q2_grads"])
        step_c = self._step(nets["q1"].steps + nets["q2"].steps)
        size, bc2 = (float(x[0]) for x in bias_corrections(np.array([step_c]), hp_c[1], hp_c[2], hp_c[0]))
        nets["q1"].adam(*B["q1_grads"][:2], size, bc2, *hp_c[1:])
        nets["q2"].adam(*B["q2_grads"][:2], size, bc2, *hp_c[1:])
        out = {"losses/critic": torch.tensor(critic_loss, dtype=torch.float32)}

        # ---- actor and temperature, on the critic just updated
        step_a = None
        if sac.updates % cfg.actor_every == 0:
            obsT = B["obsT"]
            obsT[:] = b.obs.numpy().T
            eps2 = np.ascontiguousarray(torch.randn(batch, act).numpy().T)
            head = nets["actor"].forward(obsT, B["a_acts"])
            axT = B["axT"]
            axT[:obs_dim] = obsT
            _tanh_gaussian(head, eps2, axT, obs_dim, B["aT"], B["stdT"], B["tlT"], logp, LOG_STD_MIN, LOG_STD_MAX)
            q1 = nets["q1"].forward(axT, B["q1_acts"])[0]
            q2 = nets["q2"].forward(axT, B["q2_acts"])[0]
            actor_loss = _actor_loss_grads(q1, q2, logp, alpha, B["g1"][0], B["g2"][0])
            ga1, ga2 = B["ga1"], B["ga2"]
            nets["q1"].input_grad(B["q1_acts"], B["g1"], B["q1_grads"][2], ga1, obs_dim)
            nets["q2"].input_grad(B["q2_acts"], B["g2"], B["q2_grads"][2], ga2, obs_dim)
            ga1 += ga2
            gheadT = B["gheadT"]
            _tanh_gaussian_back(ga1, B["aT"], B["stdT"], B["tlT"], eps2, alpha / batch, gheadT, LOG_STD_MIN, LOG_STD_MAX)
            nets["actor"].backward(obsT, B["a_acts"], gheadT, *B["a_grads"])
            step_a = self._step(nets["actor"].steps)
            size, bc2 = (float(x[0]) for x in bias_corrections(np.array([step_a]), hp_a[1], hp_a[2], hp_a[0]))
            nets["actor"].adam(*B["a_grads"][:2], size, bc2, *hp_a[1:])
            out["losses/actor"] = torch.tensor(actor_loss, dtype=torch.float32)
            mean_logp = float(logp.astype(np.float64).mean())
            if cfg.learn_temperature:
                self._alpha_step(alpha * (-mean_logp - sac.target_entropy))
            out["losses/alpha"] = sac.alpha.detach()
            out["charts/entropy"] = torch.tensor(-mean_logp, dtype=torch.float32)

        polyak = sac.updates % cfg.target_every == 0
        if polyak:
            nets["q1"].polyak(cfg.tau)
            nets["q2"].polyak(cfg.tau)
        self._log.append((step_c, step_a, polyak))
        self.calls += 1
        return out

    @staticmethod
    def _step(steps: list[np.ndarray]) -> float:
        """Advance every parameter's Adam step count (one optimizer steps them together); the new count."""
        for s in steps:
            s += 1
        return float(steps[0])

    def _alpha_step(self, grad: float) -> None:
        """torch's (single-tensor) Adam step of log α with gradient ``grad``."""
        opt = self.opts["alpha"]
        p = self.sac.log_alpha
        g = opt.param_groups[0]
        state = _adam_state(opt, p)
        b1, b2 = g["betas"]
        state["step"] += 1
        t = float(state["step"])
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(torch.tensor(grad, dtype=m.dtype), 1 - b1)
        v.mul_(b2).add_((1 - b2) * grad * grad)
        denom = v.sqrt() / math.sqrt(1 - b2 ** t) + g["eps"]
        p.data.sub_(g["lr"] / (1 - b1 ** t) * m / denom)

    # ---- making the torch state whole ------------------------------------------------------------

    def forget(self) -> None:
        """Drop the views and the record of skipped work without replaying it (the state is replaced)."""
        self._log, self.nets, self._plan_cache = [], None, {}

    def sync(self) -> None:
        """Replay on the entries outside the pathway what the updates since the last sync skipped (Adam's
        zero-gradient steps, Polyak), then forget the views: the next update rebuilds them (the optimizers'
        state may be replaced, the masks changed)."""
        if self.nets is not None and self._log:
            critic_steps = np.array([c for c, _, _ in self._log])
            polyak = np.array([p for _, _, p in self._log], dtype=np.bool_)
            actor_steps = np.array([a for _, a, _ in self._log if a is not None])
            tau = self.sac.cfg.tau
            for name in ("q1", "q2"):
                self.nets[name].catch_up(critic_steps, _adam_hyper(self.opts["critic"]), polyak, tau)
            if len(actor_steps):
                self.nets["actor"].catch_up(actor_steps, _adam_hyper(self.opts["actor"]), None, tau)
        self._log = []
        if self.nets is not None:
            self._plan_cache = {k: (n.versions, n.plans) for k, n in self.nets.items()}
        self.nets = None
