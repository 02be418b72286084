"""A strict stand-in for BigQuery's Storage Write API: a gRPC server on loopback.

The real ``BigQueryWriteClient`` talks to it over a real channel, so what it checks is what
the client really sends: gRPC metadata, the serialized requests, their order on a
connection. Requests and responses are the client's own message types
(``google.cloud.bigquery_storage_v1.types``). It keeps PENDING streams only, the one type
the warehouse uses, and refuses what BigQuery refuses, each rule with its source:

- **routing**: every call carries ``x-goog-request-params`` naming its resource; for
  ``AppendRows`` that is ``write_stream=<the first request's stream>``. The client adds it
  itself to unary calls (``gapic_v1.routing_header`` in ``BigQueryWriteClient``) but not to
  the bidi ``AppendRows``, which the library's own ``writer.AppendRowsStream`` therefore
  adds by hand, "so that the BigQuery Storage API knows which region to route the request
  to" (google-cloud-bigquery-storage 2.43.0, ``bigquery_storage_v1/writer.py``). Without it
  BigQuery answers ``INVALID_ARGUMENT: Cannot route on empty project id ''``
  (googleapis/python-bigquery-storage#577, googleapis/google-cloud-python#16650). All the
  header's values are read together, so the client's own empty value beside ours routes.
- **request size**: an ``AppendRowsRequest`` larger than 10,000,000 bytes serialized is
  refused with ``INVALID_ARGUMENT``: "must be less than 10 MB in size. Requests larger than
  this return an error, typically INVALID_ARGUMENT" (``AppendRowsRequest`` reference, e.g.
  cloud.google.com/python/docs/reference/bigquerystorage/2.15.0 and the Java/.NET pages;
  the Java client's ``StreamWriter.getApiMaxRequestBytes()`` is ``10L * 1000L * 1000L``).
  The 2.43.0 Python docstring says 20 MB; the stand-in holds the stricter figure.
- **writer schema**: the first request of a connection must carry it ("certain parts of the
  AppendRowsRequest need only be specified for the first request", ``AppendRowsRequest``);
  the rows are decoded with it, so rows that do not fit it are refused too.
- **offsets**: an offset past the stream's end answers ``OUT_OF_RANGE``, one already
  written ``ALREADY_EXISTS``, in the response's ``error`` (``BigQueryWriteClient.append_rows``
  docstring; ``AppendRowsResponse.error``).
- **finalized streams** take no appends (``StorageError.STREAM_FINALIZED``), and a stream
  must be finalized before ``BatchCommitWriteStreams`` ("Streams must be finalized before
  commit and cannot be committed multiple times", ``BatchCommitWriteStreams`` reference):
  ``INVALID_STREAM_STATE`` ("you try to commit a stream that is not finalized or is
  garbaged") or ``STREAM_ALREADY_COMMITTED`` in ``stream_errors``, no ``commit_time``, and
  nothing of the batch committed (the commit is atomic).

Faults a test arms: :meth:`WriteApi.fail_next_append` ends the next ``AppendRows`` call with
a status (``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``) before or after its first response;
:meth:`WriteApi.collect` garbage-collects a pending stream, which then answers with the
status a test picks. Every call is logged (:attr:`WriteApi.calls`) for exact assertions.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import grpc
import pyarrow as pa
from google.cloud.bigquery_storage_v1 import BigQueryWriteClient, types
from google.cloud.bigquery_storage_v1.services.big_query_write.transports import BigQueryWriteGrpcTransport
from google.rpc import code_pb2, status_pb2

SERVICE = "google.cloud.bigquery.storage.v1.BigQueryWrite"
#: The largest AppendRowsRequest BigQuery takes, serialized (module docstring).
MAX_REQUEST_BYTES = 10_000_000
ROUTING_HEADER = "x-goog-request-params"
_ERRORS = types.StorageError.StorageErrorCode


@dataclass
class Stream:
    name: str
    table: str
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    finalized: bool = False
    committed: bool = False
    gone: grpc.StatusCode | None = None


@dataclass
class Call:
    """One RPC as the stand-in received it: its method, routing parameters and requests."""

    method: str
    routing: dict[str, str]
    requests: list[Any]
    request_bytes: list[int]
    status: str = "OK"


class WriteApi:
    """The server and its state; ``with WriteApi() as api: api.client()``."""

    def __init__(self) -> None:
        self.streams: dict[str, Stream] = {}
        self.committed: dict[str, list[pa.RecordBatch]] = {}
        self.calls: list[Call] = []
        self._faults: list[tuple[grpc.StatusCode, int]] = []
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self.address = ""

    # -- running it --------------------------------------------------------------------

    def __enter__(self) -> WriteApi:
        # The gRPC default receive limit (4 MB) would refuse large requests before the
        # rule above could: lift it, so the 10 MB rule is the stand-in's own.
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                   options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)])
        unary = {
            "CreateWriteStream": (self._create, types.CreateWriteStreamRequest, types.WriteStream),
            "GetWriteStream": (self._get, types.GetWriteStreamRequest, types.WriteStream),
            "FinalizeWriteStream": (self._finalize, types.FinalizeWriteStreamRequest,
                                    types.FinalizeWriteStreamResponse),
            "BatchCommitWriteStreams": (self._commit, types.BatchCommitWriteStreamsRequest,
                                        types.BatchCommitWriteStreamsResponse),
        }
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._unary(name, handler), request_deserializer=request.deserialize,
                response_serializer=response.serialize)
            for name, (handler, request, response) in unary.items()
        }
        handlers["AppendRows"] = grpc.stream_stream_rpc_method_handler(
            self._append_rows, request_deserializer=types.AppendRowsRequest.deserialize,
            response_serializer=types.AppendRowsResponse.serialize)
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.address = f"127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop(grace=None)

    def client(self) -> BigQueryWriteClient:
        """The real client on a plain channel to the stand-in (as the job builds it for an emulator)."""
        return BigQueryWriteClient(transport=BigQueryWriteGrpcTransport(channel=grpc.insecure_channel(self.address)))

    # -- what tests arm and read ---------------------------------------------------------

    def fail_next_append(self, code: grpc.StatusCode, *, after_responses: int = 0) -> None:
        """End the next AppendRows call with ``code`` once it has answered ``after_responses`` requests."""
        self._faults.append((code, after_responses))

    def collect(self, stream: str, answer: grpc.StatusCode = grpc.StatusCode.NOT_FOUND) -> None:
        """Garbage-collect a stream: calls naming it get ``answer``; an uncommitted one's rows are
        gone, a committed one's stay in the table (BigQuery drops a pending stream uncommitted
        after 24 hours, and a committed stream's metadata after days without traffic)."""
        found = self.streams[stream]
        found.gone, found.batches, found.rows = answer, [], 0

    def rows(self, table: str) -> pa.Table | None:
        """The rows committed to ``table`` (its last name part), or None."""
        batches = self.committed.get(table)
        return pa.Table.from_batches(batches) if batches else None

    def count(self, table: str, column: str, value: str) -> int:
        rows = self.rows(table)
        return 0 if rows is None else sum(1 for v in rows.column(column).to_pylist() if v == value)

    def appends(self) -> list[Call]:
        return [call for call in self.calls if call.method == "AppendRows"]

    # -- the RPCs --------------------------------------------------------------------------

    def _unary(self, method: str, handler: Any) -> Any:
        resource = {"CreateWriteStream": "parent", "BatchCommitWriteStreams": "parent"}.get(method, "name")

        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            call = Call(method, _routing(context), [request], [type(request).pb(request).ByteSize()])
            self.calls.append(call)
            if call.routing.get(resource) != getattr(request, resource):
                _abort(call, context, grpc.StatusCode.INVALID_ARGUMENT, "Cannot route on empty project id ''")
            with self._lock:
                return handler(request, context, call)

        return handle

    def _create(self, request: types.CreateWriteStreamRequest, context: Any, call: Call) -> types.WriteStream:
        if request.write_stream.type_ != types.WriteStream.Type.PENDING:
            _abort(call, context, grpc.StatusCode.UNIMPLEMENTED, "the stand-in keeps PENDING streams only")
        name = f"{request.parent}/streams/{uuid.uuid4().hex}"
        self.streams[name] = Stream(name, request.parent.rsplit("/", 1)[-1])
        return types.WriteStream(name=name, type_=types.WriteStream.Type.PENDING, create_time=_now())

    def _stream(self, name: str, context: Any, call: Call) -> Stream:
        found = self.streams.get(name)
        if found is None:
            _abort(call, context, grpc.StatusCode.NOT_FOUND, f"Requested entity was not found. Entity: {name}")
        if found.gone is not None:
            _abort(call, context, found.gone, f"Stream is garbage collected. Entity: {name}")
        return found

    def _get(self, request: types.GetWriteStreamRequest, context: Any, call: Call) -> types.WriteStream:
        found = self._stream(request.name, context, call)
        return types.WriteStream(name=found.name, type_=types.WriteStream.Type.PENDING,
                                 commit_time=_now() if found.committed else None)

    def _finalize(self, request: Any, context: Any, call: Call) -> types.FinalizeWriteStreamResponse:
        found = self._stream(request.name, context, call)
        found.finalized = True
        return types.FinalizeWriteStreamResponse(row_count=found.rows)

    def _commit(self, request: Any, context: Any, call: Call) -> types.BatchCommitWriteStreamsResponse:
        errors = []
        for name in request.write_streams:
            found = self.streams.get(name)
            if found is None or found.gone is not None:
                errors.append(types.StorageError(code=_ERRORS.INVALID_STREAM_STATE, entity=name,
                                                 error_message="Stream is not found or garbaged"))
            elif found.committed:
                errors.append(types.StorageError(code=_ERRORS.STREAM_ALREADY_COMMITTED, entity=name,
                                                 error_message="Stream is already committed"))
            elif not found.finalized:
                errors.append(types.StorageError(code=_ERRORS.INVALID_STREAM_STATE, entity=name,
                                                 error_message="Stream is not finalized"))
            elif f"{request.parent}/streams/" not in name:
                errors.append(types.StorageError(code=_ERRORS.INVALID_STREAM_STATE, entity=name,
                                                 error_message="Stream is not of the parent table"))
        if errors:
            return types.BatchCommitWriteStreamsResponse(stream_errors=errors)
        for name in request.write_streams:
            found = self.streams[name]
            found.committed = True
            self.committed.setdefault(found.table, []).extend(found.batches)
        return types.BatchCommitWriteStreamsResponse(commit_time=_now())

    def _append_rows(self, requests: Iterator[types.AppendRowsRequest], context: Any) -> Iterator[Any]:
        call = Call("AppendRows", _routing(context), [], [])
        self.calls.append(call)
        fault = self._faults.pop(0) if self._faults else None
        schema: pa.Schema | None = None
        target: str | None = None
        for request in requests:
            if fault and len(call.requests) == fault[1]:
                _abort(call, context, fault[0], f"injected: {fault[0].name}")
            size = types.AppendRowsRequest.pb(request).ByteSize()
            call.requests.append(request)
            call.request_bytes.append(size)
            if target is None:
                target = request.write_stream
                if not target or call.routing.get("write_stream") != target:
                    _abort(call, context, grpc.StatusCode.INVALID_ARGUMENT, "Cannot route on empty project id ''")
                if not request.arrow_rows.writer_schema.serialized_schema:
                    _abort(call, context, grpc.StatusCode.INVALID_ARGUMENT,
                           "The first request of a connection must carry the writer schema")
                schema = pa.ipc.read_schema(pa.py_buffer(request.arrow_rows.writer_schema.serialized_schema))
            elif request.write_stream and request.write_stream != target:
                _abort(call, context, grpc.StatusCode.INVALID_ARGUMENT, "write_stream differs from the first request")
            if size > MAX_REQUEST_BYTES:
                _abort(call, context, grpc.StatusCode.INVALID_ARGUMENT,
                       f"AppendRows request too large: {size} bytes, limit {MAX_REQUEST_BYTES}")
            yield self._append(request, target, schema, context, call)
        if fault and len(call.requests) == fault[1]:
            _abort(call, context, fault[0], f"injected: {fault[0].name}")

    def _append(self, request: Any, target: str, schema: pa.Schema, context: Any, call: Call) -> Any:
        with self._lock:
            found = self._stream(target, context, call)
            if found.finalized:
                return _refused(target, code_pb2.INVALID_ARGUMENT, f"Stream is finalized: {target}")
            offset = request.offset if "offset" in request else found.rows
            if offset > found.rows:
                return _refused(target, code_pb2.OUT_OF_RANGE, f"offset {offset} is beyond the end {found.rows}")
            if offset < found.rows:
                return _refused(target, code_pb2.ALREADY_EXISTS, f"offset {offset} already written")
            try:
                batch = pa.ipc.read_record_batch(
                    pa.py_buffer(request.arrow_rows.rows.serialized_record_batch), schema)
            except pa.ArrowException as error:
                return _refused(target, code_pb2.INVALID_ARGUMENT, f"rows do not fit the writer schema: {error}")
            found.batches.append(batch)
            found.rows += batch.num_rows
            return types.AppendRowsResponse(
                append_result=types.AppendRowsResponse.AppendResult(offset=offset), write_stream=target)


def _refused(stream: str, code: int, message: str) -> types.AppendRowsResponse:
    return types.AppendRowsResponse(error=status_pb2.Status(code=code, message=message), write_stream=stream)


def _routing(context: grpc.ServicerContext) -> dict[str, str]:
    """Every ``x-goog-request-params`` value of the call, read as one query string."""
    values = [value for key, value in context.invocation_metadata() if key == ROUTING_HEADER]
    return dict(parse_qsl("&".join(values)))


def _abort(call: Call, context: grpc.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    call.status = code.name
    context.abort(code, message)


def _now() -> datetime:
    return datetime.now(timezone.utc)
