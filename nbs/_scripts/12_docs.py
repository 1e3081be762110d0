# %% [markdown]
# # Documentation site
#
# > The notebooks as a static HTML site that needs no Quarto, and a headless-browser check that every page works.

# %%
#| default_exp docsite

# %%
#| hide
from nbdev.showdoc import show_doc

# %%
#| export
from __future__ import annotations
import argparse, base64, configparser, fcntl, html, json, os, re, select, shutil, signal, sys, tempfile, threading, time, warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from urllib.parse import unquote, urlsplit


# %% [markdown]
# The published documentation is built by `nbdev_docs`: nbdev *processes* every notebook (turns the `# Title` cell into front matter, adds a `show_doc` after each exported function, runs the cells that produce those signatures, hides `#| hide` cells, links every backticked name to its page) and hands the result to Quarto, which renders the website that the deployment workflow publishes to GitHub Pages.
#
# Quarto is a standalone program with no wheel on PyPI and no Debian package, so a machine that can only `pip install` cannot run `nbdev_docs`. This module renders **the same processed notebooks** with nbconvert instead, into a plain static site: one page per notebook, a sidebar in reading order, links between pages that work from a local folder, images embedded and audio files copied next to the pages. No page loads anything from the network (no CDN scripts or fonts), so the site works offline and in a sandboxed browser. It is what `hifigan-ruslan docs --out DIR` builds, and what the test at the end of this notebook opens in headless Chromium.
#
# Everything that needs the dev extras (nbdev, nbconvert) is imported inside the functions that use it, so that `hifigan-ruslan docs` can say what is missing instead of failing with an import traceback.

# %% [markdown]
# ## Where things are
#
# The site needs a few facts about the project: its title and description, the address of the published site (links that nbdev writes to it become relative links here), the repository, and where the notebooks are. They all come from `settings.ini`, found in the current folder or above it, like nbdev does.

# %%
#| export
@dataclass(frozen=True)
class SiteInfo:
    "What the site needs to know about the project, read from `settings.ini`."
    title: str
    description: str
    doc_url: str   # the published site: `doc_host` + `doc_baseurl`
    repo_url: str
    root: Path     # the folder of settings.ini
    nbs_path: Path

    @classmethod
    def from_settings(cls, start: Path | str = ".") -> SiteInfo:
        "Read the `settings.ini` in `start` or the nearest folder above it."
        start = Path(start).resolve()
        ini = next((d / "settings.ini" for d in [start, *start.parents] if (d / "settings.ini").is_file()), None)
        if ini is None:
            raise FileNotFoundError(f"no settings.ini in {start} or above it: run this from a checkout of the repository")
        cfg = configparser.ConfigParser(delimiters=["="], interpolation=None)
        cfg.read(ini, encoding="utf-8")
        d = cfg["DEFAULT"]
        return cls(title=d.get("title", d.get("lib_name", "docs")), description=d.get("description", ""),
                   doc_url=(d.get("doc_host", "") + d.get("doc_baseurl", "")).rstrip("/"),
                   repo_url=d.get("git_url", ""), root=ini.parent, nbs_path=ini.parent / d.get("nbs_path", "nbs"))


# %%
show_doc(SiteInfo.from_settings)

# %%
info = SiteInfo.from_settings()
print(info.title, "|", info.doc_url, "|", info.nbs_path.relative_to(info.root))
assert (info.root / "settings.ini").is_file() and info.nbs_path.name == "nbs" and info.doc_url.startswith("https://")
try: SiteInfo.from_settings("/")
except FileNotFoundError as e: print(e)

# %% [markdown]
# ## Reading order
#
# The notebooks are numbered in the order a reader should meet them: configuration, mel, models, losses, then the data pipeline, training and the tools around it. The sidebar follows the numbers (numerically, so that `100_x` would come after `13_cli`), with the index first. Files whose names start with `_` or `.` are not pages, like in nbdev.

# %%
#| export
_re_number = re.compile(r"^(\d+)_")

def reading_order(names: list[str]) -> list[str]:
    "Notebook names in reading order: `index.ipynb`, then numbered notebooks by number, then the others by name."
    def key(name: str):
        m = _re_number.match(name)
        return (0 if name == "index.ipynb" else 1 if m else 2, int(m.group(1)) if m else 0, name)
    return sorted(names, key=key)

def site_notebooks(nbs_path: Path | str) -> list[str]:
    "The notebooks of the site (those directly in `nbs_path` not starting with `_` or `.`), in reading order."
    return reading_order([p.name for p in Path(nbs_path).glob("*.ipynb") if not p.name.startswith(("_", "."))])

def page_name(notebook: str) -> str:
    "The page a notebook becomes, as nbdev names it: `01_mel.ipynb` -> `mel.html` (number prefix dropped)."
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", notebook.lower()).rsplit(".", 1)[0] + ".html"


# %%
show_doc(reading_order)

# %%
show_doc(site_notebooks)

# %%
show_doc(page_name)

# %%
assert reading_order(["13_cli.ipynb", "100_z.ipynb", "b.ipynb", "02_generator.ipynb", "index.ipynb", "a.ipynb"]) == \
    ["index.ipynb", "02_generator.ipynb", "13_cli.ipynb", "100_z.ipynb", "a.ipynb", "b.ipynb"]
assert page_name("01_mel.ipynb") == "mel.html" and page_name("index.ipynb") == "index.html"
print(site_notebooks("."))
assert site_notebooks(".")[0] == "index.ipynb" and "12_docs.ipynb" in site_notebooks(".")


# %% [markdown]
# ## Processing the notebooks
#
# nbdev's `nbdev_proc_nbs` would first make sure Quarto is installed (and try to install it), so this calls the function underneath it, `nbdev.serve.proc_nbs`, which writes the processed notebooks to `_proc/` at the repository root (the folder `nbdev_docs` renders) and only reprocesses notebooks that changed.
#
# Processing runs every exported cell, and every cell that contains an import, to produce the `show_doc` output. It runs in the notebooks' folder, as `nbdev_test` does, so that relative paths such as `testdata/...` resolve. A cell that mixes imports with code depending on cells that are not run fails there, exactly as it would fail `nbdev_docs` in the deployment workflow; the error names the notebook and cell so that it can be fixed (keep imports in a cell of their own).

# %%
#| export
@contextmanager
def _working_dir(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try: yield
    finally: os.chdir(old)

def _notebook_title(path: Path) -> str:
    "The `# Title` of a notebook's first Markdown cell (what nbdev's errors call the notebook)."
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+?)\s*$", "".join(cell.get("source", "")), re.M)
            return m.group(1) if m else ""
    return ""

