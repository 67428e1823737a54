"""The fleet's gRPC transport (grpc, grpc_health, grpc_reflection and google.protobuf's one home): the server
(RepositoryService, health checking, reflection, the bearer token, TLS) and the client's channel."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import Message as Message  # type: ignore[import-untyped]
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from committer.core import logs, values
from committer.core.errors import ConfigError, redact
from committer.fleet import fleet_pb2_grpc
from committer.fleet.apitoken import TokenFile
from committer.fleet.rules import FleetError

if TYPE_CHECKING:  # the server's side: a client (the CLI) never loads the store and its database library
    from committer.fleet.api import RepositoryApi, Send
    from committer.fleet.config import FleetConfig
    from committer.fleet.store import Store

SERVICE = "committer.fleet.v1.RepositoryService"
HEALTH = "/grpc.health.v1.Health/"  # open without a token: a Kubernetes gRPC probe sends no metadata
WORKERS = 16
MAX_REASON = 1000  # characters of a refusal's one line
log = logs.get(__name__)


class GrpcServer:
    """A started server: `port` is the one it listens on (the one the OS chose for port 0)."""

    def __init__(self, server: Any, health_servicer: Any, port: int) -> None:
        self._server = server
        self._health = health_servicer
        self.port = port

    def stop(self, grace: float) -> None:
        """Answer NOT_SERVING, let calls under way finish for `grace` seconds, then end them."""
        self._health.enter_graceful_shutdown()
        self._server.stop(grace).wait()

    def wait(self) -> None:
        self._server.wait_for_termination()


def serve_grpc(config: FleetConfig, store: Store, send: Send) -> GrpcServer:
    """Listen on config.grpc and serve RepositoryService, health checking and reflection."""
    from committer.fleet.api import RepositoryApi

    interceptors = [_TokenCheck(TokenFile(config.api_token_file))] if config.api_token_file else []
    server = grpc.server(ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="fleet-grpc"),
                         interceptors=interceptors)
    fleet_pb2_grpc.add_RepositoryServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _Servicer(RepositoryApi(store, send)), server)
    checker = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    for name in ("", SERVICE):
        checker.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection((SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    address = _bind_address(config.grpc)
    try:
        if config.tls_cert and config.tls_key:
            pair = (_read("tls_key", config.tls_key), _read("tls_cert", config.tls_cert))
            port = server.add_secure_port(address, grpc.ssl_server_credentials([pair]))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if not port:
        server.stop(0)
        raise ConfigError("grpc", f"cannot listen on {config.grpc}: the port is taken or the address is not "
                                  "this machine's")
    server.start()
    log.info("grpc_listening", address=address, port=port, tls=bool(config.tls_cert),
             token=config.api_token_file is not None)
    return GrpcServer(server, checker, port)


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(setting, f"cannot read {path}: {exc.strerror}") from None


def _bind_address(text: str) -> str:
    """HOST:PORT for grpc; port 0 (the OS picks one, for tests) is allowed here though not as a setting."""
    host, _, port = text.strip().rpartition(":")
    if port == "0":
        return f"{host or '127.0.0.1'}:0"
    parsed = values.parse_address("grpc", text)
    if parsed is None:
        raise ConfigError("grpc", "expected HOST:PORT such as 127.0.0.1:50051")
    return target(*parsed)


def target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Servicer:
    """RepositoryService for grpc: each RPC calls the API's method of the same name; a FleetError becomes its
    status code with its one line, anything else INTERNAL (logged here, not shown to the caller)."""

    def __init__(self, api: RepositoryApi) -> None:
        from committer.fleet.api import METHODS

        for name in METHODS:
            setattr(self, name, self._method(name, getattr(api, name)))

    @staticmethod
    def _method(name: str, call: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        from committer.fleet.api import CODES

        def handle(request: Any, context: Any) -> Any:
            try:
                return call(request)
            except FleetError as exc:
                reason = redact(exc.message)
                if len(reason) > MAX_REASON:  # a huge value echoed back would not fit in the status's trailer
                    reason = reason[:MAX_REASON] + "..."
                log.info("rpc_refused", method=name, kind=exc.kind, reason=reason)
                context.abort(grpc.StatusCode[CODES[exc.kind]], reason)
            except Exception:
                log.exception("rpc_failed", method=name)
                context.abort(grpc.StatusCode.INTERNAL, f"{name} failed on the server; its log says why")
            raise AssertionError("context.abort returned")  # pragma: no cover

        return handle


class _TokenCheck(grpc.ServerInterceptor):  # type: ignore[misc]
    """Every call but health checks carries `authorization: Bearer <token>`, compared in constant time."""

    def __init__(self, token: TokenFile) -> None:
        self._token = token  # read again when the file changes: a rotated token needs no restart

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or details.method.startswith(HEALTH):
            return handler
        given = next((value for key, value in details.invocation_metadata or () if key == "authorization"), "")
        raw = given.encode() if isinstance(given, str) else bytes(given)
        if hmac.compare_digest(raw, b"Bearer " + self._token.current()):
            return handler
        reason = "this call needs `authorization: Bearer <token>`" if not raw else "the bearer token is wrong"
        log.info("rpc_unauthenticated", method=details.method, token_given=bool(raw))
        return _deny(handler, reason)


def _deny(handler: Any, reason: str) -> Any:
    """A handler of the same shape as `handler` that answers UNAUTHENTICATED."""

    def abort(_request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


# The client side


class CallFailed(Exception):
    """A call the server refused or could not be reached for: the status code's name and its one line."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Connection:
    """A channel to a fleet's API: `call("GetRepository", request)` returns the answer or raises CallFailed."""

    def __init__(self, server: str, token: str = "", tls_ca: Path | None = None, timeout: float = 30.0) -> None:
        parsed = values.parse_address("server", server)
        if parsed is None:
            raise ConfigError("server", "expected HOST:PORT such as 127.0.0.1:50051")
        address = target(*parsed)
        if tls_ca is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates=_read("tls_ca", tls_ca))
            self._channel = grpc.secure_channel(address, credentials)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = fleet_pb2_grpc.RepositoryServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout = timeout

    def call(self, method: str, request: Message) -> Any:
        try:
            return getattr(self._stub, method)(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise CallFailed(exc.code().name, " ".join((exc.details() or "").split())) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def to_json(message: Message) -> str:
    """A message as protobuf's JSON, with the .proto's field names and every field, even when empty."""
    return str(json_format.MessageToJson(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True, indent=2))
