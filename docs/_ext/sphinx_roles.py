"""Griffe extension: turn Sphinx roles in docstrings into mkdocstrings cross-references.

The docstrings follow anyio's Sphinx style (``:param:``, ``:raises:``) and name other
objects with roles such as ``:meth:`rewind``` or ``:class:`~hybridbuffer_async.IntegrityError```.
mkdocstrings renders Markdown, where a role would show up verbatim; this rewrites each one
into an autorefs link when the name resolves to an object of this package, and into plain
code otherwise (standard-library names, attributes of private classes).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["SphinxRoles"]

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|obj|mod):`(~?)([\w.]+)(\(\))?`")
_PACKAGE = "hybridbuffer_async"


def _target(obj: griffe.Object, name: str) -> str | None:
    """The full path *name* refers to from *obj*'s docstring, if it is one of ours."""
    if name.startswith(_PACKAGE + "."):
        return name
    scope: griffe.Object | None = obj if obj.is_class or obj.is_module else obj.parent
    head, _, rest = name.partition(".")
    while scope is not None:
        member = scope.members.get(head)
        if member is not None:
            # An imported name stands for its target (``tempfile`` is the stdlib's).
            path = member.target_path if member.is_alias else member.path
            return f"{path}.{rest}" if rest else path
        scope = scope.parent
    return None


class SphinxRoles(griffe.Extension):
    """Rewrite ``:role:`name``` in every docstring before it is parsed."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        docstring = obj.docstring
        if docstring is None or ":" not in docstring.value:
            return

        def replace(match: re.Match[str]) -> str:
            short, name, call = match.group(1), match.group(2), match.group(3) or ""
            shown = (name.rsplit(".", 1)[-1] if short else name) + call
            target = _target(obj, name)
            if target is None or not target.startswith(_PACKAGE):
                return f"`{shown}`"
            return f"[`{shown}`][{target}]"

        docstring.value = _ROLE.sub(replace, docstring.value)
