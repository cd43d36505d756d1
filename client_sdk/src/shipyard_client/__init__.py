"""shipyard_client: a thin, typed Python SDK for TF Serving's gRPC API, without TensorFlow.

from shipyard_client import Client
with Client("127.0.0.1:8500") as client:
    result = client.predict("penguins", {"island": ["Dream"], "bill_length_mm": [46.5], ...})
    print(result["classes"], result.version)
"""

from shipyard_client._async_client import AsyncClient
from shipyard_client._base import USE_CLIENT_DEFAULT, UseClientDefault
from shipyard_client._client import Client
from shipyard_client._errors import (
    CancelledError,
    DeadlineExceededError,
    EncodingError,
    FailedPreconditionError,
    InvalidInputError,
    ModelNotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    ShipyardError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from shipyard_client._retry import NO_RETRY, RetryPolicy
from shipyard_client._tensors import decode, encode
from shipyard_client._types import (
    ClassifyResult,
    ModelMetadata,
    PredictResult,
    RegressResult,
    Signature,
    TensorSpec,
    VersionStatus,
)
from shipyard_client.shadow import AsyncShadowClient, Endpoint, ShadowClient
from shipyard_client.sinks import JsonLinesSink, SQLAlchemySink, SQLiteSink

__all__ = [
    "NO_RETRY",
    "USE_CLIENT_DEFAULT",
    "AsyncClient",
    "AsyncShadowClient",
    "CancelledError",
    "ClassifyResult",
    "Client",
    "DeadlineExceededError",
    "EncodingError",
    "Endpoint",
    "FailedPreconditionError",
    "InvalidInputError",
    "JsonLinesSink",
    "ModelMetadata",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "PredictResult",
    "RegressResult",
    "ResourceExhaustedError",
    "RetryPolicy",
    "SQLAlchemySink",
    "SQLiteSink",
    "ServerError",
    "ShadowClient",
    "ShipyardError",
    "Signature",
    "TensorSpec",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UseClientDefault",
    "VersionStatus",
    "decode",
    "encode",
]
__version__ = "0.1.0"
