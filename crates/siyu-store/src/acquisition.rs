//! Channel live codes (渠道活码) in exact mode: codes and their members' WeCom contact ways,
//! the scan that reserves one unit of a member's capacity, reservations lapsing, and
//! the add that consumes one or counts anew. The rules are in
//! `siyu_core::acquisition::live_code`; WeCom is spoken by the web layer's gateway.
//!
//! Caps hold exactly because every unit is taken by a conditional update of a counter row per
//! code, member and local day (`used < cap`), and the code's own row (empty userid) when it
//! has a daily cap, in the same transaction as the reservation and the scan record.
//!
//! Short links (短链) live here too: codes, hits, PV and UV.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::types::Json;
use uuid::Uuid;

use siyu_core::acquisition::live_code::{
    exact_order, local_weekday_minute, state_for, LiveCodeInput, Tier, RESERVATION_SECS,
};
use siyu_core::acquisition::short_link::{code_from, ShortLinkInput};
use siyu_core::auth::Actor;
use siyu_core::{LiveCodeId, ShortLinkId, TenantId, Timestamp, WecomAppId};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, on_write, Result, Store, StoreError};

#[derive(Clone, Debug, Serialize)]
pub struct LiveCodeMember {
    pub userid: String,
    pub config_id: String,
    /// The member's single-member QR, as WeCom serves it.
    pub qr_code: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LiveCode {
    pub id: LiveCodeId,
    pub state: String,
    pub name: String,
    pub app_id: WecomAppId,
    pub config: LiveCodeInput,
    /// `syncing` (WeCom codes being created), `active`, `paused` or `failed`.
    pub status: String,
    pub members: Vec<LiveCodeMember>,
    pub created_at: Timestamp,
}

/// One member's day on a code.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MemberDay {
    pub userid: String,
    /// Adds plus reservations still waiting for their add.
    pub used: i64,
    pub adds: i64,
    pub over_cap: i64,
}

/// What a scan of the landing page got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scan {
    Assigned {
        userid: String,
        tier: Tier,
        qr_code: String,
        /// The member's name in siyu's staff records.
        staff_name: String,
        code_name: String,
    },
    Paused,
    Expired,
    /// The code's own daily cap is reached.
    Exhausted,
}

impl Scan {
    fn outcome(&self) -> &'static str {
        match self {
            Scan::Assigned { .. } => "assigned",
            Scan::Paused => "paused",
            Scan::Expired => "expired",
            Scan::Exhausted => "exhausted",
        }
    }
}

/// An add carrying a live code's state.
#[derive(Clone, Debug)]
pub struct Added {
    pub code: LiveCode,
    pub day: i64,
    /// False for a re-add of the same customer to the same member on the same day.
    pub counted: bool,
    /// The member was past the cap when this add arrived (a late add; never refused).
    pub over_cap: bool,
}

/// Per code and local day.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CodeDay {
    pub day: i64,
    pub scans: i64,
    pub adds: i64,
    /// Of that day's adds, relationships since deleted (by the customer or the member): the
    /// day's net adds are `adds - lost`.
    pub lost: i64,
}

type CodeRow = (Uuid, String, String, Uuid, Json<LiveCodeInput>, String, i64);

impl Store {
    async fn tenant_offset(&self, tenant: TenantId) -> Result<i8> {
        Ok(self.tenant(tenant).await?.offset_hours())
    }

