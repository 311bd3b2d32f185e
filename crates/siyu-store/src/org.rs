//! Tenants, stores, staff and console users.

use serde_json::json;
use sqlx::FromRow;
use uuid::Uuid;

use siyu_core::auth::{Actor, DataScope, Role, Scope};
use siyu_core::org::{
    Staff, StaffInput, StaffStatus, Store as StoreRec, StoreInput, StoreStatus, Tenant, TenantSettings, User,
};
use siyu_core::paging::{Page, PageRequest};
use siyu_core::{StaffId, StoreId, TenantId, Timestamp, UserId};

use crate::audit::snapshot;
use crate::{audit, in_tx, on_read, Result, Store, StoreError};

#[derive(FromRow)]
struct TenantRow {
    id: Uuid,
    slug: String,
    name: String,
    timezone: String,
    default_locale: String,
    contact_email: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: TenantId(r.id),
            slug: r.slug,
            name: r.name,
            timezone: r.timezone,
            default_locale: r.default_locale,
            contact_email: r.contact_email,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        }
    }
}

const TENANT_COLS: &str = "id, slug, name, timezone, default_locale, contact_email, created_at, updated_at";

#[derive(FromRow)]
struct StoreRow {
    tenant_id: Uuid,
    id: Uuid,
    code: String,
    name: String,
    city: Option<String>,
    address: Option<String>,
    phone: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl From<StoreRow> for StoreRec {
    fn from(r: StoreRow) -> Self {
        StoreRec {
            id: StoreId(r.id),
            tenant_id: TenantId(r.tenant_id),
            code: r.code,
            name: r.name,
            city: r.city,
            address: r.address,
            phone: r.phone,
            status: StoreStatus::parse(&r.status).unwrap_or(StoreStatus::Closed),
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        }
    }
}

const STORE_COLS: &str = "tenant_id, id, code, name, city, address, phone, status, created_at, updated_at";

#[derive(FromRow)]
struct StaffRow {
    tenant_id: Uuid,
    id: Uuid,
    name: String,
    wecom_userid: Option<String>,
    mobile: Option<String>,
    store_id: Option<Uuid>,
    title: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
}

impl From<StaffRow> for Staff {
    fn from(r: StaffRow) -> Self {
        Staff {
            id: StaffId(r.id),
            tenant_id: TenantId(r.tenant_id),
            name: r.name,
            wecom_userid: r.wecom_userid,
            mobile: r.mobile,
            store_id: r.store_id.map(StoreId),
            title: r.title,
            status: StaffStatus::parse(&r.status).unwrap_or(StaffStatus::Departed),
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        }
    }
}

const STAFF_COLS: &str = "tenant_id, id, name, wecom_userid, mobile, store_id, title, status, created_at, updated_at";

#[derive(FromRow)]
pub(crate) struct UserRow {
    tenant_id: Uuid,
    id: Uuid,
    login: String,
    display_name: String,
    role: String,
    staff_id: Option<Uuid>,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId(r.id),
            tenant_id: TenantId(r.tenant_id),
            login: r.login,
            display_name: r.display_name,
            // An unknown role in the database is treated as the least privileged one.
            role: Role::parse(&r.role).unwrap_or(Role::Guide),
            staff_id: r.staff_id.map(StaffId),
            disabled: r.disabled,
            created_at: Timestamp(r.created_at),
            updated_at: Timestamp(r.updated_at),
        }
    }
}

#[derive(FromRow)]
struct UserWithHash {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

const USER_COLS: &str = "tenant_id, id, login, display_name, role, staff_id, disabled, created_at, updated_at";

/// Binds a [`DataScope`] as `(all_rows: bool, own_staff: uuid)`: the SQL fragment
/// `($n OR <staff column> = $n+1)` then admits every row, one staff member's rows, or none.
/// Binds for `($n OR staff = $n+1)`: see every row, or only one staff member's.
pub(crate) fn scope_binds(scope: DataScope) -> (bool, Uuid) {
    match scope {
        DataScope::Tenant => (true, Uuid::nil()),
        DataScope::OwnStaff(s) => (false, s.0),
        DataScope::Nothing => (false, Uuid::nil()),
    }
}

fn like_pattern(q: &Option<String>) -> Option<String> {
    q.as_ref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .map(|s| format!("%{}%", crate::like_escape(&s)))
}

#[derive(Clone, Debug, Default)]
pub struct StoreFilter {
    pub q: Option<String>,
    pub status: Option<StoreStatus>,
}

#[derive(Clone, Debug, Default)]
pub struct StaffFilter {
    pub q: Option<String>,
    pub status: Option<StaffStatus>,
    pub store_id: Option<StoreId>,
}

#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    pub q: Option<String>,
    pub role: Option<Role>,
}

