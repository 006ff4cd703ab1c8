"""JSON from outside: nesting deep enough to hurt is a ValueError like any malformed JSON."""

import pytest

from config import safejson


def test_it_reads_ordinary_json():
    assert safejson.loads('{"type": "message", "meta": {"a": [1, {"b": 2}]}}') == {
        "type": "message",
        "meta": {"a": [1, {"b": 2}]},
    }


@pytest.mark.parametrize("text", ["[" * 20_000, "[" * 200_000 + "]" * 200_000])
def test_nesting_past_the_parsers_own_limit_is_a_value_error(text):
    with pytest.raises(ValueError, match="nested"):
        safejson.loads(text)


def test_nesting_past_the_limit_is_refused_and_up_to_it_accepted():
    at_limit = "[" * safejson.MAX_DEPTH + "]" * safejson.MAX_DEPTH
    assert safejson.loads(at_limit) is not None
    with pytest.raises(safejson.TooDeep):
        safejson.loads("[" + at_limit + "]")
