use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use flexibank_server::{auth::totp, seed::DemoCredentials, stack, Config};

// Measured (docs/benchmarks.md, session 12): glibc's malloc and free were ~23%
// of the server's CPU under load, in many small short-lived allocations per request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "flexibank-server", about = "FlexiBank ledger server and local stack")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTPS API (migrations are applied first).
    Serve {
        #[arg(long, env = "FLEXIBANK_CONFIG", default_value = "var/server.toml")]
        config: PathBuf,
    },
    /// Make a local CA and a server certificate for 127.0.0.1 and localhost.
    GenTls {
        #[arg(long, default_value = "var/tls")]
        dir: PathBuf,
    },
    /// The local stack: primary + synchronous replica, TLS, demo bank, server.
    Stack {
        #[command(subcommand)]
        action: StackAction,
    },
    /// Print the current TOTP code of a demo user (from var/demo/credentials.json).
    DemoCode {
        username: String,
        /// The user's bank (the local stack has two); default: the first bank listing the name.
        #[arg(long)]
        bank: Option<String>,
        #[arg(long, default_value = "var/demo/credentials.json")]
        credentials: PathBuf,
    },
}

#[derive(Subcommand)]
enum StackAction {
    /// Everything in the foreground; Ctrl-C stops it all.
    Run {
        /// Open this desktop app against the stack once it is ready (when
        /// there is a display); closing the window leaves the stack running.
        #[arg(long)]
        open_app: Option<std::path::PathBuf>,
    },
    /// Everything in the background; returns once /readyz answers 200.
    Up,
    /// Stop what `up` started.
    Down,
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,tower_http=info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    flexibank_consortium::runtime::serving_runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let paths = stack::Paths { root: std::env::current_dir()? };
    match cli.command {
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            init_tracing(config.server.log_format == "json");
            let server = flexibank_server::start(config).await?;
            stack::shutdown_signal().await;
            tracing::info!("shutting down");
            server.shutdown().await
        }
        Command::GenTls { dir } => flexibank_server::tls::ensure_local_tls(&dir),
        Command::Stack { action } => {
            init_tracing(false);
            match action {
                StackAction::Run { open_app } => stack::run(&paths, open_app.as_deref()).await,
                StackAction::Up => stack::up(&paths).await,
                StackAction::Down => stack::down(&paths).await,
            }
        }
        Command::DemoCode { username, bank, credentials } => {
            let text = std::fs::read_to_string(&credentials)
                .with_context(|| format!("reading {}", credentials.display()))?;
            let demo: DemoCredentials = serde_json::from_str(&text)?;
            let user = demo
                .users
                .iter()
                .find(|u| u.username == username && (bank.is_none() || u.bank_id == bank))
                .with_context(|| format!("no demo user {username}{}", bank.as_ref().map(|b| format!(" at bank {b}")).unwrap_or_default()))?;
            let secret = totp_rs::Secret::Encoded(user.totp_secret.clone())
                .to_bytes()
                .map_err(|e| anyhow::anyhow!("bad secret: {e:?}"))?;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
            println!("{}", totp::code_at_step(&secret, totp::current_step(now)));
            Ok(())
        }
    }
}
