"""Training on the pathway itself: a masked linear layer computed over its active weights only.

A fixed mask at 95% sparsity leaves ~5% of a layer's multiply-adds; `W ⊙ m` still pays for all
of them. Here the forward pass is a sparse × dense product (SpMM) over the mask's entries, the
weight gradient is computed only at those entries (a sampled dense-dense product, SDDMM), and the
input gradient is the transposed SpMM. The dense ``weight`` parameter stays the source of truth
(optimizers, checkpoints, DAPD's scoring and DST's regrowth see nothing new): its gradient is the
dense matrix with the SDDMM values at the mask's entries and exact zeros elsewhere, the same
gradient the masked dense layer produces, up to float summation order.

Layout: activations are kept feature-major (``[features, batch]`` contiguous) so the innermost
loops of every kernel run over the batch with unit stride and vectorise. A layer returns
``yT.t()``, a ``[batch, out]`` view of feature-major memory; elementwise ops (ReLU, bias) keep
that layout, so the next sparse layer's ``x.t().contiguous()`` costs nothing. Only the first
layer of a network (observations, concatenations) pays for one small transpose.

Kernels are numba (measured when they were chosen: numba CSR kernels 1.83-1.95x a dense SAC update against
1.27x for torch CSR + ``sampled_addmm``),
compiled on first use and cached on disk. CPU and float32 only; anything else stays dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit


# ---- kernels (feature-major: x^T [in, B], y^T [out, B]) ----------------------------------
# They read the dense weight through a plan's flat indices (no gathered copy), fuse the bias and (in an MLP)
# the ReLU, and write the weight gradient straight into a dense gradient buffer, zero elsewhere.

# Each kernel takes four entries per pass over the batch: the output row (or the gradient row) is read and
# written once per four entries instead of once per entry, which was the bound (L1 loads and stores, not
# FLOPs): measured on a 256x256 layer at 5%, batch 256, 1 thread: forward 100 -> 72 us, transposed
# 143 -> 83 us, SDDMM 78 -> 64 us (benchmarks/RESULTS.md, issue 34). Eight per pass gained nothing more.

@njit(cache=True, nogil=True, inline="always")
def _gather_axpy(row, w, w_idx, src, src_idx, start, end):  # pragma: no cover - compiled
    """row += Σ_p w[w_idx[p]] · src[src_idx[p], :] over p in [start, end), four entries per pass: the forward
    (a row's entries) and the transposed product (a column's) are both this."""
    batch = row.shape[0]
    p = start
    while p + 4 <= end:
        v0, v1, v2, v3 = w[w_idx[p]], w[w_idx[p + 1]], w[w_idx[p + 2]], w[w_idx[p + 3]]
        s0, s1, s2, s3 = src[src_idx[p]], src[src_idx[p + 1]], src[src_idx[p + 2]], src[src_idx[p + 3]]
        for t in range(batch):
            row[t] += (v0 * s0[t] + v1 * s1[t]) + (v2 * s2[t] + v3 * s3[t])
        p += 4
    while p < end:
        v = w[w_idx[p]]
        s = src[src_idx[p]]
        for t in range(batch):
            row[t] += v * s[t]
        p += 1


@njit(cache=True, nogil=True)
def _spmm(indptr, indices, flat, w, bias, xT, yT, relu):  # pragma: no cover - compiled
    """yT[o, :] = relu?(bias[o] + Σ_k w[flat[k]] · xT[indices[k], :]) over row o's entries."""
    n_out, batch = yT.shape
    for o in range(n_out):
        row = yT[o]
        b = bias[o]
        for t in range(batch):
            row[t] = b
        _gather_axpy(row, w, flat, xT, indices, indptr[o], indptr[o + 1])
        if relu:             # x·(x > 0): vectorises, where numba's max() and a branch ran scalar (3× slower)
            for t in range(batch):
                x = row[t]
                row[t] = x * (x > 0.0)


@njit(cache=True, nogil=True, fastmath=True)
def _sddmm(indptr, indices, flat, gyT, xT, gw, gb):  # pragma: no cover - compiled
    """gw[flat[k]] = <gyT[o, :], xT[indices[k], :]> at the mask's entries (gw zero elsewhere), gb = Σ_t gyT."""
    n_out, batch = gyT.shape
    for o in range(n_out):
        g = gyT[o]
        acc_b = np.float32(0.0)
        for t in range(batch):
            acc_b += g[t]
        gb[o] = acc_b
        k, end = indptr[o], indptr[o + 1]
        while k + 4 <= end:
            x0, x1, x2, x3 = xT[indices[k]], xT[indices[k + 1]], xT[indices[k + 2]], xT[indices[k + 3]]
            a0 = a1 = a2 = a3 = np.float32(0.0)
            for t in range(batch):
                gt = g[t]
                a0 += gt * x0[t]
                a1 += gt * x1[t]
                a2 += gt * x2[t]
                a3 += gt * x3[t]
            gw[flat[k]], gw[flat[k + 1]], gw[flat[k + 2]], gw[flat[k + 3]] = a0, a1, a2, a3
            k += 4
        while k < end:
            x = xT[indices[k]]
            acc = np.float32(0.0)
            for t in range(batch):
                acc += g[t] * x[t]
            gw[flat[k]] = acc
            k += 1


