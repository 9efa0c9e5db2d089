"""JSON merge patches (RFC 7386), the three-way patch of ``navctl apply``, and JSON patches
(RFC 6902) in ``navarch._patch``.

The RFC tables are the RFCs' own examples (RFC 7386 appendix A, RFC 6902 appendix A);
properties check the contracts: create/apply round trips, the three-way rules, inputs never
mutated and results never aliased.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from navarch._patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    create_merge_patch,
    json_equal,
    three_way_merge_patch,
)

# --- RFC 7386 ------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "patch", "result"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    # and a few more
    ({"a": 1}, {}, {"a": 1}),
    (None, {"a": 1}, {"a": 1}),
    ({"a": {"b": 1}}, {"a": {"c": [None]}}, {"a": {"b": 1, "c": [None]}}),
])
def test_apply_merge_patch_rfc7386(target: Any, patch: Any, result: Any) -> None:
    assert apply_merge_patch(target, patch) == result


@pytest.mark.parametrize(("original", "modified", "patch"), [
    ({"a": 1}, {"a": 1}, {}),
    ({"a": 1}, {"a": 2}, {"a": 2}),
    ({"a": 1}, {}, {"a": None}),
    ({}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1}}, {"a": {"c": None}}),
    ({"a": {"b": 1}}, {"a": {"b": 1}}, {}),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, {"a": [1, 2, 3]}),  # lists replaced whole
    ({"a": [{"x": 1}]}, {"a": [{"x": 1}]}, {}),
    ({"a": 1}, {"a": 1.0}, {}),  # JSON numbers
    ({"a": 1}, {"a": True}, {"a": True}),  # booleans are not numbers
    ({"a": {"b": 1}}, {"a": "s"}, {"a": "s"}),
    ({"a": "s"}, {"a": {"b": 1}}, {"a": {"b": 1}}),
    ({"a": 1}, ["x"], ["x"]),
    ("x", {"a": 1}, {"a": 1}),
])
def test_create_merge_patch(original: Any, modified: Any, patch: Any) -> None:
    assert create_merge_patch(original, modified) == patch
    assert apply_merge_patch(original, patch) == modified


# --- three-way (navctl apply) ---------------------------------------------------------------

LAST = {"metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {"replicas": 2, "template": {"image": "web:1"}}}
LIVE = {"metadata": {"name": "web", "uid": "u-1", "labels": {"app": "web", "tier": "front",
                                                              "team": "a"}},
        "spec": {"replicas": 5, "template": {"image": "web:1"}, "strategy": "Rolling"},
        "status": {"readyReplicas": 5}}


@pytest.mark.parametrize(("original", "modified", "current", "patch"), [
    # nothing changed in the manifest, the live object drifted only in fields it owns
    (LAST, LAST, {**LIVE, "spec": {**LIVE["spec"], "replicas": 2}}, {}),
    # the manifest's value wins over a change made by someone else
    (LAST, LAST, LIVE, {"spec": {"replicas": 2}}),
    # a new image; a label dropped from the manifest is deleted, one added by others kept
    (LAST,
     {"metadata": {"name": "web", "labels": {"app": "web"}},
      "spec": {"replicas": 5, "template": {"image": "web:2"}}},
     LIVE,
     {"metadata": {"labels": {"tier": None}}, "spec": {"template": {"image": "web:2"}}}),
    # a field dropped from the manifest is deleted even if the live value differs
    ({"spec": {"replicas": 2, "paused": True}}, {"spec": {"replicas": 2}},
     {"spec": {"replicas": 2, "paused": False}}, {"spec": {"paused": None}}),
    # first apply: no last-applied manifest, so nothing is deleted
    (None, {"spec": {"replicas": 1}}, {"spec": {"replicas": 3}, "status": {}},
     {"spec": {"replicas": 1}}),
    # a whole object dropped from the manifest
    ({"a": {"b": 1}, "c": 1}, {"c": 1}, {"a": {"b": 1, "x": 2}, "c": 1}, {"a": None}),
    # a field the manifest sets to null counts as dropped
    ({"a": 1, "b": 2}, {"a": None, "b": 2}, {"a": 1, "b": 2}, {"a": None}),
    ({}, {"a": None}, {"a": 1}, {}),
    # an explicitly empty object is set where the live object has none
    ({}, {"a": {}}, {}, {"a": {}}),
    ({}, {"a": {}}, {"a": {"x": 1}}, {}),
    # a value becomes an object: the object is set whole, nulls in it dropped
    ({"a": 1}, {"a": {"b": 1, "c": None}}, {"a": 1}, {"a": {"b": 1}}),
    # an object becomes a value
    ({"a": {"b": 1}}, {"a": 2}, {"a": {"b": 1, "c": 3}}, {"a": 2}),
    # lists are replaced whole when they differ
    ({"l": [1, 2]}, {"l": [1, 2, 3]}, {"l": [1, 2]}, {"l": [1, 2, 3]}),
    ({"l": [1, 2]}, {"l": [1, 2]}, {"l": [1, 2, 9]}, {"l": [1, 2]}),
    ({"l": [1]}, {}, {"l": [1]}, {"l": None}),
    # deletions and changes inside the same object
    ({"m": {"a": 1, "b": 2}}, {"m": {"a": 9}}, {"m": {"a": 1, "b": 2, "c": 3}},
     {"m": {"a": 9, "b": None}}),
    # non-object documents are replaced
    ({"a": 1}, ["x"], {"a": 1}, ["x"]),
    ({"a": 1}, {"a": 1}, "garbage", {"a": 1}),
])
def test_three_way_merge_patch(original: Any, modified: Any, current: Any,
                               patch: Any) -> None:
    assert three_way_merge_patch(original, modified, current) == patch


def test_three_way_patch_applied_to_the_live_object() -> None:
    manifest = {"metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 2, "template": {"image": "web:2"}}}
    result = apply_merge_patch(LIVE, three_way_merge_patch(LAST, manifest, LIVE))
    assert result == {
        "metadata": {"name": "web", "uid": "u-1", "labels": {"app": "web", "team": "a"}},
        "spec": {"replicas": 2, "template": {"image": "web:2"}, "strategy": "Rolling"},
        "status": {"readyReplicas": 5},
    }


# --- RFC 6902 ------------------------------------------------------------------------------


@pytest.mark.parametrize(("doc", "ops", "result"), [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
     {"baz": "qux", "foo": "bar"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
     {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]},
     [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"},
      {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
     {"foo": "bar", "baz": "qux"}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    # beyond the appendix
    ({"a/b": 1}, [{"op": "replace", "path": "/a~1b", "value": 2}], {"a/b": 2}),
    ({"a": 1}, [{"op": "add", "path": "", "value": [1]}], [1]),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ({"a": 1}, [{"op": "add", "path": "/a", "value": 2}], {"a": 2}),
    ({"l": [1, 2]}, [{"op": "add", "path": "/l/2", "value": 3}], {"l": [1, 2, 3]}),
    ({"l": [1, 2]}, [{"op": "add", "path": "/l/0", "value": 0}], {"l": [0, 1, 2]}),
    ({"l": [1, 2]}, [{"op": "replace", "path": "/l/1", "value": 9}], {"l": [1, 9]}),
    ({"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/c"}],
     {"a": {"b": [1]}, "c": {"b": [1]}}),
    ({"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    ({"a": {"b": 1}}, [{"op": "move", "from": "/a/b", "path": "/c"}], {"a": {}, "c": 1}),
    ({"a": [1, {"b": True}]}, [{"op": "test", "path": "/a", "value": [1.0, {"b": True}]}],
     {"a": [1, {"b": True}]}),
    ({"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}),
    ({"a": 1},
     [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/a"},
      {"op": "move", "from": "/b", "path": "/c"}],
     {"c": 2}),
    ({"a": 1}, [], {"a": 1}),
])
def test_apply_json_patch(doc: Any, ops: list[dict[str, Any]], result: Any) -> None:
    assert apply_json_patch(doc, ops) == result


@pytest.mark.parametrize(("doc", "ops", "message"), [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}],
     "operation 0 (test /baz): the value differs from the expected value"),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}],
     "operation 0 (test /~01): the value differs"),
    ({"a": 1}, [{"op": "test", "path": "/a", "value": True}], "the value differs"),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}],
     'operation 0 (add /baz/bat): "/baz" does not exist'),
    ({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}],
     'operation 0 (replace /b): "/b" does not exist'),
    ({"a": 1}, [{"op": "remove", "path": "/b"}], 'operation 0 (remove /b): "/b" does not exist'),
    ({"a": 1}, [{"op": "test", "path": "/b", "value": 1}], '"/b" does not exist'),
    ({"a": 1}, [{"op": "move", "from": "/b", "path": "/c"}], '"/b" does not exist'),
    ({"a": 1}, [{"op": "copy", "from": "/b", "path": "/c"}], '"/b" does not exist'),
    ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/c"}],
     "cannot move a value into one of its own children"),
    ({"a": 1}, [{"op": "remove", "path": ""}], "cannot remove the whole document"),
    ({"l": [1]}, [{"op": "add", "path": "/l/2", "value": 3}],
     "index 2 is out of range for an array of 1 items"),
    ({"l": [1]}, [{"op": "replace", "path": "/l/1", "value": 3}], "index 1 is out of range"),
    ({"l": [1]}, [{"op": "remove", "path": "/l/-"}], '"-" is not an array index'),
    ({"l": [1]}, [{"op": "add", "path": "/l/01", "value": 3}], '"01" is not an array index'),
    ({"l": [1]}, [{"op": "add", "path": "/l/-1", "value": 3}], '"-1" is not an array index'),
    ({"l": [1]}, [{"op": "add", "path": "/l/x", "value": 3}], '"x" is not an array index'),
    ({"a": 1}, [{"op": "add", "path": "/a/b", "value": 3}],
     'the parent of "/a/b" is a number, not an object or array'),
    ({"a": "s"}, [{"op": "add", "path": "/a/b/c", "value": 3}],
     '"/a/b" is inside a string, not an object or array'),
    ({"a": 1}, [{"op": "add", "path": "a", "value": 1}],
     '"path" must be empty or start with "/" (got "a")'),
    ({"a": 1}, [{"op": "add", "path": "/~2", "value": 1}], '"~" must be followed by 0 or 1'),
    ({"a": 1}, [{"op": "add", "path": 5, "value": 1}],
     'operation 0 (add): "path" must be a JSON pointer string'),
    ({"a": 1}, [{"op": "add", "path": "/b"}], 'operation 0 (add /b): missing "value"'),
    ({"a": 1}, [{"op": "test", "path": "/a"}], 'missing "value"'),
    ({"a": 1}, [{"op": "move", "path": "/b"}], 'missing "from"'),
    ({"a": 1}, [{"op": "remove"}], 'operation 0 (remove): missing "path"'),
    ({"a": 1}, [{"op": "merge", "path": "/a"}],
     'operation 0: unknown op "merge": use one of add, remove, replace, move, copy, test'),
    ({"a": 1}, [{"path": "/a"}], 'unknown op "None"'),
    ({"a": 1}, ["add"], "operation 0: an operation must be an object"),
    ({"a": 1}, {"op": "add"}, "a JSON patch is a list of operations"),
    ({"a": 1}, [{"op": "test", "path": "/a", "value": 1},
                {"op": "remove", "path": "/zz"}],
     'operation 1 (remove /zz): "/zz" does not exist'),
])
def test_apply_json_patch_errors(doc: Any, ops: Any, message: str) -> None:
    before = copy.deepcopy(doc)
    with pytest.raises(PatchError) as info:
        apply_json_patch(doc, ops)
    assert message in str(info.value)
    assert doc == before  # all or nothing


def test_patch_error_fields() -> None:
    with pytest.raises(PatchError) as info:
        apply_json_patch({"a": []}, [{"op": "add", "path": "/a/-", "value": 1},
                                     {"op": "replace", "path": "/a/5", "value": 1}])
    assert (info.value.index, info.value.op, info.value.path) == (1, "replace", "/a/5")


@pytest.mark.parametrize(("a", "b", "equal"), [
    (1, 1.0, True), (1, True, False), (0, False, False), (True, True, True),
    (None, None, True), (None, 0, False), ("1", 1, False), ([1, 2], [1, 2], True),
    ([1, 2], [2, 1], False), ({"a": 1, "b": 2}, {"b": 2, "a": 1.0}, True),
    ({"a": 1}, {"a": 1, "b": None}, False), ({"a": [True]}, {"a": [1]}, False),
    ([], {}, False), ("", None, False),
])
def test_json_equal(a: Any, b: Any, equal: bool) -> None:
    assert json_equal(a, b) is equal
    assert json_equal(b, a) is equal


# --- properties -----------------------------------------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text("ab", max_size=2),
                    st.floats(allow_nan=False, allow_infinity=False, width=16))
_key = st.sampled_from(["a", "b", "c", "d"])
_json = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_key, inner, max_size=4)), max_leaves=12)
_no_null_members = st.recursive(
    _scalar.filter(lambda v: v is not None),
    lambda inner: st.one_of(st.lists(st.one_of(inner, st.none()), max_size=3),
                            st.dictionaries(_key, inner, max_size=4)),
    max_leaves=12)
_object = st.dictionaries(_key, _json, max_size=4)


@given(_json, _no_null_members)
def test_create_then_apply_gives_the_modified_document(original: Any, modified: Any) -> None:
    patch = create_merge_patch(original, modified)
    assert json_equal(apply_merge_patch(original, patch), modified)


@given(_json, _json)
def test_merge_patch_functions_never_mutate_or_alias(target: Any, patch: Any) -> None:
    saved = copy.deepcopy((target, patch))
    result = apply_merge_patch(target, patch)
    created = create_merge_patch(target, patch)
    three_way = three_way_merge_patch(target, patch, target)
    assert (target, patch) == saved
    for value in (result, created, three_way):
        _scramble(value)
    assert (target, patch) == saved


def _scramble(value: Any) -> None:
    if isinstance(value, dict):
        for key in list(value):
            _scramble(value[key])
            value[key] = "scrambled"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _scramble(item)
            value[i] = "scrambled"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def _check_three_way(result: dict[str, Any], original: dict[str, Any],
                     modified: dict[str, Any], current: dict[str, Any]) -> None:
    for key in set(original) | set(modified) | set(current):
        new = modified.get(key)
        if new is not None:
            old = current.get(key)
            if isinstance(new, dict) and isinstance(old, dict):
                base = original.get(key)
                _check_three_way(result[key], base if isinstance(base, dict) else {}, new,
                                 old)
            else:
                assert json_equal(result[key], _without_nulls(new)), key
        elif original.get(key) is not None:
            assert key not in result, key  # dropped from the manifest: deleted
        else:
            assert json_equal(result.get(key), current.get(key)), key  # not ours: kept


@given(st.one_of(st.none(), _object), _object, _object)
def test_three_way_patch_contract(original: Any, modified: dict[str, Any],
                                  current: dict[str, Any]) -> None:
    patch = three_way_merge_patch(original, modified, current)
    result = apply_merge_patch(current, patch)
    _check_three_way(result, original or {}, modified, current)
    # applying the same manifest again has nothing left to do
    assert three_way_merge_patch(modified, modified, result) == {}


_pointer = st.lists(_key, min_size=1, max_size=3).map(lambda ks: "/" + "/".join(ks))


@given(_object, _pointer, _json)
def test_json_patch_add_then_test_and_remove(doc: dict[str, Any], path: str,
                                             value: Any) -> None:
    try:
        added = apply_json_patch(doc, [{"op": "add", "path": path, "value": value}])
    except PatchError:
        return  # the parent does not exist or is not an object
    assert apply_json_patch(added, [{"op": "test", "path": path, "value": value}]) == added
    removed = apply_json_patch(added, [{"op": "remove", "path": path}])
    with pytest.raises(PatchError):
        apply_json_patch(removed, [{"op": "test", "path": path, "value": value}])
