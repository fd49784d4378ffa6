"""A named table of building blocks, filled by one visible call beside each implementation.

The objectives, heads, fusions and tower sources each keep one ``Registry``; a new kind is
added with that layer's ``register_*`` function (as PEFT's ``register_peft_method``), never as
a side effect of importing some other module. Lookups of an unknown name fail listing what
is registered.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

from polymodal.errors import PolymodalError

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class Registry(Generic[T]):
    def __init__(self, what: str, error: type[PolymodalError] = PolymodalError) -> None:
        self.what = what
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, replace: bool = False) -> T:
        """Add ``item`` under ``name``; a second, different item under a taken name is refused."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise self.error(f"{self.what} name {name!r}: use lower-case letters, digits, '-', '_' or '.'")
        known = self._items.get(name)
        if known is not None and known is not item and not replace:
            raise self.error(f"{self.what} {name!r} is already registered ({known!r}); pass replace=True to swap it")
        self._items[name] = item
        return item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.error(f"unknown {self.what} {name!r} (registered: {', '.join(self.names())})") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def unregister(self, name: str) -> None:
        """Remove ``name`` (tests that register a toy kind clean up with this)."""
        self._items.pop(name, None)
