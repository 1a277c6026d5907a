//! Where the server is and which CA to trust. Read from the environment
//! (`FLEXIBANK_SERVER_URL` + `FLEXIBANK_CA_CERT`), else from the local stack's
//! `var/stack.json` (`FLEXIBANK_STACK`, or found from the working directory up).

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone)]
pub struct AppConfig {
    pub server_url: String,
    pub ca_cert: PathBuf,
    /// Overrides the OS's per-app data directory (tests give each app its own).
    pub data_dir: Option<PathBuf>,
}

#[derive(Deserialize)]
struct StackFile {
    server_url: String,
    ca_cert: PathBuf,
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
                server_url,
                ca_cert: PathBuf::from(ca),
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

    /// `ca_cert` in stack.json is relative to the project root, the parent of `var/`.
    pub fn from_stack_file(path: &Path) -> Result<AppConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let stack: StackFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let root = path
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        let ca_cert = if stack.ca_cert.is_absolute() {
            stack.ca_cert
        } else {
            root.join(stack.ca_cert)
        };
        Ok(AppConfig {
            server_url: stack.server_url,
            ca_cert,
            data_dir: None,
        })
    }
}

fn find_stack_file() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|dir| dir.join("var/stack.json"))
        .find(|p| p.is_file())
}
