"""The daemons' event loop choice (navarch/_eventloop.py)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from navarch import _eventloop as eventloop


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert eventloop.loop_kind() == "uvloop"
    assert issubclass(eventloop.run(_loop_type()), uvloop.Loop)


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, " AsyncIO ")
    assert eventloop.loop_kind() == "asyncio"
    assert not issubclass(eventloop.run(_loop_type()), uvloop.Loop)


def test_a_daemon_that_cannot_use_uvloop_gets_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV, raising=False)
    assert not issubclass(eventloop.run(_loop_type(), allow_uvloop=False), uvloop.Loop)


def test_an_unknown_loop_names_the_variable_and_the_choices(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV, "trio")
    with pytest.raises(SystemExit) as exc:
        eventloop.run(_loop_type())
    assert str(exc.value) == ("NAVARCH_EVENT_LOOP='trio': accepted values are uvloop, asyncio")
