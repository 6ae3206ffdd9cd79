//! REST provisioning API (axum) under `/api/v1/subscribers`, described by the OpenAPI 3
//! document served at `/api/v1/openapi.json` (`openapi.json` in this folder).
//!
//! | method | path | |
//! |---|---|---|
//! | POST | `/api/v1/subscribers` | create → 201 |
//! | GET | `/api/v1/subscribers` | list |
//! | GET, PUT, PATCH, DELETE | `/api/v1/subscribers/{id}` | `id` = IMSI or IMPI |
//! | POST | `/api/v1/subscribers/{id}/deregister` | RTR to the serving S-CSCF |
//! | POST | `/api/v1/subscribers/{id}/push-profile` | PPR to the serving S-CSCF |
//!
//! Errors are JSON `{"error": "...", "field": "..."}`: 422 for invalid input (the field
//! named), 409 for a duplicate IMSI/IMPI/IMPU, 404 for an unknown subscriber. Keys and
//! passwords are never returned and never logged.

pub mod body;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tracing::{info, warn};

use crate::push::{CxPush, PprRequest, ReasonCode, RtrRequest};
use crate::service::user_data::ims_subscription;
use crate::store::model::FieldError;
use crate::store::{Store, StoreError};
use body::SubscriberView;

/// The OpenAPI 3 description of this API.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Shared state of the handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The store.
    pub store: Store,
    /// Sender of RTR/PPR, when a Diameter server runs.
    pub push: Option<Arc<dyn CxPush>>,
}

/// The router.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/subscribers", get(list).post(create))
        .route(
            "/api/v1/subscribers/{id}",
            get(show).put(put).patch(patch).delete(delete),
        )
        .route("/api/v1/subscribers/{id}/deregister", post(deregister))
        .route("/api/v1/subscribers/{id}/push-profile", post(push_profile))
        .with_state(state)
}

/// An API error: status and JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            error: error.into(),
            field: None,
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        let status = if e.field == "body" {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        Self {
            status,
            error: e.to_string(),
            field: Some(e.field),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Invalid(f) => f.into(),
            StoreError::Duplicate { field, .. } => Self {
                status: StatusCode::CONFLICT,
                error: e.to_string(),
                field: Some(field),
            },
            StoreError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, e.to_string()),
            other => {
                warn!(error = %other, "store failure in REST API");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store failure")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(f) => json!({"error": self.error, "field": f}),
            None => json!({"error": self.error}),
        };
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

async fn list(State(st): State<ApiState>) -> ApiResult<Json<Vec<SubscriberView>>> {
    let all = st.store.list().await?;
    Ok(Json(all.iter().map(SubscriberView::from).collect()))
}

async fn create(State(st): State<ApiState>, b: Bytes) -> ApiResult<Response> {
    let m = body::object(&b)?;
    let new = body::new_subscriber(&m, None)?;
    let s = st.store.create(new).await?;
    info!(imsi = %s.imsi, impi = %s.impi, impus = s.impus.len(), "subscriber created (REST)");
    Ok((StatusCode::CREATED, Json(SubscriberView::from(&s))).into_response())
}

async fn found(st: &ApiState, id: &str) -> ApiResult<crate::store::model::Subscriber> {
    st.store
        .get(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no subscriber {id:?}")))
}

async fn show(
    State(st): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriberView>> {
    Ok(Json(SubscriberView::from(&found(&st, &id).await?)))
}

async fn put(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<Json<SubscriberView>> {
    let cur = found(&st, &id).await?;
    let up = body::put(&body::object(&b)?, &cur.imsi)?;
    let s = st.store.update(&cur.imsi, up).await?;
    info!(imsi = %s.imsi, "subscriber replaced (REST)");
    profile_changed(&st, &cur, &s);
    Ok(Json(SubscriberView::from(&s)))
}

async fn patch(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    b: Bytes,
) -> ApiResult<Json<SubscriberView>> {
    let cur = found(&st, &id).await?;
    let up = body::patch(&body::object(&b)?)?;
    let s = st.store.update(&cur.imsi, up).await?;
    info!(imsi = %s.imsi, "subscriber updated (REST)");
    profile_changed(&st, &cur, &s);
    Ok(Json(SubscriberView::from(&s)))
}

async fn delete(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if st.store.delete(&id).await? {
        info!(id = %id, "subscriber deleted (REST)");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no subscriber {id:?}"),
        ))
    }
}

/// When the service profile (IMPUs, iFC) of a registered user changed, push it (PPR) in
/// the background.
fn profile_changed(
    st: &ApiState,
    before: &crate::store::model::Subscriber,
    after: &crate::store::model::Subscriber,
) {
    let (Some(push), Some(host)) = (st.push.clone(), after.scscf_host.clone()) else {
        return;
    };
    if before.impus == after.impus && before.ifc_xml == after.ifc_xml {
        return;
    }
    let req = PprRequest {
        destination_host: host,
        impi: after.impi.clone(),
        user_data: ims_subscription(after, None),
    };
    tokio::spawn(async move {
        match push.push_profile(req.clone()).await {
            Ok(o) => {
                info!(impi = %req.impi, to = %req.destination_host, code = o.code, "PPR answered")
            }
            Err(e) => warn!(impi = %req.impi, error = %e, "PPR failed"),
        }
    });
}

fn no_push() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no Diameter server is running in this process",
    )
}

fn push_error(e: crate::push::PushError) -> ApiError {
    use crate::push::PushError::*;
    let status = match e {
        NotConnected(_) => StatusCode::CONFLICT,
        Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        Failed(_) => StatusCode::BAD_GATEWAY,
    };
    ApiError::new(status, e.to_string())
}

async fn deregister(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let s = found(&st, &id).await?;
    let push = st.push.clone().ok_or_else(no_push)?;
    let Some(host) = s.scscf_host.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "subscriber has no serving S-CSCF (not registered)",
        ));
    };
    let out = push
        .registration_termination(RtrRequest {
            destination_host: host.clone(),
            impi: s.impi.clone(),
            impus: s.impus.iter().map(|i| i.uri.clone()).collect(),
            reason: ReasonCode::PermanentTermination,
            reason_info: "Administrative deregistration".into(),
        })
        .await
        .map_err(push_error)?;
    if out.is_success() {
        st.store.set_assignment(&s.imsi, None, None).await?;
    }
    info!(imsi = %s.imsi, to = %host, code = out.code, "RTR answered");
    Ok(
        Json(json!({"sent_to": host, "result_code": out.code, "experimental": out.experimental}))
            .into_response(),
    )
}

async fn push_profile(State(st): State<ApiState>, Path(id): Path<String>) -> ApiResult<Response> {
    let s = found(&st, &id).await?;
    let push = st.push.clone().ok_or_else(no_push)?;
    let Some(host) = s.scscf_host.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "subscriber has no serving S-CSCF (not registered)",
        ));
    };
    let out = push
        .push_profile(PprRequest {
            destination_host: host.clone(),
            impi: s.impi.clone(),
            user_data: ims_subscription(&s, None),
        })
        .await
        .map_err(push_error)?;
    Ok(
        Json(json!({"sent_to": host, "result_code": out.code, "experimental": out.experimental}))
            .into_response(),
    )
}
