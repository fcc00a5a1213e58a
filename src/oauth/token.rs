//! Requests to the token endpoint (RFC 6749 section 4 and 6, RFC 8628 for the device flow).
//!
//! Client authentication is `client_secret_post` (client id and, for confidential clients, the
//! secret in the form): Google and Microsoft both accept it, and it keeps the secret out of
//! headers that proxies log. A client with a certificate sends a signed client assertion
//! instead, a new one for each request (RFC 7523 section 2.2). A Google service account asks
//! with a signed grant assertion and no client authentication (RFC 7523 section 2.1). Responses are parsed into [`TokenResponse`], whose secrets print
//! as `***`; error responses keep only the `error` code and a bounded, cleaned description,
//! which never holds a token.

use crate::config::ServerConfig;
use crate::config::{ClientAuth, OAuth2};
use crate::jwt::SignError;
use crate::net::http::{self, HttpError, HttpUrl};
use crate::secret::Secret;
use serde_json::Value;

/// A token request that did not give tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The endpoint could not be reached or did not speak HTTP.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The endpoint answered with an OAuth error (`invalid_grant`, `authorization_pending`, …).
    #[error("{url} answered {status} {code}{}", if description.is_empty() { String::new() } else { format!(": {description}") })]
    Rejected {
        /// The endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// The OAuth `error` code.
        code: String,
        /// `error_description`, cleaned and bounded.
        description: String,
    },
    /// A success status with a body that is not a token response.
    #[error("{url}: unexpected response ({status}): {reason}")]
    BadResponse {
        /// The endpoint.
        url: String,
        /// HTTP status.
        status: u16,
        /// What was missing.
        reason: String,
    },
    /// The flow needs an endpoint the config does not have.
    #[error("{0}")]
    NotConfigured(String),
    /// The assertion could not be signed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// `grant_type` of a service account's request (RFC 7523 section 2.1).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `client_assertion_type` of a client certificate's assertion (RFC 7523 section 2.2).
pub const JWT_BEARER_CLIENT: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl TokenError {
    /// The OAuth error code, if the endpoint sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            TokenError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Tokens from a successful request.
#[derive(Debug)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: Secret,
    /// A (new) refresh token, if the provider sent one (it may rotate them).
    pub refresh_token: Option<Secret>,
    /// Lifetime in seconds.
    pub expires_in: Option<u64>,
    /// The refresh token's lifetime in seconds, where the provider states one
    /// (`refresh_token_expires_in`: Microsoft for some clients, Google for time-limited grants).
    pub refresh_expires_in: Option<u64>,
    /// Granted scopes.
    pub scope: Option<String>,
}

/// The first answer of the device flow (RFC 8628 3.2).
#[derive(Debug)]
pub struct DeviceAuthorization {
    /// Secret code the poller exchanges for tokens.
    pub device_code: Secret,
    /// The code the user types at the verification page.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same with the code filled in, if the provider offers it.
    pub verification_uri_complete: Option<String>,
    /// Seconds between polls.
    pub interval: u64,
    /// Seconds until the codes expire.
    pub expires_in: u64,
}

/// Text from the identity provider, safe to print: no control characters, at most 300 chars.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect()
}

fn number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Whether a request names and authenticates the client.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    /// Client id and secret or assertion (every flow but a service account's).
    Authenticated,
    /// Nothing: the grant assertion is the whole credential.
    Anonymous,
}

