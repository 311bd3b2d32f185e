//! Item promotions (commerce-rules LD-1, H2-1, STK-1): 限时折扣 sets SKUs' prices inside a
//! half-open window; 第二件半价 halves the cheaper unit of each pair among some products. The
//! arithmetic is the pricing pipeline's; this module checks what an operator sets up.

use serde::{Deserialize, Serialize};

use super::pricing::{BP, MAX_UNIT_FEN};
use crate::time::Timestamp;
use crate::validate::{Violation, Violations};

/// At most this many SKUs or products in one item promotion.
pub const MAX_ITEMS: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountKind {
    /// 限时折扣: each SKU's price while the window is open.
    LimitedPrice,
    /// 第二件半价 among the products.
    SecondHalf,
    /// 组合套餐: these products in these quantities together cost one price (BD-1).
    Bundle,
}

impl DiscountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscountKind::LimitedPrice => "limited_price",
            DiscountKind::SecondHalf => "second_half",
            DiscountKind::Bundle => "bundle",
        }
    }
    pub fn parse(s: &str) -> Option<DiscountKind> {
        [DiscountKind::LimitedPrice, DiscountKind::SecondHalf, DiscountKind::Bundle]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// One item of a discount: a SKU with its price (限时折扣), a product (第二件半价), or a
/// product with its quantity (组合套餐).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscountItem {
    pub id: String,
    pub price_fen: Option<i64>,
    #[serde(default = "one")]
    pub qty: u32,
}

fn one() -> u32 {
    1
}

/// The most units of one product a bundle asks for.
pub const MAX_BUNDLE_QTY: u32 = 99;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiscountInput {
    pub name: String,
    pub kind: DiscountKind,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub items: Vec<DiscountItem>,
    /// For a bundle: what its components cost together.
    pub bundle_price_fen: Option<i64>,
}

/// What the API and console send.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DiscountDraft {
    pub name: String,
    pub kind: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// For 限时折扣: (SKU id, price in fen).
    #[serde(default)]
    pub skus: Vec<(String, i64)>,
    /// For 第二件半价: product ids.
    #[serde(default)]
    pub products: Vec<String>,
    /// For 组合套餐: (product id, quantity), and the bundle's price.
    #[serde(default)]
    pub components: Vec<(String, u32)>,
    pub bundle_price_fen: Option<i64>,
}

impl DiscountDraft {
    pub fn validate(&self) -> Result<DiscountInput, Vec<Violation>> {
        let mut v = Violations::new();
        let name = v.text("name", &self.name, 32);
        let kind = DiscountKind::parse(&self.kind);
        let items: Vec<DiscountItem> = match kind {
            Some(DiscountKind::LimitedPrice) => {
                if self.skus.is_empty() || self.skus.len() > MAX_ITEMS {
                    v.push("skus", "out_of_range", format!("a discount prices 1 to {MAX_ITEMS} SKUs"));
                }
                for (i, (id, price)) in self.skus.iter().enumerate() {
                    if !(1..=MAX_UNIT_FEN).contains(price) {
                        v.push(&format!("skus.{i}.price_fen"), "out_of_range", "a price is at least 0.01 yuan");
                    }
                    if self.skus[..i].iter().any(|x| &x.0 == id) {
                        v.push(&format!("skus.{i}.sku_id"), "duplicate", "each SKU appears once");
                    }
                }
                self.skus.iter().map(|(id, p)| DiscountItem { id: id.clone(), price_fen: Some(*p), qty: 1 }).collect()
            }
            Some(DiscountKind::SecondHalf) => {
                if self.products.is_empty() || self.products.len() > MAX_ITEMS {
                    v.push("product_ids", "out_of_range", format!("choose 1 to {MAX_ITEMS} products"));
                }
                let mut ids = self.products.clone();
                ids.sort();
                ids.dedup();
                ids.into_iter().map(|id| DiscountItem { id, price_fen: None, qty: 1 }).collect()
            }
            Some(DiscountKind::Bundle) => {
                let units: u32 = self.components.iter().map(|c| c.1).sum();
                if self.components.is_empty() || self.components.len() > MAX_ITEMS || units < 2 {
                    v.push("components", "out_of_range", "a bundle is at least two units of its products");
                }
                for (i, (id, qty)) in self.components.iter().enumerate() {
                    if !(1..=MAX_BUNDLE_QTY).contains(qty) {
                        v.push(&format!("components.{i}.qty"), "out_of_range", "a quantity is 1 to 99");
                    }
                    if self.components[..i].iter().any(|x| &x.0 == id) {
                        v.push(&format!("components.{i}.product_id"), "duplicate", "each product appears once");
                    }
                }
                if !self.bundle_price_fen.is_some_and(|p| (1..=MAX_UNIT_FEN).contains(&p)) {
                    v.push("bundle_price_fen", "out_of_range", "a bundle's price is at least 0.01 yuan");
                }
                self.components
                    .iter()
                    .map(|(id, q)| DiscountItem { id: id.clone(), price_fen: None, qty: *q })
                    .collect()
            }
            None => {
                v.push("kind", "invalid_value", "kind must be one of: limited_price, second_half, bundle");
                Vec::new()
            }
        };
        let (starts_at, ends_at) = match (self.starts_at, self.ends_at) {
            (Some(s), Some(e)) if s < e => (s, e),
            (Some(s), Some(_)) => {
                v.push("ends_at", "out_of_range", "a discount must end after it starts");
                (s, s)
            }
            _ => {
                v.push("starts_at", "required", "give the start and end of the discount");
                (Timestamp(0), Timestamp(0))
            }
        };
        v.into_result()?;
        let bundle_price_fen = if kind == Some(DiscountKind::Bundle) { self.bundle_price_fen } else { None };
        Ok(DiscountInput {
            name,
            kind: kind.unwrap_or(DiscountKind::LimitedPrice),
            starts_at,
            ends_at,
            items,
            bundle_price_fen,
        })
    }
}

