"""Errors as TF Serving reports them: a canonical status code (the gRPC code) and a message, and the
HTTP status its REST API gives for that code."""

from __future__ import annotations

import grpc

HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# tensorflow.error.Code values are the gRPC codes' numbers.
BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


class ServingError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code, 500)


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.FAILED_PRECONDITION, message)


def from_tf_error(e: Exception) -> ServingError:
    """A TensorFlow OpError raised by a session run, with the code TF gave it."""
    code = BY_NUMBER.get(getattr(e, "error_code", 2), grpc.StatusCode.UNKNOWN)
    message = getattr(e, "message", None) or str(e)
    return ServingError(code, message.strip().splitlines()[0] if message.strip() else type(e).__name__)
