//! What the banks of the consortium and its switch share: the PKI of their
//! mutual TLS (`pki`), the rules and wire shapes of the key directory
//! (`keys`), the problem+json every error is (`problem`), the runtime both
//! serve on (`runtime`) and the pipelined transactions both write with
//! (`pipeline`). Both the bank and the switch binaries build on this
//! crate, so a rule is written once.

pub mod keys;
pub mod pki;
pub mod peer;
pub mod pipeline;
pub mod problem;
pub mod protocol;
pub mod runtime;
pub mod telemetry;
