"""What a verification found, and how it is shown: text, JSON, standalone HTML.

The checks fill a :class:`Report`; the renderers only read it. Every failure
names its check (one of :data:`CHECKS`), and where it applies the block
height, the record's log index and its id, so a person can find it with
``mpc-ledger ledger show HEIGHT``. A report lists at most
:data:`FAILURES_LISTED_MAX` failures and counts the rest: a tampered export
must not be able to make the report itself unreadably large.

Per-job sections are :class:`Section` objects built by
:mod:`mpc_ledger.verify.job_section`; renderers show any section generically
(fields, then tables), so new job facts need no renderer change.

HTML is one self-contained page (inline CSS, no script, no external asset)
and every value from the export goes through :func:`html.escape`.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections import Counter
from typing import Any

__all__ = [
    "CHECKS",
    "FAILURES_LISTED_MAX",
    "Failure",
    "Report",
    "Section",
    "Table",
    "render",
    "render_html",
    "render_json",
    "render_text",
]

FAILURES_LISTED_MAX = 1000

CHECKS: dict[str, str] = {
    "genesis": "the export is of the chain the genesis defines (its hash is the chain id)",
    "export-header": "the header agrees with the blocks and the genesis",
    "anchor": "a partial export starts from a certified block and its log frontier",
    "certificate": "every block certified by a quorum of distinct genesis validators",
    "hash-chain": "heights, previous-block hashes, proposers and times link up",
    "block-limits": "blocks respect the genesis limits",
    "records-root": "each block's records hash to its header's records root",
    "log-root": "the whole log's RFC 6962 root and size after every block",
    "record-encoding": "every record parses in canonical encoding",
    "record-signature": "every record is signed by its author",
    "record-permission": "every record's author was allowed to write it",
    "trailer": "the trailer agrees with the last block",
    "consistency": "this export extends the previous one (RFC 6962 consistency)",
    "jobs": "each job ran as approved, with consistent transcripts; no replay found a deviation",
}


@dataclasses.dataclass(frozen=True)
class Failure:
    check: str
    message: str
    height: int | None = None
    log_index: int | None = None
    record_id: str | None = None

    def where(self) -> str:
        parts = []
        if self.height is not None:
            parts.append(f"height {self.height}")
        if self.log_index is not None:
            parts.append(f"record #{self.log_index}")
        if self.record_id:
            parts.append(f"id {self.record_id[:16]}")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclasses.dataclass
class Section:
    """A titled block of facts: label/value fields, then tables."""

    title: str
    fields: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    tables: list[Table] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "fields": {label: value for label, value in self.fields},
            "tables": [dataclasses.asdict(t) for t in self.tables],
        }


@dataclasses.dataclass
class Report:
    """Everything one verification run found (filled by the checks)."""

    file: str
    chain: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks_run: list[str] = dataclasses.field(default_factory=list)
    signed_certificates: Counter[str] = dataclasses.field(default_factory=Counter)
    records_by_kind: Counter[str] = dataclasses.field(default_factory=Counter)
    records_by_author: Counter[str] = dataclasses.field(default_factory=Counter)
    limitations: list[str] = dataclasses.field(default_factory=list)
    jobs: list[Section] = dataclasses.field(default_factory=list)
    failures: list[Failure] = dataclasses.field(default_factory=list)
    failures_omitted: Counter[str] = dataclasses.field(default_factory=Counter)
    failure_counts: Counter[str] = dataclasses.field(default_factory=Counter)
    # The collected jobs (`mpc_ledger.verify.job_view.JobView` by job id), for a caller
    # that reads them (`mpc-ledger audit replay`); never rendered.
    job_views: dict[bytes, Any] = dataclasses.field(default_factory=dict, repr=False)

    def fail(
        self,
        check: str,
        message: str,
        *,
        height: int | None = None,
        log_index: int | None = None,
        record_id: bytes | str | None = None,
    ) -> None:
        assert check in CHECKS, check
        self.failure_counts[check] += 1
        if len(self.failures) >= FAILURES_LISTED_MAX:
            self.failures_omitted[check] += 1
            return
        identifier = record_id.hex() if isinstance(record_id, bytes) else record_id
        self.failures.append(Failure(check, message, height, log_index, identifier))

    def ran(self, check: str) -> None:
        assert check in CHECKS, check
        if check not in self.checks_run:
            self.checks_run.append(check)

    @property
    def ok(self) -> bool:
        return not self.failure_counts

    def check_status(self) -> list[tuple[str, str, int]]:
        """(check, "ok" | "FAILED", failures) for every check that ran, in pipeline order."""
        return [
            (check, "FAILED" if self.failure_counts[check] else "ok", self.failure_counts[check])
            for check in CHECKS
            if check in self.checks_run or self.failure_counts[check]
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "ok": self.ok,
            "chain": self.chain,
            "checks": [
                {"check": c, "status": s.lower(), "failures": n, "what": CHECKS[c]}
                for c, s, n in self.check_status()
            ],
            "validators": dict(sorted(self.signed_certificates.items())),
            "records_by_kind": dict(sorted(self.records_by_kind.items())),
            "records_by_author": dict(sorted(self.records_by_author.items())),
            "limitations": self.limitations,
            "jobs": [section.to_json() for section in self.jobs],
            "failures": [failure.to_json() for failure in self.failures],
            "failures_not_listed": sum(self.failures_omitted.values()),
        }


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report)
    return render_text(report)


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=False) + "\n"


def _counter_lines(counter: Counter[str]) -> list[tuple[str, str]]:
    return [(key or "(none)", str(count)) for key, count in sorted(counter.items())]


def _chain_fields(report: Report) -> list[tuple[str, str]]:
    return [(key.replace("_", " "), str(value)) for key, value in report.chain.items()]


def render_text(report: Report) -> str:
    out: list[str] = []
    verdict = "VERIFIED" if report.ok else "FAILED"
    out.append(f"{verdict}: {report.file}")
    out.append("")
    out.extend(f"  {label:<22} {value}" for label, value in _chain_fields(report))
    out.append("")
    out.append("Checks")
    for check, status, count in report.check_status():
        suffix = f" ({count})" if count else ""
        out.append(f"  {status:<7} {check:<18} {CHECKS[check]}{suffix}")
    if report.failures:
        out.append("")
        out.append("Failures")
        for failure in report.failures:
            where = failure.where()
            out.append(f"  [{failure.check}] {where + ': ' if where else ''}{failure.message}")
        omitted = sum(report.failures_omitted.values())
        if omitted:
            out.append(f"  ... and {omitted} more")
    out.append("")
    out.append("Validators (certificates signed)")
    out.extend(f"  {k:<22} {v}" for k, v in _counter_lines(report.signed_certificates))
    out.append("Records by kind")
    out.extend(f"  {k:<22} {v}" for k, v in _counter_lines(report.records_by_kind))
    out.append("Records by author")
    out.extend(f"  {k:<22} {v}" for k, v in _counter_lines(report.records_by_author))
    for section in report.jobs:
        out.append("")
        out.append(section.title)
        out.extend(f"  {label:<22} {value}" for label, value in section.fields)
        for table in section.tables:
            out.append(f"  {table.title}")
            out.append("    " + " | ".join(table.columns))
            out.extend("    " + " | ".join(row) for row in table.rows)
    if report.limitations:
        out.append("")
        out.append("What this export cannot show")
        out.extend(f"  - {line}" for line in report.limitations)
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1.ok{color:#176b2c}h1.failed{color:#a11}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.ok{color:#176b2c}td.failed{color:#a11;font-weight:bold}
code{font-size:.9em}
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_table(columns: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for index, row in enumerate(rows):
        cells = []
        for column, cell in enumerate(row):
            css = classes[index] if classes and column == 1 else ""
            cells.append(
                f'<td class="{_esc(css)}">{_esc(cell)}</td>' if css else f"<td>{_esc(cell)}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render_html(report: Report) -> str:
    verdict = "Verified" if report.ok else "Verification FAILED"
    status = report.check_status()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(verdict)}: {_esc(report.file)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1 class="{"ok" if report.ok else "failed"}">{_esc(verdict)}</h1>',
        f"<p>Export <code>{_esc(report.file)}</code></p>",
        "<h2>Chain</h2>",
        _html_table(["", ""], [[k, v] for k, v in _chain_fields(report)]),
        "<h2>Checks</h2>",
        _html_table(
            ["check", "status", "failures", "what it shows"],
            [[c, s, str(n), CHECKS[c]] for c, s, n in status],
            ["failed" if s == "FAILED" else "ok" for _, s, _ in status],
        ),
    ]
    if report.failures:
        parts.append("<h2>Failures</h2>")
        rows = [
            [
                f.check,
                "" if f.height is None else str(f.height),
                "" if f.log_index is None else str(f.log_index),
                f.record_id or "",
                f.message,
            ]
            for f in report.failures
        ]
        parts.append(_html_table(["check", "height", "record #", "record id", "what"], rows))
        omitted = sum(report.failures_omitted.values())
        if omitted:
            parts.append(f"<p>… and {omitted} more failures not listed.</p>")
    parts.append("<h2>Validators</h2>")
    parts.append(
        _html_table(
            ["validator", "certificates signed"],
            [list(r) for r in _counter_lines(report.signed_certificates)],
        )
    )
    parts.append("<h2>Records</h2>")
    parts.append(
        _html_table(["kind", "records"], [list(r) for r in _counter_lines(report.records_by_kind)])
    )
    parts.append(
        _html_table(
            ["author", "records"], [list(r) for r in _counter_lines(report.records_by_author)]
        )
    )
    for section in report.jobs:
        parts.append(f"<h2>{_esc(section.title)}</h2>")
        parts.append(_html_table(["", ""], [list(f) for f in section.fields]))
        for table in section.tables:
            parts.append(f"<h3>{_esc(table.title)}</h3>")
            parts.append(_html_table(table.columns, table.rows))
    if report.limitations:
        parts.append("<h2>What this export cannot show</h2><ul>")
        parts.extend(f"<li>{_esc(line)}</li>" for line in report.limitations)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
