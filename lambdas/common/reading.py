"""One reading of every stored byte: how each reader of the raw zone turns an object's bytes into JSON.

Three readers read the raw zone: Athena (the raw table and the Athena compaction engine), the ETL Lambda and
the local path (DuckDB). Where bytes can be read two ways, each case has one rule, and it is Athena's, because
Athena's reading cannot be changed (Trino's source: the text line reader, `json_parse`, Java's UTF-8 codec):

| stored bytes | Telegram sends it? | the ingest | every reader |
|---|---|---|---|
| a UTF-8 byte order mark at the start of an object | never | 400 | drops it, as Hadoop's line reader does |
| bytes that are not UTF-8 | never | 400 | each bad sequence reads as U+FFFD, as Java's decoder reads it |
| a line break (`\\n`, `\\r`) in an update | never (compact JSON) | 400 | splits the line, as Hadoop's line reader does: an object holding one is rejected |
| an escaped lone surrogate (`"\\ud800"`), in a value or a key | yes | stored | `?`, as Java's UTF-8 encoder writes it |
| a number beyond a double (`1e400`) | never | 400 | the string `"Infinity"` (`"-Infinity"`), as Trino re-serializes it |
| `NaN`, `Infinity` (JavaScript, not JSON) | never | 400 | not JSON: the object is rejected |
| a message `date`/`edit_date` outside 0 .. UNIX_SECONDS_MAX | never | 400 | null, so no query fails on it |

Earlier versions of the ingest stored what it now refuses, so the readers' rules matter for old objects too.
Free of AWS and of pyarrow: the ingest, the ETL and the local SQL all import it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

BOM = b"\xef\xbb\xbf"
# The last second every reader keeps in `date` and `edit_date`: 9999-12-31T23:59:59Z. Athena's `from_unixtime`
# fails the whole query past about 2.25e12 seconds (DuckDB's past 9.2e12), so a later one must never reach a query.
UNIX_SECONDS_MAX = 253_402_300_799
# What Java's UTF-8 encoder writes for a UTF-16 surrogate that is not half of a pair.
LONE_SURROGATE_AS = "?"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A JSON escape of a UTF-16 surrogate: only a text with one can decode to a lone surrogate.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def athena_text(text: str) -> str:
    """`text` as Athena writes it: each lone surrogate becomes `?`, a pair of surrogates its one character.

    One UTF-16 unit for one, so entity offsets (in UTF-16 units) still point where they did."""
    if text.isascii():  # O(1): the common path costs nothing
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        paired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
        return _LONE_SURROGATE.sub(LONE_SURROGATE_AS, paired)
    return text


def decoded(body: bytes) -> str:
    """An object's bytes as text, as Athena reads them: without a leading byte order mark, and each sequence that
    is not UTF-8 as U+FFFD (Python's decoder and Java's replace the same maximal subparts)."""
    return body.removeprefix(BOM).decode("utf-8", "replace")


def refuse_json_constant(name: str) -> Any:
    """`json.loads`' parse_constant: NaN and Infinity are JavaScript, not JSON, and Trino's parser refuses them."""
    raise ValueError(f"{name} is not JSON")


def trino_double(token: str) -> float | str:
    """A JSON number with a fraction or an exponent as Trino keeps it: a double, or, past a double's range, the
    string `"Infinity"`/`"-Infinity"` that Trino re-serializes it as."""
    value = float(token)
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _athena_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object as Trino's `json_parse` keeps it: keys as Athena writes them, the last of two equal keys winning."""
    return {athena_text(key): value for key, value in pairs}


def load_json(text: str) -> Any:
    """JSON text as Athena reads it (see the module's table); ValueError or RecursionError when it is not JSON.

    Keys are repaired only when the text escapes a surrogate, so the common path costs nothing more than
    `json.loads`; string values are left to the reader that stores them (`athena_text`)."""
    hook: Callable[[list[tuple[str, Any]]], dict[str, Any]] | None = (
        _athena_keys if _ESCAPED_SURROGATE.search(text) else None
    )
    return json.loads(text, parse_constant=refuse_json_constant, parse_float=trino_double, object_pairs_hook=hook)


def unix_seconds(value: Any) -> int | None:
    """A `date` or `edit_date` as every reader keeps it: an integer within 0 .. UNIX_SECONDS_MAX, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= UNIX_SECONDS_MAX:
        return value
    return None