    /// Records a new code with its never-reused state, in `syncing` until its members'
    /// WeCom contact ways are attached with [`Store::attach_live_code_members`].
    pub async fn create_live_code(&self, actor: &Actor, app: WecomAppId, input: &LiveCodeInput) -> Result<LiveCode> {
        let tenant = actor.tenant_id;
        let id = LiveCodeId::new();
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant.0)
                .execute(&mut *tx)
                .await?;
            let serial: i64 = sqlx::query_scalar(
                "SELECT CAST(COALESCE(MAX(serial), 0) + 1 AS BIGINT) FROM live_codes WHERE tenant_id = $1",
            )
            .bind(tenant.0)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO live_codes (tenant_id, id, serial, state, name, app_id, config, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'syncing', $8, $8)",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(serial)
            .bind(state_for(serial as u64))
            .bind(&input.name)
            .bind(app.0)
            .bind(Json(input))
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            audit!(tx, self, actor, "live_code.create", "live_code", id, None, snapshot(input));
        });
        self.live_code(tenant, id).await
    }

    /// Attaches the members' contact ways and opens the code (or marks it `failed` with none).
    pub async fn attach_live_code_members(
        &self,
        tenant: TenantId,
        id: LiveCodeId,
        members: &[LiveCodeMember],
        status: &str,
    ) -> Result<LiveCode> {
        let now = self.now();
        in_tx!(self, |tx| {
            for m in members {
                sqlx::query(
                    "INSERT INTO live_code_members (tenant_id, code_id, userid, config_id, qr_code) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, code_id, userid) DO UPDATE SET config_id = excluded.config_id, qr_code = excluded.qr_code",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(&m.userid)
                .bind(&m.config_id)
                .bind(&m.qr_code)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE live_codes SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(status)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
        });
        self.live_code(tenant, id).await
    }

    fn code_of(r: CodeRow, members: Vec<LiveCodeMember>) -> LiveCode {
        LiveCode {
            id: LiveCodeId(r.0),
            state: r.1,
            name: r.2,
            app_id: WecomAppId(r.3),
            config: r.4 .0,
            status: r.5,
            members,
            created_at: Timestamp(r.6),
        }
    }

    async fn code_members(&self, tenant: TenantId, id: LiveCodeId) -> Result<Vec<LiveCodeMember>> {
        let rows: Vec<(String, String, String)> = on_read!(self, |p| sqlx::query_as(
            "SELECT userid, config_id, qr_code FROM live_code_members WHERE tenant_id = $1 AND code_id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|(userid, config_id, qr_code)| LiveCodeMember { userid, config_id, qr_code }).collect())
    }

    pub async fn live_code(&self, tenant: TenantId, id: LiveCodeId) -> Result<LiveCode> {
        let r: Option<CodeRow> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT id, state, name, app_id, config, status, created_at FROM live_codes WHERE tenant_id = $1 AND id = $2"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_optional(p)
        .await?
        });
        let r = r.ok_or(StoreError::NotFound)?;
        Ok(Self::code_of(r, self.code_members(tenant, id).await?))
    }

    /// Codes, newest first (at most 200).
    pub async fn live_codes(&self, tenant: TenantId) -> Result<Vec<LiveCode>> {
        let rows: Vec<CodeRow> = on_read!(self, |p| sqlx::query_as(
            "SELECT id, state, name, app_id, config, status, created_at FROM live_codes WHERE tenant_id = $1 \
             ORDER BY serial DESC LIMIT 200"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let members = self.code_members(tenant, LiveCodeId(r.0)).await?;
            out.push(Self::code_of(r, members));
        }
        Ok(out)
    }

    /// Pauses (`paused`) or resumes (`active`) an open code.
    pub async fn set_live_code_status(&self, actor: &Actor, id: LiveCodeId, status: &str) -> Result<LiveCode> {
        let tenant = actor.tenant_id;
        let now = self.now();
        // Another tenant's code, or none: not found, never "not open".
        self.live_code(tenant, id).await?;
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE live_codes SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 \
                 AND status IN ('active', 'paused')",
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(status)
            .bind(now.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Rejected {
                    code: "live_code_not_open",
                    field: None,
                    message: "only an active or paused code can be paused or resumed".into(),
                });
            }
            audit!(
                tx,
                self,
                actor,
                &format!("live_code.{status}"),
                "live_code",
                id,
                None,
                Some(serde_json::json!({"status": status}))
            );
        });
        self.live_code(tenant, id).await
    }

    /// A scan of the landing page: picks the member and reserves one unit of their
    /// capacity for today, or says why not; every scan is recorded with its source and
    /// user agent. `offset_hours` is the tenant's zone; `rotation` spreads concurrent
    /// scans over members with equal loads. The hot path: four reads and one transaction.
    pub async fn scan_live_code(
        &self,
        tenant: TenantId,
        id: LiveCodeId,
        offset_hours: i8,
        source: Option<&str>,
        user_agent: Option<&str>,
        rotation: u64,
    ) -> Result<Scan> {
        let code = self.live_code(tenant, id).await?;
        let now = self.now();
        let day = now.local_day(offset_hours);
        let c = &code.config;
        let source = source.map(|s| s.chars().take(200).collect::<String>());
        let user_agent = user_agent.map(|s| s.chars().take(300).collect::<String>());
        // One statement text for both backends, so a macro rather than a closure.
        macro_rules! scan_row {
            ($outcome:expr, $userid:expr, $tier:expr) => {
                sqlx::query(
                "INSERT INTO live_code_scans (tenant_id, id, code_id, at, day, outcome, userid, tier, source, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(tenant.0)
            .bind(Uuid::now_v7())
            .bind(id.0)
            .bind(now.0)
            .bind(day)
            .bind($outcome)
            .bind($userid.map(str::to_string))
            .bind($tier.map(Tier::as_str))
            .bind(source.clone())
            .bind(user_agent.clone())
            };
        }
        let blocked = if code.status != "active" {
            Some(Scan::Paused)
        } else if c.expires_at.is_some_and(|e| e <= now) {
            Some(Scan::Expired)
        } else {
            None
        };
        if let Some(b) = blocked {
            on_write!(self, |p| scan_row!(b.outcome(), None::<&str>, None::<Tier>).execute(p).await?.rows_affected());
            return Ok(b);
        }
        let (weekday, minute) = local_weekday_minute(now, offset_hours);
        let on_duty = c.on_duty(weekday, minute);
        let used: HashMap<String, i64> = on_read!(self, |p| sqlx::query_as::<_, (String, i64)>(
            "SELECT userid, used FROM live_code_days WHERE tenant_id = $1 AND code_id = $2 AND day = $3"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(day)
        .fetch_all(p)
        .await?)
        .into_iter()
        .collect();
        // Members with a contact way of this code and an active staff record, with their names.
        let active: HashMap<String, String> = on_read!(self, |p| sqlx::query_as::<_, (String, String)>(
            "SELECT s.wecom_userid, s.name FROM live_code_members m JOIN staff s ON s.tenant_id = m.tenant_id \
             AND s.wecom_userid = m.userid WHERE m.tenant_id = $1 AND m.code_id = $2 AND s.status = 'active'"
        )
        .bind(tenant.0)
        .bind(id.0)
        .fetch_all(p)
        .await?)
        .into_iter()
        .collect();
        let with_code = |u: &str| active.contains_key(u);
        let order = exact_order(&on_duty, &c.backup, &c.fallback, &with_code, &used, c.daily_cap, rotation);
        // The counter rows exist before the transaction, so it needs only conditional UPDATEs:
        // on PostgreSQL a refused UPDATE keeps no lock (a refused upsert would, and scans trying
        // members in different orders would deadlock). A transaction then holds at most the
        // code's row and one member's, always in that order. After a day's first scans every
        // row exists and this writes nothing.
        let mut missing: Vec<&str> = order.iter().map(|(u, _)| u.as_str()).filter(|u| !used.contains_key(*u)).collect();
        if c.code_cap.is_some() && !used.contains_key("") {
            missing.push("");
        }
        for who in missing {
            on_write!(self, |p| {
                sqlx::query(
                "INSERT INTO live_code_days (tenant_id, code_id, userid, day) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING"
            )
            .bind(tenant.0)
            .bind(id.0)
            .bind(who)
            .bind(day)
            .execute(p)
            .await?
            .rows_affected()
            });
        }
        let took: Option<(String, Tier)> = in_tx!(self, |tx| {
            let mut open = true;
            if let Some(cap) = c.code_cap {
                let n = sqlx::query(
                    "UPDATE live_code_days SET used = used + 1 WHERE tenant_id = $1 AND code_id = $2 AND userid = '' \
                     AND day = $3 AND used < $4",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(day)
                .bind(cap)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                open = n == 1;
            }
            let mut took = None;
            for (userid, tier) in order.iter().filter(|_| open) {
                // The fallback takes the scan whatever their count (A-2 step 3).
                let cap = if *tier == Tier::Fallback { i64::MAX } else { c.daily_cap };
                let n = sqlx::query(
                    "UPDATE live_code_days SET used = used + 1 WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
                     AND day = $4 AND used < $5",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(userid)
                .bind(day)
                .bind(cap)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    took = Some((userid.clone(), *tier));
                    break;
                }
            }
            if let Some((userid, tier)) = &took {
                sqlx::query(
                    "INSERT INTO live_code_reservations (tenant_id, id, code_id, userid, day, status, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, 'live', $6, $7)",
                )
                .bind(tenant.0)
                .bind(Uuid::now_v7())
                .bind(id.0)
                .bind(userid)
                .bind(day)
                .bind(now.0)
                .bind(now.0 + RESERVATION_SECS * 1_000_000)
                .execute(&mut *tx)
                .await?;
                scan_row!("assigned", Some(userid.as_str()), Some(*tier)).execute(&mut *tx).await?;
            } else {
                scan_row!("exhausted", None::<&str>, None::<Tier>).execute(&mut *tx).await?;
            }
            took
        });
        let Some((userid, tier)) = took else { return Ok(Scan::Exhausted) };
        let qr_code = code.members.iter().find(|m| m.userid == userid).map(|m| m.qr_code.clone()).unwrap_or_default();
        let staff_name = active.get(&userid).cloned().unwrap_or_else(|| userid.clone());
        Ok(Scan::Assigned { userid, tier, qr_code, staff_name, code_name: code.name })
    }

    /// Reservations whose add never came give their unit back, once each. Returns how many.
    pub async fn lapse_live_code_reservations(&self) -> Result<usize> {
        let now = self.now();
        let due: Vec<(Uuid, Uuid, Uuid, String, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT tenant_id, id, code_id, userid, day FROM live_code_reservations WHERE status = 'live' \
             AND expires_at <= $1 LIMIT 1000"
        )
        .bind(now.0)
        .fetch_all(p)
        .await?);
        let mut lapsed = 0;
        for (tenant, rid, code, userid, day) in due {
            let n = in_tx!(self, |tx| {
                let n = sqlx::query(
                    "UPDATE live_code_reservations SET status = 'lapsed' WHERE tenant_id = $1 AND id = $2 AND status = 'live'",
                )
                .bind(tenant)
                .bind(rid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 1 {
                    for who in ["", userid.as_str()] {
                        sqlx::query(
                            "UPDATE live_code_days SET used = used - 1 WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
                             AND day = $4 AND used > 0",
                        )
                        .bind(tenant)
                        .bind(code)
                        .bind(who)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                n
            });
            lapsed += n as usize;
        }
        Ok(lapsed)
    }

    /// An add carrying `state` for member `userid` at `at`: `None` when no code has that state.
    /// The first add of a customer to a member on a day counts: it consumes the oldest
    /// live reservation for the member, or, late or direct, takes a unit of its own, marked
    /// `over_cap` when the member was already full. A repeat counts nothing.
    pub async fn live_code_added(
        &self,
        tenant: TenantId,
        state: &str,
        userid: &str,
        external: &str,
        at: Timestamp,
    ) -> Result<Option<Added>> {
        let id: Option<Uuid> =
            on_read!(self, |p| sqlx::query_scalar("SELECT id FROM live_codes WHERE tenant_id = $1 AND state = $2")
                .bind(tenant.0)
                .bind(state)
                .fetch_optional(p)
                .await?);
        let Some(id) = id else { return Ok(None) };
        let code = self.live_code(tenant, LiveCodeId(id)).await?;
        let day = at.local_day(self.tenant_offset(tenant).await?);
        let cap = code.config.daily_cap;
        let (counted, over_cap) = in_tx!(self, |tx| {
            let fresh = sqlx::query(
                "INSERT INTO live_code_adds (tenant_id, code_id, userid, external_userid, day, at, over_cap) \
                 VALUES ($1, $2, $3, $4, $5, $6, FALSE) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.0)
            .bind(id)
            .bind(userid)
            .bind(external)
            .bind(day)
            .bind(at.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if fresh == 0 {
                (false, false)
            } else {
                // Rows are locked in the order scans lock them (the code's, then the member's).
                if code.config.code_cap.is_some() {
                    sqlx::query(
                        "INSERT INTO live_code_days (tenant_id, code_id, userid, day) VALUES ($1, $2, '', $3) \
                         ON CONFLICT (tenant_id, code_id, userid, day) DO UPDATE SET used = live_code_days.used",
                    )
                    .bind(tenant.0)
                    .bind(id)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                }
                // Concurrent adds for one member queue on its row, so each takes a different
                // reservation.
                sqlx::query(
                    "INSERT INTO live_code_days (tenant_id, code_id, userid, day) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, code_id, userid, day) DO UPDATE SET adds = live_code_days.adds",
                )
                .bind(tenant.0)
                .bind(id)
                .bind(userid)
                .bind(day)
                .execute(&mut *tx)
                .await?;
                let consumed = sqlx::query(
                    "UPDATE live_code_reservations SET status = 'used' WHERE tenant_id = $1 AND id = \
                     (SELECT id FROM live_code_reservations WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
                      AND status = 'live' ORDER BY created_at LIMIT 1) AND status = 'live'",
                )
                .bind(tenant.0)
                .bind(id)
                .bind(userid)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let over = if consumed == 1 {
                    sqlx::query(
                        "UPDATE live_code_days SET adds = adds + 1 WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
                         AND day = $4",
                    )
                    .bind(tenant.0)
                    .bind(id)
                    .bind(userid)
                    .bind(day)
                    .execute(&mut *tx)
                    .await?;
                    false
                } else {
                    let used: i64 = sqlx::query_scalar(
                        "UPDATE live_code_days SET used = used + 1, adds = adds + 1 WHERE tenant_id = $1 AND code_id = $2 \
                         AND userid = $3 AND day = $4 RETURNING used",
                    )
                    .bind(tenant.0)
                    .bind(id)
                    .bind(userid)
                    .bind(day)
                    .fetch_one(&mut *tx)
                    .await?;
                    if code.config.code_cap.is_some() {
                        sqlx::query(
                            "UPDATE live_code_days SET used = used + 1 WHERE tenant_id = $1 AND code_id = $2 AND userid = '' \
                             AND day = $3",
                        )
                        .bind(tenant.0)
                        .bind(id)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let over = userid != code.config.fallback && used > cap;
                    if over {
                        sqlx::query(
                            "UPDATE live_code_days SET over_cap = over_cap + 1 WHERE tenant_id = $1 AND code_id = $2 \
                             AND userid = $3 AND day = $4",
                        )
                        .bind(tenant.0)
                        .bind(id)
                        .bind(userid)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query(
                            "UPDATE live_code_adds SET over_cap = TRUE WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
                             AND external_userid = $4 AND day = $5",
                        )
                        .bind(tenant.0)
                        .bind(id)
                        .bind(userid)
                        .bind(external)
                        .bind(day)
                        .execute(&mut *tx)
                        .await?;
                    }
                    over
                };
                (true, over)
            }
        });
        Ok(Some(Added { code, day, counted, over_cap }))
    }

    /// What became of an add's welcome: `sent`, `expired` (past WeCom's 20 s), `no_code`
    /// (the event had no welcome code, A-13) or `failed: …`.
    pub async fn set_live_code_welcome(
        &self,
        tenant: TenantId,
        code: LiveCodeId,
        userid: &str,
        external: &str,
        day: i64,
        outcome: &str,
    ) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "UPDATE live_code_adds SET welcome = $6 WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
             AND external_userid = $4 AND day = $5"
        )
        .bind(tenant.0)
        .bind(code.0)
        .bind(userid)
        .bind(external)
        .bind(day)
        .bind(outcome)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// A customer's name as last read from WeCom, for a welcome's `{customer_name}`.
    pub async fn wecom_contact_name(&self, tenant: TenantId, external: &str) -> Result<Option<String>> {
        Ok(on_read!(self, |p| sqlx::query_scalar(
            "SELECT name FROM wecom_contacts WHERE tenant_id = $1 AND external_userid = $2"
        )
        .bind(tenant.0)
        .bind(external)
        .fetch_optional(p)
        .await?))
    }

    /// Whether an add's welcome was already dealt with (a retried event sends none twice).
    pub async fn live_code_welcome(
        &self,
        tenant: TenantId,
        code: LiveCodeId,
        userid: &str,
        external: &str,
        day: i64,
    ) -> Result<Option<String>> {
        let w: Option<Option<String>> = on_read!(self, |p| sqlx::query_scalar(
            "SELECT welcome FROM live_code_adds WHERE tenant_id = $1 AND code_id = $2 AND userid = $3 \
             AND external_userid = $4 AND day = $5"
        )
        .bind(tenant.0)
        .bind(code.0)
        .bind(userid)
        .bind(external)
        .bind(day)
        .fetch_optional(p)
        .await?);
        Ok(w.flatten())
    }

    /// Each member's counters on a code for a local day.
    pub async fn live_code_day(&self, tenant: TenantId, id: LiveCodeId, day: i64) -> Result<Vec<MemberDay>> {
        let rows: Vec<(String, i64, i64, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT userid, used, adds, over_cap FROM live_code_days WHERE tenant_id = $1 AND code_id = $2 AND day = $3 \
             AND userid <> '' ORDER BY userid"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(day)
        .fetch_all(p)
        .await?
        });
        Ok(rows.into_iter().map(|(userid, used, adds, over_cap)| MemberDay { userid, used, adds, over_cap }).collect())
    }

    /// Scans and counted adds per local day, the last `days` days up to `today`.
    pub async fn live_code_days(
        &self,
        tenant: TenantId,
        id: LiveCodeId,
        today: i64,
        days: i64,
    ) -> Result<Vec<CodeDay>> {
        let from = today - days + 1;
        let scans: Vec<(i64, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT day, CAST(COUNT(*) AS BIGINT) FROM live_code_scans WHERE tenant_id = $1 AND code_id = $2 \
             AND day BETWEEN $3 AND $4 GROUP BY day"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(from)
        .bind(today)
        .fetch_all(p)
        .await?);
        let adds: Vec<(i64, i64, i64)> = on_read!(self, |p| {
            sqlx::query_as(
            "SELECT a.day, CAST(COUNT(*) AS BIGINT), CAST(COALESCE(SUM(CASE WHEN r.status IN \
             ('deleted_by_customer', 'deleted_by_staff') THEN 1 ELSE 0 END), 0) AS BIGINT) FROM live_code_adds a \
             LEFT JOIN wecom_relationships r ON r.tenant_id = a.tenant_id AND r.external_userid = a.external_userid \
             AND r.userid = a.userid WHERE a.tenant_id = $1 AND a.code_id = $2 AND a.day BETWEEN $3 AND $4 GROUP BY a.day"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(from)
        .bind(today)
        .fetch_all(p)
        .await?
        });
        Ok((from..=today)
            .map(|day| CodeDay {
                day,
                scans: scans.iter().find(|s| s.0 == day).map_or(0, |s| s.1),
                adds: adds.iter().find(|s| s.0 == day).map_or(0, |s| s.1),
                lost: adds.iter().find(|s| s.0 == day).map_or(0, |s| s.2),
            })
            .collect())
    }
}

/// A short link (短链) with its totals.
#[derive(Clone, Debug, Serialize)]
pub struct ShortLink {
    pub id: ShortLinkId,
    pub tenant_id: TenantId,
    pub code: String,
    pub name: String,
    pub config: ShortLinkInput,
    /// `active` or `disabled`.
    pub status: String,
    pub pv: i64,
    /// Distinct visitors per day, summed over days.
    pub uv: i64,
    pub created_at: Timestamp,
}

/// Hits of a link on one local day.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LinkDay {
    pub day: i64,
    pub pv: i64,
    pub uv: i64,
}

type LinkRow = (Uuid, Uuid, String, String, Json<ShortLinkInput>, String, i64, i64, i64);

const LINK_COLS: &str = "l.id, l.tenant_id, l.code, l.name, l.config, l.status, \
    CAST((SELECT COUNT(*) FROM short_link_hits h WHERE h.tenant_id = l.tenant_id AND h.link_id = l.id) AS BIGINT), \
    CAST((SELECT COUNT(*) FROM (SELECT DISTINCT h.day, h.visitor FROM short_link_hits h \
      WHERE h.tenant_id = l.tenant_id AND h.link_id = l.id) v) AS BIGINT), l.created_at";

fn link_of(r: LinkRow) -> ShortLink {
    ShortLink {
        id: ShortLinkId(r.0),
        tenant_id: TenantId(r.1),
        code: r.2,
        name: r.3,
        config: r.4 .0,
        status: r.5,
        pv: r.6,
        uv: r.7,
        created_at: Timestamp(r.8),
    }
}

impl Store {
    /// Creates a link under a fresh random code (drawn again on the rare collision).
    pub async fn create_short_link(&self, actor: &Actor, input: &ShortLinkInput) -> Result<ShortLink> {
        let tenant = actor.tenant_id;
        let id = ShortLinkId::new();
        let now = self.now();
        for _ in 0..5 {
            let code = code_from(rand::random());
            let made = in_tx!(self, |tx| {
                let r = sqlx::query(
                    "INSERT INTO short_links (tenant_id, id, code, name, config, status, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 'active', $6, $6)",
                )
                .bind(tenant.0)
                .bind(id.0)
                .bind(&code)
                .bind(&input.name)
                .bind(Json(input))
                .bind(now.0)
                .execute(&mut *tx)
                .await;
                match r {
                    Ok(_) => {
                        audit!(tx, self, actor, "short_link.create", "short_link", id, None, snapshot(input));
                        true
                    }
                    Err(e) => match StoreError::constraint(e, "code") {
                        StoreError::Duplicate(_) => false,
                        other => return Err(other),
                    },
                }
            });
            if made {
                return self.short_link(tenant, id).await;
            }
        }
        Err(StoreError::Conflict("could not draw a free short-link code".into()))
    }

    pub async fn short_link(&self, tenant: TenantId, id: ShortLinkId) -> Result<ShortLink> {
        let sql = format!("SELECT {LINK_COLS} FROM short_links l WHERE l.tenant_id = $1 AND l.id = $2");
        let r: Option<LinkRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(link_of).ok_or(StoreError::NotFound)
    }

    /// Links, newest first (at most 200).
    pub async fn short_links(&self, tenant: TenantId) -> Result<Vec<ShortLink>> {
        let sql = format!("SELECT {LINK_COLS} FROM short_links l WHERE l.tenant_id = $1 ORDER BY l.id DESC LIMIT 200");
        let rows: Vec<LinkRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).fetch_all(p).await?);
        Ok(rows.into_iter().map(link_of).collect())
    }

    /// The link behind a public code, whatever its tenant.
    pub async fn short_link_by_code(&self, code: &str) -> Result<Option<ShortLink>> {
        let sql = format!("SELECT {LINK_COLS} FROM short_links l WHERE l.code = $1");
        let r: Option<LinkRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(code).fetch_optional(p).await?);
        Ok(r.map(link_of))
    }

    /// Records a hit; `visitor` is already a keyed hash (no address is stored).
    pub async fn record_short_link_hit(
        &self,
        tenant: TenantId,
        link: ShortLinkId,
        day: i64,
        client: &str,
        referrer: Option<&str>,
        visitor: &str,
    ) -> Result<()> {
        on_write!(self, |p| sqlx::query(
            "INSERT INTO short_link_hits (tenant_id, id, link_id, at, day, client, referrer, visitor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(tenant.0)
        .bind(Uuid::now_v7())
        .bind(link.0)
        .bind(self.now().0)
        .bind(day)
        .bind(client)
        .bind(referrer.map(|r| r.chars().take(300).collect::<String>()))
        .bind(visitor)
        .execute(p)
        .await?
        .rows_affected());
        Ok(())
    }

    /// Disables (`disabled`) or re-enables (`active`) a link.
    pub async fn set_short_link_status(&self, actor: &Actor, id: ShortLinkId, status: &str) -> Result<ShortLink> {
        let tenant = actor.tenant_id;
        self.short_link(tenant, id).await?;
        let now = self.now();
        in_tx!(self, |tx| {
            sqlx::query("UPDATE short_links SET status = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.0)
                .bind(id.0)
                .bind(status)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            audit!(
                tx,
                self,
                actor,
                &format!("short_link.{status}"),
                "short_link",
                id,
                None,
                Some(serde_json::json!({"status": status}))
            );
        });
        self.short_link(tenant, id).await
    }

    /// PV and UV per local day, the last `days` days up to `today`.
    pub async fn short_link_days(
        &self,
        tenant: TenantId,
        id: ShortLinkId,
        today: i64,
        days: i64,
    ) -> Result<Vec<LinkDay>> {
        let from = today - days + 1;
        let rows: Vec<(i64, i64, i64)> = on_read!(self, |p| sqlx::query_as(
            "SELECT day, CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT visitor) AS BIGINT) FROM short_link_hits \
             WHERE tenant_id = $1 AND link_id = $2 AND day BETWEEN $3 AND $4 GROUP BY day"
        )
        .bind(tenant.0)
        .bind(id.0)
        .bind(from)
        .bind(today)
        .fetch_all(p)
        .await?);
        Ok((from..=today)
            .map(|day| {
                let r = rows.iter().find(|r| r.0 == day);
                LinkDay { day, pv: r.map_or(0, |r| r.1), uv: r.map_or(0, |r| r.2) }
            })
            .collect())
    }
}
