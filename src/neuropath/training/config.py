"""Typed configuration of a training run: one dataclass per concern, composed in `Config`.

Every field is a command-line flag (``keep_ratio`` → ``--keep-ratio``) and a preset key;
field names are unique across sections so that a flat ``key: value`` YAML preset can set
any of them. The docstring under each field is its ``--help`` text.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

from ..algos.sac import SACConfig
from ..envs.pixels import is_image_env
from ..errors import UsageError

PATHWAYS = ("dapd", "dense", "static", "random", "set", "rigl", "rlx2", "npf")
OFFLINE_PATHWAYS = ("npf", "dense", "random")
OFFLINE_ALGOS = ("iql", "bcq")
ONLINE_ALGOS = ("sac", "ppo", "dqn")
DYNAMIC = ("set", "rigl", "rlx2")

# Freeze thresholds on the mean evaluation return used when --freeze-return is "auto".
# HalfCheetah 8000 is the authors' (README of their code). The others are ours: roughly
# what a dense SAC reaches late in a 1M-step run on v5, since the paper's are not public.
AUTO_FREEZE_RETURN = {"HalfCheetah": 8000.0, "Walker2d": 4000.0, "Hopper": 3000.0, "Ant": 4000.0,
                      "Humanoid": 5000.0}


@dataclass
class RunConfig:
    """What to train on, for how long, and where the run lives."""
    env: str = "HalfCheetah-v5"
    """Gymnasium environment id (continuous actions), e.g. Hopper-v5"""
    algo: str = "auto"
    """algorithm: sac (online default), ppo, dqn; with --dataset: iql (default; networks: --hidden) or bcq
    (--bcq-hidden, --vae-hidden) (default: auto, i.e. sac online, iql with --dataset)"""
    benchmark: str | None = None
    """multi-task benchmark instead of --env: MT10 (Meta-World); --steps then counts steps per task"""
    tasks: str | None = None
    """multi-task: a comma-separated subset of the benchmark's tasks, e.g. reach-v3,push-v3 (default: all)"""
    episode_steps: int | None = None
    """multi-task: episode length (default: Meta-World's 500 online; offline: the datasets' own, 150 for
    `neuropath dataset make MT10`); 150 as in mtrl"""
    heads: str = "shared"
    """multi-task: output layers shared by all tasks, or per-task (shared trunk, one head per task)"""
    steps: int = 1_000_000
    """environment steps (one gradient update per step after the seed steps)"""
    seed_steps: int = 5000
    """initial steps with uniform random actions and no updates"""
    eval_every: int = 5000
    """evaluate every this many steps"""
    eval_episodes: int = 10
    """deterministic episodes per evaluation"""
    seed: int = 0
    """seed of environment, networks and sampling"""
    replay_size: int = 1_000_000
    """replay buffer capacity (transitions; per task with --benchmark)"""
    run_dir: str | None = None
    """run directory (default: a new folder under runs/)"""
    device: str = "auto"
    """auto, cpu or cuda"""
    threads: int = 0
    """torch CPU threads (0 = auto: one for a SAC run on the sparse kernels, which are single-threaded and
    measured no faster with more; torch's default otherwise)"""
    sparse: str = "auto"
    """sparse execution of masked layers: auto (on the CPU for pathways of <= 30% of the
    weights with SAC, DQN and the offline algorithms, where it was measured faster; not PPO, where it was
    slower; multi-task layers stay dense), on, or off (dense matmul times the mask)"""
    checkpoint_every: int = 50_000
    """checkpoint at the first episode end after every this many steps"""
    checkpoint_minutes: float = 10.0
    """SAC: also checkpoint at the first episode end after this many minutes of wall time (0 = off), so that a
    kill never costs more"""
    keep_checkpoints: int = 2
    """how many recent checkpoints to keep on disk"""
    log_every: int = 1000
    """write training scalars to TensorBoard every this many steps"""
    progress: bool = True
    """show a progress bar"""


# The settings that tell our DAPD from the authors' (docs/decisions.md), with their allowed values.
CHOICES = {"boundary_order": ("eval-first", "mask-first"), "score_temperature": ("current", "init"),
           "adam_on_change": ("zero", "keep"), "entry_rule": ("global", "own-age"),
           "score_batches": ("separate", "shared")}

# Named sets of those settings: a sweep method ``dapd@authors`` runs DAPD with them, and a report labels
# runs that have them so (``dapd@authors``, ``dapd@own-age``); presets <env>-dapd-authors are the first.
VARIANTS: dict[str, dict[str, Any]] = {
    "authors": {"moving_average": 1, "score_temperature": "init", "adam_on_change": "keep",
                "score_batches": "shared", "boundary_order": "eval-first"},
    "own-age": {"entry_rule": "own-age"},
}

# Settings whose default changed: the value a run written before the setting existed ran with, so that
# resuming or reporting an old run keeps what it did (`fill_legacy`).
LEGACY_DEFAULTS = {"pathway": {"boundary_order": "mask-first"}}


