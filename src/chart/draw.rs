//! Drawing a [`ChartSpec`] on any plotters backend (SVG or bitmap), so the
//! SVG page and the PNG in an email are the same picture.

use chrono::{TimeZone, Utc};
use plotters::coord::types::RangedCoordi64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ChartError, ChartSpec, SpanKind, FONT_FAMILY};
use crate::deploys::Kind;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
];
const PENDING: RGBColor = RGBColor(255, 170, 0);
const FIRING: RGBColor = RGBColor(214, 39, 40);
const LIMIT: RGBColor = RGBColor(200, 30, 30);
const BAND: RGBColor = RGBColor(120, 160, 220);
const GRID: RGBColor = RGBColor(225, 225, 225);
const TEXT: RGBColor = RGBColor(40, 40, 40);
/// Series drawn at most; more would be noise in a notification.
const MAX_SERIES: usize = 12;

fn marker_color(k: Kind) -> RGBColor {
    match k {
        Kind::Deploy => RGBColor(25, 90, 200),
        Kind::Rollback => RGBColor(150, 40, 160),
        Kind::Restart => RGBColor(110, 110, 110),
        Kind::Config => RGBColor(0, 130, 120),
    }
}

fn err<E: std::fmt::Display>(e: E) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// `1.5k`, `3.2M`, `0.25`: short tick labels.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    let (x, unit) = if a >= 1e12 {
        (v / 1e12, "T")
    } else if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if (x == x.trunc() && x.abs() < 1e4) || x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}").trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{x:.3}").trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!("{s}{unit}")
}

fn y_range(spec: &ChartSpec) -> (f64, f64) {
    let values = spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(spec.lines.iter().map(|l| l.value))
        .chain(spec.bands.iter().flat_map(|b| b.lower.iter().chain(b.upper.iter()).map(|p| p.1)))
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo >= 0.0 && lo < 0.3 * hi {
        lo = 0.0;
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        return (lo - pad, hi + pad);
    }
    let pad = (hi - lo) * 0.08;
    hi += pad;
    if lo != 0.0 {
        lo -= pad;
    }
    (lo, hi)
}

/// Tick times on round seconds/minutes/hours (UTC), at most about eight.
fn time_ticks(from: i64, to: i64) -> Vec<i64> {
    const STEPS_S: [i64; 20] =
        [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];
    let span = (to - from).max(1);
    let step = STEPS_S.iter().map(|s| s * 1000).find(|s| span / s <= 8).unwrap_or(span / 8 + 1);
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    (0..).map(|i| first + i * step).take_while(|t| *t <= to).collect()
}

fn time_label(span_ms: i64) -> impl Fn(&i64) -> String {
    let fmt = if span_ms > 2 * 86_400_000 {
        "%m-%d %H:%M"
    } else if span_ms < 10 * 60_000 {
        "%H:%M:%S"
    } else {
        "%H:%M"
    };
    move |t: &i64| Utc.timestamp_millis_opt(*t).single().map(|d| d.format(fmt).to_string()).unwrap_or_default()
}

/// `title`, cut with an ellipsis to fit `max_px` (a long label set would
/// otherwise run off both sides of the canvas).
fn fit_title<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, style: &TextStyle, max_px: u32) -> String {
    let fits = |t: &str| root.estimate_text_size(t, style).map_or(true, |(w, _)| w <= max_px);
    if fits(title) {
        return title.to_string();
    }
    let chars: Vec<char> = title.chars().collect();
    let (mut lo, mut hi) = (0, chars.len());
    // The longest prefix that fits with the ellipsis.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let t: String = chars[..mid].iter().collect::<String>() + "…";
        if fits(&t) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    chars[..lo].iter().collect::<String>() + "…"
}

/// The corner for the legend where it hides the fewest points; the upper
/// corners also avoid the marker labels that hang from the top.
fn legend_corner(spec: &ChartSpec, (from, to): (i64, i64), (ymin, ymax): (f64, f64)) -> SeriesLabelPosition {
    let (w, h) = ((to - from).max(1) as f64, (ymax - ymin).max(f64::MIN_POSITIVE));
    // (position, left?, upper?) in the order preferred on a tie.
    let corners = [
        (SeriesLabelPosition::UpperLeft, true, true),
        (SeriesLabelPosition::UpperRight, false, true),
        (SeriesLabelPosition::LowerLeft, true, false),
        (SeriesLabelPosition::LowerRight, false, false),
    ];
    let inside = |x: f64, y: f64, left: bool, upper: bool| {
        (if left { x < 0.45 } else { x > 0.55 }) && (if upper { y > 0.7 } else { y < 0.3 })
    };
    let cost = |left: bool, upper: bool| {
        let points = spec
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| p.1.is_finite())
            .filter(|p| inside((p.0 - from) as f64 / w, (p.1 - ymin) / h, left, upper))
            .count();
        let labels =
            spec.markers.iter().filter(|m| upper && inside((m.at_ms - from) as f64 / w, 1.0, left, true)).count();
        points + 1000 * labels
    };
    corners.iter().min_by_key(|(_, l, u)| cost(*l, *u)).map_or(SeriesLabelPosition::UpperLeft, |c| c.0.clone())
}

