//! Line charts as SVG, written by hand: one panel per chart, stacked; a
//! linear x axis and a log₂ y axis (memory spans kilobytes to gigabytes).

use std::fmt::Write as _;

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// CSS colour.
    pub color: &'static str,
    /// Dashed (a reference line) rather than solid.
    pub dashed: bool,
    /// Mark the last point with a cross (the run stopped there).
    pub cross_at_end: bool,
    /// (x, y) points, x ascending; y in bytes.
    pub points: Vec<(f64, f64)>,
}

/// One panel.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the panel.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label (the values are bytes).
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

const WIDTH: f64 = 1100.0;
const PANEL_HEIGHT: f64 = 460.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 360.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;
/// Smallest y axis start; values below the axis (e.g. zero live bytes) sit on it.
const Y_FLOOR: f64 = 4096.0;

/// Renders `charts` one under another as a standalone SVG document.
pub fn svg(charts: &[Chart]) -> String {
    let height = PANEL_HEIGHT * charts.len().max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    for (i, chart) in charts.iter().enumerate() {
        panel(&mut out, chart, PANEL_HEIGHT * i as f64);
    }
    out.push_str("</svg>\n");
    out
}

fn panel(out: &mut String, chart: &Chart, top: f64) {
    let (x0, x1) = (LEFT, WIDTH - RIGHT);
    let (y0, y1) = (top + PANEL_HEIGHT - BOTTOM, top + TOP);
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let x_max = points.clone().map(|p| p.0).fold(0.0, f64::max).max(1e-9);
    let y_max = points.map(|p| p.1).fold(Y_FLOOR, f64::max);
    let y_min_log = chart
        .series
        .iter()
        .filter(|s| !s.dashed)
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|&y| y > 0.0)
        .fold(y_max, f64::min)
        .max(Y_FLOOR)
        .log2()
        .floor();
    let y_max_log = y_max.log2().ceil().max(y_min_log + 1.0);
    // Ticks every `pow_step` powers of two, the axis ending on ticks.
    let pow_step = ((y_max_log - y_min_log) / 8.0).ceil().max(1.0);
    let (y_min_log, y_max_log) = ((y_min_log / pow_step).floor() * pow_step, (y_max_log / pow_step).ceil() * pow_step);
    let x_step = nice_step(x_max / 8.0);
    let x_end = (x_max / x_step).ceil() * x_step;
    let sx = |x: f64| x0 + (x1 - x0) * x / x_end;
    let sy = |y: f64| y0 - (y0 - y1) * (y.max(1.0).log2().max(y_min_log) - y_min_log) / (y_max_log - y_min_log);

    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" font-size="15" font-weight="bold">{}</text>"#,
        x0,
        top + 28.0,
        escape(&chart.title)
    );
    // Grid and ticks.
    let mut x = 0.0;
    while x <= x_end + x_step / 2.0 {
        let px = sx(x);
        let _ = writeln!(out, r##"<line x1="{px:.1}" y1="{y1}" x2="{px:.1}" y2="{y0}" stroke="#e5e5e5"/>"##);
        let _ = writeln!(out, r#"<text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#, y0 + 18.0, number(x));
        x += x_step;
    }
    let mut p = y_min_log;
    while p <= y_max_log {
        let py = sy(p.exp2());
        let _ = writeln!(out, r##"<line x1="{x0}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#e5e5e5"/>"##);
        let _ =
            writeln!(out, r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#, x0 - 6.0, py + 4.0, bytes(p.exp2()));
        p += pow_step;
    }
    let _ = writeln!(
        out,
        r#"<rect x="{x0}" y="{y1}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        x1 - x0,
        y0 - y1
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        y0 + 42.0,
        escape(&chart.x_label)
    );
    let (lx, ly) = (22.0, (y0 + y1) / 2.0);
    let _ = writeln!(
        out,
        r#"<text x="{lx}" y="{ly}" text-anchor="middle" transform="rotate(-90 {lx} {ly})">{}</text>"#,
        escape(&chart.y_label)
    );

    for (i, series) in chart.series.iter().enumerate() {
        let dash = if series.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let mut path = String::new();
        for &(x, y) in &series.points {
            let _ = write!(path, "{:.1},{:.1} ", sx(x), sy(y));
        }
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.trim_end(),
            series.color
        );
        if series.cross_at_end
            && let Some(&(x, y)) = series.points.last()
        {
            let (px, py) = (sx(x), sy(y));
            let _ = writeln!(
                out,
                r#"<path d="M{:.1},{:.1}L{:.1},{:.1}M{:.1},{:.1}L{:.1},{:.1}" stroke="{}" stroke-width="3"/>"#,
                px - 6.0,
                py - 6.0,
                px + 6.0,
                py + 6.0,
                px - 6.0,
                py + 6.0,
                px + 6.0,
                py - 6.0,
                series.color
            );
        }
        // Legend entry.
        let (lx, ly) = (x1 + 16.0, y1 + 10.0 + 22.0 * i as f64);
        let _ = writeln!(
            out,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"{dash}/>"#,
            lx + 24.0,
            series.color
        );
        let _ = writeln!(out, r#"<text x="{}" y="{}">{}</text>"#, lx + 30.0, ly + 4.0, escape(&series.label));
    }
}

/// A 1/2/5 × 10^k step not below `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|&s| s >= raw).unwrap_or(10.0 * magnitude)
}

fn number(x: f64) -> String {
    if x.fract().abs() < 1e-9 { format!("{x:.0}") } else { format!("{x}") }
}

/// A byte count as text in the largest binary unit that keeps it ≥ 1, with
/// the value and unit: ("4", "KiB"), ("1.5", "MiB").
fn scaled(b: f64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = b;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    (value, UNITS[unit])
}

/// A byte count as an axis label: "4 KiB", "512 MiB", "1.5 MiB".
pub fn bytes(b: f64) -> String {
    let (value, unit) = scaled(b);
    if value.fract().abs() < 1e-9 { format!("{value:.0} {unit}") } else { format!("{value:.1} {unit}") }
}

/// A byte count with one decimal always: "4.0 KiB", "63.9 MiB".
pub fn bytes_rounded(b: f64) -> String {
    let (value, unit) = scaled(b);
    if unit == "B" { format!("{value:.0} B") } else { format!("{value:.1} {unit}") }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_units() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(130.0), 200.0);
        assert_eq!(nice_step(4.0), 5.0);
        assert_eq!(bytes(4096.0), "4 KiB");
        assert_eq!(bytes(1.5 * 1024.0 * 1024.0), "1.5 MiB");
        assert_eq!(bytes(4.0 * 1024.0 * 1024.0 * 1024.0), "4 GiB");
        assert_eq!(bytes_rounded(300.0), "300 B");
        assert_eq!(bytes_rounded(64.0 * 1024.0 * 1024.0), "64.0 MiB");
    }

    #[test]
    fn chart_has_axes_legend_and_lines() {
        let chart = Chart {
            title: "seed <1>".into(),
            x_label: "wire MiB".into(),
            y_label: "linear memory".into(),
            series: vec![
                Series {
                    label: "tiered".into(),
                    color: "green",
                    dashed: false,
                    cross_at_end: false,
                    points: vec![(0.0, 1e6), (10.0, 2e6)],
                },
                Series {
                    label: "single".into(),
                    color: "purple",
                    dashed: false,
                    cross_at_end: true,
                    points: vec![(0.0, 1e6), (5.0, 4e9)],
                },
            ],
        };
        let doc = svg(&[chart]);
        assert!(doc.starts_with("<svg") && doc.ends_with("</svg>\n"));
        assert_eq!(doc.matches("<polyline").count(), 2);
        for text in ["seed &lt;1&gt;", "wire MiB", "linear memory", ">tiered<", ">single<", "4 GiB"] {
            assert!(doc.contains(text), "missing {text}");
        }
    }
}
