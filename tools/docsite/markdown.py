"From a notebook processed for Quarto to an ordinary one: Pandoc's Markdown extensions, the cell options."
from __future__ import annotations

import html
import re

_re_attr_link = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}")
_re_div_open = re.compile(r"^:::+\s*(?:\{([^}]*)\}|([\w.-]+))\s*$")
_re_div_close = re.compile(r"^:::+\s*$")
_re_attr_token = re.compile(r"""([.#])([\w-]+)|([\w-]+)=("[^"]*"|'[^']*'|\S+)""")
# Code (fenced blocks, inline spans) is matched first and kept: Markdown *about* the extensions stays text.
_re_code = r"(?P<code>(?m:^(?P<fence>```+|~~~+)(?s:.*?)^(?P=fence)[ \t]*$)|(?P<ticks>`+)[^\n]*?(?P=ticks))"
_re_code_or_attr_link = re.compile(_re_code + "|" + _re_attr_link.pattern)
_re_fence = re.compile(r"^\s*(```+|~~~+)")
_re_option = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")


def html_attrs(spec: str) -> str:
    "Pandoc attributes (`.class #id key=value`) as HTML attributes."
    classes = []
    attrs = []
    for dot, name, key, value in _re_attr_token.findall(spec):
        if dot == ".":
            classes.append(name)
        elif dot == "#":
            attrs.append(f'id="{html.escape(name)}"')
        elif key:
            attrs.append(f'{key}="{html.escape(value.strip(chr(34) + chr(39)))}"')
    if classes:
        attrs.insert(0, f'class="{" ".join(classes)}"')
    return " ".join(attrs)


def _tag(name: str, attrs: str, rest: str = "") -> str:
    "An opening HTML tag, without a trailing space when there are no attributes."
    return f"<{name}{' ' + attrs if attrs else ''}{rest}>"


def _attr_link(m: re.Match, to_html: bool) -> str:
    if m.group("code"):
        return m.group(0)
    bang, label, url, spec = m.groups()[-4:]
    if not to_html:
        return f"{bang}[{label}]({url})"
    if bang:
        return _tag("img", f'src="{html.escape(url)}" alt="{html.escape(label)}" {html_attrs(spec)}'.rstrip())
    return _tag("a", f'href="{html.escape(url)}" {html_attrs(spec)}'.rstrip()) + f"{label}</a>"


def quarto_markdown(text: str, to_html: bool = True) -> str:
    "Markdown with Pandoc link attributes and fenced divs, as HTML-in-Markdown (`to_html`) or plain Markdown."
    text = _re_code_or_attr_link.sub(lambda m: _attr_link(m, to_html), text)
    lines = []
    fence = None
    for line in text.split("\n"):
        f = _re_fence.match(line)
        div_open = _re_div_open.match(line)
        if fence or f:  # inside a fenced code block (or its first line): untouched
            if f and not fence:
                fence = f.group(1)
            elif f and f.group(1).startswith(fence) and line.strip() == f.group(1):
                fence = None
            lines.append(line)
        elif div_open:
            spec = div_open.group(1) if div_open.group(1) is not None else "." + div_open.group(2).lstrip(".")
            if to_html:
                lines += [_tag("div", html_attrs(spec)), ""]
        elif _re_div_close.match(line):
            if to_html:
                lines += ["", "</div>"]
        else:
            lines.append(line)
    return "\n".join(lines)


def cell_options(source: str) -> tuple[dict[str, str], str]:
    "The `#| key: value` lines at the top of a code cell, and the code without them."
    lines = source.split("\n")
    opts = {}
    while lines and _re_option.match(lines[0]):
        m = _re_option.match(lines.pop(0))
        opts[m.group(1)] = m.group(2).strip("'\"").lower()
    return opts, "\n".join(lines).strip("\n")


def _markdown_outputs(cell) -> str:
    "The `text/markdown` outputs of a cell, as one text (how `show_doc` signatures arrive)."
    texts = []
    for output in cell.get("outputs", []):
        markdown = output.get("data", {}).get("text/markdown")
        if markdown is not None:
            texts.append("".join(markdown) if isinstance(markdown, list) else markdown)
    return "\n\n".join(texts)


def _source(cell) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def _is_front_matter(cell) -> bool:
    return cell.cell_type == "raw" and _source(cell).strip().startswith("---")


def _page_code_cell(cell, to_html: bool):
    "A code cell as the page shows it (Quarto's options applied), a Markdown cell, or `None` for nothing."
    import nbformat
    opts, code = cell_options(_source(cell))
    if opts.get("include") == "false":
        return None
    if opts.get("output") == "asis":  # its Markdown output is page content
        return nbformat.v4.new_markdown_cell(quarto_markdown(_markdown_outputs(cell), to_html))
    if opts.get("output") == "false":
        cell.outputs = []
    cell.source = "" if opts.get("echo") == "false" else code
    if not cell.source:
        if not cell.outputs:
            return None
        cell.metadata["transient"] = {"remove_source": True}  # nbconvert then renders only the outputs
    return cell


def notebook_for_page(nb, to_html: bool = True) -> tuple[dict, object]:
    "Split off a processed notebook's front matter, apply the Quarto cell options; returns `(front, nb)`."
    import nbformat
    import yaml
    nb = nbformat.from_dict(nb)
    front = {}
    cells = []
    for cell in nb.cells:
        src = _source(cell)
        if not front and _is_front_matter(cell):
            front = yaml.safe_load(src.strip().strip("-")) or {}
        elif cell.cell_type == "markdown":
            if not src.strip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"):
                cell.source = quarto_markdown(src, to_html)
                cells.append(cell)
        elif cell.cell_type == "code":
            page_cell = _page_code_cell(cell, to_html)
            if page_cell is not None:
                cells.append(page_cell)
        else:
            cells.append(cell)
    nb.cells = cells
    return front, nb
