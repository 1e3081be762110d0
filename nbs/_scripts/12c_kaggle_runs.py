# %% [markdown]
# # Kaggle runs
#
# > The Kaggle client and kernel end to end: the real `kaggle` client against a stand-in that answers as Kaggle does today, the kernel built from an installed wheel, and the generated notebook executed as Kaggle runs it, through papermill on Kaggle's Jupyter stack.

# %% [markdown]
# The reference pages, [Kaggle session](12_kaggle_session.ipynb), [Kaggle kernel](12a_kaggle_kernel.ipynb) and [Kaggle client](12b_kaggle_client.ipynb), test their functions on small folders. This page runs them the way a user does: `push`, `status` and `output` through the real `kaggle` client, and the kernel notebook executed in a Jupyter kernel, with Kaggle's folders in temporary ones. Nothing here reaches the network.

# %%
import base64, contextlib, hashlib, http.server, io, json, os, re, shutil, subprocess, sys, tempfile
import threading
from pathlib import Path
from unittest import mock
import nbformat
from fastcore.basics import patch
from fastcore.test import test_eq, test_ne
from hifigan_ruslan.errors import UserError
from hifigan_ruslan.kaggle_client import (PREVIOUS_FOLDER, PUSH_FOLDER, download_output, kernel_status,
                                          output_message, push_kernel, push_message)
from hifigan_ruslan.kaggle_kernel import (KERNEL_NOTEBOOK, METADATA_FILE, OWNER_ENV, SLUG_ENV, build_kernel,
                                          build_notebook, checkout_root, embedded_modules, package_dir)
from hifigan_ruslan.kaggle_session import (MANIFEST_FILE, SESSION_FILE, SMOKE, SessionReport, SessionSettings,
                                           session_timeout_s)
from hifigan_ruslan.pretrained import PRETRAINED, pretrained_path

# %%
repo = checkout_root()
mods = embedded_modules()
pkg = package_dir()

# %% [markdown]
# ## A stand-in for Kaggle
#
# The tests run the real `kaggle` CLI (2.2.5), but against a small HTTP server on the loopback interface: with `KAGGLE_API_ENVIRONMENT=LOCALHOST` the CLI sends its requests to `http://localhost`. The server answers the way Kaggle answers today, not the way one would guess: the status of a kernel that was never pushed is refused with 403 (404 on older servers), a push is accepted with the sources Kaggle could not attach listed in its answer (`invalidDatasetSources`, `invalidKernelSources`), and a version goes through `QUEUED`, `RUNNING`, then `COMPLETE`, `ERROR` or `CANCEL_ACKNOWLEDGED`. For a push, the CLI validates the folder first (title, code file, language, kernel type, source names), so a push that reaches the server has passed Kaggle's own checks; the server then records what Kaggle would have received. Each API method gets a canned answer: a JSON object, an HTTP status, or a list of them answered in turn (the last one repeats), which is how a first push can be refused and the second accepted. Uploads (`PUT`) are recorded by size and SHA-256, and `GET /files/X` downloads `files[X]`. Credentials are fakes in the environment, with `HOME` and the Kaggle config folder pointed at an empty temporary folder, so no real credentials are read or touched.

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
# API calls arrive as `POST .../Service/METHOD` and are answered by `METHOD`; uploads (`PUT`) are recorded by their size and SHA-256, and downloads (`GET /files/NAME`) serve `files[NAME]` (a table of replies can bring its own files under the key `GET`):

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
    files = {**replies.get("GET", {}), **(files or {})}
    handler = type("Handler", (StubKaggle,), {"replies": replies, "files": files, "received": []})
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
# ## Pushing
#
# Every push first asks for the status of the kernel's latest version. The very first push finds no kernel: Kaggle refuses the status (403 today, 404 on older servers), the push asks for the account's own kernels, which do not include it, and the version goes without the kernel itself among the inputs, and says so. The notebook it sends is the one it wrote to `runs/kaggle-push/`, with the settings of a first full session and the session's time limit (`sessionTimeoutSeconds`: 11 h 15 min); the kernel root gets the default build:

# %%
def pushed_settings(push: dict) -> SessionSettings:
    "The settings written into the notebook of a recorded `SaveKernel` request."
    cells = ["".join(c["source"]) for c in json.loads(push["text"])["cells"]]
    namespace = {}
    exec(next(c for c in cells if c.startswith("SETTINGS = {")), namespace)
    return SessionSettings.from_dict(namespace["SETTINGS"])

def report_files(outcome: str) -> dict:
    "Replies and files of a version's output holding the report of a session with `outcome`."
    files = {SESSION_FILE: json.dumps({"kernel": KERNEL, "outcome": outcome}).encode(),
             "RESULTS.md": f"# Training results\n\nOutcome: {outcome}\n".encode(),
             "run/metrics.csv": b"step,val_mel_l1\n10,1.5\n"}
    listed = [{"fileName": name, "url": f"http://localhost/files/{name}"} for name in files]
    return {"ListKernelSessionOutput": {"log": "[]", "files": listed}, "GET": files}

