//! `/auth/*`: accounts, sign-in, token refresh, sign-out and API keys. Each handler parses,
//! calls the Session agent once, and maps the result.

use amp_agents::session::{DeviceLogin, NewApiKey, Registration, TokenPair};
use amp_core::store::{ApiKeyRecord, ApiKeyScope};
use amp_core::{ApiKeyId, DeviceId, Error, User};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::extract::{Body, Caller, ClientAddr};
use crate::state::AppState;

/// `POST /auth/register`: `201` with the account; its `status` says whether it is
/// `active` or `pending` an administrator's approval.
pub(crate) async fn register(
    State(state): State<AppState>,
    ClientAddr(client_addr): ClientAddr,
    Body(r): Body<Registration>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((StatusCode::CREATED, Json(state.session().register(r, client_addr.as_deref()).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyEmail {
    token: String,
}

/// `POST /auth/verify-email` `{token}`, signed in as the account the link was sent for:
/// confirms the address; answers the account.
pub(crate) async fn verify_email(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(v): Body<VerifyEmail>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(state.session().verify_email(&caller, &v.token).await?))
}

/// `GET /auth/verify-email?token=`: where the mailed link lands. Opening it changes
/// nothing (mail scanners open links too): the person confirms from their signed-in
/// session, which posts the token.
pub(crate) async fn verify_email_link() -> ([(header::HeaderName, &'static str); 2], Html<&'static str>) {
    let page = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>AMP</title></head>\
                <body><p>To confirm your email address, sign in to AMP with the account that asked for \
                this link, then confirm it there (the app posts this link's token to \
                <code>POST /auth/verify-email</code>).</p></body></html>";
    let headers =
        [(header::CONTENT_SECURITY_POLICY, "default-src 'none'"), (header::REFERRER_POLICY, "no-referrer")];
    (headers, Html(page))
}

/// `POST /auth/verify-email/send`: mails the caller a new verification link (`202`).
pub(crate) async fn send_verification(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<StatusCode, ApiError> {
    state.session().request_email_verification(&caller).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SsoLink {
    id_token: String,
}

/// `POST /auth/sso/link` `{id_token}`: links the provider identity to the signed-in
/// account (`204`).
pub(crate) async fn sso_link(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(l): Body<SsoLink>,
) -> Result<StatusCode, ApiError> {
    state.session().link_id_token(&caller, &l.id_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    email: String,
    password: String,
    #[serde(default)]
    device_id: Option<DeviceId>,
    #[serde(default)]
    device_name: Option<String>,
}

/// `POST /auth/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(client_addr): ClientAddr,
    Body(l): Body<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    let device = DeviceLogin { device: l.device_id, device_name: l.device_name, client_addr };
    Ok(Json(state.session().login(&l.email, &l.password, device).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SsoLogin {
    id_token: String,
    #[serde(default)]
    device_id: Option<DeviceId>,
    #[serde(default)]
    device_name: Option<String>,
}

/// `POST /auth/sso`: signs in with an ID token of the configured OpenID Connect provider.
pub(crate) async fn sso(
    State(state): State<AppState>,
    ClientAddr(client_addr): ClientAddr,
    Body(l): Body<SsoLogin>,
) -> Result<Json<TokenPair>, ApiError> {
    let device = DeviceLogin { device: l.device_id, device_name: l.device_name, client_addr };
    Ok(Json(state.session().login_with_id_token(&l.id_token, device).await?))
}

/// `GET /auth/saml/metadata`: AMP's SAML service-provider metadata, for the identity
/// provider's administrator. `404` when SAML is not configured.
pub(crate) async fn saml_metadata(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let xml = state.session().saml_metadata()?;
    Ok(([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml))
}

/// `GET /auth/saml/login`: `303` to the identity provider, carrying a new authentication
/// request (HTTP-Redirect binding).
pub(crate) async fn saml_login(
    State(state): State<AppState>,
    ClientAddr(client_addr): ClientAddr,
) -> Result<impl IntoResponse, ApiError> {
    let url = state.session().saml_login_url(client_addr.as_deref()).await?;
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, url), (header::CACHE_CONTROL, "no-store".to_owned())]))
}

/// `POST /auth/saml/acs`, a form with `SAMLResponse` (HTTP-POST binding): the identity
/// provider's answer, exchanged for a token pair as `/auth/sso` does.
pub(crate) async fn saml_acs(
    State(state): State<AppState>,
    ClientAddr(client_addr): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(Error::invalid_input(
            "send the SAML response as an application/x-www-form-urlencoded form",
        )
        .into());
    }
    let Some(response) = form_urlencoded::parse(&body).find(|(k, _)| k == "SAMLResponse").map(|(_, v)| v)
    else {
        return Err(Error::invalid_input("the form has no SAMLResponse field").into());
    };
    let device = DeviceLogin { device: None, device_name: Some("SAML sign-in".to_owned()), client_addr };
    let pair = state.session().login_with_saml_response(&response, device).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(pair)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Refresh {
    refresh_token: String,
}

/// `POST /auth/refresh`.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Body(r): Body<Refresh>,
) -> Result<Json<TokenPair>, ApiError> {
    Ok(Json(state.session().refresh(&r.refresh_token).await?))
}

/// `GET /auth/verify`: whether the bearer credential is valid, and whose it is.
pub(crate) async fn verify(Caller(caller): Caller) -> Json<Value> {
    Json(json!({ "valid": true, "user_id": caller.user, "auth": caller.method }))
}

/// `DELETE /auth/logout`: ends the caller's device session at once.
pub(crate) async fn logout(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<StatusCode, ApiError> {
    state.session().logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    name: String,
    #[serde(default)]
    scopes: Vec<ApiKeyScope>,
    #[serde(default)]
    daily_token_budget: Option<u64>,
}

/// `POST /auth/api-keys`: the key is in this response and nowhere else, ever.
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Body(k): Body<CreateKey>,
) -> Result<(StatusCode, Json<NewApiKey>), ApiError> {
    let key =
        state.session().create_api_key_with_budget(&caller, &k.name, &k.scopes, k.daily_token_budget).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// `GET /auth/api-keys`.
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ApiKeyRecord>>, ApiError> {
    Ok(Json(state.session().list_api_keys(&caller).await?))
}

/// `DELETE /auth/api-keys/{id}`.
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: ApiKeyId = id.parse()?;
    state.session().revoke_api_key(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