def _processing_error(e: Exception, nbs_path: Path) -> str:
    "One line from nbdev's processing error: which notebook and cell, and the underlying error."
    text = str(e).strip()
    where = text.splitlines()[0].rstrip(" :") if text else type(e).__name__
    if (m := re.search(r"Error in notebook: (.*?) in cell (\d+)", text)):
        names = [n for n in site_notebooks(nbs_path) if _notebook_title(nbs_path / n) == m.group(1)]
        where = f"{names[0] if names else m.group(1)}, cell {m.group(2)}"
    detail = ""
    if e.__cause__ is not None:  # the error in the cell (from a worker process: the text of its traceback)
        lines = [l for l in str(e.__cause__).splitlines() if re.match(r"^\w+(Error|Exception|Exit)(: |$)", l)
                 and not l.startswith("Exception: Error in notebook")]
        detail = lines[-1] if lines else f"{type(e.__cause__).__name__}: {e.__cause__}".splitlines()[0]
    return (f"nbdev could not process {where} for the docs" + (f": {detail}" if detail else "")
            + " (nbdev runs every cell that contains an import while rendering the docs; keep imports in their own cells)")

def process_notebooks(info: SiteInfo, n_workers: int | None = None) -> Path:
    "Process the notebooks as `nbdev_proc_nbs` does (without installing Quarto); returns the `_proc` folder."
    from nbdev.serve import proc_nbs
    n_workers = min(os.cpu_count() or 1, 4) if n_workers is None else n_workers
    old_env = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore"  # worker processes: nbdev warns about each cell mixing imports and code
    try:
        with _working_dir(info.nbs_path), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try: return Path(proc_nbs(info.nbs_path, n_workers=n_workers))
            except Exception as e: raise ValueError(_processing_error(e, info.nbs_path)) from e
    finally:
        if old_env is None: os.environ.pop("PYTHONWARNINGS", None)
        else: os.environ["PYTHONWARNINGS"] = old_env


# %%
show_doc(process_notebooks)

# %% [markdown]
# What a processing failure looks like (nbdev names the notebook by its title; the message names the file):

# %%
try: raise Exception("Error in notebook: Command line in cell 7 :\nimport x\nf(y)") from NameError("name 'y' is not defined")
except Exception as e: msg = _processing_error(e, info.nbs_path)
print(msg)
assert msg.startswith("nbdev could not process 13_cli.ipynb, cell 7 for the docs: NameError: name 'y' is not defined")

# %% [markdown]
# ## From a processed notebook to a page
#
# A processed notebook is still written for Quarto:
#
# - its first cell is raw YAML front matter (`title`, `description`, `output-file`);
# - code cells carry Quarto options as `#| key: value` lines: `echo: false` hides the code, `output: asis` means "this cell's Markdown output is part of the page" (that is how `show_doc` signatures arrive), `include: false` drops the cell, `output: false` drops the output;
# - Markdown may use Pandoc extensions: attributes after a link (`[source](url){target="_blank"}`) and fenced divs (`::: {.callout-note}` ... `:::`).
#
# `quarto_markdown` turns the Pandoc extensions into the HTML that a CommonMark renderer passes through (or, for the README, into plain Markdown), and `notebook_for_page` applies the cell options, so that nbconvert sees an ordinary notebook.

# %%
#| export
_re_attr_link = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)\)\{([^}\n]*)\}")
_re_div_open = re.compile(r"^:::+\s*(?:\{([^}]*)\}|([\w.-]+))\s*$")
_re_div_close = re.compile(r"^:::+\s*$")
_re_attr_token = re.compile(r"""([.#])([\w-]+)|([\w-]+)=("[^"]*"|'[^']*'|\S+)""")

def _html_attrs(spec: str) -> str:
    "Pandoc attributes (`.class #id key=value`) as HTML attributes."
    classes, attrs = [], []
    for dot, name, key, value in _re_attr_token.findall(spec):
        if dot == ".": classes.append(name)
        elif dot == "#": attrs.append(f'id="{html.escape(name)}"')
        elif key: attrs.append(f'{key}="{html.escape(value.strip(chr(34) + chr(39)))}"')
    return " ".join(([f'class="{" ".join(classes)}"'] if classes else []) + attrs)

# Code (fenced blocks, inline spans) is matched first and kept as it is: Markdown *about* these extensions stays text.
_re_code_or_attr_link = re.compile(r"(?P<code>(?m:^(?P<fence>```+|~~~+)(?s:.*?)^(?P=fence)[ \t]*$)|(?P<ticks>`+)[^\n]*?(?P=ticks))"
                                   r"|" + _re_attr_link.pattern)
_re_fence = re.compile(r"^\s*(```+|~~~+)")

def quarto_markdown(text: str, to_html: bool = True) -> str:
    "Markdown with Pandoc link attributes and fenced divs, as HTML-in-Markdown (`to_html`) or as plain Markdown."
    def link(m):
        if m.group("code"): return m.group(0)
        bang, label, url, spec = m.groups()[-4:]
        if not to_html: return f"{bang}[{label}]({url})"
        a = _html_attrs(spec)
        if bang: return f'<img src="{html.escape(url)}" alt="{html.escape(label)}" {a}>'.replace(" >", ">")
        return f'<a href="{html.escape(url)}" {a}>{label}</a>'.replace(" >", ">")
    lines, fence = [], None
    for line in _re_code_or_attr_link.sub(link, text).split("\n"):
        f = _re_fence.match(line)
        if fence or f:  # inside a fenced code block (or its first line): untouched
            if f and not fence: fence = f.group(1)
            elif f and f.group(1).startswith(fence) and line.strip() == f.group(1): fence = None
            lines.append(line)
        elif (m := _re_div_open.match(line)):
            spec = m.group(1) if m.group(1) is not None else "." + m.group(2).lstrip(".")
            if to_html: lines += [f"<div {_html_attrs(spec)}>".replace(" >", ">"), ""]
        elif _re_div_close.match(line):
            if to_html: lines += ["", "</div>"]
        else: lines.append(line)
    return "\n".join(lines)


# %%
show_doc(quarto_markdown)

# %%
src = '[source](https://x/y.py#L3){target="_blank" style="float:right"}\n\n::: {.callout-note}\nRead **this**.\n:::'
print(quarto_markdown(src))
assert quarto_markdown(src).startswith('<a href="https://x/y.py#L3" target="_blank" style="float:right">source</a>')
assert '<div class="callout-note">\n\nRead **this**.\n\n</div>' in quarto_markdown(src)
assert quarto_markdown(src, to_html=False) == "[source](https://x/y.py#L3)\n\nRead **this**."
assert quarto_markdown("![plot](a.png){width=50% .wide}") == '<img src="a.png" alt="plot" class="wide" width="50%">'
about = 'Write `[a](b){.c}` or\n\n```\n[a](b){.c}\n:::\n```\n\n::: {.x}\nok\n:::'  # Markdown *about* the syntax
print(quarto_markdown(about))
assert quarto_markdown(about) == 'Write `[a](b){.c}` or\n\n```\n[a](b){.c}\n:::\n```\n\n<div class="x">\n\nok\n\n</div>'

