use axum::{extract::State, Json};
use flexibank_replication::pool::{PromoteError, Promotion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    access::Dba,
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Code, Problem},
    request::{ApiJson, RequestMeta},
    state::AppState,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterNode {
    pub name: String,
    /// primary, replica, unreachable, fenced or diverged.
    pub role: String,
    pub timeline: Option<u64>,
    pub lsn: Option<String>,
    pub replay_lag_bytes: Option<u64>,
    pub replay_lag_seconds: Option<f64>,
    pub sync_state: Option<String>,
    /// Bytes of WAL past the point where the current primary's history
    /// forked off this node's timeline (role `diverged`); a rejoin discards them.
    pub diverged_bytes: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FailoverStatus {
    /// "ok", or "blocked" while the primary is lost and no standby can be
    /// proven to hold every acknowledged commit.
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PoolState {
    pub size: usize,
    pub available: usize,
    pub waiting: usize,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClusterState {
    /// "sync" while commits wait for a replica, "async" when degraded.
    pub sync_mode: String,
    pub nodes: Vec<ClusterNode>,
    pub pool: PoolState,
    /// Promotions this server has made (automatic and by DBAs).
    pub failovers: u64,
    pub failover: FailoverStatus,
}

fn cluster_state(state: &AppState) -> ClusterState {
    let view = state.db.pool.view();
    ClusterState {
        sync_mode: view.sync_mode,
        nodes: view
            .nodes
            .into_iter()
            .map(|n| ClusterNode {
                name: n.name,
                role: n.role.as_str().to_string(),
                timeline: n.timeline,
                lsn: n.lsn,
                replay_lag_bytes: n.replay_lag_bytes,
                replay_lag_seconds: n.replay_lag_seconds,
                sync_state: n.sync_state,
                diverged_bytes: n.diverged_bytes,
            })
            .collect(),
        pool: PoolState { size: view.pool.size, available: view.pool.available, waiting: view.pool.waiting },
        failovers: view.failovers,
        failover: FailoverStatus { state: view.failover.state, reason: view.failover.reason },
    }
}

/// Every node's role, timeline, LSN and lag as the pool sees them now.
#[utoipa::path(get, path = "/v1/dba/cluster", tag = "dba", security(("bearer" = ["dba"])),
    responses((status = 200, body = ClusterState), (status = 403, body = Problem)))]
pub async fn cluster(State(state): State<AppState>, _dba: Dba) -> Json<ClusterState> {
    Json(cluster_state(&state))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromoteRequest {
    pub node: String,
    /// Promote even though the quorum rule cannot prove the node holds
    /// every acknowledged commit (what may be lost is audited).
    #[serde(default)]
    pub force: bool,
}

/// Promote a replica; the pool fences the old primary. Without `force`,
/// only a node the quorum proves up to date (else 409 `promotion_unsafe`).
#[utoipa::path(post, path = "/v1/dba/promote", tag = "dba", security(("bearer" = ["dba"])), request_body = PromoteRequest,
    responses((status = 200, body = ClusterState), (status = 400, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 503, body = Problem)))]
pub async fn promote(State(state): State<AppState>, dba: Dba, meta: RequestMeta, body: ApiJson<PromoteRequest>) -> ApiResult<Json<ClusterState>> {
    let PromoteRequest { node, force } = body.value;
    let view = state.db.pool.view();
    let Some(target) = view.nodes.iter().find(|n| n.name == node) else {
        return Err(ApiError::new(Code::NotFound, format!("no node named {node:?}")));
    };
    if target.role != flexibank_replication::pool::Role::Replica {
        return Err(ApiError::validation(format!("{node} is {}, not a reachable replica", target.role.as_str())));
    }
    let promotion = state.db.pool.promote(&node, force).await.map_err(|e| match e {
        PromoteError::NotAReplica(detail) => ApiError::validation(detail),
        PromoteError::Unsafe { detail } => ApiError::new(Code::PromotionUnsafe, detail),
        PromoteError::Lease(detail) => ApiError::new(Code::NoPrimary, format!("promotion not possible now: {detail}")).with_retry_after(1),
        PromoteError::Failed(e) => ApiError::internal(format!("promoting {node}: {e:#}")),
    })?;
    // Audited on the new primary once it takes writes (for up to ~3 s; the
    // promotion has happened either way, and the server log has it).
    for _ in 0..30 {
        match record_promotion(&state, &dba, &meta, &promotion, force).await {
            Err(e) if e.code == Code::NoPrimary => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Err(e) => return Err(e),
            Ok(()) => break,
        }
    }
    Ok(Json(cluster_state(&state)))
}

async fn record_promotion(state: &AppState, dba: &Dba, meta: &RequestMeta, promotion: &Promotion, force: bool) -> ApiResult<()> {
    let client_addr = meta.client_ip.to_string();
    let mut client = state.db.writer().await?;
    let tx = client.transaction().await.map_err(db_error)?;
    // A new primary may have no standby that can acknowledge yet (after a
    // forced promotion, none until a DBA rejoins one): the record of the
    // promotion must not wait for one, or the DBA's answer would time out
    // after the promotion happened.
    tx.batch_execute("SET LOCAL synchronous_commit = local").await.map_err(db_error)?;
    let detail = serde_json::json!({
        "force": force,
        "proven_up_to_date": promotion.proven,
        "unseen_standbys": promotion.unseen,
        "behind_bytes_at_least": promotion.behind_bytes,
    });
    let target = format!("node:{}", promotion.node);
    record_tx(&tx, &AuditEntry::success_by(&dba.0, meta, &client_addr, "dba.promote", target, detail)).await?;
    tx.commit().await.map_err(db_error)
}
