//! With an app manifest, the app's own commands are no longer open to every
//! window: each needs an `allow-<command>` permission, which
//! capabilities/main.json grants to the main window (and nothing else).

const COMMANDS: &[&str] = &[
    "app_info",
    "login",
    "verify_mfa",
    "current_user",
    "logout",
    "me",
    "account",
    "transactions",
    "export_transactions",
    "deposit",
    "withdraw",
    "transfer",
    "preview_batch",
    "submit_batch",
    "queue_list",
    "queue_cancel",
    "queue_clear_finished",
    "admin_customers",
    "admin_accounts",
    "admin_create_customer",
    "admin_open_account",
    "admin_account_action",
    "admin_teller",
    "admin_transactions",
    "admin_audit",
    "admin_reset_mfa",
    "dba_cluster",
    "dba_promote",
    "dba_audit",
    "notifications",
    "notifications_mark_read",
    "notification_settings",
    "save_notification_settings",
    "directory_lookup",
    "interbank_pay",
    "interbank_payment",
    "interbank_payments",
    "keys_list",
    "key_register",
    "key_verify",
    "key_delete",
    "account_lookup",
    "payees_list",
    "payee_add",
    "payee_delete",
    "admin_interbank_position",
    "admin_interbank_payments",
    "limits_get",
    "limits_set",
    "admin_add_owner",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build step");
}
