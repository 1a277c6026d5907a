//! FlexiBank's desktop app, the Rust side: the only part that talks to the
//! server (HTTPS, the bank's CA), the holder of the session token, and the
//! keeper of the offline queue. The web view in `desktop/` calls the commands
//! in `commands`; see docs/desktop-commands.md.

pub mod api;
pub mod banks;
pub mod batch;
pub mod commands;
pub mod config;
pub mod everyday;
pub mod export;
pub mod money;
pub mod payees;
pub mod queue;
pub mod reviews;

use std::{path::PathBuf, sync::Arc};

use tauri::Manager;

use crate::{banks::Banks, commands::Desktop, config::AppConfig, queue::OfflineQueue};

pub const QUEUE_FILE: &str = "offline-queue.json";

fn build_state(app: &tauri::App) -> Result<Desktop, Box<dyn std::error::Error>> {
    let config = AppConfig::from_env();
    let paths = app.path();
    let data_dir = match config.as_ref().ok().and_then(|c| c.data_dir.clone()) {
        Some(dir) => dir,
        None => paths.app_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)?;
    // Tests set their own data directory; keep their exports in it too.
    let export_dir = match (std::env::var_os("FLEXIBANK_DATA_DIR"), paths.download_dir()) {
        (None, Ok(downloads)) => downloads,
        _ => data_dir.join("exports"),
    };
    let banks = Arc::new(Banks::new(config));
    let queue = OfflineQueue::open(&data_dir.join(QUEUE_FILE))?;
    Ok(Desktop {
        banks,
        queue: Arc::new(tokio::sync::Mutex::new(queue)),
        user: Arc::default(),
        wake: Arc::default(),
        data_dir: PathBuf::from(&data_dir),
        export_dir,
    })
}

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tauri::Builder::default()
        .setup(|app| {
            let state = build_state(app)?;
            if state.banks.config().is_ok() {
                tauri::async_runtime::spawn(queue::run_worker(
                    state.queue.clone(),
                    state.banks.clone(),
                    state.user.clone(),
                    state.wake.clone(),
                ));
            }
            app.manage(state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::login,
            commands::verify_mfa,
            commands::current_user,
            commands::logout,
            commands::me,
            commands::account,
            commands::transactions,
            commands::export_transactions,
            commands::deposit,
            commands::withdraw,
            commands::transfer,
            commands::preview_batch,
            commands::submit_batch,
            commands::queue_list,
            commands::queue_cancel,
            commands::queue_clear_finished,
            commands::admin_customers,
            commands::admin_accounts,
            commands::admin_create_customer,
            commands::admin_open_account,
            commands::admin_account_action,
            commands::admin_teller,
            commands::admin_transactions,
            commands::admin_audit,
            commands::admin_reset_mfa,
            commands::dba_cluster,
            commands::dba_promote,
            commands::dba_audit,
            commands::notifications,
            commands::notifications_mark_read,
            commands::notification_settings,
            commands::save_notification_settings,
            commands::directory_lookup,
            commands::interbank_pay,
            commands::interbank_payment,
            commands::interbank_payments,
            commands::keys_list,
            commands::key_register,
            commands::key_verify,
            commands::key_delete,
            commands::account_lookup,
            commands::payees_list,
            commands::payee_add,
            commands::payee_delete,
            commands::admin_interbank_position,
            commands::admin_interbank_payments,
            commands::limits_get,
            commands::limits_set,
            commands::admin_add_owner,
            commands::standing_orders_list,
            commands::standing_order_create,
            commands::standing_order_pause,
            commands::standing_order_update,
            commands::standing_order_cancel,
            commands::standing_order_runs,
            commands::reviews_list,
            commands::review_cancel,
            commands::admin_reviews,
            commands::admin_review_decide,
            commands::fx_rates,
            commands::fx_quote,
            commands::fx_exchange,
            commands::admin_fx_rates_set,
            commands::statement_download,
        ])
        .run(tauri::generate_context!())
        .expect("error while running FlexiBank");
}
