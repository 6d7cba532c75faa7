"""Per-class options as a user gives them: number, text, list, mapping, JSON file."""
import json

import pytest

from mmseg_ext.utils.errors import DataError, InvalidArgumentError
from mmseg_ext.utils.per_class import per_class_option

C = ('a', 'b')


def test_every_accepted_form():
    assert per_class_option(None, C, 'thresholds') == {}
    assert per_class_option(0.3, C, 'thresholds', float, 0, 1) == {'a': 0.3, 'b': 0.3}
    assert per_class_option('0.4', C, 'thresholds', float, 0, 1) == {'a': 0.4, 'b': 0.4}
    assert per_class_option([0.1, 0.2], C, 'thresholds', float, 0, 1) == {'a': 0.1, 'b': 0.2}
    assert per_class_option({'a': 0.7}, C, 'thresholds', float, 0, 1) == {'a': 0.7}
    assert per_class_option('3', C, 'min_area', int, 0) == {'a': 3, 'b': 3}


def test_a_json_file(tmp_path):
    path = tmp_path / 'thr.json'
    path.write_text(json.dumps({'b': 0.25}))
    assert per_class_option(str(path), C, 'thresholds', float, 0, 1) == {'b': 0.25}
    path.write_text(json.dumps({'b': 2}))
    with pytest.raises(DataError, match=f"{path}: threshold of 'b' is 2, outside"):
        per_class_option(str(path), C, 'thresholds', float, 0, 1)
    with pytest.raises(DataError, match='nope.json: threshold file not found'):
        per_class_option(str(tmp_path / 'nope.json'), C, 'thresholds', float, 0, 1)


@pytest.mark.parametrize('spec, argument, cast, message', [
    (True, 'thresholds', float, 'thresholds: True is not a number'),
    (1.5, 'thresholds', float, r'thresholds: 1.5 is outside \[0, 1\]'),
    ({'a': 1.5}, 'thresholds', float, "thresholds: threshold of 'a' is 1.5, outside"),
    ({'z': 0.1}, 'thresholds', float, r"thresholds: unknown class name\(s\) \['z'\]"),
    ([0.1], 'thresholds', float, 'thresholds: 1 values, but there are 2 classes'),
    (2.7, 'min_area', int, 'min_area: 2.7 is not a whole number'),
    ('inf', 'min_area', int, 'min_area: inf is not a finite number'),
    ('nan', 'thresholds', float, 'thresholds: nan is not a finite number'),
    ({'a': float('nan')}, 'thresholds', float, "threshold of 'a' is nan, not a finite number"),
    ({'a': 2.5}, 'min_area', int, "min_area: min-area of 'a' is 2.5, not a whole number"),
])
def test_bad_values_name_the_argument(spec, argument, cast, message):
    hi = 1 if cast is float else 1e9
    with pytest.raises(InvalidArgumentError, match=message):
        per_class_option(spec, C, argument, cast, 0, hi)