/// POSTs `params` plus, for [`Client::Authenticated`], the client's id and secret or a new
/// client assertion; the parsed JSON object on 2xx.
async fn post(
    oauth: &OAuth2,
    url: &HttpUrl,
    params: &[(&str, &str)],
    client: Client,
    server: &ServerConfig,
) -> Result<(u16, serde_json::Map<String, Value>), TokenError> {
    let mut all: Vec<(&str, &str)> = params.to_vec();
    let assertion;
    if client == Client::Authenticated {
        all.push(("client_id", &oauth.client_id));
        match &oauth.client_auth {
            ClientAuth::None => {}
            ClientAuth::Secret(secret) => all.push(("client_secret", secret.expose())),
            ClientAuth::Certificate(cert) => {
                // The audience is the token endpoint, also for the device endpoint (Entra).
                let audience = oauth.token_url.to_string();
                assertion = cert.assertion(&oauth.client_id, &audience, super::unix_now())?;
                all.push(("client_assertion_type", JWT_BEARER_CLIENT));
                all.push(("client_assertion", assertion.expose()));
            }
        }
    }
    let body = http::form(&all);
    let resp = http::post_form(
        url,
        &body,
        server.resolver,
        server.connect_timeout,
        server.upstream_timeout,
    )
    .await?;
    let parsed: Option<serde_json::Map<String, Value>> = serde_json::from_slice(&resp.body).ok();
    let status = resp.status;
    match parsed {
        Some(obj) if (200..300).contains(&status) => Ok((status, obj)),
        Some(obj) if obj.get("error").and_then(Value::as_str).is_some() => {
            Err(TokenError::Rejected {
                url: url.to_string(),
                status,
                code: clean(obj.get("error").and_then(Value::as_str).unwrap_or_default()),
                description: clean(
                    obj.get("error_description")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
            })
        }
        _ => Err(TokenError::BadResponse {
            url: url.to_string(),
            status,
            reason: "not a JSON object with tokens or an OAuth error".into(),
        }),
    }
}

/// A token request: the tokens, or why not.
async fn request(
    oauth: &OAuth2,
    params: &[(&str, &str)],
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    request_as(oauth, params, Client::Authenticated, server).await
}

/// [`request`], with or without the client's authentication.
async fn request_as(
    oauth: &OAuth2,
    params: &[(&str, &str)],
    client: Client,
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    let url = &oauth.token_url;
    let (status, obj) = post(oauth, url, params, client, server).await?;
    token_response(url, status, obj)
}

/// The tokens of a successful answer's JSON object.
fn token_response(
    url: &HttpUrl,
    status: u16,
    mut obj: serde_json::Map<String, Value>,
) -> Result<TokenResponse, TokenError> {
    let mut take = |k: &str| match obj.remove(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(Secret::new(s)),
        _ => None,
    };
    let access_token = take("access_token").ok_or_else(|| TokenError::BadResponse {
        url: url.to_string(),
        status,
        reason: "no access_token".into(),
    })?;
    let refresh_token = take("refresh_token");
    Ok(TokenResponse {
        access_token,
        refresh_token,
        expires_in: obj.get("expires_in").and_then(number),
        refresh_expires_in: obj.get("refresh_token_expires_in").and_then(number),
        scope: obj.get("scope").and_then(Value::as_str).map(clean),
    })
}

/// Renews the access token with the refresh token (RFC 6749 6).
pub async fn refresh(
    oauth: &OAuth2,
    refresh_token: &Secret,
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    request(
        oauth,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ],
        server,
    )
    .await
}

/// Exchanges an authorization code with its PKCE verifier (RFC 6749 4.1.3, RFC 7636 4.5).
pub async fn exchange_code(
    oauth: &OAuth2,
    code: &Secret,
    verifier: &Secret,
    redirect_uri: &str,
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    request(
        oauth,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("code_verifier", verifier.expose()),
            ("redirect_uri", redirect_uri),
        ],
        server,
    )
    .await
}

/// App-only tokens with the client secret or certificate (RFC 6749 4.4); Microsoft 365's
/// client credentials.
pub async fn client_credentials(
    oauth: &OAuth2,
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    if !oauth.client_auth.is_confidential() {
        return Err(TokenError::NotConfigured(
            "the client-credentials flow needs client_secret_env, client_secret_file, or client_certificate_file and client_key_file".into(),
        ));
    }
    let scope = oauth.client_credentials_scopes.join(" ");
    request(
        oauth,
        &[("grant_type", "client_credentials"), ("scope", &scope)],
        server,
    )
    .await
}

