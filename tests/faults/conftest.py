"""The fault tests' private PostgreSQL cluster: started once per run, migrated once into a template.

Each test copies the template into a database of its own, starts its own ``redis-server``
and its own processes (``scenario.World``). Without the server binaries the tests skip, with
the reason, except in CI (``CI=true``), where nothing may skip.
"""

from __future__ import annotations

import os

import pytest

from .harness import PrivatePostgres, migrate, missing_tools, product_env

TEMPLATE = "faults_template"


@pytest.fixture(scope="session")
def private_postgres(tmp_path_factory):
    missing = missing_tools()
    if missing:
        reason = "the fault tests start private servers and need " + " and ".join(missing)
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {reason}")
        pytest.skip(reason)
    postgres = PrivatePostgres().init()
    postgres.start()
    try:
        postgres.sql(f'CREATE DATABASE "{TEMPLATE}"')
        # No Redis is needed to migrate; the URL only has to be well formed.
        migrate(product_env(postgres.url(TEMPLATE), "redis://127.0.0.1:9/0", tmp_path_factory.mktemp("migrate")))
        yield postgres
    finally:
        postgres.destroy()


@pytest.fixture
def world_factory(private_postgres, request):
    """Build a World (scenario.World); it is torn down, and its logs shown if the test failed."""
    from .scenario import World

    worlds: list[World] = []

    def build(**kwargs) -> World:
        world = World(private_postgres, TEMPLATE, **kwargs)
        worlds.append(world)
        return world

    yield build
    for world in worlds:
        report = getattr(request.node, "rep_call", None)
        failed = report is not None and report.failed
        if failed:
            print(world.logs())
            print(f"the processes' whole logs: {world.dir}")
        world.close(keep_logs=failed)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


def pytest_terminal_summary(terminalreporter):
    """The figures of every fault test that ran, whether it passed or failed."""
    from .scenario import FIGURES

    if FIGURES:
        terminalreporter.section("fault figures")
        for text in FIGURES:
            terminalreporter.write_line(text.strip("\n"))
