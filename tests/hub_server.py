"""TEST STAND-IN FOR THE HUGGING FACE HUB: a tiny in-memory server on 127.0.0.1 for offline tests.

This is test code, not part of tlnlp and not a Hub implementation. It answers only the requests that
``huggingface_hub`` (and ``transformers`` through it) sends for ``create_repo``, ``upload_folder`` /
``create_commit``, ``model_info`` / ``list_repo_tree`` and file downloads (``hf_hub_download``,
``snapshot_download``, ``from_pretrained``), with the response shapes the client parses:

* ``POST /api/repos/create``: needs a known token; 409 when the repo exists.
* ``POST /api/validate-yaml``: the card's front matter must be a YAML mapping whose ``model-index`` parses with
  ``huggingface_hub``'s own ``model_index_to_eval_results``.
* ``POST /api/models/{repo}/preupload/{rev}``: every file is uploaded in "regular" mode (base64 inside the commit).
* ``POST /api/models/{repo}/commit/{rev}``: the NDJSON commit (header, file, deletedFile, deletedFolder).
* ``GET /api/models/{repo}[/revision/{rev}]``, ``GET /api/models/{repo}/tree/{rev}[/{path}]``,
  ``POST /api/models/{repo}/paths-info/{rev}``, ``GET /api/whoami-v2``.
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: file responses carry ``X-Repo-Commit`` and ``ETag``; 404s carry
  ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) as the real Hub does.

Use :func:`serve_local_hub` (a context manager) to start it and point ``huggingface_hub`` at it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["PLANTED_TOKEN", "LocalHub", "local_hub_fixture", "serve_local_hub"]

TEST_USER = "tlnlp-tester"
_API_REPO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+|[^/]+?)(?:/(?P<op>preupload|commit|tree|revision|paths-info)"
                       r"(?:/(?P<rest>.*))?)?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+|[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


def _blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class _Commit:
    oid: str
    message: str
    files: dict[str, bytes]
    date: str


@dataclass
class _Repo:
    repo_id: str
    private: bool
    commits: list[_Commit] = field(default_factory=list)  # oldest first; "main" is the last one


class LocalHub:
    """In-memory repositories and the request log of one stand-in server.

    Args:
        tokens: Tokens the server accepts for writes (and for reading private repos).
    """

    def __init__(self, tokens: tuple[str, ...] = ()) -> None:
        self.tokens = set(tokens)
        self.repos: dict[str, _Repo] = {}
        self.requests: list[dict[str, Any]] = []  # method, path, user_agent, authorized
        self.endpoint = ""
        self.lock = threading.Lock()

    # -- state helpers ------------------------------------------------------------------------------------
    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Files of ``repo_id`` at ``revision`` (path -> bytes)."""
        repo = self.repos[repo_id]
        commit = self._commit(repo, revision)
        return dict(commit.files) if commit else {}

    def commit_messages(self, repo_id: str) -> list[str]:
        """Commit summaries of a repo, oldest first."""
        return [c.message for c in self.repos[repo_id].commits]

    def add_folder(self, repo_id: str, folder: str | Path) -> None:
        """Host a local model folder as a public repo (e.g. a bundled model under its real Hub id)."""
        root = Path(folder)
        files = {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
        with self.lock:
            self.repos[repo_id] = repo = _Repo(repo_id, private=False)
            self._new_commit(repo, f"Upload {root.name}", files)

    @staticmethod
    def _commit(repo: _Repo, revision: str) -> _Commit | None | bool:
        if revision == "main":
            return repo.commits[-1] if repo.commits else None
        for commit in repo.commits:
            if commit.oid == revision:
                return commit
        return False  # unknown revision

    def _new_commit(self, repo: _Repo, message: str, files: dict[str, bytes]) -> _Commit:
        parent = repo.commits[-1].oid if repo.commits else ""
        digest = hashlib.sha1(parent.encode() + message.encode())
        for path in sorted(files):
            digest.update(path.encode() + _blob_oid(files[path]).encode())
        commit = _Commit(digest.hexdigest(), message, files, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))
        repo.commits.append(commit)
        return commit


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        return

    # -- plumbing -----------------------------------------------------------------------------------------
    @property
    def hub(self) -> LocalHub:
        return self.server.hub

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer "):] in self.hub.tokens

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _body(self) -> bytes:
        return self._raw_body

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)  # read it all, even when refusing: keep-alive
        self._raw_body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        self.hub.requests.append({"method": self.command, "path": url.path,
                                  "user_agent": self.headers.get("User-Agent", ""),
                                  "authorized": self._authorized()})
        with self.hub.lock:
            self._dispatch(url.path, parse_qs(url.query))

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._route()

    def do_GET(self) -> None:  # noqa: N802
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    # -- routes -------------------------------------------------------------------------------------------
    def _dispatch(self, path: str, query: dict[str, list[str]]) -> None:
        if path in ("", "/"):
            return self._send(200, b"local test hub", content_type="text/plain")
        if path == "/api/whoami-v2":
            if not self._authorized():
                return self._error(401, None, "Invalid credentials in Authorization header")
            return self._json(200, {"type": "user", "name": TEST_USER, "orgs": [],
                                    "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
        if path == "/api/repos/create" and self.command == "POST":
            return self._create_repo()
        if path == "/api/validate-yaml" and self.command == "POST":
            return self._validate_yaml()
        if match := _API_REPO.match(path):
            return self._api_repo(unquote(match["repo"]), match["op"], match["rest"], query)
        if (match := _RESOLVE.match(path)) and self.command in ("GET", "HEAD"):
            return self._resolve(unquote(match["repo"]), unquote(match["rev"]), unquote(match["path"]))
        return self._error(404, None, f"The test hub does not serve {self.command} {path}")

    def _create_repo(self) -> None:
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header")
        payload = json.loads(self._body() or b"{}")
        if payload.get("type", "model") != "model":
            return self._error(400, None, "The test hub only holds model repos")
        repo_id = f"{payload.get('organization') or TEST_USER}/{payload['name']}"
        url = f"{self.hub.endpoint}/{repo_id}"
        if repo_id in self.hub.repos:
            return self._json(409, {"error": "You already created this model repo", "url": url})
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        self.hub.repos[repo_id] = repo = _Repo(repo_id, private)
        self.hub._new_commit(repo, "initial commit", {".gitattributes": b"*.safetensors filter=lfs\n"})
        return self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self) -> None:
        import yaml
        from huggingface_hub.repocard_data import model_index_to_eval_results

        content = json.loads(self._body() or b"{}").get("content", "")
        errors = []
        match = re.match(r"^\s*---\s*\n(.*?)\n---\s*\n", content, re.DOTALL)
        if match:
            try:
                meta = yaml.safe_load(match.group(1))
                if not isinstance(meta, dict):
                    errors.append("metadata must be a YAML mapping")
                elif "model-index" in meta:
                    model_index_to_eval_results(meta["model-index"])
            except Exception as err:  # noqa: BLE001 - any parse failure is a validation error
                errors.append(f"invalid metadata: {err}")
        if errors:
            return self._json(400, {"errors": [{"message": e} for e in errors]})
        return self._json(200, {"errors": [], "warnings": []})

    def _repo_or_error(self, repo_id: str, write: bool = False) -> _Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authorized()):
            self._error(404 if repo is None else 401, "RepoNotFound", "Repository not found")
            return None
        if write and not self._authorized():
            self._error(401, None, "Invalid credentials in Authorization header")
            return None
        return repo

    def _commit_or_error(self, repo: _Repo, revision: str) -> _Commit | None:
        commit = LocalHub._commit(repo, unquote(revision))
        if commit is False or commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return None
        return commit

    def _api_repo(self, repo_id: str, op: str | None, rest: str | None, query: dict[str, list[str]]) -> None:
        repo = self._repo_or_error(repo_id, write=op in ("preupload", "commit"))
        if repo is None:
            return None
        revision, _, sub = (rest or "main").partition("/")
        if op is None or op == "revision":
            return self._model_info(repo, revision)
        if op == "preupload":
            return self._preupload(repo)
        if op == "commit":
            return self._commit_ndjson(repo, revision)
        commit = self._commit_or_error(repo, revision)
        if commit is None:
            return None
        if op == "tree":
            return self._tree(commit, unquote(sub), query.get("recursive", ["False"])[0].lower() == "true")
        payload = json.loads(self._body() or b"{}")  # paths-info
        wanted = payload.get("paths", [])
        return self._json(200, [self._file_entry(commit, p) for p in wanted if p in commit.files])

    def _model_info(self, repo: _Repo, revision: str) -> None:
        commit = self._commit_or_error(repo, revision)
        if commit is None:
            return None
        return self._json(200, {
            "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": commit.oid,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "lastModified": commit.date, "createdAt": repo.commits[0].date,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)]})

    def _preupload(self, repo: _Repo) -> None:
        payload = json.loads(self._body() or b"{}")
        current = repo.commits[-1].files if repo.commits else {}
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": _blob_oid(current[f["path"]]) if f["path"] in current else None}
                 for f in payload.get("files", [])]
        return self._json(200, {"files": files, "commitOid": repo.commits[-1].oid if repo.commits else None})

    def _commit_ndjson(self, repo: _Repo, revision: str) -> None:
        if unquote(revision) != "main":
            return self._error(400, None, "The test hub commits to main only")
        files = dict(repo.commits[-1].files) if repo.commits else {}
        message = "commit"
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary") or message
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    return self._error(404, "EntryNotFound", "A file with this name doesn't exist")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: c for p, c in files.items() if not p.startswith(prefix)}
            else:
                return self._error(400, None, f"The test hub only accepts regular files, not {key!r}")
        commit = self.hub._new_commit(repo, message, files)
        return self._json(200, {"commitUrl": f"{self.hub.endpoint}/{repo.repo_id}/commit/{commit.oid}",
                                "commitOid": commit.oid, "pullRequestUrl": None, "success": True})

    @staticmethod
    def _file_entry(commit: _Commit, path: str) -> dict[str, Any]:
        content = commit.files[path]
        return {"type": "file", "path": path, "size": len(content), "oid": _blob_oid(content)}

    def _tree(self, commit: _Commit, sub: str, recursive: bool) -> None:
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in commit.files):
            return self._error(404, "EntryNotFound", f"{sub} does not exist on this revision")
        entries: dict[str, dict[str, Any]] = {}
        for path in sorted(commit.files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix):]
            if "/" in rest and not recursive:
                folder = prefix + rest.split("/")[0]
                entries[folder] = {"type": "directory", "path": folder, "oid": _blob_oid(folder.encode())}
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                for depth in range(1, len(parts) + 1):
                    folder = prefix + "/".join(parts[:depth])
                    entries[folder] = {"type": "directory", "path": folder, "oid": _blob_oid(folder.encode())}
            entries[path] = self._file_entry(commit, path)
        return self._json(200, list(entries.values()))

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo_or_error(repo_id)
        if repo is None:
            return None
        commit = self._commit_or_error(repo, revision)
        if commit is None:
            return None
        if path not in commit.files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
        content = commit.files[path]
        return self._send(200, content, {"X-Repo-Commit": commit.oid, "ETag": f'"{_blob_oid(content)}"',
                                         "Accept-Ranges": "bytes"}, content_type="application/octet-stream")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: LocalHub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = hub


