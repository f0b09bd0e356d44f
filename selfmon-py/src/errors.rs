//! The exception hierarchy, and the one place Rust errors and panics become Python exceptions.
//!
//! Every exception is a `selfmon.Error` carrying `.kind` (what happened, a stable string),
//! `.retryable` (whether the same call may succeed later) and `.chain` (the message of the error
//! and of each of its causes, outermost first). Subclasses name the component that failed.

use std::any::Any;

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

create_exception!(
    _selfmon,
    Error,
    PyException,
    "Base class of every selfmon exception: `.kind`, `.retryable`, `.chain`."
);
create_exception!(
    _selfmon,
    ConfigError,
    Error,
    "The configuration is invalid: `.problems` lists every problem as `{\"field\", \"reason\"}`."
);
create_exception!(
    _selfmon,
    LeaseHeldError,
    Error,
    "Another scan holds the single-flight lease: `.owner`, `.holder` (who, for people), `.since`, `.expires_at`; retry later."
);
create_exception!(
    _selfmon,
    LogSourceError,
    Error,
    "The log source (the logs.db) could not be read or written."
);
create_exception!(
    _selfmon,
    RunnerError,
    Error,
    "The analysis runner failed or returned nothing usable."
);
create_exception!(
    _selfmon,
    TrackerError,
    Error,
    "The issue tracker (GitHub, the folder tracker) failed."
);
create_exception!(
    _selfmon,
    StateError,
    Error,
    "selfmon's own state store failed."
);
create_exception!(
    _selfmon,
    CancelledError,
    Error,
    "The scan was cancelled (`SelfMonitor.cancel()`); it is recorded as interrupted."
);
create_exception!(
    _selfmon,
    InternalError,
    Error,
    "A bug in selfmon (a Rust panic); the message says where. Please report it."
);

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("LeaseHeldError", py.get_type::<LeaseHeldError>())?;
    m.add("LogSourceError", py.get_type::<LogSourceError>())?;
    m.add("RunnerError", py.get_type::<RunnerError>())?;
    m.add("TrackerError", py.get_type::<TrackerError>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// One configuration problem: the dotted field path and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted field path (`tracker.dir`, `cadence_minutes`).
    pub field: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

/// Which exception class, and the facts it carries.
#[derive(Debug)]
pub enum Kind {
    /// `ConfigError` with its problems.
    Config(Vec<Problem>),
    /// `LeaseHeldError`.
    LeaseHeld(Box<HeldLease>),
    /// `LogSourceError`.
    LogSource,
    /// `RunnerError`.
    Runner,
    /// `TrackerError`.
    Tracker,
    /// `StateError`.
    State,
    /// `CancelledError`.
    Cancelled,
    /// `InternalError`.
    Internal,
    /// Plain `selfmon.Error`.
    Other,
}

/// The lease another scan holds, as `LeaseHeldError`'s attributes.
#[derive(Debug, Clone)]
pub struct HeldLease {
    /// Owner name of the lease.
    pub owner: String,
    /// Who holds it, for people ("pid 42 on host-a").
    pub holder: String,
    /// RFC 3339 time the holder took it.
    pub since: String,
    /// RFC 3339 expiry.
    pub expires_at: String,
}

/// A failure on its way to Python: built without the GIL, raised with it.
#[derive(Debug)]
pub struct Failure {
    /// Which exception.
    pub kind: Kind,
    /// Stable name of what happened (`lease_held`, `adapter`, `config`, `panic`, ...).
    pub name: &'static str,
    /// Whether retrying later may succeed.
    pub retryable: bool,
    /// The message of the error and of each cause, outermost first.
    pub chain: Vec<String>,
}

impl Failure {
    /// A failure of `kind` with a single message.
    pub fn new(kind: Kind, name: &'static str, message: impl Into<String>) -> Self {
        Failure {
            kind,
            name,
            retryable: false,
            chain: vec![message.into()],
        }
    }

    /// A configuration failure listing `problems`.
    pub fn config(problems: Vec<Problem>) -> Self {
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.field, p.reason))
            .collect();
        let message = match lines.len() {
            1 => format!("invalid configuration: {}", lines[0]),
            _ => format!("invalid configuration:\n  {}", lines.join("\n  ")),
        };
        Failure::new(Kind::Config(problems), "config", message)
    }

    /// A panic caught at the boundary.
    pub fn panic(payload: &(dyn Any + Send)) -> Self {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        Failure::new(
            Kind::Internal,
            "panic",
            format!("internal error in selfmon (a Rust panic): {what}; please report it"),
        )
    }

    /// Raises this failure as a Python exception with its attributes set.
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        let message = self.chain.join(": ");
        let err = match &self.kind {
            Kind::Config(_) => ConfigError::new_err(message),
            Kind::LeaseHeld(_) => LeaseHeldError::new_err(message),
            Kind::LogSource => LogSourceError::new_err(message),
            Kind::Runner => RunnerError::new_err(message),
            Kind::Tracker => TrackerError::new_err(message),
            Kind::State => StateError::new_err(message),
            Kind::Cancelled => CancelledError::new_err(message),
            Kind::Internal => InternalError::new_err(message),
            Kind::Other => Error::new_err(message),
        };
        // Attributes are best effort: a failure to set one must not hide the error itself.
        let _ = self.decorate(py, &err);
        err
    }

    fn decorate(&self, py: Python<'_>, err: &PyErr) -> PyResult<()> {
        let value = err.value(py);
        value.setattr("kind", self.name)?;
        value.setattr("retryable", self.retryable)?;
        value.setattr("chain", PyList::new(py, &self.chain)?)?;
        match &self.kind {
            Kind::Config(problems) => {
                let list = PyList::empty(py);
                for p in problems {
                    let d = PyDict::new(py);
                    d.set_item("field", &p.field)?;
                    d.set_item("reason", &p.reason)?;
                    list.append(d)?;
                }
                value.setattr("problems", list)?;
            }
            Kind::LeaseHeld(lease) => {
                value.setattr("owner", &lease.owner)?;
                value.setattr("holder", &lease.holder)?;
                value.setattr("since", &lease.since)?;
                value.setattr("expires_at", &lease.expires_at)?;
            }
            _ => {}
        }
        Ok(())
    }
}

