"""FakeKube: an in-memory Kubernetes API server over real HTTP, for tests without a cluster.

The official ``kubernetes`` client, pycalrissian and ``kubectl`` reach it through a generated
kubeconfig exactly as they would reach a cluster: REST/JSON over HTTP/1.1 keep-alive on
127.0.0.1, watches, pod logs, and exec over websocket. It stores objects, fills in what an API
server fills in (uid, resourceVersion, defaults, status), refuses what a real one refuses (so
tests catch the same bugs) and tells attached controllers (``cluster.py``) about every change.
Nothing runs here: a pod only moves when a controller moves it.

Not emulated: authentication and RBAC enforcement, quotas, server-side apply, field managers,
strategic-merge list semantics, pagination, OpenAPI, protobuf (415), SPDY. ``https=True``
serves TLS with a self-signed certificate (``tls``) and gives pods service-account files, for
programs that use the in-cluster configuration; ``log?follow=true`` streams until the
container terminates. The exec part lives in ``websocket`` (framing), ``exec_commands`` (the
tiny interpreter) and ``pod_files`` (container paths to host folders).
With kubectl: get, logs, exec and cp work; create or apply manifests with ``-f ...
--validate=false`` (typed commands such as ``kubectl create namespace`` send protobuf).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import json
import random
import re
import select
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from . import tls, websocket
from .exec_commands import run_command
from .pod_files import PodFiles

Obj = dict[str, Any]
Listener = Callable[[str, str, Obj], None]
LabelMatch = Callable[[dict[str, str]], bool]
FieldMatch = Callable[[Obj], bool]


# --- The resources served --------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One API resource: URL plural, kind, group/version, scope and subresources."""

    plural: str
    kind: str
    group_version: str = "v1"
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    short_names: tuple[str, ...] = ()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


KINDS: dict[str, Kind] = {
    kind.plural: kind
    for kind in (
        Kind("namespaces", "Namespace", namespaced=False, subresources=("status", "finalize")),
        Kind("pods", "Pod", subresources=("status", "log", "exec"), short_names=("po",)),
        Kind("configmaps", "ConfigMap", short_names=("cm",)),
        Kind("secrets", "Secret"),
        Kind("serviceaccounts", "ServiceAccount", short_names=("sa",)),
        Kind("persistentvolumeclaims", "PersistentVolumeClaim", subresources=("status",)),
        Kind("resourcequotas", "ResourceQuota", subresources=("status",), short_names=("quota",)),
        Kind("events", "Event", short_names=("ev",)),
        Kind("services", "Service", subresources=("status",), short_names=("svc",)),
        Kind("jobs", "Job", "batch/v1", subresources=("status",)),
        Kind("roles", "Role", "rbac.authorization.k8s.io/v1"),
        Kind("rolebindings", "RoleBinding", "rbac.authorization.k8s.io/v1"),
    )
}
GROUP_VERSIONS = sorted({kind.group_version for kind in KINDS.values()})
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PROTECTED_NAMESPACES = ("default", "kube-system", "kube-public")
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
INJECTABLE_VERBS = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "log",
    "exec",
)
WATCH_TIMEOUT_DEFAULT = 300.0  # seconds, when the client gives none (a cluster: 30 to 60 min)
EXEC_TIMEOUT = 120.0  # seconds an exec session may wait for its client
HISTORY_SIZE = 20_000  # changes kept for watches that resume from a resourceVersion
MAX_BODY = 256 * 1024 * 1024
_NAME_SUFFIX_LETTERS = "bcdfghjklmnpqrstvwxz2456789"  # as the API server's generateName


def now_rfc3339() -> str:
    """The time as the API server writes it (RFC 3339, seconds, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- Errors, as Status objects ---------------------------------------------------------------

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """A refusal of the API server, served as a ``kind: Status`` object with that HTTP code."""

    def __init__(
        self, code: int, message: str, *, reason: str | None = None, details: Obj | None = None
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> Obj:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _not_found(plural: str, name: str) -> ApiError:
    return ApiError(404, f'{plural} "{name}" not found', details={"name": name, "kind": plural})


def _path_not_found() -> ApiError:
    return ApiError(404, "the server could not find the requested resource")


def _invalid(kind: Kind, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """A 422 worded as the API server words it, one cause per (field, problem)."""
    lines = [f"{field}: {problem}" for field, problem in causes]
    summary = lines[0] if len(lines) == 1 else "[" + ", ".join(lines) + "]"
    return ApiError(
        422,
        f'{kind.kind} "{name}" is invalid: {summary}',
        details={
            "name": name,
            "kind": kind.kind,
            "causes": [
                {
                    "reason": "FieldValueRequired"
                    if problem.startswith("Required")
                    else "FieldValueInvalid",
                    "message": problem,
                    "field": field,
                }
                for field, problem in causes
            ],
        },
    )


def _injected_error(code: int, verb: str, resource: str, namespace: str | None, name: str | None):
    """The Status a real server would plausibly send with that code."""
    target = f'{resource} "{name}"' if name else resource
    messages = {
        403: f'{target} is forbidden: User "system:serviceaccount:default:fake" cannot {verb} '
        f'resource "{resource}" in the namespace "{namespace or ""}"',
        409: f"Operation cannot be fulfilled on {target}: the object has been modified; "
        "please apply your changes to the latest version and try again",
        429: "Too many requests, please try again later.",
        500: "Internal error occurred: injected fault",
        503: "the server is currently unable to handle the request",
    }
    message = messages.get(code, f"injected fault on {verb} {target}")
    return ApiError(code, message, details={"name": name or "", "kind": resource})


# --- Validation (what makes a real API server answer 422) ------------------------------------

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_DNS_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_LABEL_KEY_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character, with at most 63 characters and an optional DNS "
    "subdomain prefix and '/'"
)


def _invalid_value(value: Any, message: str) -> str:
    return f'Invalid value: "{value}": {message}'


def name_problems(kind: Kind, name: str) -> list[str]:
    """Why ``name`` is not a valid name for ``kind`` (empty when it is)."""
    if kind.plural in ("roles", "rolebindings"):  # path segment names
        if name in (".", "..") or "/" in name or "%" in name:
            return ["may not be '.' or '..' and may not contain '/' or '%'"]
        return []
    problems = []
    if kind.plural in ("namespaces", "services"):
        if len(name) > 63:
            problems.append("must be no more than 63 characters")
        if not _DNS_LABEL.fullmatch(name):
            problems.append(_DNS_LABEL_MESSAGE)
        return problems
    limit = 63 if kind.plural == "jobs" else 253  # a Job's name is also a label value
    if len(name) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not _DNS_SUBDOMAIN.fullmatch(name):
        problems.append(_DNS_SUBDOMAIN_MESSAGE)
    return problems


def label_problems(field: str, labels: Any) -> list[tuple[str, str]]:
    """Invalid label keys and values (values: at most 63 characters, restricted alphabet)."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [(field, "Invalid value: must be a map of strings")]
    causes = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        bad_prefix = prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix))
        if bad_prefix or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
            causes.append((field, _invalid_value(key, _LABEL_KEY_MESSAGE)))
        if not isinstance(value, str):
            causes.append((f"{field}[{key}]", "Invalid value: must be a string"))
        elif len(value) > 63:
            causes.append((field, _invalid_value(value, "must be no more than 63 characters")))
        elif not _LABEL_VALUE.fullmatch(value):
            causes.append((field, _invalid_value(value, _LABEL_VALUE_MESSAGE)))
    return causes


