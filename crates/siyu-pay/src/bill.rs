//! The daily trade bill (交易账单, `bill_type=ALL`): WeChat Pay's CSV, in which every data
//! field starts with a backtick and amounts are yuan with two decimals. A payment is a row
//! whose 交易状态 is `SUCCESS`; a refund is a `REFUND` row naming its 商户退款单号 and 退款金额.
//! The last two lines are the day's totals.
//!
//! [`parse`] reads a bill into lines siyu reconciles; [`render`] writes one (the sandbox's).

/// The header row of an ALL bill.
pub const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,\
交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,\
商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUMMARY: &str = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillKind {
    Payment,
    Refund,
}

/// One row of the bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillLine {
    pub kind: BillKind,
    /// `yyyy-MM-dd HH:mm:ss`, Beijing time.
    pub time: String,
    pub appid: String,
    pub mchid: String,
    pub transaction_id: String,
    pub out_trade_no: String,
    pub openid: String,
    /// The order amount (应结订单金额), fen.
    pub amount_fen: i64,
    /// For a refund: its ids and amount, fen.
    pub refund_id: String,
    pub out_refund_no: String,
    pub refund_fen: i64,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillError {
    #[error("the bill does not start with the ALL bill's header")]
    Header,
    #[error("bill line {line}: {why}")]
    Line { line: usize, why: String },
    #[error("the bill's totals say {expected} rows, it holds {got}")]
    Count { expected: usize, got: usize },
}

/// Fen from `12.34` (two decimals at most; the bill never has more).
fn fen(s: &str) -> Option<i64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || frac.len() > 2 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    int.parse::<i64>().ok()?.checked_mul(100)?.checked_add(frac)
}

fn yuan(f: i64) -> String {
    format!("{}.{:02}", f / 100, f % 100)
}

/// A bill field: the backtick WeChat Pay prefixes (so spreadsheets keep long numbers as text)
/// comes off.
fn field(s: &str) -> &str {
    s.trim().strip_prefix('`').unwrap_or(s.trim())
}

/// Reads an ALL bill. Every data row must parse; the totals' row count must match.
pub fn parse(text: &str) -> Result<Vec<BillLine>, BillError> {
    let text = text.trim_start_matches('\u{feff}');
    let mut lines = text.lines().filter(|l| !l.trim().is_empty()).enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == HEADER => {}
        _ => return Err(BillError::Header),
    }
    let mut out = Vec::new();
    let mut expected = None;
    while let Some((i, l)) = lines.next() {
        if l.trim() == SUMMARY {
            let totals = lines.next().map(|(_, t)| t).unwrap_or("");
            let n = totals.split(',').next().map(field).and_then(|n| n.parse::<usize>().ok());
            expected = Some(n.ok_or(BillError::Line { line: i + 2, why: "unreadable totals".into() })?);
            break;
        }
        let f: Vec<&str> = l.split(',').map(field).collect();
        let bad = |why: &str| BillError::Line { line: i + 1, why: why.into() };
        if f.len() != 27 {
            return Err(bad("expected 27 fields"));
        }
        let kind = match f[9] {
            "SUCCESS" => BillKind::Payment,
            "REFUND" => BillKind::Refund,
            other => return Err(bad(&format!("unknown 交易状态 {other}"))),
        };
        let money = |s: &str| fen(s).ok_or_else(|| bad(&format!("bad amount {s:?}")));
        out.push(BillLine {
            kind,
            time: f[0].into(),
            appid: f[1].into(),
            mchid: f[2].into(),
            transaction_id: f[5].into(),
            out_trade_no: f[6].into(),
            openid: f[7].into(),
            amount_fen: money(f[12])?,
            refund_id: f[14].into(),
            out_refund_no: f[15].into(),
            refund_fen: money(f[16])?,
            description: f[20].into(),
        });
    }
    match expected {
        Some(n) if n != out.len() => Err(BillError::Count { expected: n, got: out.len() }),
        _ => Ok(out),
    }
}

