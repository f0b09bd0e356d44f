//! # selfmon-py
//!
//! The native half of the `selfmon` Python package (`selfmon._selfmon`): the scan engine, its
//! configuration and history, and the SQLite log writer, for Python hosts. The typed Python API
//! (`selfmon.SelfMonitor`, `selfmon.LogHandler`, the report classes) lives in
//! `python/selfmon/`, built on the classes here.
//!
//! - One tokio runtime per process, owned by the module ([`runtime`]).
//! - Every blocking call releases the GIL; a scan polls for Ctrl-C while it waits.
//! - Every error is a `selfmon.Error` subclass with `.kind`, `.retryable` and `.chain`, and no
//!   panic crosses into Python ([`errors`]).
//!
//! Built with maturin (`pip install ./selfmon-py`); abi3, so one wheel serves CPython 3.9 and later.
#![warn(missing_docs)]

use pyo3::prelude::*;

pub mod config;
pub mod errors;
pub mod log_writer;
pub mod monitor;
pub mod runtime;

/// The extension module `selfmon._selfmon`.
#[pymodule]
fn _selfmon(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(errors::_panic_for_tests, m)?)?;
    m.add_class::<monitor::Monitor>()?;
    m.add_class::<log_writer::LogWriter>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
