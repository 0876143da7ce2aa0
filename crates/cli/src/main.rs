//! `tradelab`: the command-line face of the platform.
//!
//! Every command loads `config/settings.yaml` (or `--config`), applies
//! `--set key.path=value` overrides, and reports failures as one line that
//! names the cause and a hint, with a non-zero exit code; user input never
//! makes it panic.

mod alloc_meter;
mod cli;
mod commands;
mod context;
mod interrupt;
mod output;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

// candle allocates a fresh buffer for every tensor operation; with glibc
// malloc the Transformer's update step is 1.45x slower (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: alloc_meter::Metered<mimalloc::MiMalloc> = alloc_meter::Metered(mimalloc::MiMalloc);

fn main() -> ExitCode {
    // `tradelab ... | head` closes the pipe early. Rust ignores SIGPIPE, so
    // the next print would panic; restore the default and end quietly,
    // as other Unix tools do.
    #[cfg(unix)]
    // SAFETY: called first in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Before any thread exists: candle otherwise recounts cores per call.
    tradelab_nn::pin_thread_count();
    let args = cli::Cli::parse();
    // A command that fails before recording anything (run in the wrong
    // folder, say) leaves no empty database behind.
    let new_database = context::load_settings(&args.global, &[])
        .ok()
        .and_then(|s| tradelab_app::record::not_yet_created(&s));
    match commands::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(url) = new_database {
                if let Err(e) = tradelab_app::record::discard_unused(&url) {
                    eprintln!("warning: {e:#}");
                }
            }
            // One line: the outermost context, then each cause.
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let label = if color { "\x1b[1;31merror\x1b[0m" } else { "error" };
            eprintln!("{label}: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
