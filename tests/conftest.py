"""Project-wide fixtures: the Graph emulator (one server per session, a fresh tenant per test), a Graph
client pointed at it, one Azurite per session (`azurite`), and scripted loopback servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import azure.functions as func
import pytest

from emulator.seed import seed_tenant
from emulator.testing import EmulatorServer
from shared.graph import Graph
from tests.support.azurite import azurite
from tests.support.graph import emulator_graph
from tests.support.graph_calls import RecordingLog, compare, documented_calls
from tests.support.scripted_server import Handler, ScriptedServer

__all__ = ["azurite"]


# Permissions, proven (docs/permissions.md#every-call-checked): the Graph calls made while the engine's tests run
# (tests/integration, tests/functions; not the emulator's own tests, which probe Graph's contract directly).
ENGINE_TESTS = ("integration", "functions")
TESTS = Path(__file__).parent
_graph_calls: set[str] = set()  # (method, path template) of every call recorded this session
_logs: list[RecordingLog] = []
_worker_files: set[Path] = set()  # pytest-xdist: the files the workers collected (the controller collects none)


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed_tenant("demo")) as server:
        log = RecordingLog(maxlen=server.state.request_log.maxlen, calls=_graph_calls)
        server.state.request_log = log  # the gateway appends each request here; the log stays what it was
        _logs.append(log)
        yield server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[object]:
    """Record during the engine's tests only: setup (fixtures that run the engine), call and teardown."""
    recording = any(Path(item.path).is_relative_to(TESTS / part) for part in ENGINE_TESTS)
    for log in _logs:
        log.recording = recording
    try:
        return (yield)
    finally:
        for log in _logs:
            log.recording = False


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """pytest-xdist's controller: collect each worker's calls and the test files it collected."""
    output = getattr(node, "workeroutput", {})
    _graph_calls.update(output.get("graph_calls", ()))
    _worker_files.update(Path(path) for path in output.get("collected_files", ()))


def _engine_test_files() -> set[Path]:
    return {path for part in ENGINE_TESTS for path in (TESTS / part).rglob("test_*.py")}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The reliability suite runs only through scripts/reliability (it sets GUESTCTL_RELIABILITY_PROFILE)."""
    if collection_path == TESTS / "reliability" and not os.environ.get("GUESTCTL_RELIABILITY_PROFILE"):
        return True
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a Graph call the engine made is not in docs/permissions.md with its permission; when
    every engine test ran (no -k/-m/--deselect/--lf, nothing failed or stopped early), also when a listed call
    was never made."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: hand the calls to the controller
        workeroutput["graph_calls"] = sorted(_graph_calls)
        workeroutput["collected_files"] = sorted({str(item.path) for item in session.items})
        return
    if not _graph_calls:
        return
    ran = {Path(item.path) for item in session.items} | _worker_files
    options = session.config.option
    complete = (
        _engine_test_files() <= ran
        and not getattr(options, "keyword", "")
        and not getattr(options, "markexpr", "")
        and not getattr(options, "deselect", None)
        and not getattr(options, "lf", False)
        and not session.shouldfail
        and not session.shouldstop
        and session.testsfailed == 0
    )
    problems = compare(_graph_calls, documented_calls(), complete=complete)
    if problems:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("Graph permissions (docs/permissions.md#every-call-checked)", red=True)
            for problem in problems:
                reporter.line(problem)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def emulator(emulator_session: EmulatorServer) -> EmulatorServer:
    """The running emulator with a fresh demo tenant, limits and faults off. Tests may reset it further."""
    emulator_session.reset(seed_tenant("demo"))
    return emulator_session


@pytest.fixture
async def graph(emulator: EmulatorServer) -> AsyncIterator[Graph]:
    """Our real Graph client (kiota adapter, pacer, retry) against the emulator."""
    client = emulator_graph(emulator.base_url)
    yield client
    await client.close()


@pytest.fixture(scope="session")
def functions() -> dict[str, func.FunctionBuilder]:
    """The Functions app indexed once per session: a second get_functions() raises
    (docs/architecture.md#library-facts)."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Handler], ScriptedServer]]:
    """Start loopback servers with a scripted handler; all are stopped after the test."""
    contexts = []

    def start(handler: Handler) -> ScriptedServer:
        server = ScriptedServer(handler)
        context = server.running()
        context.__enter__()
        contexts.append(context)
        return server

    yield start
    for context in contexts:
        context.__exit__(None, None, None)
