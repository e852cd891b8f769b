"""Test sessions: one per distribution under packages/, plus lint and cross-package e2e.

    nox -s "tests(lathe)"          # one package
    nox                            # everything CI runs
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
# The CPU build of torch that this environment keeps on disk; looser requests pull a CUDA build.
TORCH = "torch==2.13.0"
# The Axolotl release whose schema config/compat/axolotl_keys.json was read from (facts only, never imported).
AXOLOTL = "axolotl==0.19.0"

# .ci/run runs these as two nox processes side by side (e2e, and the rest): keep it in step.
nox.options.sessions = ["lint", "tests", "extra", "e2e", "docs"]
nox.options.reuse_venv = "yes"
# uv creates each venv and installs into it from one shared cache (hard links, no bytecode compile):
# a session's install takes seconds, where pip took ~40 s for torch and its companions alone.
nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = False


# Extras installed with a package in its own test session: the core's tests run QLoRA and
# the 8-bit optimizers for real (bitsandbytes runs them on CPU).
TEST_EXTRAS = {"lathe": "test,bnb"}
# Core extras too heavy, or clashing with others, for the core session (deepspeed, gptq, ray…):
# their tests carry a pytest marker of the extra's name, are deselected in "tests(lathe)", and run
# in "extra(<name>)" with core installed with that extra. Add a name here when its tests land.
HEAVY_EXTRAS: list[str] = ["deepspeed", "ray"]


# Other plugins a package's tests load beside it (conflicts between plugins, refused at validation).
TEST_SIBLINGS = {"lathe-cut-cross-entropy": ["lathe-kd"], "lathe-liger": ["lathe-cut-cross-entropy"]}
# Test runs spread over two worker processes (pytest-xdist): every test process runs single-threaded
# (OMP_NUM_THREADS=1) on CI's two cores.
WORKERS = ["-n", "2"]


def _wheel_folders() -> list[str]:
    """``--find-links`` for the folders pip is configured with (PIP_FIND_LINKS; the CPU torch wheel lies
    there on this project's machines). uv does not read pip's configuration."""
    folders = os.environ.get("PIP_FIND_LINKS", "/opt/wheels").split()
    return [arg for folder in folders if Path(folder).is_dir() for arg in ("--find-links", folder)]


def _install(session: nox.Session, *packages: str, extras: dict[str, str] | None = None) -> None:
    """torch pinned in the same resolution as the packages, so no dependency can swap in another build."""
    args: list[str] = [*_wheel_folders(), TORCH, "pytest-xdist"]
    for name in packages:
        args += ["-e", f"packages/{name}[{(extras or {}).get(name, 'test')}]"]
    session.install(*args)


def _axolotl_src(session: nox.Session) -> str:
    """Axolotl's wheel, downloaded without dependencies and unpacked, for the key-list checks."""
    dest = Path(session.create_tmp()).resolve() / "axolotl-src"
    if not (dest / "axolotl").is_dir():
        # the pip of the Python that runs nox (a uv venv has none)
        session.run(sys.executable, "-m", "pip", "download", AXOLOTL, "--no-deps", "-d", str(dest.parent), silent=True,
                    external=True)
        with zipfile.ZipFile(next(dest.parent.glob("axolotl-*.whl"))) as wheel:
            wheel.extractall(dest)
    return str(dest)


@nox.session
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Install core + one package (with its test extra) and run that package's tests."""
    deps = ["lathe", package, *TEST_SIBLINGS.get(package, [])] if package != "lathe" else ["lathe"]
    _install(session, *deps, extras=TEST_EXTRAS if package == "lathe" else None)
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args: list[str] = []
    if package == "lathe":
        env["AXOLOTL_SRC"] = _axolotl_src(session)
        if HEAVY_EXTRAS:
            args = ["-m", " and ".join(f"not {name}" for name in HEAVY_EXTRAS)]
    session.chdir(ROOT / "packages" / package)
    session.run("pytest", "tests", *WORKERS, *args, *session.posargs, env=env)


@nox.session
@nox.parametrize("name", HEAVY_EXTRAS, ids=HEAVY_EXTRAS)
def extra(session: nox.Session, name: str) -> None:
    """Core installed with one heavy extra; only the core tests marked with that extra's name."""
    _install(session, "lathe", extras={"lathe": f"test,{name}"})
    session.chdir(ROOT / "packages" / "lathe")
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    session.run("pytest", "tests", "-m", name, *session.posargs, env=env)


@nox.session
def e2e(session: nox.Session) -> None:
    """Real installs of every package, real entry points, tests across packages (with core's
    test extras: the examples' QLoRA configs train for real)."""
    _install(session, *PACKAGES, extras=TEST_EXTRAS)
    # hatchling and pip: tests/test_plugin_scaffold.py builds and pip-installs the scaffolded plugin without
    # network; examples/plugin-hello: tests/test_examples.py trains its config.
    session.install(*_wheel_folders(), TORCH, "hatchling", "pip", "-e", "examples/plugin-hello")
    env = {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "AXOLOTL_SRC": _axolotl_src(session)}
    if session.posargs:
        session.run("pytest", "tests", *session.posargs, env=env)
        return
    # Multi-process runs already keep both cores busy, and the scaffold test installs into this venv:
    # they run after the rest, one at a time.
    serial = ["tests/distributed", "tests/test_plugin_scaffold.py"]
    session.run("pytest", "tests", *WORKERS, *(f"--ignore={path}" for path in serial), env=env)
    session.run("pytest", *serial, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "packages", "tests", "bench", "scripts", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    """The docs site (mkdocs.yml), built with --strict: a broken link or anchor fails; a page missing
    from the nav is only listed. The generated pages are checked by core's test_contract.py."""
    session.install("mkdocs-material")
    site = Path(session.create_tmp()).resolve() / "site"
    session.run("mkdocs", "build", "--strict", "--site-dir", str(site), env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of CI): each prints ratios against a baseline run in the same script.

    ``nox -s bench -- vs_axolotl`` runs only the named scripts (the side-by-side table with
    Axolotl); every script takes its own options when run directly (see its docstring).
    """
    _install(session, *PACKAGES)
    names = session.posargs or [p.stem for p in sorted((ROOT / "bench").glob("*.py"))]
    for name in names:
        session.run("python", str(ROOT / "bench" / f"{name}.py"), env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