/// A service account's tokens for the account's mailbox: a new grant assertion (RFC 7523
/// section 2.1), no client authentication, no refresh token.
pub async fn jwt_bearer(
    oauth: &OAuth2,
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    let Some(key) = &oauth.service_account else {
        return Err(TokenError::NotConfigured(
            "this account has no service_account_key_file".into(),
        ));
    };
    let assertion = key.assertion(
        &oauth.account,
        &oauth.scopes.join(" "),
        &oauth.token_url.to_string(),
        super::unix_now(),
    )?;
    let params = [
        ("grant_type", JWT_BEARER_GRANT),
        ("assertion", assertion.expose()),
    ];
    request_as(oauth, &params, Client::Anonymous, server).await
}

/// Starts the device flow (RFC 8628 3.1).
pub async fn device_start(
    oauth: &OAuth2,
    server: &ServerConfig,
) -> Result<DeviceAuthorization, TokenError> {
    let Some(url) = &oauth.device_authorization_url else {
        return Err(TokenError::NotConfigured(
            "no device_authorization_url for this account (Google does not allow the mail scope in the device flow: use the browser flow)".into(),
        ));
    };
    let scope = oauth.scopes.join(" ");
    let params = [("scope", scope.as_str())];
    let (status, obj) = post(oauth, url, &params, Client::Authenticated, server).await?;
    let text = |k: &str| obj.get(k).and_then(Value::as_str).map(clean);
    let bad = |reason: &str| TokenError::BadResponse {
        url: url.to_string(),
        status,
        reason: reason.into(),
    };
    Ok(DeviceAuthorization {
        device_code: obj
            .get("device_code")
            .and_then(Value::as_str)
            .map(|s| Secret::new(s.to_owned()))
            .ok_or_else(|| bad("no device_code"))?,
        user_code: text("user_code").ok_or_else(|| bad("no user_code"))?,
        // Google spells it verification_url.
        verification_uri: text("verification_uri")
            .or_else(|| text("verification_url"))
            .ok_or_else(|| bad("no verification_uri"))?,
        verification_uri_complete: text("verification_uri_complete"),
        interval: obj
            .get("interval")
            .and_then(number)
            .unwrap_or(5)
            .clamp(1, 60),
        expires_in: obj
            .get("expires_in")
            .and_then(number)
            .unwrap_or(900)
            .clamp(1, 3600),
    })
}

/// One poll of the device flow; `authorization_pending` and `slow_down` arrive as
/// [`TokenError::Rejected`] codes for the caller's loop.
pub async fn device_poll(
    oauth: &OAuth2,
    device_code: &Secret,
    server: &ServerConfig,
) -> Result<TokenResponse, TokenError> {
    request(
        oauth,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code.expose()),
        ],
        server,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TokenResponse, TokenError> {
        let url = HttpUrl::parse("https://login.example/token").expect("url");
        token_response(
            &url,
            200,
            serde_json::from_str(json).expect("a JSON object"),
        )
    }

    /// `refresh_token_expires_in` as a number (Microsoft) or a string (as some providers send
    /// `expires_in`); absent or unreadable: unknown.
    #[test]
    fn refresh_token_lifetime_is_read_as_number_or_string() {
        let r = parse(r#"{"access_token":"a","refresh_token":"r","expires_in":3599,"refresh_token_expires_in":86399}"#).unwrap();
        assert_eq!(
            (r.expires_in, r.refresh_expires_in),
            (Some(3599), Some(86399))
        );
        let r = parse(
            r#"{"access_token":"a","expires_in":"3599","refresh_token_expires_in":" 604799 "}"#,
        )
        .unwrap();
        assert_eq!(
            (r.expires_in, r.refresh_expires_in),
            (Some(3599), Some(604799))
        );
        assert!(r.refresh_token.is_none());
        for odd in [r#""soon""#, "-5", "1.5", "null", "{}"] {
            let json = format!(r#"{{"access_token":"a","refresh_token_expires_in":{odd}}}"#);
            assert_eq!(parse(&json).unwrap().refresh_expires_in, None, "{odd}");
        }
        let r = parse(r#"{"access_token":"a"}"#).unwrap();
        assert_eq!(r.refresh_expires_in, None);
        assert!(matches!(
            parse(r#"{"refresh_token_expires_in":5}"#),
            Err(TokenError::BadResponse { .. })
        ));
    }
}
