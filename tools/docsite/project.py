"The project the site documents: its settings, its notebooks in reading order, nbdev's processing of them."
from __future__ import annotations

import configparser
import json
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hifigan_ruslan.errors import UserError


@dataclass(frozen=True)
class SiteInfo:
    "What the site needs to know about the project, read from `settings.ini`."
    title: str
    description: str
    doc_url: str  # the published site: `doc_host` + `doc_baseurl`
    repo_url: str
    root: Path  # the folder of settings.ini
    nbs_path: Path

    @classmethod
    def from_settings(cls, start: Path | str = ".") -> SiteInfo:
        "Read the `settings.ini` in `start` or the nearest folder above it."
        start = Path(start).resolve()
        candidates = [d / "settings.ini" for d in [start, *start.parents]]
        ini = next((c for c in candidates if c.is_file()), None)
        if ini is None:
            raise UserError(f"{start}: no settings.ini here or above: run it in a checkout of the repository")
        cfg = configparser.ConfigParser(delimiters=["="], interpolation=None)
        cfg.read(ini, encoding="utf-8")
        d = cfg["DEFAULT"]
        return cls(title=d.get("title", d.get("lib_name", "docs")),
                   description=d.get("description", ""),
                   doc_url=(d.get("doc_host", "") + d.get("doc_baseurl", "")).rstrip("/"),
                   repo_url=d.get("git_url", ""),
                   root=ini.parent,
                   nbs_path=ini.parent / d.get("nbs_path", "nbs"))


_re_number = re.compile(r"^(\d+)([a-z]?)_")


def notebook_number(name: str) -> str | None:
    "The number a notebook's name starts with, letter included (`01_mel.ipynb` -> `01`, `05a_x` -> `05a`), or `None`."
    m = _re_number.match(name)
    return m.group(1) + m.group(2) if m else None


def _reading_key(name: str) -> tuple:
    m = _re_number.match(name)
    if name == "index.ipynb":
        return (0, 0, "", name)
    if m is not None:  # by number, then the siblings by letter: 05, 05a, 05b
        return (1, int(m.group(1)), m.group(2), name)
    return (2, 0, "", name)


def reading_order(names: list[str]) -> list[str]:
    "Notebook names in reading order: `index.ipynb`, numbered notebooks by number, then the others by name."
    return sorted(names, key=_reading_key)


def site_notebooks(nbs_path: Path | str) -> list[str]:
    "The notebooks of the site (those directly in `nbs_path` not starting with `_` or `.`), in reading order."
    names = [p.name for p in Path(nbs_path).glob("*.ipynb") if not p.name.startswith(("_", "."))]
    return reading_order(names)


def page_name(notebook: str) -> str:
    "The page a notebook becomes, as nbdev names it: `01_mel.ipynb` -> `mel.html` (number prefix dropped)."
    stem = re.sub(r"^\d+[a-zA-Z0-9]*_", "", notebook.lower()).rsplit(".", 1)[0]
    return stem + ".html"


@contextmanager
def working_dir(path: Path):
    "Run the body in `path`, then go back to the folder we came from."
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextmanager
def quiet_warnings():
    "No warnings, here and in the worker processes started meanwhile (nbdev warns about every mixed cell)."
    old_env = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        if old_env is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = old_env


def notebook_title(path: Path) -> str:
    "The `# Title` of a notebook's first Markdown cell (what nbdev's errors call the notebook)."
    for cell in json.loads(path.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"^#\s+(.+?)\s*$", "".join(cell.get("source", "")), re.M)
            return m.group(1) if m else ""
    return ""


_re_error_line = re.compile(r"^\w+(Error|Exception|Exit)(: |$)")


def _cell_error(cause: BaseException) -> str:
    "The last `SomeError: message` line of the error in a cell (from a worker process: its traceback's text)."
    lines = [line for line in str(cause).splitlines()
             if _re_error_line.match(line) and not line.startswith("Exception: Error in notebook")]
    if lines:
        return lines[-1]
    return f"{type(cause).__name__}: {cause}".splitlines()[0]


def processing_error(e: Exception, nbs_path: Path) -> str:
    "One line from nbdev's processing error: which notebook and cell, and the underlying error."
    text = str(e).strip()
    where = text.splitlines()[0].rstrip(" :") if text else type(e).__name__
    m = re.search(r"Error in notebook: (.*?) in cell (\d+)", text)
    if m:
        names = [n for n in site_notebooks(nbs_path) if notebook_title(nbs_path / n) == m.group(1)]
        where = f"{names[0] if names else m.group(1)}, cell {m.group(2)}"
    detail = f": {_cell_error(e.__cause__)}" if e.__cause__ is not None else ""
    return (f"nbdev could not process {where} for the docs{detail} (nbdev runs every cell that contains "
            "an import while rendering the docs; keep imports in their own cells)")


def process_notebooks(info: SiteInfo, n_workers: int | None = None) -> Path:
    "Process the notebooks as `nbdev_proc_nbs` does (without installing Quarto); returns the `_proc` folder."
    from nbdev.serve import proc_nbs
    if n_workers is None:
        n_workers = min(os.cpu_count() or 1, 4)
    # From the notebooks' folder, like nbdev_test, so that their relative paths (testdata/...) resolve.
    with working_dir(info.nbs_path), quiet_warnings():
        try:
            return Path(proc_nbs(info.nbs_path, n_workers=n_workers))
        except Exception as e:
            raise UserError(processing_error(e, info.nbs_path)) from e
