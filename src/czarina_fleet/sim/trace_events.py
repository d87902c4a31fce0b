"""The `events` of a trace: its timeline."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from czarina_fleet.model.config import WORKER_ID
from czarina_fleet.sim.units import Seconds, Strict, check_location


class ScaleEvent(Strict):
    """What `czarina scale` does: change min/max/auto, move a worker, or reset."""

    kind: Literal["scale"]
    at: Seconds
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)
    auto: bool | None = None
    worker: str | None = None
    to: str | None = None
    reset: bool = False

    _check_to = field_validator("to")(lambda v: check_location(v))

    @model_validator(mode="after")
    def _check(self) -> ScaleEvent:
        if (self.worker is None) != (self.to is None):
            raise ValueError('give "worker" and "to" together (move WORKER to a location)')
        if (self.min, self.max, self.auto, self.worker, self.reset) == (
                None, None, None, None, False):
            raise ValueError('a scale event needs at least one of "min", "max", "auto", '
                             '"worker"/"to" or "reset"')
        return self

    def describe(self) -> str:
        parts = ["reset"] if self.reset else []
        parts += [f"{k}={v}" for k, v in (("min", self.min), ("max", self.max),
                                          ("auto", self.auto)) if v is not None]
        if self.worker:
            parts.append(f"{self.worker} --to {self.to}")
        return "scale " + " ".join(parts)


class AddWorker(Strict):
    kind: Literal["add_worker"]
    at: Seconds
    id: str
    branch: str | None = None
    agent: str = "claude"
    location: str = "auto"

    _check_location = field_validator("location")(lambda v: check_location(v))

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not WORKER_ID.match(v):
            raise ValueError(f'worker id "{v}" must match ^[a-z0-9-]+$')
        return v

    def describe(self) -> str:
        return f"add worker {self.id} at {self.location}"


class RemoveWorker(Strict):
    kind: Literal["remove_worker"]
    at: Seconds
    id: str

    def describe(self) -> str:
        return f"remove worker {self.id}"


class Activity(Strict):
    """A worker's pane goes quiet (`idle`) or shows activity again (`busy`)."""

    kind: Literal["idle", "busy"]
    at: Seconds
    worker: str

    def describe(self) -> str:
        return f"worker {self.worker} {self.kind}"


class ItemArrives(Strict):
    """A hopper item arrives: it waits until a free worker takes it, then is worked on for
    `duration` (time its worker is actually running; a move or an interruption pauses it)
    and is done. While it has the item, a worker is busy and puts `cpu` cores of load on
    its host (default half a core: an agent mostly waits on its model; builds and test
    runs use more). `estimate` is what the item's file says (default: the duration)."""

    kind: Literal["item"]
    at: Seconds
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")
    priority: Literal["critical", "high", "medium", "low"] = "medium"
    duration: Seconds
    estimate: str | None = None
    cpu: float = Field(default=0.5, ge=0, le=64)

    @field_validator("duration")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("an item's duration must be above 0")
        return v

    def describe(self) -> str:
        return f"item {self.id} arrives"


Event = Annotated[ScaleEvent | AddWorker | RemoveWorker | Activity | ItemArrives,
                  Field(discriminator="kind")]
FLEET_CHANGES = (ScaleEvent, AddWorker, RemoveWorker)  # events that set a new target
