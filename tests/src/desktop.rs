//! The desktop app in a real window: Xvfb for the display, `tauri-driver`
//! (which starts Debian's `WebKitWebDriver`, which starts the app) under a
//! D-Bus session of its own, and a WebDriver client (fantoccini) that clicks
//! and types like a user.
//!
//! Every process here is started in a process group of its own and stopped
//! by that group's id when the `DesktopApp` is dropped, panic or not.

use std::{
    ffi::OsString,
    io::{BufRead, BufReader},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{elements::Element, Client, ClientBuilder, Locator};
use serde_json::{json, Map, Value};

use crate::{workspace_root, TestStack};

/// How long a step may wait for the window to show what it expects.
pub const UI_TIMEOUT: Duration = Duration::from_secs(20);
const SESSION_ATTEMPTS: u32 = 10;

/// The built app (`cargo build -p flexibank-desktop`, which `make test` runs first).
pub fn app_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("debug/flexibank-desktop")
}

fn tauri_driver() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let path = home.join("bin/tauri-driver");
    assert!(
        path.is_file(),
        "{} missing: `make test` installs it (cargo install tauri-driver --locked)",
        path.display()
    );
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child in its own process group, stopped (group and all) on drop.
struct Group(Child, &'static str);

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = self.0.id() as i32;
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                // Stragglers of the group (the app under the driver).
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing its group", self.1);
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

fn spawn_group(mut command: Command, what: &'static str) -> Group {
    command.process_group(0);
    Group(
        command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}")),
        what,
    )
}

pub struct DesktopApp {
    pub client: Client,
    pub data_dir: PathBuf,
    pub label: String,
    display: String,
    shots_dir: PathBuf,
    // Dropped in this order: the driver (and the app under it), then the display.
    driver: Option<Group>,
    _xvfb: Group,
}

impl DesktopApp {
    /// Starts a display, the driver and the app, pointed at `stack`'s server
    /// and CA, with `data_dir` as the app's data directory.
    pub async fn launch(stack: &TestStack, label: &str, data_dir: &Path) -> DesktopApp {
        let env = [
            ("FLEXIBANK_SERVER_URL", OsString::from(&stack.base_url)),
            ("FLEXIBANK_CA_CERT", stack.ca_cert.clone().into_os_string()),
        ];
        Self::launch_with_env(&env, label, data_dir).await
    }

    /// The app of a consortium customer: a `stack.json` in `data_dir` lists
    /// `banks` (bank id, name, its stack) in that order, the first being the
    /// login screen's default, and the app reads it (`FLEXIBANK_STACK`).
    pub async fn launch_banks(banks: &[(&str, &str, &TestStack)], label: &str, data_dir: &Path) -> DesktopApp {
        std::fs::create_dir_all(data_dir).unwrap();
        let list: Vec<Value> = banks
            .iter()
            .map(|(bank_id, name, stack)| {
                json!({"bank_id": bank_id, "name": name, "server_url": stack.base_url, "ca_cert": stack.ca_cert})
            })
            .collect();
        let path = data_dir.join("stack.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&json!({"banks": list})).unwrap()).unwrap();
        Self::launch_with_env(&[("FLEXIBANK_STACK", path.into_os_string())], label, data_dir).await
    }

    /// Starts the app with `env` saying where the server is (the
    /// single-bank variables are cleared first, so `env` alone decides).
    pub async fn launch_with_env(env: &[(&str, OsString)], label: &str, data_dir: &Path) -> DesktopApp {
        let shots_dir = workspace_root().join("var/test/screenshots");
        std::fs::create_dir_all(&shots_dir).unwrap();
        std::fs::create_dir_all(data_dir).unwrap();
        let (xvfb, display) = start_xvfb();
        let port = free_port();
        let mut command = Command::new("dbus-run-session");
        command
            .arg("--")
            .arg(tauri_driver())
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &free_port().to_string(),
            ])
            .env("DISPLAY", &display)
            .env("NO_AT_BRIDGE", "1")
            .env("GDK_BACKEND", "x11")
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env_remove("FLEXIBANK_SERVER_URL")
            .env_remove("FLEXIBANK_CA_CERT")
            .env_remove("FLEXIBANK_STACK")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .env("FLEXIBANK_DATA_DIR", data_dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        let log = std::fs::File::create(data_dir.join("driver.log")).unwrap();
        command.stdout(log.try_clone().unwrap()).stderr(log);
        let driver = spawn_group(command, "tauri-driver");
        let client = connect(port, data_dir).await;
        let app = DesktopApp {
            client,
            data_dir: data_dir.to_path_buf(),
            label: label.to_string(),
            display,
            shots_dir,
            driver: Some(driver),
            _xvfb: xvfb,
        };
        app.wait_for("#login-username").await;
        app
    }

    /// Closes the app and its driver, keeping the display and data for a relaunch.
    pub async fn quit(mut self) -> PathBuf {
        let _ = self.client.clone().close().await;
        self.driver.take();
        self.data_dir.clone()
    }

