"""Plain, typed Python objects for what the engine returns.

Each object wraps the JSON document the engine produced: the annotated attributes are typed
(times are aware ``datetime`` objects, nested records are objects), ``to_dict()`` gives the
document back exactly as ``selfmon ... --json`` prints it, and fields added by a newer engine are
still reachable as attributes before these classes learn their types.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Callable, ClassVar, Dict, Generic, Iterator, List, Mapping, Optional, TypeVar

__all__ = [
    "DuplicateCounts",
    "FiledIssue",
    "FindingOutcome",
    "History",
    "IssueRef",
    "MonitorState",
    "Page",
    "RejectedFinding",
    "ScanEvent",
    "ScanRecord",
    "ScanReport",
]


def _time(value: Any) -> Any:
    if isinstance(value, str):
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        # Python 3.9's fromisoformat accepts at most 6 fractional digits.
        head, dot, rest = text.partition(".")
        if dot:
            n = 0
            while n < len(rest) and rest[n].isdigit():
                n += 1
            digits, zone = rest[:n], rest[n:]
            text = head + "." + (digits[:6].ljust(6, "0")) + zone
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            return value
    return value


class _Model:
    """A typed view of one JSON object; see the module docstring."""

    _times: ClassVar[frozenset] = frozenset()
    _nested: ClassVar[Dict[str, Callable[[Any], Any]]] = {}

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_raw", dict(raw))

    def __getattr__(self, name: str) -> Any:
        raw = object.__getattribute__(self, "_raw")
        if name not in raw:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        value = raw[name]
        if value is None:
            return None
        if name in self._times:
            return _time(value)
        convert = self._nested.get(name)
        return convert(value) if convert is not None else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._raw))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._raw == self._raw  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(sorted(self._raw.items(), key=lambda kv: kv[0])))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in list(self._raw.items())[:6])
        more = ", ..." if len(self._raw) > 6 else ""
        return f"{type(self).__name__}({shown}{more})"

    def __getstate__(self) -> Dict[str, Any]:
        return self._raw

    def __setstate__(self, state: Dict[str, Any]) -> None:
        object.__setattr__(self, "_raw", state)

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document (a deep copy): times as RFC 3339 text, as the CLI prints them."""
        return copy.deepcopy(self._raw)


def _list_of(cls: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda items: [cls(i) for i in items]


class IssueRef(_Model):
    """An issue in the tracker."""

    number: int
    url: str
    state: str
    """``"open"`` or ``"closed"``."""


class DuplicateCounts(_Model):
    """Duplicates skipped, by deduplication tier."""

    by_error_code: int
    by_fingerprint: int
    by_similarity: int

    @property
    def total(self) -> int:
        """All tiers together."""
        return int(self.by_error_code) + int(self.by_fingerprint) + int(self.by_similarity)


class ScanRecord(_Model):
    """The history row of one scan."""

    _times = frozenset({"started_at", "completed_at"})
    _nested = {"duplicates": DuplicateCounts}

    scan_id: str
    trigger: str
    """``"manual"`` or ``"scheduled"``."""
    status: str
    """``"RUNNING"``, ``"SUCCESS"`` or ``"FAILURE"``."""
    started_at: datetime
    completed_at: Optional[datetime]
    log_id_start: int
    log_id_end: int
    records_read: int
    signatures: int
    novel_signatures: int
    known_signatures: int
    ignored_signatures: int
    findings: int
    rejected_findings: int
    issues_created: int
    duplicates: DuplicateCounts
    comments_added: int
    regressions: int
    deferred: int
    analysis_ran: bool
    model: Optional[str]
    prompt_version: Optional[int]
    cost_usd: Optional[float]
    input_tokens: Optional[int]
    output_tokens: Optional[int]
    gap_records: int
    cursor_reset: bool
    dry_run: bool
    error_message: Optional[str]
    analysis_failures: int
    """Scans in a row the analysis runner gave no answer for the same records (the third judges
    them with the offline rules); 0 after a success."""

    @property
    def duration_seconds(self) -> Optional[float]:
        """How long the scan took, once finished."""
        if self.completed_at is None or not isinstance(self.started_at, datetime):
            return None
        return (self.completed_at - self.started_at).total_seconds()


class FindingOutcome(_Model):
    """What happened to one finding: ``outcome`` is ``filed``, ``would_file``, ``duplicate``,
    ``commented``, ``regression``, ``deferred`` or ``ignored`` (a deferred finding an ignore rule
    added since matches: closed in the backlog, never filed); the other attributes depend on it."""

    outcome: str
    title: str

    def __getattr__(self, name: str) -> Any:
        if name == "issue":
            value = self._raw.get("issue")
            return IssueRef(value) if isinstance(value, dict) else value
        return super().__getattr__(name)


class RejectedFinding(_Model):
    """A finding validation rejected."""

    title: str
    reasons: List[str]


class ScanReport(_Model):
    """What one scan did, as ``SelfMonitor.scan`` returns it."""

    _nested = {
        "record": ScanRecord,
        "outcomes": _list_of(FindingOutcome),
        "rejected": _list_of(RejectedFinding),
        "reconciled": _list_of(IssueRef),
    }

    record: ScanRecord
    outcomes: List[FindingOutcome]
    rejected: List[RejectedFinding]
    reconciled: List[IssueRef]

    @property
    def scan_id(self) -> str:
        """The scan's id (``record.scan_id``)."""
        return str(self._raw["record"]["scan_id"])

    @property
    def filed(self) -> List[IssueRef]:
        """Issues this scan filed."""
        return [o.issue for o in self.outcomes if o.outcome == "filed"]


class FiledIssue(_Model):
    """An issue selfmon filed, with its occurrence count."""

    _times = frozenset({"created_at", "last_seen_at"})
    _nested = {"issue": IssueRef}

    scan_id: str
    issue: IssueRef
    title: str
    classification: str
    error_codes: List[str]
    fingerprint: str
    source_log_ids: List[int]
    source_files: List[str]
    error_type: Optional[str]
    templates: List[str]
    signature_ids: List[str]
    created_at: datetime
    occurrences: int
    last_seen_at: datetime


T = TypeVar("T")


class Page(_Model, Generic[T]):
    """One page of a history list, with the total across all pages."""

    __slots__ = ("_item",)

    items: List[T]
    total: int

    def __init__(self, raw: Mapping[str, Any], item: Callable[[Any], T]) -> None:
        super().__init__(raw)
        object.__setattr__(self, "_item", item)

    def __getattr__(self, name: str) -> Any:
        if name == "items":
            return [self._item(i) for i in self._raw["items"]]
        return super().__getattr__(name)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self._raw["items"])

    def __getstate__(self) -> Dict[str, Any]:
        return {"raw": self._raw, "item": self._item}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        object.__setattr__(self, "_raw", state["raw"])
        object.__setattr__(self, "_item", state["item"])


