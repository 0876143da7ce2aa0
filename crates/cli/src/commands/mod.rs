//! One module per subcommand.

mod adapt;
mod audit;
mod auth;
mod backtest;
mod backtests;
mod bench;
mod bench_chart;
mod bench_events;
mod bench_forensics;
mod bench_hrm;
mod bench_ppo;
mod bench_trading;
mod data;
mod env_trace;
mod evaluate;
mod forensics;
mod login;
mod meta_train;
mod models;
mod optimize;
mod regimes;
mod run;
mod runs;
mod seeds;
mod serve;
mod sessions;
mod stress;
mod sweep;
mod trade;
mod train;
mod transitions;
mod walk_forward;
mod worker;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => run::run(&cli.global, &a),
        Command::Data(c) => data::run(&cli.global, c),
        Command::Backtest(a) => backtest::run(&cli.global, &a),
        Command::Backtests(c) => backtests::run(&cli.global, c),
        Command::Optimize(a) => optimize::run(&cli.global, &a),
        Command::Stress(a) => stress::run(&cli.global, &a),
        Command::Train(a) => train::run(&cli.global, &a),
        Command::Evaluate(a) => evaluate::run(&cli.global, &a),
        Command::Trade(a) => trade::run(&cli.global, &a),
        Command::Sessions(a) => sessions::run(&cli.global, a.command),
        Command::Audit(c) => audit::run(&cli.global, c),
        Command::Forensics(a) => forensics::run(&cli.global, &a),
        Command::WalkForward(a) => walk_forward::run(&cli.global, &a),
        Command::Sweep(a) => sweep::run(&cli.global, &a),
        Command::Adapt(a) => adapt::run(&cli.global, &a),
        Command::MetaTrain(a) => meta_train::run(&cli.global, &a),
        Command::Bench(a) => bench::run(&cli.global, &a),
        Command::Runs(c) => runs::run(&cli.global, c),
        Command::Models(c) => models::run(&cli.global, c),
        Command::Serve(a) => serve::run(&cli.global, &a),
        Command::Worker(a) => worker::run(&cli.global, &a),
        Command::Auth(c) => auth::run(&cli.global, c),
        Command::Regimes(a) => regimes::run(&cli.global, &a),
        Command::Transitions(a) => transitions::run(&cli.global, &a),
        Command::EnvTrace(a) => env_trace::run(&cli.global, &a),
        Command::Login(a) => login::login(&a),
        Command::Logout(a) => login::logout(&a),
        Command::Api(a) => login::api(&a),
        Command::Token(a) => login::token(&a),
    }
}
