import pytest
import torch

from neuropath.pathways import keep_count, l1_normalise, topk_masks


def test_global_topk_keeps_exactly_k_even_with_ties():
    scores = {"a": torch.ones(10, 10), "b": torch.ones(5, 4)}      # all tied
    masks = topk_masks(scores, 0.05)
    total = sum(int(m.sum()) for m in masks.values())
    assert total == keep_count(120, 0.05) == 6
    # ties go to the lowest position: the first six entries of layer "a"
    assert masks["a"].flatten()[:6].all() and not masks["b"].any()


def test_global_topk_picks_the_largest_across_layers():
    scores = {"a": torch.tensor([[0.1, 0.9], [0.2, 0.3]]), "b": torch.tensor([[0.8, 0.05]])}
    masks = topk_masks(scores, 0.5)          # k = 3 of 6
    assert masks["a"].tolist() == [[False, True], [False, True]]
    assert masks["b"].tolist() == [[True, False]]


def test_layer_scope_keeps_the_fraction_in_each_layer():
    torch.manual_seed(0)
    scores = {"a": torch.rand(20, 10), "b": torch.rand(10, 10)}
    masks = topk_masks(scores, 0.1, scope="layer")
    assert int(masks["a"].sum()) == 20 and int(masks["b"].sum()) == 10


def test_nan_scores_rank_last():
    scores = {"a": torch.tensor([float("nan"), 1.0, 2.0, float("nan")])}
    assert topk_masks(scores, 0.5)["a"].tolist() == [False, True, True, False]


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.5])
def test_keep_ratio_outside_unit_interval_is_refused(ratio):
    with pytest.raises(ValueError, match="keep ratio"):
        topk_masks({"a": torch.ones(3)}, ratio)


def test_l1_normalise_sums_to_one_over_the_network():
    out = l1_normalise({"a": torch.tensor([1.0, 3.0]), "b": torch.tensor([4.0])})
    assert abs(sum(float(v.sum()) for v in out.values()) - 1.0) < 1e-7
    assert out["b"].item() == pytest.approx(0.5)


def test_topk_matches_a_stable_sort_reference_with_many_ties():
    torch.manual_seed(0)
    for k_ratio in (0.01, 0.05, 0.3):
        flat = torch.randint(0, 20, (5000,)).float()          # heavy ties
        scores = {"a": flat[:3000].view(60, 50), "b": flat[3000:].view(40, 50)}
        masks = topk_masks(scores, k_ratio)
        k = keep_count(5000, k_ratio)
        order = torch.sort(flat, descending=True, stable=True).indices[:k]
        ref = torch.zeros(5000, dtype=torch.bool)
        ref[order] = True
        got = torch.cat([masks["a"].flatten(), masks["b"].flatten()])
        assert torch.equal(got, ref)


def test_member_scope_ranks_each_member_alone():
    scores = {"q1.0": torch.full((4, 5), 10.0), "q1.2": torch.full((1, 4), 10.0),
              "q2.0": torch.ones(4, 5), "q2.2": torch.ones(1, 4), "head": torch.ones(2, 5)}
    members = {"q1.0": "q1", "q1.2": "q1", "q2.0": "q2", "q2.2": "q2", "head": ""}
    starved = topk_masks(scores, 0.25)          # global: q1's larger scores take every slot
    assert not starved["q2.0"].any() and not starved["q2.2"].any()
    masks = topk_masks(scores, 0.25, scope="member", members=members)
    assert list(masks) == list(scores)
    assert int(masks["q1.0"].sum() + masks["q1.2"].sum()) == keep_count(24, 0.25) == 6
    assert int(masks["q2.0"].sum() + masks["q2.2"].sum()) == 6
    assert int(masks["head"].sum()) == keep_count(10, 0.25) == 2
    alone = topk_masks(scores, 0.25, scope="member")          # no members named: one group, as global
    assert all(torch.equal(alone[n], starved[n]) for n in scores)


def test_unknown_scope_names_the_allowed_ones():
    with pytest.raises(ValueError, match="global, layer, member"):
        topk_masks({"a": torch.ones(3)}, 0.5, scope="row")
