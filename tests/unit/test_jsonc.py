"""pycontain.jsonc against json: the same values, the same text, the same errors, fewer imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pycontain import jsonc, launcher

VALUES = [
    {}, [], "", 0, -1.5, 1e300, True, None, "é\n\t\"\\/\u2028", "\U0001f600",
    {"ociVersion": "1.0.2", "process": {"args": ["sh", "-c", "echo $HOME"], "env": [],
                                        "user": {"uid": 0, "gid": 0}},
     "linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": None}],
               "resources": {"memory": {"limit": 33554432}, "cpu": {"quota": -1}}}},
    [[[[]]], {"a": {"b": {"c": [1, 2, 3]}}}], {"inf": float("inf"), "nan?": [float("-inf")]},
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_writes_what_json_writes(value):
    assert jsonc.dumps(value) == json.dumps(value)
    assert jsonc.dumps(value, compact=True) == json.dumps(value, separators=(",", ":"))


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("indent", [None, 1, 4])
def test_loads_reads_what_json_reads(value, indent):
    text = json.dumps(value, indent=indent)
    for framed in (text, f" \n\t{text}\r\n ", text.encode()):
        assert repr(jsonc.loads(framed)) == repr(json.loads(framed))


@pytest.mark.parametrize("text", ["", "   ", "{", "[1] x", '{"a": }', "[1,]", "NaN x",
                                  '{"a": 1} {"b": 2}', "\"\x01\""])
def test_text_that_is_not_json_raises_jsons_own_error_with_line_and_column(text):
    with pytest.raises(json.JSONDecodeError) as ours:
        jsonc.loads(text)
    with pytest.raises(json.JSONDecodeError) as theirs:
        json.loads(text)
    assert (ours.value.msg, ours.value.lineno, ours.value.colno) == (
        theirs.value.msg, theirs.value.lineno, theirs.value.colno)


def test_what_json_cannot_write_is_refused_the_same_way():
    for value in (object(), {1j: 2}, {"a": {1, 2}}):
        with pytest.raises(TypeError):
            json.dumps(value)
        with pytest.raises(TypeError):
            jsonc.dumps(value)
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        jsonc.dumps(loop)
    assert jsonc.dumps([1]) == "[1]"  # and the next call starts afresh


def test_reading_and_writing_import_neither_json_nor_re():
    # and in such a lean interpreter, text that does not parse still gets json's own error
    # (Python 3.11's C scanner fails with a SystemError while it imports json for it)
    program = ("import sys; from pycontain import jsonc; "
               "jsonc.dumps(jsonc.loads('{\"a\": [1, 2.5, null]}')); "
               "print(sorted(m for m in ('json', 're', 'enum') if m in sys.modules)); "
               "jsonc.loads('{')")
    done = subprocess.run([sys.executable, "-I", "-S", "-c",
                           f"import sys; sys.path[:0] = {launcher.search_path()!r}; {program}"],
                          capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(jsonc.__file__)))
    assert (done.returncode, done.stdout.strip()) == (1, "[]"), done.stderr
    assert done.stderr.splitlines()[-1] == ("json.decoder.JSONDecodeError: Expecting property "
                                            "name enclosed in double quotes: line 1 column 2 "
                                            "(char 1)"), done.stderr
