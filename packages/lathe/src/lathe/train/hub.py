"""Pushing the finished model to the Hugging Face Hub (``hub_model_id``).

After training, the saved output (weights, config, tokenizer, ``lathe_config.yaml`` with
secrets redacted) is uploaded in one commit through ``huggingface_hub``: the repo is
created if missing (``hub_private_repo``), on branch ``hub_revision`` (created if missing).
Checkpoints and lathe's staging folders are not uploaded. The token is ``hub_token`` or
huggingface_hub's own (``HF_TOKEN``, the login cache); it is passed only to the client,
never logged or saved. ``HF_ENDPOINT`` selects another Hub. A failed push is an error
after the model is safely on disk.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.config import Config

# Never uploaded: intermediate checkpoints, staged or moved-aside copies, tracker logs.
IGNORE = ["checkpoint-*", "checkpoint-*/**", ".staging-*/**", ".replaced-*/**", "runs/**", "*.tmp"]


def push_to_hub(cfg: Config, folder: Path) -> str | None:
    """Upload ``folder`` to ``cfg.hub_model_id``; returns the commit URL (None when not configured)."""
    if not cfg.hub_model_id:
        return None
    if (cfg.hub_strategy or "end") != "end":  # the schema admits only "end"; a plugin-widened schema must not slip by
        raise LatheError(f"hub_strategy: {cfg.hub_strategy!r} is not implemented; lathe pushes at the end only")
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise LatheError(f"hub_model_id: cannot push to {cfg.hub_model_id!r}: HF_HUB_OFFLINE is set "
                         f"(the model is saved in {folder})")
    api = HfApi(token=cfg.hub_token or None)
    repo = cfg.hub_model_id
    try:
        api.create_repo(repo, private=cfg.hub_private_repo, exist_ok=True)
        if cfg.hub_revision and cfg.hub_revision != "main":
            api.create_branch(repo, branch=cfg.hub_revision, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo, folder_path=str(folder), revision=cfg.hub_revision or None,
            commit_message="Upload model trained with lathe", ignore_patterns=IGNORE,
        )
    except Exception as exc:  # network, auth, quota: one clear line; the local output is complete
        raise LatheError(f"hub_model_id: pushing {folder} to {repo!r} failed ({type(exc).__name__}: "
                         f"{_first_line(exc)}); the model is saved locally") from exc
    url = str(getattr(commit, "commit_url", "") or repo)
    print(f"lathe: pushed {folder} to the Hub: {url}", file=sys.stderr)
    return url


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""