/// Writes an ALL bill with its totals.
pub fn render(lines: &[BillLine]) -> String {
    let mut s = String::from(HEADER);
    s.push_str("\r\n");
    let (mut paid, mut refunded) = (0, 0);
    for l in lines {
        let (state, refund_kind, refund_state) = match l.kind {
            BillKind::Payment => ("SUCCESS", "", ""),
            BillKind::Refund => ("REFUND", "ORIGINAL", "SUCCESS"),
        };
        match l.kind {
            BillKind::Payment => paid += l.amount_fen,
            BillKind::Refund => refunded += l.refund_fen,
        }
        let fields = [
            l.time.as_str(),
            &l.appid,
            &l.mchid,
            "0",
            "",
            &l.transaction_id,
            &l.out_trade_no,
            &l.openid,
            "JSAPI",
            state,
            "OTHERS",
            "CNY",
            &yuan(l.amount_fen),
            "0.00",
            &l.refund_id,
            &l.out_refund_no,
            &yuan(l.refund_fen),
            "0.00",
            refund_kind,
            refund_state,
            // Commas would break the row; WeChat Pay's own descriptions never carry one.
            &l.description.replace(',', " "),
            "",
            "0.00",
            "0.60%",
            &yuan(l.amount_fen),
            &yuan(l.refund_fen),
            "",
        ];
        let row: Vec<String> = fields.iter().map(|x| format!("`{x}")).collect();
        s.push_str(&row.join(","));
        s.push_str("\r\n");
    }
    s.push_str(SUMMARY);
    s.push_str("\r\n");
    let totals =
        [lines.len().to_string(), yuan(paid), yuan(refunded), "0.00".into(), "0.00".into(), yuan(paid), yuan(refunded)];
    s.push_str(&totals.iter().map(|x| format!("`{x}")).collect::<Vec<_>>().join(","));
    s.push_str("\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: BillKind, amount: i64, refund: i64) -> BillLine {
        BillLine {
            kind,
            time: "2026-11-22 10:00:00".into(),
            appid: "wx1".into(),
            mchid: "1900000109".into(),
            transaction_id: "4200000000202611220001".into(),
            out_trade_no: "20261122P1".into(),
            openid: "o-1".into(),
            amount_fen: amount,
            refund_id: if kind == BillKind::Refund { "50000000382019052709732678859".into() } else { String::new() },
            out_refund_no: if kind == BillKind::Refund { "R1".into() } else { String::new() },
            refund_fen: refund,
            description: "杯子, 白".into(),
        }
    }

    #[test]
    fn a_rendered_bill_reads_back() {
        let lines = vec![line(BillKind::Payment, 10_001, 0), line(BillKind::Refund, 10_001, 3_333)];
        let text = render(&lines);
        assert!(text.contains("`100.01") && text.contains("`33.33") && text.contains("`2,`100.01,`33.33"), "{text}");
        let mut want = lines.clone();
        for l in &mut want {
            l.description = "杯子  白".into();
        }
        assert_eq!(parse(&text).unwrap(), want);
        assert_eq!(parse(&render(&[])).unwrap(), vec![]);
    }

    #[test]
    fn a_bad_bill_is_refused_with_its_line() {
        assert_eq!(parse("hello"), Err(BillError::Header));
        let text = render(&[line(BillKind::Payment, 100, 0)]);
        let broken = text.replace("`1.00,`0.00,`", "`1.0x,`0.00,`");
        assert!(matches!(parse(&broken), Err(BillError::Line { line: 2, .. })), "{:?}", parse(&broken));
        let short = text.replace("\r\n`1,", "\r\n`2,");
        assert_eq!(parse(&short), Err(BillError::Count { expected: 2, got: 1 }));
        let unknown = text.replace("`SUCCESS", "`REVOKED");
        assert!(matches!(parse(&unknown), Err(BillError::Line { .. })));
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(fen("0.01"), Some(1));
        assert_eq!(fen("12.3"), Some(1230));
        assert_eq!(fen("12"), Some(1200));
        assert_eq!(fen("1.234"), None);
        assert_eq!(fen("-1.00"), None);
        assert_eq!(yuan(1), "0.01");
        assert_eq!(yuan(123_456), "1234.56");
    }
}
