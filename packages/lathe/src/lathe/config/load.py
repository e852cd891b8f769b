"""Reading a YAML config, applying ``--set`` overrides, and validating it into a typed object."""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from lathe.config.compat import remap, status_of
from lathe.config.schema import CoreConfig, config_class, field_owners
from lathe.config.suggest import typo_of
from lathe.errors import LatheError

if TYPE_CHECKING:
    from lathe.plugins import Plugins

Lines = dict[tuple[Any, ...], int]
log = logging.getLogger("lathe.config")


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads ``1e-5`` as a float (YAML 1.1 needs a dot: ``1.0e-5``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


class ConfigError(LatheError):
    """The config is invalid; the message has one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__(f"invalid config {source}:\n" + "\n".join(f"  - {p}" for p in problems))


def read_yaml(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Lines]:
    """Parse the YAML file into a dict, with the line of every key path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LatheError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LatheError(f"cannot read config file {path}: {exc}") from None
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise LatheError(f"{path}{where}: malformed YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise LatheError(f"{path}: the config must be a mapping of keys to values, not {type(data).__name__}")
    lines: Lines = {}
    _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node | None, path: tuple[Any, ...], out: Lines) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, key_node.value)
            out[sub] = key_node.start_mark.line + 1
            _collect_lines(value_node, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*path, i)] = item.start_mark.line + 1
            _collect_lines(item, (*path, i), out)


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key=value`` overrides; dotted keys reach nested blocks and list items (``datasets.0.path``)."""
    data = dict(data)
    for item in overrides:
        if "=" not in item:
            raise LatheError(f"--set {item!r}: expected key=value")
        key, _, text = item.partition("=")
        try:
            value = parse_yaml(text) if text else None
        except yaml.YAMLError:
            value = text
        parts = key.strip().split(".")
        target: Any = data
        for i, part in enumerate(parts[:-1]):
            nxt = _child(target, part, key)
            if nxt is None:
                nxt = {}
                _assign(target, part, nxt, key)
            elif isinstance(nxt, dict):
                nxt = dict(nxt)
                _assign(target, part, nxt, key)
            elif isinstance(nxt, list):
                nxt = list(nxt)
                _assign(target, part, nxt, key)
            else:
                raise LatheError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a mapping or list")
            target = nxt
        _assign(target, parts[-1], value, key)
    return data


def _child(target: Any, part: str, key: str) -> Any:
    if isinstance(target, list):
        return target[_index(target, part, key)]
    return target.get(part)


def _assign(target: Any, part: str, value: Any, key: str) -> None:
    if isinstance(target, list):
        target[_index(target, part, key)] = value
    else:
        target[part] = value


def _index(target: list[Any], part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(target):
        raise LatheError(f"--set {key}: {part!r} is not an index of a list of {len(target)}")
    return int(part)


def _fmt_loc(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(root: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for did-you-mean lists)."""
    model: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = _unwrap_model(field.annotation)
        if model is None:
            return None
    return model


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _unwrap_model(arg)
        if found is not None:
            return found
    return None


# pydantic's names for the branches of a union (``gradient_checkpointing.bool``): never shown.
_BRANCHES = frozenset({"bool", "int", "float", "str", "none", "dict", "list", "bytes", "is-instance", "tagged-union"})


def _user_loc(loc: Sequence[Any]) -> tuple[Any, ...]:
    """The key path the user wrote: pydantic's union-branch and validator parts removed."""
    return tuple(
        p for p in loc
        if not (isinstance(p, str) and ("[" in p or p.startswith("function-") or p in _BRANCHES or p[:1].isupper()))
    )


def _line_of_message(message: str, lines: Lines) -> str:
    """A cross-field rule names keys in its message: point at the first of them the YAML has."""
    for word in re.findall(r"[a-z][a-z0-9_]+", message):
        if (word,) in lines:
            return f"{word} (line {lines[(word,)]}): "
    return ""


def _not_installed(key: str) -> str | None:
    """The message for a key of a lathe plugin that is not installed here. A key that enables its
    plugin by itself (``CORE_KEYS_IN_PLUGINS``: ``rl``, ``rl_beta``…) needs no ``plugins:`` line."""
    from lathe.config.compat import table
    from lathe.plugins import KNOWN_DISTRIBUTIONS

    status = status_of(key)
    if status is None or status.kind != "implemented" or status.detail == "core":
        return None
    dist = KNOWN_DISTRIBUTIONS.get(status.detail, f"lathe-{status.detail}")
    if key in table.CORE_KEYS_IN_PLUGINS:
        return f"this key is implemented by plugin {status.detail!r}, which is not installed; pip install {dist}"
    return (f"this key belongs to plugin {status.detail!r}, which is not installed; "
            f"pip install {dist} and add it to `plugins:`")


