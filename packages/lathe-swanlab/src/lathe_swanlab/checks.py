"""What the plugin checks before anything loads: errors (returned as problems) and warnings."""

from __future__ import annotations

import warnings
from typing import Any

from lathe_swanlab.config import SwanLabConfig, enabled, mode, setting


class SwanLabWarning(UserWarning):
    """A SwanLab setting that works but is probably not what the user wants."""


class SwanLabLoggersError(SwanLabWarning):
    """Error level: three or more experiment trackers on at once."""


# tracker label → the keys that turn it on (those the config defines; an absent key is off)
TRACKERS: dict[str, tuple[str, ...]] = {
    "WandB": ("use_wandb", "wandb_project"),
    "MLflow": ("use_mlflow", "mlflow_experiment_name"),
    "Comet": ("use_comet", "comet_api_key", "comet_project_name"),
    "TensorBoard": ("use_tensorboard",),
    "Trackio": ("use_trackio", "trackio_project_name"),
}

_OWN_KEYS = [k for k in SwanLabConfig.model_fields if k not in ("use_swanlab", "swanlab_project")]
_DEFAULTS = {k: f.default for k, f in SwanLabConfig.model_fields.items()}


def problems(cfg: Any) -> list[str]:
    """Settings that cannot work, one line each (the run does not start)."""
    out: list[str] = []
    if cfg.use_swanlab and not cfg.swanlab_project:
        out.append("use_swanlab: SwanLab enabled but 'swanlab_project' is not set; add swanlab_project: "
                   "<your-project> or set use_swanlab: false")
    set_keys = [k for k in _OWN_KEYS if getattr(cfg, k) != _DEFAULTS[k]]
    if cfg.use_swanlab is None and not cfg.swanlab_project and set_keys:
        out.append(f"{set_keys[0]}: SwanLab is off because swanlab_project is not set; set swanlab_project "
                   "(SwanLab turns on with it) or remove the swanlab_* keys")
    if cfg.swanlab_lark_secret and not setting(cfg, "swanlab_lark_webhook_url"):
        out.append("swanlab_lark_secret: set, but there is no swanlab_lark_webhook_url (or SWANLAB_LARK_WEBHOOK_URL) "
                   "to sign messages for")
    if enabled(cfg) and cfg.swanlab_log_model and mode(cfg) not in ("cloud", "offline"):
        out.append(f"swanlab_log_model: uploads the final model in cloud mode (or at `swanlab sync` of an offline "
                   f"run); swanlab_mode is {mode(cfg)}, where nothing is uploaded")
    return out


def active_trackers(cfg: Any) -> list[str]:
    found = [label for label, keys in TRACKERS.items() if any(getattr(cfg, k, None) for k in keys)]
    if enabled(cfg) and mode(cfg) != "disabled":
        found.append("SwanLab")
    return found


def warn(cfg: Any) -> None:
    """Warnings for settings that work but cost security or speed."""
    if cfg.use_swanlab is False and any(getattr(cfg, k) != _DEFAULTS[k] for k in _OWN_KEYS):
        warnings.warn("use_swanlab: false: SwanLab is off, so the other swanlab_* keys have no effect",
                      SwanLabWarning, stacklevel=2)
    if not enabled(cfg):
        return
    if mode(cfg) == "cloud" and not setting(cfg, "swanlab_api_key"):
        warnings.warn(
            "SwanLab cloud mode enabled but no API key found; SwanLab may fail to start. Either: "
            "1. export SWANLAB_API_KEY=your-api-key; 2. add swanlab_api_key to the config (less secure); "
            "3. run `swanlab login` before training; 4. use swanlab_mode: local (or offline) to track locally",
            SwanLabWarning, stacklevel=2)
    if mode(cfg) == "disabled" and setting(cfg, "swanlab_lark_webhook_url"):
        warnings.warn("swanlab_mode: disabled turns SwanLab off, Lark notifications included: none will be sent",
                      SwanLabWarning, stacklevel=2)
    elif setting(cfg, "swanlab_lark_webhook_url") and not setting(cfg, "swanlab_lark_secret"):
        warnings.warn(
            "Lark webhook has no secret configured: anyone who learns the URL can post to the group. For "
            "production use, set swanlab_lark_secret (or SWANLAB_LARK_SECRET) to enable HMAC signature "
            "verification", SwanLabWarning, stacklevel=2)
    trackers = active_trackers(cfg)
    if len(trackers) >= 3:
        warnings.warn(
            f"error: {len(trackers)} logging tools enabled simultaneously ({', '.join(trackers)})! Expected "
            f"overhead ~{1.5 * len(trackers):.1f}% per training step and more memory; STRONGLY RECOMMEND "
            "disabling all but one", SwanLabLoggersError, stacklevel=2)
    elif len(trackers) == 2:
        warnings.warn(
            f"Multiple logging tools enabled: {', '.join(trackers)}: ~1-2% overhead per logger per step, more "
            "memory; choose one for production runs (two are fine for a migration or a short comparison)",
            SwanLabWarning, stacklevel=2)
