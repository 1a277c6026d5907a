//! `make bench`: FlexiBank's API next to pgbench on the same cluster.

pub mod hot;
pub mod interbank;
pub mod load;
pub mod pgbench;
pub mod report;
pub mod stack;
