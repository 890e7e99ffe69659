import pytest

from payments_gateway.jsonsafe import JSONTooDeep, loads, nesting_deeper_than


def test_depth_is_counted_outside_strings_only():
    assert not nesting_deeper_than('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', 3)
    assert not nesting_deeper_than('{"a": "\\"[[[[[[[["}', 2)
    assert nesting_deeper_than("[[[[1]]]]", 3)
    assert not nesting_deeper_than("[[[1]]],[[[2]]]", 3)


def test_loads_parses_ordinary_documents_and_refuses_deep_ones():
    assert loads(b'{"id": "evt_1", "data": [1, {"x": null}]}') == {"id": "evt_1", "data": [1, {"x": None}]}
    hundred_deep = []
    for _ in range(99):
        hundred_deep = [hundred_deep]
    assert loads("[" * 100 + "]" * 100) == hundred_deep
    with pytest.raises(JSONTooDeep):
        loads("[" * 101 + "]" * 101)
    with pytest.raises(ValueError):
        loads("{not json")
