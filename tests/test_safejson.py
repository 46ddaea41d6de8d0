from __future__ import annotations

import pytest

from helpdesk import safejson


def test_it_parses_ordinary_json():
    assert safejson.loads(b'{"type": "message", "body": "hi", "tags": [1, [2]]}') == {
        "type": "message",
        "body": "hi",
        "tags": [1, [2]],
    }


@pytest.mark.parametrize("raw", [b"[" * 1000 + b"]" * 1000, "[" * 100_000, b'{"a":' * 2000 + b"1" + b"}" * 2000])
def test_it_refuses_json_nested_past_what_the_parser_survives(raw):
    with pytest.raises(safejson.BadJSON, match="nested too deeply"):
        safejson.loads(raw)


def test_it_refuses_json_nested_past_the_limit_even_when_it_parses():
    assert safejson.loads("[" * 3 + "]" * 3, max_depth=3) == [[[]]]
    with pytest.raises(safejson.BadJSON):
        safejson.loads("[" * 4 + "]" * 4, max_depth=3)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", "nope", b'{"a": 1,}'])
def test_every_other_failure_is_the_same_error(raw):
    with pytest.raises(safejson.BadJSON, match="not valid JSON"):
        safejson.loads(raw)
