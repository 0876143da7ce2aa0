//! `tradelab serve`: the API server, from its flags.

use anyhow::Result;
use tradelab_server::ServeOptions;

use crate::cli::{GlobalArgs, ServeArgs};

pub fn run(g: &GlobalArgs, a: &ServeArgs) -> Result<()> {
    if a.print_openapi {
        println!("{}", tradelab_server::openapi_json());
        return Ok(());
    }
    let options = ServeOptions {
        addr: a.addr.clone(),
        timeout_secs: a.timeout_secs,
        workers: a.workers,
        insecure_no_auth: a.insecure_no_auth,
        header_timeout_secs: a.header_timeout_secs,
        max_connections: a.max_connections,
    };
    tradelab_server::run(&g.settings_source(), &options)
}
