//! Who may do what: roles, scopes, data scope, password policy and login throttling.
//!
//! Authorisation has two axes. *Scopes* say which operations an actor may call at all; the
//! *data scope* says which rows those operations may touch. A guide (导购) holds a data scope
//! of their own staff record, and every query that reads staff-owned data takes the data
//! scope as an argument, so the restriction lives in SQL rather than in the UI.

use crate::ids::{ApiTokenId, StaffId, TenantId, UserId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Console roles, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Operator,
    Guide,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Guide];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Guide => "guide",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The scopes a console user of this role holds.
    pub fn scopes(self) -> &'static [Scope] {
        use Scope::*;
        match self {
            Role::Owner | Role::Admin => &[
                SettingsRead,
                SettingsWrite,
                StoresRead,
                StoresWrite,
                StaffRead,
                StaffWrite,
                UsersRead,
                UsersWrite,
                TokensManage,
                AuditRead,
                JobsRead,
                CustomersRead,
                CustomersWrite,
                CustomersPii,
                CustomersTransfer,
                CommerceRead,
                CommerceWrite,
                CommerceRefund,
            ],
            Role::Operator => &[
                SettingsRead,
                StoresRead,
                StoresWrite,
                StaffRead,
                StaffWrite,
                JobsRead,
                CustomersRead,
                CustomersWrite,
                CustomersPii,
                CustomersTransfer,
                CommerceRead,
                CommerceWrite,
                CommerceRefund,
            ],
            Role::Guide => &[StoresRead, StaffRead, StaffWriteOwn, CustomersRead, CustomersWrite, CommerceRead],
        }
    }

    /// Whether an actor of role `self` may grant `other` to a user. Only owners make owners.
    pub fn may_grant(self, other: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => other != Role::Owner,
            _ => false,
        }
    }
}

/// A permission to call a family of operations. API tokens carry an explicit subset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Scope {
    #[serde(rename = "settings:read")]
    SettingsRead,
    #[serde(rename = "settings:write")]
    SettingsWrite,
    #[serde(rename = "stores:read")]
    StoresRead,
    #[serde(rename = "stores:write")]
    StoresWrite,
    #[serde(rename = "staff:read")]
    StaffRead,
    #[serde(rename = "staff:write")]
    StaffWrite,
    /// Edit one's own staff record only (guides).
    #[serde(rename = "staff:write_own")]
    StaffWriteOwn,
    #[serde(rename = "users:read")]
    UsersRead,
    #[serde(rename = "users:write")]
    UsersWrite,
    /// Create and revoke API tokens. Never grantable to a token.
    #[serde(rename = "tokens:manage")]
    TokensManage,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "customers:read")]
    CustomersRead,
    /// Create, edit, tag customers; manage tags and segments. Guides hold it for their own.
    #[serde(rename = "customers:write")]
    CustomersWrite,
    /// See personal data (phone numbers, sensitive fields) unmasked, export and erase it.
    #[serde(rename = "customers:pii")]
    CustomersPii,
    /// Plan, send, retry and re-route transfers of customers between members (tenant-wide).
    #[serde(rename = "customers:transfer")]
    CustomersTransfer,
    /// See the catalogue, stock, orders and refunds.
    #[serde(rename = "commerce:read")]
    CommerceRead,
    /// Edit the catalogue and stock; cancel and ship orders.
    #[serde(rename = "commerce:write")]
    CommerceWrite,
    /// Refund orders and decide refund requests (money leaves the merchant).
    #[serde(rename = "commerce:refund")]
    CommerceRefund,
}