@njit(cache=True, nogil=True)
def _spmm_t(col_ptr, col_rows, col_src, w, gyT, gxT, actT, relu):  # pragma: no cover
    """gxT[j, :] = Σ w[col_src[p]] · gyT[col_rows[p], :] over column j's entries, times (actT[j, :] > 0) when
    the input came through a ReLU (the gradient of the previous layer's pre-activation). ``col_src``:
    the entries' places in ``w`` in column order (`SparsePlan.csc_flat` for the dense weight,
    `SparsePlan.col_perm` for a gathered copy of the values)."""
    n_in, batch = gxT.shape
    for j in range(n_in):
        row = gxT[j]
        for t in range(batch):
            row[t] = 0.0
        _gather_axpy(row, w, col_src, gyT, col_rows, col_ptr[j], col_ptr[j + 1])
        if relu:
            a = actT[j]
            for t in range(batch):
                row[t] *= a[t] > 0.0


# ---- the sparsity structure of one mask ----------------------------------------------------

@dataclass
class SparsePlan:
    """CSR (row-major, for the forward and SDDMM) and CSC (for the input gradient) index arrays
    of one boolean mask ``[out, in]``; ``flat`` indexes the entries in the dense weight."""
    shape: tuple[int, int]
    indptr: np.ndarray
    indices: np.ndarray
    col_ptr: np.ndarray
    col_rows: np.ndarray
    col_perm: np.ndarray
    flat: torch.Tensor
    flat_np: np.ndarray | None = None      # ``flat`` as numpy, for the kernels that read the dense weight
    ident: np.ndarray | None = None        # 0..nnz-1: the same kernels over a gathered copy of the values
    csc_flat: np.ndarray | None = None     # ``flat`` in column order: the transposed kernel on the dense weight

    @property
    def nnz(self) -> int:
        return int(self.indices.shape[0])

    @classmethod
    def from_mask(cls, mask: torch.Tensor) -> "SparsePlan":
        m = mask.detach().to("cpu", torch.bool)
        n_out, n_in = m.shape
        rows, cols = m.nonzero(as_tuple=True)                 # row-major order
        rows_np, cols_np = rows.numpy().astype(np.int64), cols.numpy().astype(np.int64)
        indptr = np.zeros(n_out + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows_np, minlength=n_out), out=indptr[1:])
        perm = np.argsort(cols_np, kind="stable")
        col_ptr = np.zeros(n_in + 1, dtype=np.int64)
        np.cumsum(np.bincount(cols_np, minlength=n_in), out=col_ptr[1:])
        flat = rows * n_in + cols
        flat_np = flat.numpy().astype(np.int64)
        return cls((n_out, n_in), indptr, cols_np, col_ptr, rows_np[perm], perm.astype(np.int64), flat,
                   flat_np, np.arange(cols_np.shape[0], dtype=np.int64), np.ascontiguousarray(flat_np[perm]))


def _feature_major(x: torch.Tensor) -> torch.Tensor:
    """``x`` [B, F] as contiguous [F, B] memory (free when x is already a transposed view)."""
    return x.detach().t().contiguous()


