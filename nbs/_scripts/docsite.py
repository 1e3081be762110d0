# %% [markdown]
# # Documentation site
#
# > The notebooks as a static HTML site that needs no Quarto, a headless-browser check that every page works, and the README: development tooling in the repository, not part of the package.

# %%
#| hide
from nbdev.showdoc import show_doc
from fastcore.test import test_eq, test_fail

# %% [markdown]
# The published documentation is built by `nbdev_docs`: nbdev *processes* every notebook (turns the `# Title` cell into front matter, adds a `show_doc` after each exported function, runs the cells that produce those signatures, hides `#| hide` cells, links every backticked name to its page) and hands the result to Quarto, which renders the website that the deployment workflow publishes to GitHub Pages.
#
# Quarto is a standalone program with no wheel on PyPI and no Debian package, so a machine that can only `pip install` cannot run `nbdev_docs`. The tool documented here renders **the same processed notebooks** with nbconvert instead, into a plain static site: one page per notebook, a sidebar in reading order, links between pages that work from a local folder, images embedded and audio files copied next to the pages. No page loads anything from the network (no CDN scripts or fonts), so the site works offline and in a sandboxed browser. It also writes `README.md` from the index notebook, and opens the site in headless Chromium to check that every page works.
#
# None of this is needed to train or run the vocoder, so it is not in the `hifigan_ruslan` package: it is development tooling, a small Python package in the repository's `tools/docsite/` folder (nbdev exports notebooks only into the package, so this notebook documents and tests the tool rather than defining it). Run it from the repository:
#
# ```sh
# python tools/docsite --out _site            # build the site; then open _site/index.html
# python tools/docsite --out _site --check    # also open every page in headless Chromium and report broken parts
# python tools/docsite --readme               # only rewrite README.md from nbs/index.ipynb
# ```
#
# It needs the dev extras (nbdev, nbconvert; Playwright for `--check`) and says so when they are missing. The notebook imports the tool by putting `tools/` on the module path:

# %%
import re
import sys
from pathlib import Path
import shutil
import subprocess
import tempfile
import nbformat
from nbdev.config import get_config

# %%
#| exec_doc
tools_dir = get_config().config_path / "tools"
sys.path.insert(0, str(tools_dir))

# %%
from docsite import (SiteInfo, reading_order, site_notebooks, page_name, process_notebooks, processing_error,
                     quarto_markdown, cell_options, notebook_for_page, pandoc_id, pandoc_heading_ids,
                     rewrite_links, page_from_notebook, render_site, build_site, readme_text, write_readme,
                     find_chromium, check_site, serve_directory)
from docsite.cli import main as docsite_main

# %% [markdown]
# ## Where things are
#
# The site needs a few facts about the project: its title and description, the address of the published site (links that nbdev writes to it become relative links here), the repository, and where the notebooks are. They all come from `settings.ini`, found in the current folder or above it, like nbdev does (`tools/docsite/project.py`).

# %%
show_doc(SiteInfo.from_settings)

# %%
info = SiteInfo.from_settings()
print(info.title, "|", info.doc_url, "|", info.nbs_path.relative_to(info.root))
test_eq(info.nbs_path, info.root / "nbs")
test_eq(info.doc_url, "https://hifigan-ruslan.github.io/hifigan-ruslan")
test_fail(lambda: SiteInfo.from_settings("/"), contains="no settings.ini here or above")

# %% [markdown]
# ## Reading order
#
# The notebooks are numbered in the order a reader should meet them, which is the order of their modules' dependencies: configuration, mel, models, losses, then the data pipeline, training and the tools around it. Siblings share a number and take a letter, as fastcore numbers `03_xtras` and `03a_parallel`: `05_pretrained` comes before the `05a_checkpoints` that imports it. The sidebar follows the numbers (numerically, so that `100_x` would come after `14_cli`), with the index first and unnumbered pages (this one: development tooling, not the package) last. Files whose names start with `_` or `.` are not pages, like in nbdev.

# %%
show_doc(reading_order)

# %%
show_doc(site_notebooks)