/// A 限时折扣 price from a SKU's price at `bp` of it (8.5 折 = 8500), floored to the fen and
/// never below 1 fen; `None` when that is no discount at all.
pub fn price_at(list_fen: i64, bp: i64) -> Option<i64> {
    if !(1..BP).contains(&bp) || list_fen < 1 {
        return None;
    }
    let p = ((list_fen as i128 * bp as i128) / BP as i128) as i64;
    Some(p.max(1)).filter(|p| *p < list_fen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> DiscountDraft {
        DiscountDraft {
            name: "周末限时折扣".into(),
            kind: "limited_price".into(),
            starts_at: Some(Timestamp(10)),
            ends_at: Some(Timestamp(20)),
            skus: vec![("a".into(), 8000), ("b".into(), 9900)],
            products: Vec::new(),
            components: Vec::new(),
            bundle_price_fen: None,
        }
    }

    fn fields(d: &DiscountDraft) -> Vec<String> {
        d.validate().err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn limited_prices_are_checked_per_sku() {
        let ok = draft().validate().unwrap();
        assert_eq!(ok.items[0], DiscountItem { id: "a".into(), price_fen: Some(8000), qty: 1 });
        let mut d = draft();
        d.skus = vec![("a".into(), 0), ("a".into(), 100)];
        assert_eq!(fields(&d), ["skus.0.price_fen", "skus.1.sku_id"]);
        let mut d = draft();
        d.skus.clear();
        d.ends_at = Some(Timestamp(10));
        assert_eq!(fields(&d), ["skus", "ends_at"]);
    }

    #[test]
    fn second_half_takes_products_once() {
        let mut d = draft();
        d.kind = "second_half".into();
        d.products = vec!["p2".into(), "p1".into(), "p2".into()];
        let ok = d.validate().unwrap();
        assert_eq!(ok.kind, DiscountKind::SecondHalf);
        let ids: Vec<&str> = ok.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["p1", "p2"]);
        d.products.clear();
        assert_eq!(fields(&d), ["product_ids"]);
        d.kind = "bogo".into();
        assert_eq!(fields(&d), ["kind"]);
    }

    #[test]
    fn bundles_need_two_units_and_a_price() {
        let mut d = draft();
        d.kind = "bundle".into();
        d.components = vec![("cup".into(), 2), ("saucer".into(), 1)];
        d.bundle_price_fen = Some(5_000);
        let ok = d.validate().unwrap();
        assert_eq!((ok.items.len(), ok.items[0].qty, ok.bundle_price_fen), (2, 2, Some(5_000)));
        d.components = vec![("cup".into(), 1)];
        d.bundle_price_fen = Some(0);
        assert_eq!(fields(&d), ["components", "bundle_price_fen"]);
        d.components = vec![("cup".into(), 100), ("cup".into(), 1)];
        d.bundle_price_fen = Some(1);
        assert_eq!(fields(&d), ["components.0.qty", "components.1.product_id"]);
    }

    #[test]
    fn zhe_prices_floor_to_the_fen_and_must_discount() {
        assert_eq!(price_at(12_900, 8_500), Some(10_965));
        assert_eq!(price_at(999, 5_000), Some(499));
        assert_eq!(price_at(1, 5_000), None, "1 fen cannot go lower");
        assert_eq!(price_at(2, 100), Some(1), "never below 1 fen");
        assert_eq!(price_at(100, 10_000), None);
        assert_eq!(price_at(100, 0), None);
    }
}
