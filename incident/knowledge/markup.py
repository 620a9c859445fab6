"""The archive's Markdown as a small tree of elements, for the knowledge bases' own formats.

Why through Python-Markdown's HTML and not a Markdown parser of our own: the records and reviews are
already turned into HTML this way for their HTML and PDF forms, so a page says in Confluence and Notion
what it says in the product. Customer text in that Markdown is already made literal (HTML specials as
entities, Markdown specials backslash-escaped: ``incident.records.documents.render``), so the HTML holds
no markup of a customer's; the parser below turns entities back into text, and each target escapes text
its own way when it writes its format (XML for Confluence, JSON strings for Notion).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

import markdown

VOID = frozenset({"br", "hr", "img"})


@dataclass
class Element:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Element | str] = field(default_factory=list)

    def text(self) -> str:
        """The text inside, markup dropped."""
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # &lt;script&gt; becomes the text "<script>"
        self.root = Element("root")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):  # close up to the matching element
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def tree(text: str) -> Element:
    """Markdown (tables, lists, headings, emphasis, images) → the root element of its HTML."""
    html = markdown.markdown(text, extensions=["tables", "sane_lists"], output_format="html")
    builder = _Builder()
    builder.feed(html)
    builder.close()
    return builder.root
