//! Console sessions, API tokens and login-failure records.
//!
//! Credentials name their tenant in clear (`<tenant>.<secret>` cookies, `siyu_<tenant>_<secret>`
//! tokens) so every lookup is a primary-key probe that leads with `tenant_id`, like all tenant
//! data. Only SHA-256 of the secret is stored.

use serde::Serialize;
use sqlx::types::Json;
use sqlx::FromRow;
use std::time::Duration;
use uuid::Uuid;

use siyu_core::auth::{Actor, Scope};
use siyu_core::org::User;
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{ApiTokenId, TenantId, Timestamp, UserId};

use crate::audit::snapshot;
use crate::secrets::{random_secret, sha256_hex};
use crate::{audit, in_tx, on_read, on_write, Result, Store, StoreError};

/// Sessions end after this long without activity…
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// …and after this long in any case.
pub const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// Splits `<tenant-uuid-simple><sep><secret>` into its parts.
pub fn split_credential(s: &str, sep: char) -> Option<(TenantId, &str)> {
    let (t, secret) = s.split_once(sep)?;
    let tenant = Uuid::try_parse(t).ok()?;
    (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then_some((TenantId(tenant), secret))
}

pub struct NewSession {
    /// The cookie value to hand to the browser.
    pub cookie: String,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

/// A live session and its user.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub user: User,
    pub csrf_token: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub name: String,
    /// The first characters of the secret, so people can tell tokens apart.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(FromRow)]
struct TokenRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: Json<Vec<String>>,
    created_by: Option<Uuid>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for ApiToken {
    fn from(r: TokenRow) -> Self {
        ApiToken {
            id: ApiTokenId(r.id),
            name: r.name,
            prefix: r.prefix,
            scopes: r.scopes.0.iter().filter_map(|s| Scope::parse(s)).collect(),
            created_by: r.created_by.map(UserId),
            created_at: Timestamp(r.created_at),
            expires_at: r.expires_at.map(Timestamp),
            last_used_at: r.last_used_at.map(Timestamp),
            revoked_at: r.revoked_at.map(Timestamp),
        }
    }
}

#[derive(FromRow)]
struct SessionRow {
    csrf_token: String,
    expires_at: i64,
    s_created: i64,
    last_seen_at: i64,
    #[sqlx(flatten)]
    user: crate::org::UserRow,
}

const TOKEN_COLS: &str = "id, name, prefix, scopes, created_by, created_at, expires_at, last_used_at, revoked_at";

impl Store {
    // ---- sessions ------------------------------------------------------------------------

    pub async fn create_session(&self, user: &User, ip: Option<&str>, user_agent: Option<&str>) -> Result<NewSession> {
        let secret = random_secret();
        let csrf = random_secret();
        let now = self.now();
        let expires_at = now.plus(SESSION_IDLE);
        let ua: Option<String> = user_agent.map(|u| u.chars().take(200).collect());
        on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO sessions (tenant_id, secret_hash, user_id, csrf_token, ip, user_agent, created_at, expires_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $7)"
        )
        .bind(user.tenant_id.0)
        .bind(sha256_hex(&secret))
        .bind(user.id.0)
        .bind(&csrf)
        .bind(ip)
        .bind(ua)
        .bind(now.0)
        .bind(expires_at.0)
        .execute(p)
        .await?.rows_affected()
        });
        Ok(NewSession { cookie: format!("{}.{}", user.tenant_id.0.simple(), secret), csrf_token: csrf, expires_at })
    }

    /// Resolves a session cookie. Expired sessions and disabled users resolve to `None`.
    /// Activity slides the idle expiry forward, at most once a minute per session.
    pub async fn session(&self, cookie: &str) -> Result<Option<SessionInfo>> {
        let Some((tenant, secret)) = split_credential(cookie, '.') else {
            return Ok(None);
        };
        let hash = sha256_hex(secret);
        let now = self.now();
        let sql = "SELECT s.csrf_token, s.expires_at, s.created_at AS s_created, s.last_seen_at, \
                   u.tenant_id, u.id, u.login, u.display_name, u.role, u.staff_id, u.disabled, u.created_at, u.updated_at \
                   FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id \
                   WHERE s.tenant_id = $1 AND s.secret_hash = $2";
        let row: Option<SessionRow> =
            on_read!(self, |p| sqlx::query_as(sql).bind(tenant.0).bind(&hash).fetch_optional(p).await?);
        let Some(row) = row else { return Ok(None) };
        let (csrf, expires_at, created, last_seen) =
            (row.csrf_token, Timestamp(row.expires_at), Timestamp(row.s_created), Timestamp(row.last_seen_at));
        let user: User = row.user.into();
        if user.disabled || now >= expires_at || now >= created.plus(SESSION_MAX) {
            return Ok(None);
        }
        let mut expires_at = expires_at;
        if now.0 - last_seen.0 > 60_000_000 {
            expires_at = now.plus(SESSION_IDLE).min(created.plus(SESSION_MAX));
            on_write!(self, |p| {
                sqlx::query(
                    "UPDATE sessions SET last_seen_at = $3, expires_at = $4 WHERE tenant_id = $1 AND secret_hash = $2",
                )
                .bind(tenant.0)
                .bind(&hash)
                .bind(now.0)
                .bind(expires_at.0)
                .execute(p)
                .await?
                .rows_affected()
            });
        }
        Ok(Some(SessionInfo { user, csrf_token: csrf, expires_at }))
    }

    pub async fn delete_session(&self, cookie: &str) -> Result<()> {
        if let Some((tenant, secret)) = split_credential(cookie, '.') {
            on_write!(self, |p| sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND secret_hash = $2")
                .bind(tenant.0)
                .bind(sha256_hex(secret))
                .execute(p)
                .await?
                .rows_affected());
        }
        Ok(())
    }

    // ---- login throttling ----------------------------------------------------------------

    pub async fn record_login_failure(&self, tenant: TenantId, login: &str) -> Result<()> {
        let now = self.now();
        on_write!(self, |p| {
            sqlx::query("INSERT INTO login_failures (tenant_id, login, id, at) VALUES ($1, $2, $3, $4)")
                .bind(tenant.0)
                .bind(login)
                .bind(Uuid::now_v7())
                .bind(now.0)
                .execute(p)
                .await?;
            // Keep the table small: failures older than a day no longer matter to any policy.
            sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND login = $2 AND at < $3")
                .bind(tenant.0)
                .bind(login)
                .bind(now.minus(Duration::from_secs(86_400)).0)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    pub async fn login_failures_since(
        &self,
        tenant: TenantId,
        login: &str,
        since: Timestamp,
    ) -> Result<Vec<Timestamp>> {
        let v: Vec<i64> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT at FROM login_failures WHERE tenant_id = $1 AND login = $2 AND at > $3"
        )
        .bind(tenant.0)
        .bind(login)
        .bind(since.0)
        .fetch_all(p)
        .await?);
        Ok(v.into_iter().map(Timestamp).collect())
    }

    pub async fn clear_login_failures(&self, tenant: TenantId, login: &str) -> Result<()> {
        on_write!(self, |p| sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND login = $2")
            .bind(tenant.0)
            .bind(login)
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    // ---- API tokens ----------------------------------------------------------------------

    /// Creates a token and returns it with its plaintext, which is shown exactly once.
    pub async fn create_token(
        &self,
        actor: &Actor,
        name: &str,
        scopes: &[Scope],
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiToken, String)> {
        let secret = random_secret();
        let plaintext = format!("siyu_{}_{}", actor.tenant_id.0.simple(), secret);
        let now = self.now();
        let tok = ApiToken {
            id: ApiTokenId::new(),
            name: name.to_string(),
            prefix: secret[..8].to_string(),
            scopes: scopes.to_vec(),
            created_by: actor.user_id(),
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let scope_strs: Vec<String> = scopes.iter().map(|s| s.as_str().to_string()).collect();
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO api_tokens (tenant_id, id, name, prefix, secret_hash, scopes, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(actor.tenant_id.0)
            .bind(tok.id.0)
            .bind(&tok.name)
            .bind(&tok.prefix)
            .bind(sha256_hex(&secret))
            .bind(Json(&scope_strs))
            .bind(tok.created_by.map(|u| u.0))
            .bind(now.0)
            .bind(expires_at.map(|t| t.0))
            .execute(&mut *tx)
            .await?;
            audit!(tx, self, actor, "api_token.create", "api_token", tok.id, None, snapshot(&tok));
        });
        Ok((tok, plaintext))
    }

    pub async fn list_tokens(&self, tenant: TenantId, page: &PageRequest) -> Result<Page<ApiToken>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3");
        let rows: Vec<TokenRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    pub async fn token(&self, tenant: TenantId, id: ApiTokenId) -> Result<ApiToken> {
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND id = $2");
        let r: Option<TokenRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    pub async fn revoke_token(&self, actor: &Actor, id: ApiTokenId) -> Result<ApiToken> {
        let before = self.token(actor.tenant_id, id).await?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let now = self.now();
        let after = ApiToken { revoked_at: Some(now), ..before.clone() };
        in_tx!(self, |tx| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(tx, self, actor, "api_token.revoke", "api_token", id, snapshot(&before), snapshot(&after));
        });
        Ok(after)
    }

    /// Resolves a bearer token to a live (not revoked, not expired) token.
    pub async fn token_by_secret(&self, bearer: &str) -> Result<Option<(TenantId, ApiToken)>> {
        let Some(rest) = bearer.strip_prefix("siyu_") else {
            return Ok(None);
        };
        let Some((tenant, secret)) = split_credential(rest, '_') else {
            return Ok(None);
        };
        let sql = format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE tenant_id = $1 AND secret_hash = $2");
        let r: Option<TokenRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(sha256_hex(secret)).fetch_optional(p).await?);
        let Some(tok) = r.map(ApiToken::from) else {
            return Ok(None);
        };
        let now = self.now();
        if tok.revoked_at.is_some() || tok.expires_at.is_some_and(|e| now >= e) {
            return Ok(None);
        }
        // Record use at minute granularity so a busy integration does not write on every call.
        if tok.last_used_at.is_none_or(|t| now.0 - t.0 > 60_000_000) {
            on_write!(self, |p| sqlx::query(
                "UPDATE api_tokens SET last_used_at = $3 WHERE tenant_id = $1 AND id = $2"
            )
            .bind(tenant.0)
            .bind(tok.id.0)
            .bind(now.0)
            .execute(p)
            .await?
            .rows_affected());
        }
        Ok(Some((tenant, tok)))
    }
}