# %%
#| export
_re_option = re.compile(r"^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")

def cell_options(source: str) -> tuple[dict[str, str], str]:
    "The `#| key: value` lines at the top of a code cell, and the code without them."
    lines, opts = source.split("\n"), {}
    while lines and (m := _re_option.match(lines[0])):
        opts[m.group(1)] = m.group(2).strip("'\"").lower()
        lines.pop(0)
    return opts, "\n".join(lines).strip("\n")

def _markdown_outputs(cell) -> str:
    return "\n\n".join("".join(o["data"]["text/markdown"]) if isinstance(o["data"]["text/markdown"], list)
                       else o["data"]["text/markdown"] for o in cell.get("outputs", []) if "text/markdown" in o.get("data", {}))

def notebook_for_page(nb, to_html: bool = True) -> tuple[dict, object]:
    "Split off the front matter of a processed notebook and apply the Quarto cell options; returns `(frontmatter, nb)`."
    import nbformat, yaml
    nb = nbformat.from_dict(nb)
    front, cells = {}, []
    for cell in nb.cells:
        src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if cell.cell_type == "raw" and not front and src.strip().startswith("---"):
            front = yaml.safe_load(src.strip().strip("-")) or {}
            continue
        if cell.cell_type == "markdown":
            if src.strip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"): continue
            cell.source = quarto_markdown(src, to_html)
        elif cell.cell_type == "code":
            opts, code = cell_options(src)
            if opts.get("include") == "false": continue
            if opts.get("output") == "asis":  # its Markdown output is page content
                cells.append(nbformat.v4.new_markdown_cell(quarto_markdown(_markdown_outputs(cell), to_html)))
                continue
            if opts.get("output") == "false": cell.outputs = []
            cell.source = "" if opts.get("echo") == "false" else code
            if not cell.source:
                if not cell.outputs: continue
                cell.metadata["transient"] = {"remove_source": True}  # nbconvert then renders only the outputs
        cells.append(cell)
    nb.cells = cells
    return front, nb


# %%
show_doc(notebook_for_page)

# %%
show_doc(cell_options)

# %% [markdown]
# A hand-made processed notebook: front matter, a `show_doc` result, a plain code cell with its output, and a hidden-code cell:

# %%
import nbformat, subprocess
from nbdev.processors import FilterDefaults
from nbdev.serve_drv import exec_nb


# %%
def _toy_processed(links_to: str = "02_b.ipynb"):
    sd = nbformat.v4.new_code_cell("#| echo: false\n#| output: asis\nshow_doc(f)", outputs=[nbformat.v4.new_output(
        "execute_result", {"text/markdown": "---\n\n### f\n\n```python\ndef f(x)\n```\n\n*Doubles `x`.*", "text/plain": "f"})])
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_raw_cell("---\ndescription: Toy page.\noutput-file: a.html\ntitle: Toy A\n---\n"),
        nbformat.v4.new_markdown_cell("<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->"),
        nbformat.v4.new_markdown_cell(f"## Intro part\n\nSee [B]({links_to}#g) and [`f`](https://example.org/docs/a.html#f)."
                                      "\n\n![diagram](assets/d.svg)\n\n<audio controls src=\"assets/s.wav\"></audio>"), sd,
        nbformat.v4.new_code_cell("#| code-fold: show\nprint(2 * 21)", outputs=[nbformat.v4.new_output("stream", text="42\n")]),
        nbformat.v4.new_code_cell("#| echo: false\nsecret = 1", outputs=[]),
        nbformat.v4.new_code_cell("#| include: false\nx = 1")])
front, page_nb = notebook_for_page(_toy_processed())
print(front, [c.cell_type for c in page_nb.cells])
assert front["title"] == "Toy A" and [c.cell_type for c in page_nb.cells] == ["markdown", "markdown", "code"]
assert page_nb.cells[1].source.startswith("---\n\n### f") and page_nb.cells[2].source == "print(2 * 21)"


# %% [markdown]
# ## Anchors and links
#
# nbdev links every backticked name to the published site, e.g. `https://<site>/config.html#melconfig`, with the anchor that Pandoc derives from the heading `### MelConfig`. nbconvert makes different anchors (`MelConfig`, and `Agreement-with-the-reference` for a section), so headings get Pandoc's identifiers: lower case, only letters, digits, `_`, `-` and `.`, spaces as `-`, nothing before the first letter, and `-1`, `-2`, ... for repeats.
#
# Then every `href`/`src` of the page is rewritten: links to the published site become relative links, links to another notebook (`01_mel.ipynb`) become links to its page (`mel.html`), and relative links to files (an image, a WAV) are collected so that the files are copied next to the pages.

# %%
#| export
def pandoc_id(text: str) -> str:
    "The identifier Pandoc gives a heading with this text."
    s = re.sub(r"[^\w\s.-]", "", text.strip().lower())
    s = re.sub(r"\s+", "-", s)
    first_letter = re.search(r"[^\W\d_]", s)  # any alphabet's letter
    return s[first_letter.start():] if first_letter else "section"

_re_heading = re.compile(r'<h([1-6]) id="[^"]*">(.*?)(<a class="anchor-link" href="#[^"]*">(.*?)</a>)?</h\1>', re.DOTALL)

def pandoc_heading_ids(body: str) -> str:
    "Give the headings of nbconvert's HTML Pandoc's identifiers (and matching anchor links)."
    seen: dict[str, int] = {}
    def fix(m):
        level, inner, anchor, anchor_text = m.groups()
        ident = pandoc_id(html.unescape(re.sub(r"<[^>]+>", "", inner)))
        n = seen.get(ident, 0)
        seen[ident] = n + 1
        if n: ident = f"{ident}-{n}"
        link = f'<a class="anchor-link" href="#{ident}">{anchor_text}</a>' if anchor else ""
        return f'<h{level} id="{ident}">{inner}{link}</h{level}>'
    return _re_heading.sub(fix, body)


# %%
show_doc(pandoc_id)

# %%
for text, ident in [("Agreement with the reference", "agreement-with-the-reference"), ("MelConfig", "melconfig"),
                    ("Generator.remove_weight_norm", "generator.remove_weight_norm"), ("2. Training (`tiny`)!", "training-tiny"),
                    ("Кратко по-русски", "кратко-по-русски"), ("42", "section"), ("3 Ångström", "ångström")]:
    assert pandoc_id(text) == ident, (text, pandoc_id(text), ident)
