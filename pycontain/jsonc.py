"""JSON through the interpreter's C accelerator alone (`_json`), for the verbs that start often.

`import json` costs about 5 ms: its Python half compiles regular expressions at import, so it
imports `re`, and `re` imports `enum`. Every `pycontain-oci create`, `start` and `delete` reads
or writes a JSON file, and runc's whole `start` takes about as long. The parsing and the writing
are done in C anyway (`_json.make_scanner`, `_json.make_encoder`, which `json` itself uses when
it can); this module calls them directly and imports nothing else.

`loads` and `dumps` give what `json.loads` and `json.dumps` (default options, compact or not)
give, and the same errors: text that does not parse is handed to `json.loads`, which imports
the rest and raises its JSONDecodeError with the line and column, so a learner sees the same
message either way. tests/unit/test_jsonc.py holds the two to each other.

See also: the json module's source (json/decoder.py, json/encoder.py), RFC 8259.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: JSON's insignificant whitespace (RFC 8259, section 2)
WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:  # any object with these names will do (the stub wants a JSONDecoder)
    """What `_json.make_scanner` reads of a JSONDecoder: json.loads's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = _scan(text, start)
    except (StopIteration, ValueError, SystemError):  # SystemError: the scanner's error path
        value, end = None, -1  # imports json.decoder for its exception, and 3.11 stumbles
    if end < 0 or text[end:].strip(WHITESPACE):
        import json  # not JSON: json says where, and raises its JSONDecodeError

        return json.loads(text)
    return value


def _unencodable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(value: Any, *, compact: bool = False) -> str:
    """`json.dumps(value)`, or with `compact` its separators=(",", ":")."""
    # a new encoder each time, as json's: its `markers` (circular references) start empty
    separators = (":", ",") if compact else (": ", ", ")
    encode = _json.make_encoder({}, _unencodable, _json.encode_basestring_ascii, None,
                                *separators, False, False, True)
    return "".join(encode(value, 0))
