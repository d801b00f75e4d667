//! `deployer diff`: what a deploy would change, replace, and put at risk.

pub mod compare;
pub mod render;

#[cfg(test)]
mod tests;
