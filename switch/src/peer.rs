//! The peer certificate of a mutual-TLS connection: shared with the banks, in `flexibank_consortium::peer`.

pub use flexibank_consortium::peer::*;
