"""Axolotl configs with every lathe package installed: plugins implement the keys the status table
says they do, the seed integrations' README snippets validate, and realistic Axolotl configs for
current model families pass or fail only with the reasons of refused keys and values."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest
import yaml

from lathe.config import ConfigError, load_config
from lathe.config.compat import table
from lathe.config.compat.docs import value_statuses
from lathe.config.compat.status import all_top_level_keys, axolotl_keys, status_of
from lathe.data.strategies import strategy_registry
from lathe.plugins import Plugins

FIXTURES = Path(__file__).parent / "fixtures" / "axolotl"
# An unpacked axolotl 0.19.0 wheel, for the check that the seed fixtures are its READMEs' snippets.
AXOLOTL_SRC = os.environ.get("AXOLOTL_SRC", "")
AVAILABLE = sorted(p for p, ok in table.PLUGINS.items() if ok)


def _model_fields(plugin: str) -> dict[str, object]:
    plugins = Plugins.load([plugin])
    fields: dict[str, object] = {}
    for _, model in plugins.answers("lathe_config_model"):
        fields.update(model.model_fields if model is not None else {})
    return fields


@pytest.mark.parametrize("plugin", AVAILABLE)
def test_plugin_implements_the_keys_the_table_gives_it(plugin: str) -> None:
    fields = _model_fields(plugin)
    claimed = [k for k in all_top_level_keys() if tuple(status_of(k) or ()) == ("implemented", plugin)]
    assert claimed, f"no Axolotl key is implemented by {plugin}"
    missing = [k for k in claimed if k not in fields]
    assert missing == [], f"the table says plugin {plugin} implements {missing}, but its config model lacks them"
    for integration, facts in axolotl_keys()["integrations"].items():
        if table.INTEGRATIONS.get(integration) != plugin:
            continue
        refused_but_present = [k for k in facts["keys"] if k in table.REFUSED and k in fields]
        assert refused_but_present == [], f"{refused_but_present}: refused in the table, defined by {plugin}"
        for block, subkeys in facts["nested"].items():
            inner = fields[block].annotation  # type: ignore[attr-defined]
            lathe_keys = set(getattr(inner, "model_fields", {}))
            assert set(subkeys) <= lathe_keys, f"{block}: lacks {sorted(set(subkeys) - lathe_keys)}"


def test_dataset_keys_of_plugins_are_their_strategies_keys() -> None:
    for key, plugin in table.DATASET_KEYS_IN_PLUGINS.items():
        if not table.PLUGINS[plugin]:
            continue
        registry = strategy_registry(Plugins.load([plugin]))
        assert any(key in cls.keys for cls in registry.values()), f"{key}: no strategy of {plugin} reads it"


def _refusal(problem: str) -> bool:
    """Whether a problem is the reason of a refused key or value (the only failures allowed)."""
    match = re.match(r"^(?:test_)?(?:datasets\[\d+\]\.)?([a-z_0-9]+) \(line \d+\): not available in lathe: ", problem)
    if match:
        return True
    match = re.match(r'^plugins \(line \d+\): plugin "[\w.]+" \(plugin "(\w+)"\) named in `plugins` is not installed', problem)
    if match:
        return table.PLUGINS.get(match.group(1)) is False
    values = value_statuses()
    match = re.match(r"^(?:datasets\[\d+\]\.)?chat_template \(line \d+\): unknown template '([\w.]+)'", problem)
    if match:
        return dict(values["chat_template"]).get(match.group(1), ("",))[0] == "refused"
    match = re.match(r"^datasets\[\d+\]\.type \(line \d+\): '([\w.:]+)' is an Axolotl dataset type lathe does not provide yet", problem)
    if match:
        types = {**dict(values["datasets[].type"]), **dict(values["datasets[].type (rl)"])}
        return types.get(match.group(1), ("",))[0] == "refused"
    return False


def _problems(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_config(path, check_data=True)
        except ConfigError as exc:
            return exc.problems
    return []


CONFIGS = sorted(FIXTURES.joinpath("configs").glob("*.yaml"))
# Problems another branch of issue 9 is fixing (Axolotl only warns about evals_per_epoch without
# an eval set). Delete an entry when the test says the problem is gone.
PENDING: dict[str, str] = {}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_real_axolotl_config_passes_or_fails_only_with_refusals(path: Path) -> None:
    problems = _problems(path)
    pending = PENDING.get(path.stem)
    if pending:
        assert any(p.startswith(pending) for p in problems), f"fixed: delete PENDING[{path.stem!r}]"
    unexpected = [p for p in problems if not _refusal(p) and not (pending and p.startswith(pending))]
    assert unexpected == [], f"{path.name}: problems that are not refusals: {unexpected}"


def test_which_real_configs_pass_today() -> None:
    """Record of the contract's reach; a config moves to `passing` when its keys are implemented."""
    passing = sorted(p.stem for p in CONFIGS if not _problems(p))
    assert {"llama3_lora", "llama3_qlora", "qwen3_full"} <= set(passing), passing


def _seed(name: str, tmp_path: Path) -> Path:
    data = yaml.safe_load((FIXTURES / "seeds" / f"{name}.yaml").read_text())
    data.setdefault("base_model", "m")
    data.setdefault("datasets", [{"path": "d.jsonl", "type": "alpaca"}])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("name", ["kd", "spectrum", "densemixer", "diffusion"])
def test_seed_readme_snippets_validate(name: str, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cfg, plugins = load_config(_seed(name, tmp_path))
        except ConfigError as exc:  # only keys lathe refuses for now (kd's torch_compile)
            assert all(_refusal(p) for p in exc.problems), exc.problems
            return
    assert plugins.names == [name]
    if name == "densemixer":
        assert cfg.dense_mixer is True  # on when the plugin is enabled, as in Axolotl


def test_grokfast_seed_snippet_is_refused_as_swapped(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="alpha and lamb look swapped .* use grokfast_alpha: 0.98 and grokfast_lamb: 2.0"):
        load_config(_seed("grokfast", tmp_path))


@pytest.mark.skipif(not AXOLOTL_SRC, reason="set AXOLOTL_SRC to an unpacked axolotl 0.19.0 wheel (the nox test sessions do)")
@pytest.mark.parametrize("name", ["grokfast", "kd", "spectrum", "densemixer", "diffusion"])
def test_seed_fixtures_are_the_readme_snippets(name: str) -> None:
    readme = Path(AXOLOTL_SRC, "axolotl", "integrations", name, "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert (FIXTURES / "seeds" / f"{name}.yaml").read_text() == "".join(b + "\n" for b in blocks)
