//! Who is asking: the bearer session behind a request, then the role the
//! handler needs. The session lookup is here; whether a role may do a thing
//! is decided in `access` alone.

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::{
    access::{AccountActor, BranchAdmin, Caller, Customer, Dba},
    auth::session,
    error::{ApiError, ApiResult},
    state::AppState,
};

/// Longer than any token this server issues: refused unread.
const MAX_TOKEN_LEN: usize = 128;

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
            .ok_or_else(ApiError::unauthenticated)?;
        let idle_timeout_s = state.config.security.session_idle_timeout_s;
        let caller = session::authenticate(&state.db, &state.sessions, idle_timeout_s, token).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

macro_rules! admitted {
    ($($name:ident),*) => {$(
        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<$name> {
                $name::admit(Caller::from_request_parts(parts, state).await?)
            }
        }
    )*};
}

admitted!(Customer, BranchAdmin, Dba, AccountActor);
