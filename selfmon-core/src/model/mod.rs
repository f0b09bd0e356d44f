//! The domain model shared by the engine, every adapter and the host.

mod backlog;
mod classification;
mod claude_model;
mod code;
mod finding;
mod issue;
mod record;
mod scan;

pub use backlog::{
    BacklogClosure, BacklogEntry, ClosedBacklogEntry, IssueOccurrences, ScanEffects,
};
pub use classification::Classification;
pub use claude_model::ClaudeModel;
pub use code::ErrorCode;
pub use finding::{EvidenceScope, Finding, FindingLimits, RejectedFinding};
pub use issue::{
    FiledIssue, FilingIntent, IssueDraft, IssueRef, IssueState, KnownIssue, Marker, TrackedIssue,
};
pub use record::{Level, LogRecord};
pub use scan::{
    DuplicateCounts, FindingOutcome, ScanId, ScanRecord, ScanReport, ScanStatus, ScanTrigger,
};
