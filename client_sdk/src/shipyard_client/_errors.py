"""Typed errors, one per gRPC status a caller handles differently, each carrying the status code, the
server's message and the model spec of the request.

>>> import grpc
>>> e = error_for(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(x)", "x")
>>> isinstance(e, ModelNotFoundError), e.code.name, e.model
(True, 'NOT_FOUND', 'x')
"""

from __future__ import annotations

import grpc


class ShipyardError(Exception):
    """Base of every error the SDK raises."""

    code: grpc.StatusCode | None = None

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        model: str = "",
        version: int | None = None,
        label: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.model = model
        self.version = version
        self.label = label

    def __str__(self) -> str:
        where = (
            self.model
            + (f" v{self.version}" if self.version is not None else "")
            + (f" [{self.label}]" if self.label else "")
        )
        code = f"{self.code.name}: " if self.code is not None else ""
        return f"{code}{self.message}" + (f" (model {where})" if where else "")


class InvalidInputError(ShipyardError):
    """The request does not fit the model (INVALID_ARGUMENT), found by the server or before the call."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class EncodingError(InvalidInputError):
    """A value that cannot become a TensorFlow tensor (e.g. datetime64), refused before the call."""


class ModelNotFoundError(ShipyardError):
    """No such model, version or label is being served (NOT_FOUND)."""

    code = grpc.StatusCode.NOT_FOUND


class FailedPreconditionError(ShipyardError):
    """E.g. an unknown signature name (FAILED_PRECONDITION)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class UnavailableError(ShipyardError):
    """The server cannot be reached or is overloaded (UNAVAILABLE); retried by the client's policy."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(ShipyardError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhaustedError(ShipyardError):
    """E.g. a message larger than a limit (RESOURCE_EXHAUSTED)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnimplementedError(ShipyardError):
    code = grpc.StatusCode.UNIMPLEMENTED


class PermissionDeniedError(ShipyardError):
    code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(ShipyardError):
    code = grpc.StatusCode.UNAUTHENTICATED


class CancelledError(ShipyardError):
    code = grpc.StatusCode.CANCELLED


class ServerError(ShipyardError):
    """INTERNAL, UNKNOWN, DATA_LOSS and anything else the server got wrong."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[ShipyardError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInputError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidInputError,
    grpc.StatusCode.NOT_FOUND: ModelNotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def error_for(
    code: grpc.StatusCode, message: str, model: str = "", version: int | None = None, label: str | None = None
) -> ShipyardError:
    cls = _BY_CODE.get(code, ServerError)
    return cls(message, code=code, model=model, version=version, label=label)
