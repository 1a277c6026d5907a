//! The published OpenAPI document, made exact in one place.
//!
//! Handlers declare what is theirs: the success body, the parameters, the
//! request body, the roles in `security(("bearer" = ["customer"]))` (OpenAPI
//! 3.1 lets a non-OAuth scheme list role names) and the domain errors only
//! they answer (404, 409). Everything that follows from the middleware and the
//! extractors every handler shares is added here, by rule, as references to one
//! set of problem+json responses:
//!
//! - 400 `validation_failed` wherever there is a parameter or a body;
//! - 401 on every session endpoint, 403 where only some roles may call;
//! - 413 on every body (`server.max_body_bytes`, more for a batch);
//! - 404/409/422/428 on money (an account not yours, its state or a key in
//!   progress, a key reused, a key missing);
//! - 429 on every route the shedder bounds (`limits::RouteClass`);
//! - 503 wherever the database is asked (and the request timeout applies).
//!
//! A 500 is a bug and is never documented.

use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use utoipa::OpenApi;

use super::limits::RouteClass;
use crate::request::{IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY_LEN};

#[derive(OpenApi)]
#[openapi(
    info(title = "FlexiBank API", version = "1", description = "The FlexiBank HTTP API v1 (see shared/API.md). \
        Every error is application/problem+json (RFC 9457) with a stable `code`."),
    paths(
        super::ops::healthz, super::ops::readyz,
        super::auth::login, super::auth::mfa, super::auth::logout, super::auth::session,
        super::customer::me, super::customer::account, super::customer::transactions,
        super::customer::deposit, super::customer::withdraw, super::customer::transfer, super::customer::batch,
        super::everyday::lookup, super::everyday::add, super::everyday::list, super::everyday::delete,
        super::everyday::get_limits, super::everyday::put_limits, super::statements::statement,
        super::everyday::create_order, super::everyday::list_orders, super::everyday::change_order, super::everyday::cancel_order,
        super::everyday::order_runs, super::everyday::fx_rates, super::everyday::set_fx_rates, super::everyday::fx_quote,
        super::everyday::own_reviews, super::everyday::cancel_review, super::everyday::branch_reviews,
        super::everyday::approve_review, super::everyday::reject_review,
        super::admin::create_customer, super::admin::list_customers, super::admin::open_account, super::admin::list_accounts,
        super::admin::add_owner, super::admin::freeze, super::admin::unfreeze, super::admin::close,
        super::admin::deposit, super::admin::withdraw, super::admin::transactions, super::admin::audit, super::admin::reset_mfa,
        super::admin::dba_audit, super::dba::cluster, super::dba::promote,
        super::notifications::list, super::notifications::mark_read, super::notifications::dead, super::notifications::redrive,
        super::notifications::get_settings, super::notifications::put_settings,
        super::notifications::register_webhook, super::notifications::list_webhooks, super::notifications::delete_webhook,
        super::interbank::pay, super::interbank::payment, super::interbank::payments,
        super::interbank::register_key, super::interbank::verify_key, super::interbank::list_keys, super::interbank::delete_key,
        super::interbank::directory, super::interbank::position, super::interbank::admin_payments,
    ),
)]
pub struct ApiDoc;

/// The shared error responses: status, component name, what it means.
const SHARED: [(u16, &str, &str); 10] = [
    (400, "ValidationFailed", "`validation_failed`: malformed JSON, a wrong type, a value out of its bounds, or a parameter the operation does not take."),
    (401, "Unauthenticated", "`unauthenticated` (no, expired or revoked session); on sign-in `invalid_credentials`, `invalid_totp` or `totp_replayed`."),
    (403, "Forbidden", "`forbidden`: the session's role may not do this."),
    (404, "NotFound", "`not_found`: no such resource, or not yours to see."),
    (409, "Conflict", "A state conflict: `insufficient_funds`, `account_inactive`, `currency_mismatch`, `same_account`, `balance_not_zero`, `username_taken`, `idempotency_in_progress`, `limit_reached`, `limit_exceeded` (a daily limit), `order_ended` (a standing order), `quote_expired`, `quote_used` (FX), `review_decided`, `review_required` (a batch with a transfer the review rules flag), `promotion_unsafe`; inter-bank: `key_taken`, `payee_refused`, `liquidity_exhausted`, `same_bank`."),
    (413, "PayloadTooLarge", "`payload_too_large`: the body is over the server's limit (64 KiB by default; 2 MiB for a batch of transfers)."),
    (422, "IdempotencyKeyReused", "`idempotency_key_reused`: this Idempotency-Key was used with a different request."),
    (428, "IdempotencyKeyRequired", "`idempotency_key_required`: a money-moving request without an Idempotency-Key."),
    (429, "TooManyRequests", "`rate_limited` (the server sheds load, or too many attempts) or `locked_out`; retry after `Retry-After` seconds."),
    (503, "Unavailable", "`no_primary`: no writable database node answered in time; `bank_unavailable`: the consortium's switch could not be reached and nothing was sent to it. Retry after `Retry-After` seconds with the same Idempotency-Key."),
];

/// `GET /v1/openapi.json`.
pub async fn serve() -> axum::Json<&'static Value> {
    axum::Json(document())
}

/// The document the server publishes, built once.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
        conform(&mut doc);
        doc
    })
}

