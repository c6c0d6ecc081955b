"""Named registries for pluggable things (resource kinds, compute backends, storage schemes).

A lookup of an unknown name fails with the names that exist and a "did you mean" guess, so a typo in a
spec or a URL never ends in a bare ``KeyError``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from strato.errors import InvalidArgument

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str):
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        def decorator(item: T) -> T:
            for key in (name, *aliases):
                self._items[key.lower()] = item
            return item

        return decorator

    def add(self, name: str, item: T) -> None:
        self._items[name.lower()] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name.lower()]
        except KeyError:
            raise InvalidArgument(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._items)
        guess = difflib.get_close_matches(name.lower(), known, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        return f"unknown {self.what} {name!r}{hint} (known: {', '.join(known)})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
