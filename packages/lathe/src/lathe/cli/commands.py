"""The core subcommands. Each imports what it needs when it runs."""

from __future__ import annotations

import json

import click

from lathe.cli.main import cli, config_argument, launch_options, set_option
from lathe.distributed.launch import set_flags


def _load(config: str, overrides: tuple[str, ...], check_data: bool = False):  # type: ignore[no-untyped-def]
    from lathe.config import load_config

    return load_config(config, overrides, check_data=check_data)


def _launch(command: list[str], cfg, launcher: str | None, num_processes: int | None,  # type: ignore[no-untyped-def]
            launcher_args: tuple[str, ...]) -> None:
    """With --launcher/--num-processes: run ``lathe <command>`` under the launcher and exit."""
    import sys

    from lathe.errors import LatheError

    if launcher is None and num_processes is None:
        if launcher_args:
            raise LatheError(f"arguments after the config ({' '.join(launcher_args)}) go to a launcher: "
                             "add --launcher torchrun or --launcher accelerate")
        return
    from lathe.distributed.engine import check_world
    from lathe.distributed.launch import relaunch

    nodes = any(a.split("=")[0] in ("--nnodes", "--num_machines", "--num-machines") for a in launcher_args)
    if num_processes is not None and not nodes:
        check_world(cfg, num_processes)  # N-D sizes against the world size, before anything starts
    sys.exit(relaunch(launcher or "torchrun", num_processes, launcher_args, command))


@cli.command()
@config_argument
@set_option
@launch_options
def train(config: str, overrides: tuple[str, ...], launcher: str | None, num_processes: int | None,
          launcher_args: tuple[str, ...]) -> None:
    """Fine-tune the model the CONFIG describes."""
    cfg, plugins = _load(config, overrides)
    _launch(["train", config, *set_flags(overrides)], cfg, launcher, num_processes, launcher_args)
    from lathe.distributed import ranks
    from lathe.train.run import train as run_train

    run_train(cfg, plugins)
    ranks.finish()


@cli.command()
@config_argument
@set_option
@click.option("--debug", is_flag=True, help="Show tokenized examples with trained tokens marked.")
@click.option("--debug-num-examples", default=3, show_default=True, help="How many examples --debug shows.")
@launch_options
def preprocess(config: str, overrides: tuple[str, ...], debug: bool, debug_num_examples: int,
               launcher: str | None, num_processes: int | None, launcher_args: tuple[str, ...]) -> None:
    """Tokenize, mask, pack and cache the datasets of CONFIG."""
    cfg, plugins = _load(config, overrides)
    debug_flags = ["--debug", "--debug-num-examples", str(debug_num_examples)] if debug else []
    _launch(["preprocess", config, *set_flags(overrides), *debug_flags], cfg, launcher, num_processes,
            launcher_args)
    from lathe.data.preprocess import preprocess as run_preprocess
    from lathe.distributed import ranks

    run_preprocess(cfg, plugins, debug=debug, num_examples=debug_num_examples)
    ranks.finish()


@cli.command()
@config_argument
@set_option
@click.option("--prompt", default=None, help="Answer this prompt and exit; interactive otherwise.")
@click.option("--chat", is_flag=True, help="Use the chat template, keeping the conversation.")
@click.option("--max-new-tokens", default=256, show_default=True)
@click.option("--temperature", default=0.0, show_default=True, help="0 decodes greedily.")
@click.option("--gradio", is_flag=True, help="Serve a web UI (needs gradio).")
@click.option("--image", "images", multiple=True, metavar="PATH",
              help="An image for a vision-language model, given with the (first) prompt; repeatable.")
def inference(config: str, overrides: tuple[str, ...], prompt: str | None, chat: bool,
              max_new_tokens: int, temperature: float, gradio: bool, images: tuple[str, ...]) -> None:
    """Generate with the model trained by CONFIG (base + adapter, or the full model)."""
    cfg, plugins = _load(config, overrides)
    from lathe.infer import run_inference

    if images and gradio:
        raise click.UsageError("--image is not available with --gradio")
    run_inference(cfg, plugins, prompt=prompt, chat=chat, max_new_tokens=max_new_tokens,
                  temperature=temperature, gradio=gradio, images=images)


