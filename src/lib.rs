//! selfmon