def fill_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """A run's stored config (sections of settings) with `LEGACY_DEFAULTS` filled in where it lacks them.
    Before 0.3 ``offline_lr`` defaulted to 3e-4 and BCQ never read it (it trained at its own 1e-3): a stored
    3e-4 is the default of then, today's none (IQL's 3e-4, BCQ's 1e-3: what those runs trained with)."""
    run = data["run"] if isinstance(data.get("run"), dict) else {}
    offline = data["offline"] if isinstance(data.get("offline"), dict) else {}
    unread = KIND_UNREAD.get(unread_kind(run.get("algo"), run.get("benchmark"), offline.get("dataset")), {})
    for section, values in LEGACY_DEFAULTS.items():
        if isinstance(data.get(section), dict):
            for key, value in values.items():
                if key not in unread:                       # a kind that never read it has the default
                    data[section].setdefault(key, value)
    if offline.get("offline_lr") == 3e-4:
        offline["offline_lr"] = None
    return data


# Each algorithm's own settings dataclass is filled from its config section by name: ``<prefix><field>``
# first, then ``<field>``, then the SAC section's fields it reads (`SAC_FIELDS_READ`); a none is the
# algorithm's own default. A new PPO setting is then a field in `PPOSettings` (``ppo_lr`` or ``clip``) and
# one in `PPOConfig`, and nothing copies it by hand.
ALGO_SECTIONS = {"ppo": ("ppo", "ppo_"), "dqn": ("dqn", "dqn_"), "iql": ("offline", "offline_"),
                 "bcq": ("offline", "bcq_")}


def algo_settings(cls: type, cfg: "Config", algo: str) -> Any:
    """``cls`` (the algorithm ``algo``'s settings dataclass, e.g. `PPOConfig`) from the run's config."""
    section_name, prefix = ALGO_SECTIONS[algo]
    section, shared = getattr(cfg, section_name), SAC_FIELDS_READ[algo] or ()
    values = {}
    for f in dataclasses.fields(cls):
        if algo == "bcq" and f.name == "lr":
            value = cfg.offline.offline_lr          # the offline section's one learning rate
        elif hasattr(section, prefix + f.name):
            value = getattr(section, prefix + f.name)
        elif hasattr(section, f.name):
            value = getattr(section, f.name)
        elif f.name in shared:
            value = getattr(cfg.sac, f.name)
        else:
            continue
        if value is not None:
            values[f.name] = value
    return cls(**values)


# Settings an algorithm does not read: SAC's section is read whole by SAC (and MT10's SAC), in part by the others
# (γ by every algorithm); the PPO, DQN and offline sections only by their own. A flag for another algorithm
# is refused with the one this algorithm reads instead, where it has one (`Config.check_read`).
SAC_FIELDS_READ = {"sac": None, "ppo": ("gamma",), "dqn": ("gamma",), "iql": ("gamma", "hidden", "batch_size", "tau"),
                   "bcq": ("gamma", "tau")}
SECTION_READERS = {"ppo": ("ppo",), "dqn": ("dqn",), "offline": ("iql", "bcq")}
OFFLINE_ONLY = {"bcq": ("expectile", "beta", "normalize_reward"),
                "iql": ("bcq_hidden", "vae_hidden", "bcq_batch_size", "phi", "lmbda")}
READS_INSTEAD = {
    "ppo": {"lr": "ppo_lr", "hidden": "ppo_hidden", "batch_size": "minibatches"},
    "dqn": {"lr": "dqn_lr", "batch_size": "dqn_batch_size", "target_every": "dqn_target_every",
            "hidden": "dqn_hidden"},
    "iql": {"lr": "offline_lr", "bcq_hidden": "hidden", "bcq_batch_size": "batch_size"},
    "bcq": {"lr": "offline_lr", "hidden": "bcq_hidden", "batch_size": "bcq_batch_size"},
    "sac": {"ppo_lr": "lr", "ppo_hidden": "hidden", "dqn_lr": "lr", "dqn_batch_size": "batch_size",
            "dqn_target_every": "target_every", "dqn_hidden": "hidden", "offline_lr": "lr", "bcq_hidden": "hidden",
            "bcq_batch_size": "batch_size"},
}

# Pathway settings a kind of run does not read, with why: the kind always does what their default says, so
# only another value (or naming the flag) is refused. Online MT10 scores its first masks on the replay at
# --seed-steps, with no dense acting phase before; its `TaskPathway` always zeroes the changed entries'
# moments and keeps pruned values until the merge. PPO evaluates inside its rollout, so before that
# rollout's updates and mask update. An offline pathway is chosen once, before training.
_NO_TEMPERATURE = "its scoring losses have no temperature"
_OFFLINE_ONCE = "an offline pathway is chosen once, before training"
KIND_UNREAD: dict[str, dict[str, str]] = {
    "mt10": {"init_steps": "MT10 scores its first masks on the replay buffer at --seed-steps",
             "score_temperature": "MT10 scores with each task's learned temperature",
             "adam_on_change": "MT10 zeroes the Adam moments of the entries whose mask changed",
             "entry_rule": "Adam's own-age bias correction is single-task only",
             "prune": "MT10's inactive weights keep their values until the merge"},
    "ppo": {"boundary_order": "PPO evaluates inside its rollout, before that rollout's update and mask update "
                              "(always eval-first)",
            "score_temperature": _NO_TEMPERATURE},
    "dqn": {"score_temperature": _NO_TEMPERATURE},
    "offline": {name: _OFFLINE_ONCE for name in CHOICES},
}


def unread_kind(algo: str | None, benchmark: str | None, dataset: str | None) -> str:
    """A run's key in `KIND_UNREAD`: offline (any dataset), mt10 (online multi-task), else its algorithm."""
    if dataset is not None:
        return "offline"
    return "mt10" if benchmark is not None else (algo or "")