# %%
show_doc(page_name)

# %%
names = ["14_cli.ipynb", "100_z.ipynb", "b.ipynb", "02a_x.ipynb", "02_generator.ipynb", "index.ipynb", "a.ipynb"]
in_order = ["index.ipynb", "02_generator.ipynb", "02a_x.ipynb", "14_cli.ipynb", "100_z.ipynb", "a.ipynb", "b.ipynb"]
test_eq(reading_order(names), in_order)
test_eq(page_name("01_mel.ipynb"), "mel.html")
test_eq(page_name("05a_checkpoints.ipynb"), "checkpoints.html")
test_eq(page_name("index.ipynb"), "index.html")
print(site_notebooks("."))
test_eq(site_notebooks(".")[0], "index.ipynb")
assert "docsite.ipynb" in site_notebooks(".")

# %% [markdown]
# ## Processing the notebooks
#
# nbdev's `nbdev_proc_nbs` would first make sure Quarto is installed (and try to install it), so the tool calls the function underneath it, `nbdev.serve.proc_nbs`, which writes the processed notebooks to `_proc/` at the repository root (the folder `nbdev_docs` renders) and only reprocesses notebooks that changed.
#
# Processing runs every exported cell, and every cell that contains an import, to produce the `show_doc` output. It runs in the notebooks' folder, as `nbdev_test` does, so that relative paths such as `testdata/...` resolve. A cell that mixes imports with code depending on cells that are not run fails there, exactly as it would fail `nbdev_docs` in the deployment workflow; the error names the notebook and cell so that it can be fixed (keep imports in a cell of their own). This notebook's own cell that puts `tools/` on the path has no import and says `#| exec_doc`, so nbdev runs it too.

# %%
show_doc(process_notebooks)

# %% [markdown]
# What a processing failure looks like (nbdev names the notebook by its title; the message names the file):

# %%
failure = Exception("Error in notebook: Command line in cell 7 :\nimport x\nf(y)")
failure.__cause__ = NameError("name 'y' is not defined")
message = processing_error(failure, info.nbs_path)
print(message)
test_eq(message.split(" for the docs: ")[0], "nbdev could not process 14_cli.ipynb, cell 7")
test_eq(message.split(" for the docs: ")[1].split(" (")[0], "NameError: name 'y' is not defined")

# %% [markdown]
# ## From a processed notebook to a page
#
# A processed notebook is still written for Quarto:
#
# - its first cell is raw YAML front matter (`title`, `description`, `output-file`);
# - code cells carry Quarto options as `#| key: value` lines: `echo: false` hides the code, `output: asis` means "this cell's Markdown output is part of the page" (that is how `show_doc` signatures arrive), `include: false` drops the cell, `output: false` drops the output;
# - Markdown may use Pandoc extensions: attributes after a link (`[source](url){target="_blank"}`) and fenced divs (`::: {.callout-note}` ... `:::`).
#
# `quarto_markdown` turns the Pandoc extensions into the HTML that a CommonMark renderer passes through (or, for the README, into plain Markdown), and `notebook_for_page` applies the cell options, so that nbconvert sees an ordinary notebook (`tools/docsite/markdown.py`).

# %%
show_doc(quarto_markdown)

# %%
src = '[source](https://x/y.py#L3){target="_blank" .right}\n\n::: {.callout-note}\nRead **this**.\n:::'
print(quarto_markdown(src))
link = '<a href="https://x/y.py#L3" class="right" target="_blank">source</a>'
test_eq(quarto_markdown(src).split("\n")[0], link)
test_eq(quarto_markdown(src).split("\n", 2)[2], '<div class="callout-note">\n\nRead **this**.\n\n</div>')
test_eq(quarto_markdown(src, to_html=False), "[source](https://x/y.py#L3)\n\nRead **this**.")
image = quarto_markdown("![plot](a.png){width=50% .wide}")
test_eq(image, '<img src="a.png" alt="plot" class="wide" width="50%">')

# %% [markdown]
# Markdown *about* the syntax (in code spans and fenced code) stays as it is written:

