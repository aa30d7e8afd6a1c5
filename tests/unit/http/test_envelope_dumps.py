"""The envelope's ``dumps`` (one C encoder made once, kiln/http/envelope.py) gives json.dumps's bytes with OME's
options for any JSON value, and refuses what json.dumps refuses with the same errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.http.envelope import dumps

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def reference(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_dumps_is_json_dumps_with_omes_options(value: Any) -> None:
    assert dumps(value) == reference(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {"a": object()}, {1: "x", "b": "y"}, {"a": {1, 2}}])
def test_dumps_refuses_what_json_dumps_refuses(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)) as expected:
        reference(value)
    with pytest.raises(expected.type) as got:
        dumps(value)
    assert str(got.value) == str(expected.value)
