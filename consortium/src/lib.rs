//! What the banks of the consortium and its switch share: the PKI of their
//! mutual TLS (`pki`), the rules and wire shapes of the key directory
//! (`keys`), the problem+json every error is (`problem`) and the runtime both
//! serve on (`runtime`). Both the bank and the switch binaries build on this
//! crate, so a rule is written once.

pub mod keys;
pub mod pki;
pub mod peer;
pub mod problem;
pub mod protocol;
pub mod runtime;
pub mod telemetry;