h = '<h2 id="A-b">A b<a class="anchor-link" href="#A-b">¶</a></h2><h2 id="A-b">A b<a class="anchor-link" href="#A-b">¶</a></h2>'
print(pandoc_heading_ids(h))
assert pandoc_heading_ids(h) == '<h2 id="a-b">A b<a class="anchor-link" href="#a-b">¶</a></h2><h2 id="a-b-1">A b<a class="anchor-link" href="#a-b-1">¶</a></h2>'

# %%
#| export
_re_url_attr = re.compile(r'\b(href|src)="([^"]*)"')
_re_tag = re.compile(r"<[a-zA-Z][^<>]*>")  # a real tag: in shown code and text outputs `<` is escaped as `&lt;`

def local_target(url: str) -> tuple[str, str] | None:
    "`(path, fragment)` of a relative link to a file (`a/b.png#x`), or `None` for anything else."
    if not url or url.startswith(("#", "/", "data:", "mailto:", "javascript:")) or urlsplit(url).scheme: return None
    path, _, frag = url.partition("#")
    path = unquote(path.split("?")[0])
    return (path, frag) if path else None

def rewrite_links(body: str, pages: dict[str, str], doc_url: str) -> tuple[str, set[str]]:
    "Make links to the published site relative and `.ipynb` links point to pages; returns the HTML and the files it refers to."
    files: set[str] = set()
    def fix(m):
        attr, url = m.group(1), html.unescape(m.group(2))
        if doc_url and (url == doc_url or url.startswith(doc_url + "/")):
            url = url[len(doc_url):].lstrip("/") or "index.html"
            if url.startswith("#"): url = "index.html" + url
        target = local_target(url)
        if target:
            path, frag = target
            if path.endswith(".ipynb"):
                name = Path(path).name
                url = pages.get(name, page_name(name)) + (f"#{frag}" if frag else "")
            elif not path.endswith(".html"): files.add(path)
        return f'{attr}="{html.escape(url, quote=True)}"'
    return _re_tag.sub(lambda t: _re_url_attr.sub(fix, t.group(0)), body), files


# %%
show_doc(rewrite_links)

# %%
body = ('<a href="https://example.org/docs/a.html#f">f</a> <a href="02_b.ipynb#g">B</a> <img src="assets/d.svg">'
        '<a href="https://github.com/x">gh</a> <a href="#top">top</a> <img src="data:image/png;base64,AA==">'
        '<pre>&lt;img src="shown-in-code.png"&gt;</pre>')
new, files = rewrite_links(body, {"02_b.ipynb": "b.html"}, "https://example.org/docs")
print(new, files)
assert 'href="a.html#f"' in new and 'href="b.html#g"' in new and 'href="https://github.com/x"' in new and files == {"assets/d.svg"}
assert '&lt;img src="shown-in-code.png"&gt;' in new  # text that shows HTML is not a link
assert rewrite_links('<a href="https://example.org/docs/">home</a>', {}, "https://example.org/docs")[0] == '<a href="index.html">home</a>'

# %% [markdown]
# ## Pages
#
# nbconvert's `basic` template renders the cells and nothing else: no scripts, no stylesheets from a CDN, no MathJax. Around it goes a small page: a top bar with the project name, the sidebar with every page in reading order (the current one highlighted), the title and summary from the front matter, and links to the previous and next page at the bottom. The style sheet (with Pygments' colours for code) is inlined in each page, so a page is one file plus the images and sounds it refers to.