# %%
about = 'Write `[a](b){.c}` or\n\n```\n[a](b){.c}\n:::\n```\n\n::: {.x}\nok\n:::'
print(quarto_markdown(about))
test_eq(quarto_markdown(about), about.replace("::: {.x}\nok\n:::", '<div class="x">\n\nok\n\n</div>'))

# %%
show_doc(notebook_for_page)

# %%
show_doc(cell_options)

# %%
options = cell_options("#| echo: false\n#| output: asis\nshow_doc(f)")
test_eq(options, ({"echo": "false", "output": "asis"}, "show_doc(f)"))
test_eq(cell_options("x = 1  #| not an option"), ({}, "x = 1  #| not an option"))


# %% [markdown]
# A hand-made processed notebook: front matter, a `show_doc` result, a plain code cell with its output, a hidden-code cell and a cell left out of the page:

# %%
def toy_processed() -> nbformat.NotebookNode:
    "A processed notebook as nbdev writes it, linking to a second page `02_b.ipynb`."
    signature = "---\n\n### f\n\n```python\ndef f(x)\n```\n\n*Doubles `x`.*"
    shown_doc = nbformat.v4.new_output("execute_result", {"text/markdown": signature, "text/plain": "f"})
    intro = ("## Intro part\n\nSee [B](02_b.ipynb#g) and [`f`](https://example.org/docs/a.html#f)."
             '\n\n![diagram](assets/d.svg)\n\n<audio controls src="assets/s.wav"></audio>')
    printed = nbformat.v4.new_output("stream", text="42\n")
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_raw_cell("---\ndescription: Toy page.\noutput-file: a.html\ntitle: Toy A\n---\n"),
        nbformat.v4.new_markdown_cell("<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->"),
        nbformat.v4.new_markdown_cell(intro),
        nbformat.v4.new_code_cell("#| echo: false\n#| output: asis\nshow_doc(f)", outputs=[shown_doc]),
        nbformat.v4.new_code_cell("#| code-fold: show\nprint(2 * 21)", outputs=[printed]),
        nbformat.v4.new_code_cell("#| echo: false\nsecret = 1", outputs=[]),
        nbformat.v4.new_code_cell("#| include: false\nx = 1"),
    ])


# %%
front, page_nb = notebook_for_page(toy_processed())
print(front, [c.cell_type for c in page_nb.cells])
test_eq(front["title"], "Toy A")
test_eq([c.cell_type for c in page_nb.cells], ["markdown", "markdown", "code"])
assert page_nb.cells[1].source.startswith("---\n\n### f")
test_eq(page_nb.cells[2].source, "print(2 * 21)")

# %% [markdown]
# ## Anchors and links
#
# nbdev links every backticked name to the published site, e.g. `https://<site>/config.html#melconfig`, with the anchor that Pandoc derives from the heading `### MelConfig`. nbconvert makes different anchors (`MelConfig`, and `Agreement-with-the-reference` for a section), so headings get Pandoc's identifiers: lower case, only letters, digits, `_`, `-` and `.`, spaces as `-`, nothing before the first letter, and `-1`, `-2`, ... for repeats.
#
# Then every `href`/`src` of the page is rewritten: links to the published site become relative links, links to another notebook (`01_mel.ipynb`) become links to its page (`mel.html`), and relative links to files (an image, a WAV) are collected so that the files are copied next to the pages (`tools/docsite/pages.py`).

# %%
show_doc(pandoc_id)

# %%
test_eq(pandoc_id("Agreement with the reference"), "agreement-with-the-reference")
test_eq(pandoc_id("MelConfig"), "melconfig")
test_eq(pandoc_id("Generator.remove_weight_norm"), "generator.remove_weight_norm")
test_eq(pandoc_id("2. Training (`tiny`)!"), "training-tiny")
test_eq(pandoc_id("Кратко по-русски"), "кратко-по-русски")
test_eq(pandoc_id("42"), "section")
test_eq(pandoc_id("3 Ångström"), "ångström")

# %%
show_doc(pandoc_heading_ids)

