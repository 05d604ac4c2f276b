"""Sessions: ``nox`` runs lint, typecheck and tests; others: demo, bench, soak, mutants, docs."""

from __future__ import annotations

import os
import shutil

import nox
from nox.command import CommandFailed

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# asyncio debug mode and -X dev: a leaked task, an unclosed resource or a slow callback
# shows up; pyproject turns every warning into an error.
DEBUG_ENV = {"PYTHONASYNCIODEBUG": "1", "PYTHONDEVMODE": "1"}


# Ceph RGW, the second real S3 server of the tests (tests/s3/ceph_rgw.py).
CEPH_PACKAGES = ("ceph-mon", "ceph-osd", "radosgw", "ceph-common")
CEPH_PROGRAMS = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin")


def install_ceph_rgw(session: nox.Session) -> None:
    """As root with apt-get (CI, containers), install Ceph RGW if it is missing; elsewhere
    the tests that need it say how to install it."""
    if all(map(shutil.which, CEPH_PROGRAMS)) or os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    session.log("installing Ceph RGW for the S3 tests (apt-get, about 30 s, once)")
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    try:
        session.run_install("apt-get", "update", "-qq", external=True, silent=True, env=env)
        session.run_install(
            "apt-get", "install", "-y", "-qq", "--no-install-recommends", *CEPH_PACKAGES,
            external=True, silent=True, env=env,
        )  # fmt: skip
    except CommandFailed:
        session.warn("could not install Ceph RGW; the tests that need it will say so")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite, with branch coverage."""
    session.install("-e", ".[all,test]")
    install_ceph_rgw(session)
    session.run(
        "python", "-m", "pytest", "--cov", "--cov-report=term", *session.posargs, env=DEBUG_ENV
    )


@nox.session(python=PYTHON)
def soak(session: nox.Session) -> None:
    """The model-based tests with many more sequences: over 15 000 across memory, files,
    S3 and Redis (the session prints the count); about half an hour."""
    session.install("-e", ".[all,test]")
    session.run(
        "python", "-m", "pytest", "-k", "model", *session.posargs,
        env={**DEBUG_ENV, "HYPOTHESIS_PROFILE": "soak"},
    )  # fmt: skip


@nox.session(python=PYTHON)
def mutants(session: nox.Session) -> None:
    """Break the package on purpose, one way at a time, in a copy (tests/mutants.py), and
    report every break the tests survive; ``-- --all`` runs the whole suite against each.
    Not part of CI: a few minutes."""
    session.install("-e", ".[all,test]")
    session.run("python", "-m", "tests.mutants", *session.posargs, env=DEBUG_ENV)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    # The test extra too: the embedded S3 used by tests and the demo is typed against moto.
    session.install("-e", ".[all,test]", "mypy>=1.10", "types-aiobotocore[s3]>=2.13")
    session.run("mypy")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Stream ~200 MiB through a buffer onto each storage, check it, print the figures."""
    session.install("-e", ".[all,test]")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/, every warning an error."""
    session.install("-e", ".[docs]")
    # NO_MKDOCS_2_WARNING: mkdocs-material prints a banner about its successor on stderr.
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """The benchmark suite against the peers; writes docs/benchmarks.md and its plots.

    Takes several minutes; ``nox -s bench -- --quick`` is a smoke run (its figures are not
    for publishing: pass ``--out`` elsewhere).
    """
    session.install("-e", ".[all,test]", "matplotlib>=3.8")
    session.run("python", "benchmarks/run_all.py", *session.posargs)
