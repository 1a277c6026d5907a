//! Where the server is and which CA to trust. Read from the environment
//! (`FLEXIBANK_SERVER_URL` + `FLEXIBANK_CA_CERT`: one bank), else from the
//! local stack's `var/stack.json` (`FLEXIBANK_STACK`, or found from the
//! working directory up), which may list several banks of a consortium
//! (`"banks": [{"bank_id","name","server_url","ca_cert"}]`); the user picks
//! one on the login screen, the first by default.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One bank the app can talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankConfig {
    /// Empty when unknown (the single-bank environment path).
    #[serde(default)]
    pub bank_id: String,
    #[serde(default)]
    pub name: String,
    pub server_url: String,
    pub ca_cert: PathBuf,
}

#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Never empty; the first is the default.
    pub banks: Vec<BankConfig>,
    /// Overrides the OS's per-app data directory (tests give each app its own).
    pub data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct StackFile {
    server_url: Option<String>,
    ca_cert: Option<PathBuf>,
    #[serde(default)]
    banks: Vec<BankConfig>,
}

impl AppConfig {
    pub fn from_env() -> Result<AppConfig, String> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let data_dir = var("FLEXIBANK_DATA_DIR").map(PathBuf::from);
        if let (Some(url), Some(ca)) = (var("FLEXIBANK_SERVER_URL"), var("FLEXIBANK_CA_CERT")) {
            let server_url = url
                .into_string()
                .map_err(|_| "FLEXIBANK_SERVER_URL is not UTF-8".to_string())?;
            return Ok(AppConfig {
                banks: vec![BankConfig {
                    bank_id: String::new(),
                    name: String::new(),
                    server_url,
                    ca_cert: PathBuf::from(ca),
                }],
                data_dir,
            });
        }
        let stack = match var("FLEXIBANK_STACK") {
            Some(path) => PathBuf::from(path),
            None => find_stack_file().ok_or(
                "no server configured: set FLEXIBANK_SERVER_URL and FLEXIBANK_CA_CERT, or FLEXIBANK_STACK, or start the local stack (make up)",
            )?,
        };
        let mut config = Self::from_stack_file(&stack)?;
        config.data_dir = data_dir;
        Ok(config)
    }

    /// The default bank (the first).
    pub fn default_bank(&self) -> &BankConfig {
        &self.banks[0]
    }

    /// `ca_cert` in stack.json is relative to the project root, the parent of `var/`.
    pub fn from_stack_file(path: &Path) -> Result<AppConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let root = path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        Self::parse_stack(&text, root).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// stack.json's text; relative CA paths are taken from `root`.
    pub fn parse_stack(text: &str, root: &Path) -> Result<AppConfig, String> {
        let stack: StackFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let absolute = |p: PathBuf| if p.is_absolute() { p } else { root.join(p) };
        let banks = if stack.banks.is_empty() {
            match (stack.server_url, stack.ca_cert) {
                (Some(server_url), Some(ca_cert)) => vec![BankConfig {
                    bank_id: String::new(),
                    name: String::new(),
                    server_url,
                    ca_cert,
                }],
                _ => return Err("needs server_url and ca_cert, or a non-empty banks list".into()),
            }
        } else {
            stack.banks
        };
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(banks.len());
        for mut bank in banks {
            if bank.server_url.trim().is_empty() {
                return Err(format!("bank {:?}: server_url is empty", bank.bank_id));
            }
            if !bank.bank_id.is_empty() && !seen.insert(bank.bank_id.clone()) {
                return Err(format!("bank {:?} is listed twice", bank.bank_id));
            }
            if bank.name.trim().is_empty() {
                bank.name = bank.bank_id.clone();
            }
            bank.ca_cert = absolute(bank.ca_cert);
            out.push(bank);
        }
        if out.len() > 1 && out.iter().any(|b| b.bank_id.is_empty()) {
            return Err("with several banks, each needs a bank_id".into());
        }
        Ok(AppConfig {
            banks: out,
            data_dir: None,
        })
    }

    /// The bank with `bank_id`.
    pub fn bank_index(&self, bank_id: &str) -> Option<usize> {
        self.banks.iter().position(|b| b.bank_id == bank_id)
    }
}

