import pytest
import torch

from neuropath.pathways import MaskedLinear, grad_scores, magnitude_scores, snip_scores


def test_snip_is_weight_times_dense_gradient_by_hand():
    layer = MaskedLinear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -3.0]]))
    layer.set_mask(torch.tensor([[True, False]]))      # the masked weight is still scored
    x = torch.tensor([[1.0, 2.0]])
    # L = (w·x)^2 dense = (2 - 6)^2 = 16; dL/dw = 2(w·x) x = -8 * [1, 2]
    scores = snip_scores(layer, lambda: layer(x).pow(2).sum())
    assert torch.allclose(scores[""], torch.tensor([[16.0, 48.0]]))
    assert layer.use_mask and not layer.force_dense          # mask back on afterwards


def test_grad_scores_use_the_masked_network():
    layer = MaskedLinear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -3.0]]))
    layer.set_mask(torch.tensor([[True, False]]))
    x = torch.tensor([[1.0, 2.0]])
    # masked output = 2; dL/d(w⊙m) = 2·2·x = [4, 8]
    assert torch.allclose(grad_scores(layer, lambda: layer(x).pow(2).sum())[""], torch.tensor([[4.0, 8.0]]))


def test_scoring_leaves_training_gradients_alone():
    layer = MaskedLinear(3, 2)
    layer.weight.grad = torch.full_like(layer.weight, 7.0)
    snip_scores(layer, lambda: layer(torch.randn(4, 3)).sum())
    assert torch.all(layer.weight.grad == 7.0)


def test_magnitude_scores_ignore_the_loss():
    layer = MaskedLinear(3, 2)
    assert torch.equal(magnitude_scores(layer)[""], layer.weight.detach().abs())


# ---- SynFlow and GraSP (issue #10) ---------------------------------------------------------------

def _two_layer(w1, w2):
    from torch import nn
    a, b = MaskedLinear(len(w1[0]), len(w1)), MaskedLinear(len(w2[0]), len(w2))
    with torch.no_grad():
        a.weight.copy_(torch.tensor(w1, dtype=torch.float32))
        b.weight.copy_(torch.tensor(w2, dtype=torch.float32))
        a.bias.fill_(0.3)
        b.bias.fill_(-0.2)
    return nn.Sequential(a, nn.ReLU(), b)


def test_synflow_by_enumerating_paths_and_invariant_to_weight_signs():
    from neuropath.pathways.scores import synflow_scores
    w1, w2 = [[1.0, -2.0], [0.5, 3.0]], [[-4.0, 0.25]]
    net = _two_layer(w1, w2)
    # R = Σ over paths input i → hidden j → output of |w2_j|·|w1_ji|; ∂R/∂|w1_ji| = |w2_j|,
    # ∂R/∂|w2_j| = Σ_i |w1_ji|: score = |θ|·∂R/∂|θ|.
    expected_1 = torch.tensor([[1 * 4.0, 2 * 4.0], [0.5 * 0.25, 3 * 0.25]])
    expected_2 = torch.tensor([[4.0 * 3.0, 0.25 * 3.5]])
    s = synflow_scores(net, keep_ratio=1.0, rounds=1)
    assert torch.allclose(s["0"], expected_1) and torch.allclose(s["2"], expected_2)
    flipped = _two_layer([[-x for x in r] for r in w1], [[-x for x in r] for r in w2])
    assert all(torch.equal(a, b) for a, b in zip(s.values(), synflow_scores(flipped, 1.0, 1).values()))


def test_iterative_synflow_keeps_exactly_k_and_prunes_the_weakest_path_first():
    from neuropath.pathways import topk_masks
    from neuropath.pathways.scores import synflow_scores
    net = _two_layer([[1.0, -2.0], [0.5, 3.0]], [[-4.0, 0.25]])
    s = synflow_scores(net, keep_ratio=0.5, rounds=10)            # 3 of 6 weights
    masks = topk_masks(s, 0.5)
    assert sum(int(m.sum()) for m in masks.values()) == 3
    # the strongest paths go through hidden unit 0 (|w2| = 4): its two inputs and its output weight survive
    assert masks["0"][0].all() and not masks["0"][1].any() and masks["2"][0, 0] and not masks["2"][0, 1]
    assert all(float(x[~m].abs().sum()) == 0.0 for x, m in zip(s.values(), masks.values()))


def test_grasp_is_weight_times_hessian_gradient_product_by_finite_differences():
    from neuropath.pathways.scores import grasp_scores
    torch.manual_seed(0)
    net = _two_layer([[0.7, -0.4, 0.2], [0.1, 0.9, -0.6]], [[0.8, -1.1]]).double()
    net[1] = torch.nn.Tanh()                                        # a smooth network: a Hessian everywhere
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 1, dtype=torch.float64)
    loss = lambda: (net(x) - y).pow(2).mean()                       # noqa: E731
    weights = [net[0].weight, net[2].weight]
    g = [t.detach() for t in torch.autograd.grad(loss(), weights)]
    eps, hg = 1e-5, []

    def grad_at(sign: float):
        with torch.no_grad():
            for w, v in zip(weights, g):
                w.add_(sign * eps * v)
        out = [t.detach() for t in torch.autograd.grad(loss(), weights)]
        with torch.no_grad():
            for w, v in zip(weights, g):
                w.sub_(sign * eps * v)
        return out

    plus, minus = grad_at(1.0), grad_at(-1.0)
    hg = [(p - m) / (2 * eps) for p, m in zip(plus, minus)]
    s = grasp_scores(net, loss)
    assert torch.allclose(s["0"], net[0].weight.detach() * hg[0], atol=1e-7)
    assert torch.allclose(s["2"], net[2].weight.detach() * hg[1], atol=1e-7)


