//! Who may do what: the single place where roles meet capabilities.
//!
//! Handlers never inspect roles. They take one of the types below
//! (`Customer`, `BranchAdmin`, `Dba`, `AccountActor`, or `Caller` for any
//! signed-in user) as an extractor: `http::extract` authenticates the bearer
//! session and then asks this module (`admit`, decided by `role_may`). Object
//! scope (a customer's own accounts, an admin's own branch) is enforced by
//! the queries themselves, which take the caller's id or branch and answer
//! 404 for anything outside it.

use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

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

macro_rules! role_wrapper {
    ($(#[$doc:meta])* $name:ident, $capability:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl $name {
            /// The caller in this role, or 403.
            pub fn admit(caller: Caller) -> ApiResult<$name> {
                if !role_may(caller.role, $capability) {
                    return Err(ApiError::forbidden());
                }
                Ok($name(caller))
            }
        }
    };
}

role_wrapper!(
    /// A customer acting on their own accounts.
    Customer, Capability::OwnBanking);
role_wrapper!(
    /// A branch admin acting within their branch.
    BranchAdmin, Capability::BranchAdministration);
role_wrapper!(
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

    /// The caller as a holder or as their branch's admin, or 403.
    pub fn admit(caller: Caller) -> ApiResult<AccountActor> {
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
