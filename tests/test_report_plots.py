"""The report's plots stay readable with many methods: 15 variants with long labels must not cut off the
legend of curves.png or squeeze iqm.png's panels into overlapping ticks; 1-3 methods look as they did."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from neuropath.experiments import report as R

SCORES = ("grasp", "snip", "synflow", "grad", "magnitude")
LONG = [f"dapd@authors+keep0.05+score={s}+window={w}" for w in (10000, 20000, 30000) for s in SCORES]


def _groups(methods: list[str], envs: tuple[str, ...]) -> dict:
    """Made-up but well-formed runs: 3 seeds per method and environment, rising curves, one freeze each."""
    rng = np.random.default_rng(0)
    steps = np.arange(0, 1_000_001, 50_000)
    runs = []
    for env in envs:
        for j, method in enumerate(methods):
            sp, value = ("0%", 0.0) if method == "dense" else ("95%", 0.95)
            for seed in range(3):
                ret = (1 + 0.05 * j) * 1000 * (1 - np.exp(-steps / 3e5)) + rng.normal(0, 30, len(steps))
                runs.append(R.RunResult(Path(f"/x/{env}/{j}/{seed}"), env, method, sp, value, seed, steps, ret,
                                        1_000_000, freezes=[] if method == "dense" else [(200_000, "stable")]))
    return R.group_runs(runs)


def _visible_tick_labels(axis) -> list:
    """Tick labels drawn on the axis: shown, not empty, and at a tick inside the view."""
    lo, hi = sorted(axis.get_view_interval())
    return [t for loc, t in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
            if t.get_visible() and t.get_text() and lo - 1e-9 <= loc <= hi + 1e-9]


def _assert_readable(fig, legend: bool = True, min_panel_inches: float = 2.5) -> None:
    """Everything inside the figure, no two tick labels of an axis overlapping, no legend over a panel,
    and no panel squeezed to a sliver."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    inside = lambda box: (box.x0 >= page.x0 - 1 and box.y0 >= page.y0 - 1 and box.x1 <= page.x1 + 1
                          and box.y1 <= page.y1 + 1)
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    assert bool(legends) == legend
    for legend in legends:
        box = legend.get_window_extent(renderer)
        assert inside(box), (box, page)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), "the legend covers a panel"
    for ax in fig.axes:
        assert ax.get_window_extent(renderer).width / fig.dpi >= min_panel_inches, "a panel collapsed"
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [t.get_window_extent(renderer) for t in _visible_tick_labels(axis)]
            shared = axis is ax.yaxis and ax is not fig.axes[0] and ax.get_shared_y_axes().joined(ax, fig.axes[0])
            assert boxes or shared, "an axis lost its tick labels"     # a shared y axis labels once
            for i, box in enumerate(boxes):
                assert inside(box), (box, page)
                assert not any(box.overlaps(other) for other in boxes[i + 1:]), "tick labels overlap"


@pytest.mark.parametrize("envs", [("Hopper-v5",), ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5")])
def test_curves_and_intervals_read_well_with_15_long_labelled_methods(envs):
    methods = ["dense", *LONG[:14]]
    groups = _groups(methods, envs)
    norm, _ = R.normalisers(groups)
    matrix, _ = R.score_matrix(groups, norm)
    est = R.interval_estimates(matrix, reps=50)
    palette = R.Palette(methods)
    assert len({palette.color(m) for m in methods}) == 15              # 15 methods, 15 colours
    for figure in (R.curves_figure(groups, palette), R.intervals_figure(est, palette),
                   R.profiles_figure(matrix, palette), R.sparsity_figure(groups, palette)):
        has_legend = figure.axes[0].get_ylabel() != ""                 # iqm.png's labels are its y ticks
        _assert_readable(figure, legend=has_legend)
        if not has_legend:
            ticks = _visible_tick_labels(figure.axes[0].yaxis)
            assert [t.get_text() for t in ticks] == sorted(est, key=lambda k: est[k]["iqm"])
        R._plt().close(figure)


def test_few_methods_keep_their_colours_and_many_get_markers_too():
    few = R.Palette(["dense", "dapd", "static+grasp", "dapd+grasp"])
    assert [few.color(m) for m in ("dense", "dapd", "rigl@95%")] == ["C0", "C1", "C5"]
    assert few.color("dapd+grasp@95%") == few.color("static+grasp") == "C6"    # a score's colour, as before
    assert few.marker("dense") is None
    many = [f"variant{i}" for i in range(25)]
    palette = R.Palette(many)
    looks = {(palette.color(m), palette.marker(m)) for m in many}
    assert len(looks) == 25 and len({palette.color(m) for m in many}) == 20   # tab20, then markers


def test_a_report_over_16_long_labelled_variants_writes_readable_plots(tmp_path):
    """End to end from run folders (config.yaml + metrics.csv, no training): 15 DAPD variants that differ in
    score and window, labelled like ``dapd+grasp@authors[window=20000]``, and dense."""
    from neuropath.training.config import VARIANTS, Config
    steps = np.arange(0, 2001, 100)
    rng = np.random.default_rng(1)
    runs = [("dense", "snip", 1000)] + [("dapd", s, w) for w in (1000, 2000, 3000) for s in SCORES]
    for i, (pathway, score, window) in enumerate(runs):
        for seed in range(2):
            run = tmp_path / "runs" / f"{pathway}-{score}-{window}-s{seed}"
            run.mkdir(parents=True)
            cfg = Config().set({"env": "Hopper-v5", "steps": 2000, "seed": seed, "pathway": pathway,
                                "score": score, "window": window, **VARIANTS["authors"]})
            (run / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict()))
            ret = 100 + (i + 1) * 10 * steps / 2000 + rng.normal(0, 2, len(steps))
            (run / "metrics.csv").write_text("step,return_mean\n" + "".join(f"{s},{r:.3f}\n" for s, r in zip(steps, ret)))
    out = R.write_report(tmp_path / "runs", reps=50)
    text = (out / "report.md").read_text()
    assert "dapd+grasp@authors[window=2000]" in text
    for name in ("curves.png", "iqm.png", "profiles.png", "sparsity.png"):
        assert (out / name).stat().st_size > 0
    groups = R.group_runs(R.split_variants(R.load_runs(tmp_path / "runs")[0]))
    assert len({k[1] for k in groups}) == 16
    _assert_readable(R.curves_figure(groups))


def test_confidence_intervals_are_the_same_on_every_call_and_leave_numpys_global_state_alone():
    """rliable's bootstrap draws from numpy's global generator whatever random_state it gets: a report
    written twice gave two sets of CIs."""
    rng = np.random.default_rng(0)
    matrix = {"a": rng.random((3, 2)), "b": rng.random((3, 2))}
    first = R.interval_estimates(matrix, reps=200)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    assert R.interval_estimates(matrix, reps=200) == first
    assert np.array_equal(np.random.get_state()[1], state)            # the caller's generator untouched
    pairs = {"a>b": (matrix["a"], matrix["b"])}
    assert R._probabilities(pairs, 200, 0) == R._probabilities(pairs, 200, 0)
