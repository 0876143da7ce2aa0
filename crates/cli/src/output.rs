//! Writing reports to disk and to the terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
pub use tradelab_app::markets::build_report;
use tradelab_app::Settings;
use tradelab_core::BarSeries;
use tradelab_sim::engine::BacktestResult;
use tradelab_sim::report::{chart_svg, key_figures, report_html, BacktestReport, Chart, Style};

/// Terminal style for stdout.
pub fn style() -> Style {
    Style::detect(std::io::stdout().is_terminal())
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .to_string()
}

/// A new folder for one command's reports, `<base>/<command>-<UTC
/// time>-<settings hash>`, with `<base>/latest` pointing at it: no run
/// overwrites another's reports (an `evaluate` used to replace `run`'s).
/// Used when `--out-dir` is not given; an explicit folder is used as is.
pub fn run_folder(base: &Path, command: &str, settings: &Settings) -> Result<PathBuf> {
    crate::context::ensure_dir(base)?;
    let mut fingerprinted = settings.clone();
    fingerprinted.report.out_dir = Default::default();
    let hash = tradelab_agents::checkpoint::sha256_hex(serde_json::to_string(&fingerprinted)?.as_bytes());
    let stamp: String = tradelab_core::time::format_datetime(tradelab_core::time::now_ms())
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .map(|c| if c == 'T' { '-' } else { c })
        .collect();
    let name = format!("{command}-{stamp}-{}", &hash[..8]);
    let mut dir = base.join(&name);
    let mut n = 2;
    while dir.exists() {
        dir = base.join(format!("{name}-{n}"));
        n += 1;
    }
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    point_latest(base, &dir);
    Ok(dir)
}

/// Points `<base>/latest` at `dir` (a relative symlink, replaced
/// atomically); a failure only warns: the reports are written either way.
fn point_latest(base: &Path, dir: &Path) {
    #[cfg(unix)]
    {
        let Some(name) = dir.file_name() else {
            return;
        };
        let tmp = base.join(format!(".latest.tmp-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let done = std::os::unix::fs::symlink(name, &tmp).and_then(|_| std::fs::rename(&tmp, base.join("latest")));
        if let Err(e) = done {
            let _ = std::fs::remove_file(&tmp);
            eprintln!(
                "warning: could not point {}/latest at the new reports: {e}",
                base.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (base, dir);
}

/// Writes `<strategy>__<instruments>.json`, `.svg` (the trader's chart)
/// and `.html` (the interactive report, one offline file) into `dir`;
/// returns the JSON and SVG paths. `feeds` are the series backtested, in
/// the engine's order.
pub fn write_report(
    dir: &Path,
    report: &BacktestReport,
    result: &BacktestResult,
    feeds: &[&BarSeries],
) -> Result<(PathBuf, PathBuf)> {
    // Orders too small for one lot trade nothing: say so where the report is made.
    for w in result.rounding_warnings() {
        eprintln!("warning: {} ({})", w, report.model_used);
    }
    crate::context::ensure_dir(dir)?;
    let stem = format!("{}__{}", slug(&report.model_used), slug(&report.instruments.join("+")));
    let json_path = dir.join(format!("{stem}.json"));
    let svg_path = dir.join(format!("{stem}.svg"));
    let html_path = dir.join(format!("{stem}.html"));
    let write = |path: &Path, bytes: &[u8]| {
        tradelab_data::cache::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write(&json_path, report.to_json().as_bytes())?;
    let title = format!("{} on {}", report.model_used, report.instruments.join(", "));
    let chart = Chart::of(&title, result, feeds);
    write(&svg_path, chart_svg(&chart).as_bytes())?;
    write(&html_path, report_html(&chart, &key_figures(report)).as_bytes())?;
    Ok((json_path, svg_path))
}
