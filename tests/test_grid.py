import pytest

from replay.grid import GridError, parse_values


@pytest.mark.parametrize(
    "text, kwargs, expected",
    [
        ("3..10", {"integer": True}, [3, 4, 5, 6, 7, 8, 9, 10]),
        ("3..10:2", {"integer": True}, [3, 5, 7, 9]),
        ("1,2,5..8", {"integer": True}, [1, 2, 5, 6, 7, 8]),
        ("5", {"integer": True}, [5]),
        (" 2 , 1 ", {"integer": True}, [2, 1]),
        ("1,1,1..2", {"integer": True}, [1, 2]),
        ("0,0.001,0.01", {}, [0.0, 0.001, 0.01]),
        # decimal-exact steps: no 0.30000000000000004
        ("0..0.3:0.1", {}, [0.0, 0.1, 0.2, 0.3]),
        ("0.1..0.5:0.2", {}, [0.1, 0.3, 0.5]),
        ("1e-4,1e-3", {}, [0.0001, 0.001]),
        ("none,0.5", {"allow_none": True}, [None, 0.5]),
        ("-1..1", {"integer": True}, [-1, 0, 1]),
    ],
)
def test_parse_values(text, kwargs, expected):
    assert parse_values(text, "--x", **kwargs) == expected


@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("10..3", {"integer": True}, "--x: range '10..3' runs backwards; write 3..10."),
        ("3..x", {"integer": True}, "--x: 'x' in '3..x' is not a number."),
        ("1..5:0", {"integer": True}, "--x: step in '1..5:0' must be positive."),
        ("1..5:-1", {"integer": True}, "--x: step in '1..5:-1' must be positive."),
        ("-1", {"integer": True, "minimum": 0}, "--x: -1 is below the minimum 0 (in '-1')."),
        ("2.5", {"integer": True}, "--x: '2.5' in '2.5' must be a whole number."),
        ("1,,2", {}, "--x: empty item in '1,,2'."),
        ("", {}, "--x: empty value"),
        ("..3", {}, "--x: range '..3' needs a start and a stop"),
        ("nan", {}, "--x: 'nan' in 'nan' must be finite."),
        ("none", {}, "--x: 'none' in 'none' is not a number."),
        ("__import__('os')", {}, "is not a number"),
        ("0..1e9", {"integer": True}, "has 1,000,000,001 values"),
    ],
)
def test_parse_values_errors_name_the_token(text, kwargs, message):
    with pytest.raises(GridError) as info:
        parse_values(text, "--x", **kwargs)
    assert message in str(info.value)


def test_a_million_value_range_parses_in_well_under_a_second():
    # Issue 10: de-duplicating with `item not in list` made this quadratic (hours).
    import time

    start = time.perf_counter()
    values = parse_values("1..1000000,5,1000000", "--patience", integer=True, minimum=0)
    assert time.perf_counter() - start < 1.0
    assert len(values) == 1_000_000 and values[:3] == [1, 2, 3] and values[-1] == 1_000_000
