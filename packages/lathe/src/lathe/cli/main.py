"""The ``lathe`` command group. Heavy libraries are imported inside commands, so ``--help`` is fast."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from lathe.__about__ import __version__
from lathe.errors import LatheError

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (dotted for nested keys: diffusion.eps=1e-3, datasets.0.path=x).",
)
config_argument = click.argument("config", type=click.Path(dir_okay=False))


def launch_options(command: Any) -> Any:
    """``--launcher``, ``--num-processes`` and the launcher's own arguments after ``--``."""
    from lathe.distributed.launch import LAUNCHERS

    command = click.argument("launcher_args", nargs=-1, type=click.UNPROCESSED)(command)
    command = click.option(
        "--num-processes", type=click.IntRange(min=1), default=None,
        help="Processes on this machine (with no --launcher: torchrun).")(command)
    return click.option(
        "--launcher", type=click.Choice(LAUNCHERS), default=None,
        help="Run under this launcher; its own arguments (rendezvous, nodes) go after --: "
             "lathe train cfg.yaml --launcher torchrun -- --nproc_per_node 2")(command)


class LatheGroup(click.Group):
    """Adds the commands of installed plugins (``lathe_register_commands``) when first needed."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from lathe.plugins import Plugins, describe_all

        for info in describe_all():
            if info.module is not None and hasattr(info.module, "lathe_register_commands"):
                try:
                    Plugins([info]).call("lathe_register_commands", cli=self)
                except LatheError:
                    continue

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands:
            self._add_plugin_commands()
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)


@click.group(cls=LatheGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lathe")
def cli() -> None:
    """Fine-tune large language models from one YAML file."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user errors print one clear message and exit 2, never a traceback."""
    from lathe.cli import commands  # noqa: F401  (registers the core commands on `cli`)

    try:
        return cli.main(args=argv, prog_name="lathe", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except LatheError as exc:
        rank = f" (rank {os.environ['RANK']})" if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
        click.secho(f"error{rank}: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
