import pytest

from boxkite_middleware.jsonpath import PathError, getter, parse


@pytest.mark.parametrize(
    "text, head, tail",
    [
        ("$", (), None),
        ("$.age", ("age",), None),
        ("$['odd key'].x", ("odd key", "x"), None),
        ('$["q\\"uote"]', ('q"uote',), None),
        ("$.a[0][-1]", ("a", 0, -1), None),
        ("$.instances[*]", ("instances",), ()),
        ("$.instances[*].age", ("instances",), ("age",)),
        ("$.inputs[0].data[*][3]", ("inputs", 0, "data"), (3,)),
    ],
)
def test_supported_paths(text, head, tail):
    path = parse(text)
    assert path.head == head and path.tail == tail


@pytest.mark.parametrize(
    "text, message",
    [
        ("age", "must start with '\\$'"),
        ("$..age", "recursive descent"),
        ("$.items[?(@.x > 1)]", "filters"),
        ("$.items[0:2]", "slices"),
        ("$.a[*].b[*]", "at most one"),
        ("$.a b", "syntax"),
    ],
)
def test_unsupported_paths_say_what_is_supported(text, message):
    with pytest.raises(PathError, match=message) as info:
        parse(text)
    assert "supported: $, .name" in str(info.value)


def test_getters_never_raise():
    doc = {"a": [1, {"b": 2}], "s": "text", "n": None}
    assert getter(parse("$.a[1].b").head)(doc) == 2
    assert getter(parse("$.a[-2]").head)(doc) == 1
    assert getter(parse("$.a[5]").head)(doc) is None
    assert getter(parse("$.s[0]").head)(doc) is None  # a string is not an array
    assert getter(parse("$.a.b").head)(doc) is None
    assert getter(parse("$.n.x").head)(doc) is None
    assert getter(parse("$.missing").head)(doc) is None
    assert getter(parse("$.missing").head)([1, 2]) is None
    assert getter(parse("$").head)(doc) is doc
