"""Energy of a run: measured where the hardware exposes it, otherwise stated as a model.

Measured: with the optional extra ``pip install -e ".[energy]"`` (zeus), NVML energy counters on an
NVIDIA GPU (``measured-nvml``) and Intel/AMD RAPL counters on the CPU where they are readable
(``measured-rapl``: usually root-only, absent in most VMs and containers).
Otherwise nothing is measured (``none``) and two stated models stand in, both normalised to the
dense run of the same environment so no wattage has to be assumed:

- ``flop-derived``: energy ∝ training FLOPs (`efficiency.flops`; the paper's "20×" is this model);
- ``cpu-time``: energy ∝ the process's CPU seconds at constant per-core power — a measurement of
  work actually done, so it shows what sparse execution really saves and FLOPs alone do not.

Every run records cumulative ``cpu_seconds`` (always) and ``energy_j`` (when measured) with its
``energy_mode`` in ``metrics.csv``; `neuropath report` plots performance against energy.
"""

from __future__ import annotations

import time

import torch


class EnergyMeter:
    """Joules used by this process's device since `start()`; ``mode`` says how (or ``none``)."""

    WINDOW = "neuropath-run"

    def __init__(self, device: torch.device) -> None:
        self.mode = "none"
        self._monitor = None
        self._joules = 0.0
        self._cpu0 = time.process_time()
        try:
            from zeus.monitor import ZeusMonitor     # optional extra: neuropath[energy]
        except ImportError:
            return
        try:
            if device.type == "cuda":
                index = device.index if device.index is not None else torch.cuda.current_device()
                self._monitor = ZeusMonitor(gpu_indices=[index])
                self.mode = "measured-nvml"
            else:
                self._monitor = ZeusMonitor(gpu_indices=[], cpu_indices=[0])
                self.mode = "measured-rapl"
        except Exception:  # noqa: BLE001 - no readable counter: fall back to the models
            self._monitor, self.mode = None, "none"

    def start(self) -> "EnergyMeter":
        self._cpu0 = time.process_time()
        if self._monitor is not None:
            self._monitor.begin_window(self.WINDOW)
        return self

    def cpu_seconds(self) -> float:
        """CPU seconds of this process (all threads) since `start()`."""
        return time.process_time() - self._cpu0

    def joules(self) -> float | None:
        """Measured joules since `start()`, or None when nothing is measured."""
        if self._monitor is None:
            return None
        m = self._monitor.end_window(self.WINDOW)
        self._monitor.begin_window(self.WINDOW)
        self._joules += float(getattr(m, "total_energy", None) or
                              sum((getattr(m, "gpu_energy", None) or {}).values()) +
                              sum((getattr(m, "cpu_energy", None) or {}).values()))
        return self._joules
