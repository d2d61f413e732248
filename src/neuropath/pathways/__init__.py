"""Neural pathways, independent of any RL algorithm: masked layers, connection scores,
exact top-k selection, the schedules that decide when a mask changes (DAPD's warm-up and
freeze), dynamic sparse training (SET, RigL, RLx2's drop/grow with ERK allocation) and
`Pathway`, which ties them to one network and its optimizer (`TaskPathway`: one per task of a
multi-task network)."""

from .allocation import DISTRIBUTIONS, layer_counts
from .dst import DST_PRESETS, DSTDefaults, DynamicSparse, cosine_fraction
from .layers import MaskedConv2d, MaskedLinear
from .masks import (active_count, copy_masks, density, get_masks, layer_density, layer_members,
                    masked_layers, set_masks, unmasked, weight_count, zero_masked_weights)
from .multitask import TaskLinear, average_task_grads, merge_task_weights, task_layers, task_mlp
from .methods import DAPD, Dense, MaskUpdate, PathwayMethod, RandomStatic, StaticSNIP, TaskDAPD
from .optim import reset_optimizer_state
from .pathway import Pathway
from .schedule import MaskSchedule, Never, Periodic, SuccessFreeze, WarmupFreeze
from .scores import (DATA_SCORES, SCORES, LossClosure, grad_scores, grasp_scores, magnitude_scores, network_scores,
                     random_scores, snip_scores, synflow_scores)
from .task_pathway import TaskMaskUpdate, TaskPathway
from .topk import SCOPES, keep_count, l1_normalise, task_topk_masks, topk_flat, topk_masks

__all__ = [
    "DISTRIBUTIONS", "DST_PRESETS", "DSTDefaults", "DynamicSparse", "cosine_fraction", "layer_counts",
    "topk_flat", "DAPD", "Dense", "LossClosure", "MaskSchedule", "MaskUpdate", "MaskedConv2d", "MaskedLinear", "Never", "Pathway",
    "PathwayMethod", "Periodic", "RandomStatic", "StaticSNIP", "WarmupFreeze", "active_count",
    "copy_masks", "density", "get_masks", "grad_scores", "keep_count", "l1_normalise",
    "layer_density", "layer_members", "magnitude_scores", "masked_layers", "random_scores", "reset_optimizer_state",
    "set_masks", "snip_scores", "topk_masks", "unmasked", "weight_count", "zero_masked_weights",
    "TaskLinear", "average_task_grads", "merge_task_weights", "task_layers", "task_mlp",
    "DATA_SCORES", "SCOPES", "SCORES", "SuccessFreeze", "TaskDAPD", "TaskMaskUpdate", "TaskPathway", "grasp_scores", "network_scores", "synflow_scores", "task_topk_masks",
]
