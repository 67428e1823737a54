"""The daemon's worker threads, supervised alike through `core.service.Service`: one list, started in
order, each counted under the /healthz field it answers for (push_loop, notify, ...)."""

from __future__ import annotations

from typing import TypeVar

from committer.core.service import Service

S = TypeVar("S", bound=Service)

ALIVE, DOWN = "alive", "down"


class Supervisor:
    """Every service the daemon runs, and the health field each one counts toward. A service is down when
    it was started and its thread no longer runs; one not started yet (start-up), never started (a part
    that is off) or stopped (the shutdown pass) is not."""

    def __init__(self) -> None:
        self._services: list[tuple[Service, str | None]] = []
        self._started: set[int] = set()
        self._stopped: set[int] = set()
        self._own: set[int] = set()  # started by their own part when due (maintenance), never by start_all

    def add(self, service: S, field: str | None = None, *, starts_itself: bool = False) -> S:
        """Supervise `service`, counted under the health `field` (None: in none); with `starts_itself`, its
        part starts it when there is work (start_all leaves it), and it is stopped like the others."""
        self._services.append((service, field))
        if starts_itself:
            self._own.add(id(service))
        return service

    def services(self) -> list[Service]:
        """Every service, in the order added."""
        return [service for service, _ in self._services]

    def start(self, service: Service) -> None:
        """Start one service (a part started before the others, or again after it ended)."""
        service.start()
        self._started.add(id(service))
        self._stopped.discard(id(service))

    def start_all(self) -> None:
        """Start every service not started yet, in the order added."""
        for service in self.services():
            if id(service) not in self._started and id(service) not in self._own:
                self.start(service)

    def stop(self, service: Service | None, timeout: float | None = None) -> None:
        """Stop one service (None: a part that is off) within `timeout` seconds; the shutdown pass calls
        this in its order."""
        if service is None:
            return
        self._stopped.add(id(service))  # before: its thread ending while it stops is not a crash
        service.stop(timeout)

    def stop_rest(self, timeout: float | None) -> None:
        """Stop, last added first, every service not stopped yet: none outlives the daemon."""
        for service in reversed(self.services()):
            if id(service) not in self._stopped:
                self.stop(service, timeout)

    def down(self) -> list[Service]:
        """The services started whose thread ended without being stopped (a crash: see their last_error);
        one the shutdown pass stopped is not down."""
        return [s for s in self.services()
                if id(s) in self._started and id(s) not in self._stopped and not s.alive()]

    def state(self, field: str) -> str:
        """'alive', or 'down' when a service counted under `field` is down."""
        down = {id(s) for s in self.down()}
        return DOWN if any(id(s) in down for s, f in self._services if f == field) else ALIVE

    def errors(self) -> dict[str, str]:
        """The last error of every service that has one, by name."""
        return {s.name: error for s in self.services() if (error := s.last_error)}
