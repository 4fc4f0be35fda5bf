//! What only PostgreSQL can do for the journal (team mode, SPEC 8): its schema and migrations,
//! maker-checker enforced by the database ([`roles`]), the approval policy, one driver per batch
//! ([`lease`]) and one rate budget per merchant ([`budget`]). The journal's meaning stays above, in
//! [`crate::journal`], the same for both backends; nothing here is used with SQLite.

pub mod approvals;
pub mod budget;
pub mod import;
pub mod lease;
pub mod roles;
pub mod schema;
