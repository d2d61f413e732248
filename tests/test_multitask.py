"""Per-task pathways in one network: warm-up copies, the merge at freeze, overlapped-gradient averaging."""

import pytest
import torch

from neuropath.pathways.multitask import (TaskLinear, average_task_grads, merge_task_weights, task_layers,
                                          task_mlp)


def _two_task_layer() -> TaskLinear:
    layer = TaskLinear(3, 2, tasks=2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[[1., 2., 3.], [4., 5., 6.]],
                                         [[10., 20., 30.], [40., 50., 60.]]]))
        layer.bias.copy_(torch.tensor([[1., 2.], [3., 4.]]))
    layer.set_mask(torch.tensor([[1, 1, 0], [0, 1, 0]]), task=0)
    layer.set_mask(torch.tensor([[1, 0, 0], [0, 1, 1]]), task=1)      # overlap at (0,0) and (1,1); (1,0) in none
    return layer


def test_forward_runs_each_task_through_its_own_copy_and_mask():
    layer = _two_task_layer()
    x = torch.tensor([[[1., 1., 1.]], [[1., 1., 1.]]])                  # [T=2, B=1, in=3]
    y = layer(x)
    assert y.tolist() == [[[1 + 1 + 2, 2 + 5]], [[3 + 10, 4 + 50 + 60]]]
    with pytest.raises(ValueError, match="expects"):
        layer(torch.ones(1, 3))


def test_merge_at_freeze_equals_the_formula():
    layer = _two_task_layer()
    merge_task_weights(torch.nn.Sequential(layer))
    # W = Σ m_t W_t / max(1, Σ m_t); entries in no pathway: the mean of the copies
    expected = torch.tensor([[(1 + 10) / 2, 2., (3 + 30) / 2], [(4 + 40) / 2, (5 + 50) / 2, 60.]])
    assert torch.equal(layer.weight[0], expected) and torch.equal(layer.weight[1], expected)
    assert torch.equal(layer.bias, torch.tensor([[2., 3.], [2., 3.]])) and layer.shared


def test_overlapped_gradients_are_averaged_over_the_tasks_that_hold_the_entry():
    layer = _two_task_layer()
    layer.merge()
    x = torch.tensor([[[1., 2., 3.]], [[-1., 5., 7.]]])
    layer(x).sum().backward()
    g0 = torch.tensor([[1., 2., 0.], [0., 2., 0.]])                     # x_0 on m_0, per output
    g1 = torch.tensor([[-1., 0., 0.], [0., 5., 7.]])                    # x_1 on m_1
    assert torch.equal(layer.weight.grad[0], g0) and torch.equal(layer.weight.grad[1], g1)
    average_task_grads(torch.nn.Sequential(layer))
    count = torch.tensor([[2., 1., 0.], [0., 2., 1.]]).clamp(min=1)
    expected = (g0 + g1) / count
    assert torch.equal(layer.weight.grad[0], expected) and torch.equal(layer.weight.grad[1], expected)
    assert torch.equal(layer.bias.grad[0], layer.bias.grad[1])


def test_in_warm_up_a_tasks_loss_changes_nothing_outside_its_pathway():
    torch.manual_seed(0)
    net = task_mlp(5, [8], 2, tasks=3)
    for layer in task_layers(net).values():
        for t in range(3):
            layer.set_mask(torch.rand(layer.out_features, layer.in_features) < 0.4, task=t)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    for _ in range(5):
        out = net(torch.randn(3, 4, 5))
        loss = out[1].pow(2).mean()                                     # task 1's loss only
        opt.zero_grad()
        loss.backward()
        average_task_grads(net)                                         # no-op before the merge
        opt.step()
    for name, layer in task_layers(net).items():
        w0, w1 = before[f"{name}.weight"], layer.weight.detach()
        changed = w0 != w1
        assert not changed[[0, 2]].any()                                # other tasks' copies untouched
        assert not (changed[1] & ~layer.mask[1]).any()                  # outside task 1's pathway: untouched
        assert changed[1].any()
        assert torch.equal(before[f"{name}.bias"][[0, 2]], layer.bias.detach()[[0, 2]])


