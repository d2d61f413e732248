import pytest
import yaml

from neuropath import Config, UsageError, load_preset
from neuropath.experiments.presets import list_presets


def test_flat_and_nested_settings_and_coercion():
    cfg = Config().set({"keep_ratio": "0.1", "hidden": "64 64", "sac": {"lr": 3e-4}, "freeze_step": "none",
                        "progress": "false", "steps": 2e5})
    assert cfg.pathway.keep_ratio == 0.1 and cfg.sac.hidden == [64, 64] and cfg.sac.lr == 3e-4
    assert cfg.pathway.freeze_step is None and cfg.run.progress is False and cfg.run.steps == 200_000
    assert Config.from_dict(cfg.to_dict()).to_dict() == cfg.to_dict()


@pytest.mark.parametrize("values,needle", [
    ({"keep_ratio": 1.5}, "(0, 1]"), ({"keep_ratio": 0.0}, "(0, 1]"), ({"steps": 0}, "--steps"),
    ({"pathway": "rigl2"}, "unknown pathway"), ({"freeze_return": "high"}, "--freeze-return"),
    ({"device": "tpu"}, "--device"), ({"hidden": []}, "--hidden"), ({"moving_average": 0}, "--moving-average"),
    ({"scope": "row"}, "global, layer, member"), ({"scope": "member", "benchmark": "MT10"}, "single-task"),
])
def test_invalid_settings_name_the_problem(values, needle):
    with pytest.raises(UsageError, match=None) as err:
        Config().set(values).validate()
    assert needle in str(err.value)


def test_unknown_or_mistyped_settings():
    with pytest.raises(UsageError, match="unknown setting 'keep_ration'"):
        Config().set({"keep_ration": 0.1})
    with pytest.raises(UsageError, match="cannot read"):
        Config().set({"steps": "many"})
    for text in ("256 256", "256,256", "[256, 256]"):      # how a --set or a YAML-minded user writes a list
        assert Config().set({"ppo_hidden": text}).ppo.ppo_hidden == [256, 256]
    with pytest.raises(UsageError, match="cannot read"):
        Config().set({"ppo_hidden": "[256, wide]"})


def test_freeze_return_auto_table_and_overrides():
    cfg = Config().set({"env": "HalfCheetah-v5"})
    assert cfg.resolved_freeze_return() == 8000.0
    assert Config().set({"env": "Pendulum-v1"}).resolved_freeze_return() is None
    assert Config().set({"freeze_return": "none"}).resolved_freeze_return() is None
    assert Config().set({"freeze_return": 123}).resolved_freeze_return() == 123.0


def test_every_preset_loads_and_validates():
    names = list_presets()
    assert {"quickstart", "halfcheetah-dapd", "halfcheetah-dense", "walker2d-dapd", "hopper-dense",
            "ant-dapd"} <= set(names)
    for name in names:
        cfg = load_preset(name).validate()
        if name.endswith("-dapd"):        # the paper's 1M steps; MinAtar's literature budget 5M frames, Atari 10M steps
            steps = {"minatar": 5_000_000, "atari": 10_000_000}.get(name.split("-")[0], 1_000_000)
            assert cfg.pathway.pathway == "dapd" and cfg.pathway.keep_ratio == 0.05 and cfg.run.steps == steps
            assert cfg.pathway.freeze_step is None or cfg.pathway.freeze_step <= steps, name   # freezes within its run
    assert load_preset("halfcheetah-dapd").resolved_freeze_return() == 8000.0
    hopper = load_preset("hopper-rlx2")          # RLx2's own actor/critic split for Hopper (SAC)
    assert (hopper.keep_ratio_of("actor"), hopper.keep_ratio_of("critic")) == (0.02, 0.05)


def test_preset_from_a_yaml_file_and_its_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"env": "Hopper-v5", "keep_ratio": 0.2}))
    assert load_preset(str(path), seed=3).pathway.keep_ratio == 0.2
    path.write_text("- a\n- b\n")
    with pytest.raises(UsageError, match="mapping"):
        load_preset(str(path))
    with pytest.raises(UsageError, match="unknown preset"):
        load_preset("nope")