# %%
#| export
PAGE_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #0b5cad; --bg-soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
header.topbar { display: flex; align-items: baseline; gap: 1rem; padding: .7rem 1.5rem; background: #0b3d6e; color: #fff; }
header.topbar a { color: #fff; } header.topbar .brand { font-weight: 700; font-size: 1.15rem; }
header.topbar .tagline { opacity: .85; font-size: .9rem; flex: 1; } header.topbar .repo { font-size: .9rem; }
.layout { display: flex; align-items: flex-start; max-width: 1280px; margin: 0 auto; }
nav.sidebar { flex: 0 0 250px; position: sticky; top: 0; max-height: 100vh; overflow-y: auto; padding: 1.2rem 1rem;
  border-right: 1px solid var(--line); font-size: .92rem; }
nav.sidebar ol { list-style: none; margin: 0; padding: 0; }
nav.sidebar li a { display: block; padding: .25rem .6rem; border-radius: 6px; color: var(--fg); }
nav.sidebar li a:hover { background: var(--bg-soft); text-decoration: none; }
nav.sidebar li a.current { background: #ddeafb; font-weight: 600; }
nav.sidebar .num { display: inline-block; width: 1.8rem; color: var(--muted); font-variant-numeric: tabular-nums; }
main { flex: 1; min-width: 0; padding: 1.5rem 2.5rem 3rem; }
main h1.title { margin: 0 0 .3rem; font-size: 2rem; } p.description { margin: 0 0 1.5rem; color: var(--muted); font-size: 1.1rem; }
h2, h3, h4 { margin-top: 1.8rem; } h2 { border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.anchor-link { visibility: hidden; margin-left: .3rem; font-size: .8em; } h2:hover .anchor-link, h3:hover .anchor-link { visibility: visible; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
:not(pre) > code { background: var(--bg-soft); padding: .1em .3em; border-radius: 4px; }
pre { background: var(--bg-soft); padding: .7rem .9rem; border-radius: 6px; overflow-x: auto; line-height: 1.45; margin: .5rem 0; }
.jp-Cell, .cell { margin: .6rem 0; }
.output_area pre, .jp-OutputArea pre { background: #fff; border-left: 3px solid var(--line); border-radius: 0; }
.output_stderr pre, .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] pre { border-left-color: #d9822b; }
img { max-width: 100%; height: auto; } audio { display: block; margin: .4rem 0; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .93rem; }
th, td { border: 1px solid var(--line); padding: .3rem .65rem; text-align: left; vertical-align: top; } th { background: var(--bg-soft); }
blockquote { margin: .8rem 0; padding: .1rem 1rem; border-left: 4px solid var(--line); color: var(--muted); }
hr { border: 0; border-top: 1px solid var(--line); margin: 2rem 0 .5rem; }
[class^="callout"] { border-left: 4px solid var(--accent); background: #f1f6fd; padding: .2rem 1rem; margin: 1rem 0; border-radius: 4px; }
nav.pager { display: flex; justify-content: space-between; gap: 1rem; margin-top: 3rem; padding-top: 1rem; border-top: 1px solid var(--line); }
@media (max-width: 800px) { .layout { display: block; } nav.sidebar { position: static; max-height: none; border-right: 0;
  border-bottom: 1px solid var(--line); } main { padding: 1rem; } }
"""

@lru_cache(maxsize=1)
def _code_css() -> str:
    from pygments.formatters import HtmlFormatter
    return HtmlFormatter(style="default").get_style_defs(".highlight")

@lru_cache(maxsize=1)
def _exporter():
    from nbconvert import HTMLExporter
    return HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)


# %%
#| export
@dataclass
class Page:
    "One page of the site."
    notebook: str     # the notebook it comes from, e.g. `01_mel.ipynb`
    name: str         # the file it becomes, e.g. `mel.html`
    title: str
    description: str = ""
    body: str = ""    # the HTML of the cells
    files: set[str] = field(default_factory=set)  # files the page refers to, relative to the notebooks

def page_from_notebook(path: Path, pages: dict[str, str], doc_url: str) -> Page:
    "Render one processed notebook: front matter, cells through nbconvert, Pandoc anchors, rewritten links."
    import nbformat
    front, nb = notebook_for_page(nbformat.read(path, as_version=4))
    body, _ = _exporter().from_notebook_node(nb)
    body, files = rewrite_links(pandoc_heading_ids(body), pages, doc_url)
    name = pages.get(path.name) or front.get("output-file") or page_name(path.name)
    return Page(path.name, name, str(front.get("title") or path.stem), str(front.get("description") or ""), body, files)

def _esc(s: str) -> str: return html.escape(s, quote=True)

def render_page(page: Page, pages: list[Page], info: SiteInfo) -> str:
    "The complete HTML document of `page`, with the sidebar listing `pages` and links to its neighbours."
    def label(p: Page) -> str:
        m = _re_number.match(p.notebook)
        if p.name == "index.html": return "Overview"
        return (f'<span class="num">{int(m.group(1)):02d}</span>' if m else "") + _esc(p.title)
    nav = "\n".join(f'<li><a href="{p.name}"{" class=" + chr(34) + "current" + chr(34) if p is page else ""}>{label(p)}</a></li>'
                    for p in pages)
    i = pages.index(page)
    prev = f'<a href="{pages[i-1].name}">&larr; {_esc(pages[i-1].title)}</a>' if i > 0 else "<span></span>"
    nxt = f'<a href="{pages[i+1].name}">{_esc(pages[i+1].title)} &rarr;</a>' if i + 1 < len(pages) else "<span></span>"
    title = page.title if page.name == "index.html" else f"{page.title} – {info.title}"
    repo = f'<a class="repo" href="{_esc(info.repo_url)}">Source on GitHub</a>' if info.repo_url else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title>
<meta name="description" content="{_esc(page.description)}">
<link rel="icon" href="data:,">
<style>{PAGE_CSS}
{_code_css()}</style>
</head>
<body>
<header class="topbar"><a class="brand" href="index.html">{_esc(info.title)}</a><span class="tagline">{_esc(info.description)}</span>{repo}</header>
<div class="layout">
<nav class="sidebar" aria-label="Pages"><ol>
{nav}
</ol></nav>
<main>
<h1 class="title">{_esc(page.title)}</h1>
{f'<p class="description">{_esc(page.description)}</p>' if page.description else ""}
{page.body}
<nav class="pager">{prev}{nxt}</nav>
</main>
</div>
</body>
</html>
"""


# %%
show_doc(page_from_notebook)


# %% [markdown]
# ## The site
#
# `build_site` renders every processed notebook and copies the files the pages refer to: from `_proc/`, which holds a copy of the files in `nbs/` (of its subfolders too when `settings.ini` says `recursive = True`), else from `nbs/` itself. A referenced file that does not exist is reported rather than silently dropped; the browser check below would also catch it as a broken image, sound or link. The output folder may already hold an earlier build: pages are overwritten, nothing else is deleted, and the folder may not be the repository or the notebooks themselves.

# %%
#| export
@dataclass
class SiteReport:
    "What `build_site` wrote."
    out: Path
    pages: list[str]
    files: list[str]
    missing: list[str]  # `page: file` for each referenced file that does not exist

def render_site(proc_dir: Path | str, out: Path | str, info: SiteInfo) -> SiteReport:
    "Render the processed notebooks in `proc_dir` into the static site `out`."
    proc_dir, out = Path(proc_dir).resolve(), Path(out).resolve()
    for forbidden in (info.root.resolve(), info.nbs_path.resolve(), proc_dir):
        if out == forbidden: raise ValueError(f"--out {out}: choose a folder of its own for the site, not {forbidden}")
    names = site_notebooks(proc_dir)
    if not names: raise FileNotFoundError(f"no notebooks in {proc_dir}")
    import nbformat
    page_of = {}
    for n in names:  # the page names first: links between pages need all of them
        front = notebook_for_page(nbformat.read(proc_dir / n, as_version=4))[0]
        page_of[n] = front.get("output-file") or page_name(n)
    pages = [page_from_notebook(proc_dir / n, page_of, info.doc_url) for n in names]
    out.mkdir(parents=True, exist_ok=True)
    copied, missing = set(), []
    for page in pages:
        (out / page.name).write_text(render_page(page, pages, info), encoding="utf-8")
        for f in sorted(page.files):
            src = next((d / f for d in (proc_dir, info.nbs_path.resolve()) if (d / f).resolve().is_relative_to(d)
                        and (d / f).is_file()), None)
            if src is None: missing.append(f"{page.notebook}: {f}"); continue
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / f)
            copied.add(f)
    return SiteReport(out, [p.name for p in pages], sorted(copied), missing)

def build_site(out: Path | str, info: SiteInfo | None = None, n_workers: int | None = None) -> SiteReport:
    "Process the notebooks (as `nbdev_proc_nbs` does) and render them into the static site `out`."
    info = info or SiteInfo.from_settings()
    return render_site(process_notebooks(info, n_workers), out, info)


# %%
show_doc(build_site)

# %%
show_doc(render_site)

# %% [markdown]
# A site from two hand-made processed notebooks (the toy above and a second page it links to), which also refers to one file that exists and one that does not:

# %%
tmp = Path(tempfile.mkdtemp())
proc, site = tmp / "proc", tmp / "site"
(proc / "assets").mkdir(parents=True)
(proc / "assets" / "d.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
nbformat.write(_toy_processed(), proc / "01_a.ipynb")
nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_raw_cell("---\ntitle: Toy B\noutput-file: b.html\n---"),
                                               nbformat.v4.new_markdown_cell("## G\n\nBack to [A](01_a.ipynb).")]), proc / "02_b.ipynb")
toy_info = SiteInfo("Toy", "A toy site.", "https://example.org/docs", "", tmp, tmp / "nbs")
report = render_site(proc, site, toy_info)
print(report)
a = (site / "a.html").read_text()
assert report.pages == ["a.html", "b.html"] and report.files == ["assets/d.svg"] and report.missing == ["01_a.ipynb: assets/s.wav"]
assert 'href="b.html#g"' in a and 'href="a.html#f"' in a and '<h2 id="intro-part">' in a and '<h3 id="f">' in a
assert '<a href="b.html" class="current">' in (site / "b.html").read_text() and "<script" not in a and "http://" not in a
assert (site / "assets" / "d.svg").is_file() and "secret" not in a and "#|" not in a
try: render_site(proc, proc, toy_info)
except ValueError as e: print(e)
shutil.rmtree(tmp)


# %% [markdown]
# ## The README
#
# `README.md` is the index notebook, like the index page. `nbdev_readme` renders it with Quarto; without Quarto, `write_readme` renders the same processed `index.ipynb` to Markdown itself: the front matter becomes the title and summary, links to notebooks become links to the published pages, and relative file links get the notebooks' folder in front so that they work on the repository's front page. Only `index.ipynb` is processed for this, so it takes seconds.

# %%
#| export
def readme_markdown(processed_index: Path | str, info: SiteInfo) -> str:
    "Markdown for README.md from the processed `index.ipynb`."
    import nbformat
    front, nb = notebook_for_page(nbformat.read(processed_index, as_version=4), to_html=False)
    nbs_rel = info.nbs_path.relative_to(info.root).as_posix()
    def fix(url: str) -> str:
        target = local_target(url)
        if not target: return url
        path, frag = target
        if path.endswith(".ipynb"): return f"{info.doc_url}/{page_name(Path(path).name)}" + (f"#{frag}" if frag else "")
        return f"{nbs_rel}/{url}"
    def fix_md(text: str) -> str:
        text = re.sub(r"(\]\()([^)\s]+)(\))", lambda m: m.group(1) + fix(m.group(2)) + m.group(3), text)
        return _re_url_attr.sub(lambda m: f'{m.group(1)}="{fix(m.group(2))}"', text)
    parts = [f"# {front.get('title', info.title)}", "<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->"]
    if front.get("description"): parts.append(f"> {front['description']}")
    for cell in nb.cells:
        if cell.cell_type == "markdown": parts.append(fix_md(cell.source.strip()))
        elif cell.cell_type == "code":
            if cell.source: parts.append(f"```python\n{cell.source}\n```")
            text = "".join(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
                           for o in cell.outputs)
            if text.strip(): parts.append(f"```\n{text.rstrip()}\n```")
    return "\n\n".join(p for p in parts if p) + "\n"

def readme_text(info: SiteInfo | None = None) -> str:
    "Process `index.ipynb` as nbdev does and return the README's Markdown."
    from nbdev.processors import FilterDefaults
    from nbdev.serve_drv import exec_nb
    info = info or SiteInfo.from_settings()
    src = info.nbs_path / "index.ipynb"
    if not src.is_file(): raise FileNotFoundError(f"{src}: no index notebook to make the README from")
    with tempfile.TemporaryDirectory() as tmp, _working_dir(info.nbs_path), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec_nb(src, Path(tmp) / "index.ipynb", FilterDefaults)
        return readme_markdown(Path(tmp) / "index.ipynb", info)

def write_readme(info: SiteInfo | None = None) -> Path:
    "Write README.md at the repository root from `index.ipynb`."
    info = info or SiteInfo.from_settings()
    (info.root / "README.md").write_text(readme_text(info), encoding="utf-8")
    return info.root / "README.md"


# %%
show_doc(write_readme)

# %%
show_doc(readme_text)

# %% [markdown]
# The committed README must be what `index.ipynb` says (after editing the index, run `hifigan-ruslan docs --readme`):

# %%
readme = readme_text(info)
print(readme[:300])
assert readme.startswith("# hifigan-ruslan\n") and "(nbs/assets/architecture.svg)" in readme and "](11_kaggle.ipynb)" not in readme
assert (info.root / "README.md").read_text(encoding="utf-8") == readme, "README.md is stale: run `hifigan-ruslan docs --readme`"

# %% [markdown]
# And it keeps the order a new user needs: what the project is (the introduction), a summary in Russian, set-up and the demo, Kaggle, preparing RUSLAN, training, generating, evaluating, what the runs showed, then the pages:

# %%
sections = [l[3:] for l in readme.splitlines() if l.startswith("## ")]
print(sections)
assert sections == ["Кратко по-русски", "Set up", "Train on Kaggle", "Prepare RUSLAN locally", "Train", "Generate and resynthesize",
                    "Evaluate", "What the Kaggle runs showed", "The pages"]
for needed in ['pip install torch==2.13.0 -e ".[dev]"', "nbdev_test --flags slow", "hifigan-ruslan demo --out runs/demo", "0.231", "4.0"]:
    assert needed in readme, needed

# %% [markdown]
# ## Checking the site in a browser
#
# A page can be valid HTML and still be broken for a reader: an image that does not load, a player pointing at a missing WAV, a link to a page or anchor that does not exist, a script error. The check opens every page in headless Chromium and looks at what the browser actually got.
#
# Chromium is driven over the DevTools protocol through a **pipe** (`--remote-debugging-pipe`: commands on file descriptor 3, replies and events on descriptor 4, each message JSON ended by a NUL byte), so the check needs neither a WebDriver nor a websocket library, and opens no debugging port. The site is served over HTTP by a local server on `127.0.0.1` (a random free port), because that is how a reader gets it and because browsers restrict `file://` pages. Chromium's background services (updates, sync, QUIC) are switched off, with a new empty profile: in a sandbox without network their connection attempts only produce errors.

# %%
#| export
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe")

def find_chromium() -> str:
    "The Chromium executable: `$CHROMIUM`, else `chromium` / `chromium-browser` / `google-chrome` on the PATH."
    for c in [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"]:
        if c and (path := shutil.which(c)): return path
    raise FileNotFoundError("no Chromium found: install it (Debian: apt-get install chromium) or set CHROMIUM to its path")

class Chromium:
    "Headless Chromium driven over the DevTools protocol through a pipe. Use as a context manager."
    def __init__(self, executable: str | None = None, timeout: float = 30.0):
        self.executable, self.timeout = executable or find_chromium(), timeout
        self.events: list[dict] = []
        self._next_id, self._buf, self.pid = 0, b"", None

    def __enter__(self) -> Chromium:
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # The browser's ends go to fds 3 and 4; copy them above 9 first so that moving one cannot overwrite the other.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (cmd_r, out_w)]
        self._log = open(Path(self.profile) / "chromium.log", "wb")
        devnull = os.open(os.devnull, os.O_RDONLY)
        try:
            self.pid = os.posix_spawn(self.executable, [self.executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
                                                        "about:blank"], os.environ,
                                      file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, self._log.fileno(), 1),
                                                    (os.POSIX_SPAWN_DUP2, self._log.fileno(), 2),
                                                    (os.POSIX_SPAWN_DUP2, high[0], 3), (os.POSIX_SPAWN_DUP2, high[1], 4)])
        finally:
            for fd in (cmd_r, out_w, devnull, *high): os.close(fd)
        self._w, self._r = cmd_w, out_r
        return self

    def _exited(self) -> RuntimeError:
        self._log.flush()
        tail = (Path(self.profile) / "chromium.log").read_text(errors="replace").strip().splitlines()[-3:]
        return RuntimeError(f"Chromium ({self.executable}) exited: " + " | ".join(tail))

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer within {self.timeout:.0f} s")
            chunk = os.read(self._r, 1 << 16)
            if not chunk: raise self._exited()
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        "Send a DevTools command and return its result; events that arrive meanwhile are kept in `events`."
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        try: os.write(self._w, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError: raise self._exited() from None
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._next_id:
                if "error" in m: raise RuntimeError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})
            if "method" in m: self.events.append(m)

    def wait_event(self, method: str, session: str | None = None) -> dict:
        "Wait for the next event `method` (of `session`), consuming it."
        deadline = time.monotonic() + self.timeout
        while True:
            for i, e in enumerate(self.events):
                if e["method"] == method and (session is None or e.get("sessionId") == session): return self.events.pop(i)
            m = self._read_message(deadline)
            if "method" in m: self.events.append(m)

    def __exit__(self, *exc):
        try: self.call("Browser.close")
        except Exception: pass
        for fd in (self._w, self._r): os.close(fd)
        deadline = time.monotonic() + 10
        while self.pid and time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]: self.pid = None
            else: time.sleep(0.05)
        if self.pid:  # did not close: stop the one process this object started
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


# %%
show_doc(Chromium)

# %%
show_doc(Chromium.call)

# %%
show_doc(find_chromium)

# %% [markdown]
# A browser that dies at start is an error that says so, not a hang:

# %%
try:
    with Chromium("/bin/false") as b: b.call("Browser.getVersion")
except RuntimeError as e: print(e)
else: raise AssertionError("a dead browser went unnoticed")

# %%
#| slow
with Chromium() as browser:
    version = browser.call("Browser.getVersion")
    target = browser.call("Target.createTarget", url="about:blank")["targetId"]
    session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    print(version["product"], browser.call("Runtime.evaluate", session, expression="6 * 7")["result"]["value"])


# %% [markdown]
# For each page the check records what the browser reports as an error (console errors, uncaught exceptions, failed loads), then asks the page for its images, audio elements, links and element ids:
#
# - every image has loaded with a non-zero width and height;
# - every audio element has a source that exists (a file in the site, or a non-empty `data:` URI) and that the browser can decode (its duration is known);
# - every link inside the site points to a file that exists.
#
# A link whose `#fragment` names no element of its page still resolves (the browser shows the top of the page); it is reported as a warning, not a problem. nbdev links every backticked name it knows to its anchor, including methods and names that have no `show_doc` of their own, so such links are common and harmless. Links to other sites are not followed (the check runs offline). The index page is also saved as a screenshot, for a human to glance at.

# %%
#| export
def _quiet_handler(directory: Path):
    from http.server import SimpleHTTPRequestHandler
    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args): pass  # one line per request would bury the results
    return partial(QuietHandler, directory=str(directory))