@cli.command("merge-lora")
@config_argument
@set_option
def merge_lora(config: str, overrides: tuple[str, ...]) -> None:
    """Merge the trained adapter into the base model: writes output_dir/merged."""
    cfg, plugins = _load(config, overrides)
    from lathe.infer import merge_lora as run_merge

    run_merge(cfg, plugins)


@cli.command()
@config_argument
@set_option
@launch_options
def evaluate(config: str, overrides: tuple[str, ...], launcher: str | None, num_processes: int | None,
             launcher_args: tuple[str, ...]) -> None:
    """Report eval loss and perplexity of the trained model on the eval set."""
    cfg, plugins = _load(config, overrides)
    _launch(["evaluate", config, *set_flags(overrides)], cfg, launcher, num_processes, launcher_args)
    from lathe.distributed import ranks
    from lathe.train.run import evaluate as run_evaluate

    run_evaluate(cfg, plugins)
    ranks.finish()


@cli.command("merge-sharded-fsdp-weights")
@click.argument("output_dir", type=click.Path(file_okay=False))
def merge_sharded_fsdp_weights(output_dir: str) -> None:
    """Merge OUTPUT_DIR/pytorch_model_fsdp_0 (a sharded FSDP save, or a checkpoint's) into
    OUTPUT_DIR/model.safetensors: one model that from_pretrained loads."""
    from pathlib import Path

    from lathe.distributed.sharded import merge_sharded

    click.echo(f"wrote {merge_sharded(Path(output_dir))}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins: name, distribution, version, hooks, and broken ones."""
    from lathe.plugins import describe_all

    infos = describe_all()
    if as_json:
        click.echo(json.dumps([
            {"name": i.name, "distribution": i.distribution, "version": i.version,
             "hooks": i.hooks, "error": i.error} for i in infos], indent=2))
        return
    if not infos:
        click.echo("no plugins installed (pip install lathe-<name>)")
        return
    for info in infos:
        if info.error:
            click.secho(f"{info.name}  ({info.distribution} {info.version})  BROKEN: {info.error}", fg="red")
        else:
            click.echo(f"{info.name}  ({info.distribution} {info.version})")
            click.echo(f"    hooks: {', '.join(info.hooks)}")


@cli.group()
def config() -> None:
    """Check a config, or print the config schema."""


@config.command()
@config_argument
@set_option
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Validate CONFIG (core and enabled plugins' keys) without loading anything."""
    cfg, plugins = _load(config, overrides, check_data=True)
    enabled = ", ".join(plugins.names) or "none"
    click.echo(f"{config}: valid (plugins: {enabled})")


@config.command()
def schema() -> None:
    """Print the JSON Schema of the core config and every installed plugin's keys."""
    from lathe.config.schema import config_class
    from lathe.plugins import Plugins, describe_all

    working = [i for i in describe_all() if i.module is not None]
    models = [(p, m) for p, m in Plugins(working).answers("lathe_config_model") if m is not None]
    click.echo(json.dumps(config_class(models).model_json_schema(), indent=2))


@cli.command()
def env() -> None:
    """Print versions of python, torch, CUDA and the libraries lathe uses, for bug reports."""
    from lathe.report import environment

    for name, version in environment().items():
        click.echo(f"{name}: {version}")


@cli.command()
@click.argument("output_dir", type=click.Path(file_okay=False))
def report(output_dir: str) -> None:
    """Write OUTPUT_DIR/report.html: curves, data report, resolved config, environment."""
    from lathe.report import write_report

    click.echo(str(write_report(output_dir)))


@cli.group()
def plugin() -> None:
    """Write a new plugin."""


@plugin.command("new")
@click.argument("name")
@click.option("--dir", "parent", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder to create lathe-NAME/ in.")
def plugin_new(name: str, parent: str) -> None:
    """Scaffold lathe-NAME/: pyproject with the entry point, config model, one hook, docs, tests."""
    from lathe.scaffold import new_plugin

    root = new_plugin(name, parent)
    click.echo(f"wrote {root}\nnext: pip install -e {root} && pytest {root}/tests && lathe plugins")
