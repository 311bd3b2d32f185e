//! The catalogue's rules: what a product (SPU), its SKUs, a category and a shipping template
//! may hold, and how stock may move by hand. Storage enforces `0 ≤ reserved ≤ on_hand` again
//! with a CHECK, so a bug elsewhere fails loudly instead of overselling.

use serde::{Deserialize, Serialize};

use super::pricing::MAX_UNIT_FEN;
use crate::validate::{Violation, Violations};

/// More SKUs than this is a data-entry mistake, not a product.
pub const MAX_SKUS: usize = 200;
/// WeChat's own product pages show at most 9 images.
pub const MAX_IMAGES: usize = 9;
/// Up to three specification dimensions (e.g. 颜色 × 尺码 × 版本).
pub const MAX_SPEC_DIMS: usize = 3;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_DETAIL_CHARS: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Being prepared; invisible to customers.
    Draft,
    /// On sale in the mall.
    Listed,
    /// Taken off sale; open orders still complete.
    Delisted,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::Listed => "listed",
            ProductStatus::Delisted => "delisted",
        }
    }
    pub fn parse(s: &str) -> Option<ProductStatus> {
        [ProductStatus::Draft, ProductStatus::Listed, ProductStatus::Delisted].into_iter().find(|x| x.as_str() == s)
    }
}

/// One SKU as entered: its values along the product's specification dimensions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuInput {
    /// Present when editing an existing SKU.
    #[serde(default)]
    pub id: Option<uuid::Uuid>,
    #[serde(default)]
    pub spec: Vec<String>,
    #[serde(default)]
    pub code: Option<String>,
    pub price_fen: i64,
    /// Only for new SKUs; existing SKUs change stock through adjustments.
    #[serde(default)]
    pub on_hand: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProductInput {
    pub title: String,
    pub subtitle: Option<String>,
    pub category_id: Option<uuid::Uuid>,
    pub shipping_template_id: Option<uuid::Uuid>,
    /// The store (门店) that sells it; `None` for the brand's own mall.
    pub store_id: Option<uuid::Uuid>,
    pub images: Vec<String>,
    pub detail: Option<String>,
    pub status: ProductStatus,
    pub spec_names: Vec<String>,
    pub skus: Vec<SkuInput>,
}

/// The unvalidated form, as the API and the console send it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ProductDraft {
    pub title: String,
    pub subtitle: Option<String>,
    pub category_id: Option<uuid::Uuid>,
    pub shipping_template_id: Option<uuid::Uuid>,
    pub store_id: Option<uuid::Uuid>,
    #[serde(default)]
    pub images: Vec<String>,
    pub detail: Option<String>,
    pub status: Option<String>,
    #[serde(default)]
    pub spec_names: Vec<String>,
    #[serde(default)]
    pub skus: Vec<SkuInput>,
}

fn image_ok(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://") || u.starts_with('/'))
        && !u.contains(char::is_whitespace)
        && !u.contains(['"', '<', '>'])
        && u.len() <= 500
}

