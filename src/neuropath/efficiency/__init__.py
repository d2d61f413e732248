"""Efficiency made real: FLOP accounting, sparse execution, exported pathways, energy.

Depends on `pathways/` (masks) and `algos/` (network shapes); nothing here is needed to train."""
