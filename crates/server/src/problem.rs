//! Errors as RFC 7807 problem documents (`application/problem+json`):
//! every failure the API answers, from a malformed body to an unknown
//! model, is one of these, with a status that says whose fault it is.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tradelab_store::StoreError;
use utoipa::ToSchema;

/// An RFC 7807 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` for plain HTTP statuses).
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code, as in the response.
    pub status: u16,
    /// What went wrong in this request, and what to do about it.
    pub detail: String,
}

impl Problem {
    /// A problem with `status`, titled with its reason phrase.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 404: the thing asked for does not exist.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// 422: the request is well-formed but its values are refused.
    pub fn unprocessable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// A server-side failure: the detail is logged, the client gets no internals.
    pub fn internal(what: &str, error: impl std::fmt::Display) -> Problem {
        eprintln!("error: {what}: {error}");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{what} failed on the server; the server's log has the cause"),
        )
    }
}

/// A job the application refused is the client's to fix: 422.
impl From<tradelab_app::jobs::spec::JobRejected> for Problem {
    fn from(e: tradelab_app::jobs::spec::JobRejected) -> Problem {
        Problem::unprocessable(e.detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        match e {
            StoreError::NotFound(m) => Problem::not_found(m),
            StoreError::Invalid(m) => Problem::unprocessable(m),
            other => Problem::internal("the database", other),
        }
    }
}

impl From<JsonRejection> for Problem {
    fn from(r: JsonRejection) -> Problem {
        let status = match &r {
            JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
            JsonRejection::JsonSyntaxError(_) => StatusCode::BAD_REQUEST,
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => r.status(),
        };
        let detail = match &r {
            JsonRejection::MissingJsonContentType(_) => {
                "the body must be JSON: send `Content-Type: application/json`".to_string()
            }
            _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                format!(
                    "the body is larger than the server accepts ({} bytes)",
                    super::MAX_BODY_BYTES
                )
            }
            _ => r.body_text(),
        };
        Problem::new(status, detail)
    }
}

impl From<PathRejection> for Problem {
    fn from(r: PathRejection) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(r: QueryRejection) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, r.body_text())
    }
}

/// axum's `Json` extractor, with rejections as problem documents (422 for
/// JSON of the wrong shape); as a response, the value as JSON.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(Problem))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// axum's `Path` extractor, with rejections as 400 problem documents.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Problem))]
pub struct Path<T>(pub T);

/// axum's `Query` extractor, with rejections as 400 problem documents.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Problem))]
pub struct Query<T>(pub T);

/// What a handler returns: its answer, or a problem document.
pub type ApiResult<T> = Result<T, Problem>;
