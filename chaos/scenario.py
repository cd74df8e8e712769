"""The phases of a chaos run, against a :class:`~chaos.stack.Stack` that is already up.

1. ``kill``: SIGKILL a worker that holds running batch activities mid-crawl, start a new one,
   and watch when the server hands the killed attempts to another worker.
2. ``temporal``: SIGTERM the dev server mid-crawl, start it again on the same SQLite file and
   port, and check that every worker polls again by itself.
3. ``postgres``: stop PostgreSQL mid-crawl for a while, then start it again; the advisory
   service must say 503 with ``Retry-After`` meanwhile and serve again by itself afterwards.
4. ``replay``: the replay server fails a share of requests (500, hang past the client timeout,
   truncated body, garbage) during a crawl, then heals.
5. ``recover``: ``python -m starter process-dlq`` and a fresh cycle of every source, in rounds,
   until a round finds nothing to do.

Phases 2-4 each publish a *wave* (every GOV.UK and Canada country changed) so that the fault
lands on real work. A phase waits a bounded time for its own cycles, never for earlier ones:
cycles delayed by a fault (a killed worker's batch waits for its heartbeat timeout) overlap the
next phases, and phase 5 waits for all of them. Through every phase an :class:`ApiProbe` reads
from the advisory service, which must keep answering while crawls run.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from rich.console import Console
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from activities.types import ScrapeSourceInput, ScrapeSourceResult
from advisories.queues import MAINTENANCE, SCRAPING, SCRAPING_HIGH_PRIORITY
from advisories.settings import Settings
from advisories.sources import SOURCES
from chaos import catalogue
from chaos.api_probe import ApiProbe
from chaos.profile import Profile
from chaos.stack import Stack
from chaos.temporal import (
    RunningActivity,
    describe,
    failure_text,
    is_running,
    jsonable,
    patiently,
    pending_attempts,
    pollers,
    running_activities,
)
from starter.devstack import tail_lines
from starter.schedules import scrape_input
from workflows import ScrapeSourceWorkflow

#: Queues whose pollers show that a worker is back after a server restart.
_WATCHED_QUEUES = (SCRAPING_HIGH_PRIORITY, SCRAPING, MAINTENANCE)
_MAX_WORKER_REPLACEMENTS = 3


class RunOutOfTime(RuntimeError):
    """The run's deadline passed."""


@dataclass
class Cycle:
    """One ScrapeSourceWorkflow the harness started."""

    phase: str
    source: str
    workflow_id: str
    run_id: str | None
    started_at: float
    closed_at: float | None = None
    status: str | None = None
    result: dict[str, Any] | None = None
    failure: str | None = None

    def to_json(self, t0: float) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "source": self.source,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "status": self.status,
            "seconds": None
            if self.closed_at is None
            else round(self.closed_at - self.started_at, 1),
            "closed_at": None if self.closed_at is None else round(self.closed_at - t0, 1),
            "result": self.result,
            "failure": self.failure,
        }


@dataclass
class Phase:
    """Timings and observations of one phase (seconds since the run started)."""

    name: str
    title: str
    started: float
    fault_at: float | None = None
    healed_at: float | None = None
    ended: float | None = None
    observations: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {
            "name": self.name,
            "title": self.title,
            "started": r(self.started),
            "fault_at": r(self.fault_at),
            "healed_at": r(self.healed_at),
            "ended": r(self.ended),
            "seconds": None if self.ended is None else r(self.ended - self.started),
            "observations": self.observations,
        }


@dataclass
class _KilledAttempt:
    activity: RunningActivity
    recovered_at: float | None = None
    how: str | None = None


