//! The organisation of a tenant: the brand itself, its stores (门店), its staff (员工/导购)
//! and the console users who log in. Validation of their inputs lives here so the API,
//! the console and the CLI all refuse the same things with the same words.

use crate::auth::Role;
use crate::ids::{StaffId, StoreId, TenantId, UserId};
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    /// URL-safe short name, unique across the installation; used in login.
    pub slug: String,
    pub name: String,
    /// IANA zone name; business days and caps use it (default Asia/Shanghai).
    pub timezone: String,
    /// Console language for users who have not chosen one: `zh-CN` or `en`.
    pub default_locale: String,
    pub contact_email: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Tenant {
    /// The zone's UTC offset in hours, for local days and wall-clock rules. Validation
    /// admits only known zones; a stored one siyu no longer knows counts as Asia/Shanghai.
    pub fn offset_hours(&self) -> i8 {
        crate::time::zone_offset_hours(&self.timezone).unwrap_or(8)
    }
}

/// Validated tenant settings, as edited on the settings page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSettings {
    pub name: String,
    pub timezone: String,
    pub default_locale: String,
    pub contact_email: Option<String>,
}

impl TenantSettings {
    pub fn validate(
        name: &str,
        timezone: &str,
        default_locale: &str,
        contact_email: Option<&str>,
    ) -> Result<Self, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", name, 64);
        let timezone = v.text("timezone", timezone, 64);
        check_zone(&mut v, &timezone);
        if !matches!(default_locale, "zh-CN" | "en") {
            v.push("default_locale", "invalid_value", "default_locale must be zh-CN or en");
        }
        let contact_email = v.opt_text("contact_email", contact_email, 128);
        if let Some(e) = &contact_email {
            let ok = e
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && b.contains('.') && !b.starts_with('.') && !b.ends_with('.'));
            if !ok || e.contains(char::is_whitespace) {
                v.push("contact_email", "invalid_format", "contact_email must be an email address");
            }
        }
        v.into_result()?;
        Ok(TenantSettings { name, timezone, default_locale: default_locale.to_string(), contact_email })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    Open,
    Closed,
}

impl StoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreStatus::Open => "open",
            StoreStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Store {
    pub id: StoreId,
    pub tenant_id: TenantId,
    pub code: String,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub status: StoreStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffStatus {
    Active,
    /// Left the company; kept for history and for 离职继承.
    Departed,
}

impl StaffStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffStatus::Active => "active",
            StaffStatus::Departed => "departed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "departed" => Some(Self::Departed),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Staff {
    pub id: StaffId,
    pub tenant_id: TenantId,
    pub name: String,
    /// The member's WeCom `userid`, once linked.
    pub wecom_userid: Option<String>,
    pub mobile: Option<String>,
    pub store_id: Option<StoreId>,
    pub title: Option<String>,
    pub status: StaffStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    pub login: String,
    pub display_name: String,
    pub role: Role,
    pub staff_id: Option<StaffId>,
    pub disabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Validated fields of a store, for create and full update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreInput {
    pub code: String,
    pub name: String,
    pub city: Option<String>,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub status: StoreStatus,
}

impl StoreInput {
    pub fn validate(
        code: &str,
        name: &str,
        city: Option<&str>,
        address: Option<&str>,
        phone: Option<&str>,
        status: Option<&str>,
    ) -> Result<Self, Vec<Violation>> {
        let mut v = Violations::new();
        let code = v.code("code", code, 32);
        let name = v.text("name", name, 64);
        let city = v.opt_text("city", city, 32);
        let address = v.opt_text("address", address, 200);
        let phone = v.opt_text("phone", phone, 32);
        let status = v.choice("status", status, StoreStatus::Open, StoreStatus::parse, "open, closed");
        v.into_result()?;
        Ok(StoreInput { code, name, city, address, phone, status })
    }
}

/// Validated fields of a staff member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffInput {
    pub name: String,
    pub wecom_userid: Option<String>,
    pub mobile: Option<String>,
    pub store_id: Option<StoreId>,
    pub title: Option<String>,
    pub status: StaffStatus,
}

