//! The audit trail: one row per action, written in the same transaction as
//! the action it records. Money movements write theirs inside `move_money`.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{db::db_error, error::ApiResult};

pub struct AuditEntry<'a> {
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    /// The branch whose trail this belongs to; `None` for bank-wide actions.
    pub branch_id: Option<Uuid>,
    pub action: &'a str,
    pub target: String,
    pub request_id: &'a str,
    pub client_addr: &'a str,
    pub outcome: &'a str,
    pub details: serde_json::Value,
}

impl<'a> AuditEntry<'a> {
    /// A successful action by an authenticated caller, in the caller's branch trail.
    pub fn success_by(
        caller: &crate::access::Caller,
        meta: &'a crate::request::RequestMeta,
        client_addr: &'a str,
        action: &'a str,
        target: String,
        details: serde_json::Value,
    ) -> AuditEntry<'a> {
        AuditEntry {
            actor_id: Some(caller.user_id),
            actor_role: Some(caller.role.as_str().to_string()),
            branch_id: caller.branch_id,
            action,
            target,
            request_id: &meta.request_id,
            client_addr,
            outcome: "success",
            details,
        }
    }
}

pub async fn record_tx(tx: &tokio_postgres::Transaction<'_>, entry: &AuditEntry<'_>) -> ApiResult<()> {
    tx.execute(
        "INSERT INTO audit_log (actor_id, actor_role, branch_id, action, target, request_id, client_addr, outcome, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &entry.actor_id,
            &entry.actor_role,
            &entry.branch_id,
            &entry.action,
            &entry.target,
            &entry.request_id,
            &entry.client_addr,
            &entry.outcome,
            &entry.details,
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct AuditRow {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: Option<String>,
    pub branch_id: Option<Uuid>,
    pub action: String,
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<&tokio_postgres::Row> for AuditRow {
    fn from(row: &tokio_postgres::Row) -> Self {
        AuditRow {
            id: row.get("id"),
            at: row.get("at"),
            actor_id: row.get("actor_id"),
            actor_role: row.get("actor_role"),
            branch_id: row.get("branch_id"),
            action: row.get("action"),
            target: row.get("target"),
            request_id: row.get("request_id"),
            client_addr: row.get("client_addr"),
            outcome: row.get("outcome"),
            details: row.get("details"),
        }
    }
}
