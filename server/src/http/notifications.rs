use axum::{extract::State, Json};

use crate::{
    access::{BranchAdmin, Caller},
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Problem},
    notify::{self, DeadDelivery, MarkRead, NotificationPage, NotificationQuery, Redrive, UnreadCount},
    request::{ApiJson, ApiQuery, RequestMeta},
    state::AppState,
};

/// The caller's own in-app notifications, newest first, with the unread count.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications", security(("bearer" = [])), params(NotificationQuery),
    responses((status = 200, body = NotificationPage), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiQuery(query): ApiQuery<NotificationQuery>) -> ApiResult<Json<NotificationPage>> {
    // The primary: a notification is written with its movement and must show with it.
    let client = state.db.primary_read_committed().await?;
    Ok(Json(notify::list(&client, caller.user_id, query).await?))
}

#[utoipa::path(post, path = "/v1/notifications/read", tag = "notifications", security(("bearer" = [])), request_body = MarkRead,
    responses((status = 200, body = UnreadCount), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn mark_read(State(state): State<AppState>, caller: Caller, body: ApiJson<MarkRead>) -> ApiResult<Json<UnreadCount>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(notify::mark_read(&client, caller.user_id, body.value).await?))
}

/// Deliveries to the branch's customers that failed `max_attempts` times.
#[utoipa::path(get, path = "/v1/admin/notifications/dead", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Vec<DeadDelivery>), (status = 403, body = Problem)))]
pub async fn dead(State(state): State<AppState>, admin: BranchAdmin) -> ApiResult<Json<Vec<DeadDelivery>>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(notify::dead_letters(&client, admin.branch_id()).await?))
}

/// Sends a dead delivery again from its first attempt; audited.
#[utoipa::path(post, path = "/v1/admin/notifications/redrive", tag = "admin", security(("bearer" = [])), request_body = Redrive,
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn redrive(State(state): State<AppState>, admin: BranchAdmin, meta: RequestMeta, body: ApiJson<Redrive>) -> ApiResult<axum::http::StatusCode> {
    let delivery_id = body.value.delivery_id;
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            if !notify::redrive(&tx, admin.branch_id(), delivery_id).await? {
                return Err(ApiError::not_found());
            }
            let entry = AuditEntry::success_by(&admin.0, &meta, &client_addr, "admin.notification_redriven", format!("delivery:{delivery_id}"), serde_json::json!({}));
            record_tx(&tx, &entry).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(())
        })
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
