"""Retries: UNAVAILABLE only (a request the server refused as invalid is never sent again).

Two layers. gRPC's own retry, written out as a service config (`service_config_json()`): up to 5
attempts (gRPC's cap) with exponential backoff, for quick blips. And the client's own bounded loop
(`RetryPolicy.delays()`), exponential backoff with full jitter until `max_attempts` or the overall
`deadline`: that is what rides out a server restart of several seconds, which 5 quick attempts cannot.

>>> p = RetryPolicy(max_attempts=4, initial_backoff=0.1, max_backoff=1.0, multiplier=2.0, jitter=False)
>>> list(p.delays())
[0.1, 0.2, 0.4]
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

SERVICES = ("tensorflow.serving.PredictionService", "tensorflow.serving.ModelService")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    deadline: float = 30.0  # seconds for all attempts of one call together
    jitter: bool = True

    def delays(self) -> Iterator[float]:
        """The waits between attempts (max_attempts - 1 of them)."""
        backoff = self.initial_backoff
        for _ in range(max(0, self.max_attempts - 1)):
            yield random.uniform(0, backoff) if self.jitter else backoff
            backoff = min(self.max_backoff, backoff * self.multiplier)

    def service_config_json(self, load_balancing: str = "round_robin") -> str:
        """The gRPC service config for the channel: the load-balancing policy across the target's
        addresses, and UNAVAILABLE retried by gRPC itself (each attempt may go to another backend)."""
        return json.dumps(
            {
                "loadBalancingConfig": [{load_balancing: {}}],
                "methodConfig": [
                    {
                        "name": [{"service": s} for s in SERVICES],
                        "retryPolicy": {
                            "maxAttempts": min(5, max(2, self.max_attempts)),
                            "initialBackoff": f"{self.initial_backoff}s",
                            "maxBackoff": f"{self.max_backoff}s",
                            "backoffMultiplier": self.multiplier,
                            "retryableStatusCodes": ["UNAVAILABLE"],
                        },
                    }
                ],
            }
        )


NO_RETRY = RetryPolicy(max_attempts=1)
