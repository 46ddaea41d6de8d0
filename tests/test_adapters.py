from __future__ import annotations

import pytest

from helpdesk.conversations import adapters


def test_a_kind_registers_once_and_is_found_by_its_name(monkeypatch):
    monkeypatch.setattr(adapters, "_registry", {})
    first = adapters.register(adapters.Adapter(kind="pigeon", label="Pigeon post"))
    assert adapters.register(first) is first  # the same adapter again (a second ready()) is harmless
    assert adapters.adapter_for("pigeon") is first
    assert adapters.adapters() == [first]
    with pytest.raises(RuntimeError, match="registered twice"):
        adapters.register(adapters.Adapter(kind="pigeon", label="Another"))


def test_an_unknown_kind_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(adapters, "_registry", {})
    with pytest.raises(LookupError, match="no adapter registered for channel kind 'smoke'"):
        adapters.adapter_for("smoke")


def test_an_adapter_that_does_not_deliver_says_so_when_asked_to_send():
    adapter = adapters.Adapter(kind="pigeon", label="Pigeon post")
    assert (adapter.delivers, adapter.socket_sends({}), adapter.secret_fields) == (False, [], ())
    with pytest.raises(NotImplementedError, match="pigeon does not deliver"):
        adapter.send(object())