@contextmanager
def serve_directory(path: Path | str):
    "Serve `path` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."
    from http.server import ThreadingHTTPServer
    server = ThreadingHTTPServer(("127.0.0.1", 0), _quiet_handler(Path(path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()

_PAGE_FACTS_JS = """
(async () => {
  const media = [...document.querySelectorAll('audio, video')];
  const settle = a => new Promise(done => {
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener('loadedmetadata', done, {once: true}); a.addEventListener('error', done, {once: true});
    setTimeout(done, 5000); a.preload = 'metadata'; a.load();
  });
  await Promise.all(media.map(settle));
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  return {
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth, h: i.naturalHeight})),
    audio: media.map(a => ({srcs: [a.getAttribute('src') ? a.src : null, ...[...a.querySelectorAll('source')].map(s => s.src)]
                              .filter(Boolean), duration: a.duration, error: a.error ? a.error.code : null})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    text: document.body ? document.body.innerText.length : 0,
  };
})()
"""

def _error_events(events: list[dict], session: str) -> list[str]:
    out = []
    for e in events:
        if e.get("sessionId") != session: continue
        p = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
        elif e["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")).splitlines()[0])
        elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            out.append(f"log: {p['entry'].get('text', '')} {p['entry'].get('url', '')}".strip())
    return out


# %%
#| export
def check_site(site: Path | str, screenshot: Path | str | None = None, chromium: str | None = None,
               timeout: float = 30.0) -> dict:
    "Open every page of `site` in headless Chromium; returns counts, `problems` (empty when all is well) and `warnings`."
    site = Path(site).resolve()
    pages = sorted(p.name for p in site.glob("*.html"))
    if "index.html" not in pages: raise FileNotFoundError(f"{site}: no index.html (is this a built site?)")
    pages.remove("index.html"); pages.insert(0, "index.html")
    problems, anchor_warnings, facts = [], [], {}
    with serve_directory(site) as base, Chromium(chromium, timeout) as browser:
        for name in pages:
            target = browser.call("Target.createTarget", url="about:blank")["targetId"]
            session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log"): browser.call(f"{domain}.enable", session)
            browser.call("Emulation.setDeviceMetricsOverride", session, width=1280, height=900, deviceScaleFactor=1, mobile=False)
            nav = browser.call("Page.navigate", session, url=base + name)
            if nav.get("errorText"): problems.append(f"{name}: does not load ({nav['errorText']})")
            browser.wait_event("Page.loadEventFired", session)
            got = browser.call("Runtime.evaluate", session, expression=_PAGE_FACTS_JS, awaitPromise=True, returnByValue=True)
            if "exceptionDetails" in got: problems.append(f"{name}: the check's script failed"); continue
            facts[name] = f = got["result"]["value"]
            if name == "index.html" and screenshot:
                png = browser.call("Page.captureScreenshot", session, format="png")["data"]
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                Path(screenshot).write_bytes(base64.b64decode(png))
            problems += [f"{name}: {m}" for m in _error_events(browser.events, session)]
            browser.call("Target.closeTarget", targetId=target)
            if f["text"] == 0: problems.append(f"{name}: the page is empty")
            problems += [f"{name}: image {i['src'][:80]} has no size" for i in f["images"] if not (i["w"] and i["h"])]
            for a in f["audio"]:
                if not a["srcs"]: problems.append(f"{name}: an audio element has no source")
                for s in a["srcs"]:
                    if s.startswith("data:"):
                        if len(s.partition(",")[2]) < 100: problems.append(f"{name}: audio data URI is empty")
                    elif not s.startswith(base) or not (site / unquote(urlsplit(s).path).lstrip("/")).is_file():
                        problems.append(f"{name}: audio {s} is not a file of the site")
                if a["error"] is not None or not a["duration"]:
                    problems.append(f"{name}: audio {(a['srcs'] or ['?'])[0][:80]} cannot be played (error {a['error']})")
    n_links = 0
    for name, f in facts.items():
        for link in f["links"]:
            if not link.startswith(base): continue
            n_links += 1
            path, frag = unquote(urlsplit(link).path).lstrip("/") or "index.html", urlsplit(link).fragment
            file = site / path
            if file.is_dir(): file, path = file / "index.html", path.rstrip("/") + "/index.html"
            if not file.is_file(): problems.append(f"{name}: link to missing {path}")
            elif frag and path in facts and unquote(frag) not in facts[path]["ids"]:
                anchor_warnings.append(f"{name}: link to missing anchor {path}#{frag}")
    return {"pages": len(facts), "images": sum(len(f["images"]) for f in facts.values()),
            "audio": sum(len(f["audio"]) for f in facts.values()), "links": n_links, "problems": list(dict.fromkeys(problems)),
            "warnings": sorted(set(anchor_warnings))}


# %%
show_doc(check_site)

# %%
show_doc(serve_directory)

# %% [markdown]
# The check must catch what it claims to. A deliberately broken site: an image that is not there, a player pointing at a missing WAV, a link to a missing page and one to a missing anchor, and a script error:

# %%
#| slow
bad = Path(tempfile.mkdtemp())
(bad / "index.html").write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"><title>x</title></head><body>'
    '<h1 id="top">Broken</h1><img src="gone.png"><audio controls src="gone.wav"></audio>'
    '<a href="nowhere.html">a</a> <a href="#nothing">b</a> <a href="#top">ok</a><script>undefinedFunction()</script></body></html>')
