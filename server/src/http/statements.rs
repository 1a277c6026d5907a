//! Monthly statements as PDF (thin over `statements`).

use axum::{
    extract::{FromRequestParts, State},
    http::{header, request::Parts, HeaderValue},
    response::{IntoResponse, Response},
};
use utoipa::ToSchema;

use crate::{
    access::AccountActor,
    error::{ApiError, ApiResult, Problem},
    request::RequestMeta,
    state::AppState,
    statements::{self, Month},
};

/// The extracted path; a malformed one is 400 `validation_failed`.
pub struct StatementAt(uuid::Uuid, Month);

impl FromRequestParts<AppState> for StatementAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let axum::extract::Path((id, month)) = axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::validation("bad path"))?;
        // 36 characters that parse are the hyphenated form (the others are 32, 38 or 45 long).
        let id = (id.len() == 36)
            .then(|| uuid::Uuid::parse_str(&id).ok())
            .flatten()
            .ok_or_else(|| ApiError::validation(format!("{id:?} is not a UUID")))?;
        Ok(StatementAt(id, Month::parse(&month)?))
    }
}

/// A PDF document (the schema of the 200 body).
#[derive(ToSchema)]
#[allow(dead_code)]
#[schema(value_type = String, format = Binary)]
pub struct Pdf(Vec<u8>);

/// The account's statement for one month, as a PDF: the opening balance, every entry with its
/// running balance, the closing balance, money in and out, and a chart of the balance. Months
/// are counted in UTC; the current month's is a statement to date. A month before the account
/// opened, or one not begun, has none (404). At most 50,000 entries: a month with more is
/// refused (400, "ask the branch"). Each download is audited.
#[utoipa::path(get, path = "/v1/accounts/{id}/statements/{month}", tag = "customer", security(("bearer" = ["customer", "branch_admin"])),
    // The pattern is `statements::MONTH_PATTERN` (a literal here; a unit test keeps the two equal).
    params(("id" = uuid::Uuid, Path, description = "The account."),
           ("month" = String, Path, pattern = "^[2-9][0-9]{3}-(0[1-9]|1[0-2])$", min_length = 7, max_length = 7,
            description = "The month, `yyyy-mm`, counted in UTC: from the account's opening month to the current one (a statement to date).")),
    responses((status = 200, description = "The statement, a PDF to save", content_type = "application/pdf", body = inline(Pdf),
               headers(("Content-Disposition" = String, description = "attachment; filename=\"statement-<number>-<yyyy-mm>.pdf\""))),
              (status = 404, body = Problem)))]
pub async fn statement(State(state): State<AppState>, actor: AccountActor, meta: RequestMeta, StatementAt(id, month): StatementAt) -> ApiResult<Response> {
    let rendered = statements::download(&state, &actor, &meta, id, month).await?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", rendered.file_name)).map_err(ApiError::internal)?;
    let mut response = rendered.pdf.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    headers.insert("x-served-by", HeaderValue::from_static(rendered.served_by.as_str()));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use crate::statements;

    #[test]
    fn the_document_publishes_the_exact_month_and_a_pdf() {
        let doc = crate::http::openapi_document();
        let operation = &doc["paths"]["/v1/accounts/{id}/statements/{month}"]["get"];
        let parameters = operation["parameters"].as_array().unwrap();
        let month = parameters.iter().find(|p| p["name"] == "month").unwrap();
        assert_eq!((month["in"].as_str(), month["required"].as_bool()), (Some("path"), Some(true)));
        assert_eq!(month["schema"]["pattern"], statements::MONTH_PATTERN);
        assert_eq!(
            (month["schema"]["minLength"].as_u64(), month["schema"]["maxLength"].as_u64()),
            (Some(7), Some(7))
        );
        let id = parameters.iter().find(|p| p["name"] == "id").unwrap();
        assert_eq!(id["schema"]["format"], "uuid");
        let ok = &operation["responses"]["200"];
        assert!(ok["content"]["application/pdf"].is_object(), "{ok}");
        assert_eq!(operation["security"][0]["bearer"], serde_json::json!(["customer", "branch_admin"]));
        for status in ["400", "401", "403", "404", "429", "503"] {
            assert!(operation["responses"][status].is_object(), "{status}");
        }
    }
}
