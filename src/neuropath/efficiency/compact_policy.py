"""A compact, exported pathway policy: only the active weights, dead units removed.

This file stands alone: it imports numpy and, when installed, numba, and nothing of
neuropath or torch. ``neuropath export`` copies it next to the data it writes, so that an
exported policy loads without the training code::

    import sys; sys.path.insert(0, "OUT")        # the exported folder
    import compact_policy
    policy = compact_policy.load("OUT")           # the folder or OUT/policy.npz
    action, _ = policy.predict(obs, deterministic=True)

The format (``policy.npz``, numpy's zip of arrays, read with ``allow_pickle=False``)
-------------------------------------------------------------------------------------
``format``   the string ``"neuropath-compact-policy"``; ``version``: 2 (see `FORMAT_VERSION`; 1 = a
             SAC actor, read as hidden ``relu`` and head ``tanh``).
``meta``     a JSON string: env id, keep ratio, measured density, source run and step, the
             layer widths and active-weight counts before and after dead-unit removal.
``sizes``    int64 [L+1]: obs_dim, the hidden widths after removal, act_dim.
``indptr_k``, ``indices_k`` (int32), ``data_k`` (float32)
             layer k (k = 0..L-1) in CSR, rows = output units, columns = input units: the
             active weights only.
``bias_k``   float32 [sizes[k+1]]: the bias, with the constant output of removed
             input-less units folded in.
``kept_k``   int32, k = 1..L-1: the original index of each hidden unit that was kept.
``low``, ``high``  the environment's action bounds (continuous heads).
``hidden_act`` int: 0 = ReLU (SAC, DQN), 1 = tanh (PPO) after every hidden layer.
``head``     int: what the last layer's outputs become (deterministic actions only):
             0 = ``low + (tanh(out) + 1) / 2 * (high - low)`` (SAC: the mean of the tanh-Gaussian;
             its log-std rows were dropped at export), 1 = the same with ``clip(out, -1, 1)`` for
             tanh (PPO's Gaussian mean), 2 = ``argmax(out)`` (DQN's Q-values, PPO's logits).
Optional, applied to the observation before the layers, in this order:
``conv_w_k``, ``conv_b_k``, ``conv_stride_k`` (k = 0..C-1; with ``input_scale`` and
             ``input_shape`` [channels, height, width]): a dense convolutional torso (DQN), each
             convolution without padding and followed by ReLU, its output flattened in C order.
``obs_mean``, ``obs_std``, ``obs_clip``
             running observation statistics (PPO): ``clip((obs - mean) / std, -clip, clip)``.

Kernels
-------
``numba`` (the default when numba imports): the whole forward pass, every layer with its
bias, ReLU, tanh and the rescaling to the action bounds, runs in one compiled call, so a
batch-1 call pays Python's call overhead once, not once per layer. Batches run in tiles of
`TILE` observations with activations stored feature-major, so the inner loop over a tile is
contiguous and vectorised. The first call compiles (seconds); the compiled code is cached
on disk (``cache=True``: ``__pycache__`` next to this file, else ``NUMBA_CACHE_DIR``) and
`load` warms it up, so the first ``predict`` is already fast.
``numpy``: the fallback without numba: the shrunk layers as small dense matrices.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "neuropath-compact-policy"
FORMAT_VERSION = 2
HEADS = ("tanh", "clip", "argmax")
HIDDEN = ("relu", "tanh")
DATA_FILE = "policy.npz"
TILE = 64
"""observations per tile of the batched numba kernel"""

try:  # numba is optional: without it the numpy kernel runs
    import numba as _numba
except Exception:  # noqa: BLE001 - any failure to import numba means "no numba"
    _numba = None


def _jit(fn):
    try:
        return _numba.njit(cache=True, nogil=True)(fn)
    except Exception:  # noqa: BLE001 - no writable cache location: compile per process
        return _numba.njit(nogil=True)(fn)


def _forward(x, indptr, indices, data, bias, layout, scale, shift, out, hidden_act, head):
    """The whole network for x [B, obs] float32 into out [B, act] float32: ``hidden_act`` 0 ReLU,
    1 tanh; ``head`` 0 tanh then bounds, 1 clip to [-1, 1] then bounds, 2 raw outputs.

    ``layout`` is int64 [L, 5]: (in width, out width, indptr offset, nnz offset, bias
    offset) of each layer in the concatenated arrays. ``indptr`` and ``indices`` are uint32
    and each layer's arrays are sliced once, so every index inside the loops is provably
    non-negative and numba emits no negative-index wraparound checks (1.6x at batch 1)."""
    n_layers = layout.shape[0]
    batch = x.shape[0]
    width = 0
    for k in range(n_layers):
        width = max(width, layout[k, 0], layout[k, 1])
    if batch == 1:  # one observation: sparse dot products, no tiles
        h = np.empty(width, np.float32)
        g = np.empty(width, np.float32)
        for i in range(layout[0, 0]):
            h[i] = x[0, i]
        for k in range(n_layers):
            n_out, p0, z0, b0 = layout[k, 1], layout[k, 2], layout[k, 3], layout[k, 4]
            ptr = indptr[p0:p0 + n_out + 1]
            d = data[z0:z0 + ptr[n_out]]
            ix = indices[z0:z0 + ptr[n_out]]
            b = bias[b0:b0 + n_out]
            last = k == n_layers - 1
            for j in range(n_out):
                acc = b[j]
                for q in range(ptr[j], ptr[j + 1]):
                    acc += d[q] * h[ix[q]]
                if last:
                    if head == 0:
                        out[0, j] = scale[j] * np.tanh(acc) + shift[j]
                    elif head == 1:
                        out[0, j] = scale[j] * min(max(acc, np.float32(-1.0)), np.float32(1.0)) + shift[j]
                    else:
                        out[0, j] = acc
                elif hidden_act == 0:
                    g[j] = acc if acc > 0.0 else np.float32(0.0)
                else:
                    g[j] = np.tanh(acc)
            h, g = g, h
        return
    # A batch: tiles of TILE observations, activations feature-major [unit, tile], so that
    # each active weight is one contiguous, vectorised multiply-add over the tile.
    h2 = np.empty((width, TILE), np.float32)
    g2 = np.empty((width, TILE), np.float32)
    for t0 in range(0, batch, TILE):
        tw = min(TILE, batch - t0)
        for i in range(layout[0, 0]):
            for c in range(tw):
                h2[i, c] = x[t0 + c, i]
        for k in range(n_layers):
            n_out, p0, z0, b0 = layout[k, 1], layout[k, 2], layout[k, 3], layout[k, 4]
            ptr = indptr[p0:p0 + n_out + 1]
            d = data[z0:z0 + ptr[n_out]]
            ix = indices[z0:z0 + ptr[n_out]]
            b = bias[b0:b0 + n_out]
            last = k == n_layers - 1
            for j in range(n_out):
                row = g2[j]
                bj = b[j]
                for c in range(tw):
                    row[c] = bj
                for q in range(ptr[j], ptr[j + 1]):
                    w = d[q]
                    src = h2[ix[q]]
                    for c in range(tw):
                        row[c] += w * src[c]
                if last:
                    for c in range(tw):
                        if head == 0:
                            out[t0 + c, j] = scale[j] * np.tanh(row[c]) + shift[j]
                        elif head == 1:
                            out[t0 + c, j] = scale[j] * min(max(row[c], np.float32(-1.0)), np.float32(1.0)) + shift[j]
                        else:
                            out[t0 + c, j] = row[c]
                elif hidden_act == 0:
                    for c in range(tw):
                        if row[c] < 0.0:
                            row[c] = 0.0
                else:
                    for c in range(tw):
                        row[c] = np.tanh(row[c])
            h2, g2 = g2, h2


_forward_numba = _jit(_forward) if _numba is not None else None


class CompactPolicy:
    """An exported deterministic policy with Stable-Baselines3's ``predict``.

    ``kernel``: ``"numba"`` (one compiled call for the whole forward pass), ``"numpy"``
    (the shrunk layers as dense matrices) or ``"auto"`` (numba when it imports)."""

    def __init__(self, arrays: dict, kernel: str = "auto", warmup: bool = True) -> None:
        if kernel == "auto":
            kernel = "numba" if _forward_numba is not None else "numpy"
        if kernel not in ("numba", "numpy"):
            raise ValueError(f"unknown kernel {kernel!r}: choose 'auto', 'numba' or 'numpy'")
        if kernel == "numba" and _forward_numba is None:
            raise ValueError("kernel 'numba' needs numba, which does not import here")
        self.kernel = kernel
        self.meta = json.loads(str(arrays["meta"]))
        self.sizes = [int(s) for s in arrays["sizes"]]
        self.obs_dim, self.act_dim = self.sizes[0], self.sizes[-1]
        self.n_layers = len(self.sizes) - 1
        self.hidden_act = int(arrays["hidden_act"]) if "hidden_act" in arrays else 0    # version 1: SAC
        self.head = int(arrays["head"]) if "head" in arrays else 0
        if self.hidden_act not in (0, 1) or self.head not in (0, 1, 2):
            raise ValueError(f"unknown hidden activation {self.hidden_act} or head {self.head}")
        self.discrete = self.head == 2
        self.convs = [(np.ascontiguousarray(arrays[f"conv_w_{k}"], dtype=np.float32),
                       np.ascontiguousarray(arrays[f"conv_b_{k}"], dtype=np.float32), int(arrays[f"conv_stride_{k}"]))
                      for k in range(sum(1 for name in arrays if name.startswith("conv_w_")))]
        self.input_shape = tuple(int(v) for v in arrays["input_shape"]) if self.convs else None
        self.input_scale = np.float32(arrays["input_scale"]) if self.convs else None
        self.obs_mean = np.asarray(arrays["obs_mean"], np.float32) if "obs_mean" in arrays else None
        self.obs_std = np.asarray(arrays["obs_std"], np.float32) if "obs_mean" in arrays else None
        self.obs_clip = float(arrays["obs_clip"]) if "obs_mean" in arrays else None
        self.low = np.asarray(arrays["low"])
        self.high = np.asarray(arrays["high"])
        if not self.discrete and (self.low.shape != (self.act_dim,) or self.high.shape != (self.act_dim,)):
            raise ValueError(f"action bounds of shape {self.low.shape} do not fit act_dim {self.act_dim}")
        self.env_id = self.meta.get("env_id")
        self.layers = []  # (indptr, indices, data, bias) per layer
        for k in range(self.n_layers):
            indptr = np.ascontiguousarray(arrays[f"indptr_{k}"], dtype=np.int32)
            indices = np.ascontiguousarray(arrays[f"indices_{k}"], dtype=np.int32)
            data = np.ascontiguousarray(arrays[f"data_{k}"], dtype=np.float32)
            bias = np.ascontiguousarray(arrays[f"bias_{k}"], dtype=np.float32)
            n_in, n_out = self.sizes[k], self.sizes[k + 1]
            # The compiled kernel does not check bounds: a corrupt file must fail here.
            if (indptr.shape != (n_out + 1,) or bias.shape != (n_out,) or indptr[0] != 0
                    or indptr[-1] != len(data) or len(indices) != len(data) or (np.diff(indptr) < 0).any()
                    or (len(indices) and (indices.min() < 0 or indices.max() >= n_in))):
                raise ValueError(f"layer {k} of the compact policy is inconsistent with sizes {self.sizes}")
            self.layers.append((indptr, indices, data, bias))
        # Bounds folded into one multiply-add after tanh: low + (a + 1)/2 (high - low).
        half = (self.high.astype(np.float64) - self.low) / 2 if not self.discrete else np.ones(self.act_dim)
        self._scale = half.astype(np.float32)
        self._shift = ((self.low + half) if not self.discrete else np.zeros(self.act_dim)).astype(np.float32)
        self._unit_scale = np.ones(self.act_dim, np.float32)
        self._unit_shift = np.zeros(self.act_dim, np.float32)
        # numba: every layer concatenated, plus a layout table; numpy: dense shrunk matrices.
        self._cat = (np.concatenate([lay[0] for lay in self.layers]).astype(np.uint32),
                     np.concatenate([lay[1] for lay in self.layers]).astype(np.uint32),
                     np.concatenate([lay[2] for lay in self.layers]),
                     np.concatenate([lay[3] for lay in self.layers]))
        layout = np.zeros((self.n_layers, 5), np.int64)
        p = z = b = 0
        for k, (indptr, _, data, bias) in enumerate(self.layers):
            layout[k] = (self.sizes[k], self.sizes[k + 1], p, z, b)
            p, z, b = p + len(indptr), z + len(data), b + len(bias)
        self._layout = layout
        self._dense = [(self.dense_weight(k).T.copy(), self.layers[k][3]) for k in range(self.n_layers)]
        if warmup:  # compile (or load the cached code) now, not inside the first predict
            shape = self.input_shape if self.convs else (self.obs_dim,)
            self.act_unit(np.zeros((2, *shape), np.float32))
            self.act_unit(np.zeros(shape, np.float32))

    @property
    def nnz(self) -> int:
        """Active weights stored (= multiply-adds per observation)."""
        return sum(len(lay[2]) for lay in self.layers)

    def dense_weight(self, k: int) -> np.ndarray:
        """Layer ``k``'s weight as a dense [out, in] float32 matrix (of the shrunk layer)."""
        indptr, indices, data, _ = self.layers[k]
        w = np.zeros((self.sizes[k + 1], self.sizes[k]), np.float32)
        rows = np.repeat(np.arange(self.sizes[k + 1]), np.diff(indptr))
        w[rows, indices] = data
        return w

    def _run(self, x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        out = np.empty((x.shape[0], self.act_dim), np.float32)
        if self.kernel == "numba":
            _forward_numba(x, *self._cat, self._layout, scale, shift, out, self.hidden_act, self.head)
            return out
        h = x
        for k, (wt, b) in enumerate(self._dense):
            h = h @ wt
            h += b
            if k < self.n_layers - 1:
                if self.hidden_act == 0:
                    np.maximum(h, 0.0, out=h)
                else:
                    np.tanh(h, out=h)
        if self.head == 2:
            return h.astype(np.float32)
        if self.head == 0:
            np.tanh(h, out=h)
        else:
            np.clip(h, -1.0, 1.0, out=h)
        np.multiply(h, scale, out=out)
        out += shift
        return out

    def _torso(self, x: np.ndarray) -> np.ndarray:
        """The dense convolutions (ReLU after each, no padding) on [B, C, H, W], flattened."""
        x = x * self.input_scale
        for w, b, stride in self.convs:
            win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))[:, :, ::stride, ::stride]
            x = np.maximum(np.einsum("bchwij,ocij->bohw", win, w, optimize=True) + b[None, :, None, None], 0.0)
        return np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)

    def _input(self, observation) -> tuple[np.ndarray, bool]:
        x = np.asarray(observation, dtype=np.float32)
        if self.convs:
            single = x.ndim == 3
            x = x[None] if single else x
            if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
                raise ValueError(f"observation of shape {np.shape(observation)} does not fit this policy "
                                 f"(input {self.input_shape}; give [C, H, W] or [batch, C, H, W])")
            return self._torso(x), single
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.obs_dim:
            raise ValueError(f"observation of shape {np.shape(observation)} does not fit this policy "
                             f"(obs_dim {self.obs_dim}; give [obs_dim] or [batch, obs_dim])")
        if self.obs_mean is not None:                      # the training run's observation statistics
            x = np.clip((x - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip).astype(np.float32)
        if not (x.flags.c_contiguous and x.flags.writeable):  # else numba compiles a new variant
            x = np.array(x, order="C")
        return x, single

    def act_unit(self, observation, deterministic: bool = True):
        """Action in [-1, 1] (continuous heads) or the action index (argmax) for one observation or a batch."""
        _deterministic_only(deterministic)
        x, single = self._input(observation)
        a = self._run(x, self._unit_scale, self._unit_shift)
        if self.discrete:
            idx = a.argmax(1)
            return int(idx[0]) if single else idx
        return a[0] if single else a

    def predict(self, observation, state=None, episode_start=None,
                deterministic: bool = False) -> tuple[np.ndarray, None]:
        """SB3's signature and default: the action in the environment's bounds, and no state. Only the
        deterministic action is exported, so a call must say ``deterministic=True`` (as SB3's
        ``evaluate_policy`` does); the default, SB3's stochastic one, is refused rather than silently
        answered with the mean."""
        _deterministic_only(deterministic)
        x, single = self._input(observation)
        a = self._run(x, self._scale, self._shift)
        if self.discrete:
            idx = a.argmax(1)
            return (int(idx[0]) if single else idx), None
        return (a[0] if single else a), None

    def __repr__(self) -> str:
        return (f"CompactPolicy({self.env_id!r}, sizes={self.sizes}, nnz={self.nnz}, "
                f"kernel={self.kernel!r})")


def _deterministic_only(deterministic: bool) -> None:
    if not deterministic:
        raise ValueError("this exported policy is deterministic-only (the Gaussian mean or the greedy action; "
                         "nothing stochastic is exported): call predict(obs, deterministic=True)")


def load(path, kernel: str = "auto", warmup: bool = True) -> CompactPolicy:
    """Load an exported policy: the export folder or its ``policy.npz``."""
    path = Path(path)
    if path.is_dir():
        path = path / DATA_FILE
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    if str(arrays.get("format", "")) != FORMAT:
        raise ValueError(f"{str(path)!r} is not a {FORMAT} file")
    version = int(arrays["version"])
    if version > FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has format version {version}; this loader reads up to "
                         f"{FORMAT_VERSION}")
    return CompactPolicy(arrays, kernel=kernel, warmup=warmup)