class SparseLinearFunction(torch.autograd.Function):
    """y = x @ (W ⊙ m)^T + b computed over the mask's entries; gradients as the masked layer."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                plan: SparsePlan) -> torch.Tensor:
        n_out = plan.shape[0]
        xT = _feature_major(x)
        b = bias.detach() if bias is not None else torch.zeros(n_out)
        yT = torch.empty(n_out, xT.shape[1], dtype=x.dtype)
        # one layer alone: a gathered copy of its values (13 KB at 5% of 256x256) stays in cache across
        # the kernels, where reads through the dense weight measured 12% slower
        values = weight.detach().reshape(-1)[plan.flat]
        _spmm(plan.indptr, plan.indices, plan.ident, values.numpy(), _np(b), xT.numpy(), yT.numpy(), False)
        ctx.save_for_backward(xT, values)
        ctx.plan, ctx.has_bias = plan, bias is not None
        return yT.t()

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        xT, values = ctx.saved_tensors
        plan: SparsePlan = ctx.plan
        gyT = _feature_major(gy)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gxT = torch.empty(plan.shape[1], gyT.shape[1], dtype=gy.dtype)
            _spmm_t(plan.col_ptr, plan.col_rows, plan.col_perm, values.numpy(), gyT.numpy(), gxT.numpy(),
                    xT.numpy(), False)
            gx = gxT.t()
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            gw = torch.zeros(plan.shape, dtype=gy.dtype)
            gb = torch.empty(plan.shape[0], dtype=gy.dtype)
            _sddmm(plan.indptr, plan.indices, plan.flat_np, gyT.numpy(), xT.numpy(), gw.view(-1).numpy(),
                   gb.numpy())
            gw = gw if ctx.needs_input_grad[1] else None
            gb = gb if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None


def sparse_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  plan: SparsePlan) -> torch.Tensor:
    """Functional form; ``x`` [B, in] float32 on the CPU."""
    return SparseLinearFunction.apply(x, weight, bias, plan)


def supported(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether the kernels can run this call (2-D float32 CPU input)."""
    return x.dim() == 2 and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32


# ---- a whole MLP in the kernels' layout (`SparseMLPFunction`) --------------------------------

def _np(t: torch.Tensor) -> np.ndarray:
    """A tensor's memory as a flat numpy array (weights and biases: the kernels index them flat)."""
    return t.detach().contiguous().reshape(-1).numpy()


def mlp_forward(x: torch.Tensor, plans: list[SparsePlan], params: list[torch.Tensor]) -> list[torch.Tensor]:
    """Feature-major activations ``[x^T, h1^T, ..., y^T]`` of an MLP whose hidden layers end in ReLU;
    ``params`` are ``[W0, b0, W1, b1, ...]`` (dense weights, read at the plans' entries)."""
    acts = [x.detach().t().contiguous()]
    last = len(plans) - 1
    for i, plan in enumerate(plans):
        w, b = params[2 * i], params[2 * i + 1]
        yT = torch.empty(plan.shape[0], acts[-1].shape[1], dtype=x.dtype)
        _spmm(plan.indptr, plan.indices, plan.flat_np, _np(w), _np(b), acts[-1].numpy(),
                           yT.numpy(), i < last)
        acts.append(yT)
    return acts


class SparseMLPFunction(torch.autograd.Function):
    """y = MLP(x) over the plans' entries (ReLU between layers): one autograd node for the whole network,
    activations kept feature-major throughout; gradients as the masked dense layers give them."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, plans: list[SparsePlan], *params: torch.Tensor) -> torch.Tensor:
        acts = mlp_forward(x, plans, list(params))
        ctx.save_for_backward(*params)
        ctx.acts, ctx.plans = acts[:-1], plans
        return acts[-1].t()

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        params, acts, plans = ctx.saved_tensors, ctx.acts, ctx.plans
        needs = ctx.needs_input_grad
        grads: list[torch.Tensor | None] = [None] * len(params)
        gyT = gy.t().contiguous()
        for i in reversed(range(len(plans))):
            plan, w = plans[i], params[2 * i]
            xT = acts[i]
            if needs[2 + 2 * i] or needs[3 + 2 * i]:
                gw = torch.zeros(plan.shape, dtype=gy.dtype)
                gb = torch.empty(plan.shape[0], dtype=gy.dtype)
                _sddmm(plan.indptr, plan.indices, plan.flat_np, gyT.numpy(), xT.numpy(),
                                 gw.view(-1).numpy(), gb.numpy())
                grads[2 * i] = gw if needs[2 + 2 * i] else None
                grads[2 * i + 1] = gb if needs[3 + 2 * i] else None
            if i > 0 or needs[0]:
                gxT = torch.empty(plan.shape[1], gyT.shape[1], dtype=gy.dtype)
                _spmm_t(plan.col_ptr, plan.col_rows, plan.csc_flat, _np(w), gyT.numpy(), gxT.numpy(),
                        xT.numpy(), i > 0)
                gyT = gxT
        return (gyT.t() if needs[0] else None, None, *grads)


def sparse_mlp(x: torch.Tensor, plans: list[SparsePlan], params: list[torch.Tensor]) -> torch.Tensor:
    """An MLP of masked layers with ReLU between them, through the kernels; ``x`` [B, in] float32 on the CPU.
    Without autograd (no_grad, or nothing requiring a gradient) only the forward kernels run."""
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return SparseMLPFunction.apply(x, plans, *params)
    return mlp_forward(x, plans, params)[-1].t()
