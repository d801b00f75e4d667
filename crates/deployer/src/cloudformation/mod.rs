//! CloudFormation operations, one module each (as cloudformatious does): stack status,
//! events, change sets, apply (create or update), delete, termination protection.

pub mod apply;
pub mod change_set;
pub mod delete;
pub mod events;
pub mod protection;
pub mod status;

#[cfg(test)]
pub(crate) mod mock_tests;
