pub mod config;
pub mod files;
pub mod gateway;
pub mod money;
pub mod sandbox;
pub mod shutdown;
pub mod input;
pub mod report;