def _pod_spec_problems(spec: Any, field: str) -> list[tuple[str, str]]:
    """The pod spec checks that catch real mistakes: containers, images, mounts."""
    if not isinstance(spec, dict):
        return [(field, "Required value")]
    containers = spec.get("containers")
    if not containers:
        return [(f"{field}.containers", "Required value")]
    causes: list[tuple[str, str]] = []
    volume_names = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name") or ""
        if not _DNS_LABEL.fullmatch(name) or len(name) > 63:
            causes.append(
                (f"{field}.volumes[{index}].name", _invalid_value(name, _DNS_LABEL_MESSAGE))
            )
        volume_names.add(name)
    for index, container in enumerate(containers + (spec.get("initContainers") or [])):
        where = f"{field}.containers[{index}]"
        name = container.get("name")
        if not name:
            causes.append((f"{where}.name", "Required value"))
        elif not _DNS_LABEL.fullmatch(name) or len(name) > 63:
            causes.append((f"{where}.name", _invalid_value(name, _DNS_LABEL_MESSAGE)))
        if not container.get("image"):
            causes.append((f"{where}.image", "Required value"))
        for mount_index, mount in enumerate(container.get("volumeMounts") or []):
            mount_field = f"{where}.volumeMounts[{mount_index}]"
            if mount.get("name") not in volume_names:
                causes.append((f"{mount_field}.name", f'Not found: "{mount.get("name")}"'))
            if not mount.get("mountPath"):
                causes.append((f"{mount_field}.mountPath", "Required value"))
            if ".." in PurePosixPath(mount.get("subPath") or "").parts:
                causes.append(
                    (
                        f"{mount_field}.subPath",
                        _invalid_value(mount["subPath"], "must not contain '..'"),
                    )
                )
    return causes