# DQN settings that only one kind of observation reads: the MLP's widths, the convolutions' masks.
DQN_VECTOR_ONLY = ("dqn_hidden",)
DQN_IMAGE_ONLY = ("mask_conv",)

SCORING_PATHWAYS = ("dapd", "static", "npf")
"""the pathway methods that rank weights by a score (--score); the others draw or grow their masks"""


def field_default(f: dataclasses.Field) -> Any:
    """A settings field's default value (a fresh one for a list)."""
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def setting_choices() -> dict[str, tuple[str, ...]]:
    """The allowed values of every setting that has a fixed set (shown in --help; `Config.validate` checks them)."""
    from ..pathways.scores import SCORES
    from ..pathways.topk import SCOPES
    scores = tuple(SCORES)
    return {"algo": ("auto", *ONLINE_ALGOS, *OFFLINE_ALGOS), "pathway": PATHWAYS, "sparse": ("auto", "on", "off"),
            "heads": ("shared", "per-task"), "prune": ("keep", "zero"), "distribution": ("erk", "uniform"),
            "scope": tuple(SCOPES), "score": scores, "actor_score": scores, "critic_score": scores,
            "npf_actor_loss": ("own", "bc"), **CHOICES}


@dataclass
class PathwayConfig:
    """Which pathway method shapes the networks and its DAPD knobs."""
    pathway: str = "dapd"
    """dapd, dense, static (initial SNIP mask kept), random (random static mask), or the
    sparse-training baselines set, rigl, rlx2"""
    keep_ratio: float = 0.05
    """fraction of each network's weights in the pathway, in (0, 1]"""
    actor_keep: float | None = None
    """keep ratio of the actor alone (none = --keep-ratio)"""
    critic_keep: float | None = None
    """keep ratio of the critic alone (none = --keep-ratio)"""
    window: int = 1000
    """L: score on the most recent L transitions"""
    score_batch: int = 256
    """transitions per scoring pass"""
    moving_average: int = 5
    """K: the mask is the top-k of the mean of the last K scores"""
    mask_every: int = 0
    """update the mask every this many steps during warm-up (0 = at every episode end)"""
    init_steps: int = 5000
    """steps of the untrained policy that score the initial mask (not counted in --steps)"""
    freeze_return: str = "auto"
    """freeze the mask once the eval return exceeds this: a number, auto (per-env table) or none"""
    freeze_step: int | None = None
    """freeze the mask at this step whatever the return (none = no step trigger)"""
    freeze_success: float = 0.6
    """multi-task: freeze (and merge) once the mean eval success rate reaches this"""
    prune: str = "keep"
    """keep: inactive weights keep their values; zero: they are set to zero"""
    boundary_order: str = "eval-first"
    """where an evaluation and a mask update fall on one step: eval-first (evaluate, test the freeze, then
    update the mask: the authors' order) or mask-first (neuropath before 0.3: the evaluation sees the new mask)"""
    score_temperature: str = "current"
    """SAC: the temperature α in the scoring losses: current (the learned α) or init (--init-temperature,
    as the authors' rebuilt scoring agent has)"""
    adam_on_change: str = "zero"
    """Adam moments of the entries whose mask changed: zero (reset them) or keep (the authors)"""
    entry_rule: str = "global"
    """Adam's bias correction of an entry that joins the pathway with zero moments: global (the tensor's step
    count, as torch and both codes: a newcomer's first steps are 3-6x lr) or own-age (from the entry's own age
    since its moments started at zero, as a fresh Adam would: steps of ~lr)"""
    score_batches: str = "separate"
    """DAPD: one scoring batch per network (separate) or one batch shared by actor and critic (shared, the
    authors)"""
    scope: str = "global"
    """top-k over the whole network (global, the paper), per layer (layer) or per member network (member: the twin
    critic's Q1 and Q2, BCQ's VAE encoder and decoder each keep their share)"""
    score: str = "snip"
    """connection score: snip, grad, grasp, synflow, magnitude or random"""
    actor_score: str | None = None
    """score of the actor alone (none = --score)"""
    critic_score: str | None = None
    """score of the critic (and PPO's or IQL's value network) alone (none = --score)"""
    synflow_rounds: int = 100
    """synflow: pruning rounds of its exponential keep schedule"""
    distribution: str = "erk"
    """set/rigl/rlx2: per-layer allocation of the keep ratio, erk or uniform"""
    update_every: int | None = None
    """set/rigl/rlx2: drop/grow every this many steps, ΔT (none = the method's published value)"""
    drop_fraction: float | None = None
    """set/rigl/rlx2: initial drop fraction ζ0, cosine-decayed (none = published value)"""
    update_end: float | None = None
    """set/rigl/rlx2: stop topology updates after this fraction of --steps (none = published)"""


