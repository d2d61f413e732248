import argparse

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
        if name.endswith("-dapd"):        # the paper's 1M steps; MinAtar's literature budget 5M frames, Atari 10M
            # steps, CleanRL's CartPole DQN 500k
            steps = {"minatar": 5_000_000, "atari": 10_000_000, "cartpole": 500_000}.get(name.split("-")[0], 1_000_000)
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


@pytest.mark.parametrize("args,needle", [
    (["--algo", "ppo", "--lr", "3e-4"], "--lr is not read by --algo ppo; PPO reads --ppo-lr"),
    (["--algo", "ppo", "--hidden", "32", "32"], "PPO reads --ppo-hidden"),
    (["--algo", "ppo", "--lr", "1e-3"], "--lr is not read"),                 # SAC's default value, named: refused too
    (["--algo", "ppo", "--tau", "0.01"], "PPO has no such setting"),
    (["--algo", "dqn", "--env", "MinAtar/Breakout-v1", "--batch-size", "64"], "DQN reads --dqn-batch-size"),
    (["--ppo-lr", "1e-3"], "--ppo-lr is not read by --algo sac; SAC reads --lr"),
    (["--dataset", "mujoco/x", "--algo", "bcq", "--batch-size", "64"], "BCQ reads --bcq-batch-size"),
    (["--dataset", "mujoco/x", "--lr", "1e-3"], "IQL reads --offline-lr"),
    (["--dataset", "mujoco/x", "--algo", "bcq", "--expectile", "0.8"], "BCQ has no such setting"),
    (["--benchmark", "MT10", "--init-steps", "500"], "--init-steps is not read by --benchmark MT10"),   # was ignored
    # the authors' settings, where a kind would have ignored them (each was silently dropped before)
    (["--algo", "ppo", "--score-temperature", "init"], "--score-temperature is not read by --algo ppo"),
    (["--algo", "ppo", "--boundary-order", "mask-first"], "PPO evaluates inside its rollout"),
    (["--algo", "dqn", "--env", "CartPole-v1", "--score-temperature", "init"], "not read by --algo dqn"),
    (["--benchmark", "MT10", "--score-temperature", "init"], "MT10 scores with each task's learned temperature"),
    (["--benchmark", "MT10", "--adam-on-change", "keep"], "--adam-on-change is not read by --benchmark MT10"),
    (["--benchmark", "MT10", "--entry-rule", "own-age"], "--entry-rule is not read by --benchmark MT10"),
    (["--benchmark", "MT10", "--prune", "zero"], "--prune is not read by --benchmark MT10"),
    (["--dataset", "mujoco/x", "--boundary-order", "mask-first"], "an offline pathway is chosen once"),
])
def test_a_flag_of_another_algorithm_is_refused(args, needle, capsys):
    """Each algorithm's flags are read by it alone: a flag another algorithm reads is refused in one line that
    names the flag this algorithm reads, not silently dropped (PPO trained with its own defaults)."""
    from neuropath.cli import main
    assert main(["train", *args, "--print-config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_a_kind_that_never_read_boundary_order_is_not_given_the_legacy_mask_first():
    """Old runs without ``boundary_order`` ran mask-first where the loop had an order (SAC, DQN, MT10); PPO's
    evaluations always came first, so an old PPO config must still load (and is not refused on resume)."""
    from neuropath.training.config import fill_legacy
    ppo = fill_legacy({"run": {"algo": "ppo"}, "pathway": {}, "offline": {"dataset": None}})
    assert "boundary_order" not in ppo["pathway"]
    assert Config().set({"algo": "ppo", **ppo["pathway"]}).validate().pathway.boundary_order == "eval-first"
    dqn = fill_legacy({"run": {"algo": "dqn"}, "pathway": {}, "offline": {"dataset": None}})
    assert dqn["pathway"]["boundary_order"] == "mask-first"


def test_the_python_api_refuses_a_setting_its_algorithm_ignores():
    with pytest.raises(UsageError, match="PPO reads --ppo-lr"):
        Config().set({"algo": "ppo", "lr": 3e-4}).validate()
    assert Config().set({"algo": "ppo", "ppo_lr": 1e-4, "gamma": 0.98}).validate().run.algo == "ppo"
    assert Config().set({"dataset": "mujoco/x", "pathway": "npf", "hidden": [64, 64],
                         "batch_size": 64}).validate().run.algo == "iql"


def test_help_pages_show_choices_one_default_and_every_argument(capsys):
    """--help lists the allowed values of choice settings, states each default once, describes every argument of
    eval, runs and inspect, and keeps the preset remark to train."""
    import re
    from neuropath.cli import main
    pages = {}
    for cmd in ("train", "eval", "runs", "inspect", "flops", "export"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        pages[cmd] = capsys.readouterr().out
    train = pages["train"]
    assert "--pathway {dapd,dense,static,random,set,rigl,rlx2,npf}" in train
    assert "--algo {auto,sac,ppo,dqn,iql,bcq}" in train and "PPO" in train.split("options:")[0]
    flat = " ".join(train.split())
    assert not re.search(r"\(default: [^)]*\) \(default:", flat), re.findall(r"\(default: [^)]*\) \(default:[^)]*\)", flat)
    assert "--preset YAML" in flat
    for cmd in ("eval", "flops", "export", "runs", "inspect"):
        assert "--preset" not in pages[cmd], cmd
    from neuropath.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for cmd in ("train", "eval", "runs", "inspect"):   # every argument has a description
        missing = [a.dest for a in sub.choices[cmd]._actions if not a.help and a.dest != "help"]
        assert not missing, (cmd, missing)


def test_an_offline_run_defaults_to_npf_in_the_python_api_as_on_the_command_line(capsys):
    """The offline default pathway (NPF's single shot) was filled in by the CLI only: `npth.Config` with a
    dataset kept "dapd" and refused itself. Now `validate` fills it; a --pathway dapd that was asked for is
    still refused."""
    from neuropath.cli import main
    cfg = Config().set({"dataset": "neuropath/hopper/expert-v0", "algo": "iql"}).validate()
    assert cfg.pathway.pathway == "npf"
    assert Config().set({"dataset": "d", "pathway": "random"}).validate().pathway.pathway == "random"
    with pytest.raises(UsageError, match="not an offline method"):
        Config().set({"dataset": "d", "pathway": "dapd"}).validate(given={"pathway"})
    assert main(["train", "--dataset", "d", "--pathway", "dapd", "--print-config"]) == 2
    assert "not an offline method" in capsys.readouterr().err


def test_each_algorithms_settings_come_from_its_section_by_name_and_bcq_reads_offline_lr():
    """`algo_settings` fills PPO's, DQN's, IQL's and BCQ's own dataclasses from the config (no field copied by
    hand). It found that BCQ never read --offline-lr (it trained at its own 1e-3 whatever was asked, while
    `check_read` said BCQ reads it); the default is now each algorithm's own rate."""
    from neuropath.algos.bcq import BCQConfig
    from neuropath.algos.dqn import DQNConfig
    from neuropath.algos.iql import IQLConfig
    from neuropath.algos.ppo import PPOConfig
    from neuropath.training.config import algo_settings, fill_legacy
    cfg = Config().set({"gamma": 0.95, "tau": 0.01, "hidden": [32, 16], "batch_size": 64, "ppo_hidden": [8, 8],
                        "ppo_lr": 1e-4, "clip": 0.1, "anneal_lr": False, "dqn_lr": 2e-4, "dqn_batch_size": 16,
                        "dqn_target_every": 77, "expectile": 0.8, "bcq_hidden": [20, 10], "phi": 0.1,
                        "vae_hidden": [30, 30], "bcq_batch_size": 50})
    assert algo_settings(PPOConfig, cfg, "ppo") == PPOConfig(hidden=[8, 8], lr=1e-4, clip=0.1, anneal_lr=False,
                                                             gamma=0.95)
    assert algo_settings(DQNConfig, cfg, "dqn") == DQNConfig(lr=2e-4, gamma=0.95, batch_size=16, target_every=77)
    assert algo_settings(IQLConfig, cfg, "iql") == IQLConfig(hidden=[32, 16], lr=3e-4, batch_size=64, gamma=0.95,
                                                             tau=0.01, expectile=0.8)
    assert algo_settings(BCQConfig, cfg, "bcq") == BCQConfig(hidden=[20, 10], vae_hidden=[30, 30], lr=1e-3,
                                                             batch_size=50, gamma=0.95, tau=0.01, phi=0.1)
    cfg.set({"offline_lr": 5e-4})
    assert algo_settings(BCQConfig, cfg, "bcq").lr == 5e-4 and algo_settings(IQLConfig, cfg, "iql").lr == 5e-4
    # a run stored before: 3e-4 was the default then (BCQ ignored it), so it reads back as the default
    assert fill_legacy({"offline": {"offline_lr": 3e-4}})["offline"]["offline_lr"] is None