def _pod_spec_defaults(spec: Obj) -> None:
    """The defaults the API server writes into every pod spec."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    spec["serviceAccountName"] = spec["serviceAccount"] = account
    for container in spec["containers"] + (spec.get("initContainers") or []):
        image = container["image"]
        untagged = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
        latest = untagged or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


# --- Selectors -------------------------------------------------------------------------------

_SET_TERM = re.compile(r"(?P<key>[^\s!=(),]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)")
_EQUALITY_TERM = re.compile(r"(?P<key>[^\s!=(),]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=(),]*)")
_EXISTS_TERM = re.compile(r"(?P<negated>!?)\s*(?P<key>[^\s!=(),]+)")


def _terms(text: str) -> list[str]:
    """Split a selector on the commas that are not inside ``in (...)`` lists."""
    terms, depth, current = [], 0, []
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    terms.append("".join(current))
    return [term.strip() for term in terms if term.strip()]


def parse_label_selector(text: str | None) -> LabelMatch:
    """``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` and ``!key``, as the API server."""
    checks: list[LabelMatch] = []
    for term in _terms(text or ""):
        if match := _SET_TERM.fullmatch(term):
            values = {value.strip() for value in match["values"].split(",") if value.strip()}
            inside = match["op"] == "in"
            checks.append(
                lambda labels, k=match["key"], v=values, i=inside: (labels.get(k) in v) == i
            )
        elif match := _EQUALITY_TERM.fullmatch(term):
            equal = match["op"] != "!="
            checks.append(
                lambda labels, k=match["key"], v=match["value"], e=equal: (labels.get(k) == v) == e
            )
        elif match := _EXISTS_TERM.fullmatch(term):
            present = not match["negated"]
            checks.append(lambda labels, k=match["key"], p=present: (k in labels) == p)
        else:
            raise ApiError(400, f"unable to parse requirement: invalid label selector {term!r}")
    return lambda labels: all(check(labels) for check in checks)


def _field_value(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(text: str | None) -> FieldMatch:
    """``=``, ``==`` and ``!=`` on any dotted path (``metadata.name``, ``status.phase``...)."""
    checks: list[FieldMatch] = []
    for term in _terms(text or ""):
        match = _EQUALITY_TERM.fullmatch(term)
        if match is None:
            raise ApiError(400, f"invalid field selector: {term!r}")
        equal = match["op"] != "!="
        checks.append(
            lambda obj, p=match["key"], v=match["value"], e=equal: (_field_value(obj, p) == v) == e
        )
    return lambda obj: all(check(obj) for check in checks)


def _selected(obj: Obj, labels: LabelMatch, fields: FieldMatch) -> bool:
    return labels(obj.get("metadata", {}).get("labels") or {}) and fields(obj)


# --- Patches ---------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also used for strategic merge: no list semantics)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise ApiError(422, f"invalid JSON pointer: {path!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in path.split("/")[1:]]


def _walk(doc: Any, tokens: list[str]) -> Any:
    try:
        for token in tokens:
            doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ApiError(422, f"JSON patch path not found: /{'/'.join(tokens)}") from None
    return doc


def _patch_add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, key = _walk(doc, tokens[:-1]), tokens[-1]
    if isinstance(parent, list):
        index = len(parent) if key == "-" else int(key) if key.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise ApiError(422, f"JSON patch index out of range: {key}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[key] = value
    else:
        raise ApiError(422, f"JSON patch cannot add below a value: /{'/'.join(tokens)}")
    return doc


def _patch_remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise ApiError(422, "JSON patch cannot remove the whole document")
    parent, key = _walk(doc, tokens[:-1]), tokens[-1]
    value = _walk(parent, [key])
    if isinstance(parent, list):
        del parent[int(key)]
    else:
        del parent[key]
    return value


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, move, copy, test."""
    if not isinstance(operations, list):
        raise ApiError(400, "a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict):
            raise ApiError(400, "a JSON patch operation must be an object")
        op, path = operation.get("op"), _pointer(operation.get("path"))
        if op == "add":
            doc = _patch_add(doc, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _patch_remove(doc, path)
        elif op == "replace":
            _walk(doc, path)
            if path:
                _patch_remove(doc, path)
            doc = _patch_add(doc, path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from"))
            value = copy.deepcopy(_walk(doc, source))
            if op == "move":
                _patch_remove(doc, source)
            doc = _patch_add(doc, path, value)
        elif op == "test":
            if _walk(doc, path) != operation.get("value"):
                raise ApiError(422, f"JSON patch test failed at {operation.get('path')}")
        else:
            raise ApiError(422, f"unknown JSON patch operation: {op!r}")
    return doc


# --- Records for tests: requests and planned faults ------------------------------------------


class Request(NamedTuple):
    """One API request as a test sees it (namespaces: the namespace is the object's name)."""

    verb: str
    resource: str
    namespace: str | None
    name: str | None


class RequestLog(list):
    """Every request served, in order; appended to by the server threads."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def append(self, request: Request) -> None:
        with self._lock:
            super().append(request)

    def clear(self) -> None:
        with self._lock:
            super().clear()

    def snapshot(self) -> list[Request]:
        with self._lock:
            return list(self)

    def matching(
        self, verb: str | None = None, resource: str | None = None, namespace: str | None = None
    ) -> list[Request]:
        """The requests with that verb, resource and namespace (None: any)."""
        return [
            request
            for request in self.snapshot()
            if verb in (None, request.verb)
            and resource in (None, request.resource)
            and namespace in (None, request.namespace)
        ]


@dataclass
class Injection:
    """A fault planned by ``FakeKube.inject``; ``fired`` counts the faults delivered so far."""

    verb: str
    resource: str
    status: int | None
    drop: bool
    nth: int
    times: int
    seen: int = 0
    fired: int = 0

    def due(self, verb: str, resource: str) -> bool:
        """Count a matching request; whether this one is to fail."""
        if self.verb not in ("*", verb) or self.resource not in ("*", resource):
            return False
        self.seen += 1
        return self.nth <= self.seen < self.nth + self.times


class _Change(NamedTuple):
    rv: int
    resource: str
    namespace: str
    type: str
    obj: Obj


@dataclass
class _Route:
    """What a request path and method address."""

    verb: str
    kind: Kind | None = None
    namespace: str | None = None
    name: str | None = None
    sub: str | None = None
    discovery: Obj | None = None

    @property
    def resource(self) -> str:
        if self.kind is None:
            return "discovery"
        return f"{self.kind.plural}/{self.sub}" if self.sub else self.kind.plural


# --- The server ------------------------------------------------------------------------------


class FakeKube:
    """An in-memory Kubernetes API server on 127.0.0.1 (see the module docstring).

    Tests read ``requests`` (every request), plan faults with ``inject``, mark images and
    storage classes as broken (``unpullable_images``, ``unschedulable_storage_classes``, which
    the controllers honour) and inspect ``objects``, ``namespaces`` and ``pvc_dir``.
    Controllers use ``subscribe``, ``create``, ``modify``, ``delete``, ``append_log``,
    ``pod_files`` and ``mount_volumes``, which bypass HTTP (not recorded, never faulted).
    """

    def __init__(self, state_dir: str | Path | None = None, *, https: bool = False):
        self._own_state = state_dir is None
        self.https = https
        self.ca_path: Path | None = None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="fake-kube-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.requests = RequestLog()
        self.unpullable_images: set[str] = set()
        self.unschedulable_storage_classes: set[str] = set()
        self.url = ""
        self.port = 0
        self.kubeconfig_path = self.state_dir / "kubeconfig"
        self._cond = threading.Condition(threading.RLock())
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._history: deque[_Change] = deque(maxlen=HISTORY_SIZE)
        self._history_floor = 0
        self._rv = 0
        self._listeners: list[Listener] = []
        self._logs: dict[tuple[str, str, str], str] = {}
        self._injections: list[Injection] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        for namespace in INITIAL_NAMESPACES:
            self.create("namespaces", None, {"metadata": {"name": namespace}})

    # Life cycle

    def start(self) -> FakeKube:
        """Listen on a free port of 127.0.0.1 and write the kubeconfig."""
        if self._server is not None:
            return self
        self._stopping.clear()
        context = None
        if self.https:
            self.ca_path, key = tls.make_certificate(self.state_dir / "tls")
            context = tls.server_context(self.ca_path, key)
        self._server = _Server(self, context)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if self.https else 'http'}://127.0.0.1:{self.port}"
        self.kubeconfig_path.write_text(_kubeconfig(self.url, self.ca_path))
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-kube-server",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self) -> None:
        """Close every connection (watches and exec sessions included) and join the threads."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections(timeout=5)
            if self._serve_thread is not None:
                self._serve_thread.join(timeout=5)
            self._server = None
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # For tests

    def inject(
        self,
        verb: str,
        resource: str,
        *,
        status: int | None = None,
        drop: bool = False,
        nth: int = 1,
        times: int = 1,
    ) -> Injection:
        """Fail the ``nth`` matching request from now on (and the ``times - 1`` next ones).

        With ``status`` the request gets that HTTP code as a Status object (a 429 carries
        ``Retry-After: 0``); with ``drop=True`` the connection is closed without an answer.
        ``verb`` is one of INJECTABLE_VERBS or "*"; ``resource`` a plural ("pods"), a
        subresource ("pods/log", "pods/exec", "jobs/status") or "*".
        """
        if (status is None) == (not drop):
            raise ValueError("give either status=<HTTP code> or drop=True")
        if verb != "*" and verb not in INJECTABLE_VERBS:
            raise ValueError(f"unknown verb {verb!r}: one of {INJECTABLE_VERBS} or '*'")
        if nth < 1 or times < 1:
            raise ValueError("nth and times count from 1")
        injection = Injection(verb, resource, status, drop, nth, times)
        with self._cond:
            self._injections.append(injection)
        return injection

    def clear_injections(self) -> None:
        with self._cond:
            self._injections.clear()

    def pvc_dir(self, namespace: str, claim: str) -> Path:
        """The host folder behind a PersistentVolumeClaim (kept after deletion, for tests)."""
        path = self.state_dir / "volumes" / namespace / claim
        path.mkdir(parents=True, exist_ok=True)
        return path

    def pod_dir(self, namespace: str, pod: str) -> Path:
        """A pod's private host folder (emptyDir and configMap volumes, root filesystem)."""
        path = self.state_dir / "pods" / namespace / pod
        path.mkdir(parents=True, exist_ok=True)
        return path

    def objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Copies of the stored objects of a resource (sorted by namespace and name)."""
        with self._cond:
            return [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in sorted(self._objects.items())
                if plural == resource and namespace in (None, ns)
            ]

    def namespaces(self) -> list[str]:
        return [obj["metadata"]["name"] for obj in self.objects("namespaces")]

    def get(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        """A copy of one stored object, or None."""
        with self._cond:
            obj = self._objects.get((resource, namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def pod_log(self, namespace: str, pod: str, container: str | None = None) -> str:
        """What ``GET .../pods/<pod>/log`` would return (first container by default)."""
        with self._cond:
            if container is None:
                found = self.get("pods", namespace, pod)
                container = found["spec"]["containers"][0]["name"] if found else ""
            return self._logs.get((namespace, pod, container), "")

    # For controllers

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(event_type, resource, object)`` after every change.

        It is called with the store locked, in change order: it must only record or enqueue.
        """
        with self._cond:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._cond:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def create(self, resource: str, namespace: str | None, obj: Obj) -> Obj:
        """Create as a POST would (admission, defaults, events); ApiError when refused."""
        with self._cond:
            return self._create(KINDS[resource], namespace, obj)

    def modify(
        self, resource: str, namespace: str | None, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Apply ``change`` to a copy of the object and store it; None if it is gone."""
        with self._cond:
            key = (resource, namespace or "", name)
            current = self._objects.get(key)
            if current is None:
                return None
            updated = copy.deepcopy(current)
            change(updated)
            if updated != current:
                self._store(KINDS[resource], updated, "MODIFIED")
            return copy.deepcopy(updated)

    def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        grace_period: int | None = None,
    ) -> Obj | None:
        """Delete as a DELETE would (cascades included); None if it is already gone."""
        with self._cond:
            try:
                return self._delete(
                    KINDS[resource], namespace or "", name, propagation, grace_period
                )
            except ApiError as error:
                if error.code == 404:
                    return None
                raise

    def append_log(self, namespace: str, pod: str, container: str, text: str) -> None:
        """Add to a container's log (what it would print); ignored once the pod is gone."""
        with self._cond:
            if ("pods", namespace, pod) in self._objects:
                key = (namespace, pod, container)
                self._logs[key] = self._logs.get(key, "") + text
                self._cond.notify_all()

    def service_account_dir(self, namespace: str, pod: str) -> Path:
        """The host folder behind a pod's service-account mount (token, ca.crt, namespace)."""
        if self.ca_path is None:
            raise RuntimeError("service accounts need the server started with https=True")
        folder = self.pod_dir(namespace, pod) / "serviceaccount"
        return tls.write_service_account(folder, self.ca_path, namespace)

    def container_ended(self, namespace: str, pod: str, container: str) -> bool:
        """Whether the container has terminated (or its pod is gone): its log is complete."""
        with self._cond:
            found = self._objects.get(("pods", namespace, pod))
            if found is None:
                return True
            statuses = (found.get("status") or {}).get("containerStatuses") or []
            states = [s.get("state") or {} for s in statuses if s.get("name") == container]
            return bool(states) and "terminated" in states[0]

    def follow_log(
        self, namespace: str, pod: str, container: str, gone: Callable[[], bool]
    ) -> Iterator[str]:
        """A container's log as it grows, until the container terminates (``log?follow``)."""
        sent = 0
        while not self._stopping.is_set() and not gone():
            with self._cond:
                text = self._logs.get((namespace, pod, container), "")
                ended = self.container_ended(namespace, pod, container)
                if len(text) == sent and not ended:
                    self._cond.wait(0.1)
                    continue
            if len(text) > sent:
                yield text[sent:]
                sent = len(text)
            if ended:
                return

    def pod_files(self, namespace: str, pod: str, container: str | None = None) -> PodFiles:
        """The file view of one container of a pod (its mounts, then a private root)."""
        found = self.get("pods", namespace, pod)
        if found is None:
            raise _not_found("pods", pod)
        spec = found["spec"]
        containers = spec["containers"] + (spec.get("initContainers") or [])
        chosen = next((c for c in containers if c["name"] == container), containers[0])
        volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
        mounts = []
        for mount in chosen.get("volumeMounts") or []:
            volume = volumes.get(mount["name"])
            if volume is None:
                continue
            host = self._volume_dir(namespace, pod, volume)
            if mount.get("subPath"):
                host = host / mount["subPath"].lstrip("/")
                if not host.exists():  # a kubelet makes a missing subPath a folder
                    host.mkdir(parents=True)
            mounts.append((mount["mountPath"], host))
        root = self.pod_dir(namespace, pod) / "rootfs" / chosen["name"]
        root.mkdir(parents=True, exist_ok=True)
        return PodFiles(mounts, root)

    def mount_volumes(self, namespace: str, pod: str) -> list[str]:
        """Write a pod's configMap and secret volumes as files; the problems that block it."""
        found = self.get("pods", namespace, pod)
        if found is None:
            return [f'pod "{pod}" not found']
        problems = []
        for volume in found["spec"].get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is not None:
                if self.get("persistentvolumeclaims", namespace, claim) is None:
                    problems.append(f'persistentvolumeclaim "{claim}" not found')
                continue
            if "configMap" in volume:
                source = volume["configMap"]
                kind, name = "configmap", source.get("name", "")
                obj = self.get("configmaps", namespace, name)
                content = {
                    key: text.encode() for key, text in ((obj or {}).get("data") or {}).items()
                }
                binary = ((obj or {}).get("binaryData") or {}).items()
                content.update({key: base64.b64decode(data) for key, data in binary})
            elif "secret" in volume:
                source = volume["secret"]
                kind, name = "secret", source.get("secretName", "")
                obj = self.get("secrets", namespace, name)
                secret_data = ((obj or {}).get("data") or {}).items()
                content = {key: base64.b64decode(data) for key, data in secret_data}
            else:
                self._volume_dir(namespace, pod, volume)
                continue
            optional = bool(source.get("optional"))
            if obj is None:
                if not optional:
                    problems.append(f'{kind} "{name}" not found')
                continue
            target = self._volume_dir(namespace, pod, volume)
            items = source.get("items") or [{"key": key, "path": key} for key in content]
            for item in items:
                if ".." in PurePosixPath(item.get("path", "")).parts:
                    problems.append(f"{kind} item path must not contain '..': {item['path']}")
                    continue
                if item["key"] not in content:
                    if not optional:
                        problems.append(f"{kind} references non-existent key: {item['key']}")
                    continue
                path = target / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.unlink(missing_ok=True)  # it may be read-only from a previous attempt
                path.write_bytes(content[item["key"]])
                path.chmod(item.get("mode") or source.get("defaultMode") or 0o644)
        if not problems:  # as a kubelet does when it starts the containers: subPath folders
            for container in found["spec"]["containers"]:
                self.pod_files(namespace, pod, container["name"])
        return problems

    # Storage and semantics (callers hold self._cond)

    def _volume_dir(self, namespace: str, pod: str, volume: Obj) -> Path:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            return self.pvc_dir(namespace, claim)
        path = self.pod_dir(namespace, pod) / "volumes" / volume["name"]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _store(self, kind: Kind, obj: Obj, event_type: str) -> None:
        self._rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._rv)
        self._objects[(kind.plural, meta.get("namespace", ""), meta["name"])] = obj
        self._record(event_type, kind, obj)

    def _record(self, event_type: str, kind: Kind, obj: Obj) -> None:
        if len(self._history) == self._history.maxlen:
            self._history_floor = self._history[0].rv
        snapshot = copy.deepcopy(obj)
        namespace = snapshot["metadata"].get("namespace", "")
        self._history.append(_Change(self._rv, kind.plural, namespace, event_type, snapshot))
        self._cond.notify_all()
        for listener in list(self._listeners):
            listener(event_type, kind.plural, copy.deepcopy(snapshot))

    def _find(self, kind: Kind, namespace: str, name: str) -> Obj:
        obj = self._objects.get((kind.plural, namespace, name))
        if obj is None:
            raise _not_found(kind.plural, name)
        return obj

    def _create(self, kind: Kind, namespace: str | None, body: Any) -> Obj:
        if not isinstance(body, dict) or not isinstance(body.get("metadata") or {}, dict):
            raise ApiError(400, f"the body of the request is not a {kind.kind} object")
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, kind.kind):
            raise ApiError(400, f"the kind in the body ({obj['kind']}) is not {kind.kind}")
        obj["apiVersion"], obj["kind"] = kind.group_version, kind.kind
        meta = obj["metadata"] = obj.get("metadata") or {}
        if kind.namespaced:
            given = meta.get("namespace")
            if given and namespace and given != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            namespace = namespace or given
            if not namespace:
                raise ApiError(400, "a namespace is required")
            if ("namespaces", "", namespace) not in self._objects:
                raise _not_found("namespaces", namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = ""
        name = meta.get("name")
        if not name:
            prefix = meta.get("generateName")
            if not prefix:
                raise _invalid(
                    kind,
                    "",
                    [("metadata.name", "Required value: name or generateName is required")],
                )
            name = prefix + "".join(random.choices(_NAME_SUFFIX_LETTERS, k=5))
        self._decode_check(kind, obj)
        causes = [("metadata.name", _invalid_value(name, p)) for p in name_problems(kind, name)]
        causes += label_problems("metadata.labels", meta.get("labels"))
        if (kind.plural, namespace, name) in self._objects:
            raise ApiError(
                409,
                f'{kind.plural} "{name}" already exists',
                reason="AlreadyExists",
                details={"name": name, "kind": kind.plural},
            )
        for stale in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(stale, None)
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
        causes += self._admit(kind, obj)
        if causes:
            raise _invalid(kind, name, causes)
        if kind.plural == "pods":  # a new pod starts with empty private folders
            shutil.rmtree(self.state_dir / "pods" / namespace / name, ignore_errors=True)
        self._store(kind, obj, "ADDED")
        if kind.plural == "namespaces":  # the ServiceAccount controller
            self._create(KINDS["serviceaccounts"], name, {"metadata": {"name": "default"}})
        elif kind.plural == "persistentvolumeclaims":
            self.pvc_dir(namespace, name)
        return copy.deepcopy(obj)

    def _decode_check(self, kind: Kind, obj: Obj) -> None:
        """The 400s a real server sends when the body cannot be decoded into the type."""
        if kind.plural == "secrets":
            for key, value in (obj.get("data") or {}).items():
                if not _is_base64(value):
                    raise ApiError(
                        400,
                        f'Secret in version "v1" cannot be handled as a Secret: illegal base64 '
                        f"data in data[{key}]",
                    )
        if kind.plural == "configmaps":
            for key, value in (obj.get("data") or {}).items():
                if not isinstance(value, str):
                    raise ApiError(
                        400,
                        f'ConfigMap in version "v1" cannot be handled as a ConfigMap: data[{key}] '
                        "must be a string",
                    )

    def _admit(self, kind: Kind, obj: Obj) -> list[tuple[str, str]]:
        """Kind-specific validation (the 422 causes) and server-side defaults."""
        meta, spec = obj["metadata"], obj.get("spec")
        name, namespace = meta["name"], meta.get("namespace", "")
        if kind.plural == "namespaces":
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
            meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
        elif kind.plural == "pods":
            causes = _pod_spec_problems(spec, "spec")
            if causes:
                return causes
            _pod_spec_defaults(spec)
            account = spec["serviceAccountName"]
            if ("serviceaccounts", namespace, account) not in self._objects:
                raise ApiError(
                    403,
                    f'pods "{name}" is forbidden: error looking up service account '
                    f'{namespace}/{account}: serviceaccount "{account}" not found',
                )
            has_resources = any(c.get("resources") for c in spec["containers"])
            obj["status"] = {
                "phase": "Pending",
                "qosClass": "Burstable" if has_resources else "BestEffort",
            }
        elif kind.plural == "jobs":
            return self._admit_job(obj)
        elif kind.plural == "persistentvolumeclaims":
            return self._admit_pvc(obj)
        elif kind.plural in ("configmaps", "secrets"):
            if kind.plural == "secrets":
                obj.setdefault("type", "Opaque")
                plain = obj.pop("stringData", None) or {}
                encoded = {
                    key: base64.b64encode(str(v).encode()).decode() for key, v in plain.items()
                }
                if encoded:
                    obj["data"] = {**(obj.get("data") or {}), **encoded}
            keys = list(obj.get("data") or {}) + list(obj.get("binaryData") or {})
            return [
                (
                    "data",
                    _invalid_value(
                        key,
                        "a valid config key must consist of alphanumeric characters, '-', "
                        "'_' or '.'",
                    ),
                )
                for key in keys
                if not _CONFIG_KEY.fullmatch(key) or len(key) > 253
            ]
        elif kind.plural == "rolebindings":
            if not (obj.get("roleRef") or {}).get("name"):
                return [("roleRef.name", "Required value")]
        elif kind.plural == "resourcequotas":
            hard = (spec or {}).get("hard") or {}
            obj["status"] = {"hard": dict(hard), "used": dict.fromkeys(hard, "0")}
        elif kind.plural == "services":
            service = obj.setdefault("spec", {})
            service.setdefault("type", "ClusterIP")
            service.setdefault(
                "clusterIP", f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}"
            )
            obj["status"] = {"loadBalancer": {}}
        return []

    def _admit_job(self, obj: Obj) -> list[tuple[str, str]]:
        meta, spec = obj["metadata"], obj.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("template"), dict):
            return [("spec.template", "Required value")]
        template = spec["template"]
        template_meta = template.setdefault("metadata", {}) or {}
        causes = _pod_spec_problems(template.get("spec"), "spec.template.spec")
        causes += label_problems("spec.template.metadata.labels", template_meta.get("labels"))
        policy = (template.get("spec") or {}).get("restartPolicy")
        if policy not in ("Never", "OnFailure"):
            problem = (
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"'
                if policy
                else 'Required value: valid values: "OnFailure", "Never"'
            )
            causes.append(("spec.template.spec.restartPolicy", problem))
        backoff = spec.get("backoffLimit", 6)
        if not isinstance(backoff, int) or backoff < 0:
            causes.append(
                ("spec.backoffLimit", _invalid_value(backoff, "must be greater than or equal to 0"))
            )
        if causes:
            return causes
        uid, name = meta["uid"], meta["name"]
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        template["metadata"] = template_meta
        template_meta["labels"] = {
            **(template_meta.get("labels") or {}),
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        _pod_spec_defaults(template["spec"])
        meta.setdefault("generation", 1)
        obj["status"] = {}
        return []

    def _admit_pvc(self, obj: Obj) -> list[tuple[str, str]]:
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        causes = []
        modes = spec.get("accessModes") or []
        if not modes:
            causes.append(
                ("spec.accessModes", "Required value: at least 1 access mode is required")
            )
        valid = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
        causes += [
            (
                "spec.accessModes",
                f'Unsupported value: "{mode}": supported values: {", ".join(valid)}',
            )
            for mode in modes
            if mode not in valid
        ]
        storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
        if not storage:
            causes.append(("spec.resources[storage]", "Required value"))
        if causes:
            return causes
        obj["spec"] = spec
        spec.setdefault("storageClassName", "standard")
        spec.setdefault("volumeMode", "Filesystem")
        if spec["storageClassName"] in self.unschedulable_storage_classes:
            obj["status"] = {"phase": "Pending"}
        else:
            spec["volumeName"] = f"pvc-{obj['metadata']['uid']}"
            obj["status"] = {
                "phase": "Bound",
                "accessModes": modes,
                "capacity": {"storage": storage},
            }
        return []

    def _update(self, kind: Kind, namespace: str, name: str, body: Any, sub: str | None) -> Obj:
        current = self._find(kind, namespace, name)
        if not isinstance(body, dict) or not isinstance(body.get("metadata") or {}, dict):
            raise ApiError(400, f"the body of the request is not a {kind.kind} object")
        meta = body.get("metadata") or {}
        if meta.get("name") not in (None, name):
            raise ApiError(
                400,
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})",
            )
        version = meta.get("resourceVersion")
        if version not in (None, "") and str(version) != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {kind.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                reason="Conflict",
                details={"name": name, "kind": kind.plural},
            )
        if sub == "status":
            updated = copy.deepcopy(current)
            updated["status"] = copy.deepcopy(body.get("status"))
        elif sub == "finalize":
            updated = copy.deepcopy(current)
            updated["spec"] = copy.deepcopy(body.get("spec"))
        else:
            self._decode_check(kind, body)
            updated = copy.deepcopy(body)
            updated["apiVersion"], updated["kind"] = kind.group_version, kind.kind
            updated["metadata"] = new_meta = dict(updated.get("metadata") or {})
            for kept in ("name", "namespace", "uid", "creationTimestamp", "generateName"):
                if kept in current["metadata"]:
                    new_meta[kept] = current["metadata"][kept]
                else:
                    new_meta.pop(kept, None)
            if kind.has_status:
                updated["status"] = copy.deepcopy(current.get("status"))
            causes = label_problems("metadata.labels", new_meta.get("labels"))
            if causes:
                raise _invalid(kind, name, causes)
        if updated.get("status") is None:
            updated.pop("status", None)
        updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if updated == current:
            return copy.deepcopy(current)
        self._store(kind, updated, "MODIFIED")
        return copy.deepcopy(updated)

    def _patch(
        self, kind: Kind, namespace: str, name: str, body: bytes, content_type: str, sub: str | None
    ) -> Obj:
        current = self._find(kind, namespace, name)
        media = content_type.split(";")[0].strip().lower()
        accepted = (
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        )
        if media not in accepted:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(accepted)}",
            )
        try:
            patch = json.loads(body or b"null")
        except ValueError:
            raise ApiError(400, "the patch is not valid JSON") from None
        if media == "application/json-patch+json":
            result = json_patch(current, patch)
        elif isinstance(patch, dict):
            result = merge_patch(current, patch)
        else:
            raise ApiError(400, "a merge patch must be a JSON object")
        return self._update(kind, namespace, name, result, sub)

    def _delete(
        self, kind: Kind, namespace: str, name: str, propagation: str | None, grace: int | None
    ) -> Obj:
        self._find(kind, namespace, name)
        if kind.plural == "namespaces":
            if name in PROTECTED_NAMESPACES:
                raise ApiError(
                    403, f'namespaces "{name}" is forbidden: this namespace may not be deleted'
                )
            return self._delete_namespace(name)
        policy = propagation or ("Orphan" if kind.plural == "jobs" else "Background")
        if policy not in ("Orphan", "Background", "Foreground"):
            raise ApiError(
                422,
                f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported '
                f'value: "{policy}"',
            )
        return self._remove(kind, namespace, name, policy, grace)

    def _remove(self, kind: Kind, namespace: str, name: str, policy: str, grace: int | None) -> Obj:
        """Delete one object now, then its dependents (or orphan them), as the GC does."""
        obj = self._objects.pop((kind.plural, namespace, name))
        uid = obj["metadata"]["uid"]
        dependents = [
            (plural, dependent_name)
            for (plural, ns, dependent_name), dependent in self._objects.items()
            if ns == namespace
            and any(
                ref.get("uid") == uid for ref in dependent["metadata"].get("ownerReferences") or []
            )
        ]
        meta = obj["metadata"]
        meta["deletionTimestamp"] = now_rfc3339()
        if kind.plural == "pods":
            default_grace = obj["spec"].get("terminationGracePeriodSeconds", 30)
            meta["deletionGracePeriodSeconds"] = default_grace if grace is None else grace
            for key in [key for key in self._logs if key[:2] == (namespace, name)]:
                del self._logs[key]
        self._rv += 1
        meta["resourceVersion"] = str(self._rv)
        self._record("DELETED", kind, obj)
        for plural, dependent_name in dependents:
            if (plural, namespace, dependent_name) not in self._objects:
                continue
            if policy == "Orphan":
                self.modify(plural, namespace, dependent_name, lambda o: _drop_owner(o, uid))
            else:
                self._remove(KINDS[plural], namespace, dependent_name, "Background", grace)
        return copy.deepcopy(obj)

    def _delete_namespace(self, name: str) -> Obj:
        """Terminating, then every object in it deleted, then the namespace itself."""
        self.modify("namespaces", None, name, _terminating)
        for key in sorted(key for key in self._objects if key[1] == name):
            if key in self._objects:
                self._remove(KINDS[key[0]], name, key[2], "Background", None)
        return self._remove(KINDS["namespaces"], "", name, "Background", None)

    def _list(
        self, kind: Kind, namespace: str | None, labels: LabelMatch, fields: FieldMatch
    ) -> Obj:
        items = [
            copy.deepcopy(obj)
            for (plural, ns, _), obj in sorted(self._objects.items())
            if plural == kind.plural and namespace in (None, ns) and _selected(obj, labels, fields)
        ]
        return {
            "kind": f"{kind.kind}List",
            "apiVersion": kind.group_version,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    def _watch(
        self,
        kind: Kind,
        namespace: str | None,
        labels: LabelMatch,
        fields: FieldMatch,
        since: int | None,
        deadline: float,
        client_gone: Callable[[], bool],
    ) -> Iterator[Obj]:
        """Watch events: the current objects (or the changes after ``since``), then new ones."""

        def visible(change: _Change) -> bool:
            return (
                change.resource == kind.plural
                and namespace in (None, change.namespace)
                and _selected(change.obj, labels, fields)
            )

        with self._cond:
            if since is None:
                initial = [
                    {"type": "ADDED", "object": obj}
                    for obj in self._list(kind, namespace, labels, fields)["items"]
                ]
                cursor: int | None = self._rv
            elif since < self._history_floor:
                expired = ApiError(
                    410, f"too old resource version: {since} ({self._history_floor})"
                )
                initial, cursor = [{"type": "ERROR", "object": expired.status()}], None
            else:
                initial, cursor = [], since
        yield from initial
        while cursor is not None and not self._stopping.is_set():
            with self._cond:
                fresh, cursor = self._changes_after(cursor, visible)
                if not fresh:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._cond.wait(min(remaining, 0.25))
                    fresh, cursor = self._changes_after(cursor, visible)
            for change in fresh:
                yield {"type": change.type, "object": change.obj}
            if not fresh and client_gone():
                return

    def _changes_after(self, cursor: int, visible: Callable[[_Change], bool]) -> tuple[list, int]:
        fresh = []
        for change in reversed(self._history):
            if change.rv <= cursor:
                break
            if visible(change):
                fresh.append(change)
        fresh.reverse()
        return fresh, self._rv

    def _read_log(self, namespace: str, name: str, container: str | None, tail: int | None) -> str:
        with self._cond:
            pod = self._find(KINDS["pods"], namespace, name)
            container = _container_name(pod, container)
            statuses = pod.get("status", {}).get("containerStatuses") or []
            state = next((s.get("state") or {} for s in statuses if s.get("name") == container), {})
            if "running" not in state and "terminated" not in state:
                reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
                raise ApiError(
                    400, f'container "{container}" in pod "{name}" is waiting to start: {reason}'
                )
            text = self._logs.get((namespace, name, container), "")
        if tail is not None:
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-tail:]) if tail > 0 else ""
        return text

    def _exec_target(self, namespace: str, name: str, container: str | None) -> tuple[str, str]:
        """The container an exec addresses, and its working directory; 4xx when it cannot."""
        with self._cond:
            pod = self._find(KINDS["pods"], namespace, name)
            container = _container_name(pod, container)
            phase = pod.get("status", {}).get("phase")
            if phase != "Running":
                raise ApiError(
                    400, f"unable to upgrade connection: pod {name} is not running (phase {phase})"
                )
            containers = pod["spec"]["containers"] + (pod["spec"].get("initContainers") or [])
            spec = next(c for c in containers if c["name"] == container)
            return container, spec.get("workingDir") or "/"

    def _take_fault(self, verb: str, resource: str) -> Injection | None:
        """The fault planned for this request, if any (every matching plan counts it)."""
        with self._cond:
            due = [injection for injection in self._injections if injection.due(verb, resource)]
            if due:
                due[0].fired += 1
            return due[0] if due else None

    # HTTP routing

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> _Route:
        parts = [unquote(part) for part in path.split("/") if part]
        if method == "GET":
            discovery = self._discovery(parts)
            if discovery is not None:
                return _Route("get", name="/" + "/".join(parts), discovery=discovery)
        if parts[:2] == ["api", "v1"]:
            group_version, rest = "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            raise _path_not_found()
        kinds = {k.plural: k for k in KINDS.values() if k.group_version == group_version}
        if not kinds or not rest:
            raise _path_not_found()
        namespace = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and rest[2] not in KINDS["namespaces"].subresources
        ):
            namespace, rest = rest[1], rest[2:]
        kind = kinds.get(rest[0])
        if kind is None or len(rest) > 3 or (namespace is not None and not kind.namespaced):
            raise _path_not_found()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (sub is not None and sub not in kind.subresources) or (
            kind.namespaced and name is not None and namespace is None
        ):
            raise _path_not_found()
        if name is None:
            watch = query.get("watch", [""])[0].lower() in ("true", "1")
            verbs = {"GET": "watch" if watch else "list", "POST": "create"}
            if kind.namespaced:
                verbs["DELETE"] = "deletecollection"
        elif sub == "log":
            verbs = {"GET": "log"}
        elif sub == "exec":
            verbs = {"GET": "exec", "POST": "exec"}
        else:
            verbs = {"GET": "get", "PUT": "update", "PATCH": "patch"}
            if sub is None:
                verbs["DELETE"] = "delete"
        verb = verbs.get(method)
        if verb is None:
            raise ApiError(405, "the server does not allow this method on the requested resource")
        if kind.plural == "namespaces":
            namespace = name
        return _Route(verb, kind, namespace, name, sub)

    def _discovery(self, parts: list[str]) -> Obj | None:
        if parts == ["version"]:
            return dict(VERSION)
        if parts == ["api"]:
            address = {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [address],
            }
        if parts == ["apis"]:
            groups = sorted({gv.split("/")[0] for gv in GROUP_VERSIONS if "/" in gv})
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(g) for g in groups],
            }
        if parts == ["api", "v1"]:
            return _resource_list("v1")
        if len(parts) == 2 and parts[0] == "apis" and f"{parts[1]}/v1" in GROUP_VERSIONS:
            return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(parts[1])}
        if len(parts) == 3 and parts[0] == "apis" and f"{parts[1]}/{parts[2]}" in GROUP_VERSIONS:
            return _resource_list(f"{parts[1]}/{parts[2]}")
        return None

    def _handle(
        self, route: _Route, query: dict[str, list[str]], body: bytes, content_type: str
    ) -> tuple[int, Obj]:
        """The JSON answer to a create/get/list/update/patch/delete/deletecollection."""
        kind, verb, name, sub = route.kind, route.verb, route.name or "", route.sub
        assert kind is not None
        namespace = route.namespace if kind.namespaced else ""
        with self._cond:
            if verb == "list":
                labels, fields = _selectors(query)
                return 200, self._list(kind, namespace, labels, fields)
            if verb == "get":
                return 200, copy.deepcopy(self._find(kind, namespace or "", name))
            if verb == "create":
                return 201, self._create(kind, namespace or None, _json_body(body, content_type))
            if verb == "update":
                body_obj = _json_body(body, content_type)
                return 200, self._update(kind, namespace or "", name, body_obj, sub)
            if verb == "patch":
                return 200, self._patch(kind, namespace or "", name, body, content_type, sub)
            policy, grace = _delete_options(query, body)
            if verb == "delete":
                deleted = self._delete(kind, namespace or "", name, policy, grace)
                if kind.plural in ("pods", "namespaces"):
                    return 200, deleted
                return 200, _deleted_status(kind, deleted)
            labels, fields = _selectors(query)
            matching = self._list(kind, namespace, labels, fields)
            for obj in matching["items"]:
                meta = obj["metadata"]
                if (kind.plural, meta["namespace"], meta["name"]) in self._objects:
                    self._delete(kind, meta["namespace"], meta["name"], policy, grace)
            return 200, matching


def _drop_owner(obj: Obj, uid: str) -> None:
    refs = [ref for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("uid") != uid]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def _terminating(namespace: Obj) -> None:
    namespace["metadata"]["deletionTimestamp"] = now_rfc3339()
    namespace["status"] = {"phase": "Terminating"}


def _container_name(pod: Obj, requested: str | None) -> str:
    spec = pod["spec"]
    names = [c["name"] for c in spec["containers"] + (spec.get("initContainers") or [])]
    if requested:
        if requested not in names:
            raise ApiError(
                400, f"container {requested} is not valid for pod {pod['metadata']['name']}"
            )
        return requested
    if len(spec["containers"]) == 1:
        return names[0]
    raise ApiError(
        400,
        f"a container name must be specified for pod {pod['metadata']['name']}, choose one of: "
        f"[{' '.join(names)}]",
    )


def _selectors(query: dict[str, list[str]]) -> tuple[LabelMatch, FieldMatch]:
    return (
        parse_label_selector(query.get("labelSelector", [""])[0]),
        parse_field_selector(query.get("fieldSelector", [""])[0]),
    )


def _json_body(body: bytes, content_type: str = "application/json") -> Any:
    """A JSON request body; 415 for other media types (protobuf, CBOR, YAML)."""
    media = content_type.split(";")[0].strip().lower()
    if media not in ("", "application/json", "*/*"):
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f'include: application/json (not "{media}")',
        )
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise ApiError(400, "the body of the request is not valid JSON") from None


def _delete_options(query: dict[str, list[str]], body: bytes) -> tuple[str | None, int | None]:
    """propagationPolicy and gracePeriodSeconds, from the query or a DeleteOptions body."""
    options = _json_body(body) if body.strip() else {}
    options = options if isinstance(options, dict) else {}
    policy = query.get("propagationPolicy", [None])[0] or options.get("propagationPolicy")
    if policy is None and "orphanDependents" in options:
        policy = "Orphan" if options["orphanDependents"] else "Background"
    grace = query.get("gracePeriodSeconds", [None])[0]
    grace = grace if grace is not None else options.get("gracePeriodSeconds")
    try:
        return policy, None if grace is None else int(grace)
    except ValueError:
        raise ApiError(400, f"invalid gracePeriodSeconds: {grace!r}") from None


def _deleted_status(kind: Kind, deleted: Obj) -> Obj:
    group = kind.group_version.rpartition("/")[0]
    details = {
        "name": deleted["metadata"]["name"],
        "kind": kind.plural,
        "uid": deleted["metadata"]["uid"],
    }
    if group:
        details["group"] = group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _api_group(group: str) -> Obj:
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"name": group, "versions": [version], "preferredVersion": version}


def _resource_list(group_version: str) -> Obj:
    """Legacy discovery for one group/version, enough for kubectl."""
    resources = []
    for kind in KINDS.values():
        if kind.group_version != group_version:
            continue
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        if kind.namespaced:
            verbs.append("deletecollection")
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.kind.lower(),
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": sorted(verbs),
                "shortNames": list(kind.short_names),
            }
        )
        sub_verbs = {"log": ["get"], "exec": ["create", "get"]}
        resources += [
            {
                "name": f"{kind.plural}/{sub}",
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": sub_verbs.get(sub, ["get", "patch", "update"]),
            }
            for sub in kind.subresources
        ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }


def _kubeconfig(url: str, ca_path: Path | None = None) -> str:
    authority = f"    certificate-authority: {ca_path}\n" if ca_path else ""
    return (
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        f"- name: fake\n  cluster:\n    server: {url}\n{authority}"
        "users:\n"
        "- name: fake\n  user:\n    token: fake-token\n"
        "contexts:\n"
        "- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n"
        "current-context: fake\n"
    )


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that tracks its connections so that ``stop`` can end them all."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: FakeKube, context: ssl.SSLContext | None = None):
        self.fake = fake
        self.context = context
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="fake-kube-connection",
            daemon=True,
        )
        with self._lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            if self.context is not None:  # wrapping detaches the plain socket: track the new one
                with self._lock:
                    thread = self._connections.pop(request)
                    request = self.context.wrap_socket(
                        request, server_side=True, do_handshake_on_connect=False
                    )
                    self._connections[request] = thread
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client went away, or stop() closed the connection
        except Exception:
            traceback.print_exc()
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._connections.pop(request, None)

    def close_connections(self, timeout: float) -> None:
        with self._lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    """One HTTP/1.1 keep-alive connection: routing, faults, JSON, watch, log and exec."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each keep-alive request waits ~40 ms (Nagle + ACK)
    server_version = "fake-kube"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``FakeKube.requests`` instead."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            body = self._read_body()
            route = fake._route(self.command, url.path, query)
        except ApiError as error:
            self._send_json(error.code, error.status())
            return
        name = self._record_name(route, body)
        namespace = name if route.resource == "namespaces" else route.namespace
        fake.requests.append(Request(route.verb, route.resource, namespace, name))
        fault = fake._take_fault(route.verb, route.resource)
        try:
            if fault is not None:
                if fault.drop:
                    self._drop()
                    return
                assert fault.status is not None
                raise _injected_error(
                    fault.status, route.verb, route.resource, route.namespace, route.name
                )
            if route.discovery is not None:
                self._send_json(200, route.discovery)
            elif route.verb == "watch":
                self._watch(route, query)
            elif route.verb == "log":
                self._log(route, query)
            elif route.verb == "exec":
                self._exec(route, query)
            else:
                content_type = self.headers.get("Content-Type", "application/json")
                try:
                    code, payload = fake._handle(route, query, body, content_type)
                except ApiError:
                    raise
                except Exception as error:  # a bug here: say so, as a 500, and keep serving
                    traceback.print_exc()
                    raise ApiError(500, f"Internal error occurred: {error!r}") from error
                self._send_json(code, payload)
        except ApiError as error:
            headers = {"Retry-After": "0"} if error.code == 429 else {}
            self._send_json(error.code, error.status(), headers)

    def _record_name(self, route: _Route, body: bytes) -> str | None:
        if route.verb != "create":
            return route.name
        try:
            meta = json.loads(body).get("metadata") or {}
        except (ValueError, AttributeError):
            return None
        return meta.get("name") or None

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "request entity too large")
        return self.rfile.read(length) if length else b""

    def _send_json(self, code: int, payload: Obj, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the connection without a word, as a crashing proxy or server would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            # socket.socket.recv on the raw socket: an SSLSocket refuses MSG_PEEK
            return bool(readable) and socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _watch(self, route: _Route, query: dict[str, list[str]]) -> None:
        kind = route.kind
        assert kind is not None
        labels, fields = _selectors(query)
        try:
            timeout = float(query.get("timeoutSeconds", [WATCH_TIMEOUT_DEFAULT])[0])
            since_text = query.get("resourceVersion", [""])[0]
            since = int(since_text) if since_text not in ("", "0") else None
        except ValueError:
            raise ApiError(400, "invalid timeoutSeconds or resourceVersion") from None
        namespace = route.namespace if kind.namespaced else None
        events = self.server.fake._watch(
            kind, namespace, labels, fields, since, time.monotonic() + timeout, self._client_gone
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                self._chunk(json.dumps(event).encode() + b"\n")
            self._chunk(b"")
        except OSError:
            self.close_connection = True

    def _log(self, route: _Route, query: dict[str, list[str]]) -> None:
        tail = query.get("tailLines", [None])[0]
        try:
            tail_lines = None if tail is None else int(tail)
        except ValueError:
            raise ApiError(400, f"invalid tailLines: {tail!r}") from None
        container = query.get("container", [None])[0]
        assert route.namespace is not None and route.name is not None
        fake = self.server.fake
        data = fake._read_log(route.namespace, route.name, container, tail_lines).encode()
        if query.get("follow", [""])[0].lower() in ("true", "1"):
            with fake._cond:
                pod = fake._find(KINDS["pods"], route.namespace, route.name)
                name = _container_name(pod, container)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for text in fake.follow_log(route.namespace, route.name, name, self._client_gone):
                    self._chunk(text.encode())
                self._chunk(b"")
            except OSError:
                self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _exec(self, route: _Route, query: dict[str, list[str]]) -> None:
        """Exec over websocket (v5/v4 channel protocols); SPDY is answered with a 400."""
        fake = self.server.fake
        assert route.namespace is not None and route.name is not None
        if self.headers.get("Upgrade", "").lower() != "websocket":
            raise ApiError(400, "Upgrade request required")
        container, cwd = fake._exec_target(
            route.namespace, route.name, query.get("container", [None])[0]
        )
        offered = [p.strip() for p in self.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        protocol = next((p for p in websocket.STREAM_PROTOCOLS if p in offered), None)
        if protocol is None:
            raise ApiError(400, f"unable to upgrade connection: no supported protocol in {offered}")
        key = self.headers.get("Sec-WebSocket-Key")
        command = query.get("command", [])
        if not key or not command:
            raise ApiError(400, "an exec needs a Sec-WebSocket-Key and at least one command")
        files = fake.pod_files(route.namespace, route.name, container)
        accept = websocket.accept_key(key)
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", protocol)
        self.end_headers()
        self.close_connection = True
        self.connection.settimeout(EXEC_TIMEOUT)
        ws = websocket.WebSocket(self.rfile, self.connection)
        wants_stdin = query.get("stdin", [""])[0].lower() in ("true", "1")
        try:
            code, out, err = run_command(
                command, files, lambda: websocket.read_stdin(ws) if wants_stdin else b"", cwd
            )
            if ws.client_closed:
                return
            if out:
                ws.send_channel(websocket.STDOUT, out)
            if err:
                ws.send_channel(websocket.STDERR, err)
            ws.send_channel(websocket.ERROR, json.dumps(websocket.exit_status(code)).encode())
            ws.send(websocket.OP_CLOSE, struct.pack("!H", 1000))
            self.connection.settimeout(1.0)  # wait briefly for the client's close frame
            while not ws.client_closed:
                ws.receive()
        except (EOFError, OSError):
            pass
