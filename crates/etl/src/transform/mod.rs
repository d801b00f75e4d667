//! The base-a transformation of SYSTEM.md, as plain functions over one record at a time.
//!
//! - Dimensions (courses, universities, subjects) are read first into [`Dimension`] indexes:
//!   keys compare by their text form, and with duplicate ids the last row wins.
//! - Facts (students, follows, sessions, subscriptions) stream through [`Table::transform`]
//!   one record at a time, in input order; a fact row is never dropped for a missing match.
//!
//! A transformed row is a list of [`Field`]s in output order. Each names its column in the
//! table's contract (`crate::warehouse`), or none for a field that passes through; the
//! Parquet writer puts those in the `extra` column as one JSON object, the NDJSON writer
//! writes them in place, as the original did.

mod dimension;
pub mod tables;

pub use dimension::{Dimension, DimensionKind};
pub use tables::{Dimensions, Field, Row, Table};