@contextlib.contextmanager
def serve_local_hub(cache_dir: str | Path, tokens: tuple[str, ...] = ()) -> Iterator[LocalHub]:
    """Start the stand-in Hub on 127.0.0.1 and point ``huggingface_hub`` (and ``transformers``) at it.

    ``HF_ENDPOINT`` is read by ``huggingface_hub`` at import, so the module constants are patched (and restored
    on exit): the endpoint, offline mode off, and the download cache moved to ``cache_dir`` so nothing lands in
    the user's cache. ``HF_ENDPOINT`` is also set in the environment for subprocesses (e.g. a notebook kernel).

    Args:
        cache_dir: Folder for downloaded files.
        tokens: Tokens the server accepts for writes.

    Yields:
        The :class:`LocalHub`, with ``endpoint`` set to its ``http://127.0.0.1:PORT`` address.
    """
    import os

    from huggingface_hub import constants, hf_api

    hub = LocalHub(tokens)
    server = _Server(hub)
    hub.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="local-test-hub", daemon=True)
    thread.start()
    patched = {"ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": False, "HF_HUB_CACHE": str(cache_dir),
               "HUGGINGFACE_CO_URL_TEMPLATE": hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"}
    saved = {name: getattr(constants, name) for name in patched}
    default_api = hf_api.api  # module-level functions (huggingface_hub.file_exists, ...) are bound to it
    saved_api_endpoint = default_api.endpoint
    saved_env = {name: os.environ.get(name) for name in ("HF_ENDPOINT", "HF_HUB_OFFLINE", "HF_HUB_CACHE")}
    for name, value in patched.items():
        setattr(constants, name, value)
    os.environ.update({"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_CACHE": str(cache_dir)})
    default_api.endpoint = hub.endpoint
    _reset_client_singletons()
    try:
        yield hub
    finally:
        for name, value in saved.items():
            setattr(constants, name, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        default_api.endpoint = saved_api_endpoint
        _reset_client_singletons()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _reset_client_singletons() -> None:
    """Drop clients that captured the endpoint when they were created (transformers' shared HfApi)."""
    with contextlib.suppress(ImportError, AttributeError):
        import transformers.utils.hub as transformers_hub

        transformers_hub._hf_api = None


#: A token-shaped secret the tests plant (environment, flags) and then look for in every written file.
PLANTED_TOKEN = "hf_" + "PlantedTlnlpTestToken" + "0123456789"


def local_hub_fixture(tmp_path: Path, monkeypatch: Any) -> Iterator[LocalHub]:
    """Body of the ``local_hub`` fixtures: the stand-in Hub, ``HF_TOKEN`` planted, no saved login."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-login" / "token"))
    with serve_local_hub(tmp_path / "hf-cache", tokens=(PLANTED_TOKEN,)) as hub:
        yield hub
