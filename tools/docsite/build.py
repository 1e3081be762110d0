"The whole site: every processed notebook rendered, and the files the pages refer to copied next to them."
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from hifigan_ruslan.errors import UserError

from .markdown import notebook_for_page
from .pages import page_from_notebook, render_page
from .project import SiteInfo, page_name, process_notebooks, site_notebooks


@dataclass
class SiteReport:
    "What `build_site` wrote."
    out: Path
    pages: list[str]
    files: list[str]
    missing: list[str]  # `page: file` for each referenced file that does not exist


def _check_out_folder(out: Path, proc_dir: Path, info: SiteInfo):
    "The site gets a folder of its own: writing pages into the repository or the notebooks would mix them in."
    for forbidden in (info.root.resolve(), info.nbs_path.resolve(), proc_dir):
        if out == forbidden:
            raise UserError(f"--out {out}: choose a folder of its own for the site, not {forbidden}")


def _page_names(proc_dir: Path, names: list[str]) -> dict[str, str]:
    "The page of each notebook (its front matter's `output-file`, else nbdev's name for it)."
    import nbformat
    page_of = {}
    for name in names:
        front = notebook_for_page(nbformat.read(proc_dir / name, as_version=4))[0]
        page_of[name] = front.get("output-file") or page_name(name)
    return page_of


def _source_file(relative: str, folders: list[Path]) -> Path | None:
    "The first existing file `relative` inside one of `folders` (never a path that leads outside it)."
    for folder in folders:
        candidate = folder / relative
        if candidate.resolve().is_relative_to(folder) and candidate.is_file():
            return candidate
    return None


def render_site(proc_dir: Path | str, out: Path | str, info: SiteInfo) -> SiteReport:
    "Render the processed notebooks in `proc_dir` into the static site `out`."
    proc_dir = Path(proc_dir).resolve()
    out = Path(out).resolve()
    _check_out_folder(out, proc_dir, info)
    names = site_notebooks(proc_dir)
    if not names:
        raise UserError(f"{proc_dir}: no notebooks to render")
    page_of = _page_names(proc_dir, names)  # first: links between pages need all the names
    pages = [page_from_notebook(proc_dir / name, page_of, info.doc_url) for name in names]
    out.mkdir(parents=True, exist_ok=True)
    copied = set()
    missing = []
    for page in pages:
        (out / page.name).write_text(render_page(page, pages, info), encoding="utf-8")
        for relative in sorted(page.files):
            src = _source_file(relative, [proc_dir, info.nbs_path.resolve()])
            if src is None:
                missing.append(f"{page.notebook}: {relative}")
                continue
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out / relative)
            copied.add(relative)
    return SiteReport(out, [p.name for p in pages], sorted(copied), missing)


def build_site(out: Path | str, info: SiteInfo | None = None, n_workers: int | None = None) -> SiteReport:
    "Process the notebooks (as `nbdev_proc_nbs` does) and render them into the static site `out`."
    info = info or SiteInfo.from_settings()
    return render_site(process_notebooks(info, n_workers), out, info)
