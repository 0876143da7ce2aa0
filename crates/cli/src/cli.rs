//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tradelab",
    version,
    about = "Reinforcement-learning trading research: data, backtests, reports."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Settings file; defaults to config/settings.yaml when present, else the
    /// compiled-in defaults.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Override a setting, e.g. --set risk.max_asset_fraction=0.2 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    pub overrides: Vec<String>,
    /// Seed for every random draw (overrides `seed`).
    #[arg(long, global = true)]
    pub seed: Option<u64>,
    /// More output.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job on the defaults: prepare data, backtest every baseline on
    /// the bundled daily data, print the reports, write JSON and charts.
    Run(RunArgs),
    /// Data preparation and inspection.
    #[command(subcommand)]
    Data(DataCommand),
    /// Backtest a rule strategy on one or more instruments from data/raw.
    Backtest(BacktestArgs),
    /// Fits the regime model (a Gaussian HMM, states chosen by BIC) on each
    /// market's training split and shows the states and the filtered
    /// regime probabilities, which use no future bar.
    Regimes(RegimesArgs),
    /// Measures a mixture of experts' position disruption around regime
    /// switches on a synthetic market with known switches: soft blending
    /// against hard switching to the top specialist.
    Transitions(TransitionsArgs),
    /// Steps the trading environment with seeded random actions and prints
    /// every step (action, quantity, reward, flags, equity, position, fees):
    /// a reference trace to check another front end against, bar for bar.
    EnvTrace(EnvTraceArgs),
    /// Search a rule strategy's parameters (and any backtest or risk
    /// setting) over a grid or at random, in one process on every core:
    /// a ranked table, JSON, CSV, a heatmap and an HTML page, with the
    /// deflated Sharpe ratio, the probability of backtest overfitting and
    /// optional walk-forward optimisation.
    Optimize(OptimizeArgs),
    /// Monte Carlo stress test of a strategy's equity curve.
    Stress(StressArgs),
    /// Train an RL agent (PPO with an LSTM, Transformer or MLP encoder).
    Train(TrainArgs),
    /// Run a trained model greedily through the engine, out of sample, next
    /// to buy-and-hold and the SMA crossover.
    Evaluate(EvaluateArgs),
    /// Paper-trade a trained model on a replayed feed: each bar goes
    /// through the model, the risk layer and the paper broker (the
    /// backtesting engine, bar by bar), fills printed as they happen.
    Trade(TradeArgs),
    /// Trading sessions in the store: list them, or show one's state and
    /// events.
    Sessions(SessionsArgs),
    /// The trading sessions' audit trail: every decision (with its inputs),
    /// order, fill, risk verdict, breaker change and model change, listed,
    /// shown, verified (the hash chain) and exported.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// A forensics worker: explains each decision of the trading sessions
    /// (attributions, regime, gate, segments, a paragraph) into the store;
    /// with bus.url set it first moves the events from NATS JetStream into
    /// the audit trail. Run any number, on any machine that reaches the bus
    /// and the store.
    Forensics(ForensicsArgs),
    /// Walk-forward with retraining: a fresh agent per fold trains on a
    /// window of the past and trades the next window; the out-of-sample
    /// windows are stitched and compared with buy-and-hold.
    WalkForward(WalkForwardArgs),
    /// Hyperparameter sweep: trials drawn from a search space over any
    /// settings, random search or successive halving on the validation
    /// score, every trial a job on the queue; ranked, with the deflated
    /// Sharpe ratio and the probability of backtest overfitting, and the
    /// best settings written for --config. Run it again to resume.
    Sweep(SweepArgs),
    /// Updates a trained model on a sliding window of recent data, as a new
    /// version, refused when it worsens validation; --walk-forward measures
    /// a static model's decay against one updated on each new window.
    Adapt(AdaptArgs),
    /// Meta-trains a PPO agent or mixture across markets (MAML, first-order
    /// MAML or Reptile), saves the meta-learnt initialisation and compares
    /// adapting it on held-out instruments with adapting from scratch.
    MetaTrain(MetaTrainArgs),
    /// Throughput benchmarks (see BENCHMARKS.md).
    Bench(BenchArgs),
    /// Recorded training runs and their metrics.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Recorded backtests: list them with their figures, show one.
    #[command(subcommand)]
    Backtests(BacktestsCommand),
    /// The model registry: list, show, register, promote, archive, gc.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The REST API (OpenAPI document at /openapi.json, Swagger UI at /docs).
    Serve(ServeArgs),
    /// Runs queued training and backtest jobs from the configured database
    /// (on this machine or any other that reaches it).
    Worker(WorkerArgs),
    /// Administers the API's authorization server: users, clients, keys
    /// (works on the configured database directly).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Signs in to a tradelab server (browser with PKCE, or --device).
    Login(LoginArgs),
    /// Revokes this machine's tokens for a server and forgets them.
    Logout(LogoutArgs),
    /// Calls the API with the stored token, refreshing it when needed.
    Api(ApiArgs),
    /// Prints a valid access token for the server signed in to (refreshed
    /// when needed), to paste into Swagger UI's Authorize dialog or a
    /// script's Authorization header.
    Token(TokenArgs),
}