# %%
heading = '<h2 id="A-b">A b<a class="anchor-link" href="#A-b">¶</a></h2>'
print(pandoc_heading_ids(heading * 2))
test_eq(pandoc_heading_ids(heading * 2), '<h2 id="a-b">A b<a class="anchor-link" href="#a-b">¶</a></h2>'
                                         '<h2 id="a-b-1">A b<a class="anchor-link" href="#a-b-1">¶</a></h2>')

# %%
show_doc(rewrite_links)

# %%
body = ('<a href="https://example.org/docs/a.html#f">f</a> <a href="02_b.ipynb#g">B</a>'
        '<img src="assets/d.svg"> <a href="https://github.com/x">gh</a> <a href="#top">top</a>'
        '<img src="data:image/png;base64,AA==">'
        '<pre>&lt;img src="shown-in-code.png"&gt;</pre>')
new, files = rewrite_links(body, {"02_b.ipynb": "b.html"}, "https://example.org/docs")
print(new, files)
test_eq(new, body.replace("https://example.org/docs/a.html", "a.html").replace("02_b.ipynb", "b.html"))
test_eq(files, {"assets/d.svg"})
test_eq(rewrite_links('<a href="https://example.org/docs/">home</a>', {}, "https://example.org/docs")[0],
        '<a href="index.html">home</a>')

# %% [markdown]
# The test above also shows what stays: links to other sites, anchors on the same page, `data:` URIs, and text that only *shows* HTML (`&lt;img ...&gt;` in code), which is not a link.

# %% [markdown]
# ## Pages
#
# nbconvert's `basic` template renders the cells and nothing else: no scripts, no stylesheets from a CDN, no MathJax. Around it goes a small page: a top bar with the project name, the sidebar with every page in reading order (the current one highlighted), the title and summary from the front matter, and links to the previous and next page at the bottom. The style sheet (`tools/docsite/page.css`, with Pygments' colours for code) is inlined in each page, so a page is one file plus the images and sounds it refers to.

# %%
show_doc(page_from_notebook)

# %% [markdown]
# ## The site
#
# `build_site` renders every processed notebook and copies the files the pages refer to: from `_proc/`, which holds a copy of the files in `nbs/` (of its subfolders too when `settings.ini` says `recursive = True`), else from `nbs/` itself. A referenced file that does not exist is reported rather than silently dropped; the browser check below would also catch it as a broken image, sound or link. The output folder may already hold an earlier build: pages are overwritten, nothing else is deleted, and the folder may not be the repository or the notebooks themselves (`tools/docsite/build.py`).

# %%
show_doc(build_site)

# %%
show_doc(render_site)

# %% [markdown]
# A site from two hand-made processed notebooks (the toy above and a second page it links to), which also refers to one file that exists and one that does not:

