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
}