class Scenario:
    """Runs the phases; everything observed ends up in :attr:`phases`, :attr:`cycles`,
    :attr:`problems` (what went wrong in the project) and :attr:`notes`."""

    def __init__(self, profile: Profile, stack: Stack, client: Client, console: Console) -> None:
        self.profile = profile
        self.stack = stack
        self.client = client
        self.console = console
        self.settings = Settings.model_validate(
            {k.lower(): v for k, v in profile.settings_env().items()}
        )
        self.t0 = time.monotonic()
        self.deadline = self.t0 + profile.deadline_seconds
        self.phases: list[Phase] = []
        self.cycles: list[Cycle] = []
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.worker_events: list[dict[str, Any]] = []
        self.wave_documents = 0
        self._killed: list[_KilledAttempt] = []
        self._killed_at: float | None = None
        self._watchers: list[asyncio.Task[None]] = []
        self._replacements = 0
        self.api = ApiProbe(stack.api_url)

    # ------------------------------------------------------------------ small helpers

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, message: str) -> None:
        self.console.print(f"[dim]{self.now():7.1f}s[/] {message}", highlight=False)

    def problem(self, message: str) -> None:
        self.problems.append(message)
        self.console.print(
            f"[dim]{self.now():7.1f}s[/] [red]problem:[/] {message}", highlight=False
        )

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def bounded(self, seconds: float) -> float:
        """``seconds``, or what is left of the run if less (never below 1)."""
        return max(1.0, min(seconds, self.left()))

    def check_deadline(self) -> None:
        if self.left() <= 0:
            raise RunOutOfTime(f"the run took longer than {self.profile.deadline_seconds:.0f} s")

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """One query on a fresh connection (the database may have been restarted)."""
        conn = await asyncpg.connect(self.stack.database_url, timeout=5)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def replay(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.stack.replay_url, timeout=10) as http:
            response = await http.request(method, path, json=body)
            response.raise_for_status()
            return response.json()

    def base_faults(self) -> list[dict[str, Any]]:
        return [{"latency_ms": self.profile.latency_ms}]

    # ------------------------------------------------------------------ workers

    async def start_workers(self) -> None:
        for _ in range(self.profile.workers):
            name, pid = await asyncio.to_thread(self.stack.start_worker)
            self.say(f"started {name} (pid {pid})")
        started = time.monotonic()
        await self.wait_pollers(since=None, what="workers polling", within=120)
        self.notes.append(f"workers polling {time.monotonic() - started:.1f} s after their start")
        self._watchers.append(asyncio.create_task(self._watch_workers()))

    async def _watch_workers(self) -> None:
        """Notice a worker that dies on its own (a crash, a crash loop) and replace it."""
        while True:
            await asyncio.sleep(1.0)
            for name, pid in self.stack.dead_workers().items():
                tail = _tail(self.stack.log(name), 15)
                self.worker_events.append(
                    {"at": round(self.now(), 1), "worker": name, "pid": pid, "log_tail": tail}
                )
                self.problem(f"{name} (pid {pid}) exited by itself: {tail[-1] if tail else '?'}")
                await asyncio.to_thread(self.stack.forget_worker, name)
                if self._replacements < _MAX_WORKER_REPLACEMENTS:
                    self._replacements += 1
                    new, new_pid = await asyncio.to_thread(self.stack.start_worker)
                    self.say(f"replaced it with {new} (pid {new_pid})")

    def worker_of(self, identity: str) -> str | None:
        for name, pid in self.stack.workers.items():
            if self.stack.worker_identity(pid) == identity:
                return name
        return None

    async def wait_pollers(
        self, *, since: datetime | None, what: str, within: float
    ) -> dict[str, float | None]:
        """Wait until every live worker polls the watched queues (after ``since``).

        Returns worker → seconds from this call until it was seen on every queue (None: not
        within ``within`` seconds).
        """
        started = time.monotonic()
        wanted = {name: self.stack.worker_identity(pid) for name, pid in self.stack.workers.items()}
        seen: dict[str, float | None] = dict.fromkeys(wanted)
        deadline = started + self.bounded(within)
        while time.monotonic() < deadline:
            missing = [n for n, v in seen.items() if v is None]
            if not missing:
                break
            try:
                access: list[dict[str, datetime]] = []
                for queue in _WATCHED_QUEUES:
                    for kind in ("workflow", "activity"):
                        access.append(await pollers(self.client, queue, kind))
            except Exception:  # server not answering yet
                await asyncio.sleep(0.5)
                continue
            for name in missing:
                identity = wanted[name]
                times = [a.get(identity) for a in access]
                if all(t is not None and (since is None or t >= since) for t in times):
                    seen[name] = round(time.monotonic() - started, 1)
            await asyncio.sleep(0.5)
        missing = [n for n, v in seen.items() if v is None]
        if missing:
            self.problem(f"{what}: {', '.join(missing)} not polling after {within:.0f} s")
        return seen

    # ------------------------------------------------------------------ cycles

    async def start_cycles(self, phase: str) -> list[Cycle]:
        """One ScrapeSourceWorkflow per source, as the schedules would start them."""
        stamp = datetime.now(UTC).strftime("%H%M%S%f")
        started: list[Cycle] = []
        for spec in SOURCES.values():
            workflow_id = f"chaos-{phase}-{spec.id}-{stamp}"

            async def start(
                wid: str = workflow_id,
                queue: str = spec.priority.task_queue,
                arg: ScrapeSourceInput = scrape_input(spec, self.settings),
            ) -> str:
                try:
                    handle = await self.client.start_workflow(
                        ScrapeSourceWorkflow.run, arg, id=wid, task_queue=queue
                    )
                    return handle.result_run_id or ""
                except WorkflowAlreadyStartedError as exc:  # a retried start that had landed
                    return exc.run_id or ""

            run_id = await patiently(f"start {workflow_id}", start, within=self.bounded(60))
            cycle = Cycle(phase, spec.id, workflow_id, run_id or None, time.monotonic())
            started.append(cycle)
        self.cycles += started
        return started

    async def refresh(self, cycle: Cycle) -> bool:
        """Update ``cycle`` if it closed; whether it is closed."""
        if cycle.closed_at is not None:
            return True
        try:
            description = await describe(self.client, cycle.workflow_id, cycle.run_id, within=10)
        except Exception:
            return False
        if is_running(description):
            return False
        # When the server closed it, not when we looked (earlier cycles are looked at late).
        close = description.close_time
        ago = max(0.0, time.time() - close.timestamp()) if close is not None else 0.0
        cycle.closed_at = time.monotonic() - ago
        cycle.status = description.status.name if description.status else "?"
        handle = self.client.get_workflow_handle(
            cycle.workflow_id, run_id=cycle.run_id, result_type=ScrapeSourceResult
        )
        try:
            result = await asyncio.wait_for(handle.result(), timeout=15)
            cycle.result = jsonable(result)
        except WorkflowFailureError as exc:
            cycle.failure = failure_text(exc.cause)
        except Exception as exc:
            cycle.failure = f"result unavailable: {failure_text(exc)}"
        return True

    async def wait_cycles(self, cycles: Sequence[Cycle], within: float) -> bool:
        """Wait (bounded) for ``cycles`` to close; whether they all did."""
        deadline = time.monotonic() + self.bounded(within)
        while True:
            done = [await self.refresh(c) for c in cycles]
            if all(done):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.5)

    async def running(self, cycles: Sequence[Cycle]) -> list[RunningActivity]:
        """Activities the server believes are running for ``cycles``."""
        out: list[RunningActivity] = []
        for cycle in cycles:
            if cycle.closed_at is not None:
                continue
            with contextlib.suppress(Exception):
                description = await describe(
                    self.client, cycle.workflow_id, cycle.run_id, within=10
                )
                out += running_activities(description)
        return out

    async def stored_documents(self, cycles: Sequence[Cycle]) -> int:
        rows = await self.sql(
            "SELECT count(*) FROM scrape_jobs WHERE kind = 'country' AND status = 'success'"
            " AND workflow_id = ANY($1::text[])",
            [c.workflow_id for c in cycles],
        )
        return int(rows[0][0])

    async def wait_for_work(
        self, cycles: Sequence[Cycle], *, batches_only: bool = True
    ) -> list[RunningActivity]:
        """Wait until a share of the wave is stored and batch activities are running.

        Returns the running activities at that moment (empty: the wave ended first).
        """
        need = max(1, int(self.wave_documents * self.profile.trigger_fraction))
        deadline = time.monotonic() + self.bounded(self.profile.phase_wait_seconds)
        while time.monotonic() < deadline:
            active = await self.running(cycles)
            if batches_only:
                active = [a for a in active if a.activity_type == "scrape_countries"]
            done = await self.stored_documents(cycles)
            if active and done >= need:
                return active
            if all([await self.refresh(c) for c in cycles]):
                break
            await asyncio.sleep(0.1)
        self.problem(
            "the fault could not land mid-crawl: no batch activity was running "
            f"(wave of {self.wave_documents} documents too quick?)"
        )
        return []

    async def publish_wave(self, wave: int) -> None:
        started = time.monotonic()
        changed = await asyncio.to_thread(catalogue.publish_wave, self.stack.catalogue, wave)
        self.say(
            f"wave {wave}: {changed} countries republished ({time.monotonic() - started:.1f} s)"
        )

    def begin(self, name: str, title: str) -> Phase:
        self.check_deadline()
        phase = Phase(name, title, self.now())
        self.phases.append(phase)
        self.api.enter(name)
        self.say(f"[bold]phase {len(self.phases)}: {title}[/]")
        return phase

    def end(self, phase: Phase, cycles: Sequence[Cycle], finished: bool) -> None:
        phase.ended = self.now()
        phase.observations["own_cycles_finished_within_phase"] = finished
        phase.observations["own_cycles"] = {c.source: c.status or "RUNNING" for c in cycles}

    # ------------------------------------------------------------------ phase 1

    async def phase_kill(self) -> None:
        phase = self.begin("kill", "kill -9 a worker mid-crawl, start a new one")
        cycles = await self.start_cycles("p1-kill")
        active = await self.wait_for_work(cycles)
        if not active:
            self.end(phase, cycles, await self.wait_cycles(cycles, 1))
            return
        by_worker = Counter(a.identity for a in active)
        identity, count = by_worker.most_common(1)[0]
        victim = self.worker_of(identity)
        if victim is None:
            self.problem(f"running batches belong to an unknown worker {identity!r}")
            self.end(phase, cycles, await self.wait_cycles(cycles, 1))
            return
        held = [a for a in active if a.identity == identity]
        phase.fault_at = self.now()
        self._killed_at = time.monotonic()
        pid = await asyncio.to_thread(self.stack.kill_worker, victim)
        self.say(f"kill -9 {victim} (pid {pid}) holding {count} running batch activities")
        name, new_pid = await asyncio.to_thread(self.stack.start_worker)
        self.say(f"started {name} (pid {new_pid})")
        phase.healed_at = self.now()
        self._killed = [_KilledAttempt(a) for a in held]
        timeouts = {a.heartbeat_timeout_seconds for a in held}
        phase.observations.update(
            killed_worker=victim,
            killed_pid=pid,
            batch_activities_on_killed_worker=len(held),
            batch_activities_running_at_kill=len(active),
            documents_stored_at_kill=await self.stored_documents(cycles),
            heartbeat_timeout_seconds=sorted(t for t in timeouts if t is not None),
            replacement_worker=name,
        )
        self._watchers.append(asyncio.create_task(self._watch_killed()))
        self.end(phase, cycles, await self.wait_past_kill(cycles, identity))
        if not phase.observations["own_cycles_finished_within_phase"]:
            self.say(
                "phase 1 cycles still wait for the killed attempts (heartbeat timeout "
                f"{', '.join(str(t) for t in phase.observations['heartbeat_timeout_seconds'])} s);"
                " going on"
            )

    async def wait_past_kill(self, cycles: Sequence[Cycle], identity: str) -> bool:
        """Wait for ``cycles`` until they close, or until all they wait for is attempts the
        killed worker (``identity``) still holds; whether they closed."""
        deadline = time.monotonic() + self.bounded(self.profile.phase_wait_seconds)
        stalled = 0
        while time.monotonic() < deadline:
            if all([await self.refresh(c) for c in cycles]):
                return True
            blocked, waiting_on_kill = True, False
            for cycle in cycles:
                if cycle.closed_at is not None:
                    continue
                with contextlib.suppress(Exception):
                    description = await describe(
                        self.client, cycle.workflow_id, cycle.run_id, within=10
                    )
                    pending = description.raw_description.pending_activities
                    held = running_activities(description)
                    if len(held) != len(pending) or any(a.identity != identity for a in held):
                        blocked = False
                    waiting_on_kill = waiting_on_kill or bool(held)
            stalled = stalled + 1 if blocked and waiting_on_kill else 0
            if stalled >= 3:
                return False
            await asyncio.sleep(1.0)
        return False

    async def _watch_killed(self) -> None:
        """Record when each attempt the killed worker held is handed out again (or closes)."""
        while any(k.recovered_at is None for k in self._killed):
            await asyncio.sleep(1.0)
            by_workflow: dict[str, list[_KilledAttempt]] = {}
            for killed in self._killed:
                if killed.recovered_at is None:
                    by_workflow.setdefault(killed.activity.workflow_id, []).append(killed)
            for workflow_id, killed_list in by_workflow.items():
                try:
                    description = await describe(self.client, workflow_id, within=5)
                except Exception:
                    continue
                attempts = pending_attempts(description) if is_running(description) else {}
                for killed in killed_list:
                    now = time.monotonic()
                    state = attempts.get(killed.activity.activity_id)
                    if state is None:
                        killed.recovered_at, killed.how = now, "completed"
                    elif state[0] > killed.activity.attempt:
                        killed.recovered_at, killed.how = now, f"attempt {state[0]} {state[1]}"

    def kill_recovery(self) -> dict[str, Any]:
        """Seconds from the kill until each killed attempt was retried elsewhere."""
        if self._killed_at is None:
            return {}
        delays = [
            round(k.recovered_at - self._killed_at, 1) if k.recovered_at is not None else None
            for k in self._killed
        ]
        since_heartbeat = []
        for killed in self._killed:
            beat = killed.activity.last_heartbeat
            if killed.recovered_at is not None and beat is not None:
                wall = time.time() - (time.monotonic() - killed.recovered_at)
                since_heartbeat.append(round(wall - beat.replace(tzinfo=UTC).timestamp(), 1))
        return {
            "seconds_from_kill_to_retry": delays,
            "seconds_from_last_heartbeat_to_retry": since_heartbeat,
            "how": [k.how for k in self._killed],
        }

    # ------------------------------------------------------------------ phase 2

    async def phase_temporal(self) -> None:
        phase = self.begin("temporal", "restart the Temporal dev server mid-crawl (same db file)")
        await self.publish_wave(1)
        cycles = await self.start_cycles("p2-temporal")
        await self.wait_for_work(cycles)
        phase.fault_at = self.now()
        stop = await asyncio.to_thread(self.stack.stop_temporal)
        self.say(
            f"SIGTERM dev server: down in {stop.seconds:.1f} s"
            + ("" if stop.graceful else " [red](needed SIGKILL)[/]")
        )
        restart_wall = datetime.now(UTC).replace(tzinfo=None)
        start_seconds = await asyncio.to_thread(self.stack.start_temporal)
        phase.healed_at = self.now()
        self.say(f"dev server up again in {start_seconds:.1f} s; waiting for the workers to poll")
        reconnect = await self.wait_pollers(
            since=restart_wall, what="after the dev server restart", within=90
        )
        self.say(f"workers polling again after (s): {reconnect}")
        known = 0
        for cycle in self.cycles:
            with contextlib.suppress(Exception):
                await describe(self.client, cycle.workflow_id, cycle.run_id, within=20)
                known += 1
        if known != len(self.cycles):
            self.problem(f"after the restart the server knows {known} of {len(self.cycles)} cycles")
        phase.observations.update(
            stop_seconds=round(stop.seconds, 1),
            stopped_gracefully=stop.graceful,
            start_seconds=round(start_seconds, 1),
            workers_polling_again_after_seconds=reconnect,
            cycles_known_after_restart=f"{known}/{len(self.cycles)}",
        )
        self.end(phase, cycles, await self.wait_cycles(cycles, self.profile.phase_wait_seconds))

    # ------------------------------------------------------------------ phase 3

    async def phase_postgres(self) -> None:
        down = self.profile.postgres_down_seconds
        phase = self.begin("postgres", f"stop PostgreSQL mid-crawl for {down:.0f} s")
        await self.publish_wave(2)
        cycles = await self.start_cycles("p3-postgres")
        await self.wait_for_work(cycles)
        before = await self.stored_documents(cycles)
        phase.fault_at = self.now()
        stop_seconds = await asyncio.to_thread(self.stack.stop_postgres)
        self.api.database_down()
        self.say(f"PostgreSQL stopped ({stop_seconds:.1f} s); {before} documents stored so far")
        await asyncio.sleep(down)
        start_seconds = await asyncio.to_thread(self.stack.start_postgres)
        self.api.database_up()
        phase.healed_at = self.now()
        self.say(f"PostgreSQL started again ({start_seconds:.1f} s)")
        recovered = await self.api.wait_recovered()
        self.say(
            f"advisory service: {self.api.outage_503} answers 503 while down; serving again "
            + (f"{recovered:.1f} s after the restart" if recovered is not None else "NOT yet")
        )
        phase.observations.update(
            documents_stored_before_stop=before,
            down_seconds=round(phase.healed_at - phase.fault_at, 1),
            start_seconds=round(start_seconds, 1),
            api_503_while_down=self.api.outage_503,
            api_recovered_after_seconds=(None if recovered is None else round(recovered, 1)),
        )
        self.end(phase, cycles, await self.wait_cycles(cycles, self.profile.phase_wait_seconds))

    # ------------------------------------------------------------------ phase 4

    async def phase_replay(self) -> None:
        rate = self.profile.fault_rate
        phase = self.begin("replay", f"replay server fails {rate:.0%} of requests, then heals")
        # Four kinds sharing the rate: each rule draws on its own, the first hit decides.
        share = 1 - (1 - rate) ** 0.25
        rules = [
            *self.base_faults(),
            {"kind": "status", "status": 500, "rate": share, "seed": 11},
            {
                "kind": "timeout",
                "hang_seconds": self.profile.fault_hang_seconds,
                "rate": share,
                "seed": 12,
            },
            {"kind": "truncate", "rate": share, "seed": 13},
            {"kind": "garbage", "rate": share, "seed": 14},
        ]
        await self.replay("DELETE", "/_replay/stats")
        await self.publish_wave(3)
        await self.replay("POST", "/_replay/faults", {"rules": rules})
        phase.fault_at = self.now()
        cycles = await self.start_cycles("p4-replay")
        finished = await self.wait_cycles(cycles, self.profile.phase_wait_seconds)
        stats = await self.replay("GET", "/_replay/stats")
        await self.replay("POST", "/_replay/faults", {"rules": self.base_faults()})
        phase.healed_at = self.now()
        self.say(f"healed; faults injected: {stats.get('faults')} of {stats.get('total')} requests")
        phase.observations.update(
            requests=stats.get("total"), faults_injected=stats.get("faults"), rules=rules
        )
        self.end(phase, cycles, finished)

    # ------------------------------------------------------------------ phase 5

    async def phase_recover(self) -> None:
        phase = self.begin("recover", "heal: process-dlq and fresh cycles until quiescent")
        settle = self.profile.settle_seconds
        finished = await self.wait_cycles(self.cycles, settle)
        open_cycles = [c for c in self.cycles if c.closed_at is None]
        if not finished:
            self.problem(
                f"{len(open_cycles)} cycles still running {settle:.0f} s after the faults: "
                + ", ".join(c.workflow_id for c in open_cycles)
            )
        rounds: list[dict[str, Any]] = []
        quiescent = False
        for number in range(1, self.profile.max_rounds + 1):
            if self.left() < 15:
                self.problem("no time left for another recovery round")
                break
            requeued = await self.process_dlq()
            settled = await self.settle_quarantines(requeued)
            cycles = await self.start_cycles(f"p5-round{number}")
            done = await self.wait_cycles(cycles, self.profile.phase_wait_seconds)
            work = {
                c.source: (c.result or {}).get("countries_planned") if c.result else None
                for c in cycles
            }
            idle = done and all(c.result is not None for c in cycles) and not any(work.values())
            rounds.append(
                {
                    "round": number,
                    "requeued": len(requeued),
                    "requeues_settled": settled,
                    "planned": work,
                    "failed": [c.source for c in cycles if c.failure],
                }
            )
            self.say(f"round {number}: requeued {len(requeued)}, planned {work}")
            if not requeued and idle:
                quiescent = True
                break
        if not quiescent:
            self.problem(f"not quiescent after {len(rounds)} recovery rounds")
        late = [c for c in self.cycles if c.closed_at is None]
        if late:
            await self.wait_cycles(late, 5)
        phase.observations.update(rounds=rounds, quiescent=quiescent)
        phase.observations["killed_attempts"] = self.kill_recovery()
        phase.ended = self.now()

    async def process_dlq(self) -> list[str]:
        """``python -m starter process-dlq`` against the run's stack; the ids it requeued."""
        argv = [sys.executable, "-m", "starter", "process-dlq"]
        started = time.monotonic()
        try:
            result = await asyncio.to_thread(
                subprocess.run,
                argv,
                env=self.stack.env(),
                cwd=self.stack.root,
                capture_output=True,
                text=True,
                timeout=self.bounded(240),
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.problem("process-dlq did not finish in time")
            return []
        if result.returncode != 0:
            self.problem(f"process-dlq exited {result.returncode}: {result.stderr.strip()[-300:]}")
            return []
        # "requeued N: id, id, ..." (the console may wrap it over several lines).
        found = re.search(r"^requeued (\d+)", result.stdout, re.MULTILINE)
        if found is None:
            self.problem(f"process-dlq printed no count: {result.stdout.strip()[-300:]}")
            return []
        ids = re.findall(r"quarantine-[A-Za-z0-9_*-]+", result.stdout[found.start() :])
        if len(ids) != int(found.group(1)):
            self.problem(f"process-dlq said {found.group(1)} requeued but named {len(ids)}")
        self.say(f"process-dlq: requeued {len(ids)} ({time.monotonic() - started:.1f} s)")
        return ids

    async def settle_quarantines(self, requeued: Sequence[str]) -> bool:
        """Wait until each requeued quarantine has run its requeue (recovered or open again)."""
        deadline = time.monotonic() + self.bounded(120)
        pending = set(requeued)
        while pending and time.monotonic() < deadline:
            for workflow_id in list(pending):
                with contextlib.suppress(Exception):
                    description = await describe(self.client, workflow_id, within=5)
                    if not is_running(description):
                        pending.discard(workflow_id)
                        continue
                    state = await self.client.get_workflow_handle(workflow_id).query("state")
                    if state.get("status") == "open" and state.get("requeue_count", 0) > 0:
                        # Ran and failed again; make sure it is not about to run once more.
                        if not description.raw_description.pending_activities:
                            pending.discard(workflow_id)
            if pending:
                await asyncio.sleep(0.5)
        if pending:
            self.problem(f"{len(pending)} requeued quarantines did not settle: {sorted(pending)}")
        return not pending

    # ------------------------------------------------------------------ all of it

    async def run(self) -> None:
        """Every phase in order (the caller does the accounting afterwards)."""
        self.wave_documents = await asyncio.to_thread(
            catalogue.documents_per_wave, self.stack.catalogue
        )
        await self.start_workers()
        self.api.start()
        try:
            await self.phase_kill()
            await self.phase_temporal()
            await self.phase_postgres()
            await self.phase_replay()
            await self.phase_recover()
        finally:
            await self.api.stop()
            for task in self._watchers:
                task.cancel()
            for task in self._watchers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def to_json(self) -> dict[str, Any]:
        return {
            "phases": [p.to_json() for p in self.phases],
            "cycles": [c.to_json(self.t0) for c in self.cycles],
            "worker_exits": self.worker_events,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _tail(path: Path, count: int) -> list[str]:
    return [line[:300] for line in tail_lines(path, count)]