impl ProductDraft {
    pub fn validate(&self) -> Result<ProductInput, Vec<Violation>> {
        let mut v = Violations::new();
        let title = v.text("title", &self.title, 60);
        let subtitle = v.opt_text("subtitle", self.subtitle.as_deref(), 120);
        let detail = v.opt_text("detail", self.detail.as_deref(), MAX_DETAIL_CHARS);
        let status = v.choice(
            "status",
            self.status.as_deref(),
            ProductStatus::Draft,
            ProductStatus::parse,
            "draft, listed, delisted",
        );
        let images: Vec<String> = self.images.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if images.len() > MAX_IMAGES {
            v.push("images", "too_many", format!("at most {MAX_IMAGES} images"));
        }
        for (i, u) in images.iter().enumerate() {
            if !image_ok(u) {
                v.push(&format!("images.{i}"), "invalid_format", "an image must be an http(s) URL or a path from /");
            }
        }
        let spec_names: Vec<String> = self.spec_names.iter().map(|s| s.trim().to_string()).collect();
        if spec_names.len() > MAX_SPEC_DIMS {
            v.push("spec_names", "too_many", format!("at most {MAX_SPEC_DIMS} specification dimensions"));
        }
        for (i, n) in spec_names.iter().enumerate() {
            if n.is_empty() || n.chars().count() > 16 {
                v.push(&format!("spec_names.{i}"), "invalid_value", "a specification name has 1 to 16 characters");
            } else if spec_names[..i].contains(n) {
                v.push(&format!("spec_names.{i}"), "duplicate", "specification names must differ");
            }
        }
        if self.skus.is_empty() {
            v.push("skus", "required", "a product needs at least one SKU");
        } else if self.skus.len() > MAX_SKUS {
            v.push("skus", "too_many", format!("at most {MAX_SKUS} SKUs"));
        }
        let mut skus = Vec::with_capacity(self.skus.len());
        let mut seen_specs: Vec<Vec<String>> = Vec::new();
        let mut seen_codes: Vec<String> = Vec::new();
        for (i, s) in self.skus.iter().enumerate() {
            let f = |name: &str| format!("skus.{i}.{name}");
            let spec: Vec<String> = s.spec.iter().map(|x| x.trim().to_string()).collect();
            if spec.len() != spec_names.len() {
                v.push(
                    &f("spec"),
                    "invalid_value",
                    format!("give one value for each of the {} specifications", spec_names.len()),
                );
            } else if spec.iter().any(|x| x.is_empty() || x.chars().count() > 32) {
                v.push(&f("spec"), "invalid_value", "a specification value has 1 to 32 characters");
            } else if seen_specs.contains(&spec) {
                v.push(&f("spec"), "duplicate", "two SKUs have the same specification");
            }
            seen_specs.push(spec.clone());
            let code = s.code.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_string);
            if let Some(c) = &code {
                if c.chars().count() > 64 || c.contains(char::is_whitespace) {
                    v.push(&f("code"), "invalid_format", "a SKU code has at most 64 characters and no spaces");
                } else if seen_codes.contains(c) {
                    v.push(&f("code"), "duplicate", "two SKUs have the same code");
                }
                seen_codes.push(c.clone());
            }
            if !(1..=MAX_UNIT_FEN).contains(&s.price_fen) {
                v.push(&f("price_fen"), "out_of_range", format!("a price is 1 to {MAX_UNIT_FEN} fen"));
            }
            if !(0..=MAX_STOCK).contains(&s.on_hand) {
                v.push(&f("on_hand"), "out_of_range", format!("stock is 0 to {MAX_STOCK}"));
            }
            skus.push(SkuInput { id: s.id, spec, code, price_fen: s.price_fen, on_hand: s.on_hand });
        }
        v.into_result()?;
        Ok(ProductInput {
            title,
            subtitle,
            category_id: self.category_id,
            shipping_template_id: self.shipping_template_id,
            store_id: self.store_id,
            images,
            detail,
            status,
            spec_names,
            skus,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryInput {
    pub name: String,
    pub parent_id: Option<uuid::Uuid>,
    pub sort: i64,
}

impl CategoryInput {
    pub fn validate(name: &str, parent_id: Option<uuid::Uuid>, sort: Option<i64>) -> Result<Self, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", name, 32);
        let sort = sort.unwrap_or(0);
        if !(0..=1_000_000).contains(&sort) {
            v.push("sort", "out_of_range", "sort is 0 to 1000000");
        }
        v.into_result()?;
        Ok(CategoryInput { name, parent_id, sort })
    }
}

/// A flat fee with an optional free-shipping threshold on goods after coupons (§4.1 step 8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShippingTemplateInput {
    pub name: String,
    pub fee_fen: i64,
    pub free_from_fen: Option<i64>,
}

/// Shipping fees above this are a typo (¥1,000).
pub const MAX_SHIPPING_FEN: i64 = 100_000;

impl ShippingTemplateInput {
    pub fn validate(name: &str, fee_fen: i64, free_from_fen: Option<i64>) -> Result<Self, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", name, 32);
        if !(0..=MAX_SHIPPING_FEN).contains(&fee_fen) {
            v.push("fee_fen", "out_of_range", format!("a shipping fee is 0 to {MAX_SHIPPING_FEN} fen"));
        }
        if let Some(f) = free_from_fen {
            if !(1..=MAX_UNIT_FEN).contains(&f) {
                v.push("free_from_fen", "out_of_range", "the free-shipping threshold is at least 1 fen");
            }
        }
        v.into_result()?;
        Ok(ShippingTemplateInput { name, fee_fen, free_from_fen })
    }
}

/// A hand-made stock change: a signed delta with its reason, or a count that sets on_hand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StockChange {
    Delta(i64),
    Set(i64),
}

