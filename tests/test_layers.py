import copy

import torch

from neuropath.pathways import MaskedLinear, masked_layers, unmasked


def _layer(tasks=1):
    torch.manual_seed(0)
    layer = MaskedLinear(5, 4, tasks=tasks)
    return layer


def test_masked_weights_get_exactly_zero_gradient_and_do_not_change_output():
    layer = _layer()
    mask = torch.rand(4, 5) < 0.5
    layer.set_mask(mask)
    x = torch.randn(8, 5)
    out = layer(x)
    out.pow(2).sum().backward()
    assert torch.all(layer.weight.grad[~mask] == 0)
    assert torch.any(layer.weight.grad[mask] != 0)
    with torch.no_grad():
        layer.weight[~mask] += 100.0          # changing inactive weights changes nothing
    assert torch.equal(layer(x), out.detach())


def test_zero_gradient_at_masked_entries_under_huge_upstream_gradient():
    layer = _layer()
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[0, 0] = True
    layer.set_mask(mask)
    y = layer(torch.randn(3, 5))
    y.backward(torch.full_like(y, 1e30))
    assert torch.all(layer.weight.grad[~mask] == 0)


def test_float_mask_follows_state_dict_and_copies():
    from neuropath.pathways import copy_masks
    a, b = _layer(), MaskedLinear(5, 4)
    a.set_mask(torch.rand(4, 5) < 0.5)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.mask_f.bool(), a.mask) and "mask_f" not in a.state_dict()
    c = MaskedLinear(5, 4)
    copy_masks(a, c)
    x = torch.randn(2, 5)
    with torch.no_grad():
        c.weight.copy_(a.weight)
        c.bias.copy_(a.bias)
    assert torch.equal(c(x), a(x))


def test_bias_is_never_masked():
    layer = _layer()
    layer.set_mask(torch.zeros(4, 5, dtype=torch.bool))
    out = layer(torch.randn(2, 5))
    assert torch.allclose(out, layer.bias.expand(2, 4))
    out.sum().backward()
    assert torch.all(layer.bias.grad == 2)


def test_unmasked_runs_dense_and_restores_the_mask():
    layer = _layer()
    layer.set_mask(torch.rand(4, 5) < 0.3)
    x = torch.randn(2, 5)
    sparse = layer(x)
    with unmasked(layer):
        assert torch.allclose(layer(x), x @ layer.weight.T + layer.bias)
        with unmasked(layer):
            pass
        assert torch.allclose(layer(x), x @ layer.weight.T + layer.bias)
    assert torch.equal(layer(x), sparse)


def test_per_task_masks_run_in_one_batched_matmul():
    layer = _layer(tasks=3)
    masks = torch.rand(3, 4, 5) < 0.5
    for t in range(3):
        layer.set_mask(masks[t], task=t)
    x = torch.randn(3, 7, 5)
    batched = layer(x)
    for t in range(3):
        layer.active_task = t
        assert torch.allclose(batched[t], layer(x[t]), atol=1e-6)


def test_deepcopy_and_state_dict_keep_masks_and_flag():
    net = torch.nn.Sequential(_layer(), torch.nn.ReLU(), MaskedLinear(4, 2))
    masked_layers(net)["0"].set_mask(torch.rand(4, 5) < 0.5)
    clone = copy.deepcopy(net)
    assert torch.equal(clone[0].mask, net[0].mask) and clone[0].use_mask and not clone[2].use_mask
    fresh = torch.nn.Sequential(MaskedLinear(5, 4), torch.nn.ReLU(), MaskedLinear(4, 2))
    fresh.load_state_dict(net.state_dict())
    x = torch.randn(3, 5)
    assert fresh[0].use_mask and torch.equal(fresh(x), net(x))
    assert set(net.state_dict()) >= {"0.weight", "0.bias", "0.mask"}
