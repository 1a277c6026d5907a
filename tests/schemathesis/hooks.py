"""Schemathesis hooks for the conformance test (tests/tests/conformance.rs).

Loaded with SCHEMATHESIS_HOOKS=hooks and this directory on PYTHONPATH.

A real client sends a fresh Idempotency-Key for each intent. Hypothesis
happily reuses tiny keys such as "0" for different bodies, which the server
rightly refuses (422 idempotency_key_reused), and Schemathesis would report
that as valid data rejected. So a generated key that is valid (1 to 255
characters, each 0x20..0x7E, as the server's document says also not
starting or ending with a space, which HTTP would strip) is replaced with a
fresh UUID; an invalid one is left as generated, since it is a negative
test.

`map_headers` covers the phases that generate headers with Hypothesis
(fuzzing, stateful); `map_case` covers those that build whole cases
without the per-part hooks (examples, coverage).

Also: `ast.parse` is serialized. Hypothesis parses source to describe
lambdas, and two st workers (threads) doing so at once trip a CPython 3.11
bug (the AST builder's recursion counter is shared: "SystemError: AST
constructor recursion depth mismatch", python/cpython#106905), which st
reports as a Runtime Error of the operation under test.
"""

import ast
import atexit
import sys
import threading
import uuid
from collections.abc import MutableMapping

import schemathesis

_ast_parse = ast.parse
_ast_lock = threading.Lock()


def _serialized_ast_parse(*args, **kwargs):
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _serialized_ast_parse

HEADER = "idempotency-key"
_counts = {"replaced": 0, "kept": 0}


def _valid(value):
    # The document's schema: 1..255 characters, pattern ^[!-~]([ -~]*[!-~])?$
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 255
        and all(0x20 <= ord(c) <= 0x7E for c in value)
        and value[0] != " "
        and value[-1] != " "
    )


def _fresh_keys(headers):
    # A dict, or a case's CaseInsensitiveDict: changed in place.
    if not isinstance(headers, MutableMapping):
        return headers
    for name, value in list(headers.items()):
        if isinstance(name, str) and name.lower() == HEADER:
            if _valid(value):
                headers[name] = str(uuid.uuid4())
                _counts["replaced"] += 1
            else:
                _counts["kept"] += 1
    return headers


@schemathesis.hook
def map_headers(ctx, headers):
    # A copy: the generated value may still be referenced by Schemathesis.
    return _fresh_keys(dict(headers) if isinstance(headers, dict) else headers)


@schemathesis.hook
def map_case(ctx, case):
    _fresh_keys(case.headers)
    return case


def _summary():
    print(
        "flexibank hooks: Idempotency-Key replaced with a fresh UUID {replaced} times, "
        "{kept} invalid keys kept as generated".format(**_counts),
        file=sys.stderr,
    )


print("flexibank hooks: loaded (fresh Idempotency-Key per valid generated key)", file=sys.stderr)
atexit.register(_summary)
