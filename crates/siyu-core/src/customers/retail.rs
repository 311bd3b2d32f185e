//! Reads the UCI "Online Retail" transaction file into purchases, for the demo tenant and for
//! tests that check RFM against an independent computation.
//!
//! Rules, stated once so the demo and the tests agree:
//! - an order is an invoice with a customer id; cancellation invoices (`C…`) and guest lines
//!   (no customer id) are left out, and so are invoices whose total is not positive;
//! - prices are decimal with up to three places and are read exactly (in thousandths); an
//!   invoice's amount is Σ quantity × price, rounded half up to the fen once, per invoice;
//! - `InvoiceDate` is wall-clock time, read in the tenant's zone;
//! - the customer id `17850.0` is the key `17850`.

use std::collections::BTreeMap;

use crate::time::Timestamp;

/// One invoice of a known customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub invoice: String,
    pub customer: String,
    pub at: Timestamp,
    pub paid_fen: i64,
    /// Its product lines (see [`RetailProduct`]), in file order.
    pub lines: Vec<InvoiceLine>,
}

/// A product line of an invoice: the unit price rounded half up to the fen once per unit, so
/// an order built from these lines can differ from the invoice's total by the rounding and by
/// the lines that are not products (postage, fees).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceLine {
    pub code: String,
    pub qty: i64,
    pub unit_fen: i64,
}

/// A product of the file: its stock code, first description, latest unit price (fen, the
/// price figures read as yuan) and units sold to known customers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetailProduct {
    pub code: String,
    pub description: String,
    pub unit_fen: i64,
    pub units_sold: i64,
}

/// What the file holds, by invoice, with each customer's country (of their first invoice),
/// and its products, best sellers first (codes starting with a digit: postage, fees and
/// manual lines are not products).
#[derive(Clone, Debug, Default)]
pub struct RetailData {
    pub invoices: Vec<Invoice>,
    pub products: Vec<RetailProduct>,
    pub countries: BTreeMap<String, String>,
    pub lines: usize,
    pub skipped_lines: usize,
}

/// Thousandths from a decimal string such as `2.55`, `-11062.06` or `0.001`.
pub fn parse_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || frac.len() > 3
        || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = format!("{frac:0<3}").parse().ok()?;
    let v = int.checked_mul(1000)?.checked_add(frac)?;
    Some(if neg { -v } else { v })
}

/// Thousandths to fen, half up (away from zero for negatives).
pub fn milli_to_fen(m: i64) -> i64 {
    if m >= 0 {
        (m + 5) / 10
    } else {
        -((-m + 5) / 10)
    }
}

fn parse_local(s: &str, offset_hours: i8) -> Option<Timestamp> {
    let fmt = ::time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let t = ::time::PrimitiveDateTime::parse(s.trim(), &fmt).ok()?;
    let off = ::time::UtcOffset::from_hms(offset_hours, 0, 0).ok()?;
    Some(Timestamp((t.assume_offset(off).unix_timestamp_nanos() / 1000) as i64))
}

