"""Fault injection: which requests misbehave, and how."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from replay._catalogue import SOURCE_ID_PATTERN

FaultKind = Literal["status", "timeout", "truncate", "garbage"]


class FaultRule(BaseModel):
    """One fault: a request filter, an optional added latency and an optional failure.

    ``latency_ms`` delays every matching request. ``kind`` makes a share
    ``rate`` of the matching requests fail, chosen by a random sequence seeded
    with ``seed`` so a run is repeatable (the same rules and the same request
    order give the same failures).

    Kinds:
        ``status``: answer ``status`` (e.g. 500, 503, 429) with an optional
        ``Retry-After: retry_after`` header.
        ``timeout``: read the request, send nothing for ``hang_seconds``, then close.
        ``truncate``: send the headers with the full Content-Length, half the body, then close.
        ``garbage``: answer 200 with random bytes as long as the document.

    Attributes:
        source: Only requests for this source id (None: every source).
        path_prefix: Only paths (on the real site) starting with this (None: every path).
        latency_ms: Delay added to every matching request, failing or not.
        kind: The failure injected, or None for latency only.
        rate: Share of matching requests that fail, 0..1.
        seed: Seed of the sequence that decides which requests fail.
        status: Status code for ``kind="status"``.
        retry_after: Retry-After seconds for ``kind="status"``.
        hang_seconds: How long ``kind="timeout"`` hangs before closing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = Field(default=None, pattern=SOURCE_ID_PATTERN)
    path_prefix: str | None = Field(default=None, pattern=r"^/")
    latency_ms: float = Field(default=0, ge=0, le=600_000)
    kind: FaultKind | None = None
    rate: float = Field(default=1.0, ge=0, le=1)
    seed: int = 0
    status: int | None = Field(default=None, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    hang_seconds: float | None = Field(default=None, gt=0, le=3600)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.kind is None and self.latency_ms == 0:
            raise ValueError("a rule needs a kind or a latency_ms above 0")
        if self.kind != "status" and (self.status is not None or self.retry_after is not None):
            raise ValueError('status and retry_after only apply to kind "status"')
        if self.kind != "timeout" and self.hang_seconds is not None:
            raise ValueError('hang_seconds only applies to kind "timeout"')
        return self

    @property
    def status_code(self) -> int:
        """Status sent by a ``status`` fault (503 unless set)."""
        return self.status if self.status is not None else 503

    @property
    def hang_for(self) -> float:
        """Seconds a ``timeout`` fault hangs (60 unless set)."""
        return self.hang_seconds if self.hang_seconds is not None else 60.0

    def matches(self, source: str, path: str) -> bool:
        """Whether a request for ``(source, path)`` is subject to this rule."""
        if self.source is not None and self.source != source:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


class FaultConfig(BaseModel):
    """The whole fault set (the JSON body of ``POST /_replay/faults``).

    Attributes:
        rules: Rules in order. Latency adds up over every matching rule; each
            matching rule with a kind draws from its own sequence and the first
            that fires decides the failure.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[FaultRule] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request.

    Attributes:
        latency_seconds: Delay before answering.
        rule: The rule whose failure fires, or None to answer normally.
        noise_seed: Seed for the bytes of a ``garbage`` answer (repeatable too).
    """

    latency_seconds: float = 0.0
    rule: FaultRule | None = None
    noise_seed: int = 0

    @property
    def kind(self) -> FaultKind | None:
        """Kind of the failure that fires, if any."""
        return self.rule.kind if self.rule is not None else None


NO_FAULT: Final = FaultDecision()


class _ActiveRule:
    __slots__ = ("random", "rule")

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.random = random.Random(rule.seed)


class Faults:
    """The current fault rules, safe to change while requests are being served."""

    def __init__(self) -> None:
        self._rules: tuple[_ActiveRule, ...] = ()
        self._lock = threading.Lock()

    def set(self, config: FaultConfig) -> None:
        """Replace every rule; each rule's random sequence restarts from its seed."""
        active = tuple(_ActiveRule(rule) for rule in config.rules)
        with self._lock:
            self._rules = active

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules = ()

    @property
    def config(self) -> FaultConfig:
        """The rules in force."""
        return FaultConfig(rules=[active.rule for active in self._rules])

    def decide(self, source: str, path: str) -> FaultDecision:
        """Decide the fate of one request for ``(source, path)``."""
        rules = self._rules
        if not rules:
            return NO_FAULT
        latency_ms = 0.0
        fired: FaultRule | None = None
        noise_seed = 0
        # One lock around all draws: concurrent requests then consume each
        # sequence one value at a time, so the share of failures stays exact.
        with self._lock:
            for active in rules:
                rule = active.rule
                if not rule.matches(source, path):
                    continue
                latency_ms += rule.latency_ms
                if rule.kind is None:
                    continue
                # Every matching rule draws, fired or not, so one rule's sequence
                # does not depend on the rules before it.
                hit = active.random.random() < rule.rate
                if hit and fired is None:
                    fired = rule
                    noise_seed = active.random.getrandbits(64)
        if fired is None and latency_ms == 0:
            return NO_FAULT
        return FaultDecision(latency_seconds=latency_ms / 1000, rule=fired, noise_seed=noise_seed)
