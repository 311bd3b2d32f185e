//! QR codes of siyu's public URLs (a live code's landing page), for operators to print: SVG
//! for designers, PNG for everyone else. Error correction M survives a poster's wear.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

use crate::error::ApiError;

/// Pixels per module in the PNG, and modules of white border on every side.
const SCALE: usize = 10;
const QUIET: usize = 4;

fn encode(data: &str) -> Result<QrCode, ApiError> {
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| ApiError::Internal(format!("QR code of {} bytes: {e}", data.len())))
}

pub fn svg(data: &str) -> Result<String, ApiError> {
    Ok(encode(data)?.render::<svg::Color>().min_dimensions(320, 320).quiet_zone(true).build())
}

pub fn png(data: &str) -> Result<Vec<u8>, ApiError> {
    let code = encode(data)?;
    let w = code.width();
    let colors = code.to_colors();
    let size = (w + 2 * QUIET) * SCALE;
    let mut px = vec![255u8; size * size];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = ((i % w + QUIET) * SCALE, (i / w + QUIET) * SCALE);
            for row in px[y * size..(y + SCALE) * size].chunks_mut(size) {
                row[x..x + SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size as u32, size as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| ApiError::Internal(format!("png: {e}")))?;
        writer.write_image_data(&px).map_err(|e| ApiError::Internal(format!("png: {e}")))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_holds_every_module_at_scale() {
        let url = "https://siyu.example.com/l/demo/01a2082e-76e8-7230-88c7-235b164307d5";
        let bytes = png(url).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let code = encode(url).unwrap();
        let w = code.width();
        assert_eq!(info.width as usize, (w + 2 * QUIET) * SCALE);
        // The centre pixel of every module has the module's colour; the border is white.
        let size = info.width as usize;
        for (i, c) in code.to_colors().iter().enumerate() {
            let (x, y) = ((i % w + QUIET) * SCALE + SCALE / 2, (i / w + QUIET) * SCALE + SCALE / 2);
            assert_eq!(buf[y * size + x] == 0, *c == Color::Dark);
        }
        assert!(buf[..size * QUIET * SCALE].iter().all(|p| *p == 255));
    }

    #[test]
    fn the_svg_is_an_image() {
        let s = svg("https://siyu.example.com/l/demo/x").unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg") && s.contains("<path"), "{s}");
    }
}
