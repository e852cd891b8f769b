"""Build fake installed distributions (dist-info + module) in a folder put on sys.path."""

from __future__ import annotations

import textwrap
from pathlib import Path


def make_dist(root: Path, dist: str, plugin: str, module: str, code: str,
              version: str = "1.0", requires: tuple[str, ...] = ()) -> None:
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(meta)
    (info / "entry_points.txt").write_text(f"[lathe.plugins]\n{plugin} = {module}\n")


GOOD = '''
from lathe.hookspecs import hookimpl
from lathe.config import ConfigModel

class Cfg(ConfigModel):
    {key}: int = 1

@hookimpl
def lathe_config_model():
    return Cfg

@hookimpl
def lathe_training_args(cfg):
    return {{"{arg}": 1}}

@hookimpl
def lathe_trainer_cls(cfg):
    return {answer}
'''