def test_magnitude_does_not_depend_on_the_loss():
    net = _two_layer([[1.0, -2.0]], [[3.0]])
    assert torch.equal(magnitude_scores(net)["0"], torch.tensor([[1.0, 2.0]]))


# ---- per-task scores on a multi-task network in warm-up ----------------------------------------

def _copy_of_task(net, t: int):
    """Task t's copy of a `task_mlp` as an ordinary masked MLP (same weights, same mask)."""
    from torch import nn

    from neuropath.pathways.multitask import TaskLinear
    layers = []
    for m in net:
        if isinstance(m, TaskLinear):
            lin = MaskedLinear(m.in_features, m.out_features).to(m.weight.dtype)
            with torch.no_grad():
                lin.weight.copy_(m.weight[t])
                lin.bias.copy_(m.bias[t])
            if m.use_mask:
                lin.set_mask(m.mask[t])
            layers.append(lin)
        else:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("score", ["snip", "grad", "grasp", "magnitude", "synflow"])
def test_per_task_scores_equal_each_tasks_own_score_of_its_copy(score):
    """One batched pass over the summed loss scores every task as if its copy were scored alone."""
    from torch import nn

    from neuropath.pathways import network_scores
    from neuropath.pathways.multitask import task_mlp
    torch.manual_seed(0)
    net = task_mlp(4, [6, 5], 2, tasks=3).double()
    for i, m in enumerate(net):
        if isinstance(m, nn.ReLU):
            net[i] = nn.Tanh()                                    # smooth: GraSP's Hessian exists
    with torch.no_grad():
        for m in task_layers_of(net):
            m.weight.add_(0.3 * torch.randn_like(m.weight))       # the copies differ, as after warm-up updates
            for t in range(3):
                m.set_mask(torch.rand(m.weight.shape[1:]) < 0.6, t)
    x, y = torch.randn(3, 7, 4, dtype=torch.float64), torch.randn(3, 7, 2, dtype=torch.float64)
    joint = network_scores(score, net, lambda: (net(x) - y).pow(2).mean(1).sum(), keep_ratio=0.3, synflow_rounds=4)
    for t in range(3):
        alone = _copy_of_task(net, t)
        own = network_scores(score, alone, lambda: (alone(x[t]) - y[t]).pow(2).mean(0).sum(), keep_ratio=0.3,
                             synflow_rounds=4)
        for (name, s), o in zip(joint.items(), own.values()):
            assert torch.allclose(s[t].double(), o.double(), rtol=1e-6, atol=1e-12), (score, t, name)


def task_layers_of(net):
    from neuropath.pathways.multitask import task_layers
    return list(task_layers(net).values())


def test_task_dapd_keeps_exactly_k_per_task_with_every_score():
    from neuropath.pathways import SCORES, TaskDAPD
    from neuropath.pathways.multitask import task_mlp
    torch.manual_seed(1)
    x = torch.randn(4, 16, 5)
    for score in SCORES:
        net = task_mlp(5, [8], 3, tasks=4)
        TaskDAPD(0.25, moving_average=2, score=score, synflow_rounds=3).update(net, lambda: net(x).pow(2).sum())
        total = sum(m.weight[0].numel() for m in task_layers_of(net))
        assert [sum(int(m.mask[t].sum()) for m in task_layers_of(net)) for t in range(4)] == [int(0.25 * total)] * 4


@pytest.mark.parametrize("score", ["synflow", "magnitude"])
def test_data_free_scores_choose_the_same_pathway_whatever_the_batch(score):
    """DAPD with a data-free score: two different batches (or none) give the same mask; SNIP's differ."""
    from neuropath.pathways import DAPD, get_masks
    torch.manual_seed(3)
    net = _two_layer([[0.3 * i - 1.0 for i in range(6)] for _ in range(8)], [[0.1 * j - 0.4 for j in range(8)]])
    with torch.no_grad():
        net[0].weight.add_(torch.randn_like(net[0].weight))
    masks = []
    for batch in (torch.randn(16, 6), 5.0 * torch.randn(16, 6) + 3.0, None):
        method = DAPD(0.2, score=score, synflow_rounds=5)
        method.init(net, None if batch is None else (lambda b=batch: net(b).pow(2).sum()))
        masks.append(get_masks(net))
    assert all(torch.equal(masks[0][n], m[n]) for m in masks[1:] for n in masks[0])
    snip = []
    for batch in (torch.randn(16, 6), 5.0 * torch.randn(16, 6) + 3.0):
        DAPD(0.2, score="snip").init(net, lambda b=batch: net(b).pow(2).sum())
        snip.append(get_masks(net))
    assert any(not torch.equal(snip[0][n], snip[1][n]) for n in snip[0])
