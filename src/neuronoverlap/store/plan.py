"""The work plan of a recording: a pure function of the inputs, split into units.

A unit is one probe set and a contiguous range of its samples. Unit boundaries are multiples of
both the batch size and the rows of a chunk (`min(CHUNK_ROWS, n)`), so (1) a unit's batches are
exactly the batches the single-process recorder forms (it batches from sample 0 in steps of the
batch size) and (2) every chunk of `mean` and `fires` is written by one unit. Hence a unit
recorded anywhere gives the very chunks a single-process run writes, and `merge` can copy them
as they are: "sharded equals single" is a property of the plan, not luck.

The plan's identity (`plan_id`) is the SHA-256 of the units and of every probe set's parameters
(data hash, template, seed, batch size, stop rule, library versions, ...), so shards of another
plan or model are refused at merge time.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from neuronoverlap.errors import InputError
from neuronoverlap.store import schema


@dataclass(frozen=True, order=True)
class Unit:
    name: str  # the probe set, e.g. 'de-fr'
    start: int
    stop: int

    @property
    def rows(self) -> tuple[int, int]:
        return self.start, self.stop


def unit_rows(n: int, batch_size: int) -> int:
    """Samples per unit of a probe set of `n` samples (the last unit may be shorter)."""
    if batch_size < 1 or n < 1:
        raise InputError(f"a plan needs n >= 1 and a batch size >= 1 (got n={n}, batch size={batch_size})")
    return math.lcm(batch_size, min(schema.CHUNK_ROWS, n))


def set_units(name: str, n: int, batch_size: int) -> list[Unit]:
    step = unit_rows(n, batch_size)
    return [Unit(name, start, min(start + step, n)) for start in range(0, n, step)]


@dataclass(frozen=True)
class Plan:
    """The units of a list of probe sets (`sets`: name -> parameters), in recording order."""

    sets: dict[str, dict]
    units: tuple[Unit, ...]

    @classmethod
    def of(cls, sets: dict[str, dict]) -> Plan:
        units = tuple(
            u
            for name, params in sets.items()
            for u in set_units(name, int(params["n_samples"]), int(params["batch_size"]))
        )
        return cls(dict(sets), units)

    @property
    def plan_id(self) -> str:
        text = json.dumps(
            {"sets": self.sets, "units": [[u.name, u.start, u.stop] for u in self.units]}, sort_keys=True
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def shard(self, index: int, count: int) -> list[Unit]:
        """The units of shard `index` of `count` (every count-th unit, from `index`)."""
        if not 0 <= index < count:
            raise InputError(f"--shard {index}/{count}: the index counts from 0 to {count - 1}")
        return list(self.units[index::count])

    def to_json(self) -> str:
        return json.dumps(
            {
                "plan_id": self.plan_id,
                "sets": self.sets,
                "units": [[u.name, u.start, u.stop] for u in self.units],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The plan recorded as `text`; text that is not a plan is an `InputError` (damaged)."""
        try:
            data = json.loads(text)
            plan = cls(data["sets"], tuple(Unit(n, a, b) for n, a, b in data["units"]))
            recorded = data["plan_id"]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise InputError(f"the recorded work plan is damaged (not a plan in JSON: {reason})") from None
        if plan.plan_id != recorded:
            raise InputError("the recorded work plan does not match its plan_id (damaged)")
        return plan


def parse_shard(text: str) -> tuple[int, int]:
    """'2/8' -> (2, 8)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: give INDEX/COUNT, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"--shard {text}: INDEX counts from 0 to COUNT-1")
    return index, count
