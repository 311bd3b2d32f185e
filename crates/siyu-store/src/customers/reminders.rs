//! Follow-up reminders (scrm-rules C-33): which open follow-ups are due for a reminder or an
//! escalation, who receives them, and recording that they were sent.

use uuid::Uuid;

use siyu_core::{CustomerId, TenantId, Timestamp};

use crate::{on_read, on_write, Result, Store};

/// How long a reminded follow-up may stay open before it escalates.
pub const ESCALATE_AFTER_MICROS: i64 = 24 * 3600 * 1_000_000;

/// A follow-up due for a reminder or an escalation.
#[derive(Clone, Debug)]
pub struct Due {
    pub id: Uuid,
    pub customer_id: CustomerId,
    pub customer_num: i64,
    pub customer_name: String,
    pub kind: String,
    pub content: String,
    pub next_at: Timestamp,
    /// The member to remind: the follow-up's own, else the customer's owner.
    pub userid: Option<String>,
    pub staff_name: Option<String>,
}

type Row = (Uuid, Uuid, i64, String, String, String, i64, Option<String>, Option<String>);

/// Which step a reminder run is taking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Remind,
    Escalate,
}

impl Store {
    /// Open follow-ups of live customers due for `step` at `now`, oldest first.
    pub async fn follow_ups_due(&self, tenant: TenantId, step: Step, now: Timestamp, limit: i64) -> Result<Vec<Due>> {
        let cond = match step {
            Step::Remind => "f.next_at <= $2 AND f.reminded_at IS NULL",
            Step::Escalate => "f.reminded_at <= $2 - $3 AND f.escalated_at IS NULL",
        };
        let sql = format!(
            "SELECT f.id, c.id, c.num, c.name, f.kind, f.content, f.next_at, s.wecom_userid, s.name FROM follow_ups f \
             JOIN customers c ON c.tenant_id = f.tenant_id AND c.id = f.customer_id AND c.status = 'active' \
             LEFT JOIN staff s ON s.tenant_id = f.tenant_id AND s.id = COALESCE(f.staff_id, c.owner_staff_id) \
             WHERE f.tenant_id = $1 AND f.done_at IS NULL AND f.next_at IS NOT NULL AND {cond} ORDER BY f.next_at LIMIT $4"
        );
        let rows: Vec<Row> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(now.0)
            .bind(ESCALATE_AFTER_MICROS)
            .bind(limit)
            .fetch_all(p)
            .await?);
        Ok(rows
            .into_iter()
            .map(|r| Due {
                id: r.0,
                customer_id: CustomerId(r.1),
                customer_num: r.2,
                customer_name: r.3,
                kind: r.4,
                content: r.5,
                next_at: Timestamp(r.6),
                userid: r.7,
                staff_name: r.8,
            })
            .collect())
    }

    /// Claims a follow-up for `step` (true once); `release` undoes a claim whose message
    /// could not be sent, so the next run tries again.
    pub async fn claim_follow_up(&self, tenant: TenantId, id: Uuid, step: Step, release: bool) -> Result<bool> {
        let now = self.now();
        let col = match step {
            Step::Remind => "reminded_at",
            Step::Escalate => "escalated_at",
        };
        // Releasing clears the mark; claiming sets it only where it is unset.
        let (sql, at) = if release {
            (format!("UPDATE follow_ups SET {col} = $3 WHERE tenant_id = $1 AND id = $2"), None)
        } else {
            (
                format!("UPDATE follow_ups SET {col} = $3 WHERE tenant_id = $1 AND id = $2 AND {col} IS NULL"),
                Some(now.0),
            )
        };
        let n =
            on_write!(self, |p| sqlx::query(&sql).bind(tenant.0).bind(id).bind(at).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// Who receives escalations: the WeCom accounts of active owners, admins and operators.
    pub async fn escalation_userids(&self, tenant: TenantId) -> Result<Vec<String>> {
        Ok(on_read!(self, |p| {
            sqlx::query_scalar(
            "SELECT DISTINCT s.wecom_userid FROM users u JOIN staff s ON s.tenant_id = u.tenant_id AND s.id = u.staff_id \
             WHERE u.tenant_id = $1 AND u.role IN ('owner', 'admin', 'operator') AND u.disabled = FALSE \
             AND s.status = 'active' AND s.wecom_userid IS NOT NULL ORDER BY s.wecom_userid"
        )
        .bind(tenant.0)
        .fetch_all(p)
        .await?
        }))
    }
}
