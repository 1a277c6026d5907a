//! A running switch for the switch's tests: its own one-node database, a
//! consortium CA with the switch's and its members' certificates under the
//! test's directory, the switch on an ephemeral port, and a connection to
//! its database to read past its API.

use std::{path::PathBuf, time::Duration};

use flexibank_consortium::pki;
use flexibank_switch::{Config, DatabaseConfig, Limits, RunningSwitch};

use crate::{single_node_database, ClusterGuard};

pub struct SwitchUnderTest {
    pub switch: Option<RunningSwitch>,
    pub base: String,
    /// The test's own directory; the consortium CA is in `tls`.
    pub dir: PathBuf,
    pub tls: PathBuf,
    pub database: DatabaseConfig,
    pub db: tokio_postgres::Client,
    // Declared last: dropped after everything that talks to the database.
    _guard: ClusterGuard,
}

impl SwitchUnderTest {
    /// `members`: (bank id, name), each with a certificate and registered.
    pub async fn start(label: &str, members: &[(&str, &str)], limits: Limits) -> SwitchUnderTest {
        let (guard, dir, url) = single_node_database(label, "flexibank_switch").await;
        let tls = dir.join("tls");
        assert!(pki::init_ca(&tls).unwrap());
        pki::issue_switch_cert(&tls, &[]).unwrap();
        pki::issue_operator_cert(&tls).unwrap();
        let database = DatabaseConfig::new(url.clone());
        for (bank, name) in members {
            pki::issue_bank_cert(&tls, bank).unwrap();
            assert!(flexibank_switch::add_bank(&database, bank, name).await.unwrap());
        }
        let config = Config { listen: "127.0.0.1:0".parse().unwrap(), database: database.clone(), tls_dir: tls.clone(), limits };
        let switch = flexibank_switch::start(config).await.expect("switch start");
        let (db, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let base = format!("https://127.0.0.1:{}", switch.addr.port());
        SwitchUnderTest { switch: Some(switch), base, dir, tls, database, db, _guard: guard }
    }

    /// An HTTPS client presenting `bank_id`'s certificate and trusting only the CA.
    pub fn bank(&self, bank_id: &str) -> reqwest::Client {
        pki::bank_client(&self.tls, &self.tls.join(pki::CA_CERT_FILE), bank_id, Duration::from_secs(30)).expect("bank client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An HTTPS client presenting the consortium operator's certificate.
    pub fn operator(&self) -> reqwest::Client {
        pki::operator_client(&self.tls, &self.tls.join(pki::CA_CERT_FILE), Duration::from_secs(30)).expect("operator client")
    }

    /// The running switch's connection pool.
    pub fn pool(&self) -> flexibank_switch::db::Pool {
        self.switch.as_ref().expect("running").db.clone()
    }

    /// What `reconcile` needs to reach this switch's database and the banks.
    pub fn reconcile_config(&self, call_timeout_ms: u64) -> flexibank_switch::ReconcileConfig {
        flexibank_switch::ReconcileConfig { database: self.database.clone(), tls_dir: self.tls.clone(), call_timeout_ms }
    }
}

/// An answer as (status, JSON body); every error must be problem+json.
pub async fn send(request: reqwest::RequestBuilder) -> (reqwest::StatusCode, serde_json::Value) {
    let response = request.send().await.expect("an HTTP answer");
    let status = response.status();
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let text = response.text().await.unwrap();
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(content_type, "application/problem+json", "{status}: {text}");
    }
    (status, if text.is_empty() { serde_json::Value::Null } else { serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)) })
}

/// The answer is the problem `code` with `status`, complete.
pub fn assert_problem(answer: &(reqwest::StatusCode, serde_json::Value), status: reqwest::StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
    assert_eq!(answer.1["status"], status.as_u16());
    assert!(answer.1["type"].is_string() && answer.1["title"].is_string() && answer.1["detail"].is_string());
}

