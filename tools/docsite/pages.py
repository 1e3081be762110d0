"One processed notebook as one HTML page: nbconvert's cells, Pandoc's anchors, links that work offline."
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .markdown import notebook_for_page
from .project import SiteInfo, notebook_number, page_name


def pandoc_id(text: str) -> str:
    "The identifier Pandoc gives a heading with this text."
    s = re.sub(r"[^\w\s.-]", "", text.strip().lower())
    s = re.sub(r"\s+", "-", s)
    first_letter = re.search(r"[^\W\d_]", s)  # any alphabet's letter
    return s[first_letter.start():] if first_letter else "section"


_re_heading = re.compile(r'<h([1-6]) id="[^"]*">(.*?)(<a class="anchor-link" href="#[^"]*">(.*?)</a>)?</h\1>',
                         re.DOTALL)


def pandoc_heading_ids(body: str) -> str:
    "Give the headings of nbconvert's HTML Pandoc's identifiers (and matching anchor links)."
    seen: dict[str, int] = {}

    def fix(m: re.Match) -> str:
        level, inner, anchor, anchor_text = m.groups()
        ident = pandoc_id(html.unescape(re.sub(r"<[^>]+>", "", inner)))
        repeats = seen.get(ident, 0)
        seen[ident] = repeats + 1
        if repeats:
            ident = f"{ident}-{repeats}"
        link = f'<a class="anchor-link" href="#{ident}">{anchor_text}</a>' if anchor else ""
        return f'<h{level} id="{ident}">{inner}{link}</h{level}>'

    return _re_heading.sub(fix, body)


re_url_attr = re.compile(r'\b(href|src)="([^"]*)"')
_re_tag = re.compile(r"<[a-zA-Z][^<>]*>")  # a real tag: in shown code and text outputs `<` is `&lt;`


def local_target(url: str) -> tuple[str, str] | None:
    "`(path, fragment)` of a relative link to a file (`a/b.png#x`), or `None` for anything else."
    if not url or url.startswith(("#", "/", "data:", "mailto:", "javascript:")) or urlsplit(url).scheme:
        return None
    path, _, frag = url.partition("#")
    path = unquote(path.split("?")[0])
    return (path, frag) if path else None


def _site_url(url: str, pages: dict[str, str], doc_url: str, files: set[str]) -> str:
    "One link of a page as the local site needs it; relative links to files are added to `files`."
    if doc_url and (url == doc_url or url.startswith(doc_url + "/")):
        url = url[len(doc_url):].lstrip("/") or "index.html"
        if url.startswith("#"):
            url = "index.html" + url
    target = local_target(url)
    if target is None:
        return url
    path, frag = target
    if path.endswith(".ipynb"):
        name = Path(path).name
        return pages.get(name, page_name(name)) + (f"#{frag}" if frag else "")
    if not path.endswith(".html"):
        files.add(path)
    return url


def rewrite_links(body: str, pages: dict[str, str], doc_url: str) -> tuple[str, set[str]]:
    "Links to the published site made relative, `.ipynb` links to pages; returns the HTML and its files."
    files: set[str] = set()

    def fix_attr(m: re.Match) -> str:
        url = _site_url(html.unescape(m.group(2)), pages, doc_url, files)
        return f'{m.group(1)}="{html.escape(url, quote=True)}"'

    def fix_tag(tag: re.Match) -> str:
        return re_url_attr.sub(fix_attr, tag.group(0))

    return _re_tag.sub(fix_tag, body), files


@lru_cache(maxsize=1)
def page_css() -> str:
    "The style sheet of every page: `page.css` and Pygments' colours for code."
    from pygments.formatters import HtmlFormatter
    own = Path(__file__).with_name("page.css").read_text(encoding="utf-8")
    return own + "\n" + HtmlFormatter(style="default").get_style_defs(".highlight")


@lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)


@dataclass
class Page:
    "One page of the site."
    notebook: str  # the notebook it comes from, e.g. `01_mel.ipynb`
    name: str  # the file it becomes, e.g. `mel.html`
    title: str
    description: str = ""
    body: str = ""  # the HTML of the cells
    files: set[str] = field(default_factory=set)  # files the page refers to, relative to the notebooks


def page_from_notebook(path: Path, pages: dict[str, str], doc_url: str) -> Page:
    "Render one processed notebook: front matter, cells through nbconvert, Pandoc anchors, rewritten links."
    import nbformat
    front, nb = notebook_for_page(nbformat.read(path, as_version=4))
    body, _ = _exporter().from_notebook_node(nb)
    body, files = rewrite_links(pandoc_heading_ids(body), pages, doc_url)
    name = pages.get(path.name) or front.get("output-file") or page_name(path.name)
    title = str(front.get("title") or path.stem)
    return Page(path.name, name, title, str(front.get("description") or ""), body, files)


def _esc(s: str) -> str:
    return html.escape(s, quote=True)


def _sidebar_label(page: Page) -> str:
    if page.name == "index.html":
        return "Overview"
    number = notebook_number(page.notebook)
    prefix = f'<span class="num">{number}</span>' if number is not None else ""
    return prefix + _esc(page.title)


def _sidebar(page: Page, pages: list[Page]) -> str:
    items = []
    for p in pages:
        current = ' class="current"' if p is page else ""
        items.append(f'<li><a href="{p.name}"{current}>{_sidebar_label(p)}</a></li>')
    return "\n".join(items)


def _pager(page: Page, pages: list[Page]) -> str:
    "Links to the previous and the next page."
    i = pages.index(page)
    links = ["<span></span>", "<span></span>"]
    if i > 0:
        links[0] = f'<a href="{pages[i - 1].name}">&larr; {_esc(pages[i - 1].title)}</a>'
    if i + 1 < len(pages):
        links[1] = f'<a href="{pages[i + 1].name}">{_esc(pages[i + 1].title)} &rarr;</a>'
    return "".join(links)


def render_page(page: Page, pages: list[Page], info: SiteInfo) -> str:
    "The complete HTML document of `page`, with the sidebar listing `pages` and links to its neighbours."
    title = page.title if page.name == "index.html" else f"{page.title} – {info.title}"
    repo = f'<a class="repo" href="{_esc(info.repo_url)}">Source on GitHub</a>' if info.repo_url else ""
    description = f'<p class="description">{_esc(page.description)}</p>' if page.description else ""
    brand = f'<a class="brand" href="index.html">{_esc(info.title)}</a>'
    tagline = f'<span class="tagline">{_esc(info.description)}</span>'
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<meta name="description" content="{_esc(page.description)}">
<link rel="icon" href="data:,">
<style>{page_css()}</style>
</head>
<body>
<header class="topbar">{brand}{tagline}{repo}</header>
<div class="layout">
<nav class="sidebar" aria-label="Pages"><ol>
{_sidebar(page, pages)}
</ol></nav>
<main>
<h1 class="title">{_esc(page.title)}</h1>
{description}
{page.body}
<nav class="pager">{_pager(page, pages)}</nav>
</main>
</div>
</body>
</html>
"""
