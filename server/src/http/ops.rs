use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
    Json,
};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use crate::{error::ApiError, state::AppState};

#[derive(OpenApi)]
#[openapi(
    info(title = "FlexiBank API", version = "1", description = "The FlexiBank HTTP API v1 (see shared/API.md)."),
    paths(
        healthz, readyz,
        super::auth::login, super::auth::mfa, super::auth::logout, super::auth::session,
        super::customer::me, super::customer::account, super::customer::transactions,
        super::customer::deposit, super::customer::withdraw, super::customer::transfer, super::customer::batch,
        super::admin::create_customer, super::admin::list_customers, super::admin::open_account, super::admin::list_accounts,
        super::admin::freeze, super::admin::unfreeze, super::admin::close,
        super::admin::deposit, super::admin::withdraw, super::admin::transactions, super::admin::audit, super::admin::reset_mfa,
        super::admin::dba_audit, super::dba::cluster, super::dba::promote,
        super::notifications::list, super::notifications::mark_read, super::notifications::dead, super::notifications::redrive,
        super::notifications::get_settings, super::notifications::put_settings,
        super::notifications::register_webhook, super::notifications::list_webhooks, super::notifications::delete_webhook,
    ),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// 200 when a writable primary answers, else 503.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200), (status = 503)))]
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

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
