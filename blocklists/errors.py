"""The exceptions linkwarn raises where callers act differently.

    LinkwarnError
     ├── InvalidURL      a URL with no usable host (also a ValueError)
     ├── ListError       a list file that cannot be read at all (also a ValueError)
     └── StoreError      the store cannot be opened, or was written by a newer linkwarn

A bad line inside a readable list is not an exception: it is a `Problem`
reported with its file and line, and the rest of the list loads.
"""

from __future__ import annotations


class LinkwarnError(Exception):
    """Root of linkwarn's exceptions."""


class InvalidURL(LinkwarnError, ValueError):
    """The input has no usable host, or a scheme that has none."""


class ListError(LinkwarnError, ValueError):
    """A list file cannot be read at all (missing, unreadable, not text, not JSON)."""


class StoreError(LinkwarnError):
    """The store cannot be opened or used."""