    /// The whole screen as the user sees it, window frame and all.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let path = self.shots_dir.join(format!("{}-{name}.png", self.label));
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "xwd -root -silent | /usr/bin/convert xwd:- '{}'",
                path.display()
            ))
            .env("DISPLAY", &self.display)
            .status();
        match status {
            Ok(s) if s.success() => eprintln!("screenshot: {}", path.display()),
            other => eprintln!("screenshot {name} failed: {other:?}"),
        }
        path
    }

    /// A screenshot for the docs: saved as `<name>.png` in
    /// `$FLEXIBANK_SCREENSHOTS_DIR` when set (`make screenshots`).
    pub fn showcase(&self, name: &str) {
        let Some(dir) = std::env::var_os("FLEXIBANK_SCREENSHOTS_DIR") else {
            return;
        };
        let shot = self.screenshot(name);
        let target = PathBuf::from(dir).join(format!("{name}.png"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&shot, &target)
            .unwrap_or_else(|e| panic!("copying {} to {}: {e}", shot.display(), target.display()));
    }

    /// On failure the caller gets a screenshot of the moment it failed.
    pub fn fail(&self, what: &str) -> ! {
        let shot = self.screenshot("failure");
        panic!("{what} (screenshot: {})", shot.display());
    }

    pub async fn find(&self, css: &str) -> Element {
        self.wait_for(css).await
    }

    pub async fn wait_for(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if element.is_displayed().await.unwrap_or(false) {
                    return element;
                }
            }
            if started.elapsed() > UI_TIMEOUT {
                self.fail(&format!("{css} did not appear within {UI_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until exactly `count` elements match `css`.
    pub async fn wait_count(&self, css: &str, count: usize, timeout: Duration) {
        let started = Instant::now();
        loop {
            let found = self.all(css).await.len();
            if found == count {
                return;
            }
            if started.elapsed() > timeout {
                self.fail(&format!("{css}: expected {count}, found {found} after {timeout:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    /// Runs `action` on the element `css` finds, finding it again when the
    /// view re-rendered in between (a stale element), until `UI_TIMEOUT`.
    async fn act<F, Fut>(&self, css: &str, what: &str, action: F)
    where
        F: Fn(Element) -> Fut,
        Fut: std::future::Future<Output = Result<(), fantoccini::error::CmdError>>,
    {
        let started = Instant::now();
        loop {
            let element = self.wait_for(css).await;
            match action(element).await {
                Ok(()) => return,
                Err(e) if started.elapsed() > UI_TIMEOUT => self.fail(&format!("{what} {css}: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    pub async fn click(&self, css: &str) {
        self.act(css, "clicking", |e| async move { e.click().await }).await
    }

    /// Clears the field and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        self.act(css, "typing into", |e| async move {
            e.clear().await?;
            if !text.is_empty() {
                e.send_keys(text).await?;
            }
            Ok(())
        })
        .await
    }

    /// Picks the `<option>` of a `<select>` by its value.
    pub async fn select(&self, css: &str, value: &str) {
        self.act(css, "selecting in", |e| async move { e.select_by_value(value).await }).await
    }

    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.unwrap_or_default()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let started = Instant::now();
        loop {
            match self.wait_for(css).await.attr(name).await {
                Ok(value) => return value,
                Err(e) if started.elapsed() > UI_TIMEOUT => self.fail(&format!("reading {name} of {css}: {e}")),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until `check` holds for the text of `css`.
    pub async fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                let text = element.text().await.unwrap_or_default();
                if check(&text) {
                    return text;
                }
                if started.elapsed() > UI_TIMEOUT {
                    self.fail(&format!("{css}: expected {what}, shows {text:?}"));
                }
            } else if started.elapsed() > UI_TIMEOUT {
                self.fail(&format!("{css}: expected {what}, but it is not there"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Logs in through the window: password, then a fresh code from the
    /// demo user's TOTP secret.
    pub async fn login(&self, stack: &TestStack, username: &str) {
        let user = stack.user(username).clone();
        self.fill("#login-username", &user.username).await;
        self.fill("#login-password", &user.password).await;
        self.click("#login-submit").await;
        let code = stack.fresh_code(&user.username, &user.totp_secret).await;
        self.fill("#mfa-code", &code).await;
        self.click("#mfa-submit").await;
        self.wait_text("#whoami", "the logged-in user's name", |t| {
            !t.trim().is_empty()
        })
        .await;
    }
}

fn start_xvfb() -> (Group, String) {
    // -displayfd: Xvfb picks a free display itself and tells us which, so
    // parallel tests never fight over one.
    let mut command = Command::new("Xvfb");
    command
        .args([
            "-displayfd",
            "1",
            "-screen",
            "0",
            "1200x800x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut group = spawn_group(command, "Xvfb");
    let stdout = group.0.stdout.take().expect("Xvfb stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("Xvfb display number");
    let number: u32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("Xvfb said {line:?}"));
    (group, format!(":{number}"))
}

/// A WebDriver session for the app, retried while the driver starts up.
async fn connect(port: u16, data_dir: &Path) -> Client {
    let mut capabilities = Map::new();
    // No browserName: WebKitGTK names itself and refuses a mismatch.
    capabilities.insert("tauri:options".into(), json!({"application": app_binary()}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut last_error = String::new();
    for attempt in 1..=SESSION_ATTEMPTS {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => return client,
            Err(e) => {
                last_error = e.to_string();
                tokio::time::sleep(Duration::from_millis(500 * attempt as u64)).await;
            }
        }
    }
    let log = std::fs::read_to_string(data_dir.join("driver.log")).unwrap_or_default();
    panic!(
        "no WebDriver session after {SESSION_ATTEMPTS} attempts: {last_error}\ndriver log:\n{log}"
    );
}

/// A JSON value from the app's data directory (e.g. the offline queue).
pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_default()).unwrap_or(Value::Null)
}