OWN_NONE = {"ListKernels": {"kernels": []}}  # the account's own kernels: none yet
NEW = {"GetKernelSessionStatus": 403, **OWN_NONE}  # the kernel does not exist yet: Kaggle says 403 today
COMPLETE = {"GetKernelSessionStatus": {"status": "COMPLETE"},
            **report_files("complete: Stopped at step 40 (max steps)")}

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({**NEW, "SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip())
    test_eq(rc, 0)
    test_eq([r["path"].rsplit("/", 1)[-1] for r in received],
            ["GetKernelSessionStatus", "ListKernels", "SaveKernel"])
    [listing] = sent(received, "ListKernels")
    test_eq(listing["group"], "PROFILE")  # --mine: the account's own kernels
    [req] = [r for r in received if r["path"].endswith("/kernels.KernelsApiService/SaveKernel")]
    body = req["body"]
    print({k: v for k, v in body.items() if k != "text"})
    test_eq(base64.b64decode(req["authorization"].split()[1]).decode(), f"stub-user:{STUB_KEY}")
    test_eq((body["slug"], body["newTitle"], body["language"], body["kernelType"], body["machineShape"]),
            (KERNEL, "Hifigan Ruslan Train", "python", "notebook", "NvidiaTeslaT4"))
    assert body["enableGpu"] and body["isPrivate"] and not body["enableInternet"], body
    test_eq((body["datasetDataSources"], body.get("kernelDataSources", [])), (["freezerainml/ruslan"], []))
    staged = json.loads((scratch / PUSH_FOLDER / KERNEL_NOTEBOOK).read_text())
    cells = [c["source"] for c in json.loads(body["text"])["cells"]]
    test_eq(cells, ["".join(c["source"]) for c in staged["cells"]])  # the notebook, as staged
    test_eq(pushed_settings(body), SessionSettings(kernel=KERNEL))
    test_eq(body["sessionTimeoutSeconds"], session_timeout_s(SessionSettings()))  # 11 h 15 min
    test_eq(log.splitlines()[0], push_message(KERNEL, SessionSettings(kernel=KERNEL), len(mods)))
    assert f"first version of {KERNEL}: it starts without a previous output" in log, log
    root_meta = json.loads((scratch / METADATA_FILE).read_text())
    test_eq(root_meta["kernel_sources"], [KERNEL])  # the kernel root holds the default build

# %% [markdown]
# The same first push against an older server (404), then the refusals that are not "no kernel yet", each one line with nothing pushed: a kernel the account owns whose status is refused all the same, and credentials Kaggle does not accept (401, for the status and the list alike). Credentials of another user are caught before any request (see [Kaggle client](12b_kaggle_client.ipynb)).

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({"GetKernelSessionStatus": 404, **OWN_NONE, "SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    test_eq((rc, len(sent(received, "SaveKernel"))), (0, 1))
    assert f"first version of {KERNEL}" in log, log
    owned = {"ListKernels": {"kernels": [{"ref": KERNEL, "title": "Hifigan Ruslan Train"}]}}
    for replies, message in [({"GetKernelSessionStatus": 403, **owned},
                              f"kaggle kernels status {KERNEL}: Cannot access kernel '{KERNEL}' (Permission "
                              "'kernels.get' was denied)"),
                             ({"GetKernelSessionStatus": 401, "ListKernels": 401},
                              "kaggle kernels list --mine: Kaggle refused the credentials (401)")]:
        with kaggle_stub({**replies, "SaveKernel": SAVED}) as received:
            error, log = printed(lambda: push_kernel(scratch))
        print(error)
        test_eq(type(error), UserError)
        assert str(error).startswith(message) and str(error).endswith("nothing was pushed"), error
        test_eq(sent(received, "SaveKernel"), [])

# %% [markdown]
# The next push finds the first version complete, and its session complete too (the push downloads only `SESSION.json` and `RESULTS.md` of its output, into `runs/kaggle-previous/`): it attaches the kernel's own output and pins it in the settings, so that the new version stops if that output is not mounted. With `--fresh` it starts a new run. When Kaggle does not attach the output after all, the push warns:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub({**COMPLETE, "SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip())
    [body] = sent(received, "SaveKernel")
    test_eq((rc, body["kernelDataSources"], pushed_settings(body).previous), (0, [KERNEL], KERNEL))
    test_eq(sorted(p.name for p in (scratch / PREVIOUS_FOLDER).iterdir() if p.suffix != ".log"),
            ["RESULTS.md", SESSION_FILE])
    with kaggle_stub({**COMPLETE, "SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch, fresh=True))
    settings = pushed_settings(sent(received, "SaveKernel")[0])
    test_eq((settings.previous, settings.fresh), ("", True))
    refused_source = {**SAVED, "invalidKernelSources": [KERNEL]}
    with kaggle_stub({**COMPLETE, "SaveKernel": refused_source}) as received:
        rc, log = printed(lambda: push_kernel(scratch))
    print(log.strip().splitlines()[-1])
    assert f"warning: Kaggle did not attach the previous output of {KERNEL}" in log, log

# %% [markdown]
# A version still running, one that Kaggle failed, and one that Kaggle completed but whose session stopped (the kernel catches its own stops, so that Kaggle keeps the report): each is one line, and nothing is pushed. After a failure or a stop, `--after-error` resumes from what it left:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    failed = {"status": "ERROR", "failureMessage": "Stopped: no GPU in this Kaggle session"}
    for replies, message in [({"GetKernelSessionStatus": {"status": "RUNNING"}},
                              f"kaggle kernels push {KERNEL}: its latest version is still running on Kaggle"),
                             ({"GetKernelSessionStatus": failed},
                              f"kaggle kernels push {KERNEL}: its latest version ended with ERROR: Stopped: "
                              "no GPU in this Kaggle session; see its RESULTS.md"),
                             ({"GetKernelSessionStatus": {"status": "COMPLETE"},
                               **report_files("stopped: no GPU in this Kaggle session")},
                              f"kaggle kernels push {KERNEL}: its latest version stopped: no GPU in this Kaggle "
                              f"session; see its RESULTS.md ({PREVIOUS_FOLDER}/ or hifigan-ruslan kaggle output)")]:
        with kaggle_stub({**replies, "SaveKernel": SAVED}) as received:
            error, log = printed(lambda: push_kernel(scratch))
        print(error)
        assert str(error).startswith(message), error
        test_eq(sent(received, "SaveKernel"), [])
    with kaggle_stub({"GetKernelSessionStatus": failed, "SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch, after_error=True))
    test_eq((rc, pushed_settings(sent(received, "SaveKernel")[0]).previous), (0, KERNEL))

# %% [markdown]
# A push whose corpus dataset Kaggle does not attach (a wrong name, or a dataset the account cannot open) fails with the dataset's name and the user's exit status, through the command line as for a user: the version Kaggle started stops in its first minute without the corpus (below, [a kernel without its corpus](#sessions-that-stop-early)). A refused weights dataset is named the same way:

# %%
refused = {**SAVED, "invalidDatasetSources": ["freezerainml/ruslan"]}
with kaggle_stub({**NEW, "SaveKernel": refused}) as received:
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "kaggle", "push", "--root", d],
                              capture_output=True, text=True, timeout=120)
print(proc.stderr.strip())
test_eq(proc.returncode, 2)
test_eq(proc.stderr.strip().splitlines(),
        [f"hifigan-ruslan kaggle: error: kaggle kernels push {KERNEL}: Kaggle did not attach the corpus "
         "dataset freezerainml/ruslan (check the name, and that your account can open it): the version it "
         "started stops in its first minute without training"])

# %% [markdown]
# The same through the command line, which prints the line and exits with the status of a user error (2), and refuses a Kaggle error of its own the same way:

# %%
with kaggle_stub({"GetKernelSessionStatus": {"status": "RUNNING"}, "SaveKernel": SAVED}) as received:
    with tempfile.TemporaryDirectory() as d:
        proc = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "kaggle", "push", "--root", d],
                              capture_output=True, text=True, timeout=120)
print(proc.stderr.strip())
test_eq(proc.returncode, 2)
test_eq(proc.stderr.strip().splitlines(),
        [f"hifigan-ruslan kaggle: error: kaggle kernels push {KERNEL}: its latest version is still running "
         "on Kaggle; wait until `hifigan-ruslan kaggle status` says complete (or stop it on its page); "
         "nothing was pushed"])
test_eq(sent(received, "SaveKernel"), [])

# %% [markdown]
# ### The smoke run
#
# `push --smoke` sends a kernel whose settings ask for the short run and the GPU check, with the package's GPU check inside like every module the kernel needs (so the push works from an installed package as well), and a session limit of 75 minutes:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)  # not a checkout: nothing but the installed package
    with kaggle_stub({**NEW, "SaveKernel": SAVED}) as received:
        rc, log = printed(lambda: push_kernel(scratch, smoke=True))
    print(log.strip().splitlines()[0])
    [body] = sent(received, "SaveKernel")
    settings = pushed_settings(body)
    print(settings)
    test_eq((rc, settings.smoke, settings.gpu_check, settings.session_hours), (0, True, True, 1.0))
    test_eq(body["sessionTimeoutSeconds"], 4500)
    sources = ["".join(c["source"]) for c in json.loads(body["text"])["cells"]]
    test_eq([s.split("\n")[0] for s in sources if "gpu_check.py\"" in s.split("\n")[0]],
            ['%%writefile "{PACKAGE_DIR}/hifigan_ruslan/gpu_check.py"'])
    assert log.startswith(f"pushing {KERNEL}: a smoke run, a new run, session limit 1 h 15 min"), log

# %% [markdown]
# ### The client's checks, through the command line
#
# A client too old for `python -m kaggle` is one line before any request; here an old client stands first on the path (a package and its distribution's metadata, as pip would install them):

# %%
with tempfile.TemporaryDirectory() as d:
    (Path(d) / "kaggle").mkdir()
    (Path(d) / "kaggle/__init__.py").write_text("")
    (Path(d) / "kaggle-1.7.4.5.dist-info").mkdir()
    (Path(d) / "kaggle-1.7.4.5.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: kaggle\n"
                                                               "Version: 1.7.4.5\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([d, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "hifigan_ruslan", "kaggle", "status", "--kernel", KERNEL],
                          capture_output=True, text=True, env=env, timeout=120)
print(proc.stderr.strip())
test_eq(proc.returncode, 2)
test_eq(proc.stderr.strip(),
        "hifigan-ruslan kaggle: error: kaggle 1.7.4.5 is too old (before 2.2.2 it downloads only 500 files of "
        "an output; before 2.2.0 it has no `python -m kaggle` and drops the GPU request): "
        "pip install -U \"kaggle>=2.2.2\"")

# %% [markdown]
# ## Transfer through the stand-in
#
# `push --init-from universal` on a new dataset (and a new kernel): the client asks whether the dataset exists (404), starts a blob upload, uploads the weights, creates the private dataset with the upload's token, waits for it to be ready, the push checks that the dataset lists the file, and the kernel is pushed with the dataset attached and named in its settings. The weights arrive byte for byte (size and SHA-256 as the server received them), under a name Kaggle does not unpack:

# %%
weights = pretrained_path("universal")
DATASET = "stub-user/hifigan-ruslan-universal"
upload = {"StartBlobUpload": {"token": "blob-1", "createUrl": "http://localhost/upload/1"},
          "PUT /upload/1": {}}
created = {"ref": DATASET, "url": f"https://www.kaggle.com/datasets/{DATASET}", "status": "ok"}
listed = {"ListDatasetFiles": {"datasetFiles": [{"name": "generator_universal.pth", "totalBytes": 55_833_664,
                                                 "creationDate": "2026-12-03T12:00:00Z"}]}}

def requests(received) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in received]


# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    replies = {**NEW, **upload, "GetDatasetStatus": [404, {"status": "READY"}], "CreateDataset": created,
               **listed, "SaveKernel": SAVED}
    with kaggle_stub(replies) as received:
        rc, log = printed(lambda: push_kernel(scratch, init_from="universal"))
    print("\n".join(line for line in log.splitlines() if "%|" not in line))
    test_eq(rc, 0)
    test_eq(requests(received), ["GetKernelSessionStatus", "ListKernels", "GetDatasetStatus", "StartBlobUpload",
                                 "1", "CreateDataset", "GetDatasetStatus", "ListDatasetFiles", "SaveKernel"])
    [put] = [r for r in received if r["path"] == "PUT /upload/1"]
    test_eq((put["size"], put["sha256"]), (weights.stat().st_size, PRETRAINED["universal"].sha256))
    [start], [create] = sent(received, "StartBlobUpload"), sent(received, "CreateDataset")
    test_eq((start["name"], start["type"]), ("generator_universal.pth", "DATASET"))
    assert not start["name"].endswith((".zip", ".tar", ".gz")), start["name"]  # Kaggle keeps it as a file
    test_eq((create["ownerSlug"], create["slug"], create["title"], create["licenseName"]),
            ("stub-user", "hifigan-ruslan-universal", "HiFi-GAN universal generator", "other"))
    assert create["isPrivate"]
    test_eq(create["files"], [{"token": "blob-1"}])
    [push] = sent(received, "SaveKernel")
    test_eq(push["datasetDataSources"], ["freezerainml/ruslan", DATASET])
    settings = pushed_settings(push)
    test_eq((settings.init_from, settings.weights_dataset), ("universal", DATASET))
    assert STUB_KEY not in log, log  # the key is never printed

    # the dataset exists: Kaggle refuses the create before any upload, and the file becomes a new version
    replies = {**COMPLETE, **upload, "GetDatasetStatus": {"status": "READY"}, "CreateDatasetVersion": created,
               **listed, "SaveKernel": SAVED}
    with kaggle_stub(replies) as received:
        rc, log = printed(lambda: push_kernel(scratch, init_from="universal"))
    test_eq((rc, requests(received)), (0, ["GetKernelSessionStatus", "ListKernelSessionOutput",
                                           "GetDatasetStatus", "StartBlobUpload", "1", "CreateDatasetVersion",
                                           "GetDatasetStatus", "ListDatasetFiles", "SaveKernel"]))
    [version] = sent(received, "CreateDatasetVersion")
    test_eq((version["ownerSlug"], version["datasetSlug"]), ("stub-user", "hifigan-ruslan-universal"))
    test_eq(version["body"]["files"], [{"token": "blob-1"}])

# %% [markdown]
# Kaggle failing at each step is one line that names the step, and what is left on Kaggle: a refused dataset (nothing pushed), a failed upload (no dataset), a ready dataset that does not list the weights (nothing pushed), a push that fails after the dataset was created (the dataset stays, and says so), a push whose weights dataset Kaggle did not attach (the version it started stops in its first minute). The key appears in none of the output:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    quota = {"status": "error", "error": "Quota exceeded"}
    ready = lambda: {**upload, "GetDatasetStatus": [404, {"status": "READY"}], "CreateDataset": created}
    failures = [({**NEW, **upload, "GetDatasetStatus": 404, "CreateDataset": quota},
                 f"kaggle datasets create {DATASET}: Dataset creation error: Quota exceeded; nothing was"),
                ({**NEW, **upload, "GetDatasetStatus": 404, "PUT /upload/1": 500},
                 f"kaggle datasets create {DATASET}: Upload unsuccessful: generator_universal.pth"),
                ({**NEW, **ready(), "ListDatasetFiles": {"datasetFiles": [{"name": "model.bin"}]}},
                 f"dataset {DATASET} is ready but does not list generator_universal.pth (it lists "
                 "model.bin); nothing was pushed"),
                ({**NEW, **ready(), **listed, "SaveKernel": {"error": "Invalid machine shape"}},
                 f"kaggle kernels push {KERNEL}: Kernel push error: Invalid machine shape; "
                 f"the dataset {DATASET} stays on Kaggle (a later --init-from push versions it)"),
                ({**NEW, **ready(), **listed, "SaveKernel": {**SAVED, "invalidDatasetSources": [DATASET]}},
                 f"kaggle kernels push {KERNEL}: Kaggle did not attach the weights dataset {DATASET} (check "
                 "the name, and that your account can open it): the version it started stops in its first "
                 "minute without training")]
    for replies, message in failures:
        with kaggle_stub(replies) as received:
            error, log = printed(lambda: push_kernel(scratch, init_from="universal"))
        print(error)
        test_eq(type(error), UserError)
        assert str(error).startswith(message), error
        assert STUB_KEY not in log + str(error), STUB_KEY
    test_eq(len(sent(received, "SaveKernel")), 1)

# %% [markdown]
# The client's own validation still guards the push: metadata it rejects never reaches a server (none is listening here).

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
# ## Status and output
#
# `status`, with the outcome of the version's session, and `output` with its manifest check: a complete download of a version that stopped early (it says so; Kaggle's own files, written after the manifest, are not its concern), then one that lost a file and received another corrupted. The check names each, ends with a summary, and the status is 1:

# %%
with tempfile.TemporaryDirectory() as d:
    scratch = Path(d)
    with kaggle_stub(COMPLETE) as received:
        rc, log = printed(lambda: kernel_status(KERNEL))
    print(log.strip())
    test_eq(rc, 0)
    assert "COMPLETE" in log.upper()
    test_eq(log.strip().splitlines()[-1], "the session's outcome: complete: Stopped at step 40 (max steps)")
    test_eq(received[0]["body"]["kernelSlug"], "hifigan-ruslan-train")
    working = scratch / "working"
    (working / "run").mkdir(parents=True)
    (working / "run/metrics.csv").write_text("step,val_mel_l1\n10,1.5\n")
    (working / "run/g_00000010").write_bytes(bytes(range(256)))
    SessionReport(SessionSettings(kernel=KERNEL), working).write("stopped: no GPU in this Kaggle session")
    for name in ("__notebook__.ipynb", "__results__.html", "__output__.json", "custom.css"):
        (working / name).write_text("written by Kaggle after the manifest")
    files = {p.relative_to(working).as_posix(): p.read_bytes() for p in working.rglob("*") if p.is_file()}
    listed_files = [{"fileName": name, "url": f"http://localhost/files/{name}"} for name in files]
    listing = {"ListKernelSessionOutput": {"log": "[]", "files": listed_files}}
    with kaggle_stub(listing, files=files):
        rc, log = printed(lambda: download_output(KERNEL, scratch / "out"))
    print("\n".join(log.strip().splitlines()[-3:]))
    test_eq(rc, 0)
    test_eq(log.strip().splitlines()[-2:], ["the version's outcome: stopped: no GPU in this Kaggle session",
                                            output_message(KERNEL, scratch / "out")])
    test_eq((scratch / "out/run/metrics.csv").read_bytes(), files["run/metrics.csv"])

    damaged = {**files, "RESULTS.md": files["RESULTS.md"].replace(b"results", b"resultz")}
    del damaged["run/metrics.csv"]
    listing = {"ListKernelSessionOutput": {"log": "[]", "files": [f for f in listed_files
                                                                  if f["fileName"] in damaged]}}
    with kaggle_stub(listing, files=damaged):
        rc, log = printed(lambda: download_output(KERNEL, scratch / "out2"))
    problems = log.strip().splitlines()[-4:-1]
    print("\n".join(problems))
    test_eq(rc, 1)
    test_eq(problems[0], "missing: run/metrics.csv (23 bytes)")
    assert problems[1].startswith("differs: RESULTS.md (SHA-256"), problems
    test_eq(problems[2], "2 of 4 files of MANIFEST.json intact, 1 missing, 1 differ")


# %% [markdown]
# ## The kernel from an installed wheel
#
# The build needs nothing but the installed package: a wheel built from this checkout, installed into a folder of its own and imported from there, builds the same kernel in an empty folder, with every module the kernel needs, and the kernel of a smoke run with its GPU check.

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
from hifigan_ruslan.kaggle_kernel import build_kernel, build_notebook, embedded_modules
from hifigan_ruslan.kaggle_session import SMOKE, SessionSettings
written = build_kernel(Path.cwd(), environ={})
smoke = json.loads(build_notebook(settings=SessionSettings(**SMOKE)))
print(json.dumps({"package": hifigan_ruslan.__file__, "written": [str(p) for p in written],
                  "modules": embedded_modules(), "smoke": ["".join(c["source"]).split("\\n")[0]
                                                           for c in smoke["cells"]]}))
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
    assert '%%writefile "{PACKAGE_DIR}/hifigan_ruslan/gpu_check.py"' in result["smoke"]  # a smoke kernel too
    test_eq((d / "work" / KERNEL_NOTEBOOK).read_text(), (repo / KERNEL_NOTEBOOK).read_text())  # byte for byte
    test_eq((d / "work" / METADATA_FILE).read_text(), (repo / METADATA_FILE).read_text())
    cells = nbformat.read(d / "work" / KERNEL_NOTEBOOK, as_version=4).cells
    carried = {c["source"].split('"')[1].rsplit("/", 1)[1]: c["source"].split("\n", 1)[1]
               for c in cells if "%%writefile" in c["source"]}
    test_eq(carried, {m: (site / "hifigan_ruslan" / m).read_text() for m in mods})

# %% [markdown]
# ## The kernel, end to end
#
# The generated notebook runs here as Kaggle runs a version: written to `/kaggle/working/__notebook__.ipynb` and executed by papermill with that file as its input and its output, so that the notebook is rewritten after every cell, the cell that writes the manifest included. The kernel runs on Kaggle's Jupyter stack (IPython 7.34 and ipykernel 6.17.1, in a virtual environment over this one, made once). Kaggle's folders are temporary ones (the notebook's `HIFIGAN_KAGGLE_INPUT`, `HIFIGAN_KAGGLE_WORKING` and `HIFIGAN_KAGGLE_TEMP`), laid out as Kaggle mounts them today: RUSLAN (here the synthetic test corpus, RUSLAN-shaped) at `input/datasets/freezerainml/ruslan/`, the weights dataset at `input/datasets/OWNER/hifigan-ruslan-universal/`, the previous version's output at `input/notebooks/OWNER/SLUG/`. Each run builds its notebook with its own settings, as `push` would write them, with the `tiny` preset and a few steps on the CPU (one process). `KAGGLE_KERNEL_RUN_TYPE` is set as Kaggle sets it where a case needs it: `Batch` for a pushed version, `Interactive` in the editor.
#
# A run downloaded with `hifigan-ruslan kaggle output` also continues locally: `hifigan-ruslan train --data PREPARED --out runs/kaggle/run` resumes from its newest checkpoint.

# %%
#| slow
import time
from dataclasses import dataclass
from hifigan_ruslan.checkpoints import resumable_step
from hifigan_ruslan.testing import tiny_corpus
from hifigan_ruslan.kaggle_session import ManifestCheck, check_manifest

# %% [markdown]
# Kaggle's stack goes into a virtual environment that sees this environment's packages (PyTorch, the project's dependencies) and overrides IPython and ipykernel, with papermill, which drives the kernel. It is made once per machine, in the user's cache, and gets a kernelspec of its own, so that papermill starts that environment's Python and not another `python3` it finds:

# %%
#| slow
KAGGLE_JUPYTER = ("ipython==7.34.0", "ipykernel==6.17.1", "papermill==2.7.0")  # Kaggle's image, 2026
KAGGLE_KERNEL = "kaggle-python3"

def kaggle_jupyter(cache: Path = Path.home() / ".cache/hifigan-ruslan") -> Path:
    "The Python of a virtual environment with Kaggle's Jupyter stack over this one's packages; made once."
    tag = hashlib.sha256(" ".join([sys.version, *KAGGLE_JUPYTER]).encode()).hexdigest()[:10]
    venv = cache / f"kaggle-jupyter-{tag}"
    python = venv / "bin/python"
    ready = [str(python), "-c", "import IPython, ipykernel, papermill; print(IPython.__version__, "
                                "ipykernel.__version__, papermill.__version__)"]
    if not python.is_file() or subprocess.run(ready, capture_output=True).returncode != 0:
        subprocess.run([sys.executable, "-m", "venv", "--clear", "--system-site-packages", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        *KAGGLE_JUPYTER], check=True, capture_output=True)
        subprocess.run([str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", KAGGLE_KERNEL],
                       check=True, capture_output=True)
    return python


# %%
#| slow
stack = kaggle_jupyter()
versions = subprocess.run([str(stack), "-c", "import IPython, ipykernel, papermill; print(IPython.__version__, "
                           "ipykernel.__version__, papermill.__version__)"], capture_output=True, text=True)
print(versions.stdout.strip())
test_eq(versions.stdout.split(), ["7.34.0", "6.17.1", "2.7.0"])
spec = json.loads((stack.parent.parent / f"share/jupyter/kernels/{KAGGLE_KERNEL}/kernel.json").read_text())
test_eq(Path(spec["argv"][0]).parent, stack.parent)  # the kernel runs on that stack


# %%
#| slow
@dataclass
class Session:
    "What one execution of the kernel printed and showed, its error cell, papermill's status, and its folders."
    printed: str
    shown: list
    error: dict | None
    status: int
    seconds: float
    working: Path
    temp: Path

    @property
    def outcome(self) -> str:
        return json.loads((self.working / SESSION_FILE).read_text())["outcome"]


# %% [markdown]
# `run_kernel` builds a notebook with the settings a test gives (on top of a small run's), writes it where Kaggle does, and executes it with papermill in an environment that points the notebook at the session's folders; it reads what the session printed and showed back from the notebook papermill wrote:

# %%
#| slow
def run_kernel(root: Path, session: str, run_type: str | None = None, **settings) -> Session:
    "Build the kernel with `settings`, execute it as one session in `root/session` (inputs: `root/input`)."
    folder = root / session
    working = folder / "working"
    working.mkdir(parents=True)
    settings = SessionSettings(**{"kernel": KERNEL, "preset": "tiny", "val_size": 2, **settings})
    (working / "__notebook__.ipynb").write_text(build_notebook(settings=settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HIFIGAN_", "KAGGLE_"))}
    env.update(HIFIGAN_KAGGLE_INPUT=str(root / "input"), HIFIGAN_KAGGLE_WORKING=str(working),
               HIFIGAN_KAGGLE_TEMP=str(folder / "temp"))
    env.update({"KAGGLE_KERNEL_RUN_TYPE": run_type} if run_type else {})
    started = time.monotonic()
    proc = subprocess.run([str(stack), "-m", "papermill", "__notebook__.ipynb", "__notebook__.ipynb",
                           "-k", KAGGLE_KERNEL, "--no-progress-bar"], cwd=working, env=env,
                          capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - started
    nb = nbformat.read(working / "__notebook__.ipynb", as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    errors = [o for o in outputs if o["output_type"] == "error"]
    return Session("".join(o.get("text", "") for o in outputs if o["output_type"] == "stream"),
                   [mime for o in outputs for mime in o.get("data", {})], errors[0] if errors else None,
                   proc.returncode, seconds, working, folder / "temp")

def kaggle_inputs(root: Path):
    "A RUSLAN-shaped corpus (the synthetic test corpus) where Kaggle mounts the dataset."
    shutil.copytree(tiny_corpus(), root / "input/datasets/freezerainml/ruslan")

def kaggle_renders(working: Path):
    "What Kaggle adds to a version's output after papermill: the rendered notebook and its files."
    for name in ("__results__.html", "__output__.json", "custom.css", "__results___files/figure.png"):
        (working / name).parent.mkdir(exist_ok=True)
        (working / name).write_text("rendered by Kaggle")

PREVIOUS = "input/notebooks/stub-user/hifigan-ruslan-train"  # where the previous version's output is mounted
WEIGHTS = "input/datasets/stub-user/hifigan-ruslan-universal"

# %% [markdown]
# ### A chain of versions
#
# The first version has no previous output; the second one, pushed after it, finds it mounted and resumes from it (its settings pin the previous version); the third plays a first version with the weights dataset attached (here the first version's `g_` file under the dataset's file name, since the official generator is a V1 and the test trains `tiny`): it fine-tunes from it. papermill ends each with status 0, as Kaggle then marks the version complete; every version's output matches its manifest although papermill rewrote `__notebook__.ipynb` after the manifest was written, and `SESSION.json` says how it ended. The second version's output, with what Kaggle renders added, goes through `hifigan-ruslan kaggle output` against the stand-in and passes its check:

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    kaggle_inputs(d)
    v1 = run_kernel(d, "v1", max_steps=1)
    step1 = resumable_step(v1.working / "run/checkpoints")
    test_eq((v1.status, v1.error, step1), (0, None, 1))
    assert "no previous checkpoint: training from scratch" in v1.printed, v1.printed
    test_eq(v1.outcome, "complete: Stopped at step 1 (max steps)")
    assert check_manifest(v1.working).ok
    ran = {m: (v1.temp / "src/hifigan_ruslan" / m).read_bytes() for m in mods}
    test_eq(ran, {m: pkg.joinpath(m).read_bytes() for m in mods})  # the package's own source, byte for byte

    shutil.copytree(v1.working, d / PREVIOUS)  # the next version sees this output
    v2 = run_kernel(d, "v2", max_steps=2, previous=KERNEL)
    print("\n".join(line for line in v2.printed.splitlines()
                    if line.startswith(("full session", "resuming", "corpus", "stage done"))))
    test_eq((v2.status, v2.error), (0, None))
    assert f"resuming from step {step1}" in v2.printed, v2.printed
    test_eq(resumable_step(v2.working / "run/checkpoints"), 2)
    assert v2.shown.count("image/png") >= 2, v2.shown.count("image/png")
    assert v2.shown.count("text/html") >= 2, v2.shown.count("text/html")  # plots, players
    assert (v2.working / "run/.lock").is_file()  # the run's lock, left by training: not in the manifest
    assert (v2.working / "run/tensorboard").exists() is False  # off in the kernel: Kaggle's TensorFlow
    kaggle_renders(v2.working)
    output = [p for p in v2.working.rglob("*")
              if p.is_file() and p.name not in (MANIFEST_FILE, ".lock") and not p.name.startswith("__")
              and p.parent.name != "__results___files" and p.name != "custom.css"]
    test_eq(check_manifest(v2.working), ManifestCheck(len(output)))
    files = {p.relative_to(v2.working).as_posix(): p.read_bytes() for p in v2.working.rglob("*") if p.is_file()}
    listed = [{"fileName": name, "url": f"http://localhost/files/{name}"} for name in files]
    with kaggle_stub({"ListKernelSessionOutput": {"log": "[]", "files": listed}}, files=files):
        rc, log = printed(lambda: download_output(KERNEL, d / "download"))
    print("\n".join(log.strip().splitlines()[-3:]))
    test_eq(rc, 0)
    print((v2.working / "RESULTS.md").read_text())

    shutil.rmtree(d / PREVIOUS)  # a first version with the weights dataset attached
    (d / WEIGHTS).mkdir(parents=True)
    shutil.copyfile(v1.working / f"run/checkpoints/g_{step1:08d}", d / WEIGHTS / "generator_universal.pth")
    v3 = run_kernel(d, "v3", max_steps=1, init_from="universal", weights_dataset=DATASET)
    print("\n".join(line for line in v3.printed.splitlines() if "fine-tuning" in line))
    test_eq((v3.status, v3.error), (0, None))
    assert f"no previous checkpoint: fine-tuning from {d / WEIGHTS / 'generator_universal.pth'}" in v3.printed
    inits = [line.split()[3] for line in v3.printed.splitlines()
             if line.startswith("Initialised generator from")]
    test_eq([Path(path).name for path in inits], ["generator_universal.pth"])
    assert check_manifest(v3.working).ok

# %% [markdown]
# ### Sessions that stop early
#
# Each case stops with its one line, printed as `Stopped: ...` and recorded as the outcome in `RESULTS.md` and `SESSION.json`, with a manifest that matches; each ends the notebook normally (papermill's status 0), so that Kaggle completes the version and keeps its output; and each stops before anything costly, within its first minute: no GPU on Kaggle, the weights dataset attached without its file, the pinned previous output not mounted, and the corpus dataset not attached while the previous version's output is (its WAVs are not a corpus). None of them prepared the corpus:

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    kaggle_inputs(d)
    cases = {"no GPU": ({}, "no GPU in this Kaggle session: the kernel asks for two T4s, which need a "
                            "phone-verified account (kaggle.com/settings) and kaggle>=2.2.2 to push; "
                            "nothing was trained"),
             "missing weights": ({"init_from": "universal", "weights_dataset": DATASET},
                                 f"the weights dataset {DATASET} is attached but holds no "
                                 f"generator_universal.pth (in {d / WEIGHTS}): push again with --init-from "
                                 "universal to upload it"),
             "missing previous output": ({"previous": KERNEL},
                                         f"the previous version's output of {KERNEL} is not mounted under "
                                         f"{d / 'input'} (no SESSION.json of it): push again once it is "
                                         "complete, or with --fresh to start a new run"),
             "missing corpus": ({}, f"the corpus dataset freezerainml/ruslan is not mounted under {d / 'input'} "
                                    "(mounted: notebooks/stub-user/hifigan-ruslan-train): check its name and "
                                    "that your account can open it, then push again; nothing was trained")}
    for i, (case, (settings, line)) in enumerate(cases.items()):
        if case == "missing weights":
            (d / WEIGHTS).mkdir(parents=True)  # attached, but without the file
        if case == "missing corpus":  # only the previous version's output, with its sample WAVs
            shutil.rmtree(d / "input")
            (d / PREVIOUS / "run/samples").mkdir(parents=True)
            shutil.copytree(tiny_corpus() / "RUSLAN", d / PREVIOUS / "run/samples", dirs_exist_ok=True)
            SessionReport(SessionSettings(kernel=KERNEL), d / PREVIOUS).write("complete")
        stopped = run_kernel(d, f"s{i}", "Batch", **settings)
        print(f"{case} ({stopped.seconds:.0f} s): Stopped: {line[:60]}...")
        test_eq((stopped.status, stopped.error), (0, None))
        assert f"Stopped: {line}\n" in stopped.printed, stopped.printed
        test_eq(stopped.outcome, f"stopped: {line}")
        assert f"Outcome: stopped: {line}" in (stopped.working / "RESULTS.md").read_text()
        assert check_manifest(stopped.working).ok
        assert not (stopped.temp / "prepared").exists(), case
        assert stopped.seconds < 60, (case, stopped.seconds)

# %% [markdown]
# A training that fails (here an override that does not parse) stops the session with the error's last line, and the report is there too:

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    kaggle_inputs(d)
    failed = run_kernel(d, "failed", max_steps=1, train_set=("train.lr_g=abc",))
    line = "training failed: hifigan-ruslan train: error: --set: train.lr_g = 'abc': expected a number"
    print(f"Stopped: {line}")
    test_eq((failed.status, failed.error, failed.outcome), (0, None, f"stopped: {line}"))
    assert check_manifest(failed.working).ok
    test_eq(sorted(p.name for p in failed.working.iterdir() if not p.name.startswith("__")),
            ["MANIFEST.json", "RESULTS.md", SESSION_FILE])

# %% [markdown]
# ### Run All in the editor
#
# In the editor (`Interactive`), a kernel built for a full session runs the smoke settings instead and says so in its first line; here it then stops at the missing corpus, which is enough to see the settings it recorded:

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    editor = run_kernel(d, "editor", "Interactive")
    lines = editor.printed.splitlines()
    first = lines[next(i for i, line in enumerate(lines) if line.startswith("hifigan_ruslan ")) + 1]
    print(first)
    assert first.startswith("Interactive session (Run All in Kaggle's editor): the smoke settings, not the "
                            "11-hour session"), editor.printed
    record = json.loads((editor.working / SESSION_FILE).read_text())
    test_eq((record["smoke"], record["settings"]["session_hours"]), (True, SMOKE["session_hours"]))

# %% [markdown]
# ### The smoke run
#
# A smoke run with the settings `push --smoke` writes (here with a 10-clip slice, 2 steps and 1 after resuming): it measures the GPUs with the package's GPU check (here its small CPU workload), trains, validates, checkpoints, resumes once, and writes `RESULTS.md` with the GPU figures:

# %%
#| slow
with tempfile.TemporaryDirectory() as d:
    d = Path(d)
    kaggle_inputs(d)
    smoke = run_kernel(d, "smoke", **{**SMOKE, "val_size": 2, "smoke_clips": 10, "smoke_steps": 2,
                                      "smoke_resume_steps": 1})
    test_eq((smoke.status, smoke.error), (0, None))
    results = (smoke.working / "RESULTS.md").read_text()
    print(results)
    test_eq(smoke.outcome, "complete: Stopped at step 3 (max steps)")
    test_eq(len(list((smoke.temp / "prepared/wavs").glob("*.wav"))), 10)  # the slice
    assert "Resuming from" in smoke.printed and "(step 2)" in smoke.printed, smoke.printed
    test_eq(resumable_step(smoke.working / "smoke/checkpoints"), 3)
    figures = results.split("## GPU check")[1]
    for precision in ("fp32", "fp16", "bf16"):
        assert re.search(rf"{precision} +[\d.]+ steps/s; first losses", figures), (precision, figures)
    assert check_manifest(smoke.working).ok
