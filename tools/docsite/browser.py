"The built site in headless Chromium, through Playwright: every page loads; its images, sounds, links work."
from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hifigan_ruslan.errors import UserError

# Root needs --no-sandbox. The rest switches off what needs a GPU or the network (updates, sync, QUIC): in a
# sandbox without network their attempts only produce errors.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--mute-audio", "--hide-scrollbars")


def find_chromium() -> str:
    "The Chromium executable: `$CHROMIUM`, else `chromium`, `chromium-browser` or `google-chrome` (PATH)."
    names = ["chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"]
    candidates = [os.environ.get("CHROMIUM"), *names]
    for candidate in candidates:
        path = shutil.which(candidate) if candidate else None
        if path:
            return path
    raise UserError("no Chromium found: install it (Debian: apt-get install chromium) or set CHROMIUM to it")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass  # one line per request would bury the results


@contextmanager
def serve_directory(path: Path | str):
    "Serve `path` over HTTP on 127.0.0.1 (a free port) in a thread; yields the base URL."
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


# What the page got: images with their decoded size, audio once its metadata loaded (or failed), links, ids.
PAGE_FACTS_JS = """
async () => {
  const media = [...document.querySelectorAll('audio, video')];
  const settle = a => new Promise(done => {
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
    setTimeout(done, 5000);
    a.preload = 'metadata';
    a.load();
  });
  await Promise.all(media.map(settle));
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  const sources = a => [a.getAttribute('src') ? a.src : null,
                        ...[...a.querySelectorAll('source')].map(s => s.src)];
  return {
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, w: i.naturalWidth,
                                           h: i.naturalHeight})),
    audio: media.map(a => ({srcs: sources(a).filter(Boolean), duration: a.duration,
                            error: a.error && a.error.code})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    text: document.body ? document.body.innerText.length : 0,
  };
}
"""


@dataclass
class PageErrors:
    "What the browser reports as errors while a page loads: console errors, exceptions, failed requests."
    messages: list[str] = field(default_factory=list)

    def on_console(self, message):
        # A failed load is also a console error; the request handlers below report it with its URL.
        if message.type in ("error", "assert") and not message.text.startswith("Failed to load resource"):
            self.messages.append(f"console: {message.text}")

    def on_page_error(self, error):
        self.messages.append(f"exception: {error.name}: {error.message}".splitlines()[0])

    def on_request_failed(self, request):
        # ERR_ABORTED: the page cancelled the request itself (a media element retrying, the page closing).
        if request.failure != "net::ERR_ABORTED":
            self.messages.append(f"failed request: {request.url} ({request.failure})")

    def on_response(self, response):
        if response.status >= 400:
            self.messages.append(f"failed request: {response.url} (HTTP {response.status})")

    def listen_to(self, page):
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)
        page.on("requestfailed", self.on_request_failed)
        page.on("response", self.on_response)


@dataclass
class SiteCheck:
    "What `check_site` found: counts over all pages, `problems` (empty when all is well) and `warnings`."
    pages: int = 0
    images: int = 0
    audio: int = 0
    links: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_site_file(url: str, site: Path, base: str) -> bool:
    return url.startswith(base) and (site / unquote(urlsplit(url).path).lstrip("/")).is_file()


def _page_problems(name: str, facts: dict, site: Path, base: str) -> list[str]:
    "Problems visible in one page's facts: no text, images without a size, audio that cannot be played."
    problems = [f"{name}: the page is empty"] if facts["text"] == 0 else []
    unsized = [image for image in facts["images"] if not (image["w"] and image["h"])]
    problems += [f"{name}: image {image['src'][:80]} has no size" for image in unsized]
    for audio in facts["audio"]:
        if not audio["srcs"]:
            problems.append(f"{name}: an audio element has no source")
        for src in audio["srcs"]:
            if src.startswith("data:") and len(src.partition(",")[2]) < 100:
                problems.append(f"{name}: audio data URI is empty")
            elif not src.startswith("data:") and not _is_site_file(src, site, base):
                problems.append(f"{name}: audio {src} is not a file of the site")
        if audio["error"] is not None or not audio["duration"]:
            first = (audio["srcs"] or ["?"])[0][:80]
            problems.append(f"{name}: audio {first} cannot be played (error {audio['error']})")
    return problems


def _check_links(facts: dict[str, dict], site: Path, base: str, result: SiteCheck):
    "Every link inside the site must reach a file; a missing `#anchor` on an existing page is only a warning."
    anchor_warnings = set()
    for name, page_facts in facts.items():
        for link in page_facts["links"]:
            if not link.startswith(base):
                continue
            result.links += 1
            path = unquote(urlsplit(link).path).lstrip("/") or "index.html"
            fragment = urlsplit(link).fragment
            if (site / path).is_dir():
                path = path.rstrip("/") + "/index.html"
            if not (site / path).is_file():
                result.problems.append(f"{name}: link to missing {path}")
            elif fragment and path in facts and unquote(fragment) not in facts[path]["ids"]:
                anchor_warnings.add(f"{name}: link to missing anchor {path}#{fragment}")
    result.warnings = sorted(anchor_warnings)


def _open_page(browser, url: str, errors: PageErrors, timeout: float):
    "A new page at `url`, 1280x900, listened to by `errors`; returns `(page, problem or None)`."
    from playwright.sync_api import Error as PlaywrightError
    page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page.set_default_timeout(timeout * 1000)
    errors.listen_to(page)
    try:
        response = page.goto(url, wait_until="load")
    except PlaywrightError as e:
        return page, f"does not load ({e.message.splitlines()[0]})"
    if response is None or not response.ok:
        return page, f"does not load (HTTP {response.status if response else '?'})"
    return page, None


def _check_site_in_thread(site: Path, screenshot: Path | None, chromium: str, timeout: float) -> SiteCheck:
    from playwright.sync_api import sync_playwright
    pages = sorted(p.name for p in site.glob("*.html"))
    pages.remove("index.html")
    pages.insert(0, "index.html")
    result = SiteCheck()
    facts = {}
    with serve_directory(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS),
                                             timeout=timeout * 1000)
        for name in pages:
            errors = PageErrors()
            page, problem = _open_page(browser, base + name, errors, timeout)
            if problem is None:
                facts[name] = page.evaluate(PAGE_FACTS_JS)
                if name == "index.html" and screenshot:
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(screenshot))
                result.problems += _page_problems(name, facts[name], site, base)
            else:
                result.problems.append(f"{name}: {problem}")
            page.close()
            result.problems += [f"{name}: {m}" for m in errors.messages]
        browser.close()
    _check_links(facts, site, base, result)
    result.pages = len(facts)
    result.images = sum(len(f["images"]) for f in facts.values())
    result.audio = sum(len(f["audio"]) for f in facts.values())
    result.problems = list(dict.fromkeys(result.problems))
    return result


def check_site(site: Path | str, screenshot: Path | str | None = None, chromium: str | None = None,
               timeout: float = 30.0) -> SiteCheck:
    "Open every page of `site` in headless Chromium and report what is broken."
    site = Path(site).resolve()
    if not (site / "index.html").is_file():
        raise UserError(f"{site}: no index.html (is this a built site?)")
    shot = Path(screenshot) if screenshot else None
    # Playwright's synchronous API refuses a thread that runs an asyncio loop (a Jupyter kernel's does).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_check_site_in_thread, site, shot, chromium or find_chromium(), timeout).result()
