//! Report: the result file of SPEC section 5 and the summaries (terminal table and `--json`).
//!
//! This module owns what accounting receives. It reads the journal and writes; it never changes a
//! row's state and never talks to the gateway.

pub mod cells;

pub use cells::inert;
