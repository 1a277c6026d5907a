//! The tokio runtime the bank server and the switch serve on.

/// Half the cores (at least one) serve requests unless `TOKIO_WORKER_THREADS`
/// says otherwise: on the local stack and in the benchmark PostgreSQL shares
/// the machine and is the bottleneck, and every extra worker thread costs
/// cross-thread wake-ups. Measured on 2 cores (docs/benchmarks.md): the bank
/// server took 141 µs of CPU per transfer with one worker against 165 µs with
/// two and moved 7% more; the switch 286 against 311–335 µs per inter-bank
/// payment (session 16).
pub fn serving_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        runtime.worker_threads((cores / 2).max(1));
    }
    runtime.build()
}
