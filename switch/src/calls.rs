//! The switch's client to the banks' switch-only listeners (docs/consortium.md,
//! steps 4 and 6, and `reconcile`). Each call presents the switch's
//! certificate, trusts only the consortium CA, and connects to the address
//! the bank registered while verifying the bank's *name*
//! (`b<id>.banks.flexibank.internal`): whatever address is on record, only
//! the holder of that bank's certificate can answer.

use std::{
    collections::HashMap,
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use flexibank_consortium::{
    pki,
    protocol::{Answers, Applied, Batch, Decision, Prepare, Settlement, Vote, DECISIONS_PATH, MAX_BATCH_MESSAGES, PREPARES_PATH, SETTLEMENT_PATH},
};
use serde::{de::DeserializeOwned, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Longest error body kept for a log line.
const MAX_ERROR_BODY_CHARS: usize = 200;
/// Bounds every call whatever the configuration says: a stuck bank must not hold a task for long.
pub const MAX_CALL_TIMEOUT_MS: u64 = 60_000;

#[derive(Debug, Clone)]
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

/// Batched calls in flight to one bank for one kind of message at most: the next
/// batch gathers while these are answered, and a bank that is slow holds two tasks, not one per payment.
const MAX_CALLS_IN_FLIGHT_PER_LANE: usize = 4;
/// Times a lane yields to let messages sent at the same moment join its call (no timed wait).
const GATHER_YIELDS: usize = 2;
/// Messages waiting for one bank's lane; beyond this a message is refused at once as if the bank were unavailable.
const MAX_QUEUED_PER_LANE: usize = 4096;

/// The switch's calls to banks. Prepares and decisions go through a lane per
/// bank that sends whatever is waiting in one `Batch` call (`PREPARES_PATH`,
/// `DECISIONS_PATH`); each message keeps its own answer.
pub struct Calls {
    connector: Arc<Connector>,
    prepares: Lanes<Prepare, Vote>,
    decisions: Lanes<Decision, Applied>,
}

impl Calls {
    pub fn new(tls_dir: PathBuf, call_timeout_ms: u64) -> Calls {
        let connector = Arc::new(Connector {
            tls_dir,
            call_timeout: Duration::from_millis(call_timeout_ms.clamp(1, MAX_CALL_TIMEOUT_MS)),
            clients: Mutex::new(HashMap::new()),
        });
        Calls { connector, prepares: Lanes::new(PREPARES_PATH), decisions: Lanes::new(DECISIONS_PATH) }
    }

    pub fn call_timeout(&self) -> Duration {
        self.connector.call_timeout
    }

    /// Step 4: asks the payee to prepare; its vote, or why there is none. `timeout` is what is left of the deadline.
    pub async fn prepare(&self, bank: &BankAddr, prepare: &Prepare, timeout: Duration) -> Result<Vote, CallError> {
        self.prepares.call(&self.connector, bank, prepare.clone(), timeout).await
    }

    /// Step 6: pushes the decision; a 200 `Applied` for this payment and status is the bank's acknowledgement.
    pub async fn send_decision(&self, bank: &BankAddr, decision: &Decision) -> Result<Applied, CallError> {
        let applied = self.decisions.call(&self.connector, bank, decision.clone(), self.connector.call_timeout).await?;
        if applied.e2e_id != decision.e2e_id || applied.status != decision.status {
            return Err(CallError::Protocol(format!("applied {} {:?} for {} {:?}", applied.e2e_id, applied.status, decision.e2e_id, decision.status)));
        }
        Ok(applied)
    }

    /// The bank's settlement account, for `reconcile`.
    pub async fn settlement(&self, bank: &BankAddr) -> Result<Settlement, CallError> {
        self.connector.send::<(), _>(bank, reqwest::Method::GET, SETTLEMENT_PATH, None, self.connector.call_timeout).await
    }
}

/// One message waiting in a lane, with when its caller stops waiting.
struct Waiting<M, A> {
    message: M,
    deadline: tokio::time::Instant,
    reply: oneshot::Sender<Result<A, CallError>>,
}

/// A lane per bank (by address: a new address gets a new lane) for one kind of message.
struct Lanes<M, A> {
    path: &'static str,
    senders: Mutex<HashMap<BankAddr, mpsc::Sender<Waiting<M, A>>>>,
}

impl<M, A> Lanes<M, A>
where
    M: Serialize + Send + Sync + 'static,
    A: DeserializeOwned + Send + 'static,
{
    fn new(path: &'static str) -> Self {
        Lanes { path, senders: Mutex::new(HashMap::new()) }
    }

    async fn call(&self, connector: &Arc<Connector>, bank: &BankAddr, message: M, timeout: Duration) -> Result<A, CallError> {
        let timeout = timeout.min(Duration::from_millis(MAX_CALL_TIMEOUT_MS));
        if timeout.is_zero() {
            return Err(CallError::Timeout);
        }
        let sender = self.sender(connector, bank);
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting { message, deadline: tokio::time::Instant::now() + timeout, reply };
        if sender.try_send(waiting).is_err() {
            return Err(CallError::Unavailable(format!("{} messages already wait for bank {}", MAX_QUEUED_PER_LANE, bank.bank_id)));
        }
        // Each message keeps its own deadline, whatever the call it shares does: a prepare not
        // answered by then is aborted at the switch, as when every message had a call of its own.
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(CallError::Unavailable("the call was dropped".into())),
            Err(_) => Err(CallError::Timeout),
        }
    }

    fn sender(&self, connector: &Arc<Connector>, bank: &BankAddr) -> mpsc::Sender<Waiting<M, A>> {
        let mut senders = self.senders.lock().expect("lanes lock");
        if let Some(sender) = senders.get(bank) {
            return sender.clone();
        }
        // Bounded by the number of banks: a bank's new address replaces its old lane (whose worker ends when drained).
        senders.retain(|key, _| key.bank_id != bank.bank_id);
        let (sender, receiver) = mpsc::channel(MAX_QUEUED_PER_LANE);
        tokio::spawn(lane::<M, A>(connector.clone(), bank.clone(), self.path, receiver));
        senders.insert(bank.clone(), sender.clone());
        sender
    }
}

/// Sends what waits for one bank, `MAX_BATCH_MESSAGES` per call, `MAX_CALLS_IN_FLIGHT_PER_LANE` calls at once.
async fn lane<M, A>(connector: Arc<Connector>, bank: BankAddr, path: &'static str, mut receiver: mpsc::Receiver<Waiting<M, A>>)
where
    M: Serialize + Send + Sync + 'static,
    A: DeserializeOwned + Send + 'static,
{
    let in_flight = Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT_PER_LANE));
    loop {
        let permit = in_flight.clone().acquire_owned().await.expect("never closed");
        let mut batch: Vec<Waiting<M, A>> = Vec::with_capacity(MAX_BATCH_MESSAGES);
        if receiver.recv_many(&mut batch, MAX_BATCH_MESSAGES).await == 0 {
            return;
        }
        // The payments one batch recorded are answered together and their tasks send at
        // once: let those already woken enqueue theirs, so that they share this call.
        for _ in 0..GATHER_YIELDS {
            if batch.len() >= MAX_BATCH_MESSAGES {
                break;
            }
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH_MESSAGES {
                match receiver.try_recv() {
                    Ok(waiting) => batch.push(waiting),
                    Err(_) => break,
                }
            }
        }
        let (connector, bank) = (connector.clone(), bank.clone());
        tokio::spawn(async move {
            send_batch(&connector, &bank, path, batch).await;
            drop(permit);
        });
    }
}

