use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
};

use crate::{error::ApiError, state::AppState};

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, description = "The process runs.", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 when a writable primary answers, else 503.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, description = "A writable primary answers.", body = String, content_type = "text/plain"), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    let client = state.db.writer().await?;
    let row = client
        .query_one("SELECT NOT pg_is_in_recovery()", &[])
        .await
        .map_err(crate::db::db_error)?;
    if row.get::<_, bool>(0) {
        Ok("ready")
    } else {
        Err(ApiError::new(crate::error::Code::NoPrimary, "no writable primary").with_retry_after(1))
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.db.pool.view().pool;
    metrics::gauge!("flexibank_pool_size").set(pool.size as f64);
    metrics::gauge!("flexibank_pool_available").set(pool.available as f64);
    metrics::gauge!("flexibank_pool_waiting").set(pool.waiting as f64);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