impl Scope {
    pub const ALL: [Scope; 19] = [
        Scope::SettingsRead,
        Scope::SettingsWrite,
        Scope::StoresRead,
        Scope::StoresWrite,
        Scope::StaffRead,
        Scope::StaffWrite,
        Scope::StaffWriteOwn,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::TokensManage,
        Scope::AuditRead,
        Scope::JobsRead,
        Scope::CustomersRead,
        Scope::CustomersWrite,
        Scope::CustomersPii,
        Scope::CustomersTransfer,
        Scope::CommerceRead,
        Scope::CommerceWrite,
        Scope::CommerceRefund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::SettingsRead => "settings:read",
            Scope::SettingsWrite => "settings:write",
            Scope::StoresRead => "stores:read",
            Scope::StoresWrite => "stores:write",
            Scope::StaffRead => "staff:read",
            Scope::StaffWrite => "staff:write",
            Scope::StaffWriteOwn => "staff:write_own",
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::TokensManage => "tokens:manage",
            Scope::AuditRead => "audit:read",
            Scope::JobsRead => "jobs:read",
            Scope::CustomersRead => "customers:read",
            Scope::CustomersWrite => "customers:write",
            Scope::CustomersPii => "customers:pii",
            Scope::CustomersTransfer => "customers:transfer",
            Scope::CommerceRead => "commerce:read",
            Scope::CommerceWrite => "commerce:write",
            Scope::CommerceRefund => "commerce:refund",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Scopes an integration token may hold: everything but token management (a leaked token
    /// must not be able to mint more tokens) and the guide-only self scope.
    pub fn grantable_to_token(self) -> bool {
        !matches!(self, Scope::TokensManage | Scope::StaffWriteOwn)
    }
}

/// Which rows an actor may see and change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataScope {
    /// Every row of the tenant.
    Tenant,
    /// Only rows owned by this staff member (a guide's own data).
    OwnStaff(StaffId),
    /// A guide account not yet linked to a staff record: sees no staff-owned rows at all.
    Nothing,
}

/// Who is acting, resolved from a session cookie or a bearer token.
#[derive(Clone, Debug)]
pub struct Actor {
    pub tenant_id: TenantId,
    pub kind: ActorKind,
    pub scopes: Vec<Scope>,
    pub data_scope: DataScope,
}

#[derive(Clone, Debug)]
pub enum ActorKind {
    User {
        user_id: UserId,
        role: Role,
        display_name: String,
    },
    Token {
        token_id: ApiTokenId,
        name: String,
    },
    /// siyu itself: jobs, the demo seeder, the CLI.
    System,
}

impl Actor {
    pub fn user(tenant_id: TenantId, user_id: UserId, role: Role, name: String, staff: Option<StaffId>) -> Self {
        let data_scope = match (role, staff) {
            (Role::Guide, Some(s)) => DataScope::OwnStaff(s),
            (Role::Guide, None) => DataScope::Nothing,
            _ => DataScope::Tenant,
        };
        Actor {
            tenant_id,
            kind: ActorKind::User { user_id, role, display_name: name },
            scopes: role.scopes().to_vec(),
            data_scope,
        }
    }

    pub fn token(tenant_id: TenantId, token_id: ApiTokenId, name: String, scopes: Vec<Scope>) -> Self {
        Actor { tenant_id, kind: ActorKind::Token { token_id, name }, scopes, data_scope: DataScope::Tenant }
    }

    pub fn system(tenant_id: TenantId) -> Self {
        Actor { tenant_id, kind: ActorKind::System, scopes: Scope::ALL.to_vec(), data_scope: DataScope::Tenant }
    }

    pub fn can(&self, s: Scope) -> bool {
        self.scopes.contains(&s)
    }

