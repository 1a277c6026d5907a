use std::path::PathBuf;

use clap::{Parser, Subcommand};
use flexibank_consortium::pki;
use flexibank_switch::{Config, DatabaseConfig, ReconcileConfig};

// As the bank server (server/src/main.rs): glibc's malloc was a fifth of its CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "flexibank-switch", about = "The consortium switch: mutual-TLS API and key directory")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTPS API with mutual TLS (migrations are applied first).
    Serve(Config),
    /// Register a member bank (again is fine: a member under the same name is left as it is).
    AddBank {
        /// 8 digits, e.g. 00000001.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Set a member bank's liquidity at the switch (logged, before and after).
    Fund {
        /// The bank's 8-digit id.
        #[arg(long)]
        id: String,
        /// What the bank prefunded, e.g. 1500000 or 2500.50.
        #[arg(long)]
        prefunded: String,
        /// How far its net position may go below zero beyond the prefunded amount.
        #[arg(long)]
        net_debit_cap: String,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Compare every bank's settlement account with its position at the switch; exits non-zero on any difference or unreachable bank.
    Reconcile(ReconcileConfig),
    /// The consortium CA and its certificates.
    Pki {
        #[command(subcommand)]
        action: PkiAction,
        #[arg(long, env = "FLEXIBANK_SWITCH_TLS_DIR", default_value = "var/switch/tls", global = true)]
        tls_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum PkiAction {
    /// Make the CA (ca.pem, ca-key.pem) unless it exists.
    Init,
    /// Issue a bank's client certificate (bank-<id>.pem, bank-<id>-key.pem).
    IssueBank {
        #[arg(long)]
        id: String,
    },
    /// Issue the switch's server certificate (switch.pem, switch-key.pem).
    IssueSwitch {
        /// DNS names or IP addresses; localhost and 127.0.0.1 when none.
        #[arg(long = "name")]
        names: Vec<String>,
    },
    /// Issue the operator's client certificate (operator.pem, operator-key.pem) for the operator routes.
    IssueOperator,
}

fn main() -> anyhow::Result<()> {
    flexibank_consortium::runtime::serving_runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match Cli::parse().command {
        Command::Serve(config) => {
            let switch = flexibank_switch::start(config).await?;
            println!("serving https://{}", switch.addr);
            tokio::signal::ctrl_c().await?;
            switch.shutdown().await
        }
        Command::AddBank { id, name, database } => {
            if flexibank_switch::add_bank(&database, &id, &name).await? {
                println!("bank {id} added");
            } else {
                println!("bank {id} is a member already; nothing changed");
            }
            Ok(())
        }
        Command::Fund { id, prefunded, net_debit_cap, database } => {
            let after = flexibank_switch::fund(&database, &id, &prefunded, &net_debit_cap).await?;
            println!("bank {id}: prefunded {}, net debit cap {}, position {}, reserved {}", after.prefunded, after.net_debit_cap, after.position, after.pending_out);
            Ok(())
        }
        Command::Reconcile(config) => {
            let report = flexibank_switch::reconcile(&config).await?;
            print!("{}", report.table());
            anyhow::ensure!(report.ok(), "the ledgers do not reconcile");
            Ok(())
        }
        Command::Pki { action, tls_dir } => {
            match action {
                PkiAction::Init => {
                    let made = pki::init_ca(&tls_dir)?;
                    println!("{} {}", if made { "made" } else { "kept the existing" }, tls_dir.join(pki::CA_CERT_FILE).display());
                }
                PkiAction::IssueBank { id } => {
                    let (cert, key) = pki::issue_bank_cert(&tls_dir, &id)?;
                    println!("wrote {} and {}", cert.display(), key.display());
                }
                PkiAction::IssueSwitch { names } => {
                    let (cert, key) = pki::issue_switch_cert(&tls_dir, &names)?;
                    println!("wrote {} and {}", cert.display(), key.display());
                }
                PkiAction::IssueOperator => {
                    let (cert, key) = pki::issue_operator_cert(&tls_dir)?;
                    println!("wrote {} and {}", cert.display(), key.display());
                }
            }
            Ok(())
        }
    }
}
