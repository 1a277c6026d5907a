use axum::{extract::State, Json};

use crate::{
    access::{BranchAdmin, Caller, Customer},
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Problem},
    notify::{self, settings::Settings, DeadDelivery, MarkRead, NotificationPage, NotificationQuery, Redrive, UnreadCount},
    notify::webhook::{self, NewWebhook, Webhook},
    request::{ApiJson, ApiQuery, IdPath, RequestMeta},
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
#[utoipa::path(get, path = "/v1/admin/notifications/dead", tag = "admin", security(("bearer" = ["branch_admin"])),
    responses((status = 200, body = Vec<DeadDelivery>), (status = 403, body = Problem)))]
pub async fn dead(State(state): State<AppState>, admin: BranchAdmin) -> ApiResult<Json<Vec<DeadDelivery>>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(notify::dead_letters(&client, admin.branch_id()).await?))
}

/// Sends a dead delivery again from its first attempt; audited.
#[utoipa::path(post, path = "/v1/admin/notifications/redrive", tag = "admin", security(("bearer" = ["branch_admin"])), request_body = Redrive,
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

#[utoipa::path(get, path = "/v1/me/notification-settings", tag = "notifications", security(("bearer" = ["customer"])),
    responses((status = 200, body = Settings), (status = 403, body = Problem)))]
pub async fn get_settings(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<Json<Settings>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(notify::settings::get(&client, caller.user_id).await?))
}

/// Replaces the caller's settings and low-balance alerts; audited (turning a
/// security channel off is worth a record).
#[utoipa::path(put, path = "/v1/me/notification-settings", tag = "notifications", security(("bearer" = ["customer"])), request_body = Settings,
    responses((status = 200, body = Settings), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn put_settings(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, body: ApiJson<Settings>) -> ApiResult<Json<Settings>> {
    let settings = body.value;
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            notify::settings::put(&tx, caller.user_id, &settings).await?;
            let details = serde_json::json!({"sms_security": settings.sms_security, "email_security": settings.email_security,
                                             "alerts": settings.low_balance_alerts.len()});
            let entry = AuditEntry::success_by(&caller, &meta, &client_addr, "notifications.settings_changed", format!("user:{}", caller.user_id), details);
            record_tx(&tx, &entry).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(())
        })
        .await?;
    // The settings also set the day of the caller's daily limits (a read a replica serves next).
    state.db.remember_write_now(&caller.session_hash).await;
    let client = state.db.primary_read_committed().await?;
    Ok(Json(notify::settings::get(&client, caller.user_id).await?))
}

/// Registers a webhook endpoint (customers with a business account). The
/// answer holds the signing secret: it is shown this once.
#[utoipa::path(post, path = "/v1/me/webhooks", tag = "notifications", security(("bearer" = ["customer"])), request_body = NewWebhook,
    responses((status = 201, body = Webhook), (status = 400, body = Problem), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn register_webhook(State(state): State<AppState>, Customer(caller): Customer, meta: RequestMeta, body: ApiJson<NewWebhook>) -> ApiResult<(axum::http::StatusCode, Json<Webhook>)> {
    let request = body.value;
    let client_addr = meta.client_ip.to_string();
    let created = state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let created = webhook::register(&tx, &state.secrets, caller.user_id, &request).await?;
            let entry = AuditEntry::success_by(&caller, &meta, &client_addr, "notifications.webhook_registered", format!("webhook:{}", created.id), serde_json::json!({"url": request.url}));
            record_tx(&tx, &entry).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(created)
        })
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/v1/me/webhooks", tag = "notifications", security(("bearer" = ["customer"])),
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = Problem)))]
pub async fn list_webhooks(State(state): State<AppState>, Customer(caller): Customer) -> ApiResult<Json<Vec<Webhook>>> {
    let client = state.db.primary_read_committed().await?;
    Ok(Json(webhook::list(&client, caller.user_id).await?))
}

#[utoipa::path(delete, path = "/v1/me/webhooks/{id}", tag = "notifications", security(("bearer" = ["customer"])), params(("id" = uuid::Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_webhook(State(state): State<AppState>, Customer(caller): Customer, IdPath(id): IdPath) -> ApiResult<axum::http::StatusCode> {
    let client = state.db.primary_read_committed().await?;
    if !webhook::deactivate(&client, caller.user_id, id).await? {
        return Err(ApiError::not_found());
    }
    Ok(axum::http::StatusCode::NO_CONTENT)
}
