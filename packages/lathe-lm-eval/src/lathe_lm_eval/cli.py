"""``lathe lm-eval CONFIG``: run the config's lm-eval tasks on its trained model (or lm_eval_model)."""

from __future__ import annotations

import click

from lathe.cli.main import config_argument, set_option


@click.command("lm-eval")
@config_argument
@set_option
def lm_eval_command(config: str, overrides: tuple[str, ...]) -> None:
    """Benchmark the model of CONFIG with lm-evaluation-harness (lm_eval_tasks)."""
    from lathe.config import load_config
    from lathe.errors import LatheError
    from lathe_lm_eval.run import evaluate_saved

    cfg, plugins = load_config(config, overrides)
    if "lm_eval" not in plugins.names:
        raise LatheError(f"{config}: lathe lm-eval needs the plugin enabled: add plugins: [lm_eval]")
    evaluate_saved(cfg)
