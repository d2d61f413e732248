"""Shared by dqn_throughput.py and ppo_throughput.py: the methods they time side by side, the settings
that make a frozen-pathway variant, and the ratios they print."""

from __future__ import annotations

METHODS = ["sb3", "dense", "dapd", "dapd-frozen", "dapd-frozen-masked"]


def method_settings(method: str, freeze_step: int) -> dict:
    """neuropath settings of a timed method: ``dapd-frozen`` freezes the pathway at ``freeze_step`` and runs
    it on the sparse kernels (``--sparse auto``), ``dapd-frozen-masked`` the same as dense matmuls of W ⊙ m."""
    settings: dict = {"pathway": method.split("-")[0]}
    if method.startswith("dapd-frozen"):
        settings.update(freeze_step=freeze_step, sparse="off" if method.endswith("masked") else "auto")
    return settings


def print_ratios(med: dict[str, float], peer: str, target: str = "") -> None:
    """The ratios between the medians of the methods that were timed; ``peer`` names SB3's algorithm."""
    for a, b, label, note in [("dense", "sb3", f"neuropath dense / SB3 {peer}", target),
                              ("dapd", "dense", "DAPD (warm-up) / dense", ""),
                              ("dapd-frozen", "dense", "DAPD frozen, sparse kernels / dense", ""),
                              ("dapd-frozen-masked", "dense", "DAPD frozen, masked dense / dense", ""),
                              ("dapd-frozen", "dapd-frozen-masked", "sparse kernels / masked dense (frozen)", "")]:
        if a in med and b in med:
            print(f"  {label:40s} = {med[a] / med[b]:.2f}{note}", flush=True)
