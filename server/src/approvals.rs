//! An admin's decision on a held movement (the contract's "Review"): approve
//! it (the movement happens in the approval's transaction: a transfer, or an
//! inter-bank payment placed and then sent to the switch), reject it, or the
//! customer cancels it. Apart from `review.rs` (the rules, the hold, the
//! lists) because approving reaches into inter-bank payments, which screen
//! every payment through `review.rs`: this way neither imports the other.

use uuid::Uuid;

use crate::{
    access::Caller,
    audit::{record_tx, AuditEntry},
    db::db_error,
    error::{ApiError, ApiResult, Code},
    interbank::payments::{place_approved, send_placed, InterbankPayment},
    request::RequestMeta,
    review::{finish_run, review_of, Review, REVIEW_COLUMNS},
    state::AppState,
};

/// How a pending review ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    /// By the customer.
    Cancel,
}

/// Why this admin may not decide this review (maker-checker), if they may not.
async fn conflict_of_interest(tx: &tokio_postgres::Transaction<'_>, admin: Uuid, review: Uuid) -> ApiResult<Option<&'static str>> {
    let row = tx
        .query_one(
            "SELECT u.created_by = $1,
                    EXISTS (SELECT 1 FROM audit_log l WHERE l.actor_id = $1 AND l.action = 'admin.account_opened' AND l.target = 'account:' || a.number),
                    a.limit_changed_by = $1 AND a.limit_changed_at > now() - interval '24 hours',
                    EXISTS (SELECT 1 FROM payees p WHERE p.user_id = r.user_id AND p.account_number = r.to_account_number AND p.created_by = $1)
               FROM reviews r JOIN users u ON u.id = r.user_id JOIN accounts a ON a.id = r.from_account_id
              WHERE r.id = $2",
            &[&admin, &review],
        )
        .await
        .map_err(db_error)?;
    let flags: [(Option<bool>, &'static str); 4] = [
        (row.get(0), "you created this customer"),
        (row.get(1), "you opened this account"),
        (row.get(2), "you changed this account's limit in the last 24 h"),
        (row.get(3), "you added this payee"),
    ];
    Ok(flags.into_iter().find(|(flag, _)| *flag == Some(true)).map(|(_, why)| why))
}

/// Approve, reject (a branch admin of the review's branch) or cancel (its customer) a pending review.
pub async fn decide(state: &AppState, caller: &Caller, branch: Option<Uuid>, meta: &RequestMeta, review_id: Uuid, decision: Decision) -> ApiResult<Review> {
    let client_addr = meta.client_ip.to_string();
    state
        .db
        .retry_serializable(|| async {
            let mut client = state.db.writer().await?;
            let tx = client.transaction().await.map_err(db_error)?;
            let row = tx
                .query_opt(
                    &format!(
                        "SELECT {REVIEW_COLUMNS}, r.user_id FROM reviews r
                          WHERE r.id = $1 AND (($2::uuid IS NOT NULL AND r.branch_id = $2) OR ($2::uuid IS NULL AND r.user_id = $3)) FOR UPDATE"
                    ),
                    &[&review_id, &branch, &caller.user_id],
                )
                .await
                .map_err(db_error)?
                .ok_or_else(ApiError::not_found)?;
            let review = review_of(&row);
            let customer: Uuid = row.get(18);
            if review.status != "held_for_review" {
                return Err(ApiError::new(Code::ReviewDecided, format!("this review was {} already", review.status)));
            }
            if decision == Decision::Approve {
                if let Some(why) = conflict_of_interest(&tx, caller.user_id, review_id).await? {
                    return Err(ApiError::new(Code::Forbidden, format!("another branch admin must decide this review: {why}")));
                }
            }
            // The hold goes first: the approved transfer spends the money it kept.
            tx.execute("SELECT void_hold($1)", &[&format!("review:{review_id}")]).await.map_err(db_error)?;
            let (status, action, kind) = match decision {
                Decision::Approve => ("approved", "admin.review_approved", "review.approved"),
                Decision::Reject => ("rejected", "admin.review_rejected", "review.rejected"),
                Decision::Cancel => ("cancelled", "review.cancelled", "review.rejected"),
            };
            let (transfer_id, interbank_payment) = match decision {
                Decision::Approve => approve(state, &tx, &review, customer, meta, &client_addr).await?,
                _ => (None, None),
            };
            let interbank_payment_id = interbank_payment.as_ref().map(|p| p.id);
            finish_run(&tx, review_id, transfer_id, interbank_payment_id, status).await?;
            tx.execute(
                "UPDATE reviews SET status = $2, decided_by = $3, decided_at = now(), transfer_id = $4, interbank_payment_id = $5 WHERE id = $1",
                &[&review_id, &status, &caller.user_id, &transfer_id, &interbank_payment_id],
            )
            .await
            .map_err(db_error)?;
            tx.execute(
                "SELECT notify_user($1, $2, false, jsonb_build_object('review_id', $3::text, 'status', $4::text, 'amount', $5::text, 'currency', $6::text))",
                &[&customer, &kind, &review_id.to_string(), &status, &review.amount, &review.currency],
            )
            .await
            .map_err(db_error)?;
            let mut entry = AuditEntry::success_by(
                caller,
                meta,
                &client_addr,
                action,
                format!("review:{review_id}"),
                serde_json::json!({ "transfer_id": transfer_id, "interbank_payment_id": interbank_payment_id, "amount": review.amount }),
            );
            entry.branch_id = branch.or(caller.branch_id);
            record_tx(&tx, &entry).await?;
            let after = tx
                .query_one(&format!("SELECT {REVIEW_COLUMNS} FROM reviews r WHERE r.id = $1"), &[&review_id])
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            if let Some(payment) = interbank_payment {
                // Committed here, sent now; the resolver sends it again if this send is lost.
                send_placed(state, payment.e2e_id);
            }
            Ok(review_of(&after))
        })
        .await
}

/// The approved movement, in the approval's transaction: a transfer (also a standing order's run), or an
/// inter-bank payment placed (its hold and row) to be sent to the switch once this commits.
async fn approve(
    state: &AppState,
    tx: &deadpool_postgres::Transaction<'_>,
    review: &Review,
    customer: Uuid,
    meta: &RequestMeta,
    client_addr: &str,
) -> ApiResult<(Option<Uuid>, Option<InterbankPayment>)> {
    if let Some(key) = &review.to_key {
        let payment = place_approved(state, tx, review.id, customer, review.from_account_id, key, &review.amount, &review.memo, meta)
            .await?;
        return Ok((None, Some(payment)));
    }
    let to_number = review.to_account_number.as_deref().expect("a review names an account or a key (reviews.review_target)");
    // A run keeps the order's request id, so its transfer reads like the order's other runs.
    let request_id = match review.standing_order_id {
        Some(order_id) => format!("standing-order:{order_id}:review:{}", review.id),
        None => meta.request_id.clone(),
    };
    let moved: serde_json::Value = tx
        .query_one(
            "SELECT apply_movement($1, 'customer', $1, NULL, 'transfer', $2, $3, $4::text::numeric, $5, NULL, NULL, $6, $7)",
            &[&customer, &review.from_account_id, &to_number, &review.amount, &review.memo, &request_id, &client_addr],
        )
        .await
        .map_err(db_error)?
        .get(0);
    let id = moved["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::internal("apply_movement answered no id"))?;
    Ok((Some(id), None))
}
