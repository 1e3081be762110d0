# %% [markdown]
# # Kaggle runs
#
# > The Kaggle client and kernel end to end: the real `kaggle` client against a stand-in for Kaggle on the loopback interface, the kernel built from an installed wheel, and the generated notebook executed as Kaggle runs it.

# %% [markdown]
# The reference pages, [Kaggle session](12_kaggle_session.ipynb), [Kaggle kernel](12a_kaggle_kernel.ipynb) and [Kaggle client](12b_kaggle_client.ipynb), test their functions on small folders. This page runs them the way a user does: `push`, `status` and `output` through the real `kaggle` client, and the kernel notebook executed in a Jupyter kernel, with Kaggle's folders in temporary ones. Nothing here reaches the network.

# %%
import base64, contextlib, hashlib, http.server, io, json, os, shutil, subprocess, sys, tempfile, threading
from pathlib import Path
from unittest import mock
import nbformat
from fastcore.basics import patch
from fastcore.test import test_eq, test_ne
from hifigan_ruslan.config import UserError
from hifigan_ruslan.kaggle_client import (download_output, kernel_status, output_message, push_kernel,
                                          push_message)
from hifigan_ruslan.kaggle_kernel import (KERNEL_NOTEBOOK, METADATA_FILE, OWNER_ENV, SLUG_ENV, build_kernel,
                                          build_notebook, checkout_root, embedded_modules, package_dir)
from hifigan_ruslan.kaggle_session import MANIFEST_FILE, write_manifest
from hifigan_ruslan.pretrained import PRETRAINED, pretrained_path

# %%
repo = checkout_root()
mods = embedded_modules()
pkg = package_dir()
text = build_notebook()

# %% [markdown]
# ## A stand-in for Kaggle
#
# The tests run the real `kaggle` CLI, but against a small HTTP server on the loopback interface: with `KAGGLE_API_ENVIRONMENT=LOCALHOST` the CLI sends its requests to `http://localhost`. For a push, the CLI validates the folder first (title, code file, language, kernel type, source names), so a push that reaches the server has passed Kaggle's own checks; the server then records what Kaggle would have received. Each API method gets a canned answer: a JSON object, an HTTP status, or a list of them answered in turn (the last one repeats), which is how a first push can be refused and the second accepted. Uploads (`PUT`) are recorded by size and SHA-256, and `GET /files/X` downloads `files[X]`. Credentials are fakes in the environment, with `HOME` and the Kaggle config folder pointed at an empty temporary folder, so no real credentials are read or touched.

# %%
STUB_KEY = "stub-key-0123456789"

def stub_env(home, owner: str) -> dict:
    "An environment for the kaggle CLI with fake credentials, an empty home and the API pointed at localhost."
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_") and "proxy" not in k.lower()}
    env.update(HOME=str(home), KAGGLE_CONFIG_DIR=str(Path(home) / ".kaggle"), XDG_CONFIG_HOME=str(home),
               NO_PROXY="*", KAGGLE_USERNAME=owner, KAGGLE_KEY=STUB_KEY,
               KAGGLE_API_ENVIRONMENT="LOCALHOST", **{OWNER_ENV: owner})
    return env


# %% [markdown]
# The server's handler answers each request from its table of replies. An answer is a JSON object (status 200), a bare HTTP status, or a list of them answered in turn; the client sends its uploads in chunks, which `body` reassembles:

# %%
class StubKaggle(http.server.BaseHTTPRequestHandler):
    "Answers `.../METHOD` from `replies[METHOD]` and `PUT PATH` from `replies['PUT PATH']`; records requests."
    replies, files, received = {}, {}, []

    def answer(self, reply):
        if isinstance(reply, list):
            reply = reply.pop(0) if len(reply) > 1 else reply[0]
        status, data = (reply, b"{}") if isinstance(reply, int) else (200, json.dumps(reply).encode())
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().strip(), 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def log_message(self, *args):
        pass


# %% [markdown]
# API calls arrive as `POST .../Service/METHOD` and are answered by `METHOD`; uploads (`PUT`) are recorded by their size and SHA-256, and downloads (`GET /files/NAME`) serve `files[NAME]`:

# %%
@patch
def do_POST(self: StubKaggle):
    body = self.body()
    self.received.append({"path": self.path, "body": json.loads(body or b"{}"),
                          "authorization": self.headers.get("Authorization")})
    self.answer(self.replies.get(self.path.rsplit("/", 1)[-1], 404))

