//! Charts of an alert: its series over the window, threshold/limit/band
//! lines, the pending and firing spans shaded, and deploy markers as
//! labelled vertical lines, as SVG (pages, webhooks) or PNG (email).
//!
//! A [`ChartSpec`] is plain data, so callers decide what to draw and this
//! module only draws it (`draw`); [`alert`] builds the spec for a live
//! alert from the rule and the store. The font (DejaVu Sans, under
//! `assets/fonts/` with its licence) is compiled in and registered with
//! plotters' `ab_glyph` backend, so rendering never touches system fonts.

pub mod alert;
mod draw;

use std::sync::OnceLock;

use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name the embedded font is registered under (and that SVG names).
pub const FONT_FAMILY: &str = "sans-serif";

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("chart: the embedded font could not be loaded")]
    Font,
    #[error("chart: {0}")]
    Draw(String),
    #[error("chart: PNG encoding failed: {0}")]
    Png(String),
    #[error("chart: {width}x{height} is not a sensible size (100..=4000 pixels each way)")]
    Size { width: u32, height: u32 },
    /// The alert to draw is unknown (not active, or resolved long ago).
    #[error("{0}")]
    NotFound(String),
    /// The alert's expression could not be evaluated over the window.
    #[error("{0}")]
    Query(String),
}

/// One line of data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartSeries {
    pub name: String,
    /// (Unix ms, value), oldest first; NaN leaves a gap.
    pub points: Vec<(i64, f64)>,
}

/// A horizontal line: a threshold or a limit.
#[derive(Clone, Debug, PartialEq)]
pub struct HLine {
    pub label: String,
    pub value: f64,
}

/// The expected range of a series, drawn as a shaded band.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Band {
    pub label: String,
    pub lower: Vec<(i64, f64)>,
    pub upper: Vec<(i64, f64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    Pending,
    Firing,
}

/// A shaded time range.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub kind: SpanKind,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// A labelled vertical line (a deploy marker).
#[derive(Clone, Debug, PartialEq)]
pub struct VLine {
    pub at_ms: i64,
    pub label: String,
    pub kind: crate::deploys::Kind,
    /// What hovering the line shows in SVG (version, commit, who, when);
    /// empty for none. PNGs cannot hover and ignore it.
    pub detail: String,
}

/// Everything a chart shows.
#[derive(Clone, Debug, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub series: Vec<ChartSeries>,
    pub lines: Vec<HLine>,
    pub bands: Vec<Band>,
    pub spans: Vec<Span>,
    pub markers: Vec<VLine>,
    pub width: u32,
    pub height: u32,
}

impl Default for ChartSpec {
    fn default() -> Self {
        ChartSpec {
            title: String::new(),
            from_ms: 0,
            to_ms: 0,
            series: Vec::new(),
            lines: Vec::new(),
            bands: Vec::new(),
            spans: Vec::new(),
            markers: Vec::new(),
            width: 900,
            height: 360,
        }
    }
}

/// Registers the embedded font with plotters, once per process.
fn ensure_font() -> Result<(), ChartError> {
    static OK: OnceLock<bool> = OnceLock::new();
    if *OK.get_or_init(|| plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_ok()) {
        Ok(())
    } else {
        Err(ChartError::Font)
    }
}

fn check_size(spec: &ChartSpec) -> Result<(), ChartError> {
    let ok = |v: u32| (100..=4000).contains(&v);
    if ok(spec.width) && ok(spec.height) {
        Ok(())
    } else {
        Err(ChartError::Size { width: spec.width, height: spec.height })
    }
}

/// Renders `spec` as an SVG document. Markers with a `detail` get an
/// invisible hit strip along their line whose `<title>` the browser shows
/// on hover (no script needed).
pub fn render_svg(spec: &ChartSpec) -> Result<String, ChartError> {
    ensure_font()?;
    check_size(spec)?;
    let mut out = String::new();
    let frame = {
        let root = SVGBackend::with_string(&mut out, (spec.width, spec.height)).into_drawing_area();
        let frame = draw::draw(&root, spec)?;
        root.present().map_err(|e| ChartError::Draw(e.to_string()))?;
        frame
    };
    let hits = draw::marker_hits(spec, &frame);
    if !hits.is_empty() {
        if let Some(end) = out.rfind("</svg>") {
            out.insert_str(end, &hits);
        }
    }
    Ok(out)
}

