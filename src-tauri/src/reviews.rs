//! Review of unusual movements (issue 18), checked here before anything is
//! sent: the branch's review queue by status, and an admin's decision. (How a
//! held transfer is told apart from one that moved is `queue::Accepted`.)

/// The review statuses the branch's queue can show; `pending` is the default.
pub const STATUSES: [&str; 6] = ["pending", "approved", "rejected", "cancelled", "expired", "all"];

/// The status filter as the server takes it: `None` (its default, pending) or one of `STATUSES`.
pub fn check_status(status: Option<&str>) -> Result<Option<String>, String> {
    match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => STATUSES
            .iter()
            .find(|known| **known == s)
            .map(|known| Some(known.to_string()))
            .ok_or_else(|| format!("status {s:?} is not one of {}", STATUSES.join(", "))),
    }
}

/// An admin's decision, as the path's last part: `approve` or `reject`.
pub fn check_decision(decision: &str) -> Result<&'static str, String> {
    match decision.trim() {
        "approve" => Ok("approve"),
        "reject" => Ok("reject"),
        other => Err(format!("a review is approved or rejected, not {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_servers() {
        assert_eq!(check_status(None), Ok(None));
        assert_eq!(check_status(Some("")), Ok(None), "empty: the server's default, pending");
        for s in STATUSES {
            assert_eq!(check_status(Some(s)), Ok(Some(s.to_string())));
        }
        assert_eq!(check_status(Some(" all ")), Ok(Some("all".into())));
        let refused = check_status(Some("held_for_review")).unwrap_err();
        assert!(refused.contains("pending, approved"), "{refused}");
        assert!(check_status(Some("pending&x=1")).is_err(), "nothing else reaches the query");
    }

    #[test]
    fn decisions_are_approve_or_reject() {
        assert_eq!(check_decision("approve"), Ok("approve"));
        assert_eq!(check_decision("reject"), Ok("reject"));
        for bad in ["cancel", "Approve", "", "approve/../../x"] {
            assert!(check_decision(bad).is_err(), "{bad:?}");
        }
    }
}
