//! Two banks and a switch for the inter-bank tests: each bank a real
//! FlexiBank server with its own PostgreSQL cluster, the switch with its own
//! database, all over mutual TLS with certificates from one consortium CA.

use std::time::Duration;

use flexibank_server::config::InterbankConfig;
use flexibank_switch::Limits;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::{switch::SwitchUnderTest, Session, StackOptions, TestStack};

pub const BANK_A: &str = "00000001";
pub const BANK_B: &str = "00000002";
/// What each bank prefunds at the switch in these tests.
pub const PREFUNDED: &str = "100000.00";

pub struct Consortium {
    pub a: TestStack,
    pub b: TestStack,
    pub switch: SwitchUnderTest,
}

pub fn member_config(switch: &SwitchUnderTest, bank_id: &str, name: &str) -> InterbankConfig {
    InterbankConfig {
        bank_id: bank_id.into(),
        bank_name: name.into(),
        switch_url: switch.base.clone(),
        tls_dir: switch.tls.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        advertise: None,
        timeout_ms: 5_000,
        call_timeout_ms: 4_000,
        in_doubt_after_ms: 1_000,
        alert_after_ms: 30_000,
        resolver_interval_ms: 200,
        group_linger_ms: flexibank_server::config::DEFAULT_GROUP_LINGER_MS,
    }
}

impl Consortium {
    pub async fn start(label: &str, limits: Limits) -> Consortium {
        Self::start_with(label, limits, StackOptions::default(), |_| {}).await
    }

    /// With bank A's stack options (replicas, failover) and membership adjusted.
    pub async fn start_with(label: &str, limits: Limits, a_options: StackOptions, a_member: impl FnOnce(&mut InterbankConfig)) -> Consortium {
        let switch = SwitchUnderTest::start(&format!("{label}-switch"), &[(BANK_A, "Alpha Bank"), (BANK_B, "Beta Bank")], limits).await;
        for bank in [BANK_A, BANK_B] {
            flexibank_switch::fund(&switch.database, bank, PREFUNDED, "0.00").await.expect("fund");
        }
        let mut a_config = member_config(&switch, BANK_A, "Alpha Bank");
        a_member(&mut a_config);
        let a = TestStack::start_member(&format!("{label}-a"), a_options, Some(a_config)).await;
        let b = TestStack::start_member(&format!("{label}-b"), StackOptions::default(), Some(member_config(&switch, BANK_B, "Beta Bank"))).await;
        let consortium = Consortium { a, b, switch };
        consortium.wait_for_endpoints().await;
        consortium
    }

    /// Both banks have told the switch where they listen.
    pub async fn wait_for_endpoints(&self) {
        crate::eventually(Duration::from_secs(20), "both banks' endpoints at the switch", || async {
            let row = self.switch.db.query_one("SELECT count(*) FROM banks WHERE interbank_addr IS NOT NULL", &[]).await.unwrap();
            (row.get::<_, i64>(0) == 2).then_some(())
        })
        .await;
    }

    pub fn bank(&self, bank_id: &str) -> &TestStack {
        if bank_id == BANK_A {
            &self.a
        } else {
            &self.b
        }
    }