async fn send_batch<M: Serialize, A: DeserializeOwned>(connector: &Connector, bank: &BankAddr, path: &str, batch: Vec<Waiting<M, A>>) {
    // The call lasts as long as its most patient message; the others have stopped waiting by then
    // (`Lanes::call`), and an answer nobody waits for is dropped.
    let deadline = batch.iter().map(|w| w.deadline).max().expect("a batch is never empty");
    let timeout = deadline.saturating_duration_since(tokio::time::Instant::now());
    let (messages, replies): (Vec<M>, Vec<_>) = batch.into_iter().map(|w| (w.message, w.reply)).unzip();
    let count = messages.len();
    metrics::histogram!("flexibank_switch_call_messages", "path" => path.to_string()).record(count as f64);
    let sent: Result<Answers<A>, CallError> = connector.send(bank, reqwest::Method::POST, path, Some(&Batch { items: messages }), timeout).await;
    match sent {
        Ok(answers) if answers.answers.len() == count => {
            for (reply, answer) in replies.into_iter().zip(answers.answers) {
                let _ = reply.send(answer.ok_or_else(|| CallError::Status(200, "the bank could not apply this message".into())));
            }
        }
        Ok(answers) => {
            let error = CallError::Protocol(format!("{} answers to {count} messages", answers.answers.len()));
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

/// The HTTPS clients to banks, one per (bank, address), kept for their connection pools.
struct Connector {
    tls_dir: PathBuf,
    call_timeout: Duration,
    clients: Mutex<HashMap<BankAddr, reqwest::Client>>,
}

impl Connector {
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
