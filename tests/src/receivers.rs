//! Local stand-ins for the notification providers, over HTTPS with a
//! certificate from the stack's own CA: a receiver that speaks Twilio's
//! Messages API shape and checks its basic auth.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Instant,
};

use axum::{
    extract::{Form, Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use axum_server::tls_rustls::RustlsConfig;
use base64::Engine;

pub const TWILIO_SID: &str = "AC00000000000000000000000000000001";
pub const TWILIO_TOKEN: &str = "local-receiver-auth-token";

#[derive(Debug, Clone)]
pub struct Sms {
    pub event_id: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub at: Instant,
    pub at_wall: chrono::DateTime<chrono::Utc>,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
pub struct TwilioState {
    pub received: Mutex<Vec<Sms>>,
    /// While set, every message is answered 500.
    pub failing: AtomicBool,
    /// Every answer waits this long (a slow provider: sends stay in flight).
    pub delay_ms: std::sync::atomic::AtomicU64,
    /// Event ids answered 500 this many more times.
    pub fail_times: Mutex<std::collections::HashMap<String, u32>>,
    /// A new event whose body contains the text is answered 500 this many
    /// times first (armed before the change, so a fast dispatcher cannot get in first).
    pub fail_new_matching: Mutex<Option<(String, u32)>>,
}

impl TwilioState {
    pub fn for_event(&self, event_id: &str) -> Vec<Sms> {
        self.received.lock().unwrap().iter().filter(|m| m.event_id == event_id).cloned().collect()
    }
    /// When each event's message was accepted (201), by event id.
    pub fn accepted_at(&self) -> std::collections::HashMap<String, chrono::DateTime<chrono::Utc>> {
        self.received.lock().unwrap().iter().filter(|m| m.status == 201).map(|m| (m.event_id.clone(), m.at_wall)).collect()
    }
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }
}

pub struct TwilioReceiver {
    pub base_url: String,
    pub state: Arc<TwilioState>,
    handle: axum_server::Handle,
    /// The thread serving it, when it has one of its own (`start_on_own_thread`).
    thread_id: Option<i32>,
}

impl Drop for TwilioReceiver {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn messages(
    State(state): State<Arc<TwilioState>>,
    UrlPath(sid): UrlPath<String>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}")));
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let event_id = headers.get("x-flexibank-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let status = if sid != TWILIO_SID || !authorized {
        StatusCode::UNAUTHORIZED
    } else if state.failing.load(Ordering::SeqCst) {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        let mut fail_times = state.fail_times.lock().unwrap();
        if let Some((text, times)) = &*state.fail_new_matching.lock().unwrap() {
            if form.get("Body").is_some_and(|body| body.contains(text.as_str())) {
                fail_times.entry(event_id.clone()).or_insert(*times);
            }
        }
        match fail_times.get_mut(&event_id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::CREATED,
        }
    };
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let delay_ms = state.delay_ms.load(Ordering::SeqCst);
    state.received.lock().unwrap().push(Sms {
        event_id,
        to: field("To"),
        from: field("From"),
        body: field("Body"),
        at: Instant::now(),
        at_wall: chrono::Utc::now(),
        status: status.as_u16(),
    });
    if delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    }
    (status, r#"{"sid":"SM0000","status":"queued"}"#.to_string())
}

impl TwilioReceiver {
    /// Serves on a free port with `tls_dir`'s server certificate.
    pub async fn start(tls_dir: &Path) -> TwilioReceiver {
        let (receiver, server) = TwilioReceiver::bind(tls_dir);
        tokio::spawn(server);
        receiver
    }

    /// `start`, served by a thread of its own (`sms-receiver`), so that the benchmark can tell its
    /// CPU from the load generator's (`thread_id`): a real provider would not share these cores.
    pub fn start_on_own_thread(tls_dir: &Path) -> TwilioReceiver {
        let tls_dir = tls_dir.to_path_buf();
        let (started, receiver) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("sms-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("the receiver's runtime");
                runtime.block_on(async move {
                    let (mut receiver, server) = TwilioReceiver::bind(&tls_dir);
                    // SAFETY: gettid takes no arguments and cannot fail.
                    receiver.thread_id = Some(unsafe { libc::syscall(libc::SYS_gettid) } as i32);
                    started.send(receiver).expect("the starter waits for it");
                    let _ = server.await;
                });
            })
            .expect("a thread for the receiver");
        receiver.recv().expect("the receiver's thread started")
    }

    /// The id of the thread that serves it alone (`/proc/self/task/{id}`), if it has one.
    pub fn thread_id(&self) -> Option<i32> {
        self.thread_id
    }

    fn bind(tls_dir: &Path) -> (TwilioReceiver, impl std::future::Future<Output = std::io::Result<()>> + Send + 'static) {
        let state = Arc::new(TwilioState::default());
        let app = Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages)).with_state(state.clone());
        let tls = flexibank_server::tls::server_config(&tls_dir.join("server.pem"), &tls_dir.join("server-key.pem")).expect("receiver TLS");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls)).handle(handle.clone()).serve(app.into_make_service());
        (TwilioReceiver { base_url: format!("https://127.0.0.1:{}", addr.port()), state, handle, thread_id: None }, server)
    }
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub signature: String,
    pub event_id: String,
    pub body: Vec<u8>,
}

/// An HTTPS endpoint that keeps every webhook POST it gets and answers 200.
pub struct WebhookReceiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Hook>>>,
    handle: axum_server::Handle,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn hook(State(received): State<Arc<Mutex<Vec<Hook>>>>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    received.lock().unwrap().push(Hook { signature: header("flexibank-signature"), event_id: header("flexibank-event-id"), body: body.to_vec() });
    StatusCode::OK
}

impl WebhookReceiver {
    pub async fn start(tls_dir: &Path) -> WebhookReceiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().route("/hooks/flexibank", post(hook)).with_state(received.clone());
        let tls = flexibank_server::tls::server_config(&tls_dir.join("server.pem"), &tls_dir.join("server-key.pem")).expect("receiver TLS");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, RustlsConfig::from_config(tls)).handle(handle.clone()).serve(app.into_make_service());
        tokio::spawn(server);
        WebhookReceiver { url: format!("https://127.0.0.1:{port}/hooks/flexibank"), received, handle }
    }
}