impl StockChange {
    pub fn validate(delta: Option<i64>, set: Option<i64>) -> Result<StockChange, Vec<Violation>> {
        let mut v = Violations::new();
        let out = match (delta, set) {
            (Some(d), None) if d != 0 && d.abs() <= MAX_STOCK => Some(StockChange::Delta(d)),
            (Some(_), None) => {
                v.push("delta", "out_of_range", format!("a stock change is a non-zero number up to ±{MAX_STOCK}"));
                None
            }
            (None, Some(s)) if (0..=MAX_STOCK).contains(&s) => Some(StockChange::Set(s)),
            (None, Some(_)) => {
                v.push("on_hand", "out_of_range", format!("stock is 0 to {MAX_STOCK}"));
                None
            }
            _ => {
                v.push("delta", "required", "give either delta or on_hand");
                None
            }
        };
        v.into_result()?;
        Ok(out.expect("a violation was pushed otherwise"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sku(spec: &[&str], price: i64) -> SkuInput {
        SkuInput {
            id: None,
            spec: spec.iter().map(|s| s.to_string()).collect(),
            code: None,
            price_fen: price,
            on_hand: 5,
        }
    }

    fn draft() -> ProductDraft {
        ProductDraft {
            title: " 羊毛围巾 ".into(),
            spec_names: vec!["颜色".into()],
            skus: vec![sku(&["红"], 12900), sku(&["灰"], 12900)],
            images: vec!["https://img.example.com/a.jpg".into(), " ".into()],
            ..Default::default()
        }
    }

    fn fields(e: Vec<Violation>) -> Vec<String> {
        e.into_iter().map(|v| format!("{}:{}", v.field, v.code)).collect()
    }

    #[test]
    fn a_good_product_is_trimmed() {
        let p = draft().validate().unwrap();
        assert_eq!(p.title, "羊毛围巾");
        assert_eq!(p.status, ProductStatus::Draft);
        assert_eq!(p.images.len(), 1);
        assert_eq!(p.skus.len(), 2);
    }

    #[test]
    fn every_problem_is_named() {
        let mut d = draft();
        d.title = "".into();
        d.status = Some("sold".into());
        d.skus = vec![sku(&["红"], 0), sku(&["红"], 5), sku(&[], 5), sku(&["蓝"], MAX_UNIT_FEN + 1)];
        d.skus[1].code = Some("A 1".into());
        d.images = vec!["javascript:alert(1)".into()];
        assert_eq!(
            fields(d.validate().unwrap_err()),
            vec![
                "title:required",
                "status:invalid_value",
                "images.0:invalid_format",
                "skus.0.price_fen:out_of_range",
                "skus.1.spec:duplicate",
                "skus.1.code:invalid_format",
                "skus.2.spec:invalid_value",
                "skus.3.price_fen:out_of_range",
            ]
        );
    }

    #[test]
    fn sku_counts_and_spec_names() {
        let mut d = draft();
        d.skus.clear();
        d.spec_names = vec!["颜色".into(), "颜色".into(), "a".into(), "b".into()];
        let f = fields(d.validate().unwrap_err());
        assert!(f.contains(&"skus:required".to_string()), "{f:?}");
        assert!(f.contains(&"spec_names:too_many".to_string()), "{f:?}");
        assert!(f.contains(&"spec_names.1:duplicate".to_string()), "{f:?}");
        let mut d = draft();
        d.skus = (0..=MAX_SKUS).map(|i| sku(&[&i.to_string()], 1)).collect();
        assert_eq!(fields(d.validate().unwrap_err()), vec!["skus:too_many"]);
    }

    #[test]
    fn single_sku_products_have_no_spec() {
        let d = ProductDraft { title: "礼盒".into(), skus: vec![sku(&[], 1)], ..Default::default() };
        assert!(d.validate().is_ok());
    }

    #[test]
    fn shipping_and_stock_inputs() {
        assert!(ShippingTemplateInput::validate("全国", 1000, Some(9900)).is_ok());
        assert_eq!(
            fields(ShippingTemplateInput::validate("", -1, Some(0)).unwrap_err()),
            vec!["name:required", "fee_fen:out_of_range", "free_from_fen:out_of_range"]
        );
        assert_eq!(StockChange::validate(Some(-3), None).unwrap(), StockChange::Delta(-3));
        assert_eq!(StockChange::validate(None, Some(0)).unwrap(), StockChange::Set(0));
        assert_eq!(fields(StockChange::validate(Some(0), None).unwrap_err()), vec!["delta:out_of_range"]);
        assert_eq!(fields(StockChange::validate(None, None).unwrap_err()), vec!["delta:required"]);
        assert_eq!(fields(StockChange::validate(None, Some(-1)).unwrap_err()), vec!["on_hand:out_of_range"]);
        assert!(CategoryInput::validate("围巾", None, None).is_ok());
    }
}
