use axum::{extract::State, http::StatusCode, Json};

use crate::{
    access::Caller,
    auth::{
        login::{self, LoginRequest, LoginResponse, MfaRequest, SessionResponse},
        session::UserView,
    },
    error::{ApiResult, Problem},
    request::{ApiJson, RequestMeta},
    state::AppState,
};

/// Step one: username and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(State(state): State<AppState>, meta: RequestMeta, body: ApiJson<LoginRequest>) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(login::login(&state, &meta, body.value).await?))
}

/// Step two: a TOTP code or a recovery code for the step-one token.
#[utoipa::path(post, path = "/v1/auth/mfa", tag = "auth", request_body = MfaRequest,
    responses((status = 200, body = SessionResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn mfa(State(state): State<AppState>, meta: RequestMeta, body: ApiJson<MfaRequest>) -> ApiResult<Json<SessionResponse>> {
    Ok(Json(login::complete_mfa(&state, &meta, body.value).await?))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(State(state): State<AppState>, meta: RequestMeta, caller: Caller) -> ApiResult<StatusCode> {
    login::logout(&state, &meta, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/auth/session", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem)))]
pub async fn session(caller: Caller) -> Json<UserView> {
    Json(UserView::from(&caller))
}
