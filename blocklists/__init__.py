"""linkwarn's lists: URL canonicalization, list formats, the store and the index.

This package knows nothing of mitmproxy; the proxy, the CLI and the local API
are thin shells around it.
"""

from .canonical import (
    Canonical,
    canonicalize,
    canonicalize_traced,
    expressions,
    expressions_of,
    registrable_domain,
)
from .checker import Checker
from .entry import Action, Entry, expression_for, key_of
from .errors import InvalidURL, LinkwarnError, ListError, StoreError
from .index import PrefixIndex
from .lists import Defaults, ListFormat, ParsedList, Problem, parse_list, read_list
from .matching import Match, Verdict, decide
from .store import Store, default_data_dir

__all__ = [
    "Action",
    "Canonical",
    "Checker",
    "Defaults",
    "Entry",
    "InvalidURL",
    "LinkwarnError",
    "ListError",
    "ListFormat",
    "Match",
    "ParsedList",
    "PrefixIndex",
    "Problem",
    "Store",
    "StoreError",
    "Verdict",
    "canonicalize",
    "canonicalize_traced",
    "decide",
    "default_data_dir",
    "expression_for",
    "expressions",
    "expressions_of",
    "key_of",
    "parse_list",
    "read_list",
    "registrable_domain",
]
