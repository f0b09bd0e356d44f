//! The domain model shared by the engine, every adapter and the host.

mod backlog;
mod classification;
mod claude_model;
mod code;
mod finding;
mod issue;
mod record;
mod report;
mod scan;

pub use backlog::{
    BacklogClosure, BacklogEntry, ClosedBacklogEntry, IssueOccurrences, IssueSignature, ScanEffects,
};
pub use classification::Classification;
pub use claude_model::ClaudeModel;
pub use code::ErrorCode;
pub use finding::{EvidenceScope, Finding, FindingLimits, RejectedFinding};
pub use issue::{
    classification_in, classification_marker, CloseReason, FiledIssue, FilingIntent, IssueDraft,
    IssueRef, IssueState, KnownIssue, Marker, TrackedIssue,
};
pub use record::{Level, LogRecord, NumericLevels};
pub use report::{
    IssueEvent, IssueEventKind, RejectedFindingReport, ReportOmissions, ScanWarning, SignatureFate,
    SignatureReport, SkippedSignature, SkippedSignatureReport, MAX_REPORT_DIGEST_BYTES,
    MAX_REPORT_SIGNATURES, MAX_REPORT_TEMPLATE_CHARS, MAX_REPORT_TEXT_CHARS, MAX_REPORT_WARNINGS,
    UNKNOWN_SIGNATURE_ID,
};
pub use scan::{
    DuplicateCounts, FindingOutcome, LogAnchor, ScanId, ScanRecord, ScanReport, ScanStatus,
    ScanTrigger,
};
