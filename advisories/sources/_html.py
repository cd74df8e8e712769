"""The HTML-to-text walk the parsers share (pure).

It was tuned on the US feed's descriptions and serves the UK and Canada
advisory HTML too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from bs4 import BeautifulSoup, CData, NavigableString, Tag
from bs4.element import PreformattedString

from advisories.text import collapse

__all__ = ["BLOCK_TAGS", "INVISIBLE_TAGS", "STATEMENT_TAGS", "html_tree", "plain_text"]

#: Tags after which text belongs to a new line of thought; inline tags (b, a,
#: span) are joined without a space so "<b>Saudi Arabia</b>." stays one word.
BLOCK_TAGS: Final = frozenset({
    "p", "li", "ul", "ol", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "tr", "td", "th", "dd", "dt", "blockquote",
})  # fmt: skip
#: Blocks whose own text can state something on its own (an area's level).
STATEMENT_TAGS: Final = frozenset({"p", "li", "div", "td", "h1", "h2", "h3", "h4", "h5", "h6"})
#: Elements whose content is never text a reader sees.
INVISIBLE_TAGS: Final = frozenset({"script", "style", "template", "head"})


@contextmanager
def html_tree(markup: str) -> Iterator[BeautifulSoup]:
    """``markup`` parsed (BeautifulSoup on lxml), its tree taken apart when the block ends.

    A BeautifulSoup tree is a web of reference cycles (parent, sibling and next-element
    links) that only the cyclic garbage collector frees, and parsing a page allocates
    enough objects to move the tree into an older generation, collected rarely: without
    this, the trees of finished documents piled up in the worker (about 7 MB of Python
    objects after a run of German pages). Taking it apart (under a millisecond for a
    German page, whose parse takes about 50) frees it at once.
    """
    soup = BeautifulSoup(markup, "lxml")
    try:
        yield soup
    finally:
        # The root's own decompose stops at itself (it has no next element): each
        # top-level subtree is taken apart first.
        while soup.contents:
            soup.contents[0].decompose()
        soup.decompose()


def plain_text(node: Tag, blocks: list[str]) -> str:
    """The plain text of ``node``, with a space around every block element.

    One walk over the tree (BeautifulSoup's ``find_all`` and ``get_text`` per
    block made the whole US feed three times slower). Inline elements are
    joined as they are, so "<b>Saudi Arabia</b>." stays "Saudi Arabia.".
    The result is not collapsed: pass it to :func:`advisories.text.collapse`.

    Args:
        node: Where to start.
        blocks: Receives the collapsed text of every statement block
            (``p``, ``li``, headings ...), inner blocks before outer ones.
    """
    parts: list[str] = []
    for child in node.children:
        if isinstance(child, Tag):
            if child.name in INVISIBLE_TAGS:
                continue
            inner = plain_text(child, blocks)
            if child.name in BLOCK_TAGS:
                parts.extend((" ", inner, " "))
                if child.name in STATEMENT_TAGS:
                    blocks.append(collapse(inner))
            else:
                parts.append(inner)
        elif isinstance(child, NavigableString) and (
            not isinstance(child, PreformattedString) or isinstance(child, CData)
        ):
            # Comments, doctypes and processing instructions are not text.
            parts.append(child)
    return "".join(parts)
