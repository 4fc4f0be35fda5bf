//! payrun's integration tests, in one test binary.
//!
//! Each module below was once its own file under `tests/`, and so its own binary linking the whole
//! dependency tree (about 60-100 MB each in a debug build); a clean `cargo test` filled the disk of
//! a CI machine while linking the sixteenth. One binary links once. Run one module with
//! `cargo test --test suite never_twice::`, one test with its full path.
//!
//! Tests in different modules now run side by side in one process, so nothing here may change
//! process-wide state (environment, working directory, umask) or leave an inheritable descriptor
//! open: each child gets what it needs through `Command`.

mod support;

mod cli_run;
mod controls;
mod crash;
mod gateway_contract;
mod lineage;
mod model;
mod never_twice;
mod one_row_props;
mod operator;
mod pg_store;
mod pipeline;
mod proof;
mod report_files;
mod report_print;
mod team;
mod team_budget;
mod tls;
mod validate_cli;
mod validate_props;
mod validate_rules;
mod validate_xlsx;
mod vendor_samples;
mod wire_conformance;
mod wire_props;