/// Parses the CSV (with its header row). Malformed lines are counted, not fatal.
pub fn parse(csv_text: &[u8], offset_hours: i8) -> Result<RetailData, String> {
    let mut rd = csv::ReaderBuilder::new().has_headers(true).from_reader(csv_text);
    let headers = rd.headers().map_err(|e| e.to_string())?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name).ok_or(format!("missing column {name}"));
    let (c_inv, c_qty, c_date, c_price, c_cust, c_country) = (
        col("InvoiceNo")?,
        col("Quantity")?,
        col("InvoiceDate")?,
        col("UnitPrice")?,
        col("CustomerID")?,
        col("Country")?,
    );
    let (c_code, c_desc) =
        (headers.iter().position(|h| h == "StockCode"), headers.iter().position(|h| h == "Description"));
    // invoice → (customer, first time, total thousandths, product lines)
    let mut by_invoice: BTreeMap<String, (String, Timestamp, i64, Vec<InvoiceLine>)> = BTreeMap::new();
    // code → (description, latest time, its price, units)
    let mut by_code: BTreeMap<String, (String, Timestamp, i64, i64)> = BTreeMap::new();
    let mut out = RetailData::default();
    for rec in rd.records() {
        out.lines += 1;
        let Ok(rec) = rec else {
            out.skipped_lines += 1;
            continue;
        };
        let inv = rec.get(c_inv).unwrap_or("").trim();
        let cust = rec.get(c_cust).unwrap_or("").trim();
        if inv.is_empty() || inv.starts_with('C') || cust.is_empty() {
            continue;
        }
        let cust = cust.strip_suffix(".0").unwrap_or(cust).to_string();
        let (Some(qty), Some(price), Some(at)) = (
            rec.get(c_qty).and_then(|q| q.trim().parse::<i64>().ok()),
            rec.get(c_price).and_then(parse_milli),
            rec.get(c_date).and_then(|d| parse_local(d, offset_hours)),
        ) else {
            out.skipped_lines += 1;
            continue;
        };
        out.countries.entry(cust.clone()).or_insert_with(|| rec.get(c_country).unwrap_or("").trim().to_string());
        let code = c_code.and_then(|c| rec.get(c)).unwrap_or("").trim();
        let e = by_invoice.entry(inv.to_string()).or_insert((cust, at, 0, Vec::new()));
        e.1 = e.1.min(at);
        e.2 += qty * price;
        if code.starts_with(|c: char| c.is_ascii_digit()) && qty > 0 && price > 0 {
            e.3.push(InvoiceLine { code: code.to_string(), qty, unit_fen: milli_to_fen(price).max(1) });
            let desc = c_desc.and_then(|c| rec.get(c)).unwrap_or("").trim();
            let p = by_code.entry(code.to_string()).or_insert((desc.to_string(), at, price, 0));
            if p.0.is_empty() {
                p.0 = desc.to_string();
            }
            if at >= p.1 {
                (p.1, p.2) = (at, price);
            }
            p.3 += qty;
        }
    }
    out.invoices = by_invoice
        .into_iter()
        .map(|(invoice, (customer, at, milli, lines))| Invoice {
            invoice,
            customer,
            at,
            paid_fen: milli_to_fen(milli),
            lines,
        })
        .filter(|i| i.paid_fen > 0)
        .collect();
    out.products = by_code
        .into_iter()
        .filter(|(_, p)| !p.0.is_empty())
        .map(|(code, (description, _, price, units_sold))| RetailProduct {
            code,
            description,
            unit_fen: milli_to_fen(price).max(1),
            units_sold,
        })
        .collect();
    out.products.sort_by(|a, b| b.units_sold.cmp(&a.units_sold).then_with(|| a.code.cmp(&b.code)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_exactly_and_rounded_once_per_invoice() {
        assert_eq!(parse_milli("2.55"), Some(2550));
        assert_eq!(parse_milli("0.001"), Some(1));
        assert_eq!(parse_milli("-11062.06"), Some(-11_062_060));
        assert_eq!(parse_milli("3"), Some(3000));
        assert_eq!(parse_milli("1.2345"), None);
        assert_eq!(parse_milli("x"), None);
        assert_eq!(milli_to_fen(1005), 101);
        assert_eq!(milli_to_fen(1004), 100);
        assert_eq!(milli_to_fen(-1005), -101);
        let csv = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
            1,A,\"CUP, RED\",3,2010-12-01 08:26:00,0.335,17850.0,United Kingdom\n\
            1,B,PLATE,1,2010-12-01 08:26:00,1.00,17850.0,United Kingdom\n\
            C2,A,CUP,-3,2010-12-02 08:00:00,0.335,17850.0,United Kingdom\n\
            3,A,CUP,1,2010-12-02 09:00:00,2.00,,United Kingdom\n\
            4,A,CUP,-1,2010-12-03 09:00:00,2.00,12345.0,France\n\
            5,A,CUP,x,2010-12-03 09:00:00,2.00,12345.0,France\n";
        let d = parse(csv.as_bytes(), 8).unwrap();
        // 3 × 0.335 + 1.00 = 2.005 → 2.01, once for the invoice.
        assert_eq!(d.invoices.len(), 1);
        assert_eq!(d.invoices[0].paid_fen, 201);
        assert_eq!(d.invoices[0].customer, "17850");
        assert_eq!(d.invoices[0].at, Timestamp::parse_rfc3339("2010-12-01T08:26:00+08:00").unwrap());
        assert_eq!(d.skipped_lines, 1);
        assert_eq!(d.countries.get("12345").map(String::as_str), Some("France"));
        // Codes A and B start with a letter: not products.
        assert!(d.products.is_empty());
    }

    #[test]
    fn products_are_best_sellers_first_at_their_latest_price() {
        let csv = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
            1,85123A,WHITE HEART,2,2010-12-01 08:26:00,2.55,17850.0,United Kingdom\n\
            2,85123A,,4,2010-12-05 08:26:00,2.95,17850.0,United Kingdom\n\
            2,22423,CAKESTAND,1,2010-12-05 08:26:00,12.75,17850.0,United Kingdom\n\
            3,POST,POSTAGE,1,2010-12-05 08:26:00,18.00,17850.0,United Kingdom\n";
        let d = parse(csv.as_bytes(), 8).unwrap();
        let got: Vec<_> =
            d.products.iter().map(|p| (p.code.as_str(), p.description.as_str(), p.unit_fen, p.units_sold)).collect();
        assert_eq!(got, vec![("85123A", "WHITE HEART", 295, 6), ("22423", "CAKESTAND", 1275, 1)]);
        // Each invoice keeps its product lines at their own prices; postage is not one.
        let lines: Vec<Vec<(&str, i64, i64)>> =
            d.invoices.iter().map(|i| i.lines.iter().map(|l| (l.code.as_str(), l.qty, l.unit_fen)).collect()).collect();
        assert_eq!(lines, vec![vec![("85123A", 2, 255)], vec![("85123A", 4, 295), ("22423", 1, 1275)], vec![]]);
    }
}