def test_after_the_merge_training_keeps_one_shared_weight_and_heads_stay_per_task():
    torch.manual_seed(1)
    net = task_mlp(4, [6], 2, tasks=2, per_task_head=True)
    for layer in task_layers(net).values():
        for t in range(2):
            layer.set_mask(torch.rand(layer.out_features, layer.in_features) < 0.5, task=t)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(3):                                                  # warm-up: copies drift apart
        opt.zero_grad()
        net(torch.randn(2, 8, 4)).pow(2).sum().backward()
        opt.step()
    merge_task_weights(net, opt)
    for _ in range(4):
        opt.zero_grad()
        net(torch.randn(2, 8, 4)).pow(2).sum().backward()
        average_task_grads(net)
        opt.step()
    trunk, head = task_layers(net)["0"], task_layers(net)["2"]
    assert trunk.shared and torch.allclose(trunk.weight[0], trunk.weight[1])
    assert not head.shared and not torch.equal(head.weight[0], head.weight[1])
    state = {k: v for k, v in trunk.state_dict().items()}
    copy = TaskLinear(4, 6, tasks=2)
    copy.load_state_dict(state)
    assert copy.shared and torch.equal(copy.mask, trunk.mask) and torch.equal(copy.mask_f, trunk.mask.float())


def test_overlap_is_the_share_of_a_tasks_pathway_another_task_uses():
    from neuropath.experiments.inspect_multitask import overlap
    a = torch.tensor([[[1, 1, 0, 0]], [[0, 1, 1, 1]]], dtype=torch.bool)     # layer A: task 0 {0,1}, task 1 {1,2,3}
    b = torch.tensor([[[1, 0]], [[1, 0]]], dtype=torch.bool)                 # layer B: both {0}
    overall, per_layer = overlap({"a": a, "b": b})
    assert per_layer["a"].tolist() == [[1.0, 0.5], [pytest.approx(1 / 3), 1.0]]
    assert per_layer["b"].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert overall.tolist() == [[1.0, pytest.approx(2 / 3)], [0.5, 1.0]]      # 2 shared of 3 and of 4


def _task_pathway(freeze_success=0.5, freeze_step=None):
    from neuropath.pathways import SuccessFreeze, TaskDAPD, TaskPathway
    torch.manual_seed(0)
    net, target = task_mlp(4, [6], 2, tasks=2), task_mlp(4, [6], 2, tasks=2)
    target.load_state_dict(net.state_dict())
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(2, 5, 4)

    def loss():
        return net(x).pow(2).sum()
    loss().backward()
    opt.step()                                                           # every entry has moments
    pw = TaskPathway(net, TaskDAPD(0.25, 1, "snip"), SuccessFreeze(None, freeze_success, freeze_step), opt,
                     tied=(target,))
    return pw, net, target, opt, loss


def test_a_task_pathway_installs_every_tasks_mask_in_the_tied_net_and_resets_moments_only_where_a_task_changed():
    pw, net, target, opt, loss = _task_pathway()
    layer = task_layers(net)["0"]
    before = layer.mask.clone()
    result = pw.init(loss)
    total = sum(m.mask[0].numel() for m in task_layers(net).values())
    assert len(result.changed) == 2 and result.density == [int(0.25 * total) / total] * 2   # exactly k per task
    for a, b in zip(task_layers(net).values(), task_layers(target).values()):
        assert torch.equal(a.mask, b.mask) and b.use_mask                 # the target runs the critic's masks
    moved = before != layer.mask
    exp_avg = opt.state[layer.weight]["exp_avg"]
    assert bool((exp_avg[moved] == 0).all()) and bool((exp_avg[~moved] != 0).all())


def test_a_task_pathway_merges_net_and_tied_net_when_its_schedule_freezes_on_success_at_least():
    pw, net, target, opt, loss = _task_pathway(freeze_success=0.5)
    pw.init(loss)
    layer, tied = task_layers(net)["0"], task_layers(target)["0"]
    pw.observe(100, 0.49)
    assert not pw.frozen and not layer.shared
    pw.observe(200, 0.5)                                                 # at least the threshold freezes
    assert pw.frozen and pw.schedule.frozen_at == 200 and pw.schedule.freeze_reason == "mean success 0.50 >= 0.5"
    assert layer.shared and tied.shared and torch.equal(layer.weight[0], layer.weight[1])
    assert bool((opt.state[layer.weight]["exp_avg"] == 0).all())         # merged copies start equal moments
    assert not pw.due(300, episode_end=True)


def test_a_task_pathway_freezes_and_merges_at_its_freeze_step_without_a_last_update():
    pw, net, _, _, loss = _task_pathway(freeze_success=1.0, freeze_step=200)
    pw.init(loss)
    assert pw.due(199, episode_end=True) and not task_layers(net)["0"].shared
    assert not pw.due(200, episode_end=True) and pw.frozen and task_layers(net)["0"].shared
    state = pw.state_dict()
    fresh, *_ = _task_pathway(freeze_success=1.0, freeze_step=200)
    fresh.load_state_dict(state)
    assert fresh.frozen and fresh.schedule.frozen_at == 200
