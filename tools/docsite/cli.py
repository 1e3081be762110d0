"`python tools/docsite`: build the docs site without Quarto, check it in a browser, or write README.md."
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hifigan_ruslan.errors import UserError

from .browser import check_site
from .project import SiteInfo
from .readme import write_readme
from .build import build_site

PROG = "python tools/docsite"


def missing_modules(names: list[str]) -> list[str]:
    "Those of the modules `names` that cannot be imported."
    missing = []
    for name in names:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Build the documentation as a static HTML site "
                                "(no Quarto needed) from the processed notebooks.")
    p.add_argument("--out", default=None, help="folder for the site (default: _site in the repository)")
    p.add_argument("--readme", action="store_true",
                   help="only write README.md from nbs/index.ipynb (no site)")
    p.add_argument("--check", action="store_true",
                   help="open every page in headless Chromium and report broken parts")
    p.add_argument("--screenshot", default=None,
                   help="with --check: where to save a screenshot of the index page "
                        "(default: artifacts/docs-index.png in the repository)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for nbdev's processing (default: up to 4)")
    return p


def _check(site: Path, screenshot: Path) -> int:
    result = check_site(site, screenshot)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"checked {result.pages} pages in headless Chromium: {result.images} images, {result.audio} audio "
          f"players, {result.links} internal links, {len(result.problems)} problems, {len(result.warnings)} "
          f"warnings; screenshot {screenshot}")
    return 1 if result.problems else 0


def run(args: argparse.Namespace) -> int:
    "Do what the parsed `args` ask; returns the exit status."
    needed = ["nbdev", "nbconvert", "nbformat"] + (["playwright"] if args.check else [])
    missing = missing_modules(needed)
    if missing:
        raise UserError(f"building the docs needs the dev extras (missing: {', '.join(missing)}); "
                        'install them with: pip install -e ".[dev]"')
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers {args.workers}: must be 0 or more")
    info = SiteInfo.from_settings()
    if args.readme:
        print(f"wrote {write_readme(info)}")
        return 0
    report = build_site(args.out or info.root / "_site", info, args.workers)
    for missing_file in report.missing:
        print(f"warning: missing file referenced by {missing_file}", file=sys.stderr)
    print(f"wrote {len(report.pages)} pages and {len(report.files)} files to {report.out}; "
          f"open {report.out / 'index.html'}")
    if not args.check:
        return 0
    return _check(report.out, Path(args.screenshot or info.root / "artifacts" / "docs-index.png"))


def main(argv: list[str] | None = None) -> int:
    "The command line: a mistake the user can fix is one line on stderr and exit status 2."
    args = parser().parse_args(argv)
    try:
        return run(args)
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
