"""End-to-end runs of the real loop on real MuJoCo environments, a few hundred steps each."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
import torch

import neuropath as npth
from neuropath.cli import main
from neuropath.training.logging import read_csv, read_jsonl
from neuropath.training import checkpoint

from .conftest import TINY, HeldRun


def _flags(values: dict) -> list[str]:
    out = []
    for k, v in values.items():
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
        elif isinstance(v, list):
            out += [flag, *map(str, v)]
        else:
            out += [flag, str(v)]
    return out


def test_dapd_run_writes_everything_and_freezes_at_the_freeze_step(tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", *_flags({**TINY, "steps": 600, "freeze_step": 400}), "--pathway", "dapd",
               "--run-dir", str(run)])
    assert rc == 0
    assert (run / "config.yaml").is_file() and list((run / "tb").glob("events.out.tfevents.*"))
    rows = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [200, 400, 600]
    assert all(abs(float(r["actor_density"]) - 0.05) < 0.002 for r in rows)
    events = read_jsonl(run / "pathway.jsonl")
    kinds = {(e["net"], e["event"]) for e in events}
    assert {("actor", "init"), ("critic", "init"), ("actor", "update"), ("actor", "freeze")} <= kinds
    freeze = next(e for e in events if e["event"] == "freeze")
    assert freeze["frozen_at"] == 400 and "freeze step" in freeze["reason"]
    assert all(e["step"] <= 400 for e in events if e["event"] == "update")
    assert rows[-1]["phase"] == "frozen"
    out = capsys.readouterr().out
    assert "eval return" in out and str(run) in out


RLX2_TINY = {"pathway": "rlx2", "update_every": 100, "nstep_delay": 150, "buffer_min": 100,
             "buffer_check_every": 200, "buffer_check_size": 64, "buffer_threshold": 0.0}


AUTHORS_OWN_AGE = {"moving_average": 1, "score_temperature": "init", "adam_on_change": "keep",
                   "score_batches": "shared", "entry_rule": "own-age"}


@pytest.mark.parametrize("extra", [{}, RLX2_TINY, AUTHORS_OWN_AGE], ids=["dapd", "rlx2", "authors-own-age"])
def test_resumed_run_continues_the_same_curve(tmp_path, extra):
    """Killed between checkpoints and resumed: the same evaluations, weights and mask events
    (RLx2: with its n-step target, shrinking buffer and drop/grow steps across the cut)."""
    cfg = {**TINY, "steps": 700, "checkpoint_every": 250, **extra}
    full = npth.Trainer(npth.Config().set({**cfg, "run_dir": str(tmp_path / "full")}))
    full.train()
    cut = npth.Trainer(npth.Config().set({**cfg, "run_dir": str(tmp_path / "cut")}))

    class Killed(Exception):
        pass

    def kill(step, info):
        if step == 560:                                     # "killed" between checkpoints
            raise Killed
    with pytest.raises(Killed):
        cut.train(callback=kill)
    assert not (tmp_path / "cut" / "checkpoints" / "ckpt-000000560").exists()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--no-progress"]) == 0
    a, b = read_csv(tmp_path / "full" / "metrics.csv"), read_csv(tmp_path / "cut" / "metrics.csv")
    assert [(r["step"], r["return_mean"]) for r in a] == [(r["step"], r["return_mean"]) for r in b]
    resumed = npth.Trainer.resume(tmp_path / "cut")
    for (k, v), (_, w) in zip(full.algo.state_dict().items(), resumed.algo.state_dict().items()):
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, w), k
    ev_a = [(e["step"], e["net"], e.get("changed"), e.get("dropped"))
            for e in read_jsonl(tmp_path / "full" / "pathway.jsonl")]
    ev_b = [(e["step"], e["net"], e.get("changed"), e.get("dropped"))
            for e in read_jsonl(tmp_path / "cut" / "pathway.jsonl")]
    assert ev_a == ev_b
    if extra is RLX2_TINY:
        assert any(e[3] for e in ev_a)                      # the buffer did shrink
    if extra is AUTHORS_OWN_AGE:                            # the young entries were carried across the cut
        assert any(e.get("young") for e in read_jsonl(tmp_path / "cut" / "pathway.jsonl"))


@pytest.mark.parametrize("pathway,expected", [("dense", 1.0), ("static", 0.1), ("random", 0.1)])
def test_baseline_pathways(tmp_path, pathway, expected, capsys):
    t = npth.Trainer(npth.Config().set({**TINY, "steps": 300, "pathway": pathway, "keep_ratio": 0.1,
                                        "run_dir": str(tmp_path / pathway)}))
    t.train()
    for net in (t.algo.actor, t.algo.critic):
        assert abs(npth.pathways.density(net) - expected) < 0.002
    events = read_jsonl(tmp_path / pathway / "pathway.jsonl")
    assert not [e for e in events if e["event"] == "update"]          # static masks never change
    assert t.phase() == {"dense": "dense"}.get(pathway, "static")
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / pathway), "--no-plot"]) == 0
    header = capsys.readouterr().out.splitlines()[1]
    assert ("score snip" in header) == (pathway == "static")           # only a scoring pathway names its score


def test_a_fixed_pathway_that_cuts_inputs_off_is_logged_and_warned(tmp_path, capsys):
    """At keep 0.02 of 32×32 networks a static mask leaves inputs with no path to the output: the freeze events
    list exactly the inputs whose count of kept paths (a product of the masks) is zero, and stderr warns."""
    run = tmp_path / "cut"
    t = npth.Trainer(npth.Config().set({**TINY, "steps": 100, "pathway": "static", "keep_ratio": 0.02,
                                        "eval_every": 100, "run_dir": str(run)}))
    t.train()
    err = capsys.readouterr().err
    freezes = {e["net"]: e for e in read_jsonl(run / "pathway.jsonl") if e["event"] == "freeze"}

    def cut(net, prefix):
        m = {n: getattr(net, prefix)[int(n)].mask[0].double() for n in ("0", "2", "4")}
        return [i for i, v in enumerate((m["4"] @ m["2"] @ m["0"]).sum(0).tolist()) if v == 0]

    expected = {"actor": {"net": cut(t.algo.actor, "net")},
                "critic": {q: cut(t.algo.critic, q) for q in ("q1", "q2")}}
    for name, members in expected.items():
        members = {k: v for k, v in members.items() if v}
        assert members, "the test needs a pathway that cuts inputs off"
        assert freezes[name]["cut_off"] == members
        assert f"the {name}'s fixed pathway leaves inputs with no path" in err
    blind = sorted(set(expected["critic"]["q1"]) & set(expected["critic"]["q2"]) - set(range(11)))
    assert ("both Q networks are blind to action" in err) == bool(blind)
    if blind:
        assert f"action{'s' if len(blind) > 1 else ''} {blind[0] - 11}" in err


def test_time_limit_truncation_keeps_bootstrapping_and_the_true_final_obs(tmp_path):
    # Pendulum-v1 never terminates; its 200-step time limit truncates.
    t = npth.Trainer(npth.Config().set({**TINY, "env": "Pendulum-v1", "steps": 450, "pathway": "dense",
                                        "run_dir": str(tmp_path / "p")}))
    t.train()
    rows = t.buffer.storage[: t.buffer.size].numpy()
    obs, nxt, not_done = rows[:, :3], rows[:, -4:-1], rows[:, -1]
    assert np.all(not_done == 1.0)
    chained = np.all(np.isclose(nxt[:-1], obs[1:]), axis=1)
    assert list(np.flatnonzero(~chained) + 1) == [200, 400]        # only resets break the chain
    assert np.all(np.abs(rows[:, 3]) <= 1.0)                       # stored actions are in [-1, 1]


def test_new_run_refuses_an_existing_directory(tmp_path, capsys):
    run = tmp_path / "taken"
    run.mkdir()
    (run / "keep.txt").write_text("precious")
    assert main(["train", *_flags({**TINY, "steps": 50}), "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists" in err[0]
    assert [p.name for p in run.iterdir()] == ["keep.txt"] and (run / "keep.txt").read_text() == "precious"


def test_a_run_in_use_by_another_process_is_refused_and_left_untouched(tmp_path, capsys):
    run = tmp_path / "run"
    npth.Trainer(npth.Config().set({**TINY, "steps": 300, "run_dir": str(run)})).train(
        callback=lambda step, info: step < 120)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    capsys.readouterr()
    with HeldRun(run) as other:
        assert main(["train", "--resume", str(run), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "in use by another process" in err[0] and f"pid {other.proc.pid}" in err[0]
        assert main(["train", *_flags({**TINY, "steps": 50}), "--run-dir", str(run)]) == 2   # nor a new run there
        assert main(["runs", str(tmp_path)]) == 0
        assert f"running (pid {other.proc.pid})" in capsys.readouterr().out
        after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
        assert after == before                          # nothing truncated, nothing rewritten
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0   # the lock died with its process
    assert [int(r["step"]) for r in read_csv(run / "metrics.csv")][-1] == 300


def _one_line_error(args, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "neuropath.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.mark.parametrize("args,needle", [
    (["--env", "NoSuchEnv-v0"], "unknown environment"),
    (["--keep-ratio", "1.5"], "(0, 1]"),
    (["--keep-ratio", "0"], "(0, 1]"),
    (["--steps", "-5"], "--steps"),
    (["--steps", "0"], "--steps"),
    (["--preset", "no-such-preset"], "unknown preset"),
    (["--pathway", "lottery"], "unknown pathway"),
    (["--no-such-flag", "1"], "unrecognized arguments"),
    (["--pathway", "rigl", "--keep-ratio", "0.00002"], "without a single weight"),
    (["--pathway", "set", "--distribution", "normal"], "--distribution"),
    (["--pathway", "set", "--critic-keep", "1.2"], "--critic-keep"),
    (["--pathway", "rlx2", "--drop-fraction", "2"], "--drop-fraction"),
    (["--entry-rule", "oldest"], "--entry-rule must be one of global, own-age"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--init-temperature", "nan"], "--init-temperature must be a finite number"),
    (["--algo", "ppo", "--max-grad-norm", "nan"], "--max-grad-norm must be a finite number"),
    (["--algo", "ppo", "--ent-coef", "inf"], "--ent-coef must be a finite number"),
    (["--seed", "-1"], "--seed must be >= 0"),
    (["--freeze-return", "nan"], "--freeze-return must be a finite number"),
    (["--checkpoint-minutes", "-1"], "--checkpoint-minutes"),
    (["--boundary-order", "random"], "--boundary-order"),
    (["--score-temperature", "0.1"], "--score-temperature"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    line = _one_line_error(["train", "--env", "Hopper-v5", *args, "--run-dir", str(tmp_path / "r")], tmp_path)
    assert needle in line
    assert not (tmp_path / "r").exists()


def test_resume_errors_missing_corrupt_and_wrong_shape(tmp_path):
    assert "does not exist" in _one_line_error(["train", "--resume", str(tmp_path / "nope")], tmp_path)
    run = tmp_path / "run"
    npth.Trainer(npth.Config().set({**TINY, "steps": 250, "run_dir": str(run)})).train()
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert "already at step 250" in _one_line_error(["train", "--resume", str(run), "--steps", "100"], tmp_path)
    assert "cannot change --env" in _one_line_error(["train", "--resume", str(run), "--env", "Ant-v5"], tmp_path)
    # another network shape in the config than in the checkpoint
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("- 32\n  - 32", "- 64\n  - 64"))
    assert "does not fit" in _one_line_error(["train", "--resume", str(run), "--steps", "400"], tmp_path)
    (run / "config.yaml").write_text(cfg)
    ckpt = next((run / "checkpoints").glob("ckpt-*"))
    (ckpt / "state.pt").write_bytes(b"garbage")
    assert "corrupt" in _one_line_error(["train", "--resume", str(run), "--steps", "400"], tmp_path)
    (run / "config.yaml").write_text("{{{")
    assert "corrupt" in _one_line_error(["eval", str(run)], tmp_path)
    before[ckpt / "state.pt"] = b"garbage"
    before[run / "config.yaml"] = b"{{{"
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before                                   # nothing rewritten by the failures


def test_eval_inspect_and_policy_api(tmp_path, capsys):
    run = tmp_path / "run"
    npth.Trainer(npth.Config().set({**TINY, "steps": 300, "run_dir": str(run)})).train()
    assert main(["eval", str(run), "--episodes", "2"]) == 0
    assert "return" in capsys.readouterr().out
    assert main(["inspect", str(run)]) == 0
    text = capsys.readouterr().out
    assert "actor:" in text and "critic:" in text and "mask updates" in text
    algo = checkpoint.load_state(checkpoint.latest(run))["algo"]     # inputs kept, counted by path products
    paths = {net: (algo[f"{net}.4.mask"][0].double() @ algo[f"{net}.2.mask"][0].double()
                   @ algo[f"{net}.0.mask"][0].double()).sum(0) for net in ("actor.net", "critic.q1", "critic.q2")}
    assert f"inputs with a path to the output: {int((paths['actor.net'] > 0).sum())}/11" in text
    assert f"q2 {int((paths['critic.q2'] > 0).sum())}/14" in text                    # Hopper: 11 obs + 3 actions
    assert (run / "pathway.png").stat().st_size > 10_000

    policy = npth.load_policy(run)
    obs = np.zeros(11)
    a, state = policy.predict(obs, deterministic=True)
    assert a.shape == (3,) and state is None and policy.density == pytest.approx(0.05, abs=0.002)
    policy.save(tmp_path / "policy.pt")
    again = npth.Policy.load(tmp_path / "policy.pt")
    assert np.array_equal(again.predict(obs, deterministic=True)[0], a)
    res = npth.evaluate(again, episodes=2, seed=3)
    assert res["episodes"] == 2 and len(res["returns"]) == 2
    meta = json.loads(next((run / "checkpoints").glob("ckpt-*/meta.json")).read_text())
    assert meta["obs_dim"] == 11 and meta["hidden"] == [32, 32]


def test_eval_video_is_written_or_refused_in_one_line(tmp_path):
    run = tmp_path / "run"
    npth.Trainer(npth.Config().set({**TINY, "env": "InvertedPendulum-v5", "steps": 150, "run_dir": str(run)})).train()
    video = tmp_path / "episode.gif"
    proc = subprocess.run([sys.executable, "-m", "neuropath.cli", "eval", str(run), "--episodes", "1",
                           "--video", str(video)], capture_output=True, text=True, timeout=300)
    if proc.returncode == 0:                       # this machine renders (OSMesa or EGL)
        assert video.stat().st_size > 1000 and "frames" in proc.stdout
    else:                                          # it cannot: one clear line, nothing written
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert "render" in proc.stderr and not video.exists()
    # never overwrite an existing file
    video.write_bytes(b"mine")
    proc = subprocess.run([sys.executable, "-m", "neuropath.cli", "eval", str(run), "--episodes", "1",
                           "--video", str(video)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and video.read_bytes() == b"mine"


def test_readme_python_api_flow(tmp_path):
    cfg = npth.load_preset("quickstart", steps=300, seed_steps=100, init_steps=100, eval_every=150,
                           eval_episodes=1, hidden=[16, 16], batch_size=32, progress=False,
                           run_dir=str(tmp_path / "api"))
    assert cfg.run.env == "InvertedPendulum-v5" and cfg.pathway.freeze_return == "900"
    trainer = npth.Trainer(cfg)
    stops = []
    trainer.train(callback=lambda step, info: stops.append(step) or step < 200)
    assert trainer.step == 200 and stops[-1] == 200
    trainer = npth.Trainer.resume(trainer.run_dir, steps=400)
    assert trainer.cfg.run.steps == 400
    trainer.train()
    assert trainer.step == 400
    policy = npth.load_policy(trainer.run_dir)
    action, _ = policy.predict(np.zeros(4), deterministic=True)
    assert action.shape == (1,) and -3.0 <= action[0] <= 3.0          # the env's own bounds


def test_ctrl_c_saves_a_checkpoint_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    trainer = npth.Trainer(npth.Config().set({**TINY, "steps": 500, "checkpoint_every": 10_000,
                                              "run_dir": str(run)}))

    def interrupt(step, info):
        if step == 333:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        trainer.train(callback=interrupt)
    assert (run / "checkpoints" / "ckpt-000000333").is_dir()
    assert main(["train", "--resume", str(run)]) == 0
    rows = read_csv(run / "metrics.csv")
    assert [int(r["step"]) for r in rows] == [200, 400, 500]


def test_callback_stop_at_an_episode_end_still_checkpoints(tmp_path):
    run = tmp_path / "run"
    t = npth.Trainer(npth.Config().set({**TINY, "env": "Pendulum-v1", "pathway": "dense", "steps": 1000,
                                        "checkpoint_every": 10_000, "run_dir": str(run)}))
    t.train(callback=lambda step, info: step < 200)         # Pendulum's first episode ends at 200
    assert (run / "checkpoints" / "ckpt-000000200").is_dir()
    assert read_csv(run / "metrics.csv")[-1]["step"] == "200"


def test_runs_listing_and_print_config(tmp_path, capsys):
    npth.Trainer(npth.Config().set({**TINY, "steps": 200, "run_dir": str(tmp_path / "runs" / "a")})).train()
    assert main(["runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["run", "env", "pathway"]
    assert out[1].split()[:4] == ["a", "Hopper-v5", "dapd", "0.05"] and "200/200" in out[1] and "done" in out[1]
    assert main(["runs", str(tmp_path / "none")]) == 2
    assert main(["train", "--preset", "hopper-dapd", "--keep-ratio", "0.1", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["pathway"]["keep_ratio"] == 0.1 and printed["run"]["env"] == "Hopper-v5"
    assert not (tmp_path / "runs" / "b").exists()


def test_sigterm_checkpoints_and_the_run_resumes(tmp_path):
    import signal
    import time
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "neuropath.cli", "train",
                             *_flags({**TINY, "steps": 100_000, "checkpoint_every": 50_000}), "--run-dir", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    metrics = run / "metrics.csv"
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= 2) and time.time() < deadline:
        time.sleep(0.5)                                 # a logged row: training has taken steps
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and f"--resume {run}" in err
    trainer = npth.Trainer.resume(run)
    assert 0 < trainer.step < 50_000                    # saved at the signal, not at a scheduled checkpoint


def test_lottery_draws_distinct_pathways_from_one_state_and_trains_each(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *_flags({**TINY, "steps": 400}), "--pathway", "dapd", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    assert main(["lottery", str(run), "--n", "2", "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "share of one draw's actor pathway that another draw also uses" in out
    for i in range(2):
        rows = read_csv(run / "lottery" / f"draw-{i}" / "metrics.csv")
        assert [r["step"] for r in rows][-1] == "600" and rows[-1]["phase"] == "frozen"
    shares = [float(line.split("|")[2]) for line in out.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert len(shares) == 2 and all(0.0 < s < 1.0 for s in shares)       # new pathways, partly shared
    assert main(["lottery", str(run), "--n", "2", "--steps", "200"]) == 2    # never overwrites the draws


@pytest.mark.parametrize("command", [[], ["train"], ["sweep"], ["report"], ["flops"], ["export"], ["lottery"],
                                     ["dataset"], ["dataset", "make"], ["eval"], ["inspect"], ["runs"],
                                     ["overlap"]])
def test_every_help_page_renders(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0 and "usage: neuropath" in capsys.readouterr().out


@pytest.mark.parametrize("score,pathway", [("grasp", "dapd"), ("synflow", "static"), ("grad", "dapd")])
def test_every_score_finds_an_exact_pathway_in_a_real_run(tmp_path, score, pathway):
    run = tmp_path / score
    rc = main(["train", *_flags({**TINY, "steps": 300, "freeze_step": 250, "synflow_rounds": 5}),
               "--pathway", pathway, "--score", score, "--run-dir", str(run)])
    assert rc == 0
    events = [json.loads(x) for x in (run / "pathway.jsonl").read_text().splitlines()]
    assert {e["net"] for e in events if e["event"] == "init"} == {"actor", "critic"}
    assert all(abs(e["density"] - 0.05) < 0.001 for e in events if e["event"] in ("init", "update"))
    if pathway == "dapd":
        assert any(e["event"] == "update" for e in events)


def test_each_network_can_take_its_own_score(tmp_path, capsys):
    """--actor-score / --critic-score override --score per network; the initial mask of a magnitude-scored
    actor is exactly the top-k of its initial |θ|."""
    from neuropath.pathways import masked_layers, topk_masks
    from neuropath.training.loops.sac import Trainer
    from neuropath.training.config import Config
    cfg = Config().set({**TINY, "steps": 120, "pathway": "static", "score": "snip", "actor_score": "magnitude",
                        "critic_score": "random", "run_dir": str(tmp_path / "own")})
    trainer = Trainer(cfg.validate())
    assert {n: pw.method.score for n, pw in trainer.pathways.items()} == {"actor": "magnitude", "critic": "random"}
    initial = {n: m.weight.detach().abs().clone() for n, m in masked_layers(trainer.algo.actor).items()}
    trainer.train()
    expected = topk_masks(initial, 0.05)
    assert all(torch.equal(m.mask[0], expected[n]) for n, m in masked_layers(trainer.algo.actor).items())
    assert main(["inspect", str(tmp_path / "own"), "--no-plot"]) == 0
    assert "score snip (actor magnitude, critic random)" in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [(["--score", "snap"], "--score must be one of snip, grad, grasp"),
                                         (["--critic-score", "snap"], "--critic-score must be one of snip"),
                                         (["--pathway", "rigl", "--actor-score", "grasp"],
                                          "--actor-score grasp: --pathway rigl does not score its pathway"),
                                         (["--score", "synflow", "--synflow-rounds", "0"], "--synflow-rounds")])
def test_bad_scores_end_in_one_line(tmp_path, capsys, args, needle):
    assert main(["train", "--env", "Hopper-v5", *args, "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_reader_that_leaves_the_pipe_early_gets_no_traceback(tmp_path):
    """`neuropath presets | head -1`: the reader closes the pipe before neuropath writes; the command
    stops quietly (exit 141, as a Unix tool cut off by SIGPIPE) instead of printing a BrokenPipeError."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "neuropath.cli", "presets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()                      # gone before the first write (the import takes a second)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_a_new_run_from_a_runs_config_yaml(tmp_path, capsys):
    """`train --config RUN/config.yaml` starts a new run with that run's settings (its version line and run
    directory ignored: a new folder), flags after it override; the old run is left as it was."""
    old = tmp_path / "old"
    npth.Trainer(npth.Config().set({**TINY, "pathway": "dapd", "steps": 200, "lr": 5e-4,
                                    "run_dir": str(old)})).train()
    before = {p: p.read_bytes() for p in old.rglob("*") if p.is_file()}
    new = tmp_path / "new"
    assert main(["train", "--config", str(old / "config.yaml"), "--steps", "300", "--run-dir", str(new)]) == 0
    assert {p: p.read_bytes() for p in old.rglob("*") if p.is_file()} == before
    a, b = (yaml.safe_load((d / "config.yaml").read_text()) for d in (old, new))
    assert b["run"]["steps"] == 300 and b["run"]["run_dir"] == str(new) and b["sac"]["lr"] == 5e-4
    for section in a:
        if isinstance(a[section], dict):
            diff = {k for k in a[section] if a[section][k] != b[section][k]}
            assert diff <= {"steps", "run_dir"}, (section, diff)
    assert [int(r["step"]) for r in read_csv(new / "metrics.csv")][-1] == 300
    assert main(["train", "--config", str(old), "--preset", "quickstart"]) == 2
    assert "use one" in capsys.readouterr().err


