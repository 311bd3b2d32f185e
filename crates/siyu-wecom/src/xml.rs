//! Just enough XML for WeCom: a root element whose children are text fields. Values may come
//! as plain text or CDATA (numbers too); a child holding `<Item>`s, such as `MemChangeList`,
//! becomes its items joined with commas, the same shape as its comma-separated CDATA form.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The root's children as `(name, text)` pairs, in document order. Unknown elements are kept
/// (callers ignore what they do not know).
pub fn flat_fields(xml: &str) -> Result<Vec<(String, String)>, String> {
    let mut r = Reader::from_str(xml);
    r.config_mut().trim_text(true);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut depth = 0usize;
    let mut saw_root = false;
    loop {
        match r.read_event() {
            Ok(Event::Start(e)) => {
                depth += 1;
                if depth == 1 {
                    saw_root = true;
                } else if depth == 2 {
                    out.push((String::from_utf8_lossy(e.name().as_ref()).into_owned(), String::new()));
                }
            }
            Ok(Event::Empty(e)) => {
                if depth == 1 {
                    out.push((String::from_utf8_lossy(e.name().as_ref()).into_owned(), String::new()));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Text(t)) => {
                let v = t.unescape().map_err(|e| format!("bad XML text: {e}"))?.into_owned();
                push_text(&mut out, depth, &v);
            }
            Ok(Event::CData(c)) => {
                let v = String::from_utf8(c.into_inner().into_owned()).map_err(|_| "CDATA is not UTF-8".to_string())?;
                push_text(&mut out, depth, &v);
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("bad XML at byte {}: {e}", r.error_position())),
        }
    }
    if !saw_root {
        return Err("no root element".into());
    }
    Ok(out)
}

fn push_text(out: &mut [(String, String)], depth: usize, v: &str) {
    let Some(last) = out.last_mut() else { return };
    match depth {
        2 => last.1.push_str(v),
        d if d >= 3 => {
            if !last.1.is_empty() {
                last.1.push(',');
            }
            last.1.push_str(v);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_plain_and_item_lists() {
        let f = flat_fields(
            "<xml><A><![CDATA[x]]></A>\n<B>12</B><C><![CDATA[34]]></C><L><Item>a</Item><Item>b</Item></L><M><![CDATA[c,d]]></M><E/></xml>",
        )
        .unwrap();
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            (get("A"), get("B"), get("C"), get("L"), get("M"), get("E")),
            (Some("x"), Some("12"), Some("34"), Some("a,b"), Some("c,d"), Some(""))
        );
    }

    #[test]
    fn escapes_and_errors() {
        let f = flat_fields("<xml><T>a &amp; b</T></xml>").unwrap();
        assert_eq!(f[0].1, "a & b");
        assert!(flat_fields("").is_err());
        assert!(flat_fields("<xml><A>x</B></xml>").is_err());
    }
}