impl From<selfmon::Error> for Failure {
    fn from(e: selfmon::Error) -> Self {
        Failure::from(&e)
    }
}

impl From<&selfmon::Error> for Failure {
    fn from(e: &selfmon::Error) -> Self {
        use selfmon::Error as E;
        let (kind, name) = match e {
            E::Config { field, reason } => (
                Kind::Config(vec![Problem {
                    field: field.clone(),
                    reason: reason.clone(),
                }]),
                "config",
            ),
            E::Parse { .. } => (Kind::Config(Vec::new()), "parse"),
            E::UnknownPlaceholder { .. } | E::Template { .. } => (
                Kind::Config(vec![Problem {
                    field: "prompt_template".into(),
                    reason: e.to_string(),
                }]),
                "prompt_template",
            ),
            E::LeaseHeld {
                owner,
                holder,
                since,
                expires_at,
            } => (
                Kind::LeaseHeld(Box::new(HeldLease {
                    owner: owner.clone(),
                    holder: holder.clone(),
                    since: since.to_rfc3339(),
                    expires_at: expires_at.to_rfc3339(),
                })),
                "lease_held",
            ),
            E::AlreadyActive { .. } => (Kind::Other, "already_active"),
            E::Adapter { component, .. } => (component_kind(*component), "adapter"),
            E::RateLimited { component, .. } => (component_kind(*component), "rate_limited"),
            E::NotFound { component, .. } => (component_kind(*component), "not_found"),
            E::PermissionDenied { component, .. } => {
                (component_kind(*component), "permission_denied")
            }
            E::InvalidInput { component, .. } => (component_kind(*component), "invalid_input"),
            E::Unavailable { component, .. } => (component_kind(*component), "unavailable"),
            E::InvalidAnalysis { .. } => (Kind::Runner, "invalid_analysis"),
            E::NoAnswer { .. } => (Kind::Runner, "no_answer"),
            E::Cancelled => (Kind::Cancelled, "cancelled"),
            _ => (Kind::Other, "other"),
        };
        Failure {
            kind,
            name,
            retryable: e.is_retryable(),
            chain: chain(e),
        }
    }
}

/// The kind of failure of a component.
fn component_kind(component: selfmon::Component) -> Kind {
    use selfmon::Component;
    match component {
        Component::LogSource => Kind::LogSource,
        Component::AnalysisRunner => Kind::Runner,
        Component::IssueTracker => Kind::Tracker,
        Component::StateStore => Kind::State,
        _ => Kind::Other,
    }
}

/// The message of `e` and of each of its sources, skipping a source its parent already quotes.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.last().is_some_and(|prev| prev.contains(&text)) {
            out.push(text);
        }
        cur = c.source();
    }
    out
}

/// Runs `f`, turning a panic into an `InternalError` so no panic crosses into Python.
pub fn guard<T>(py: Python<'_>, f: impl FnOnce() -> Result<T, Failure>) -> PyResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(failure)) => Err(failure.into_pyerr(py)),
        Err(payload) => Err(Failure::panic(payload.as_ref()).into_pyerr(py)),
    }
}

/// Panics with `message` inside the panic boundary, so tests can prove a Rust panic reaches
/// Python as `selfmon.InternalError` (not the uncatchable `PanicException`). Not API.
#[pyfunction]
pub fn _panic_for_tests(py: Python<'_>, message: String) -> PyResult<()> {
    guard(py, || -> Result<(), Failure> { panic!("{message}") })
}