class History(_Model):
    """Scans and filed issues, newest first, one page of each (``SelfMonitor.history``).

    ``to_dict()`` is the document ``selfmon history --json`` prints.
    """

    __slots__ = ("page", "per_page_scans", "per_page_issues")

    page: int
    per_page_scans: int
    per_page_issues: int

    def __init__(self, raw: Mapping[str, Any], page: int, scans: int, issues: int) -> None:
        super().__init__(raw)
        object.__setattr__(self, "page", page)
        object.__setattr__(self, "per_page_scans", scans)
        object.__setattr__(self, "per_page_issues", issues)

    @property
    def scans(self) -> Page[ScanRecord]:
        """The page of scans, with the total number of scans."""
        return Page(self._raw["scans"], ScanRecord)

    @property
    def issues(self) -> Page[FiledIssue]:
        """The page of filed issues, with the total number of issues."""
        return Page(self._raw["issues"], FiledIssue)

    @property
    def backlog(self) -> List[Dict[str, Any]]:
        """Findings deferred by the per-scan budget, waiting to be filed (whole, not paged)."""
        return copy.deepcopy(list(self._raw.get("backlog", [])))

    @property
    def scan_pages(self) -> int:
        """How many pages of scans exist at this page size."""
        return _pages(self.scans.total, self.per_page_scans)

    @property
    def issue_pages(self) -> int:
        """How many pages of issues exist at this page size."""
        return _pages(self.issues.total, self.per_page_issues)

    def __getstate__(self) -> Dict[str, Any]:
        return {
            "raw": self._raw,
            "page": self.page,
            "scans": self.per_page_scans,
            "issues": self.per_page_issues,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        object.__setattr__(self, "_raw", state["raw"])
        object.__setattr__(self, "page", state["page"])
        object.__setattr__(self, "per_page_scans", state["scans"])
        object.__setattr__(self, "per_page_issues", state["issues"])


def _pages(total: int, per_page: int) -> int:
    return 0 if per_page <= 0 else -(-int(total) // per_page)


class ScanEvent(_Model):
    """Progress of a scan. ``event`` is ``started``, ``cursor_reset``, ``records_read``,
    ``digested``, ``analysed``, ``issue_filed`` or ``finished``; the other attributes depend on it
    (``records`` for ``records_read``, ``record`` for ``finished``, ...)."""

    _nested = {"record": ScanRecord, "issue": IssueRef}

    event: str
    scan_id: str

    def __getattr__(self, name: str) -> Any:
        if name == "scan_id" and "scan_id" not in self._raw and "record" in self._raw:
            return self._raw["record"]["scan_id"]
        return super().__getattr__(name)


class MonitorState(_Model):
    """Where the monitor is (``SelfMonitor.state``)."""

    _nested = {"last_scan": ScanRecord}
    _times = frozenset({"next_scan_at"})

    state: str
    """``"idle"`` or ``"running"`` (a scan of this object, or of another process)."""
    running_here: bool
    """Whether this ``SelfMonitor`` object is running a scan."""
    last_scan: Optional[ScanRecord]
    enabled: bool
    cadence_minutes: int
    next_scan_at: Optional[datetime]
