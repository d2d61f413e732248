"""Running pathways fast, and metering what it costs: the sparse kernels (`kernels`), a network's forward and
backward on them (`sparse_exec`), the whole SAC update on the pathway's entries (`fused_sac`, `sparse_adam`),
batch-1 acting (`sparse_act`) and the energy meter (`energy`).

A layer below ``training/`` (the loops use it) and above ``algos/`` and ``pathways/`` (it runs their
networks); FLOP counting and export, which read finished runs, are in ``efficiency/`` above ``training/``.
"""