fn shared_name(status: u16) -> Option<&'static str> {
    SHARED.iter().find(|(s, _, _)| *s == status).map(|(_, name, _)| *name)
}

fn request_id_header() -> Value {
    json!({"description": "The request's id, echoed when the client sent `X-Request-Id`.", "schema": {"type": "string"}})
}

fn conform(doc: &mut Value) {
    let components = doc["components"].as_object_mut().expect("the document has components");
    components.insert(
        "securitySchemes".into(),
        json!({"bearer": {"type": "http", "scheme": "bearer", "description": "A session token from POST /v1/auth/mfa. \
            The scopes of an operation's requirement name the roles that may call it (none: any role)."}}),
    );
    let mut responses = Map::new();
    for (status, name, description) in SHARED {
        let mut response = json!({
            "description": description,
            "headers": {"X-Request-Id": request_id_header()},
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        });
        if status == 429 || status == 503 {
            response["headers"]["Retry-After"] = json!({"description": "Seconds to wait before retrying.", "required": true,
                "schema": {"type": "integer", "minimum": 1}});
        }
        responses.insert(name.into(), response);
    }
    components.insert("responses".into(), Value::Object(responses));

    let paths = doc["paths"].as_object_mut().expect("the document has paths");
    for (path, item) in paths.iter_mut() {
        for (method, operation) in item.as_object_mut().expect("a path item is an object") {
            conform_operation(path, method, operation);
        }
    }
}

fn conform_operation(path: &str, method: &str, operation: &mut Value) {
    let http_method: axum::http::Method = method.to_uppercase().parse().expect("an OpenAPI method is an HTTP method");
    let roles: Option<Vec<Value>> = operation
        .get("security")
        .and_then(Value::as_array)
        .and_then(|requirements| requirements.first())
        .and_then(|requirement| requirement["bearer"].as_array().cloned());
    // `get_mut`, not indexing: indexing a missing key would insert a null.
    let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
    let mut has_parameters = false;
    let mut idempotent = false;
    if let Some(parameters) = parameters {
        has_parameters = !parameters.is_empty();
        for parameter in parameters.iter_mut() {
            if parameter["in"] == "header" && parameter["name"] == "Idempotency-Key" {
                idempotent = true;
                parameter["required"] = json!(true);
                parameter["description"] = json!("Unique per intended movement; a repeat with the same key and body \
                    returns the first answer again (`Idempotent-Replayed: true`). Keys live 24 h.");
                parameter["schema"] = json!({"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LEN,
                    "pattern": IDEMPOTENCY_KEY_PATTERN});
            }
        }
    }
    let has_body = operation.get("requestBody").is_some();

    let mut statuses: Vec<u16> = Vec::new();
    if has_parameters || has_body {
        statuses.push(400);
    }
    if let Some(roles) = &roles {
        statuses.push(401);
        if !roles.is_empty() {
            statuses.push(403);
        }
    }
    if has_body {
        statuses.push(413);
    }
    if idempotent {
        // Money names accounts (404 when not yours) and meets their state (409).
        statuses.extend([404, 409, 422, 428]);
    }
    if RouteClass::of(&http_method, path).is_some() {
        statuses.push(429);
    }
    if path != "/healthz" {
        statuses.push(503);
    }

    let responses = operation["responses"].as_object_mut().expect("an operation has responses");
    // Errors the handler declared become references too.
    for (status, _) in responses.iter() {
        if let Ok(status) = status.parse::<u16>() {
            if status >= 400 {
                statuses.push(status);
            }
        }
    }
    for status in statuses {
        let name = shared_name(status).unwrap_or_else(|| panic!("{method} {path}: no shared response for {status}"));
        responses.insert(status.to_string(), json!({"$ref": format!("#/components/responses/{name}")}));
    }
    for (status, response) in responses.iter_mut() {
        if status.starts_with('2') {
            let headers = response.as_object_mut().expect("a response is an object").entry("headers").or_insert(json!({}));
            headers["X-Request-Id"] = request_id_header();
            if idempotent && status == "201" {
                headers["Idempotent-Replayed"] = json!({"description": "`true` when this is the stored answer to an earlier request with the same key.",
                    "schema": {"type": "string", "enum": ["true"]}});
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_a_shared_problem_response() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if !status.starts_with('2') {
                        let reference = response["$ref"].as_str().unwrap_or_default();
                        assert!(reference.starts_with("#/components/responses/"), "{method} {path} {status}: {response}");
                    }
                }
                assert!(!operation["responses"].as_object().unwrap().contains_key("500"), "{method} {path} documents a 500");
            }
        }
    }

    #[test]
    fn exactly_the_money_routes_take_an_idempotency_key() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let has_key = operation["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
                let http_method: axum::http::Method = method.to_uppercase().parse().unwrap();
                let money = RouteClass::of(&http_method, path) == Some(RouteClass::Money);
                assert_eq!(has_key, money, "{method} {path}");
            }
        }
    }

    #[test]
    fn query_parameters_are_in_the_query() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                assert!(operation.get("parameters").is_none_or(Value::is_array), "{method} {path}");
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap();
                    let expected = if path.contains(&format!("{{{name}}}")) {
                        "path"
                    } else if name == "Idempotency-Key" {
                        "header"
                    } else {
                        "query"
                    };
                    assert_eq!(parameter["in"], expected, "{method} {path} {name}");
                }
            }
        }
    }
}