#[derive(Debug, Args)]
pub struct RegimesArgs {
    /// Markets by name (data/final or data.raw_dir) or path; default: every
    /// prepared market.
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// Only series of this timeframe, e.g. 1d or 5m.
    #[arg(long)]
    pub timeframe: Option<String>,
    /// Print JSON (every state, and the probabilities of every bar).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TransitionsArgs {
    /// A `moe` model: a checkpoint folder or a registry name[@version].
    #[arg(long)]
    pub model: PathBuf,
    /// Bars of the synthetic market (its test split is measured).
    #[arg(long, default_value_t = 8000)]
    pub bars: usize,
    /// Bars each side of a switch in which the largest one-bar change counts.
    #[arg(long, default_value_t = 5)]
    pub half_width: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EnvTraceArgs {
    /// The instrument: a name in data.raw_dir or a price file.
    #[arg(long)]
    pub symbol: String,
    /// train, validation or test.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// Steps to run (episodes that end are reset). The environment and the
    /// action stream are both seeded with `seed` (`--seed`).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// People who sign in.
    #[command(subcommand)]
    User(UserCommand),
    /// Applications that ask for tokens.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Makes a new signing key current (the old stays published until its
    /// tokens expire); running servers pick it up at their next start.
    RotateKey,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user. The password is read from standard input with
    /// --password-stdin; otherwise a one-time password is printed, to be
    /// changed at first sign-in.
    Add {
        username: String,
        /// admin, researcher or viewer.
        #[arg(long)]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    /// Disables a user and revokes every token they hold.
    Disable {
        username: String,
    },
    Enable {
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Registers a client. A confidential client's secret is printed once.
    Add {
        client_id: String,
        /// A name people see on the consent page.
        #[arg(long)]
        name: String,
        /// A public client (browser or native app): no secret, PKCE required.
        #[arg(long)]
        public: bool,
        /// An allowed redirect URI, matched exactly (repeat for several).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// authorization_code, refresh_token, client_credentials or
        /// device_code (repeat for several; default: by kind of client).
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// The scopes it may be given, space-separated (default: all).
        #[arg(long)]
        scope: Option<String>,
        /// A resource server (an API that checks tokens shown to it): the
        /// only kind of client allowed to introspect tokens. Confidential
        /// clients only.
        #[arg(long)]
        resource_server: bool,
    },
    List,
    /// Removes a client and revokes every token it holds.
    Remove {
        client_id: String,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server, e.g. http://127.0.0.1:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Use the device flow: print a code to enter on another machine.
    #[arg(long)]
    pub device: bool,
    /// Print the sign-in URL instead of opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Scopes to ask for, space-separated (default: all your role allows).
    #[arg(long)]
    pub scope: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Default: the server last signed in to (else http://127.0.0.1:8080).
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// GET or POST.
    pub method: String,
    /// A path such as /v1/runs.
    pub path: String,
    /// A JSON body for POST.
    #[arg(long)]
    pub body: Option<String>,
    /// Default: the server last signed in to (else http://127.0.0.1:8080).
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Default: the server last signed in to.
    #[arg(long)]
    pub server: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Requests running longer are answered 503.
    #[arg(long, default_value_t = 30.0)]
    pub timeout_secs: f64,
    /// Jobs this server runs itself (0: leave them to `tradelab worker`).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Answer API requests without checking tokens. For a development
    /// machine only: a warning says so at start.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// A request's headers must arrive within this, and an idle
    /// connection is closed after it (slow clients cannot hold sockets).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout_secs: f64,
    /// Connections open at once; past it newcomers wait to be accepted.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Print the OpenAPI document (what /openapi.json serves) and exit:
    /// the web dashboard's typed client is generated from it.
    #[arg(long)]
    pub print_openapi: bool,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum BacktestsCommand {
    /// The most recent backtests with their headline figures.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only backtests of strategies whose name contains this.
        #[arg(long)]
        strategy: Option<String>,
        /// Only backtests on an instrument whose name contains this.
        #[arg(long)]
        instrument: Option<String>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One backtest's stored report (JSON), or its trades or equity curve.
    Show {
        id: String,
        /// report (default), trades or equity.
        #[arg(long)]
        part: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The most recent runs of every experiment.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only runs with this status: running, finished, failed or killed.
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this experiment.
        #[arg(long)]
        experiment: Option<String>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One run: parameters, tags, status and a line per metric.
    Show {
        id: String,
        /// Print this metric's whole series instead (`--format` csv or json).
        #[arg(long)]
        metric: Option<String>,
        /// csv (default) or json, for --metric.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Two runs side by side: the parameters that differ and each metric's
    /// last value.
    Compare { a: String, b: String },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Registered versions, newest first (of one model, or all).
    List {
        name: Option<String>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One version (NAME, NAME@VERSION or NAME@production): record,
    /// checksum check, metadata.json.
    Show { model: String },
    /// Registers a checkpoint folder as the next version of NAME.
    Register {
        checkpoint: PathBuf,
        #[arg(long)]
        name: String,
    },
    /// Moves a version to a stage (production archives the previous one).
    Promote {
        model: String,
        /// staging, production, archived or none.
        #[arg(long, default_value = "production")]
        stage: String,
    },
    /// Archives a version.
    Archive { model: String },
    /// Deletes the files of versions the retention policy does not keep
    /// (the best, staging, production and the newest store.keep_last).
    Gc {
        /// Overrides store.keep_last.
        #[arg(long)]
        keep_last: Option<usize>,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// ppo-lstm, ppo-transformer, ppo-mlp, hrm or moe.
    #[arg(long)]
    pub agent: String,
    /// HRM size preset: small (the CPU default) or paper (27M parameters).
    #[arg(long)]
    pub preset: Option<String>,
    /// Instrument(s) to train on: a name in data/final (or data.raw_dir), or a
    /// CSV path (repeatable). Default: every series in data/final.
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// Only series of this timeframe, e.g. 1d or 5m.
    #[arg(long)]
    pub timeframe: Option<String>,
    /// Training budget in environment steps (overrides ppo.total_steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Run folder for checkpoints (default runs/<agent>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue from a checkpoint folder (e.g. runs/ppo-lstm-seed42/last).
    /// `--steps` stays the total budget, counting the steps done before.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// With --resume: train this many steps more than the checkpoint has done.
    #[arg(long, requires = "resume", conflicts_with = "steps")]
    pub more_steps: Option<usize>,
    /// Name the best model is registered under (default: the agent's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Leave this instrument out of training (repeatable), to test it as
    /// one the model never saw: PPO agents learn an unknown-instrument
    /// embedding for it (ppo.instrument_dropout, 0.1 unless set).
    #[arg(long = "holdout", value_name = "NAME")]
    pub holdout: Vec<String>,
    /// Train this many seeds (the seed, the seed + 1, ...) as jobs on the
    /// queue, and report their validation mean and spread; evaluate them
    /// together by repeating `evaluate --model`. Needs prepared markets
    /// named with --symbol (or none: all).
    #[arg(long, default_value_t = 1)]
    pub seeds: usize,
    /// With --seeds: jobs this process runs at once; 0 leaves them to
    /// `tradelab worker`s sharing the database.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

#[derive(Debug, Args)]
pub struct WalkForwardArgs {
    /// ppo-mlp, ppo-lstm or ppo-transformer.
    #[arg(long, default_value = "ppo-mlp")]
    pub agent: String,
    /// The market: a name in data/final (or data.raw_dir) or a CSV path.
    #[arg(long)]
    pub symbol: String,
    /// Only series of this timeframe, e.g. 1d or 5m.
    #[arg(long)]
    pub timeframe: Option<String>,
    /// Training budget per fold in environment steps (overrides ppo.total_steps).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Bars in each training window, its validation share included
    /// (default walk_forward.train_bars).
    #[arg(long)]
    pub train_bars: Option<usize>,
    /// Bars in each test window (default walk_forward.test_bars).
    #[arg(long)]
    pub test_bars: Option<usize>,
    /// Bars skipped between a training window and its test window
    /// (default walk_forward.embargo_bars).
    #[arg(long)]
    pub embargo: Option<usize>,
    /// Expanding training windows, all starting at the first bar (default:
    /// rolling windows of --train-bars).
    #[arg(long)]
    pub anchored: bool,
    /// Folder for each fold's checkpoints and walk_forward.json (default
    /// runs/walk-forward-<agent>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// The sweep file (agent, symbols, steps, trials, search, space; see
    /// config/sweeps/ for examples).
    pub space: PathBuf,
    /// Folder for the sweep's state, report and best settings (default
    /// runs/sweeps/<file name>); the same folder resumes the sweep.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Jobs this process runs at once itself; 0 leaves them to `tradelab
    /// worker`s on this or other machines.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Ranked trials printed (all are in sweep.json).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct MetaTrainArgs {
    /// ppo-lstm, ppo-transformer, ppo-mlp or moe.
    #[arg(long, default_value = "ppo-lstm")]
    pub agent: String,
    /// Markets (name or CSV path, repeatable); default: every series in data/final.
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// Only series of this timeframe, e.g. 1d or 5m.
    #[arg(long)]
    pub timeframe: Option<String>,
    /// maml, fomaml or reptile (overrides meta.mode).
    #[arg(long)]
    pub mode: Option<String>,
    /// Outer updates (overrides meta.iterations).
    #[arg(long)]
    pub iterations: Option<usize>,
    /// Instruments kept for meta-test (repeatable; overrides meta.holdout).
    #[arg(long = "holdout")]
    pub holdout: Vec<String>,
    /// Held-out tasks drawn per held-out market for the evaluation.
    #[arg(long, default_value_t = 4)]
    pub eval_tasks: usize,
    /// Run folder (default runs/meta-<mode>-<agent>-seed<seed>); the
    /// meta-learnt initialisation is saved in its `meta-init/`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdaptArgs {
    /// The model to update: a checkpoint folder or NAME[@VERSION].
    #[arg(long)]
    pub model: PathBuf,
    /// The new data: a series of a market the model knows (name or CSV path).
    #[arg(long)]
    pub data: String,
    /// Bars of recent data to train on (the sliding window).
    #[arg(long, default_value_t = 1000)]
    pub window: usize,
    /// Bars after the window that validate the update (the newest bars).
    #[arg(long, default_value_t = 250)]
    pub validation: usize,
    /// Environment steps of the update.
    #[arg(long, default_value_t = 8192)]
    pub steps: usize,
    /// Refuse the update if the validation return falls by more than this
    /// many percentage points (negative: the gain it must make).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub max_worsening: f64,
    /// Run folder (default runs/adapt-<kind>-seed<seed>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Registry name of the new version (default: the model's registry
    /// name, or the agent type for a folder).
    #[arg(long)]
    pub name: Option<String>,
    /// Instead of one update: K consecutive windows of `--validation` bars at
    /// the end of the data, each traded by the static model and by one
    /// updated on the bars before it.
    #[arg(long, value_name = "K")]
    pub walk_forward: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TradeArgs {
    /// A checkpoint folder or a registered model (NAME, NAME@VERSION,
    /// NAME@production). Not needed with --resume.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// An instrument to trade: a name in data/final (or data.raw_dir) or a
    /// CSV path. Repeat it to trade several in one account.
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// Where bars come from: `replay` (the symbols' files, bar by bar) or
    /// `alpaca` (Alpaca's live bars; credentials from APCA_API_KEY_ID and
    /// APCA_API_SECRET_KEY, endpoints in trade.alpaca).
    #[arg(long, default_value = "replay")]
    pub feed: String,
    /// Where orders go: `paper` (the engine's fills, costs and slippage) or
    /// `alpaca` (Alpaca's account; needs --feed alpaca).
    #[arg(long, default_value = "paper")]
    pub broker: String,
    /// The paper account's name: one live session per account.
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Times faster than real time (86400: a daily bar a second); 0 replays
    /// as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    pub speed: f64,
    /// First day to trade, YYYY-MM-DD (default: the latest test-split start
    /// among the symbols, so no bar was trained or selected on).
    #[arg(long)]
    pub from: Option<String>,
    /// Resumes a stopped, failed, halted or killed session by its id (as
    /// `tradelab sessions list` shows it), from its last checkpoint.
    #[arg(long, conflicts_with_all = ["model", "symbols", "from", "account"])]
    pub resume: Option<String>,
    /// Where the session's report goes (overrides report.out_dir).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Events, newest first, filtered; `--after` the `next` cursor printed
    /// at the end for the next page.
    List {
        /// One session.
        #[arg(long)]
        session: Option<String>,
        /// One kind: decision, order, fill, risk_verdict, breaker, model,
        /// session.
        #[arg(long)]
        kind: Option<String>,
        /// One model, as the session named it.
        #[arg(long)]
        model: Option<String>,
        /// One instrument.
        #[arg(long)]
        instrument: Option<String>,
        /// One action (BUY_LONG, HOLD, ...).
        #[arg(long)]
        action: Option<String>,
        /// Made on or after, YYYY-MM-DD[THH:MM:SS] (UTC).
        #[arg(long)]
        from: Option<String>,
        /// Made before, YYYY-MM-DD[THH:MM:SS] (UTC).
        #[arg(long)]
        to: Option<String>,
        /// Events to a page.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// The cursor a previous page printed.
        #[arg(long)]
        after: Option<String>,
        /// One JSON document instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// One event (SESSION:SEQ) in full: a decision's probabilities, value
    /// and inputs.
    Show {
        /// The event's id, as `list` prints it.
        id: String,
    },
    /// Checks each session's hash chain against what is stored (or one
    /// session's); exits 1 when any event was changed, removed or
    /// reordered, naming the first.
    Verify {
        /// One session; default: every session.
        #[arg(long)]
        session: Option<String>,
        /// An archive `retain` wrote, instead of the store: its checksum
        /// against the manifest beside it and its chain.
        #[arg(long, conflicts_with = "session")]
        archive: Option<PathBuf>,
    },
    /// Archives the events older than audit.retention_years (whole months):
    /// zstd-compressed JSON Lines in audit.archive_dir with a manifest of
    /// checksums and chain heads, then deletes them from the store.
    Retain {
        /// Take this day as today, YYYY-MM-DD (to see what a later pass
        /// would archive).
        #[arg(long)]
        now: Option<String>,
        /// Say what would be archived; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Asks the model again for every decision the session recorded, from
    /// the inputs stored with it, and sizes its orders again: each must
    /// come back bit for bit; exits 1 naming every difference.
    Replay {
        /// The session.
        #[arg(long)]
        session: String,
        /// The model (folder or NAME@VERSION); default: as the session
        /// named it. Its weights must be the ones that decided.
        #[arg(long)]
        model: Option<String>,
    },
    /// Writes a session's events, in order and as published, to a JSON
    /// Lines file, and prints its SHA-256.
    Export {
        /// The session.
        #[arg(long)]
        session: String,
        /// The file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ForensicsArgs {
    /// Stop once there is nothing left to do (no event for half a second on
    /// the bus; no decision waiting for an explanation), instead of running
    /// until Ctrl-C.
    #[arg(long)]
    pub until_idle: bool,
    /// Interpolation points of the integrated gradients (more: a smaller
    /// completeness gap, slower).
    #[arg(long, default_value_t = tradelab_agents::explanation::DEFAULT_STEPS as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub steps: u64,
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    #[command(subcommand)]
    pub command: SessionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Recent trading sessions: id, status, account, model, symbols.
    List {
        /// How many, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One session's state: P&L, latency, positions with their weights and
    /// volatility contributions, correlations, breakers, the last orders
    /// and events.
    Show {
        /// The session's id.
        id: String,
        /// Events to show, newest last.
        #[arg(long, default_value_t = 50)]
        events: i64,
    },
    /// Shows a running session, redrawn every few seconds, until it ends
    /// (or Ctrl-C).
    Watch {
        /// The session's id.
        id: String,
        /// Seconds between redraws.
        #[arg(long, default_value_t = 1.0)]
        every: f64,
    },
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Checkpoint folder (holding model.safetensors and metadata.json), or
    /// a registered model: NAME, NAME@VERSION or NAME@production. Repeat it
    /// to evaluate an ensemble: the models decide together from their
    /// averaged action distributions (e.g. one setting's seeds).
    #[arg(long = "model", required = true)]
    pub models: Vec<PathBuf>,
    /// Read --model as a registered model only, never as a folder (how
    /// jobs run it: a client names no path on the server).
    #[arg(long)]
    pub registered: bool,
    /// Instrument(s) to evaluate on (default: those the model was trained on).
    #[arg(long = "symbol")]
    pub symbols: Vec<String>,
    /// test (default) or validation.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Split the evaluated period into this many consecutive folds, each
    /// backtested from a fresh account.
    #[arg(long, default_value_t = 1)]
    pub folds: usize,
    /// Models or settings tried to arrive at this one (a sweep's trial
    /// count): the deflated Sharpe ratio discounts the luck of the best.
    #[arg(long, default_value_t = 1)]
    pub trials: usize,
    /// Standard deviation of the annualised Sharpe ratios those trials
    /// reached (needed with --trials above 1).
    #[arg(long, default_value_t = 0.0)]
    pub trial_sharpe_std: f64,
    /// Also run the policy sampled (as in training) over this many seeded
    /// paths and report their mean and spread beside the greedy pass.
    #[arg(long, default_value_t = 0)]
    pub paths: usize,
    /// Where reports go (overrides report.out_dir).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Evaluate even on bars the model learnt from or was selected on in
    /// `tradelab adapt` (refused otherwise: its figures would not be out of
    /// sample); the report then says so.
    #[arg(long)]
    pub allow_seen_bars: bool,
    /// Also trade all the symbols in one account, from the latest start of
    /// their splits, sized by backtest.sizing (e.g. --set
    /// backtest.sizing.method=hierarchical_risk_parity), beside
    /// buy-and-hold of the same instruments in one account.
    #[arg(long)]
    pub portfolio: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where reports go (overrides report.out_dir).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Build data/final/ from data/raw/: validate, compute and cache features.
    Prepare {
        #[arg(long)]
        raw_dir: Option<PathBuf>,
        #[arg(long)]
        final_dir: Option<PathBuf>,
    },
    /// Load one file and report its layout, timeframe and every validation action.
    Validate { file: PathBuf },
    /// Resample a file to a coarser timeframe and write it as CSV.
    Resample {
        file: PathBuf,
        /// Target timeframe, e.g. 5m, 1h, 1d.
        #[arg(long)]
        to: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a seeded synthetic regime-switching market (with regime labels) as CSV.
    Synth {
        #[arg(long, default_value_t = 2000)]
        bars: usize,
        #[arg(long)]
        out: PathBuf,
        /// Bar spacing, e.g. 1m, 1h, 1d, 1w or 1M (a month).
        #[arg(long, default_value = "1d")]
        timeframe: String,
        /// No bars on Saturdays and Sundays, as a stock market (crypto
        /// trades every day, the default).
        #[arg(long)]
        skip_weekends: bool,
    },
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// buy_and_hold, sma_crossover, rsi_mean_reversion, momentum,
    /// buy_and_hold_vol_target or momentum_vol_target.
    #[arg(long, short)]
    pub strategy: String,
    /// Instrument(s): a file stem or unique prefix in data.raw_dir, or a path
    /// to any supported CSV file (repeatable: several share one account).
    #[arg(long = "symbol", required = true)]
    pub symbols: Vec<String>,
    /// next_open (default) or signal_close.
    #[arg(long)]
    pub fill: Option<String>,
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Print the JSON report to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    /// The rule strategy: sma_crossover, rsi_mean_reversion, momentum,
    /// buy_and_hold_vol_target or momentum_vol_target.
    #[arg(long, short)]
    pub strategy: String,
    /// Instrument(s) as `backtest` takes them (repeatable: several share one account).
    #[arg(long = "symbol", required = true)]
    pub symbols: Vec<String>,
    /// A parameter and its values (repeatable): NAME=START:END[:STEP] (both
    /// ends included) or NAME=A,B,C. NAME is one of the strategy's settings
    /// (fast, slow, period, lookback, ...) or any key under backtest. or
    /// risk. (backtest.costs.percent, risk.max_drawdown, backtest.fill).
    #[arg(long = "param", required = true)]
    pub params: Vec<String>,
    /// A condition every combination must meet (repeatable), such as
    /// "fast < slow"; operators < <= > >= == !=.
    #[arg(long = "constraint")]
    pub constraints: Vec<String>,
    /// grid (every combination) or random (--trials of them, drawn with --seed).
    #[arg(long, default_value = "grid")]
    pub method: String,
    /// Combinations a random search draws.
    #[arg(long)]
    pub trials: Option<usize>,
    /// The metric ranked by: sharpe, sortino, calmar, total_return, cagr,
    /// max_drawdown, profit_factor, win_rate or total_pnl.
    #[arg(long, default_value = "sharpe")]
    pub metric: String,
    /// Walk-forward optimisation with K folds: search each window, trade
    /// the choice on the next, stitch the out-of-sample curve.
    #[arg(long = "walk-forward", value_name = "K")]
    pub walk_forward: Option<usize>,
    /// The heatmap's two parameters, X,Y (default: the first two).
    #[arg(long)]
    pub heatmap: Option<String>,
    /// Rows of the ranked table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Blocks for the probability of backtest overfitting (CSCV; even).
    #[arg(long, default_value_t = 16)]
    pub pbo_blocks: usize,
    /// Worker threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the reports go (default: a new folder under report.out_dir).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Print the JSON report to stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StressArgs {
    #[arg(long, short)]
    pub strategy: String,
    #[arg(long = "symbol", required = true)]
    pub symbols: Vec<String>,
    /// Number of resampled paths (overrides monte_carlo.paths).
    #[arg(long)]
    pub paths: Option<usize>,
    /// Where stress.json goes (overrides report.out_dir).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// engine, portfolio, csv, features, env, ppo, ppo-training (its MLP
    /// training throughput alone), hrm, trading (the trading loop) or
    /// events (what a session's events cost; JetStream with bus.url),
    /// forensics (explaining a decision, per agent kind; --bars caps the
    /// decisions at 500), chart (the dashboard's chart and regime routes
    /// on one file of --bars bars) (the last seven not part of all) or all.
    #[arg(default_value = "all")]
    pub what: String,
    /// Bars per series.
    #[arg(long, default_value_t = 1_000_000)]
    pub bars: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 7)]
    pub repeats: usize,
    /// Also write the engine benchmark's close series here (for vectorbt).
    #[arg(long)]
    pub write_csv: Option<PathBuf>,
}
