//! The process's Prometheus recorder, shared by the bank server and the
//! switch: the `metrics` crate has one global recorder per process, and a
//! test process runs banks and a switch side by side.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the recorder on first use; every caller renders the same metrics.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| PrometheusBuilder::new().install_recorder().expect("no other metrics recorder is installed"))
        .clone()
}