fn find_stack_file() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|dir| dir.join("var/stack.json"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/srv/flexibank";

    #[test]
    fn a_single_bank_stack_file_as_before() {
        let config = AppConfig::parse_stack(
            r#"{"server_url":"https://127.0.0.1:8443","ca_cert":"var/tls/ca.pem","pid":1}"#,
            Path::new(ROOT),
        )
        .unwrap();
        assert_eq!(config.banks.len(), 1);
        let bank = config.default_bank();
        assert_eq!(bank.server_url, "https://127.0.0.1:8443");
        assert_eq!(bank.ca_cert, Path::new("/srv/flexibank/var/tls/ca.pem"));
        assert_eq!(bank.bank_id, "");
    }

    #[test]
    fn several_banks_first_is_default_and_paths_resolve_from_the_root() {
        let text = r#"{
            "server_url": "https://127.0.0.1:8443", "ca_cert": "var/tls/ca.pem",
            "banks": [
                {"bank_id": "00000001", "name": "Alpha Bank", "server_url": "https://127.0.0.1:8443", "ca_cert": "var/tls/ca.pem"},
                {"bank_id": "00000002", "name": "Beta Bank", "server_url": "https://127.0.0.1:9443", "ca_cert": "/etc/beta/ca.pem"}
            ]
        }"#;
        let config = AppConfig::parse_stack(text, Path::new(ROOT)).unwrap();
        assert_eq!(config.banks.len(), 2);
        assert_eq!(config.default_bank().name, "Alpha Bank");
        assert_eq!(config.banks[0].ca_cert, Path::new("/srv/flexibank/var/tls/ca.pem"));
        assert_eq!(config.banks[1].ca_cert, Path::new("/etc/beta/ca.pem"), "absolute stays");
        assert_eq!(config.bank_index("00000002"), Some(1));
        assert_eq!(config.bank_index("00000009"), None);
    }

    #[test]
    fn a_banks_list_alone_is_enough_and_a_missing_name_is_the_id() {
        let text = r#"{"banks": [{"bank_id": "00000002", "server_url": "https://b:1", "ca_cert": "b.pem"}]}"#;
        let config = AppConfig::parse_stack(text, Path::new(ROOT)).unwrap();
        assert_eq!(config.default_bank().name, "00000002");
        assert_eq!(config.default_bank().ca_cert, Path::new("/srv/flexibank/b.pem"));
    }

    #[test]
    fn bad_stack_files_are_refused() {
        let root = Path::new(ROOT);
        assert!(AppConfig::parse_stack("{}", root).is_err(), "nothing to talk to");
        assert!(AppConfig::parse_stack(r#"{"server_url":"https://a"}"#, root).is_err(), "no CA");
        assert!(AppConfig::parse_stack("not json", root).is_err());
        let twice = r#"{"banks": [
            {"bank_id": "1", "server_url": "https://a", "ca_cert": "a.pem"},
            {"bank_id": "1", "server_url": "https://b", "ca_cert": "b.pem"}]}"#;
        assert!(AppConfig::parse_stack(twice, root).unwrap_err().contains("twice"));
        let no_id = r#"{"banks": [
            {"bank_id": "1", "server_url": "https://a", "ca_cert": "a.pem"},
            {"server_url": "https://b", "ca_cert": "b.pem"}]}"#;
        assert!(AppConfig::parse_stack(no_id, root).unwrap_err().contains("bank_id"));
        let no_url = r#"{"banks": [{"bank_id": "1", "server_url": " ", "ca_cert": "a.pem"}]}"#;
        assert!(AppConfig::parse_stack(no_url, root).is_err());
    }

    #[test]
    fn from_stack_file_reads_the_file_relative_to_its_project_root() {
        let dir = std::env::temp_dir().join(format!("flexibank-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("var")).unwrap();
        let path = dir.join("var/stack.json");
        std::fs::write(&path, r#"{"banks":[{"bank_id":"00000001","name":"Alpha Bank","server_url":"https://a:1","ca_cert":"var/tls/ca.pem"}]}"#).unwrap();
        let config = AppConfig::from_stack_file(&path).unwrap();
        assert_eq!(config.default_bank().ca_cert, dir.join("var/tls/ca.pem"));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(AppConfig::from_stack_file(&path).unwrap_err().contains("reading"));
    }
}
