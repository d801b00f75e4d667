//! CloudFormation operations, one module each (as cloudformatious does): stack status,
//! events, change sets, apply (create or update), delete.

pub mod apply;
pub mod change_set;
pub mod delete;
pub mod events;
pub mod status;

#[cfg(test)]
mod mock_tests;
