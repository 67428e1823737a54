"""Rows, one markdown table per section, and the summary."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Row:
    """One line of a table; `met` is None for reference rows without a target."""

    what: str
    median: str
    baseline: str
    ratio: str
    target: str
    met: bool | None

    @property
    def result(self) -> str:
        return {True: "met", False: "**missed**", None: "reference"}[self.met]


@dataclass
class Section:
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def ms(seconds: float) -> str:
    """A duration in ms or s, with three significant figures or so."""
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    value = seconds * 1000
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def med(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def spread(samples: Sequence[float]) -> str:
    """Median with the range, for durations: `12.3 ms (10.1-15.0, n=9)`."""
    if len(samples) == 1:
        return f"{ms(samples[0])} (n=1)"
    return f"{ms(med(samples))} ({ms(min(samples))}–{ms(max(samples))}, n={len(samples)})"


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def render(sections: Sequence[Section], header: Sequence[str], footer: Sequence[str]) -> str:
    """The whole report as markdown."""
    out = [*header, ""]
    for section in sections:
        if not section.rows:
            continue
        out.append(f"## {section.title}")
        out.append("")
        out.append("| what | median | baseline | ratio | target | result |")
        out.append("|---|---|---|---|---|---|")
        for row in section.rows:
            cells = (row.what, row.median, row.baseline, row.ratio, row.target, row.result)
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        for note in section.notes:
            out.append(f"- {note}")
        if section.notes:
            out.append("")
    rows = [row for section in sections for row in section.rows]
    targeted = [row for row in rows if row.met is not None]
    missed = [row for row in targeted if row.met is False]
    out.append("## Summary")
    out.append("")
    out.append(f"- targets met: {len(targeted) - len(missed)} of {len(targeted)}")
    for row in missed:
        out.append(f"- missed: {row.what}: {row.median} against {row.target} (baseline {row.baseline})")
    out.extend(f"- {line}" for line in footer)
    return "\n".join(out) + "\n"