/// Escapes text for HTML and XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Renders `spec` as a PNG image.
pub fn render_png(spec: &ChartSpec) -> Result<Vec<u8>, ChartError> {
    ensure_font()?;
    check_size(spec)?;
    let (w, h) = (spec.width, spec.height);
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw::draw(&root, spec)?;
        root.present().map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut writer = enc.write_header().map_err(|e| ChartError::Png(e.to_string()))?;
        writer.write_image_data(&rgb).map_err(|e| ChartError::Png(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploys::Kind;

    const MIN: i64 = 60_000;

    pub(crate) fn sample_spec() -> ChartSpec {
        let t0 = 1_700_000_000_000;
        let points =
            (0..=120).map(|i| (t0 + i * MIN, if i < 60 { 0.5 } else { 0.5 + (i - 60) as f64 * 0.01 })).collect();
        ChartSpec {
            title: "FilterPassesEverything {service=\"checkout\"}".into(),
            from_ms: t0,
            to_ms: t0 + 120 * MIN,
            series: vec![ChartSeries { name: "out/in".into(), points }],
            lines: vec![HLine { label: "threshold 0.65".into(), value: 0.65 }],
            bands: vec![Band {
                label: "expected".into(),
                lower: vec![(t0, 0.35), (t0 + 120 * MIN, 0.35)],
                upper: vec![(t0, 0.65), (t0 + 120 * MIN, 0.65)],
            }],
            spans: vec![
                Span { kind: SpanKind::Pending, from_ms: t0 + 75 * MIN, to_ms: t0 + 85 * MIN },
                Span { kind: SpanKind::Firing, from_ms: t0 + 85 * MIN, to_ms: t0 + 120 * MIN },
            ],
            markers: vec![
                VLine {
                    at_ms: t0 + 20 * MIN,
                    label: "checkout v2.3 deployed".into(),
                    kind: Kind::Deploy,
                    detail: "checkout v2.3 <abc1234> by ana".into(),
                },
                VLine {
                    at_ms: t0 + 100 * MIN,
                    label: "rollback to v2.2".into(),
                    kind: Kind::Rollback,
                    detail: String::new(),
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn svg_has_the_lines_and_labels() {
        let svg = render_svg(&sample_spec()).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.contains("checkout v2.3 deployed"));
        assert!(svg.contains("rollback to v2.2"));
        assert!(svg.contains("threshold 0.65"));
        assert!(svg.contains("<polyline"), "the series is drawn");
        // The marker with a detail has a hover strip; the one without none.
        assert_eq!(svg.matches("<title>").count(), 1, "{svg}");
        assert!(svg.contains("<title>checkout v2.3 &lt;abc1234&gt; by ana</title>"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn png_is_a_png_and_not_blank() {
        let png = render_png(&sample_spec()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 5_000, "a chart with text compresses to more than {} bytes", png.len());
        if let Ok(dir) = std::env::var("FOREWARN_CHART_OUT") {
            std::fs::write(std::path::Path::new(&dir).join("sample.png"), &png).unwrap();
        }
    }

    #[test]
    fn long_titles_are_cut_to_fit() {
        let mut spec = sample_spec();
        spec.title = format!("Alert {{{}}}", "label=\"value\", ".repeat(40));
        spec.width = 400;
        let svg = render_svg(&spec).unwrap();
        assert!(svg.contains("Alert {label=") && svg.contains('…'), "the title is cut with an ellipsis");
        assert!(!svg.contains(&spec.title));
    }

    #[test]
    fn empty_and_flat_series_still_render() {
        let mut spec = ChartSpec { from_ms: 0, to_ms: 60_000, ..Default::default() };
        assert!(render_svg(&spec).is_ok());
        spec.series.push(ChartSeries { name: "x".into(), points: vec![(0, 3.0), (30_000, f64::NAN), (60_000, 3.0)] });
        assert!(render_png(&spec).is_ok());
        spec.width = 5;
        assert!(matches!(render_png(&spec), Err(ChartError::Size { .. })));
    }
}
