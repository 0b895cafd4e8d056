"""Run configuration: ``configs/<algo>/defaults.yaml`` + ``<task>.yaml`` + overrides, typed and validated.

A run's config is flat: the runner's fields (:class:`RunConfig`) plus the learner's typed config
dataclass (e.g. ``SHACConfig``), so ``num_envs=16 seed=3 actor_lr=1e-3`` all override the same way.
The defaults name the learner (``learner: shac``); an algorithm is a directory of such YAMLs, so
``dva``, ``dpg_state`` and ``shac`` can share one learner class with different switches.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import re
from pathlib import Path
from typing import NamedTuple

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, read_write
from omegaconf.errors import ConfigKeyError, ValidationError

from algorithms import get_learner
from algorithms.base import bounded, check_bounds
from envs.contact import CONTACT_LAWS
from envs.core import MAX_ENVS
from envs.render import install_hint, renderers
from envs.tasks import registry as task_registry

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULTS = "defaults.yaml"  # an algo's settings; configs/<algo>/<task>.yaml holds what a task changes
MIN_IMAGE_SIZE = 16  # the DrQ-v2 encoder's four 3 x 3 convolutions (one of stride 2) need 15
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit
MAX_NAME = 200  # characters of a run name or a folder name (file systems allow 255, checkpoints add to it)
MAX_PATH = 3000  # characters of results_dir (Linux allows 4096 for a whole path; the run's files add to it)


class ConfigError(ValueError):
    """A one-line, user-facing configuration error."""


@dataclasses.dataclass
class RunConfig:
    algo: str = "shac"
    task: str = "cartpole"
    learner: str = "shac"
    seed: int = bounded(0, low=0, high=MAX_SEED)
    device: str = "auto"  # auto: cuda when available, else cpu
    num_envs: int = bounded(64, low=1, high=MAX_ENVS)
    contact_law: str = "dflex"  # dflex (the paper's: damping grows with depth) | newton; see README
    capture_graphs: bool = True  # each control step a captured Warp graph; false: kernel by kernel (same results)
    # control steps per agent step (DrQ-v2, CURL, DreamerV3: 2); env steps count control steps
    action_repeat: int = bounded(1, low=1)
    renderer: str | None = None  # set: the actor sees a frame stack from this backend (newton, diff, ...)
    image_size: int = bounded(84, high=1024)  # pixels per side of the frames (at least MIN_IMAGE_SIZE with a renderer)
    frames: int = bounded(3, low=1, high=16)
    budget: str | None = None  # stop early: "30min", "2h", "90s" (wall-clock) or "1e6steps" (env steps)
    eval_envs: int = bounded(16, low=1, high=MAX_ENVS)  # envs for the final deterministic evaluation (one episode each)
    # cut evaluation episodes short (quick looks, tests); None: full episodes
    eval_max_steps: int | None = bounded(None, low=1)
    checkpoint_every: int = bounded(50, low=1)  # iterations between checkpoints
    keep_checkpoints: int = bounded(3, low=0)  # newest kept per run; 0 keeps all (e.g. for diagnostics.apg_vs_dpg)
    results_dir: str = "results"
    run_name: str | None = None  # default: <algo>-<task>-seed<seed>[-<settings>] (default_run_name): reruns resume
    torch_threads: int = bounded(0, low=0)  # 0: torch's default
    max_skipped_updates: int = bounded(20, low=1)  # this many non-finite gradients in a row end the run as "diverged"
    logger: str = "none"  # none | wandb (offline unless WANDB_API_KEY / wandb login); results/ stays the record
    preset: str | None = None  # configs/presets/<preset>.yaml, applied over the algo's file (e.g. cpu); paper: none
    # a learner that distils another (dagger) names its teacher: an algo the runner trains first
    teacher: str | None = (
        None  # configs/<teacher>/, for the student's task, with the student's seed, device and threads
    )
    teacher_overrides: list[str] = dataclasses.field(default_factory=list)  # the teacher's key=value overrides
    teacher_run: str | None = None  # the teacher's run directory (default <run>/teacher): reused when finished


def algorithms() -> list[str]:
    """The algos: directories of ``configs/`` with a ``defaults.yaml`` (the learner and its settings)."""
    return sorted(p.parent.name for p in CONFIG_DIR.glob(f"*/{DEFAULTS}"))


def tasks() -> list[str]:
    """Every registered task (``envs/tasks/``); each algo runs each, on its defaults where it has no file."""
    return list(task_registry())


LOGGERS = ("none", "wandb")
WANDB_HINT = "logger=wandb needs wandb: pip install '.[wandb]' (or make install EXTRAS=dev,wandb)"


class Budget(NamedTuple):
    """What stops a run early: wall-clock seconds or env steps (None: no limit)."""

    seconds: float | None = None
    steps: int | None = None

    def reached(self, seconds: float, steps: int) -> bool:
        return bool((self.seconds and seconds >= self.seconds) or (self.steps and steps >= self.steps))


def parse_budget(budget: str | None) -> Budget:
    """The budget a config's string (``30min``, ``2h``, ``90s``, ``1e6steps``) means; one line when it means none."""
    if budget is None:
        return Budget()
    hint = "use e.g. budget=30min, 2h, 90s or 1e6steps"
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*(s|sec|min|m|h|steps)\s*", str(budget))
    try:
        value = float(match.group(1)) if match else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"budget '{budget}' not understood; {hint}")
    if value <= 0:
        raise ConfigError(f"budget '{budget}' is not positive; {hint}, or leave it out to run all iterations")
    unit = match.group(2)
    if unit == "steps":
        if value != int(value):
            raise ConfigError(f"budget '{budget}': env steps are whole; {hint}")
        return Budget(steps=int(value))
    return Budget(seconds=value * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[unit])