# %%
tmp = Path(tempfile.mkdtemp())
proc = tmp / "proc"
site = tmp / "site"
(proc / "assets").mkdir(parents=True)
(proc / "assets" / "d.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
nbformat.write(toy_processed(), proc / "01_a.ipynb")
page_b = [nbformat.v4.new_raw_cell("---\ntitle: Toy B\noutput-file: b.html\n---"),
          nbformat.v4.new_markdown_cell("## G\n\nBack to [A](01_a.ipynb).")]
nbformat.write(nbformat.v4.new_notebook(cells=page_b), proc / "02_b.ipynb")
toy_info = SiteInfo("Toy", "A toy site.", "https://example.org/docs", "", tmp, tmp / "nbs")
report = render_site(proc, site, toy_info)
print(report.pages, report.files, report.missing)
a = (site / "a.html").read_text()
test_eq(report.pages, ["a.html", "b.html"])
test_eq(report.files, ["assets/d.svg"])
test_eq(report.missing, ["01_a.ipynb: assets/s.wav"])
wanted = ['href="b.html#g"', 'href="a.html#f"', '<h2 id="intro-part">', '<h3 id="f">']
test_eq([s for s in wanted if s not in a], [])
assert '<a href="b.html" class="current">' in (site / "b.html").read_text()
test_eq([s in a for s in ["<script", "http://", "secret", "#|"]], [False] * 4)
assert (site / "assets" / "d.svg").is_file()
test_fail(lambda: render_site(proc, proc, toy_info), contains="choose a folder of its own for the site")
shutil.rmtree(tmp)

# %% [markdown]
# ## The README
#
# `README.md` is the index notebook, like the index page. `nbdev_readme` renders it with Quarto; without Quarto, `write_readme` renders the same processed `index.ipynb` to Markdown itself: the front matter becomes the title and summary, links to notebooks become links to the published pages, and relative file links get the notebooks' folder in front so that they work on the repository's front page. Only `index.ipynb` is processed for this, so it takes seconds (`tools/docsite/readme.py`).

# %%
show_doc(write_readme)

# %%
show_doc(readme_text)

# %% [markdown]
# The committed README must be what `index.ipynb` says (after editing the index, run `python tools/docsite --readme`):

# %%
readme = readme_text(info)
print(readme[:300])
assert readme.startswith("# hifigan-ruslan\n")
assert "(nbs/assets/architecture.svg)" in readme, readme
assert "](12b_kaggle_client.ipynb)" not in readme, readme
committed = (info.root / "README.md").read_text(encoding="utf-8")
assert committed == readme, committed  # if not: python tools/docsite --readme

# %% [markdown]
# And it keeps the order a new user needs: what the project is (the introduction), a summary in Russian, set-up and the demo, starting from the pretrained vocoder, Kaggle, preparing RUSLAN, training, generating, evaluating, what the runs showed, then the pages:

# %%
sections = [line[3:] for line in readme.splitlines() if line.startswith("## ")]
print(sections)
test_eq(sections, ["Кратко по-русски", "Set up", "Start from the pretrained vocoder", "Train on Kaggle",
                   "Prepare a corpus locally", "Train", "Generate and resynthesize", "Evaluate", "Licences",
                   "What the Kaggle runs showed", "The pages"])
needed = ['pip install torch==2.13.0 -e ".[dev]"', "nbdev_test --flags slow",
          "hifigan-ruslan demo --out runs/demo", "0.231", "4.0", "python tools/docsite", "--init-from universal"]
test_eq([s for s in needed if s not in readme], [])

# %% [markdown]
# ## Checking the site in a browser
#
# A page can be valid HTML and still be broken for a reader: an image that does not load, a player pointing at a missing WAV, a link to a page or anchor that does not exist, a script error. The check opens every page in headless Chromium and looks at what the browser actually got (`tools/docsite/browser.py`).
#
# Chromium is driven through [Playwright](https://playwright.dev/python/)'s Python package, over the system's own browser (Debian's `chromium`, or `$CHROMIUM`): Playwright's downloaded browsers are never needed. Chromium's background services (updates, sync, QUIC) are switched off: in a sandbox without network their connection attempts only produce errors. The site is served over HTTP by a local server on `127.0.0.1` (a random free port), because that is how a reader gets it and because browsers restrict `file://` pages.

# %%
show_doc(find_chromium)

# %%
show_doc(serve_directory)

# %%
test_fail(lambda: check_site(Path(tempfile.gettempdir()) / "no-such-site"), contains="no index.html")

# %% [markdown]
# For each page the check records what the browser reports as an error (console errors, uncaught exceptions, failed requests), then asks the page for its images, audio elements, links and element ids:
#
# - every image has loaded with a non-zero width and height;
# - every audio element has a source that exists (a file in the site, or a non-empty `data:` URI) and that the browser can decode (its duration is known);
# - every link inside the site points to a file that exists.
#
# A link whose `#fragment` names no element of its page still resolves (the browser shows the top of the page); it is reported as a warning, not a problem. nbdev links every backticked name it knows to its anchor, including methods and names that have no `show_doc` of their own, so such links are common and harmless. Links to other sites are not followed (the check runs offline). The index page is also saved as a screenshot, for a human to glance at.

# %%
show_doc(check_site)

# %% [markdown]
# The check must catch what it claims to. A deliberately broken site: an image that is not there, a player pointing at a missing WAV, a link to a missing page and one to a missing anchor, and a script error:

# %%
#| slow
bad = Path(tempfile.mkdtemp())
(bad / "index.html").write_text(
    '<!DOCTYPE html><html><head><link rel="icon" href="data:,"><title>x</title></head><body>'
    '<h1 id="top">Broken</h1><img src="gone.png"><audio controls src="gone.wav"></audio>'
    '<a href="nowhere.html">a</a> <a href="#nothing">b</a> <a href="#top">ok</a>'
    '<script>undefinedFunction()</script></body></html>')
result = check_site(bad)
print(re.sub(r"http://127.0.0.1:\d+/", "", "\n".join(result.problems)))  # the port is random
expected = ["gone.png has no size", "gone.wav is not a file", "gone.wav cannot be played",
            "gone.png (HTTP 404)", "gone.wav (HTTP 404)", "ReferenceError: undefinedFunction is not defined",
            "link to missing nowhere.html"]
test_eq([e for e in expected if not any(e in p for p in result.problems)], [])
test_eq(len(result.problems), len(expected))  # each problem once
test_eq(result.warnings, ["index.html: link to missing anchor index.html#nothing"])  # and none for #top
test_eq(result.pages, 1)
test_eq(result.images, 1)
test_eq(result.audio, 1)
test_eq(result.links, 3)
shutil.rmtree(bad)

# %% [markdown]
# ## Command line
#
# `python tools/docsite --out DIR` builds the site (default `_site/` in the repository, which git ignores); `--check` then opens the site in headless Chromium and fails if anything is broken, saving a screenshot of the index page. `--readme` only rewrites README.md from `index.ipynb`. A mistake it can name (a missing dev extra, a notebook that fails to process, an output folder that is the repository) is one line and exit status 2.

# %%
show_doc(docsite_main)

# %%
tool = str(tools_dir / "docsite")
without_nbdev = ("import sys; sys.modules['nbdev'] = None; sys.path.insert(0, sys.argv[1]); "
                 "from docsite.cli import main; sys.exit(main(['--out', 'x']))")
r = subprocess.run([sys.executable, "-c", without_nbdev, str(tools_dir)], capture_output=True, text=True)
print(r.stderr.strip())
test_eq(r.returncode, 2)
test_eq(r.stderr.strip().splitlines(), ["python tools/docsite: error: building the docs needs the dev extras "
                                        "(missing: nbdev); install them with: pip install -e \".[dev]\""])
bad_workers = subprocess.run([sys.executable, tool, "--workers", "-1"], capture_output=True, text=True)
test_eq(bad_workers.returncode, 2)
test_eq(bad_workers.stderr, "python tools/docsite: error: --workers -1: must be 0 or more\n")
usage = subprocess.run([sys.executable, tool, "--help"], capture_output=True, text=True)
assert "--check" in usage.stdout, usage.stdout

# %% [markdown]
# ## The whole site, in a browser
#
# The real thing: process every notebook, build the site with the command line, then check every page in headless Chromium. The screenshot of the index page goes to `artifacts/docs-index.png` (git ignores `artifacts/`).

# %%
#| slow
out = Path(tempfile.mkdtemp()) / "site"
shot = info.root / "artifacts" / "docs-index.png"
r = subprocess.run([sys.executable, tool, "--out", str(out), "--check", "--screenshot", str(shot)],
                   capture_output=True, text=True, timeout=900)
print(r.stdout.strip().replace(str(out.parent), "<tmp>").replace(str(info.root), "<repo>"))
not_warnings = [line for line in r.stderr.splitlines() if line.startswith(("problem:", "python tools"))]
print("\n".join(not_warnings))
test_eq(r.returncode, 0)
built = sorted(p.name for p in out.glob("*.html"))
test_eq(set(built), {page_name(n) for n in site_notebooks(".")})
assert shot.stat().st_size > 10_000, shot.stat().st_size
shutil.rmtree(out.parent)