@patch
def do_PUT(self: StubKaggle):
    data = self.body()
    self.received.append({"path": f"PUT {self.path}", "size": len(data),
                          "sha256": hashlib.sha256(data).hexdigest()})
    self.answer(self.replies.get(f"PUT {self.path}", 404))

@patch
def do_GET(self: StubKaggle):
    data = self.files.get(self.path.removeprefix("/files/"))
    self.send_response(404 if data is None else 200)
    self.send_header("Content-Length", str(len(data or b"")))
    self.end_headers()
    self.wfile.write(data or b"")


# %% [markdown]
# `kaggle_stub` serves one table of replies on 127.0.0.1 for the length of a `with` block, with the stub environment in `os.environ`, and yields the list of requests it received:

# %%
@contextlib.contextmanager
def kaggle_stub(replies: dict, files: dict | None = None, owner: str = "stub-user", port: int = 80):
    "A stand-in Kaggle API on 127.0.0.1:`port`, the stub environment in `os.environ`; yields the requests."
    handler = type("Handler", (StubKaggle,), {"replies": replies, "files": files or {}, "received": []})
    http.server.ThreadingHTTPServer.allow_reuse_address = True  # a re-run right after this one can bind again
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as home:
            with mock.patch.dict(os.environ, stub_env(home, owner), clear=True):
                yield handler.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# %% [markdown]
# Two helpers read what a call printed and what the server received:

# %%
def printed(f) -> tuple[object, str]:
    "`(f(), what it printed)`; an exception's message is the result when `f` raises a `UserError`."
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            result = f()
        except UserError as e:
            result = e
    return result, out.getvalue()

def sent(received, method: str) -> list[dict]:
    "The bodies of the recorded requests of one API method."
    return [r["body"] for r in received if r["path"].endswith("/" + method)]

KERNEL = "stub-user/hifigan-ruslan-train"
SAVED = {"ref": f"/code/{KERNEL}", "versionNumber": 1, "kernelId": 1,
         "url": f"https://www.kaggle.com/code/{KERNEL}"}

# %% [markdown]
# A push that Kaggle accepts, self-reference included:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({"SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip())
    test_eq(rc, 0)
    test_eq(log.splitlines()[0], push_message(KERNEL, len(embedded_modules())))
    [req] = [r for r in received if r["path"].endswith("/kernels.KernelsApiService/SaveKernel")]
    body = req["body"]
    print({k: v for k, v in body.items() if k != "text"})
    test_eq(base64.b64decode(req["authorization"].split()[1]).decode(), f"stub-user:{STUB_KEY}")
    test_eq(body["slug"], KERNEL)
    test_eq(body["newTitle"], "Hifigan Ruslan Train")
    test_eq(body["language"], "python")
    test_eq(body["kernelType"], "notebook")
    test_eq(body["machineShape"], "NvidiaTeslaT4")
    assert body["enableGpu"]
    assert not body["enableInternet"]
    assert body["isPrivate"]
    test_eq(body["datasetDataSources"], ["freezerainml/ruslan"])
    test_eq(body["kernelDataSources"], [KERNEL])
    built = json.loads((scratch / KERNEL_NOTEBOOK).read_text())
    cells = [c["source"] for c in json.loads(body["text"])["cells"]]
    test_eq(cells, ["".join(c["source"]) for c in built["cells"]])  # the notebook, as built
    test_eq(json.loads((scratch / METADATA_FILE).read_text())["id"], KERNEL)

# %% [markdown]
# The first push, both ways Kaggle may answer it. It accepts the version but not the self-reference (a warning), or it refuses the push; the kernel does not exist (status 404), so the push goes once more without the self-reference, and the kernel root keeps its metadata with it for the next push:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    warned = {**SAVED, "invalidKernelSources": [KERNEL]}
    with kaggle_stub({"SaveKernel": warned}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip().splitlines()[-1])
    test_eq(rc, 0)
    assert f"first version of {KERNEL}: it runs without" in log, log
    test_eq(len(sent(received, "SaveKernel")), 1)

    refused = {"error": f"Kernel source {KERNEL} not found"}
    with kaggle_stub({"SaveKernel": [refused, SAVED], "GetKernelSessionStatus": 404}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip())
    pushes = sent(received, "SaveKernel")
    test_eq(rc, 0)
    test_eq([p.get("kernelDataSources", []) for p in pushes], [[KERNEL], []])
    test_eq(pushes[1]["text"], pushes[0]["text"])  # the same notebook
    test_eq(json.loads((scratch / METADATA_FILE).read_text())["kernel_sources"], [KERNEL])

    # a refusal of a kernel that exists is not about the self-reference: it is the error, and not retried
    with kaggle_stub({"SaveKernel": {"error": "Notebook not found"},
                      "GetKernelSessionStatus": {"status": "COMPLETE"}}) as received:
        error, log = printed(lambda: push_kernel(scratch))
    print(error)
    test_eq(str(error), f"kaggle kernels push {KERNEL}: Kernel push error: Notebook not found")
    test_eq(len(sent(received, "SaveKernel")), 1)

