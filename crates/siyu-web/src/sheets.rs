//! Spreadsheets at the edge: reading an uploaded CSV or XLSX into a grid of strings, and
//! writing a table as CSV or XLSX. What the cells mean is decided in `siyu_core`.

use std::io::Cursor;

use calamine::{Reader, Xlsx};

/// The two formats siyu reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }
    pub fn ext(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
    /// An XLSX file is a zip archive; anything else is read as CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }
}

/// Reads the first sheet (XLSX) or the whole file (CSV: UTF-8 with or without BOM, else
/// GB18030 as Excel saves it on Chinese Windows). Rows keep their order; short rows are kept.
pub fn read_grid(bytes: &[u8]) -> Result<Vec<Vec<String>>, String> {
    match Format::sniff(bytes) {
        Format::Xlsx => {
            let mut wb: Xlsx<_> =
                Xlsx::new(Cursor::new(bytes)).map_err(|e| format!("not a readable XLSX workbook: {e}"))?;
            let range = wb
                .worksheet_range_at(0)
                .ok_or("the workbook has no sheet")?
                .map_err(|e| format!("the first sheet cannot be read: {e}"))?;
            Ok(range.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect())
        }
        Format::Csv => {
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t.trim_start_matches('\u{feff}').to_string(),
                Err(_) => {
                    let (t, _, bad) = encoding_rs::GB18030.decode(bytes);
                    if bad {
                        return Err("the file is neither UTF-8 nor GB18030 text".into());
                    }
                    t.into_owned()
                }
            };
            let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
            r.records()
                .map(|rec| rec.map(|x| x.iter().map(str::to_string).collect()).map_err(|e| format!("bad CSV: {e}")))
                .collect()
        }
    }
}

/// Writes `header` and `rows` in `format`. CSV starts with a BOM so Excel shows Chinese.
pub fn write_table(format: Format, sheet: &str, header: &[String], rows: &[Vec<String>]) -> Result<Vec<u8>, String> {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
            w.write_record(header).map_err(|e| e.to_string())?;
            for r in rows {
                w.write_record(r).map_err(|e| e.to_string())?;
            }
            w.into_inner().map_err(|e| e.to_string())
        }
        Format::Xlsx => {
            let mut wb = rust_xlsxwriter::Workbook::new();
            let bold = rust_xlsxwriter::Format::new().set_bold();
            let ws = wb.add_worksheet();
            ws.set_name(sheet).map_err(|e| e.to_string())?;
            for (c, h) in header.iter().enumerate() {
                ws.write_string_with_format(0, c as u16, h, &bold).map_err(|e| e.to_string())?;
            }
            for (r, row) in rows.iter().enumerate() {
                for (c, v) in row.iter().enumerate() {
                    // Text cells: phone numbers and ids must not turn into numbers.
                    ws.write_string(r as u32 + 1, c as u16, v).map_err(|e| e.to_string())?;
                }
            }
            wb.save_to_buffer().map_err(|e| e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlsx_written_is_read_back_cell_for_cell() {
        let header = vec!["姓名".to_string(), "手机号".to_string()];
        let rows = vec![vec!["李雷".to_string(), "13812345678".to_string()], vec!["韩梅梅".to_string(), String::new()]];
        let bytes = write_table(Format::Xlsx, "客户", &header, &rows).unwrap();
        assert_eq!(Format::sniff(&bytes), Format::Xlsx);
        let grid = read_grid(&bytes).unwrap();
        assert_eq!(grid[0], header);
        assert_eq!(grid[1], rows[0]);
        assert_eq!(grid[2][0], "韩梅梅");
    }

    #[test]
    fn csv_in_utf8_with_bom_and_in_gb18030() {
        let bytes = write_table(Format::Csv, "x", &["姓名".into()], &[vec!["李雷".into()]]).unwrap();
        assert_eq!(read_grid(&bytes).unwrap(), vec![vec!["姓名".to_string()], vec!["李雷".to_string()]]);
        let (gbk, _, _) = encoding_rs::GB18030.encode("姓名,手机号\n王芳,13800138000\n");
        let grid = read_grid(&gbk).unwrap();
        assert_eq!(grid[1], vec!["王芳".to_string(), "13800138000".to_string()]);
        assert!(read_grid(b"PK\x03\x04not a zip").is_err());
    }
}