impl StaffInput {
    pub fn validate(
        name: &str,
        wecom_userid: Option<&str>,
        mobile: Option<&str>,
        store_id: Option<StoreId>,
        title: Option<&str>,
        status: Option<&str>,
    ) -> Result<Self, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", name, 64);
        // WeCom userids are 1-64 chars of letters, digits and _-.@ (case-insensitive in WeCom).
        let wecom_userid = v.opt_text("wecom_userid", wecom_userid, 64);
        if let Some(u) = &wecom_userid {
            if !u.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@')) {
                v.push("wecom_userid", "invalid_format", "wecom_userid may contain only letters, digits and _ - . @");
            }
        }
        let mobile = v.opt_mobile("mobile", mobile);
        let title = v.opt_text("title", title, 32);
        let status = v.choice("status", status, StaffStatus::Active, StaffStatus::parse, "active, departed");
        v.into_result()?;
        Ok(StaffInput { name, wecom_userid, mobile, store_id, title, status })
    }
}

fn check_zone(v: &mut Violations, tz: &str) {
    if !tz.is_empty() && crate::time::zone_offset_hours(tz).is_none() {
        let names: Vec<&str> = crate::time::SUPPORTED_ZONES.iter().map(|(z, _)| *z).collect();
        v.push("timezone", "invalid_value", format!("timezone must be one of: {}", names.join(", ")));
    }
}

/// Validated tenant slug and name, for creating a tenant.
pub fn validate_tenant(slug: &str, name: &str, timezone: &str) -> Result<(String, String, String), Vec<Violation>> {
    let mut v = Violations::new();
    let slug = v.code("slug", slug, 32);
    let name = v.text("name", name, 64);
    let tz = v.text("timezone", timezone, 64);
    check_zone(&mut v, &tz);
    v.into_result()?;
    Ok((slug, name, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_offset_comes_from_its_zone_and_defaults_to_shanghai() {
        let t = |zone: &str| Tenant {
            id: TenantId::new(),
            slug: "t".into(),
            name: "T".into(),
            timezone: zone.into(),
            default_locale: "zh-CN".into(),
            contact_email: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        assert_eq!(t("Asia/Tokyo").offset_hours(), 9);
        assert_eq!(t("Asia/Shanghai").offset_hours(), 8);
        assert_eq!(t("Mars/Olympus").offset_hours(), 8);
    }

    #[test]
    fn store_input_names_each_bad_field() {
        let e = StoreInput::validate("", "", None, None, None, Some("gone")).unwrap_err();
        let fields: Vec<_> = e.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(fields, vec!["code", "name", "status"]);
        let ok = StoreInput::validate("sh-01", " 上海旗舰店 ", Some(""), None, None, None).unwrap();
        assert_eq!(ok.name, "上海旗舰店");
        assert_eq!(ok.city, None);
        assert_eq!(ok.status, StoreStatus::Open);
    }

    #[test]
    fn staff_input_normalises_mobile_and_checks_userid() {
        let s = StaffInput::validate("王芳", Some("wangfang"), Some("138 0013 8000"), None, None, None).unwrap();
        assert_eq!(s.mobile.as_deref(), Some("+8613800138000"));
        let e = StaffInput::validate("王芳", Some("wang fang"), Some("123"), None, None, None).unwrap_err();
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn tenant_settings_validation() {
        assert!(TenantSettings::validate("品牌", "Asia/Shanghai", "en", Some("ops@brand.cn")).is_ok());
        let e = TenantSettings::validate("品牌", "Asia/Shanghai", "fr", Some("ops@brand")).unwrap_err();
        let f: Vec<_> = e.iter().map(|x| x.field.as_str()).collect();
        assert_eq!(f, vec!["default_locale", "contact_email"]);
    }

    #[test]
    fn tenant_validation() {
        assert!(validate_tenant("demo", "演示品牌", "Asia/Shanghai").is_ok());
        assert_eq!(validate_tenant("Demo!", "", "Shanghai").unwrap_err().len(), 3);
    }
}
