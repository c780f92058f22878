from boxkite_middleware.extract import PathExtractor, ShapeError
from boxkite_middleware.jsonpath import parse


def _extractor():
    return PathExtractor(
        [(0, parse("$.rows[*].a")), (1, parse("$.rows[*].b")), (2, parse("$.rows[*].c.d"))],
        [(3, parse("$.out[*]"))],
    )


def test_batch_rows_read_all_keys_at_once_or_row_by_row():
    extractor = _extractor()
    whole = [{"a": 1, "b": 2, "c": {"d": 3}}, {"a": 4, "b": 5, "c": {"d": 6}}]
    rows, columns = extractor.request({"rows": whole})
    assert rows == 2 and [list(v) for _, v in columns] == [[1, 4], [2, 5], [3, 6]]
    odd = [{"a": 1}, [1, 2], "text", None, {"a": 7, "b": 8, "c": 9}]
    rows, columns = extractor.request({"rows": odd})
    assert rows == 5
    assert [list(v) for _, v in columns] == [
        [1, None, None, None, 7],
        [None, None, None, None, 8],
        [None, None, None, None, None],
    ]


def test_rows_that_do_not_line_up_are_a_shape_error():
    extractor = _extractor()
    rows, _ = extractor.request({"rows": [{"a": 1}] * 3})
    try:
        extractor.response({"out": [1, 2]}, rows)
    except ShapeError:
        pass
    else:
        raise AssertionError("3 rows in, 2 predictions out: not a shape error")
    for doc in ({"rows": {"a": 1}}, {"other": []}, [1, 2]):
        try:
            extractor.request(doc)
        except ShapeError:
            continue
        raise AssertionError(f"{doc!r} accepted")