def describe_errors(
    exc: ValidationError,
    schema: type[BaseModel],
    lines: Lines,
    plugin_keys: Mapping[str, str],
) -> list[str]:
    """One line per problem: key path, line, what was given, what is allowed, a did-you-mean."""
    problems: list[str] = []
    by_loc: dict[tuple[Any, ...], list[Any]] = {}
    for err in exc.errors():
        by_loc.setdefault(_user_loc(err["loc"]), []).append(err)
    for loc, errors in by_loc.items():
        err = errors[0]
        if len(errors) > 1 and loc and all(e["type"] != "extra_forbidden" for e in errors):
            line = lines.get(loc)
            problems.append(_union_problem(_fmt_loc(loc) + (f" (line {line})" if line else ""), errors))
            continue
        key = _fmt_loc(loc) or "(top level)"
        line = lines.get(loc)
        where = f" (line {line})" if line else ""
        kind = err["type"]
        given = err.get("input")
        if kind == "extra_forbidden":
            leaf = str(loc[-1])
            if len(loc) == 1 and leaf in plugin_keys:
                problems.append(
                    f"{key}{where}: this key belongs to plugin {plugin_keys[leaf]!r}, which is not enabled; "
                    f"add it to `plugins:` (plugins: [{plugin_keys[leaf]}])"
                )
                continue
            missing = _not_installed(leaf) if len(loc) == 1 else None
            if missing:
                problems.append(f"{key}{where}: {missing}")
                continue
            owner = _model_at(schema, loc)
            known = list(owner.model_fields) if owner else []
            close = difflib.get_close_matches(leaf, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"{key}{where}: unknown key{hint}")
        elif kind == "missing":
            problems.append(f"{key}{where}: required key is missing")
        elif kind in ("literal_error", "enum"):
            allowed = err.get("ctx", {}).get("expected", "")
            close = typo_of(str(given), [a.strip(" '") for a in allowed.replace(" or ", ",").split(",")])
            hint = f"; did you mean {close!r}?" if close else ""
            problems.append(f"{key}{where}: {given!r} is not allowed; expected {allowed}{hint}")
        elif kind == "value_error" and not loc:
            message = err["msg"].removeprefix("Value error, ")
            problems.append(_line_of_message(message, lines) + message)
        else:
            shown = f"given {given!r}: " if given is not None and not isinstance(given, dict | list) else ""
            problems.append(f"{key}{where}: {shown}{err['msg'].removeprefix('Value error, ')}")
    return problems


def _union_problem(key: str, errors: list[Any]) -> str:
    """A value that fits no branch of a union: one line saying what each branch expects."""
    expected = []
    for err in errors:
        if err["type"] in ("literal_error", "enum"):
            expected.append(err.get("ctx", {}).get("expected", ""))
        else:
            expected.append(err["msg"].removeprefix("Input should be ").split(",")[0])
    return f"{key}: given {errors[0].get('input')!r}: expected {' or '.join(dict.fromkeys(expected))}"


def validate(
    data: Mapping[str, Any],
    plugins: Plugins,
    *,
    source: str = "",
    lines: Lines | None = None,
    earlier: Sequence[str] = (),
    check_data: bool = False,
) -> CoreConfig:
    """Validate raw config data against core + enabled plugins' schema, then run plugins' checks.

    Every problem is reported at once: ``earlier`` ones (plugins that could not load), refused
    Axolotl keys, schema errors, and with ``check_data`` what preprocess would refuse (dataset
    types and keys, chat template names, missing local files); plugins' own checks run once the
    schema is satisfied.
    """
    models = [(p, m) for p, m in plugins.answers("lathe_config_model") if m is not None]
    schema = config_class(models)
    data, refused = remap(dict(data), lines)
    problems = [*earlier, *refused]
    if check_data:
        from lathe.data.checks import data_problems

        problems += data_problems(data, plugins, lines or {})
    try:
        cfg = schema.model_validate(data)
    except ValidationError as exc:
        unknown_top = [e["loc"][0] for e in exc.errors() if e["type"] == "extra_forbidden" and len(e["loc"]) == 1]
        plugin_keys = keys_of_other_plugins(plugins.names) if unknown_top else {}
        raise ConfigError(source, [*problems, *describe_errors(exc, schema, lines or {}, plugin_keys)]) from None
    if problems:
        raise ConfigError(source, problems)
    problems = plugins.call("lathe_validate_config", cfg=cfg)
    try:  # exclusive losses (Liger's fused CE, CCE, KD) conflict through the contract, before any load
        from lathe.chunked_loss import hidden_states_loss

        hidden_states_loss(cfg, plugins)
    except LatheError as exc:
        problems = [*problems, str(exc)]
    if problems:
        raise ConfigError(source, problems)
    return cfg


