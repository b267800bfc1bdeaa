"""Runs Pulumi programs and dynamic providers without the Pulumi CLI: real provider processes over gRPC."""

from .engine import ChangesNotExpectedError, EngineError, LocalEngine, RunResult, Step
from .provider_process import ProviderCallError, ProviderProcess

__all__ = [
    "ChangesNotExpectedError",
    "EngineError",
    "LocalEngine",
    "ProviderCallError",
    "ProviderProcess",
    "RunResult",
    "Step",
]
