//! Who may do what: the single place where roles meet capabilities.
//!
//! Handlers never inspect roles. They take one of the extractors below
//! (`Customer`, `BranchAdmin`, `Dba`, or `Caller` for any signed-in user);
//! each authenticates the bearer session and then asks `role_may`. Object
//! scope (a customer's own accounts, an admin's own branch) is enforced by
//! the queries themselves, which take the caller's id or branch and answer
//! 404 for anything outside it.

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

use crate::{
    auth::session,
    error::{ApiError, ApiResult},
    state::AppState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    BranchAdmin,
    Dba,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::BranchAdmin => "branch_admin",
            Role::Dba => "dba",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "customer" => Some(Role::Customer),
            "branch_admin" => Some(Role::BranchAdmin),
            "dba" => Some(Role::Dba),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Move money between accounts one owns; read them.
    OwnBanking,
    /// Run one branch: customers, accounts, teller work, its audit trail.
    BranchAdministration,
    /// Cluster state, promotion, and every branch's audit trail.
    ClusterOperations,
}

/// The whole access policy.
pub fn role_may(role: Role, capability: Capability) -> bool {
    matches!(
        (role, capability),
        (Role::Customer, Capability::OwnBanking)
            | (Role::BranchAdmin, Capability::BranchAdministration)
            | (Role::Dba, Capability::ClusterOperations)
    )
}

/// An authenticated user, from a live bearer session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub username: String,
    pub full_name: String,
    pub role: Role,
    pub branch_id: Option<Uuid>,
    pub session_hash: Vec<u8>,
}

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
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(ApiError::unauthenticated)?;
        let caller = session::authenticate(state, token).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

macro_rules! role_extractor {
    ($(#[$doc:meta])* $name:ident, $capability:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<$name> {
                let caller = Caller::from_request_parts(parts, state).await?;
                if !role_may(caller.role, $capability) {
                    return Err(ApiError::forbidden());
                }
                Ok($name(caller))
            }
        }
    };
}

role_extractor!(
    /// A customer acting on their own accounts.
    Customer, Capability::OwnBanking);
role_extractor!(
    /// A branch admin acting within their branch.
    BranchAdmin, Capability::BranchAdministration);
role_extractor!(
    /// A DBA.
    Dba, Capability::ClusterOperations);

/// Who may read or change one account's settings (its daily limit): a
/// customer for the accounts they own, a branch admin for their branch's.
#[derive(Debug, Clone)]
pub enum AccountActor {
    Holder(Caller),
    Branch(Caller, Uuid),
}

impl AccountActor {
    pub fn caller(&self) -> &Caller {
        match self {
            AccountActor::Holder(caller) | AccountActor::Branch(caller, _) => caller,
        }
    }
}

impl FromRequestParts<AppState> for AccountActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<AccountActor> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if role_may(caller.role, Capability::OwnBanking) {
            return Ok(AccountActor::Holder(caller));
        }
        if role_may(caller.role, Capability::BranchAdministration) {
            let branch_id = caller.branch_id.expect("branch admins always have a branch (users.branch_matches_role)");
            return Ok(AccountActor::Branch(caller, branch_id));
        }
        Err(ApiError::forbidden())
    }
}

impl BranchAdmin {
    pub fn branch_id(&self) -> Uuid {
        self.0.branch_id.expect("branch admins always have a branch (users.branch_matches_role)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_has_exactly_its_capability() {
        let roles = [Role::Customer, Role::BranchAdmin, Role::Dba];
        let caps = [Capability::OwnBanking, Capability::BranchAdministration, Capability::ClusterOperations];
        for (i, role) in roles.iter().enumerate() {
            for (j, cap) in caps.iter().enumerate() {
                assert_eq!(role_may(*role, *cap), i == j, "{role:?} {cap:?}");
            }
        }
    }
}