    pub fn role(&self) -> Option<Role> {
        match &self.kind {
            ActorKind::User { role, .. } => Some(*role),
            _ => None,
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match &self.kind {
            ActorKind::User { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }

    /// `("user", id, name)` style description for the audit log.
    pub fn audit_identity(&self) -> (&'static str, Option<String>, String) {
        match &self.kind {
            ActorKind::User { user_id, display_name, .. } => ("user", Some(user_id.to_string()), display_name.clone()),
            ActorKind::Token { token_id, name } => ("token", Some(token_id.to_string()), name.clone()),
            ActorKind::System => ("system", None, "siyu".into()),
        }
    }
}

/// Why a password is not acceptable.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("password must be at least {0} characters")]
    TooShort(usize),
    #[error("password must be at most {0} characters")]
    TooLong(usize),
    #[error("password must contain both letters and digits")]
    TooSimple,
}

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

pub fn check_password_policy(pw: &str) -> Result<(), PasswordProblem> {
    let n = pw.chars().count();
    if n < PASSWORD_MIN {
        return Err(PasswordProblem::TooShort(PASSWORD_MIN));
    }
    if n > PASSWORD_MAX {
        return Err(PasswordProblem::TooLong(PASSWORD_MAX));
    }
    let letters = pw.chars().any(|c| c.is_alphabetic());
    let digits = pw.chars().any(|c| c.is_ascii_digit());
    if !(letters && digits) {
        return Err(PasswordProblem::TooSimple);
    }
    Ok(())
}

/// Login throttling: at most `max_failures` failed attempts per key in a sliding `window`.
#[derive(Clone, Copy, Debug)]
pub struct ThrottlePolicy {
    pub max_failures: usize,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        ThrottlePolicy { max_failures: 5, window: Duration::from_secs(15 * 60) }
    }
}

impl ThrottlePolicy {
    /// Given the failure instants recorded for a key (any order), decide whether another
    /// attempt is allowed now; if not, return when it will be.
    pub fn check(&self, failures: &[Timestamp], now: Timestamp) -> Result<(), Timestamp> {
        let since = now.minus(self.window);
        let mut recent: Vec<Timestamp> = failures.iter().copied().filter(|t| *t > since && *t <= now).collect();
        if recent.len() < self.max_failures {
            return Ok(());
        }
        recent.sort();
        // The attempt is allowed again once enough failures have aged out of the window.
        let pivot = recent[recent.len() - self.max_failures];
        Err(pivot.plus(self.window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guides_hold_no_management_scopes() {
        let g = Role::Guide.scopes();
        for s in [Scope::UsersRead, Scope::UsersWrite, Scope::TokensManage, Scope::AuditRead, Scope::StaffWrite] {
            assert!(!g.contains(&s), "{s:?}");
        }
        assert!(Role::Owner.scopes().contains(&Scope::TokensManage));
    }

    #[test]
    fn only_owners_make_owners() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Guide));
        assert!(!Role::Operator.may_grant(Role::Guide));
    }

    #[test]
    fn guide_data_scope_follows_staff_link() {
        let t = TenantId::new();
        let s = StaffId::new();
        let a = Actor::user(t, UserId::new(), Role::Guide, "g".into(), Some(s));
        assert_eq!(a.data_scope, DataScope::OwnStaff(s));
        let b = Actor::user(t, UserId::new(), Role::Guide, "g".into(), None);
        assert_eq!(b.data_scope, DataScope::Nothing);
        let c = Actor::user(t, UserId::new(), Role::Operator, "o".into(), Some(s));
        assert_eq!(c.data_scope, DataScope::Tenant);
    }

    #[test]
    fn scopes_round_trip_and_tokens_cannot_manage_tokens() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert!(!Scope::TokensManage.grantable_to_token());
    }

    #[test]
    fn password_policy() {
        assert_eq!(check_password_policy("abc1"), Err(PasswordProblem::TooShort(8)));
        assert_eq!(check_password_policy("abcdefgh"), Err(PasswordProblem::TooSimple));
        assert_eq!(check_password_policy("12345678"), Err(PasswordProblem::TooSimple));
        assert!(check_password_policy("密码安全很重要2026").is_ok());
        assert_eq!(check_password_policy(&"a1".repeat(65)), Err(PasswordProblem::TooLong(128)));
    }

    #[test]
    fn throttle_blocks_after_five_failures_and_releases_as_they_age() {
        let p = ThrottlePolicy::default();
        let t0 = Timestamp::from_unix_secs(1_000_000);
        let fails: Vec<_> = (0..5).map(|i| Timestamp::from_unix_secs(1_000_000 + i * 60)).collect();
        assert!(p.check(&fails[..4], t0.plus(Duration::from_secs(300))).is_ok());
        let now = Timestamp::from_unix_secs(1_000_000 + 300);
        let until = p.check(&fails, now).unwrap_err();
        assert_eq!(until, t0.plus(p.window));
        assert!(p.check(&fails, until).is_ok(), "the oldest failure has aged out exactly at `until`");
        // Failures in the future (clock skew between processes) are not counted.
        assert!(p.check(&fails, t0).is_ok());
    }
}