@dataclass
class OfflineConfig:
    """Offline RL (``--dataset``): the algorithm, its own knobs, and NPF's single-shot scoring."""
    dataset: str | None = None
    """train offline on this Minari dataset id (see `neuropath dataset list`); with --benchmark MT10 a kind
    (expert, medium, medium-expert, expert-replay): each task's dataset of that kind; --steps counts updates"""
    npf_batches: int = 10
    """npf: batches of the dataset the single SNIP score is summed over"""
    npf_actor_loss: str = "own"
    """npf: the loss that scores IQL's actor: own (its advantage-weighted training loss) or bc (the unweighted
    log-likelihood of the dataset's actions: before training the critics are random, so the advantage weights
    are noise that can put most of a batch's weight on a few samples)"""
    offline_lr: float | None = None
    """learning rate of every offline network (none = the algorithm's official one: IQL 3e-4, BCQ 1e-3)"""
    expectile: float = 0.7
    """iql: expectile of the value regression"""
    beta: float = 3.0
    """iql: inverse temperature of the advantage weights"""
    transitions: int | None = None
    """train on a random subset of this many transitions (whole episodes, drawn by --seed; per task
    with --benchmark): the sample-size study on one made dataset"""
    normalize_reward: bool = True
    """iql: scale rewards by 1000 / (max - min episode return), as IQL does on MuJoCo"""
    bcq_hidden: list[int] = field(default_factory=lambda: [400, 300])
    """bcq: hidden widths of the perturbation actor and each critic"""
    vae_hidden: list[int] = field(default_factory=lambda: [750, 750])
    """bcq: hidden widths of the VAE's encoder and decoder"""
    bcq_batch_size: int = 100
    """bcq: minibatch size"""
    phi: float = 0.05
    """bcq: largest perturbation of a decoded action"""
    lmbda: float = 0.75
    """bcq: weight of the min in the soft clipped double-Q target"""


@dataclass
class RLx2Config:
    """RLx2's additions to topology evolution, used with --pathway rlx2 only; the defaults
    are those of its released code (Tan et al. 2023)."""
    nstep: int = 3
    """rlx2: n of the multi-step TD target"""
    nstep_delay: int = 300_000
    """rlx2: gradient updates with 1-step targets before switching to n-step for good"""
    dynamic_buffer: bool = True
    """rlx2: drop the oldest data when it is too far from the current policy"""
    buffer_threshold: float = 0.2
    """rlx2: policy distance D (MSE/2 to the stored mean actions) above which data is dropped"""
    buffer_check_every: int = 10_000
    """rlx2: measure the policy distance every this many steps"""
    buffer_check_size: int = 2048
    """rlx2: number of oldest transitions D is measured on"""
    buffer_min: int = 200_000
    """rlx2: never shrink the buffer below this many transitions"""
    buffer_drop: float = 0.1
    """rlx2: fraction of the buffer dropped (oldest first) when D is above the threshold"""


@dataclass
class PPOSettings:
    """PPO (--algo ppo), CleanRL / Stable-Baselines3 MuJoCo defaults; γ is --gamma."""
    ppo_hidden: list[int] = field(default_factory=lambda: [64, 64])
    """ppo: hidden widths of the (separate, tanh) actor and value networks"""
    ppo_lr: float = 3e-4
    """ppo: Adam learning rate (annealed linearly to 0 unless --no-anneal-lr)"""
    anneal_lr: bool = True
    """ppo: anneal the learning rate linearly to 0 over the run"""
    rollout_steps: int = 2048
    """ppo: environment steps per rollout and environment"""
    num_envs: int = 1
    """ppo: vectorised environments collecting each rollout"""
    epochs: int = 10
    """ppo: passes over each rollout"""
    minibatches: int = 32
    """ppo: minibatches per epoch"""
    gae_lambda: float = 0.95
    """ppo: GAE λ"""
    clip: float = 0.2
    """ppo: clip range of the probability ratio (and of the value, unless --no-clip-value)"""
    clip_value: bool = True
    """ppo: clip the value update to ±clip around the acting value (CleanRL; SB3's default is off)"""
    bootstrap_truncated: bool = False
    """ppo: at a time-limit truncation add γ·V(final observation) to the reward (SB3); off: a truncation ends the return like a termination (CleanRL)"""
    ent_coef: float = 0.0
    """ppo: entropy bonus coefficient"""
    vf_coef: float = 0.5
    """ppo: value loss coefficient"""
    max_grad_norm: float = 0.5
    """ppo: clip of the global gradient norm"""
    norm_obs: bool = True
    """ppo: normalise observations by running statistics (kept in checkpoints; clipped to ±10)"""
    norm_reward: bool = True
    """ppo: scale rewards by the running std of the discounted return (clipped to ±10)"""


