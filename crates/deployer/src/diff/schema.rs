//! What the resource schemas say about the types this pipeline uses: which properties are
//! create-only (changing one replaces the resource) and which types hold data. One source with
//! the CloudFormation role's policy and preflight: `stack_model::facts`, generated from the
//! schemas cfn-lint ships.

pub use stack_model::facts::{replaces, stateful};