    /// Every check of issue 16 that holds whatever ran: each bank's ledger,
    /// each settlement account against its switch position, positions
    /// summing to zero, the switch's own invariants, and nothing undecided
    /// anywhere once the switch has pushed every decision.
    pub async fn assert_invariants(&self) {
        let undecided = crate::eventually(Duration::from_secs(30), "every payment decided and acknowledged", || async {
            let open: i64 = self
                .switch
                .db
                .query_one("SELECT count(*) FROM payments WHERE decided_at IS NULL OR payer_acked_at IS NULL OR payee_acked_at IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            let mut bank_open = 0;
            for bank in [&self.a, &self.b] {
                let db = bank.superuser(&bank.primary_name()).await;
                bank_open += db.query_one("SELECT count(*) FROM interbank_payments WHERE status IN ('sent', 'prepared')", &[]).await.unwrap().get::<_, i64>(0);
                bank_open += db.query_one("SELECT count(*) FROM holds WHERE status = 'active'", &[]).await.unwrap().get::<_, i64>(0);
            }
            (open == 0 && bank_open == 0).then_some(())
        })
        .await;
        let _: () = undecided;
        for bank in [&self.a, &self.b] {
            bank.assert_ledger_invariants().await;
        }
        let broken = flexibank_switch::payments::check_invariants(&self.switch.db).await.unwrap();
        assert!(broken.is_empty(), "switch invariants: {broken:?}");
        let report = flexibank_switch::reconcile(&self.switch.reconcile_config(5_000)).await.expect("reconcile");
        assert!(report.ok(), "reconcile:\n{}", report.table());
        let total: Decimal = report.banks.iter().map(|b| b.position).sum();
        assert_eq!(total, Decimal::ZERO, "positions sum to zero");
        for bank in [&self.a, &self.b] {
            let db = bank.superuser(&bank.primary_name()).await;
            // Every committed payment posted exactly once: one transfer, two entries.
            let row = db
                .query_one(
                    "SELECT count(*) FILTER (WHERE p.status = 'committed' AND (SELECT count(*) FROM entries e WHERE e.transfer_id = p.transfer_id) <> 2),
                            count(*) FILTER (WHERE p.status = 'aborted' AND p.transfer_id IS NOT NULL)
                       FROM interbank_payments p",
                    &[],
                )
                .await
                .unwrap();
            assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (0, 0), "committed posted once, aborted never");
        }
    }

    /// The same payment's state at both banks and at the switch agree, once
    /// the switch's phase two has reached both: the payer's 201 comes when
    /// its own bank has applied the decision, while the payee's bank may
    /// still be `prepared` for a few milliseconds.
    pub async fn assert_agree(&self, e2e_id: &str) {
        let switch_status: String = self.switch.db.query_one("SELECT status FROM payments WHERE e2e_id = $1", &[&e2e_id]).await.unwrap().get(0);
        for (bank_id, bank) in [(BANK_A, &self.a), (BANK_B, &self.b)] {
            let db = bank.superuser(&bank.primary_name()).await;
            crate::eventually(Duration::from_secs(10), &format!("{e2e_id} {switch_status} at {bank_id}"), || async {
                match db.query_opt("SELECT status FROM interbank_payments WHERE e2e_id = $1", &[&e2e_id]).await.unwrap() {
                    Some(row) => {
                        let bank_status: String = row.get(0);
                        assert!(matches!(bank_status.as_str(), "sent" | "prepared") || bank_status == switch_status, "{e2e_id}: bank {bank_status}, switch {switch_status}");
                        (bank_status == switch_status).then_some(())
                    }
                    None => Some(()),
                }
            })
            .await;
        }
    }
}

/// Registers a key without a one-time code (national id, random): the Key.
pub async fn register_key(session: &Session, account_id: &str, key_type: &str, value: Option<&str>) -> Value {
    let mut body = json!({"account_id": account_id, "type": key_type});
    if let Some(value) = value {
        body["value"] = json!(value);
    }
    let r = session.post("/v1/keys", body, None).await;
    assert_eq!(r.status, 201, "register {key_type}: {}", r.body);
    r.body
}

/// A payment by key; the answer as it came.
pub async fn pay(session: &Session, from_account_id: &str, key_type: &str, value: &str, amount: &str, idempotency_key: &str) -> crate::Resp {
    let body = json!({"from_account_id": from_account_id, "key": {"type": key_type, "value": value}, "amount": amount, "memo": "by key"});
    session.post("/v1/interbank/payments", body, Some(idempotency_key)).await
}

/// A child process of the test, stopped with SIGKILL (by its pid only) when
/// killed or dropped: what the fault tests kill at their chosen moment.
struct Killable(std::process::Child);

impl Killable {
    fn spawn(binary: &str, args: &[String], env: &[(&str, &str)], log: &std::path::Path) -> Killable {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = std::process::Command::new(crate::workspace_root().join("target/debug").join(binary))
            .args(args)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("target/debug/{binary} (make test builds it first): {e}"));
        Killable(child)
    }

    fn exited(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGKILL) };
        }
        let _ = self.0.wait();
    }
}

/// The switch as a real process (target/debug/flexibank-switch), on the
/// address and database the in-process one had.
pub struct SwitchProcess {
    process: Option<Killable>,
    args: Vec<String>,
    log: std::path::PathBuf,
}