result = check_site(bad)
print("\n".join(result["problems"]))
for expected in ["image", "gone.wav is not a file", "missing nowhere.html", "undefinedFunction"]:
    assert any(expected in p for p in result["problems"]), expected
assert result["warnings"] == ["index.html: link to missing anchor index.html#nothing"]  # and none for #top
shutil.rmtree(bad)


# %% [markdown]
# ## Command line
#
# `hifigan-ruslan docs --out DIR` builds the site (default `_site/` in the repository, which git ignores); `--check` then opens the site in headless Chromium and fails if anything is broken, saving a screenshot of the index page. `hifigan-ruslan docs --readme` only rewrites README.md from `index.ipynb`. Without the dev extras it says what to install.

# %%
#| export
def _missing_extras() -> list[str]:
    missing = []
    for mod in ("nbdev", "nbconvert", "nbformat"):
        try: __import__(mod)
        except ImportError: missing.append(mod)
    return missing

def main_docs(argv: list[str]) -> int:
    "`hifigan-ruslan docs`: build the documentation site locally, without Quarto."
    p = argparse.ArgumentParser(prog="hifigan-ruslan docs", description="Build the documentation as a static HTML site "
                                "(no Quarto needed) from the processed notebooks.")
    p.add_argument("--out", default=None, help="folder for the site (default: _site in the repository)")
    p.add_argument("--readme", action="store_true", help="only write README.md from nbs/index.ipynb (no site)")
    p.add_argument("--check", action="store_true", help="open every page in headless Chromium and report broken parts")
    p.add_argument("--screenshot", default=None, help="with --check: where to save a screenshot of the index page "
                   "(default: artifacts/docs-index.png in the repository)")
    p.add_argument("--workers", type=int, default=None, help="processes for nbdev's processing (default: up to 4)")
    args = p.parse_args(argv)
    if (missing := _missing_extras()):
        print(f"hifigan-ruslan docs: error: building the docs needs the dev extras (missing: {', '.join(missing)}); "
              'install them with: pip install -e ".[dev]"', file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 0: raise ValueError(f"--workers {args.workers}: must be 0 or more")
    info = SiteInfo.from_settings()
    if args.readme:
        print(f"wrote {write_readme(info)}")
        return 0
    report = build_site(args.out or info.root / "_site", info, args.workers)
    for m in report.missing: print(f"warning: missing file referenced by {m}", file=sys.stderr)
    print(f"wrote {len(report.pages)} pages and {len(report.files)} files to {report.out}; open {report.out / 'index.html'}")
    if args.check:
        shot = Path(args.screenshot) if args.screenshot else info.root / "artifacts" / "docs-index.png"
        result = check_site(report.out, shot)
        for w in result["warnings"]: print(f"warning: {w}", file=sys.stderr)
        for problem in result["problems"]: print(f"problem: {problem}", file=sys.stderr)
        print(f"checked {result['pages']} pages in headless Chromium: {result['images']} images, {result['audio']} audio "
              f"players, {result['links']} internal links, {len(result['problems'])} problems, {len(result['warnings'])} "
              f"warnings; screenshot {shot}")
        return 1 if result["problems"] else 0
    return 0


# %%
show_doc(main_docs)

# %%
blocked = "import sys; sys.modules['nbdev'] = None; from hifigan_ruslan.cli import main; sys.exit(main(['docs', '--out', 'x']))"
r = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
print(r.stderr.strip())
assert r.returncode == 2 and "missing: nbdev" in r.stderr and 'pip install -e ".[dev]"' in r.stderr and len(r.stderr.strip().splitlines()) == 1
h = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "docs", "--help"], capture_output=True, text=True)
assert h.returncode == 0 and "--check" in h.stdout

# %% [markdown]
# ## The whole site, in a browser
#
# The real thing: process every notebook, build the site with the command line, then check every page in headless Chromium. The screenshot of the index page goes to `artifacts/docs-index.png` (git ignores `artifacts/`).

# %%
#| slow
out = Path(tempfile.mkdtemp()) / "site"
shot = info.root / "artifacts" / "docs-index.png"
r = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "docs", "--out", str(out), "--check", "--screenshot", str(shot)],
                   capture_output=True, text=True, timeout=900)
print(r.stdout.strip().replace(str(out.parent), "<tmp>").replace(str(info.root), "<repo>"))
assert r.returncode == 0, r.stderr[-3000:]
built = sorted(p.name for p in out.glob("*.html"))
assert "index.html" in built and {page_name(n) for n in site_notebooks(".")} == set(built)
assert shot.is_file() and shot.stat().st_size > 10_000
shutil.rmtree(out.parent)