# %% [markdown]
# `status`, and `output` with its manifest check: a complete download, then one that lost a file and received another corrupted. The check names each, ends with a summary, and the status is 1:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({"GetKernelSessionStatus": {"status": "COMPLETE"}}) as received:
        rc, log = printed(lambda: kernel_status(KERNEL))
    print(log.strip())
    test_eq(rc, 0)
    assert "COMPLETE" in log.upper()
    test_eq(received[0]["body"]["kernelSlug"], "hifigan-ruslan-train")
    working = scratch / "working"
    (working / "run").mkdir(parents=True)
    (working / "RESULTS.md").write_text("# Training results\n")
    (working / "run/metrics.csv").write_text("step,val_mel_l1\n10,1.5\n")
    (working / "run/g_00000010").write_bytes(bytes(range(256)))
    write_manifest(working)
    files = {p.relative_to(working).as_posix(): p.read_bytes() for p in working.rglob("*") if p.is_file()}
    listed = [{"fileName": name, "url": f"http://localhost/files/{name}"} for name in files]
    listing = {"ListKernelSessionOutput": {"log": "[]", "files": listed}}
    with kaggle_stub(listing, files=files):
        rc, log = printed(lambda: download_output(KERNEL, scratch / "out"))
    print(log.strip().splitlines()[-2:])
    test_eq(rc, 0)
    test_eq(log.strip().splitlines()[-1], output_message(KERNEL, scratch / "out"))
    test_eq((scratch / "out/run/metrics.csv").read_bytes(), files["run/metrics.csv"])

    damaged = {**files, "RESULTS.md": b"# Training resultz\n"}
    del damaged["run/metrics.csv"]
    listed = [f for f in listed if f["fileName"] in damaged]
    listing = {"ListKernelSessionOutput": {"log": "[]", "files": listed}}
    with kaggle_stub(listing, files=damaged):
        rc, log = printed(lambda: download_output(KERNEL, scratch / "out2"))
    print("\n".join(log.strip().splitlines()[-3:]))
    problems = log.strip().splitlines()[-3:]
    test_eq(rc, 1)
    test_eq(problems[0], "missing: run/metrics.csv (23 bytes)")
    test_eq(problems[2], "1 of 3 files of MANIFEST.json intact, 1 missing, 1 differ")
    assert problems[1].startswith("differs: RESULTS.md (SHA-256")

# %% [markdown]
# ## Transfer through the stand-in
#
# `push --init-from universal` on a new dataset: the CLI asks whether the dataset exists (404), starts a blob upload, uploads the weights, creates the private dataset with the upload's token, waits for it to be ready, and the kernel is pushed with the dataset attached. The weights arrive byte for byte (size and SHA-256 as the server received them):

# %%
weights = pretrained_path("universal")
DATASET = "stub-user/hifigan-ruslan-universal"
upload = {"StartBlobUpload": {"token": "blob-1", "createUrl": "http://localhost/upload/1"},
          "PUT /upload/1": {}}
created = {"ref": DATASET, "url": f"https://www.kaggle.com/datasets/{DATASET}", "status": "ok"}

