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
