//! The banks the app may talk to (config::AppConfig::banks), one HTTPS client
//! each (each with its own CA and session), and which one the user chose on
//! the login screen. Every command talks to the chosen bank.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::{api::ApiClient, config::AppConfig};

pub struct Banks {
    config: Result<AppConfig, String>,
    /// Parallel to `config.banks`.
    clients: Vec<Result<Arc<ApiClient>, String>>,
    selected: Mutex<usize>,
}

impl Banks {
    pub fn new(config: Result<AppConfig, String>) -> Banks {
        let clients = match &config {
            Ok(c) => c
                .banks
                .iter()
                .map(|bank| {
                    let pem = std::fs::read(&bank.ca_cert).map_err(|e| {
                        format!("reading the CA certificate {}: {e}", bank.ca_cert.display())
                    })?;
                    ApiClient::new(&bank.server_url, &pem).map(Arc::new)
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        for client in &clients {
            if let Err(e) = client {
                tracing::error!("not connected: {e}");
            }
        }
        Banks {
            config,
            clients,
            selected: Mutex::new(0),
        }
    }

    pub fn config(&self) -> &Result<AppConfig, String> {
        &self.config
    }

    fn index(&self) -> usize {
        *self.selected.lock().unwrap()
    }

    /// The chosen bank's client, or why there is none.
    pub fn current(&self) -> Result<Arc<ApiClient>, String> {
        match &self.config {
            Err(e) => Err(e.clone()),
            Ok(_) => self.clients[self.index()].clone(),
        }
    }

    /// Chooses the bank for the next sign-in; the other banks' sessions are dropped.
    pub fn select(&self, bank_id: &str) -> Result<(), String> {
        let config = self.config.as_ref().map_err(Clone::clone)?;
        let index = config
            .bank_index(bank_id)
            .ok_or_else(|| format!("no bank {bank_id:?} is configured"))?;
        let mut selected = self.selected.lock().unwrap();
        if *selected != index {
            if let Ok(old) = &self.clients[*selected] {
                old.forget_session();
            }
            *selected = index;
        }
        Ok(())
    }

    /// The offline queue's owner name: the username, qualified by the bank
    /// when there are several (alice at one bank is not alice at another).
    pub fn queue_user(&self, username: &str) -> String {
        match &self.config {
            Ok(c) if c.banks.len() > 1 => {
                format!("{username}@{}", c.banks[self.index()].bank_id)
            }
            _ => username.to_string(),
        }
    }

    /// What the login screen shows: the banks and the chosen one.
    pub fn info(&self) -> Value {
        let Ok(config) = &self.config else {
            return json!({"banks": [], "bank_id": null, "server_url": null, "ca_cert": null});
        };
        let chosen = &config.banks[self.index()];
        let banks: Vec<Value> = config
            .banks
            .iter()
            .map(|b| json!({"bank_id": b.bank_id, "name": b.name, "server_url": b.server_url}))
            .collect();
        json!({
            "banks": banks,
            "bank_id": chosen.bank_id,
            "bank_name": chosen.name,
            "server_url": chosen.server_url,
            "ca_cert": chosen.ca_cert.display().to_string(),
        })
    }
}

/// Where the offline queue's worker gets its client: one fixed client, or
/// whichever bank is chosen at the moment.
pub trait ClientSource: Send + Sync + 'static {
    fn client(&self) -> Option<Arc<ApiClient>>;
}

impl ClientSource for Arc<ApiClient> {
    fn client(&self) -> Option<Arc<ApiClient>> {
        Some(self.clone())
    }
}

impl ClientSource for Arc<Banks> {
    fn client(&self) -> Option<Arc<ApiClient>> {
        self.current().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BankConfig;

    fn config(ids: &[&str]) -> AppConfig {
        AppConfig {
            banks: ids
                .iter()
                .map(|id| BankConfig {
                    bank_id: id.to_string(),
                    name: format!("Bank {id}"),
                    server_url: format!("https://{id}.example:8443"),
                    ca_cert: "/nonexistent/ca.pem".into(),
                })
                .collect(),
            data_dir: None,
        }
    }

    #[test]
    fn selection_and_queue_names() {
        let banks = Banks::new(Ok(config(&["00000001", "00000002"])));
        assert_eq!(banks.info()["bank_id"], "00000001", "the first is the default");
        assert!(banks.current().err().unwrap().contains("CA certificate"), "no CA file: not connected");
        assert_eq!(banks.queue_user("alice"), "alice@00000001");
        banks.select("00000002").unwrap();
        assert_eq!(banks.info()["bank_id"], "00000002");
        assert_eq!(banks.info()["server_url"], "https://00000002.example:8443");
        assert_eq!(banks.queue_user("alice"), "alice@00000002");
        assert!(banks.select("00000009").is_err());
        assert_eq!(banks.info()["banks"].as_array().unwrap().len(), 2);

        let single = Banks::new(Ok(config(&[""])));
        assert_eq!(single.queue_user("alice"), "alice", "one bank: names as before");
        let broken = Banks::new(Err("no server configured".into()));
        assert_eq!(broken.current().err().unwrap(), "no server configured");
    }
}
