//! Local PostgreSQL primary + synchronous streaming replicas, run from the
//! installed PostgreSQL binaries (used by tests and the `flexibank-cluster` CLI).

pub mod cluster;
mod conf;
mod divergence;
mod failover;
mod init;
mod lifecycle;
pub mod pg_bin;
pub mod pool;
mod process;
pub mod status;

pub use cluster::{Cluster, ClusterConfig, InitOptions, NodeConfig};
pub use divergence::Discarded;
pub use status::NodeStatus;
