//! The switch's client to the banks' switch-only listeners (docs/consortium.md,
//! steps 4 and 6, and `reconcile`). Each call presents the switch's
//! certificate, trusts only the consortium CA, and connects to the address
//! the bank registered while verifying the bank's *name*
//! (`b<id>.banks.flexibank.internal`): whatever address is on record, only
//! the holder of that bank's certificate can answer.

use std::{collections::HashMap, fmt, path::PathBuf, sync::Mutex, time::Duration};

use flexibank_consortium::{
    pki,
    protocol::{Applied, Decision, Prepare, Settlement, Vote, DECISION_PATH, PREPARE_PATH, SETTLEMENT_PATH},
};
use serde::{de::DeserializeOwned, Serialize};

/// Longest error body kept for a log line.
const MAX_ERROR_BODY_CHARS: usize = 200;
/// Bounds every call whatever the configuration says: a stuck bank must not hold a task for long.
pub const MAX_CALL_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug)]
pub enum CallError {
    /// No answer in time (the bank may or may not have acted: every message is idempotent).
    Timeout,
    /// No connection, a failed handshake (wrong certificate), or the connection dropped.
    Unavailable(String),
    /// An answer other than 200.
    Status(u16, String),
    /// A 200 whose body is not the message expected.
    Protocol(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Timeout => write!(f, "no answer in time"),
            CallError::Unavailable(why) => write!(f, "unavailable: {why}"),
            CallError::Status(status, body) => write!(f, "answered {status}: {body}"),
            CallError::Protocol(why) => write!(f, "malformed answer: {why}"),
        }
    }
}

impl std::error::Error for CallError {}

fn from_reqwest(e: reqwest::Error) -> CallError {
    if e.is_timeout() {
        return CallError::Timeout;
    }
    // The chain carries the useful part ("connection refused", "invalid peer certificate").
    let mut why = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    CallError::Unavailable(why)
}

/// A bank to call: its id and its registered `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BankAddr {
    pub bank_id: String,
    pub addr: String,
}

/// The switch's clients to banks, one per (bank, address), kept for their connection pools.
pub struct Calls {
    tls_dir: PathBuf,
    call_timeout: Duration,
    clients: Mutex<HashMap<BankAddr, reqwest::Client>>,
}

impl Calls {
    pub fn new(tls_dir: PathBuf, call_timeout_ms: u64) -> Calls {
        Calls { tls_dir, call_timeout: Duration::from_millis(call_timeout_ms.clamp(1, MAX_CALL_TIMEOUT_MS)), clients: Mutex::new(HashMap::new()) }
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// Step 4: asks the payee to prepare; its vote, or why there is none. `timeout` is what is left of the deadline.
    pub async fn prepare(&self, bank: &BankAddr, prepare: &Prepare, timeout: Duration) -> Result<Vote, CallError> {
        self.send(bank, reqwest::Method::POST, PREPARE_PATH, Some(prepare), timeout).await
    }

    /// Step 6: pushes the decision; a 200 `Applied` for this payment and status is the bank's acknowledgement.
    pub async fn send_decision(&self, bank: &BankAddr, decision: &Decision) -> Result<Applied, CallError> {
        let applied: Applied = self.send(bank, reqwest::Method::POST, DECISION_PATH, Some(decision), self.call_timeout).await?;
        if applied.e2e_id != decision.e2e_id || applied.status != decision.status {
            return Err(CallError::Protocol(format!("applied {} {:?} for {} {:?}", applied.e2e_id, applied.status, decision.e2e_id, decision.status)));
        }
        Ok(applied)
    }

    /// The bank's settlement account, for `reconcile`.
    pub async fn settlement(&self, bank: &BankAddr) -> Result<Settlement, CallError> {
        self.send::<(), _>(bank, reqwest::Method::GET, SETTLEMENT_PATH, None, self.call_timeout).await
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        bank: &BankAddr,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let timeout = timeout.min(Duration::from_millis(MAX_CALL_TIMEOUT_MS));
        if timeout.is_zero() {
            return Err(CallError::Timeout);
        }
        // One bound over everything, the address look-up included.
        let call = async {
            let (client, url) = self.client(bank).await?;
            let mut request = client.request(method, format!("{url}{path}")).timeout(timeout);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(from_reqwest)?;
            let status = response.status();
            if status != reqwest::StatusCode::OK {
                let text = response.text().await.unwrap_or_default();
                return Err(CallError::Status(status.as_u16(), text.chars().take(MAX_ERROR_BODY_CHARS).collect()));
            }
            let bytes = response.bytes().await.map_err(from_reqwest)?;
            serde_json::from_slice(&bytes).map_err(|e| CallError::Protocol(e.to_string()))
        };
        tokio::time::timeout(timeout, call).await.unwrap_or(Err(CallError::Timeout))
    }

    /// The client for `bank` and its base URL (`https://<bank name>:<port>`).
    async fn client(&self, bank: &BankAddr) -> Result<(reqwest::Client, String), CallError> {
        let port =
            bank.addr.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok()).ok_or_else(|| CallError::Unavailable(format!("bad address {}", bank.addr)))?;
        let url = format!("https://{}:{port}", pki::bank_name_for(&bank.bank_id));
        if let Some(client) = self.clients.lock().expect("clients lock").get(bank) {
            return Ok((client.clone(), url));
        }
        let client = self.build(bank).await?;
        let mut clients = self.clients.lock().expect("clients lock");
        // One client per bank: a new address replaces the old one's (bounded by the number of banks).
        clients.retain(|key, _| key.bank_id != bank.bank_id);
        clients.insert(bank.clone(), client.clone());
        Ok((client, url))
    }

    async fn build(&self, bank: &BankAddr) -> Result<reqwest::Client, CallError> {
        let socket_addr = tokio::net::lookup_host(bank.addr.as_str())
            .await
            .map_err(|e| CallError::Unavailable(format!("resolving {}: {e}", bank.addr)))?
            .next()
            .ok_or_else(|| CallError::Unavailable(format!("{} resolves to no address", bank.addr)))?;
        let dir = &self.tls_dir;
        let setup = |e: anyhow::Error| CallError::Unavailable(format!("the switch's client: {e:#}"));
        let identity = pki::client_identity(&dir.join(pki::SWITCH_CERT_FILE), &dir.join(pki::SWITCH_KEY_FILE)).map_err(setup)?;
        let builder = pki::client_builder(&dir.join(pki::CA_CERT_FILE), Some(identity), self.call_timeout).map_err(setup)?;
        builder
            .resolve(&pki::bank_name_for(&bank.bank_id), socket_addr)
            .connect_timeout(self.call_timeout)
            .build()
            .map_err(|e| CallError::Unavailable(format!("the switch's client: {e}")))
    }
}
