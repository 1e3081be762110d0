"""Development tooling: the documentation site without Quarto, its check in headless Chromium, and README.md.

Not part of the `hifigan_ruslan` package. Run it as `python tools/docsite --out DIR [--check] [--readme]`;
the notebook nbs/docsite.ipynb documents and tests it."""
from .browser import SiteCheck, check_site, find_chromium, serve_directory
from .markdown import cell_options, notebook_for_page, quarto_markdown
from .pages import (Page, local_target, page_from_notebook, pandoc_heading_ids, pandoc_id, render_page,
                    rewrite_links)
from .project import SiteInfo, page_name, process_notebooks, processing_error, reading_order, site_notebooks
from .readme import readme_markdown, readme_text, write_readme
from .build import SiteReport, build_site, render_site

__all__ = ["SiteCheck", "check_site", "find_chromium", "serve_directory", "cell_options",
           "notebook_for_page", "quarto_markdown", "Page", "local_target", "page_from_notebook",
           "pandoc_heading_ids", "pandoc_id", "render_page", "rewrite_links", "SiteInfo", "page_name",
           "process_notebooks", "processing_error", "reading_order", "site_notebooks", "readme_markdown",
           "readme_text", "write_readme", "SiteReport", "build_site", "render_site"]