/// Fields for a new console user; the password arrives already hashed.
pub struct NewUser {
    pub login: String,
    pub display_name: String,
    pub role: Role,
    pub staff_id: Option<StaffId>,
    pub password_hash: String,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub role: Option<Role>,
    /// `Some(None)` unlinks the staff record.
    pub staff_id: Option<Option<StaffId>>,
    pub disabled: Option<bool>,
}

/// Counts shown on the console home page.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct OrgCounts {
    pub stores: i64,
    pub staff: i64,
    pub users: i64,
    pub api_tokens: i64,
}

impl Store {
    // ---- tenants -------------------------------------------------------------------------

    /// Creates a tenant. Tenants are created by installation admins (CLI, demo), so the
    /// audit row is attributed to the system actor of the new tenant.
    pub async fn create_tenant(&self, slug: &str, name: &str, timezone: &str) -> Result<Tenant> {
        let now = self.now();
        let t = Tenant {
            id: TenantId::new(),
            slug: slug.into(),
            name: name.into(),
            timezone: timezone.into(),
            default_locale: "zh-CN".into(),
            contact_email: None,
            created_at: now,
            updated_at: now,
        };
        let actor = Actor::system(t.id);
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO tenants (id, slug, name, timezone, default_locale, contact_email, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(t.id.0)
            .bind(&t.slug)
            .bind(&t.name)
            .bind(&t.timezone)
            .bind(&t.default_locale)
            .bind(&t.contact_email)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "slug"))?;
            audit!(tx, self, actor, "tenant.create", "tenant", t.id, None, snapshot(&t));
        });
        Ok(t)
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Tenant> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1");
        let r: Option<TenantRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = $1");
        let r: Option<TenantRow> = on_read!(self, |p| sqlx::query_as(&sql).bind(slug).fetch_optional(p).await?);
        Ok(r.map(Into::into))
    }

    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let sql = format!("SELECT {TENANT_COLS} FROM tenants ORDER BY slug");
        let r: Vec<TenantRow> = on_read!(self, |p| sqlx::query_as(&sql).fetch_all(p).await?);
        Ok(r.into_iter().map(Into::into).collect())
    }

    pub async fn update_tenant_settings(&self, actor: &Actor, s: &TenantSettings) -> Result<Tenant> {
        let before = self.tenant(actor.tenant_id).await?;
        let now = self.now();
        let after = Tenant {
            name: s.name.clone(),
            timezone: s.timezone.clone(),
            default_locale: s.default_locale.clone(),
            contact_email: s.contact_email.clone(),
            updated_at: now,
            ..before.clone()
        };
        in_tx!(self, |tx| {
            sqlx::query("UPDATE tenants SET name = $2, timezone = $3, default_locale = $4, contact_email = $5, updated_at = $6 WHERE id = $1")
                .bind(actor.tenant_id.0)
                .bind(&after.name)
                .bind(&after.timezone)
                .bind(&after.default_locale)
                .bind(&after.contact_email)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
            audit!(tx, self, actor, "tenant.update", "tenant", actor.tenant_id, snapshot(&before), snapshot(&after));
        });
        Ok(after)
    }

    pub async fn org_counts(&self, tenant: TenantId) -> Result<OrgCounts> {
        const SQL: &str = "SELECT \
            (SELECT COUNT(*) FROM stores WHERE tenant_id = $1), \
            (SELECT COUNT(*) FROM staff WHERE tenant_id = $1 AND status = 'active'), \
            (SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND disabled = FALSE), \
            (SELECT COUNT(*) FROM api_tokens WHERE tenant_id = $1 AND revoked_at IS NULL)";
        let (stores, staff, users, api_tokens): (i64, i64, i64, i64) =
            on_read!(self, |p| sqlx::query_as(SQL).bind(tenant.0).fetch_one(p).await?);
        Ok(OrgCounts { stores, staff, users, api_tokens })
    }

    // ---- stores --------------------------------------------------------------------------

    pub async fn create_store(&self, actor: &Actor, input: &StoreInput) -> Result<StoreRec> {
        let now = self.now();
        let rec = StoreRec {
            id: StoreId::new(),
            tenant_id: actor.tenant_id,
            code: input.code.clone(),
            name: input.name.clone(),
            city: input.city.clone(),
            address: input.address.clone(),
            phone: input.phone.clone(),
            status: input.status,
            created_at: now,
            updated_at: now,
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO stores (tenant_id, id, code, name, city, address, phone, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(rec.tenant_id.0)
            .bind(rec.id.0)
            .bind(&rec.code)
            .bind(&rec.name)
            .bind(&rec.city)
            .bind(&rec.address)
            .bind(&rec.phone)
            .bind(rec.status.as_str())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "code"))?;
            audit!(tx, self, actor, "store.create", "store", rec.id, None, snapshot(&rec));
        });
        Ok(rec)
    }

    pub async fn store(&self, tenant: TenantId, id: StoreId) -> Result<StoreRec> {
        let sql = format!("SELECT {STORE_COLS} FROM stores WHERE tenant_id = $1 AND id = $2");
        let r: Option<StoreRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    pub async fn list_stores(&self, tenant: TenantId, f: &StoreFilter, page: &PageRequest) -> Result<Page<StoreRec>> {
        let sql = format!(
            "SELECT {STORE_COLS} FROM stores WHERE tenant_id = $1 \
             AND ($2 IS NULL OR LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(code) LIKE $2 ESCAPE '\\' OR LOWER(city) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<StoreRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(like_pattern(&f.q))
            .bind(f.status.map(|s| s.as_str()))
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    pub async fn update_store(&self, actor: &Actor, id: StoreId, input: &StoreInput) -> Result<StoreRec> {
        let before = self.store(actor.tenant_id, id).await?;
        let now = self.now();
        let after = StoreRec {
            code: input.code.clone(),
            name: input.name.clone(),
            city: input.city.clone(),
            address: input.address.clone(),
            phone: input.phone.clone(),
            status: input.status,
            updated_at: now,
            ..before.clone()
        };
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE stores SET code = $3, name = $4, city = $5, address = $6, phone = $7, status = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(&after.code)
            .bind(&after.name)
            .bind(&after.city)
            .bind(&after.address)
            .bind(&after.phone)
            .bind(after.status.as_str())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::constraint(e, "code"))?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "store.update", "store", id, snapshot(&before), snapshot(&after));
        });
        Ok(after)
    }

    /// Deletes a store that no staff member belongs to.
    pub async fn delete_store(&self, actor: &Actor, id: StoreId) -> Result<()> {
        let before = self.store(actor.tenant_id, id).await?;
        in_tx!(self, |tx| {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff WHERE tenant_id = $1 AND store_id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 {
                return Err(StoreError::Conflict(format!("store still has {n} staff member(s); move them first")));
            }
            sqlx::query("DELETE FROM stores WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            audit!(tx, self, actor, "store.delete", "store", id, snapshot(&before), None);
        });
        Ok(())
    }

    // ---- staff ---------------------------------------------------------------------------

    pub async fn create_staff(&self, actor: &Actor, input: &StaffInput) -> Result<Staff> {
        let now = self.now();
        let rec = Staff {
            id: StaffId::new(),
            tenant_id: actor.tenant_id,
            name: input.name.clone(),
            wecom_userid: input.wecom_userid.clone(),
            mobile: input.mobile.clone(),
            store_id: input.store_id,
            title: input.title.clone(),
            status: input.status,
            created_at: now,
            updated_at: now,
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO staff (tenant_id, id, name, wecom_userid, mobile, store_id, title, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(rec.tenant_id.0)
            .bind(rec.id.0)
            .bind(&rec.name)
            .bind(&rec.wecom_userid)
            .bind(&rec.mobile)
            .bind(rec.store_id.map(|s| s.0))
            .bind(&rec.title)
            .bind(rec.status.as_str())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(staff_constraint)?;
            audit!(tx, self, actor, "staff.create", "staff", rec.id, None, snapshot(&rec));
        });
        Ok(rec)
    }

    /// One staff member, if `scope` admits them; otherwise `NotFound` (a guide cannot even
    /// learn that another guide's record exists).
    pub async fn staff(&self, tenant: TenantId, scope: DataScope, id: StaffId) -> Result<Staff> {
        let sql = format!("SELECT {STAFF_COLS} FROM staff WHERE tenant_id = $1 AND id = $2 AND ($3 OR id = $4)");
        let (all, own) = scope_binds(scope);
        let r: Option<StaffRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(id.0)
            .bind(all)
            .bind(own)
            .fetch_optional(p)
            .await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    pub async fn list_staff(
        &self,
        tenant: TenantId,
        scope: DataScope,
        f: &StaffFilter,
        page: &PageRequest,
    ) -> Result<Page<Staff>> {
        let sql = format!(
            "SELECT {STAFF_COLS} FROM staff WHERE tenant_id = $1 AND ($2 OR id = $3) \
             AND ($4 IS NULL OR LOWER(name) LIKE $4 ESCAPE '\\' OR LOWER(wecom_userid) LIKE $4 ESCAPE '\\' OR mobile LIKE $4 ESCAPE '\\') \
             AND ($5 IS NULL OR status = $5) AND ($6 IS NULL OR store_id = $6) \
             AND ($7 IS NULL OR id < $7) ORDER BY id DESC LIMIT $8"
        );
        let (all, own) = scope_binds(scope);
        let rows: Vec<StaffRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(all)
            .bind(own)
            .bind(like_pattern(&f.q))
            .bind(f.status.map(|s| s.as_str()))
            .bind(f.store_id.map(|s| s.0))
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    /// Every staff member of a tenant, newest first (for pickers and matching, tenant-wide).
    pub async fn all_staff(&self, tenant: TenantId) -> Result<Vec<Staff>> {
        let mut out = Vec::new();
        let mut page = PageRequest { limit: 200, before: None };
        loop {
            let p = self.list_staff(tenant, DataScope::Tenant, &StaffFilter::default(), &page).await?;
            out.extend(p.items);
            match p.next_cursor.as_deref().and_then(siyu_core::paging::decode_cursor) {
                Some(c) => page.before = Some(c),
                None => return Ok(out),
            }
        }
    }

    pub async fn update_staff(&self, actor: &Actor, id: StaffId, input: &StaffInput) -> Result<Staff> {
        let before = self.staff(actor.tenant_id, actor.data_scope, id).await?;
        let now = self.now();
        let after = Staff {
            name: input.name.clone(),
            wecom_userid: input.wecom_userid.clone(),
            mobile: input.mobile.clone(),
            store_id: input.store_id,
            title: input.title.clone(),
            status: input.status,
            updated_at: now,
            ..before.clone()
        };
        let (all, own) = scope_binds(actor.data_scope);
        in_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE staff SET name = $5, wecom_userid = $6, mobile = $7, store_id = $8, title = $9, status = $10, updated_at = $11 \
                 WHERE tenant_id = $1 AND id = $2 AND ($3 OR id = $4)",
            )
            .bind(actor.tenant_id.0)
            .bind(id.0)
            .bind(all)
            .bind(own)
            .bind(&after.name)
            .bind(&after.wecom_userid)
            .bind(&after.mobile)
            .bind(after.store_id.map(|s| s.0))
            .bind(&after.title)
            .bind(after.status.as_str())
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(staff_constraint)?
            .rows_affected();
            if n != 1 {
                return Err(StoreError::NotFound);
            }
            audit!(tx, self, actor, "staff.update", "staff", id, snapshot(&before), snapshot(&after));
        });
        Ok(after)
    }

    // ---- users ---------------------------------------------------------------------------

    pub async fn create_user(&self, actor: &Actor, u: NewUser) -> Result<User> {
        let now = self.now();
        let rec = User {
            id: UserId::new(),
            tenant_id: actor.tenant_id,
            login: u.login,
            display_name: u.display_name,
            role: u.role,
            staff_id: u.staff_id,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO users (tenant_id, id, login, display_name, role, staff_id, password_hash, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
            )
            .bind(rec.tenant_id.0)
            .bind(rec.id.0)
            .bind(&rec.login)
            .bind(&rec.display_name)
            .bind(rec.role.as_str())
            .bind(rec.staff_id.map(|s| s.0))
            .bind(&u.password_hash)
            .bind(false)
            .bind(now.0)
            .execute(&mut *tx)
            .await
            .map_err(user_constraint)?;
            audit!(tx, self, actor, "user.create", "user", rec.id, None, snapshot(&rec));
        });
        Ok(rec)
    }

    pub async fn user(&self, tenant: TenantId, id: UserId) -> Result<User> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id = $2");
        let r: Option<UserRow> =
            on_read!(self, |p| sqlx::query_as(&sql).bind(tenant.0).bind(id.0).fetch_optional(p).await?);
        r.map(Into::into).ok_or(StoreError::NotFound)
    }

    /// The user with this login and their password hash, for password checks.
    pub async fn user_for_login(&self, tenant: TenantId, login: &str) -> Result<Option<(User, String)>> {
        let sql = format!("SELECT {USER_COLS}, password_hash FROM users WHERE tenant_id = $1 AND login = $2");
        let r: Option<UserWithHash> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(login.to_lowercase())
            .fetch_optional(p)
            .await?);
        Ok(r.map(|r| (r.user.into(), r.password_hash)))
    }

    pub async fn list_users(&self, tenant: TenantId, f: &UserFilter, page: &PageRequest) -> Result<Page<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 \
             AND ($2 IS NULL OR LOWER(login) LIKE $2 ESCAPE '\\' OR LOWER(display_name) LIKE $2 ESCAPE '\\') \
             AND ($3 IS NULL OR role = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows: Vec<UserRow> = on_read!(self, |p| sqlx::query_as(&sql)
            .bind(tenant.0)
            .bind(like_pattern(&f.q))
            .bind(f.role.map(|r| r.as_str()))
            .bind(page.before)
            .bind(page.fetch_limit())
            .fetch_all(p)
            .await?);
        Ok(Page::from_rows(rows, page, |r| r.id).map(Into::into))
    }

    pub async fn update_user(&self, actor: &Actor, id: UserId, patch: &UserPatch) -> Result<User> {
        let before = self.user(actor.tenant_id, id).await?;
        let now = self.now();
        let after = User {
            display_name: patch.display_name.clone().unwrap_or(before.display_name.clone()),
            role: patch.role.unwrap_or(before.role),
            staff_id: patch.staff_id.unwrap_or(before.staff_id),
            disabled: patch.disabled.unwrap_or(before.disabled),
            updated_at: now,
            ..before.clone()
        };
        in_tx!(self, |tx| {
            // Guard against demoting or disabling the tenant's last active owner.
            if before.role == Role::Owner && (after.role != Role::Owner || after.disabled) {
                // On PostgreSQL, lock the owners first so two owners demoting each other at once
                // cannot both pass the count (SQLite's single writer already serialises this).
                if self.backend() == crate::Backend::Postgres {
                    sqlx::query("SELECT id FROM users WHERE tenant_id = $1 AND role = 'owner' FOR UPDATE")
                        .bind(actor.tenant_id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                let owners: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = 'owner' AND disabled = FALSE AND id <> $2",
                )
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
                if owners == 0 {
                    return Err(StoreError::Conflict("a tenant must keep at least one active owner".into()));
                }
            }
            sqlx::query("UPDATE users SET display_name = $3, role = $4, staff_id = $5, disabled = $6, updated_at = $7 WHERE tenant_id = $1 AND id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .bind(&after.display_name)
                .bind(after.role.as_str())
                .bind(after.staff_id.map(|s| s.0))
                .bind(after.disabled)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(user_constraint)?;
            // Tokens act with their creator's authority: when it is gone, so are they.
            let lost_tokens = after.disabled
                || (before.role.scopes().contains(&Scope::TokensManage)
                    && !after.role.scopes().contains(&Scope::TokensManage));
            if lost_tokens {
                let n = sqlx::query("UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL")
                    .bind(actor.tenant_id.0)
                    .bind(id.0)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n > 0 {
                    audit!(
                        tx,
                        self,
                        actor,
                        "api_token.revoke_all",
                        "user",
                        id,
                        None,
                        Some(json!({"revoked_tokens": n, "reason": "creator disabled or demoted"}))
                    );
                }
            }
            if after.disabled || after.role != before.role {
                // Sessions carry the role they were opened with; end them so the change bites now.
                sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
                    .bind(actor.tenant_id.0)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await?;
            }
            audit!(tx, self, actor, "user.update", "user", id, snapshot(&before), snapshot(&after));
        });
        Ok(after)
    }

    /// Sets a new password hash and ends every session of the user.
    pub async fn set_password(&self, actor: &Actor, id: UserId, hash: &str) -> Result<()> {
        in_tx!(self, |tx| {
            let n =
                sqlx::query("UPDATE users SET password_hash = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                    .bind(actor.tenant_id.0)
                    .bind(id.0)
                    .bind(hash)
                    .bind(self.now().0)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            if n != 1 {
                return Err(StoreError::NotFound);
            }
            sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2")
                .bind(actor.tenant_id.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            audit!(tx, self, actor, "user.password_reset", "user", id, None, Some(json!({"password": "changed"})));
        });
        Ok(())
    }
}

fn staff_constraint(e: sqlx::Error) -> StoreError {
    match StoreError::constraint(e, "wecom_userid") {
        StoreError::BadReference(_) => StoreError::BadReference("store_id"),
        other => other,
    }
}

fn user_constraint(e: sqlx::Error) -> StoreError {
    let msg = match &e {
        sqlx::Error::Database(d) => format!("{} {}", d.message(), d.constraint().unwrap_or("")),
        _ => String::new(),
    };
    match StoreError::constraint(e, "login") {
        StoreError::Duplicate(_) if msg.contains("staff") => StoreError::Duplicate("staff_id"),
        StoreError::BadReference(_) => StoreError::BadReference("staff_id"),
        other => other,
    }
}