@dataclass
class DQNSettings:
    """DQN (--algo dqn) on MinAtar, Atari or a discrete vector environment (CartPole-v1, ...); the replay is
    --replay-size, learning starts after --seed-steps, γ is --gamma. Defaults: CleanRL's dqn_atari with the
    Huber loss (the preset cartpole-dqn-* has CleanRL's dqn.py settings for CartPole)."""
    dqn_lr: float = 1e-4
    """dqn: Adam learning rate"""
    dqn_batch_size: int = 32
    """dqn: minibatch size"""
    train_every: int = 4
    """dqn: environment steps per gradient update"""
    dqn_target_every: int = 1000
    """dqn: gradient updates between hard copies into the target network"""
    eps_start: float = 1.0
    """dqn: initial ε of ε-greedy"""
    eps_end: float = 0.01
    """dqn: final ε"""
    eps_decay_steps: int = 250_000
    """dqn: steps over which ε decays linearly"""
    eval_epsilon: float = 0.05
    """dqn: ε during evaluation"""
    dqn_hidden: list[int] = field(default_factory=lambda: [120, 84])
    """dqn: hidden widths of the Q-network on vector observations (MinAtar/Atari use their published network)"""
    mask_conv: bool = False
    """dqn: mask the convolutions too (default: only the fully connected layers, as the paper)"""
    huber: bool = True
    """dqn: Huber TD loss (else squared)"""


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    sac: SACConfig = field(default_factory=SACConfig)
    pathway: PathwayConfig = field(default_factory=PathwayConfig)
    rlx2: RLx2Config = field(default_factory=RLx2Config)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    ppo: PPOSettings = field(default_factory=PPOSettings)
    dqn: DQNSettings = field(default_factory=DQNSettings)

    SECTIONS = ("run", "sac", "pathway", "rlx2", "offline", "ppo", "dqn")

    # ---- flat access: presets and the CLI set fields by their unique names ---------------

    @classmethod
    def fields(cls) -> dict[str, tuple[str, dataclasses.Field, str]]:
        """name → (section, field, help) for every settable field."""
        out: dict[str, tuple[str, dataclasses.Field, str]] = {}
        for section, klass in (("run", RunConfig), ("sac", SACConfig), ("pathway", PathwayConfig),
                               ("rlx2", RLx2Config), ("offline", OfflineConfig), ("ppo", PPOSettings),
                               ("dqn", DQNSettings)):
            docs = _field_docs(klass)
            for f in dataclasses.fields(klass):
                out[f.name] = (section, f, docs.get(f.name, ""))
        return out

    def set(self, values: dict[str, Any]) -> "Config":
        """Set fields by flat name (``keep_ratio``) or nested section (``{"sac": {...}}``)."""
        known = self.fields()
        for key, value in values.items():
            if key in self.SECTIONS and isinstance(value, dict):
                self.set(value)
                continue
            name = key.replace("-", "_")
            if name not in known:
                close = [k for k in known if k.startswith(name[:3])]
                raise UsageError(f"unknown setting {key!r}" + (f"; similar: {', '.join(close)}" if close else ""))
            section, f, _ = known[name]
            setattr(getattr(self, section), name, _coerce(name, f, value))
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {s: dataclasses.asdict(getattr(self, s)) for s in self.SECTIONS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        return cls().set(data)

    # ---- resolution and validation ---------------------------------------------------------

    def resolved_freeze_return(self) -> float | None:
        value = str(self.pathway.freeze_return).strip().lower()
        if value == "none":
            return None
        if value == "auto":
            family = self.run.env.split("/")[-1].split("-")[0]
            return AUTO_FREEZE_RETURN.get(family)
        return float(value)

    def keep_ratio_of(self, net: str) -> float:
        """The keep ratio of network ``net`` (actor/critic), after the per-network overrides."""
        own = getattr(self.pathway, f"{'critic' if net == 'value' else net}_keep", None)   # PPO's value = critic
        return self.pathway.keep_ratio if own is None else own

    def score_of(self, net: str) -> str:
        """The score of network ``net``, after the per-network overrides (a value network counts as a critic)."""
        own = getattr(self.pathway, f"{'critic' if net == 'value' else net}_score", None)
        return self.pathway.score if own is None else own

    def validate(self, given: set[str] | frozenset[str] = frozenset()) -> "Config":
        """Fill the defaults that depend on other settings, then let every section check itself
        (`SECTION_CHECKS`: its own values, and how they combine with the rest); ``given``: the names set on
        the command line (`check_read` refuses those the algorithm does not read even at their default)."""
        self._fill_defaults(given)
        self._check_finite()
        for section in self.SECTIONS:
            SECTION_CHECKS[section](getattr(self, section), self)
        self.check_read(given)
        return self

    def _fill_defaults(self, given: set[str] | frozenset[str]) -> None:
        """The one place defaults that depend on other settings are filled (CLI and Python API alike):
        ``--algo auto`` is IQL offline and SAC online; an offline run's default pathway is NPF's single shot."""
        r, p = self.run, self.pathway
        offline = self.offline.dataset is not None
        if r.algo == "auto":
            r.algo = "iql" if offline else "sac"
        if offline and p.pathway == "dapd" and "pathway" not in given:
            p.pathway = "npf"

    def _unread(self) -> tuple[str, dict[str, str]]:
        """This kind's name on the command line and the pathway settings it does not read (`KIND_UNREAD`)."""
        key = unread_kind(self.run.algo, self.run.benchmark, self.offline.dataset)
        name = f"--benchmark {self.run.benchmark}" if key == "mt10" else f"--algo {self.run.algo}"
        return name, KIND_UNREAD.get(key, {})

    def reads(self, name: str) -> bool:
        """Whether this run's algorithm reads setting ``name`` (after `validate` resolved ``algo``)."""
        algo = self.run.algo
        section = self.fields()[name][0]
        if name in self._unread()[1]:
            return False
        if section == "sac":
            read = SAC_FIELDS_READ.get(algo)
            return read is None or name in read
        if section in SECTION_READERS:
            if algo == "dqn" and name in DQN_VECTOR_ONLY + DQN_IMAGE_ONLY:
                return (name in DQN_IMAGE_ONLY) == is_image_env(self.run.env or "")
            return algo in SECTION_READERS[section] and name not in OFFLINE_ONLY.get(algo, ())
        return True

    def check_read(self, given: set[str] | frozenset[str] = frozenset()) -> None:
        """Refuse a setting this run's algorithm would silently ignore: one ``given`` (named on the command
        line) or set to other than its default (a preset, the Python API)."""
        changed = set(given)
        for name, (section, f, _) in self.fields().items():
            if getattr(getattr(self, section), name) != field_default(f):
                changed.add(name)
        for name in sorted(changed, key=list(self.fields()).index):
            if not self.reads(name):
                algo = self.run.algo
                kind, unread = self._unread()
                if name in unread:
                    raise UsageError(f"--{_flag(name)} is not read by {kind}: {unread[name]}")
                if algo == "dqn" and name in DQN_VECTOR_ONLY + DQN_IMAGE_ONLY:
                    kind = "vector observations (e.g. CartPole-v1)" if name in DQN_VECTOR_ONLY else \
                        "MinAtar/Atari games (convolutions)"
                    raise UsageError(f"--{_flag(name)} is read by --algo dqn only on {kind}, not on {self.run.env}")
                instead = READS_INSTEAD.get(algo, {}).get(name)
                hint = f"; {algo.upper()} reads --{_flag(instead)}" if instead else \
                    f"; {algo.upper()} has no such setting"
                raise UsageError(f"--{_flag(name)} is not read by --algo {algo}{hint}")


    def _check_finite(self) -> None:
        """Every number must be a finite one: a NaN or infinite setting would train silently to NaN."""
        for section in self.SECTIONS:
            for f in dataclasses.fields(getattr(self, section)):
                value = getattr(getattr(self, section), f.name)
                if isinstance(value, float) and not math.isfinite(value):
                    raise UsageError(f"--{_flag(f.name)} must be a finite number, got {value}")
        value = str(self.pathway.freeze_return).strip().lower()
        if value not in ("auto", "none"):
            try:
                number = float(value)
            except ValueError:
                return                      # not a number: `validate` names the allowed words
            if not math.isfinite(number):
                raise UsageError(f"--freeze-return must be a finite number, auto or none, got {value}")


# ---- each section's checks -----------------------------------------------------------------------------
# One function per section: its own values first, then how they combine with the others (``cfg``). The
# algorithms' sections (ppo, dqn, offline) check themselves only when their algorithm runs.

def _check_run(r: RunConfig, cfg: Config) -> None:
    if r.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {r.seed}")
    if r.checkpoint_minutes < 0:
        raise UsageError(f"--checkpoint-minutes must be >= 0 (0 = off), got {r.checkpoint_minutes}")
    for name in ("steps", "eval_every", "eval_episodes", "replay_size", "checkpoint_every", "keep_checkpoints",
                 "log_every"):
        _positive(name, getattr(r, name))
    for name in ("seed_steps", "threads"):
        if getattr(r, name) < 0:
            raise UsageError(f"--{_flag(name)} must be >= 0, got {getattr(r, name)}")
    if r.benchmark is not None:
        from ..envs.metaworld import check_benchmark, resolve_tasks
        check_benchmark(r.benchmark, r.episode_steps or 500)
        resolve_tasks(r.benchmark, r.tasks)
        if r.heads not in ("shared", "per-task"):
            raise UsageError(f"--heads must be shared or per-task, got {r.heads!r}")
    elif r.tasks is not None:
        raise UsageError("--tasks chooses tasks of a multi-task benchmark: it needs --benchmark")
    if cfg.offline.dataset is not None:
        if r.algo not in OFFLINE_ALGOS:
            raise UsageError(f"--algo must be one of {', '.join(OFFLINE_ALGOS)} with --dataset, got {r.algo!r}")
    else:
        if r.algo in OFFLINE_ALGOS:
            raise UsageError(f"--algo {r.algo} is an offline algorithm: it needs --dataset")
        if r.algo not in ONLINE_ALGOS:
            raise UsageError(f"unknown algorithm {r.algo!r}; online: {', '.join(ONLINE_ALGOS)}; "
                             f"offline (with --dataset): {', '.join(OFFLINE_ALGOS)}")
        if r.algo in ("ppo", "dqn") and r.benchmark is not None:
            where = "--env" if r.algo == "ppo" else "--env CartPole-v1, MinAtar/<Game>-v1 or ALE/<Game>-v5"
            raise UsageError(f"--algo {r.algo} runs on one environment ({where}), not on --benchmark")
    if r.sparse not in ("auto", "on", "off"):
        raise UsageError(f"--sparse must be auto, on or off, got {r.sparse!r}")
    if r.device not in ("auto", "cpu", "cuda") and not r.device.startswith("cuda:"):
        raise UsageError(f"--device must be auto, cpu or cuda, got {r.device!r}")


def _check_sac(s: SACConfig, cfg: Config) -> None:
    for name in ("batch_size", "target_every", "actor_every"):
        _positive(name, getattr(s, name))
    if not s.hidden or any(h < 1 for h in s.hidden):
        raise UsageError(f"--hidden needs one or more positive widths, got {s.hidden}")
    if not 0.0 < s.gamma <= 1.0 or not 0.0 < s.tau <= 1.0 or s.lr <= 0 or s.init_temperature <= 0:
        raise UsageError("gamma and tau must be in (0, 1]; lr and init temperature > 0")


# the pathway methods each algorithm runs (online MT10: DAPD or dense; the offline kinds: OFFLINE_PATHWAYS)
ALGO_PATHWAYS = {"ppo": ("dapd", "dense", "static", "random"),
                 "dqn": ("dapd", "dense", "static", "random", "set", "rigl")}


def _check_pathway(p: PathwayConfig, cfg: Config) -> None:
    r, offline = cfg.run, cfg.offline.dataset is not None
    for name in ("window", "score_batch", "moving_average"):
        _positive(name, getattr(p, name))
    for name in ("mask_every", "init_steps"):
        if getattr(p, name) < 0:
            raise UsageError(f"--{_flag(name)} must be >= 0, got {getattr(p, name)}")
    if p.pathway not in PATHWAYS:
        raise UsageError(f"unknown pathway method {p.pathway!r}; allowed: {', '.join(PATHWAYS)}")
    if not (isinstance(p.keep_ratio, float) and 0.0 < p.keep_ratio <= 1.0) or math.isnan(p.keep_ratio):
        raise UsageError(f"--keep-ratio must be in (0, 1], got {p.keep_ratio}")
    for name in ("actor_keep", "critic_keep"):
        value = getattr(p, name)
        if value is not None and (not 0.0 < value <= 1.0 or math.isnan(value)):
            raise UsageError(f"--{_flag(name)} must be in (0, 1], got {value}")
    if p.distribution not in ("erk", "uniform"):
        raise UsageError(f"--distribution must be erk or uniform, got {p.distribution!r}")
    if p.update_every is not None:
        _positive("update_every", p.update_every)
    if p.drop_fraction is not None and not 0.0 <= p.drop_fraction <= 1.0:
        raise UsageError(f"--drop-fraction must be in [0, 1], got {p.drop_fraction}")
    if p.update_end is not None and not 0.0 < p.update_end <= 1.0:
        raise UsageError(f"--update-end must be in (0, 1], got {p.update_end}")
    if p.prune not in ("keep", "zero"):
        raise UsageError(f"--prune must be keep or zero, got {p.prune!r}")
    for name, allowed in CHOICES.items():
        if getattr(p, name) not in allowed:
            raise UsageError(f"--{_flag(name)} must be one of {', '.join(allowed)}, got {getattr(p, name)!r}")
    from ..pathways.topk import SCOPES
    if p.scope not in SCOPES:
        raise UsageError(f"--scope must be one of {', '.join(SCOPES)}, got {p.scope!r}")
    if p.scope != "global" and r.benchmark is not None:
        raise UsageError(f"--scope {p.scope} is for single-task pathways; a multi-task pathway is ranked "
                         "globally per task")
    from ..pathways.scores import SCORES
    for name in ("score", "actor_score", "critic_score"):
        value = getattr(p, name)
        if value is not None and value not in SCORES:
            raise UsageError(f"--{_flag(name)} must be one of {', '.join(SCORES)}, got {value!r}")
    if p.synflow_rounds < 1:
        raise UsageError(f"--synflow-rounds must be >= 1, got {p.synflow_rounds}")
    chosen = [f"--{_flag(n)} {getattr(p, n)}" for n in ("score", "actor_score", "critic_score")
              if getattr(p, n) not in (None, "snip")]
    if chosen and p.pathway not in SCORING_PATHWAYS:
        raise UsageError(f"{chosen[0]}: --pathway {p.pathway} does not score its pathway (scores apply to "
                         f"{', '.join(SCORING_PATHWAYS)})")
    if p.freeze_step is not None and p.freeze_step < 0:
        raise UsageError(f"--freeze-step must be >= 0, got {p.freeze_step}")
    try:
        cfg.resolved_freeze_return()
    except ValueError:
        raise UsageError(f"--freeze-return must be a number, auto or none, got {p.freeze_return!r}") from None
    # which methods the run's kind can train
    if r.benchmark is not None:
        allowed = OFFLINE_PATHWAYS if offline else ("dapd", "dense")
        if p.pathway not in allowed:
            raise UsageError(f"--pathway {p.pathway} is not available with --benchmark "
                             f"{'and --dataset ' if offline else ''}yet ({', '.join(allowed)})")
        if not 0.0 <= p.freeze_success <= 1.0:
            raise UsageError(f"--freeze-success must be in [0, 1], got {p.freeze_success}")
    if offline:
        if p.pathway not in OFFLINE_PATHWAYS:
            raise UsageError(f"--pathway {p.pathway} is not an offline method; allowed with --dataset: "
                             f"{', '.join(OFFLINE_PATHWAYS)}")
    elif p.pathway == "npf":
        raise UsageError("--pathway npf is the offline single-shot pathway: it needs --dataset")
    elif r.algo in ALGO_PATHWAYS and p.pathway not in ALGO_PATHWAYS[r.algo]:
        raise UsageError(f"--pathway {p.pathway} is not available with --algo {r.algo} "
                         f"({', '.join(ALGO_PATHWAYS[r.algo])})")


def _check_rlx2(x: RLx2Config, cfg: Config) -> None:
    for name in ("nstep", "buffer_check_every", "buffer_check_size", "buffer_min"):
        _positive(name, getattr(x, name))
    if x.nstep_delay < 0:
        raise UsageError(f"--nstep-delay must be >= 0, got {x.nstep_delay}")
    if not 0.0 < x.buffer_drop < 1.0 or x.buffer_threshold < 0:
        raise UsageError("--buffer-drop must be in (0, 1) and --buffer-threshold >= 0")


def _check_offline(o: OfflineConfig, cfg: Config) -> None:
    if o.dataset is None:
        return
    if cfg.run.benchmark is not None:
        from ..data.metaworld_datasets import MT10_TRAIN_KINDS
        if o.dataset not in MT10_TRAIN_KINDS:
            raise UsageError(f"with --benchmark, --dataset is a dataset kind ({', '.join(MT10_TRAIN_KINDS)}), "
                             f"got {o.dataset!r}")
    if o.transitions is not None:
        _positive("transitions", o.transitions)
    _positive("npf_batches", o.npf_batches)
    if o.npf_actor_loss not in ("own", "bc"):
        raise UsageError(f"--npf-actor-loss must be own or bc, got {o.npf_actor_loss!r}")
    if o.npf_actor_loss == "bc" and cfg.run.algo != "iql":
        raise UsageError("--npf-actor-loss bc is for IQL's actor (BCQ's perturbation actor has no "
                         "likelihood to score)")
    _positive("bcq_batch_size", o.bcq_batch_size)
    if not 0.0 < o.expectile < 1.0 or (o.offline_lr is not None and o.offline_lr <= 0):
        raise UsageError("--expectile must be in (0, 1) and --offline-lr > 0")


def _check_ppo(g: PPOSettings, cfg: Config) -> None:
    if cfg.run.algo != "ppo" or cfg.offline.dataset is not None:
        return
    for name in ("rollout_steps", "num_envs", "epochs", "minibatches"):
        _positive(name, getattr(g, name))
    if (g.rollout_steps * g.num_envs) % g.minibatches:
        raise UsageError(f"--rollout-steps × --num-envs ({g.rollout_steps * g.num_envs}) must divide into "
                         f"--minibatches ({g.minibatches})")
    if not g.ppo_hidden or any(h < 1 for h in g.ppo_hidden):
        raise UsageError(f"--ppo-hidden needs one or more positive widths, got {g.ppo_hidden}")
    if g.ppo_lr <= 0 or g.clip <= 0 or not 0.0 <= g.gae_lambda <= 1.0 or g.max_grad_norm <= 0:
        raise UsageError("--ppo-lr, --clip and --max-grad-norm must be > 0 and --gae-lambda in [0, 1]")


def _check_dqn(d: DQNSettings, cfg: Config) -> None:
    if cfg.run.algo != "dqn" or cfg.offline.dataset is not None:
        return
    p = cfg.pathway
    if p.score == "synflow" and d.mask_conv and p.pathway in ("dapd", "static"):
        raise UsageError("--score synflow scores MLP pathways; with --mask-conv use snip, grad, grasp or magnitude")
    for name in ("dqn_batch_size", "train_every", "dqn_target_every"):
        _positive(name, getattr(d, name))
    if not (0.0 <= d.eps_end <= d.eps_start <= 1.0 and 0.0 <= d.eval_epsilon <= 1.0) or d.eps_decay_steps < 0:
        raise UsageError("ε settings need 0 <= --eps-end <= --eps-start <= 1, --eval-epsilon in [0, 1] "
                         "and --eps-decay-steps >= 0")
    if d.dqn_lr <= 0:
        raise UsageError(f"--dqn-lr must be > 0, got {d.dqn_lr}")
    if not d.dqn_hidden or any(h < 1 for h in d.dqn_hidden):
        raise UsageError(f"--dqn-hidden needs one or more positive widths, got {d.dqn_hidden}")


SECTION_CHECKS = {"run": _check_run, "sac": _check_sac, "pathway": _check_pathway, "rlx2": _check_rlx2,
                  "offline": _check_offline, "ppo": _check_ppo, "dqn": _check_dqn}
"""section → its checks (`Config.validate` runs them in `Config.SECTIONS` order); a new algorithm's section
adds one"""


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _positive(name: str, value: int) -> None:
    if value is None or value <= 0:
        raise UsageError(f"--{_flag(name)} must be a positive number, got {value}")


def _coerce(name: str, f: dataclasses.Field, value: Any) -> Any:
    """Convert a preset/CLI value to the field's type, with a one-line error."""
    kind = str(f.type)
    try:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if "None" in kind:
                return None
            if kind == "str":
                return "none"
            raise ValueError
        if kind.startswith("list[int]"):
            items = [value] if isinstance(value, (str, int)) else value
            return [int(v) for item in items for v in str(item).strip("[]").replace(",", " ").split()]   # also "[256, 256]"
        if kind.startswith("int"):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, (str, float)) else int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("bool"):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if kind.startswith("str"):
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    raise UsageError(f"--{_flag(name)}: cannot read {value!r} as {kind}")


@functools.cache
def _field_docs(klass: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (CleanRL/tyro style) → help texts. Cached: reading them
    parses the module's source (~15 ms a class), and `Config.fields()` is called for every setting."""
    try:
        tree = ast.parse(inspect.getsource(klass))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = nxt.value.value.strip()
    return docs


def score_summary(cfg: Config) -> str:
    """The run's score, with the per-network overrides: ``snip`` or ``snip (actor synflow)``."""
    p = cfg.pathway
    own = [f"{net} {value}" for net, value in (("actor", p.actor_score), ("critic", p.critic_score))
           if value is not None and value != p.score]
    return p.score + (f" ({', '.join(own)})" if own else "")
