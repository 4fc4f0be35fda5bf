//! payrun: a bulk-payout processor for the AT MOON DPS payment API (see README.md).
//!
//! The modules follow the data path: [`input`] (read and validate) → [`journal`] (the durable row
//! lifecycle) → [`gateway`] (wire format and client) → [`engine`] (send, resolve in-doubt rows,
//! poll) → [`report`] (result file and summary), with [`sandbox`] (the simulated gateway) beside
//! them, and [`batch`] owning a batch's life (ingest, guards, confirm, drive, finish) over all of
//! them. The `payrun` binary is a thin shell over this library.

// Amounts in paise are written with Indian grouping on purpose: 5_00_000_00 is ₹5,00,000.
#![allow(clippy::inconsistent_digit_grouping)]

pub mod audit;
pub mod batch;
pub mod config;
pub mod engine;
pub mod files;
pub mod gateway;
pub mod input;
pub mod journal;
pub mod money;
pub mod out;
pub mod report;
pub mod sandbox;
pub mod shutdown;