def test_tensorboard_holds_the_settings_once_and_each_density_once(tmp_path):
    """A run's TensorBoard log has its settings as a text table (as CleanRL and SB3 log them), one density
    series per network (not one per cadence), and the progress bar carries one rate (tqdm's)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    run = tmp_path / "run"
    trainer = npth.Trainer(npth.Config().set({**TINY, "pathway": "dapd", "steps": 400, "log_every": 100,
                                              "run_dir": str(run)}))
    trainer.train()
    acc = EventAccumulator(str(run / "tb"), size_guidance={"tensors": 0})
    acc.Reload()
    texts = acc.Tags()["tensors"]
    assert any("hyperparameters" in t for t in texts), texts
    table = acc.Tensors(next(t for t in texts if "hyperparameters" in t))[0].tensor_proto.string_val[0].decode()
    assert "|pathway.keep_ratio|0.05|" in table and "|sac.batch_size|32|" in table
    density = [t for t in acc.Tags()["scalars"] if "density" in t]
    assert sorted(density) == ["pathway/actor_density", "pathway/critic_density"], density
    assert "sps" not in trainer.postfix()


def test_an_evaluation_callback_stop_ends_the_step_first_so_the_resumed_run_is_the_same_run(tmp_path):
    """``on_eval`` returning False at an evaluation where a mask update is also due (Pendulum's episodes end at
    multiples of 200 steps, so DAPD's warm-up updates fall on the evaluations): the step is finished (mask update,
    episode end, checkpoint) before the run stops, and the resumed run is the uninterrupted one. It was stopped
    inside the evaluation, skipping that step's mask update and episode end."""
    cfg = {**TINY, "env": "Pendulum-v1", "steps": 800, "checkpoint_every": 10_000}
    full = npth.Trainer(npth.Config().set({**cfg, "run_dir": str(tmp_path / "full")}))
    full.train()
    cut = npth.Trainer(npth.Config().set({**cfg, "run_dir": str(tmp_path / "cut")}))
    row = npth.train(cut, on_eval=lambda r: r["step"] < 400)
    assert row["step"] == 400 and (tmp_path / "cut" / "checkpoints" / "ckpt-000000400").is_dir()
    npth.train(npth.Trainer.resume(tmp_path / "cut"))
    a, b = read_csv(tmp_path / "full" / "metrics.csv"), read_csv(tmp_path / "cut" / "metrics.csv")
    assert [(r["step"], r["return_mean"]) for r in a] == [(r["step"], r["return_mean"]) for r in b]
    events = [[(e["step"], e["net"], e["event"], e.get("changed")) for e in read_jsonl(d / "pathway.jsonl")]
              for d in (tmp_path / "full", tmp_path / "cut")]
    assert (400, "actor", "update") in {e[:3] for e in events[0]} and events[0] == events[1]
    episodes = [(d / "episodes.csv").read_text() for d in (tmp_path / "full", tmp_path / "cut")]
    assert episodes[0] == episodes[1]