def implied_plugins(data: Mapping[str, Any], names: Sequence[str]) -> dict[str, str]:
    """Plugins that a top-level key enables without a ``plugins:`` line (plugin → the key).

    Axolotl accepts some keys without any plugin line (``rl: dpo``) that lathe implements in a
    plugin; the compatibility table (``CORE_KEYS_IN_PLUGINS``) says which (DESIGN §6). A key that
    is unset (``null`` or ``false``) enables nothing.
    """
    from lathe.config.compat import table
    from lathe.plugins import canonical_name

    listed = {canonical_name(n) for n in names}
    implied: dict[str, str] = {}
    for key, value in data.items():
        plugin = table.CORE_KEYS_IN_PLUGINS.get(key)
        if plugin and table.PLUGINS.get(plugin) and value not in (None, False) and plugin not in listed:
            implied.setdefault(plugin, key)
    for plugin, key in implied.items():
        log.info("`%s` enables plugin %r (no `plugins:` line needed)", key, plugin)
    return implied


def _load_problem(problem: str, implied: Mapping[str, str], lines: Lines) -> str | None:
    """Where a plugin that failed to load is reported: a plugin only a key implied, at that key
    (not installed: validation says so at every such key, so nothing here); else at ``plugins:``."""
    for plugin, key in implied.items():
        if f'"{plugin}"' in problem:
            return None if "is not installed" in problem else f"{key} (line {lines.get((key,), '?')}): {problem}"
    return f"plugins (line {lines.get(('plugins',), '?')}): {problem}"


def keys_of_other_plugins(enabled: Sequence[str]) -> dict[str, str]:
    """Config keys of installed plugins that this run does not enable (key → plugin name)."""
    from lathe.plugins import Plugins, describe_all

    out: dict[str, str] = {}
    for info in describe_all():
        if info.module is None or info.name in enabled:
            continue
        try:
            single = Plugins([info])
            for _, model in single.answers("lathe_config_model"):
                if model is not None:
                    out.update(dict.fromkeys(model.model_fields, info.name))
        except Exception:  # a broken plugin is reported by `lathe plugins`, not here
            continue
    return out


def refuse_secret_overrides(overrides: Iterable[str], plugins: Plugins | None = None) -> None:
    """Secrets on the command line show in process lists and shell history: refuse them
    (keys named like secrets, and ``secret_field`` keys of the core and of enabled plugins)."""
    from lathe.config.save import is_secret_key, secret_keys

    marked = secret_keys(CoreConfig)
    for _, model in plugins.answers("lathe_config_model") if plugins is not None else ():
        if model is not None:
            marked |= secret_keys(model)
    for item in overrides:
        key = item.partition("=")[0].strip().split(".")[-1]
        if key in marked or is_secret_key(key):
            raise LatheError(
                f"--set {key}=...: secrets on the command line are visible to other users in process "
                "lists; put it in the environment (e.g. HF_TOKEN, WANDB_API_KEY) or in the config file"
            )


def load_config(
    path: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    plugins: Plugins | None = None,
    *,
    check_data: bool = False,
) -> tuple[CoreConfig, Plugins]:
    """Read, override, discover the enabled plugins, and validate: the whole front of a run."""
    from lathe.plugins import Plugins

    data, lines = read_yaml(path)
    refuse_secret_overrides(overrides)
    data = apply_overrides(data, overrides)
    if plugins is None:
        names = data.get("plugins") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(str(path), [f"plugins (line {lines.get(('plugins',), '?')}): expected a list of plugin names"])
        implied = implied_plugins(data, names)
        plugins, earlier = Plugins.load_available([*names, *implied])
        earlier = [where for p in earlier if (where := _load_problem(p, implied, lines))]
    else:
        earlier = []
    refuse_secret_overrides(overrides, plugins)
    cfg = validate(data, plugins, source=str(path), lines=lines, earlier=earlier, check_data=check_data)
    cfg.read_from(path)
    return cfg, plugins


__all__ = ["ConfigError", "apply_overrides", "field_owners", "load_config", "read_yaml", "validate"]