impl SwitchProcess {
    /// Stops `switch`'s in-process server and serves the same address from a process instead.
    pub async fn take_over(switch: &mut SwitchUnderTest) -> SwitchProcess {
        let running = switch.switch.take().expect("the in-process switch runs");
        let addr = running.addr;
        running.shutdown().await.expect("switch shutdown");
        let args = vec![
            "serve".to_string(),
            "--listen".into(),
            addr.to_string(),
            "--database-url".into(),
            switch.database.url.clone(),
            "--tls-dir".into(),
            switch.tls.display().to_string(),
        ];
        let mut process = SwitchProcess { process: None, args, log: switch.dir.join("switch-process.log") };
        process.start(switch).await;
        process
    }

    pub async fn start(&mut self, switch: &SwitchUnderTest) {
        assert!(self.process.is_none(), "the switch process runs already");
        let started = std::time::Instant::now();
        let client = switch.bank(BANK_A);
        loop {
            let mut process = Killable::spawn("flexibank-switch", &self.args, &[("RUST_LOG", "warn"), ("FLEXIBANK_SWITCH_RESEND_AFTER_MS", "300")], &self.log);
            // Ready when it answers over mutual TLS; a port still held by the old process is a retry.
            for _ in 0..50 {
                if client.get(switch.url("/healthz")).send().await.is_ok_and(|r| r.status().is_success()) {
                    self.process = Some(process);
                    return;
                }
                if process.exited() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            drop(process);
            assert!(started.elapsed() < Duration::from_secs(20), "the switch process did not come up; see {}", self.log.display());
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    pub fn kill(&mut self) {
        self.process = None;
    }
}

/// A second server of one bank as a real process, on the bank's database,
/// with its own customer port.
pub struct BankProcess {
    process: Option<Killable>,
    args: Vec<String>,
    log: std::path::PathBuf,
    pub base_url: String,
}

impl BankProcess {
    pub async fn start(stack: &TestStack, name: &str) -> BankProcess {
        Self::start_with(stack, name, |_| {}).await
    }

    /// With `configure` applied to the bank's configuration first (an SMS provider, say).
    pub async fn start_with(stack: &TestStack, name: &str, configure: impl FnOnce(&mut flexibank_server::Config)) -> BankProcess {
        let mut config = stack.config.clone();
        configure(&mut config);
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        let config_path = stack.dir().join(format!("{name}.toml"));
        std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
        let args = vec!["serve".to_string(), "--config".into(), config_path.display().to_string()];
        let mut process = BankProcess { process: None, args, log: stack.dir().join(format!("{name}.log")), base_url: format!("https://127.0.0.1:{port}") };
        process.restart(stack).await;
        process
    }

    pub async fn restart(&mut self, stack: &TestStack) {
        assert!(self.process.is_none(), "running already");
        self.process = Some(Killable::spawn("flexibank-server", &self.args, &[("RUST_LOG", "warn")], &self.log));
        let url = format!("{}/readyz", self.base_url);
        crate::eventually(Duration::from_secs(30), "the bank process ready", || async {
            stack.http.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ())
        })
        .await;
    }

    /// The same customer session, through this process.
    pub fn session(&self, session: &Session) -> Session {
        Session { http: session.http.clone(), base_url: self.base_url.clone(), token: session.token.clone() }
    }

    /// SIGKILL, mid-request.
    pub fn kill(&mut self) {
        self.process = None;
    }
}

/// A client of a bank's switch-only listener presenting `identity` (None: no
/// certificate), trusting `ca`, reaching the listener by the name its
/// certificate carries.
pub fn listener_client(ca: &std::path::Path, identity: Option<reqwest::Identity>, bank_id: &str, addr: std::net::SocketAddr) -> reqwest::Client {
    flexibank_consortium::pki::client_builder(ca, identity, Duration::from_secs(10))
        .unwrap()
        .resolve(&flexibank_consortium::pki::bank_name_for(bank_id), addr)
        .build()
        .unwrap()
}

pub fn listener_url(bank_id: &str, addr: std::net::SocketAddr, path: &str) -> String {
    format!("https://{}:{}{path}", flexibank_consortium::pki::bank_name_for(bank_id), addr.port())
}