/// The answer is a payment with `status`.
pub fn as_payment(answer: &(reqwest::StatusCode, serde_json::Value), status: reqwest::StatusCode) -> flexibank_consortium::protocol::Payment {
    assert_eq!(answer.0, status, "{}", answer.1);
    serde_json::from_value(answer.1.clone()).unwrap_or_else(|e| panic!("not a payment ({e}): {}", answer.1))
}

/// A loopback `host:port` where nothing listens (bound, then closed): connections are refused at once.
pub fn refused_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    addr.to_string()
}

/// A stand-in for a bank's switch-only listener, for the switch's own tests
/// (the real one is the server's): mutual TLS with a bank certificate from
/// the test's CA, a yes to every prepare (or a no with `no_reason`), 200
/// `Applied` to every decision (both in batches, as the switch sends them), and a settlement balance the test sets.
pub struct FakeBank {
    pub addr: String,
    pub state: std::sync::Arc<FakeBankState>,
    handle: axum_server::Handle,
}

pub struct FakeBankState {
    pub bank_id: String,
    pub balance: std::sync::Mutex<rust_decimal::Decimal>,
    pub no_reason: std::sync::Mutex<Option<String>>,
    pub prepares: std::sync::Mutex<Vec<flexibank_consortium::protocol::Prepare>>,
    pub decisions: std::sync::Mutex<Vec<flexibank_consortium::protocol::Decision>>,
}

impl FakeBank {
    /// Listens for bank `bank_id`, presenting `cert_of`'s certificate (another bank's, to test that the switch refuses it).
    pub async fn start(tls: &std::path::Path, bank_id: &str, cert_of: &str) -> FakeBank {
        use axum::{routing::get, routing::post, Json, Router};
        use flexibank_consortium::protocol::{Answers, Applied, Batch, Decision, Prepare, Settlement, Vote, DECISIONS_PATH, PREPARES_PATH, SETTLEMENT_PATH};
        use std::sync::Arc;
        let config =
            pki::server_config_mtls(&tls.join(pki::CA_CERT_FILE), &tls.join(pki::bank_cert_file(cert_of)), &tls.join(pki::bank_key_file(cert_of))).unwrap();
        let state = Arc::new(FakeBankState {
            bank_id: bank_id.to_string(),
            balance: Default::default(),
            no_reason: Default::default(),
            prepares: Default::default(),
            decisions: Default::default(),
        });
        let (s1, s2, s3) = (state.clone(), state.clone(), state.clone());
        let app = Router::new()
            .route(
                PREPARES_PATH,
                post(move |Json(batch): Json<Batch<Prepare>>| async move {
                    let reason = s1.no_reason.lock().unwrap().clone();
                    let answers = batch.items.iter().map(|_| Some(Vote { yes: reason.is_none(), reason: reason.clone() })).collect();
                    s1.prepares.lock().unwrap().extend(batch.items);
                    Json(Answers { answers })
                }),
            )
            .route(
                DECISIONS_PATH,
                post(move |Json(batch): Json<Batch<Decision>>| async move {
                    let answers = batch.items.iter().map(|d| Some(Applied { e2e_id: d.e2e_id.clone(), status: d.status })).collect();
                    s2.decisions.lock().unwrap().extend(batch.items);
                    Json(Answers { answers })
                }),
            )
            .route(
                SETTLEMENT_PATH,
                get(move || async move {
                    let balance = *s3.balance.lock().unwrap();
                    Json(Settlement { bank_id: s3.bank_id.clone(), currency: "INR".into(), balance, undecided: 0 })
                }),
            );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(config)).handle(handle.clone());
        tokio::spawn(server.serve(app.into_make_service()));
        FakeBank { addr, state, handle }
    }

    /// Decisions received for `e2e_id`.
    pub fn decisions_for(&self, e2e_id: &str) -> usize {
        self.state.decisions.lock().unwrap().iter().filter(|d| d.e2e_id == e2e_id).count()
    }
}

impl Drop for FakeBank {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}