/// Where the plot landed on the canvas: pixel ranges of the plotting area
/// and the times at its edges, so overlays can be placed on top.
pub struct Frame {
    pub x_px: std::ops::Range<i32>,
    pub y_px: std::ops::Range<i32>,
    pub from: i64,
    pub to: i64,
}

/// Transparent strips over the markers that have a `detail`, each with a
/// `<title>` (the hover text), as SVG elements to append to the document.
pub fn marker_hits(spec: &ChartSpec, f: &Frame) -> String {
    let span = (f.to - f.from).max(1) as f64;
    let w = f64::from(f.x_px.end - f.x_px.start);
    let mut out = String::new();
    for m in spec.markers.iter().filter(|m| !m.detail.is_empty() && m.at_ms >= f.from && m.at_ms <= f.to) {
        let x = f64::from(f.x_px.start) + (m.at_ms - f.from) as f64 / span * w;
        out.push_str(&format!(
            "<rect class=\"marker-hit\" x=\"{:.1}\" y=\"{}\" width=\"10\" height=\"{}\" fill=\"transparent\"><title>{}</title></rect>\n",
            x - 5.0,
            f.y_px.start,
            f.y_px.end - f.y_px.start,
            super::escape(&m.detail)
        ));
    }
    out
}

/// Draws the whole chart on `root`.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, spec: &ChartSpec) -> Result<Frame, ChartError> {
    root.fill(&WHITE).map_err(err)?;
    let (from, to) = (spec.from_ms, spec.to_ms.max(spec.from_ms + 1000));
    let (ymin, ymax) = y_range(spec);
    let font = |size: f64| (FONT_FAMILY, size).into_font().color(&TEXT);
    let rows = spec.markers.len().clamp(1, 3) as u32;
    let title = fit_title(root, &spec.title, &font(16.0), spec.width.saturating_sub(24));
    let mut chart = ChartBuilder::on(root)
        .caption(&title, font(16.0))
        .margin(12)
        .margin_top(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(RangedCoordi64::from(from..to).with_key_points(time_ticks(from, to)), ymin..ymax)
        .map_err(err)?;
    let span = to - from;
    let xfmt = time_label(span);
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(RGBColor(160, 160, 160))
        .x_labels(8)
        .y_labels(6)
        .x_label_formatter(&xfmt)
        .y_label_formatter(&|v: &f64| short_number(*v))
        .label_style(font(12.0))
        .x_desc("UTC")
        .axis_desc_style(font(11.0))
        .draw()
        .map_err(err)?;

    for s in &spec.spans {
        let (a, b) = (s.from_ms.max(from), s.to_ms.min(to));
        if b <= a {
            continue;
        }
        let c = if s.kind == SpanKind::Pending { PENDING } else { FIRING };
        chart
            .draw_series(std::iter::once(Rectangle::new([(a, ymin), (b, ymax)], c.mix(0.13).filled())))
            .map_err(err)?;
        // "pending" at its span's start, "firing" at its end: a short
        // pending span does not put the two words on top of each other.
        let (name, at, h, dx) =
            if s.kind == SpanKind::Pending { ("pending", a, HPos::Left, 4) } else { ("firing", b, HPos::Right, -4) };
        let style = font(11.0).color(&c).pos(Pos::new(h, VPos::Bottom));
        chart
            .draw_series(std::iter::once(EmptyElement::at((at, ymin)) + Text::new(name, (dx, -4), style)))
            .map_err(err)?;
    }
    for band in &spec.bands {
        let mut poly: Vec<(i64, f64)> = band.upper.iter().copied().filter(|p| p.1.is_finite()).collect();
        poly.extend(band.lower.iter().rev().copied().filter(|p| p.1.is_finite()));
        if poly.len() >= 3 {
            chart.draw_series(std::iter::once(Polygon::new(poly, BAND.mix(0.18).filled()))).map_err(err)?;
        }
        for edge in [&band.lower, &band.upper] {
            chart.draw_series(LineSeries::new(edge.iter().copied(), BAND.stroke_width(1))).map_err(err)?;
        }
        if let Some(&(t, v)) = band.upper.first() {
            let style = font(12.0).color(&BAND).pos(Pos::new(HPos::Left, VPos::Bottom));
            chart
                .draw_series(std::iter::once(EmptyElement::at((t, v)) + Text::new(band.label.clone(), (4, -3), style)))
                .map_err(err)?;
        }
    }
    for l in spec.lines.iter().filter(|l| l.value.is_finite()) {
        chart
            .draw_series(DashedLineSeries::new([(from, l.value), (to, l.value)], 8, 5, LIMIT.stroke_width(2)))
            .map_err(err)?;
        let style = font(12.0).color(&LIMIT).pos(Pos::new(HPos::Right, VPos::Bottom));
        chart
            .draw_series(std::iter::once(EmptyElement::at((to, l.value)) + Text::new(l.label.clone(), (-4, -3), style)))
            .map_err(err)?;
    }
    for (i, s) in spec.series.iter().take(MAX_SERIES).enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // NaN (and staleness) leaves a gap: one line per run of values.
        let mut runs: Vec<Vec<(i64, f64)>> = vec![Vec::new()];
        for &(t, v) in &s.points {
            match runs.last_mut() {
                Some(run) if v.is_finite() => run.push((t, v)),
                Some(run) if !run.is_empty() => runs.push(Vec::new()),
                _ => {}
            }
        }
        for (j, run) in runs.into_iter().filter(|r| !r.is_empty()).enumerate() {
            let drawn = if run.len() == 1 {
                chart.draw_series(std::iter::once(Circle::new(run[0], 2, color.filled()))).map_err(err)?
            } else {
                chart.draw_series(LineSeries::new(run, color.stroke_width(2))).map_err(err)?
            };
            if j == 0 && spec.series.len() > 1 {
                drawn
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
            }
        }
    }
    if spec.series.len() > 1 {
        chart
            .configure_series_labels()
            .position(legend_corner(spec, (from, to), (ymin, ymax)))
            .background_style(WHITE.mix(0.85))
            .border_style(GRID)
            .label_font(font(11.0))
            .draw()
            .map_err(err)?;
    }
    let mut markers: Vec<&super::VLine> = spec.markers.iter().filter(|m| m.at_ms >= from && m.at_ms <= to).collect();
    markers.sort_by_key(|m| m.at_ms);
    for (i, m) in markers.iter().enumerate() {
        let c = marker_color(m.kind);
        let line = if m.kind == Kind::Restart {
            chart.draw_series(DashedLineSeries::new([(m.at_ms, ymin), (m.at_ms, ymax)], 4, 4, c.stroke_width(2)))
        } else {
            chart.draw_series(LineSeries::new([(m.at_ms, ymin), (m.at_ms, ymax)], c.stroke_width(2)))
        };
        line.map_err(err)?;
        // Labels step down in rows so neighbouring markers do not overprint;
        // near the right edge they hang to the left of their line.
        let row = (i as u32 % rows) as i32;
        let right = (m.at_ms - from) as f64 > 0.7 * span as f64;
        let (h, dx) = if right { (HPos::Right, -5) } else { (HPos::Left, 5) };
        let style = font(12.0).color(&c).pos(Pos::new(h, VPos::Top));
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((m.at_ms, ymax)) + Text::new(m.label.clone(), (dx, 4 + row * 16), style),
            ))
            .map_err(err)?;
    }
    let (x_px, y_px) = chart.plotting_area().get_pixel_range();
    Ok(Frame { x_px, y_px, from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_fit_short_and_long_spans() {
        let t = time_ticks(1_000, 61_000);
        assert!((4..=9).contains(&t.len()) && t.iter().all(|x| x % 10_000 == 0), "{t:?}");
        let t = time_ticks(0, 30 * 86_400_000);
        assert!((2..=9).contains(&t.len()), "{t:?}");
        assert_eq!(time_label(60_000)(&61_000), "00:01:01");
    }

    #[test]
    fn short_numbers() {
        assert_eq!(short_number(0.25), "0.25");
        assert_eq!(short_number(1500.0), "1500");
        assert_eq!(short_number(25_000.0), "25k");
        assert_eq!(short_number(3_200_000.0), "3.2M");
        assert_eq!(short_number(1.0), "1");
    }

    #[test]
    fn y_range_pads_and_handles_flat_and_empty() {
        assert_eq!(y_range(&ChartSpec::default()), (0.0, 1.0));
        let flat = ChartSpec {
            series: vec![super::super::ChartSeries { name: "x".into(), points: vec![(0, 5.0), (1, 5.0)] }],
            ..Default::default()
        };
        let (lo, hi) = y_range(&flat);
        assert!(lo < 5.0 && hi > 5.0);
    }
}