def check_device(name: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:<index>``, and a CUDA device only where torch sees one."""
    hint = "use device=auto (cuda when available, else cpu), cpu, cuda or cuda:<index>"
    if name == "auto" or name.startswith("cuda"):
        from envs import cuda_problem  # torch may see a GPU that Warp cannot use (an older driver)

        if (problem := cuda_problem()) is not None:
            raise ConfigError(problem)
    if name == "auto":
        return
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device '{name}'; {hint}") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device '{name}'; {hint}")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device={name}, but torch sees no CUDA GPU on this machine; use device=cpu or auto")
        if device.index is not None and device.index >= count:
            raise ConfigError(f"device={name}, but this machine has {count} CUDA device(s); use cuda:0..{count - 1}")


def _check_run_fields(cfg: DictConfig) -> None:
    """Values the schema's types cannot refuse: the fields' bounds, names, optional packages."""
    try:
        check_bounds(cfg, RunConfig)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if cfg.run_name is not None and not is_path_component(cfg.run_name):
        raise ConfigError(f"run_name={cfg.run_name!r}: give one plain name (letters, digits, ._,=+-), not a "
                          "path: runs are written inside results_dir")  # fmt: skip
    if cfg.run_name is not None and len(cfg.run_name) > MAX_NAME:
        raise ConfigError(f"run_name has {len(cfg.run_name)} characters: give at most {MAX_NAME}")
    longest = max((len(part) for part in Path(cfg.results_dir).parts), default=0)
    if len(cfg.results_dir) > MAX_PATH or longest > MAX_NAME:
        raise ConfigError(f"results_dir is {len(cfg.results_dir)} characters long, its longest folder name {longest}: "
                          f"give at most {MAX_PATH}, and folder names of at most {MAX_NAME}")  # fmt: skip
    parse_budget(cfg.budget)
    check_device(cfg.device)
    if cfg.contact_law not in CONTACT_LAWS:
        raise ConfigError(f"unknown contact_law '{cfg.contact_law}'; choose one of: {', '.join(CONTACT_LAWS)}")
    if cfg.renderer is not None:
        if cfg.renderer not in renderers():
            raise ConfigError(f"unknown renderer '{cfg.renderer}'; choose one of: {', '.join(renderers())}, or null")
        if (hint := install_hint(cfg.renderer)) is not None:
            raise ConfigError(hint)
        if cfg.image_size < MIN_IMAGE_SIZE:
            raise ConfigError(f"image_size={cfg.image_size}: the encoder needs at least {MIN_IMAGE_SIZE} pixels")
    if cfg.logger not in LOGGERS:
        raise ConfigError(f"unknown logger '{cfg.logger}'; choose one of: {', '.join(LOGGERS)}")
    if cfg.logger == "wandb" and importlib.util.find_spec("wandb") is None:
        raise ConfigError(WANDB_HINT)


NAME = re.compile(r"[\w.,=+-]+")


def is_path_component(name: str) -> bool:
    """One plain file name: no separator, no ``..``, nothing a shell or a job script would read."""
    return bool(NAME.fullmatch(name)) and name not in (".", "..")


# a resumed run may change how long it runs and how it reports, nothing else
RESUMABLE_CHANGES = frozenset(
    {
        "budget",
        "iterations",
        "logger",
        "device",
        "torch_threads",
        "eval_envs",
        "eval_max_steps",
        "keep_checkpoints",
        "results_dir",
    }  # where the run's folder lies: a folder moved elsewhere resumes
)


def _check_finite(cfg: DictConfig, prefix: str = "") -> None:
    """``inf`` and ``nan`` parse as floats; no hyperparameter means them."""
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{prefix}{key}={value}: must be a finite number")
        if isinstance(value, ListConfig):
            for item in value:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ConfigError(f"{prefix}{key}={list(value)}: every value must be a finite number")


def _schema(learner_config: type) -> type:
    """One dataclass with the runner's and the learner's fields (the learner's may not shadow ours)."""
    ours = {f.name for f in dataclasses.fields(RunConfig)}
    fields = [(f.name, f.type, f) for f in dataclasses.fields(learner_config) if f.name not in ours]
    return dataclasses.make_dataclass("Config", fields, bases=(RunConfig,))


def _read_yaml(path: Path) -> DictConfig:
    """A config file as a mapping; a YAML error or a file that is not a mapping is one line."""
    try:
        loaded = OmegaConf.load(path)
    except Exception as error:  # yaml's parser errors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{path}: not valid YAML ({first}); fix the file") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"{path}: holds a {type(loaded).__name__}, not key: value pairs; fix the file")
    return loaded


def _load_yaml(algo: str, task: str, seen: tuple[str, ...] = ()) -> DictConfig:
    """``configs/<algo>/defaults.yaml``, then ``configs/<algo>/<task>.yaml`` (only what the task changes;
    a task without a file runs on the defaults). ``inherit: <other algo>`` in the defaults starts from
    that algo's resolved config for the task instead of copying it (``dpg_state`` is ``shac`` plus one
    switch). Parents are algo names inside ``configs/``, never paths."""
    own = _read_yaml(CONFIG_DIR / algo / DEFAULTS)
    task_file = CONFIG_DIR / algo / f"{task}.yaml"
    if task_file.is_file():
        specific = _read_yaml(task_file)
        if "inherit" in specific:
            raise ConfigError(f"configs/{algo}/{task}.yaml: inherit belongs in configs/{algo}/{DEFAULTS}; move it")
        own = OmegaConf.merge(own, specific)
    parent = own.pop("inherit", None)
    if parent is None:
        return own
    where = f"configs/{algo}/{DEFAULTS}: inherit: {parent}"
    if parent in (*seen, algo):
        raise ConfigError(f"{where} closes a cycle ({' -> '.join((*seen, algo, parent))}); fix the file")
    if parent not in algorithms():
        raise ConfigError(f"{where}: no configs/<algo>/{DEFAULTS} of that name; inherit from one of: "
                          f"{', '.join(algorithms())}")  # fmt: skip
    return OmegaConf.merge(_load_yaml(parent, task, (*seen, algo)), own)


def _preset_files(algo: str, preset: str) -> list[DictConfig]:
    """A preset's settings: ``configs/presets/<preset>.yaml`` (every algo), then the algo's own
    ``configs/<algo>/presets/<preset>.yaml`` over it (e.g. a smaller replay buffer for DrQ-v2). A preset
    is a name, never a path."""
    names = {p.stem for p in (CONFIG_DIR / "presets").glob("*.yaml")}
    names |= {p.stem for p in (CONFIG_DIR / algo / "presets").glob("*.yaml")}
    if str(preset) not in names:
        raise ConfigError(f"unknown preset '{preset}'; choose one of: {', '.join(sorted(names))}")
    paths = [CONFIG_DIR / "presets" / f"{preset}.yaml", CONFIG_DIR / algo / "presets" / f"{preset}.yaml"]
    return [_read_yaml(path) for path in paths if path.is_file()]


def load_config(algo: str, task: str, overrides: list[str] | None = None) -> DictConfig:
    """Resolve ``configs/<algo>/`` (defaults, then the task's file) + overrides into a typed, read-only config."""
    valid_algos = algorithms()
    if algo not in valid_algos:
        raise ConfigError(f"unknown algorithm '{algo}'; choose one of: {', '.join(valid_algos)}")
    if task not in tasks():
        close = difflib.get_close_matches(task, tasks(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"unknown task '{task}'{hint}; choose one of: {', '.join(tasks())} (a task is one file in envs/tasks/)"
        )
    file_cfg = _load_yaml(algo, task)
    for override in overrides or []:
        if "${" in override:  # an interpolation would read the environment or fail deep inside a run
            raise ConfigError(f"override '{override}': interpolations (${{...}}) are not accepted; give the value")
    try:
        cli = OmegaConf.from_dotlist(list(overrides or []))
    except Exception as error:  # omegaconf's grammar errors
        raise ConfigError(f"cannot parse overrides {overrides}: {error}; write them as key=value") from None
    for key in ("algo", "task"):  # named by the command's positional words; an override would be ignored
        if key in cli and cli[key] != {"algo": algo, "task": task}[key]:
            raise ConfigError(f"override '{key}={cli[key]}': the algo and the task are the command's first two words "
                              f"(python -m benchmark.run <algo> <task> ...; make bench ALGO=... TASK=...)")  # fmt: skip
    if cli.get("preset") == "paper":  # the paper's settings: no preset (``make bench PRESET=paper``)
        cli.preset = None
    preset = cli.get("preset", file_cfg.get("preset"))
    if preset is not None:
        file_cfg = OmegaConf.merge(file_cfg, *_preset_files(algo, preset))
    learner_name = cli.get("learner", file_cfg.get("learner", "shac"))
    try:
        learner = get_learner(learner_name)
    except KeyError as error:
        raise ConfigError(error.args[0]) from None
    schema = OmegaConf.structured(_schema(learner.Config))
    try:
        cfg = OmegaConf.merge(schema, file_cfg, cli, {"algo": algo, "task": task})
    except ConfigKeyError as error:
        key = str(error.key) if getattr(error, "key", None) else str(error)
        valid = sorted(schema.keys())
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown config key '{key}'{hint}; valid keys: {', '.join(valid)}") from None
    except ValidationError as error:
        raise ConfigError(f"invalid value for '{error.full_key}': {error.msg.splitlines()[0]}") from None
    # fail now, before anything is built or written
    _check_finite(cfg)
    _check_run_fields(cfg)
    learner_config(cfg)
    _check_teacher(cfg, learner)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def _check_teacher(cfg: DictConfig, learner: type) -> None:
    """A distilling learner has a teacher that can be trained on this task; no other learner has one."""
    if cfg.teacher is None:
        if learner.needs_teacher:
            raise ConfigError(f"{cfg.learner} distils a teacher: set teacher=<state algo> (e.g. teacher=shac)")
        return
    if not learner.needs_teacher:
        raise ConfigError(f"teacher={cfg.teacher}: {cfg.learner} takes no teacher; leave teacher unset")
    teacher_config(cfg)


def teacher_config(cfg: DictConfig, run_dir: Path | None = None) -> DictConfig:
    """The teacher's run config: ``configs/<teacher>/`` for the task, the student's seed, device, threads
    and logger, then ``teacher_overrides``; to be written to ``run_dir`` when given. The teacher must
    learn from the state (it labels states) and have no teacher of its own."""
    shared = [f"seed={cfg.seed}", f"device={cfg.device}", f"torch_threads={cfg.torch_threads}", f"logger={cfg.logger}"]
    try:
        teacher = load_config(cfg.teacher, cfg.task, [*shared, *cfg.teacher_overrides])
    except ConfigError as error:
        raise ConfigError(f"teacher {cfg.teacher}: {error}") from None
    if teacher.renderer is not None:
        raise ConfigError(f"teacher={cfg.teacher} learns from pixels ({teacher.renderer}); the teacher labels "
                          "states: use a state learner, e.g. teacher=shac")  # fmt: skip
    if teacher.teacher is not None:
        raise ConfigError(f"teacher={cfg.teacher} has a teacher of its own; give a learner that trains alone")
    if run_dir is not None:
        with read_write(teacher):
            teacher.results_dir, teacher.run_name = str(run_dir.parent), run_dir.name
    return teacher


def with_defaults(saved: dict) -> dict:
    """A saved config with the keys added since it was written, at their defaults (what the run used:
    the key did not exist yet). Keys the code no longer has are kept as they are."""
    try:
        learner = get_learner(saved.get("learner", "shac"))
    except KeyError:
        return dict(saved)
    defaults = {}
    for f in dataclasses.fields(_schema(learner.Config)):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return {**defaults, **saved}


def typed(saved: dict) -> DictConfig:
    """A saved run config (plain data) as the typed, read-only config its learner's schema makes of it."""
    plain = OmegaConf.create(saved)
    cfg = OmegaConf.merge(OmegaConf.structured(_schema(get_learner(plain.learner).Config)), plain)
    OmegaConf.set_readonly(cfg, True)
    return cfg


def learner_config(cfg: DictConfig):
    """The learner's own typed config dataclass, taken from the flat run config."""
    learner = get_learner(cfg.learner)
    names = {f.name for f in dataclasses.fields(learner.Config)}
    values = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k in names}
    try:
        return learner.Config(**values)
    except ValueError as error:  # the learner's own checks (``__post_init__``)
        raise ConfigError(str(error)) from None
