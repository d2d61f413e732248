"""The training loops, one file per kind of run, each a `training.run.Run` (the skeleton they share):

- `sac`: online SAC on one Gymnasium environment (DAPD, static, SET, RigL, RLx2 pathways);
- `ppo`: PPO on one environment (vector envs, observation and reward normalisation);
- `dqn`: DQN on CartPole-like, MinAtar and Atari games;
- `mtsac`: MT-SAC on a multi-task benchmark (MT10), a pathway per task;
- `offline`: IQL and BCQ on a Minari dataset (NPF's single-shot pathways);
- `offline_multitask`: IQL and BCQ on MT10 datasets, a pathway per task.

`neuropath.kinds` names each loop's trainer; a loop reaches its pathways through `training.pathway_driver`.
"""