with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    replies = {**upload, "GetDatasetStatus": [404, {"status": "READY"}], "CreateDataset": created,
               "SaveKernel": SAVED}
    with kaggle_stub(replies) as received:
        rc, log = printed(lambda: push_kernel(scratch, init_from="universal"))
    print("\n".join(line for line in log.splitlines() if "%|" not in line))
    test_eq(rc, 0)
    order = [r["path"].rsplit("/", 1)[-1] for r in received]
    test_eq(order, ["GetDatasetStatus", "StartBlobUpload", "1", "CreateDataset", "GetDatasetStatus",
                    "SaveKernel"])
    [put] = [r for r in received if r["path"] == "PUT /upload/1"]
    test_eq(put["size"], weights.stat().st_size)
    test_eq(put["sha256"], PRETRAINED["universal"].sha256)
    [start], [create] = sent(received, "StartBlobUpload"), sent(received, "CreateDataset")
    test_eq(start["name"], "generator_universal.pth.tar")
    test_eq(start["type"], "DATASET")
    test_eq(create["ownerSlug"], "stub-user")
    test_eq(create["slug"], "hifigan-ruslan-universal")
    assert create["isPrivate"]
    test_eq(create["title"], "HiFi-GAN universal generator")
    test_eq(create["licenseName"], "other")
    test_eq(create["files"], [{"token": "blob-1"}])
    [push] = sent(received, "SaveKernel")
    test_eq(push["datasetDataSources"], ["freezerainml/ruslan", DATASET])
    test_eq(json.loads((scratch / METADATA_FILE).read_text())["dataset_sources"], push["datasetDataSources"])
    assert STUB_KEY not in log, log  # the key is never printed

    # the dataset exists: Kaggle refuses the create before any upload, and the file becomes a new version
    replies = {**upload, "GetDatasetStatus": {"status": "READY"}, "CreateDatasetVersion": created,
               "SaveKernel": SAVED}
    with kaggle_stub(replies) as received:
        rc, log = printed(lambda: push_kernel(scratch, init_from="universal"))
    order = [r["path"].rsplit("/", 1)[-1] for r in received]
    test_eq((rc, order), (0, ["GetDatasetStatus", "StartBlobUpload", "1", "CreateDatasetVersion",
                              "GetDatasetStatus", "SaveKernel"]))
    [version] = sent(received, "CreateDatasetVersion")
    test_eq(version["ownerSlug"], "stub-user")
    test_eq(version["datasetSlug"], "hifigan-ruslan-universal")
    test_eq(version["body"]["files"], [{"token": "blob-1"}])

# %% [markdown]
# Kaggle failing at each step is one line that names the step, and what is left on Kaggle: a refused dataset (nothing pushed), a failed upload (no dataset), a push that fails after the dataset was created (the dataset stays, and says so). The key appears in none of the output:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    quota = {"status": "error", "error": "Quota exceeded"}
    failures = [({**upload, "GetDatasetStatus": 404, "CreateDataset": quota},
                 f"kaggle datasets create {DATASET}: Dataset creation error: Quota exceeded; nothing was"),
                ({**upload, "GetDatasetStatus": 404, "PUT /upload/1": 500},
                 f"kaggle datasets create {DATASET}: Upload unsuccessful: generator_universal.pth.tar"),
                ({**upload, "GetDatasetStatus": [404, {"status": "READY"}], "CreateDataset": created,
                  "SaveKernel": {"error": "Invalid machine shape"},
                  "GetKernelSessionStatus": {"status": "COMPLETE"}},
                 f"kaggle kernels push {KERNEL}: Kernel push error: Invalid machine shape; "
                 f"the dataset {DATASET} stays on Kaggle (a later --init-from push versions it)")]
    for replies, message in failures:
        with kaggle_stub(replies) as received:
            error, log = printed(lambda: push_kernel(scratch, init_from="universal"))
        print(error)
        test_eq(type(error), UserError)
        assert str(error).startswith(message)
        assert STUB_KEY not in log, log
        assert STUB_KEY not in str(error), STUB_KEY
    test_eq(len(sent(received, "SaveKernel")), 1)

# %% [markdown]
# The CLI's own validation is what guards the push: metadata it rejects never reaches a server (none is listening here).

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    build_kernel(scratch, environ={OWNER_ENV: "stub-user"})
    good = json.loads((scratch / METADATA_FILE).read_text())
    for change, message in [({"title": "HiFi"}, "Title must be at least five characters"),
                            ({"dataset_sources": ["ruslan"]}, "Dataset must be specified in the form"),
                            ({"code_file": "kaggle/missing.ipynb"}, "Source file not found")]:
        (scratch / METADATA_FILE).write_text(json.dumps({**good, **change}))
        proc = subprocess.run([sys.executable, "-m", "kaggle", "kernels", "push", "-p", str(scratch)],
                              capture_output=True, text=True, env=stub_env(d, "stub-user"), timeout=60)
        test_ne(proc.returncode, 0)
        assert message in proc.stdout + proc.stderr, message
    print("rejected:", (proc.stdout + proc.stderr).strip().splitlines()[-1])


