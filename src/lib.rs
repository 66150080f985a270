//! plbulk: bulk jobs from spreadsheets against the PhoneLine+ (PL+) Partner API.
//!
//! # Layout
//!
//! Data flows one way: file → rows → validated operations → plan → journal → engine → results.
//! The modules, in that order of use:
//!
//! - [`contract`]: the API as plbulk understands it. Every assumed path and field name lives
//!   here and nowhere else, so meeting the real reference is a one-file change.
//! - [`pacing`]: the per-key limit (100 calls a minute by default) as a strict sliding window.
//! - [`client`]: a typed async client for every operation: auth and token refresh, retries,
//!   and failures sorted into transient, final and *outcome unknown*.
//! - [`sandbox`]: an in-memory server implementing the whole contract, with the real limit and
//!   injectable faults, for tests, benchmarks and partners' rehearsals.
//! - [`cli`] and [`cmd`]: argument parsing, and one module per verb that calls into the above.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod contract;
pub mod pacing;
pub mod sandbox;
