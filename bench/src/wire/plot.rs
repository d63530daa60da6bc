//! `--plot FILE.svg`: forwarded Mpps against frame size and against flows (one line per
//! switch, median of the rounds), and the latency CDF of each switch.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use super::report::{rows, Row};
use super::{Args, RunReport};

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn e<E: std::fmt::Debug>(err: E) -> anyhow::Error {
    anyhow!("plotting: {err:?}")
}

/// Draws the three charts of `report` into `path`.
pub fn draw(report: &RunReport, args: &Args, path: &Path) -> Result<()> {
    let rows = rows(report, &args.switches);
    let root = SVGBackend::new(path, (900, 1200)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let areas = root.split_evenly((3, 1));
    let profile = rows.first().map(|r| r.case.0.clone()).unwrap_or_default();
    let flows0 = rows.first().map(|r| r.case.2).unwrap_or(1);
    let size0 = rows.first().map(|r| r.case.1.clone()).unwrap_or_default();
    let switches: Vec<String> = args.switches.iter().map(|k| k.name().to_owned()).collect();

    // 1. Mpps vs frame size.
    let by_size: Vec<(String, Vec<(f64, f64)>)> = switches
        .iter()
        .map(|sw| {
            let pts = rows
                .iter()
                .filter(|r| &r.switch == sw && r.case.0 == profile && r.case.2 == flows0)
                .filter_map(|r| r.case.1.parse::<f64>().ok().map(|s| (s, r.mpps.median)))
                .collect();
            (sw.clone(), pts)
        })
        .collect();
    line_chart(
        &areas[0],
        &format!("{profile}, {flows0} flows: forwarded Mpps vs frame size"),
        "frame size (bytes)",
        "Mpps",
        &by_size,
        false,
    )?;

    // 2. Mpps vs flows.
    let by_flows: Vec<(String, Vec<(f64, f64)>)> = switches
        .iter()
        .map(|sw| {
            let pts = rows
                .iter()
                .filter(|r: &&Row| &r.switch == sw && r.case.0 == profile && r.case.1 == size0)
                .map(|r| (f64::from(r.case.2), r.mpps.median))
                .collect();
            (sw.clone(), pts)
        })
        .collect();
    line_chart(
        &areas[1],
        &format!("{profile}, {size0} B: forwarded Mpps vs flows"),
        "flows",
        "Mpps",
        &by_flows,
        true,
    )?;

    // 3. Latency CDF of the first round's main trial of the first case, per switch.
    let cdfs: Vec<(String, Vec<(f64, f64)>)> = switches
        .iter()
        .filter_map(|sw| {
            let o = report
                .outcomes
                .iter()
                .find(|o| &o.main.switch == sw && !o.main.latency_cdf.is_empty())?;
            Some((
                format!("{sw} ({} {} B)", o.main.profile, o.main.size),
                o.main
                    .latency_cdf
                    .iter()
                    .map(|(ns, q)| (*ns as f64 / 1000.0, q * 100.0))
                    .collect(),
            ))
        })
        .collect();
    line_chart(
        &areas[2],
        "latency CDF",
        "latency (µs)",
        "percentile",
        &cdfs,
        true,
    )?;
    root.present().map_err(e)?;
    Ok(())
}

fn line_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> Result<()> {
    let pts = series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        area.titled(&format!("{title}: no data"), ("sans-serif", 18))
            .map_err(e)?;
        return Ok(());
    }
    if x0 == x1 {
        x0 = if log_x { x0 / 2.0 } else { x0 - 1.0 };
        x1 = if log_x { x1 * 2.0 } else { x1 + 1.0 };
    }
    let y1 = if y1 <= 0.0 { 1.0 } else { y1 * 1.1 };
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50);
    macro_rules! finish {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(xlabel)
                .y_desc(ylabel)
                .draw()
                .map_err(e)?;
            for (i, (name, p)) in series.iter().enumerate() {
                let c = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))
                    .map_err(e)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                    });
                chart
                    .draw_series(p.iter().map(|&(x, y)| Circle::new((x, y), 3, c.filled())))
                    .map_err(e)?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        }};
    }
    if log_x {
        finish!(builder
            .build_cartesian_2d((x0.max(1e-3)..x1).log_scale(), 0.0..y1)
            .map_err(e)?);
    } else {
        finish!(builder.build_cartesian_2d(x0..x1, 0.0..y1).map_err(e)?);
    }
    Ok(())
}