# %% [markdown]
# ## The kernel from an installed wheel
#
# The build needs nothing but the installed package: a wheel built from this checkout, installed into a folder of its own and imported from there, builds the same kernel in an empty folder, with every module the kernel needs.

# %%
#| slow
def install_wheel(checkout: Path, dest: Path) -> Path:
    "Build a wheel of a copy of `checkout`'s package and install it (no dependencies) into `dest/site`."
    src = dest / "src"
    for name in ["setup.py", "settings.ini", "MANIFEST.in", "README.md"]:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkout / name, src / name)
    shutil.copytree(checkout / "hifigan_ruslan", src / "hifigan_ruslan",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    subprocess.run(pip + ["wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(dest / "wheel")],
                   check=True, capture_output=True, cwd=dest)
    [wheel] = (dest / "wheel").glob("*.whl")
    subprocess.run(pip + ["install", "--no-deps", "--target", str(dest / "site"), str(wheel)],
                   check=True, capture_output=True)
    return dest / "site"

BUILD_ELSEWHERE = """
import json, sys
from pathlib import Path
import hifigan_ruslan
from hifigan_ruslan.kaggle_kernel import build_kernel, embedded_modules
written = build_kernel(Path.cwd(), environ={})
print(json.dumps({"package": hifigan_ruslan.__file__, "written": [str(p) for p in written],
                  "modules": embedded_modules()}))
"""

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    site = install_wheel(repo, d)
    (d / "work").mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env = {k: v for k, v in env.items() if k not in (OWNER_ENV, SLUG_ENV)}
    proc = subprocess.run([sys.executable, "-c", BUILD_ELSEWHERE], capture_output=True, text=True,
                          cwd=d / "work", env=env, timeout=120)
    test_eq(proc.returncode, 0)
    result = json.loads(proc.stdout)
    print(result["package"], [Path(p).relative_to(d / "work").as_posix() for p in result["written"]])
    test_eq(Path(result["package"]).parent, site / "hifigan_ruslan")  # from the wheel, not the checkout
    test_eq(result["modules"], mods)
    test_eq((d / "work" / KERNEL_NOTEBOOK).read_text(), text)  # the same kernel, byte for byte
    test_eq((d / "work" / METADATA_FILE).read_text(), (repo / METADATA_FILE).read_text())
    cells = nbformat.read(d / "work" / KERNEL_NOTEBOOK, as_version=4).cells
    sent = {c["source"].split('"')[1].rsplit("/", 1)[1]: c["source"].split("\n", 1)[1]
            for c in cells if "%%writefile" in c["source"]}
    test_eq(sent, {m: (site / "hifigan_ruslan" / m).read_text() for m in mods})

# %% [markdown]
# ## The kernel, end to end
#
# The generated notebook runs here as it would on Kaggle, with the Kaggle folders redirected to temporary ones through its parameter cell's environment variables, on the bundled small corpus with the `tiny` preset and a few steps (on the CPU, as a single process). The second execution plays the next version of the kernel: the first one's output is mounted among its inputs, as `kernel_sources` does on Kaggle, and it has to resume from it, although a pretrained generator is attached too. The third plays a first version with that generator attached (here the first version's `g_` file under an official file name, since the official generator is a V1 and the test trains `tiny`): it has to fine-tune from it. Every version's output must match its manifest.
#
# The same variables run the notebook on any machine: `HIFIGAN_CORPUS` (a corpus folder or its metadata file; default: search `HIFIGAN_KAGGLE_INPUT`), `HIFIGAN_KAGGLE_INPUT`, `HIFIGAN_KAGGLE_WORKING`, `HIFIGAN_KAGGLE_TEMP`, `HIFIGAN_PRESET`, `HIFIGAN_SESSION_HOURS`, `HIFIGAN_REPORT_MINUTES`, `HIFIGAN_MAX_STEPS`, `HIFIGAN_VAL_SIZE`, `HIFIGAN_TRAIN_SET` (extra `key=value` overrides, separated by spaces), `HIFIGAN_INIT_FROM` (the generator a first version fine-tunes from; default: the `generator_*.pth.tar` among the inputs) and `HIFIGAN_MEL_DIR` (mels of an acoustic model, passed to `train --mel-dir`). A run downloaded with `hifigan-ruslan kaggle output` also continues locally: `hifigan-ruslan train --data PREPARED --out runs/kaggle/run` resumes from its newest checkpoint.

# %%
#| slow
from hifigan_ruslan.checkpoints import resumable_step
from hifigan_ruslan.kaggle_session import check_manifest, ManifestCheck
from hifigan_ruslan.clips import bundled_corpus


# %%
#| slow
def run_kernel(notebook, input_root, session, max_steps: int, **env) -> tuple[str, list[str]]:
    "Execute `notebook` as one Kaggle session under `session` (working/, temp/): what it printed and showed."
    session = Path(session)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("HIFIGAN_")},
           "HIFIGAN_KAGGLE_INPUT": str(input_root), "HIFIGAN_KAGGLE_WORKING": str(session / "working"),
           "HIFIGAN_KAGGLE_TEMP": str(session / "temp"), "HIFIGAN_PRESET": "tiny",
           "HIFIGAN_MAX_STEPS": str(max_steps), "HIFIGAN_VAL_SIZE": "2", **env}
    convert = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--output-dir",
               str(session), "--output", "executed", "--ExecutePreprocessor.timeout=300", str(notebook)]
    proc = subprocess.run(convert, capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
    test_eq(proc.returncode, 0)
    cells = nbformat.read(session / "executed.ipynb", as_version=4).cells
    outputs = [o for c in cells for o in c.get("outputs", [])]
    printed_text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    return printed_text, [mime for o in outputs for mime in o.get("data", {})]


# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    notebook = d / "train.ipynb"
    notebook.write_text(build_notebook())
    shutil.copytree(bundled_corpus(), d / "input/ruslan")
    first, _ = run_kernel(notebook, d / "input", d / "v1", max_steps=1)
    step1 = resumable_step(d / "v1/working/run/checkpoints")
    assert "no previous checkpoint: training from scratch" in first, first
    assert step1 is not None
    assert (d / "v1/working/RESULTS.md").is_file()
    assert check_manifest(d / "v1/working").ok
    ran = {m: (d / "v1/temp/src/hifigan_ruslan" / m).read_bytes() for m in mods}
    test_eq(ran, {m: pkg.joinpath(m).read_bytes() for m in mods})  # the package's own source, byte for byte

    shutil.copytree(d / "v1/working", d / "input/hifigan-ruslan-train")  # the next version sees this output
    (d / "input/universal").mkdir()  # and a pretrained generator is attached as well
    pretrained = d / "input/universal/generator_tiny.pth.tar"
    shutil.copyfile(d / f"v1/working/run/checkpoints/g_{step1:08d}", pretrained)
    # this time with the corpus given explicitly, as when running the notebook on a local corpus
    second, shown = run_kernel(notebook, d / "input", d / "v2", max_steps=2,
                               HIFIGAN_CORPUS=str(d / "input/ruslan"))
    step2 = resumable_step(d / "v2/working/run/checkpoints")
    print("\n".join(line for line in second.splitlines() if line.startswith(("resuming", "done"))))
    assert f"resuming from step {step1}" in second, second
    assert step2 > step1, step2
    assert "--init-from" not in second, second  # resuming wins over the pretrained generator
    assert shown.count("image/png") >= 2, shown.count("image/png")
    assert shown.count("text/html") >= 2, shown.count("text/html")  # plots, players
    output = [p for p in (d / "v2/working").rglob("*") if p.is_file() and p.name != MANIFEST_FILE]
    test_eq(check_manifest(d / "v2/working"), ManifestCheck(len(output)))
    print((d / "v2/working/RESULTS.md").read_text())

    # a first version with the pretrained generator attached, and no previous output: it fine-tunes from it
    shutil.rmtree(d / "input/hifigan-ruslan-train")
    third, _ = run_kernel(notebook, d / "input", d / "v3", max_steps=1)
    print("\n".join(line for line in third.splitlines() if "fine-tuning" in line or "Initialised" in line))
    assert "no previous checkpoint: fine-tuning from" in third, third
    inits = [line.split()[3] for line in third.splitlines() if line.startswith("Initialised generator from")]
    test_eq([Path(path).name for path in inits], [pretrained.name])
    assert check_manifest(d / "v3/working").ok
