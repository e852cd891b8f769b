"""Test sessions: one per distribution under packages/, plus lint and cross-package e2e.

    nox -s "tests(lathe)"          # one package
    nox                            # everything CI runs
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "pyproject.toml").exists())
# The CPU build of torch that this environment keeps on disk; looser requests pull a CUDA build.
TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "tests", "e2e"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False


# Extras installed with a package in its own test session: the core's tests run QLoRA and
# the 8-bit optimizers for real (bitsandbytes runs them on CPU).
TEST_EXTRAS = {"lathe": "test,bnb"}


def _install(session: nox.Session, *packages: str, extras: dict[str, str] | None = None) -> None:
    session.install(TORCH)
    args: list[str] = []
    for name in packages:
        args += ["-e", f"packages/{name}[{(extras or {}).get(name, 'test')}]"]
    session.install(*args)


@nox.session
@nox.parametrize("package", PACKAGES, ids=PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """Install core + one package (with its test extra) and run that package's tests."""
    deps = ["lathe", package] if package != "lathe" else ["lathe"]
    _install(session, *deps, extras=TEST_EXTRAS if package == "lathe" else None)
    session.chdir(ROOT / "packages" / package)
    session.run("pytest", "tests", *session.posargs, env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})


@nox.session
def e2e(session: nox.Session) -> None:
    """Real installs of every package, real entry points, tests across packages."""
    _install(session, *PACKAGES)
    session.run("pytest", "tests", *session.posargs, env={"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "packages", "tests", "bench", "scripts", "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of CI): each prints ratios against a baseline run in the same script."""
    _install(session, *PACKAGES)
    for script in sorted((ROOT / "bench").glob("*.py")):
        session.run("python", str(script), *session.posargs)
