//! `Idempotency-Key` records: the first response to a keyed POST is stored and replayed for
//! repeats, so a client retrying after a timeout never creates a thing twice.
//!
//! Keys are scoped per tenant and per actor (user or token): two integrations choosing the
//! same key never see each other's responses. A key is claimed by inserting its row before
//! the handler runs; a concurrent repeat finds the row without a response and is told the
//! first request is still in flight.

use std::time::Duration;

use siyu_core::{TenantId, Timestamp};

use base64::Engine;

use crate::{on_read, on_write, Result, Store};

fn body_aad(tenant: TenantId, actor_key: &str, key: &str) -> String {
    format!("{tenant}|{actor_key}|{key}|idempotent-response")
}

/// A claim older than this without a response belongs to a request that died; it may be
/// taken over.
pub const STALE_CLAIM: Duration = Duration::from_secs(120);
/// Stored responses are kept this long.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Which key: a tenant's, an actor's, and the client's chosen string.
#[derive(Clone, Copy, Debug)]
pub struct KeyRef<'a> {
    pub tenant: TenantId,
    pub actor_key: &'a str,
    pub key: &'a str,
}

/// Names one claim of a key, so only the request holding it can complete or release it
/// (a request that took over a stale claim must not be undone by the original one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimToken(i64);

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key: run the request, then [`Store::idempotency_complete`] or
    /// [`Store::idempotency_abandon`] with this claim's token.
    Fresh(ClaimToken),
    /// The key was used before with the same request: replay this response.
    Replay { status: u16, content_type: String, body: Vec<u8> },
    /// The first request with this key has not finished yet.
    InProgress,
    /// The key was used before with a different request body or path.
    Mismatch,
}

/// `(request_hash, status_code, content_type, response_body, created_at)`.
type KeyRow = (String, Option<i32>, Option<String>, Option<Vec<u8>>, i64);

impl Store {
    pub async fn idempotency_claim(
        &self,
        tenant: TenantId,
        actor_key: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Claim> {
        let now = self.now();
        let inserted = on_write!(self, |p| {
            sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, actor_key, key, request_hash, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
        )
        .bind(tenant.0)
        .bind(actor_key)
        .bind(key)
        .bind(request_hash)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected()
        });
        if inserted == 1 {
            return Ok(Claim::Fresh(ClaimToken(now.0)));
        }
        let row: Option<KeyRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT request_hash, status_code, content_type, response_body, created_at FROM idempotency_keys WHERE tenant_id = $1 AND actor_key = $2 AND key = $3"
        )
        .bind(tenant.0)
        .bind(actor_key)
        .bind(key)
        .fetch_optional(p)
        .await?
        });
        let Some((hash, status, ct, body, created)) = row else {
            // Deleted between our insert attempt and read (an abandoned claim): try again once.
            return Box::pin(self.idempotency_claim(tenant, actor_key, key, request_hash)).await;
        };
        if hash != request_hash {
            return Ok(Claim::Mismatch);
        }
        match status {
            Some(s) => {
                // Stored responses are sealed: one may hold a secret that is shown only once.
                let sealed =
                    String::from_utf8(body.unwrap_or_default()).map_err(|_| crate::secrets::SealError::Open)?;
                let b64 = self.sealer.open(&body_aad(tenant, actor_key, key), &sealed)?;
                let body = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| crate::secrets::SealError::Open)?;
                Ok(Claim::Replay { status: s as u16, content_type: ct.unwrap_or_default(), body })
            }
            None if Timestamp(created) < now.minus(STALE_CLAIM) => {
                // Take over a claim whose request died; the conditional update lets one taker win.
                let n = on_write!(self, |p| {
                    sqlx::query(
                    "UPDATE idempotency_keys SET created_at = $5 WHERE tenant_id = $1 AND actor_key = $2 AND key = $3 AND created_at = $4 AND status_code IS NULL"
                )
                .bind(tenant.0)
                .bind(actor_key)
                .bind(key)
                .bind(created)
                .bind(now.0)
                .execute(p)
                .await?
                .rows_affected()
                });
                Ok(if n == 1 { Claim::Fresh(ClaimToken(now.0)) } else { Claim::InProgress })
            }
            None => Ok(Claim::InProgress),
        }
    }

    pub async fn idempotency_complete(
        &self,
        k: KeyRef<'_>,
        claim: ClaimToken,
        status: u16,
        content_type: &str,
        body: &[u8],
    ) -> Result<()> {
        let (tenant, actor_key, key) = (k.tenant, k.actor_key, k.key);
        let sealed = self
            .sealer
            .seal(&body_aad(tenant, actor_key, key), &base64::engine::general_purpose::STANDARD.encode(body));
        on_write!(self, |p| {
            sqlx::query(
            "UPDATE idempotency_keys SET status_code = $4, content_type = $5, response_body = $6 WHERE tenant_id = $1 AND actor_key = $2 AND key = $3 AND created_at = $7 AND status_code IS NULL"
        )
        .bind(tenant.0)
        .bind(actor_key)
        .bind(key)
        .bind(status as i32)
        .bind(content_type)
        .bind(sealed.as_bytes())
        .bind(claim.0)
        .execute(p)
        .await?.rows_affected()
        });
        Ok(())
    }

    /// Releases a claim whose request failed on the server side, so a retry runs afresh.
    pub async fn idempotency_abandon(&self, k: KeyRef<'_>, claim: ClaimToken) -> Result<()> {
        let (tenant, actor_key, key) = (k.tenant, k.actor_key, k.key);
        on_write!(self, |p| {
            sqlx::query("DELETE FROM idempotency_keys WHERE tenant_id = $1 AND actor_key = $2 AND key = $3 AND created_at = $4 AND status_code IS NULL")
            .bind(tenant.0)
            .bind(actor_key)
            .bind(key)
            .bind(claim.0)
            .execute(p)
            .await?.rows_affected()
        });
        Ok(())
    }

    /// Deletes stored responses past retention; run by the `system.housekeeping` job.
    pub async fn purge_idempotency_keys(&self) -> Result<u64> {
        let cutoff = self.now().minus(RETENTION);
        let n = on_write!(self, |p| sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(cutoff.0)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n)
    }
}
