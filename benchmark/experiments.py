"""What makes an experiment and what it is called: the settings that define one (two runs that differ only
in the rest are its seeds), how they read in a label (``dva [preset=cpu, budget=30min]``) and as a folder
name (``preset-cpu_budget-30min``), and a run's default name. A run records its own when it starts
(``summary.json``: ``settings``, ``experiment``); these derive them for a config."""

from __future__ import annotations

import hashlib
import re

from omegaconf import DictConfig, OmegaConf

from benchmark.config import RESUMABLE_CHANGES, ConfigError, load_config

# keys that do not make another experiment: which seed, where it (and its teacher) was written, how it
# was run and reported. The budget and the iterations do (a 3-minute run is not a seed of a 60-minute
# one; SHAC's learning rates decay over ``iterations``), though a resumed run may change them.
NOT_THE_EXPERIMENT = frozenset({"seed", "run_name", "results_dir", "teacher_run"}) | (
    RESUMABLE_CHANGES - {"budget", "iterations"}
)


LABEL_FIRST = ("preset", "budget")  # the settings a reader looks for first in a label


def experiment(config: dict) -> dict:
    """The settings that make a run's experiment: two runs that differ only in the rest are its seeds."""
    return {k: v for k, v in config.items() if k not in NOT_THE_EXPERIMENT}


def settings_shown(config: dict) -> list[str]:
    """``key=value`` of an experiment's defining settings: the preset and budget when set, then every
    setting that differs from what the algo's config files give for the task (with that preset). The
    paper's own settings show nothing."""
    preset = [f"preset={config['preset']}"] if config.get("preset") else []
    try:
        reference = OmegaConf.to_container(load_config(config["algo"], config["task"], preset))
    except ConfigError:  # an algo or task the code no longer has: name the run's own settings only
        reference = config
    shown = [f"{k}={config[k]}" for k in LABEL_FIRST if config.get(k) is not None]
    keys = sorted((set(config) | set(reference)) - set(LABEL_FIRST) - NOT_THE_EXPERIMENT)
    return shown + [f"{k}={config.get(k)}" for k in keys if config.get(k) != reference.get(k)]


def as_name(settings: list[str]) -> str:
    """Settings as one plain file name (``preset-cpu_budget-30min``); empty for none."""
    return "_".join(re.sub(r"[^\w.,+-]+", "-", item.replace("=", "-")).strip("-") for item in settings)


def experiment_name(config: dict, settings: list[str] | None = None) -> str:
    """The experiment's folder name: its defining settings (``preset-cpu_budget-30min``), ``paper`` when
    it runs the paper's own. ``settings``: as recorded by the run, else derived from today's configs."""
    return as_name(settings_shown(config) if settings is None else settings) or "paper"


def default_run_name(cfg: DictConfig) -> str:
    """``<algo>-<task>-seed<seed>``, plus the settings that make it another experiment and that a resumed
    run may not change (``dva-hopper-seed0-preset-cpu``): the same command names the same directory, so
    running it again resumes (or finds it finished), and other settings never collide with it."""
    config = OmegaConf.to_container(cfg)
    fixed = [item for item in settings_shown(config) if item.split("=", 1)[0] not in RESUMABLE_CHANGES]
    name = "-".join(filter(None, (f"{cfg.algo}-{cfg.task}-seed{cfg.seed}", as_name(fixed))))
    if len(name) > 120:  # many overrides: a short digest of them instead
        digest = hashlib.sha256(repr(sorted(fixed)).encode()).hexdigest()[:10]
        name = f"{cfg.algo}-{cfg.task}-seed{cfg.seed}-{digest}"
    return name
