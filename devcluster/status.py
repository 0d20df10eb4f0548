"""Status errors: the one place where a failure becomes a Kubernetes ``Status`` object.

Clients such as kubernetes_asyncio and kubectl branch on ``reason`` and ``code`` (e.g. a
409 ``Conflict`` means "re-read and retry", a 409 ``AlreadyExists`` means "it is there"),
so every error here carries the exact reason, code and ``details`` the real apiserver sends
(api-conventions.md#response-status-kind).
"""

from __future__ import annotations

from typing import Any

JsonObj = dict[str, Any]


class ApiError(Exception):
    """An error that the HTTP layer renders as a ``Status`` with the given code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: JsonObj | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_status(self) -> JsonObj:
        """The ``Status`` body of this error, as the apiserver writes it."""
        status: JsonObj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def _qualified(group: str, plural: str) -> str:
    """``deployments.apps`` for a grouped resource, ``configmaps`` for the core group."""
    return f"{plural}.{group}" if group else plural


def _details(name: str, group: str, plural: str) -> JsonObj:
    details: JsonObj = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return details


def not_found(group: str, plural: str, name: str) -> ApiError:
    """404 NotFound, message ``configmaps "x" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(group, plural)} "{name}" not found',
        details=_details(name, group, plural),
    )


def already_exists(group: str, plural: str, name: str) -> ApiError:
    """409 AlreadyExists on create of an existing name."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{_qualified(group, plural)} "{name}" already exists',
        details=_details(name, group, plural),
    )


def conflict(group: str, plural: str, name: str, why: str) -> ApiError:
    """409 Conflict: optimistic concurrency failed; the client should re-read and retry."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(group, plural)} "{name}": {why}',
        details=_details(name, group, plural),
    )


def apply_conflict(conflicts: list[tuple[str, str, str]]) -> ApiError:
    """409 Conflict of server-side apply, one cause per (owner key, owner, field), the
    owner as kube-apiserver prints it; the message groups fields by owner, sorted by key.
    Its details carry the causes only (no name or kind), as kube-apiserver's do."""
    count = len(conflicts)
    if count == 1:
        _, owner, field = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {owner}: {field}"
    else:
        grouped: dict[str, tuple[str, list[str]]] = {}
        for key, owner, field in conflicts:
            grouped.setdefault(key, (owner, []))[1].append(field)
        lines = []
        for key in sorted(grouped):
            owner, fields = grouped[key]
            lines += [f"conflicts with {owner}:", *(f"- {f}" for f in fields)]
        message = f"Apply failed with {count} conflicts: " + "\n".join(lines)
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {owner}", "field": field}
        for _, owner, field in conflicts
    ]
    return ApiError(409, "Conflict", message, details={"causes": causes})


def invalid_options(options: str, field: str, reason: str, message: str) -> ApiError:
    """422 Invalid for a query parameter, as kube-apiserver validates them: ``options`` is
    ``CreateOptions``, ``UpdateOptions``, ``PatchOptions`` or ``DeleteOptions``."""
    return ApiError(
        422,
        "Invalid",
        f'{options}.meta.k8s.io "" is invalid: {field}: {message}',
        details={
            "group": "meta.k8s.io",
            "kind": options,
            "causes": [{"reason": reason, "message": message, "field": field}],
        },
    )


def invalid(group: str, kind: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid with one cause per (field, reason type, message), e.g.
    ``("metadata.name", "FieldValueInvalid", "Invalid value: ...")``."""
    qualified = f"{kind}.{group}" if group else kind
    text = ", ".join(f"{f}: {m}" for f, _, m in causes)
    details: JsonObj = {
        "name": name,
        "kind": kind,
        "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
    }
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {text}', details=details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest: the request itself is malformed."""
    return ApiError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    """405 MethodNotAllowed: the verb is not supported on this resource."""
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    """415 UnsupportedMediaType for an unknown patch or body content type."""
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format: {content_type}",
    )


def too_large(limit: int) -> ApiError:
    """413 RequestEntityTooLarge: the body is over the server's limit."""
    return ApiError(
        413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit} bytes"
    )


def gone(message: str) -> ApiError:
    """410 Gone (reason Expired): a watch or continue token is older than retained history."""
    return ApiError(410, "Expired", message)


def path_not_found() -> ApiError:
    """404 for an URL that names no resource (the real server answers this for unknown paths)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def forbidden(group: str, plural: str, name: str, why: str) -> ApiError:
    """403 Forbidden, e.g. creating objects in a namespace that is terminating."""
    return ApiError(
        403,
        "Forbidden",
        f'{_qualified(group, plural)} "{name}" is forbidden: {why}',
        details=_details(name, group, plural),
    )
