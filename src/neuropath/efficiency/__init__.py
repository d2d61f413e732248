"""Efficiency accounted for, on finished runs: FLOP counts (one layer-hook counter for every kind,
`counter.py`) and exported pathway policies (active weights only, numpy alone to run them).

A layer above ``training/`` (it reads run directories and rebuilds their networks); the sparse kernels and
the energy meter that the loops use while training are in ``engine/`` below it."""
