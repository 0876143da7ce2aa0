//! NATS JetStream: a durable stream of every session's events (subject
//! `<prefix>.<session>`), published with the event's id as `Nats-Msg-Id` so
//! the server drops a copy sent again within its duplicate window, and
//! read by durable pull consumers that acknowledge each event explicitly
//! once it is handled. The client runs on a runtime of its own, so the
//! publisher's thread and the workers stay synchronous.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

use crate::chain::ChainHead;
use crate::event::Event;
use crate::transport::{Transport, TransportError};

/// Where the stream is and how long it keeps events.
#[derive(Debug, Clone, PartialEq)]
pub struct JetStreamOptions {
    /// The server, `nats://host:port`.
    pub url: String,
    /// The stream's name.
    pub stream: String,
    /// Subjects are `<prefix>.<session>`.
    pub subject_prefix: String,
    /// Events older than this are removed by the server (0: kept until
    /// `max_bytes`); the audit store keeps the record for its own term.
    pub max_age: Duration,
    /// The stream's size limit in bytes (-1: none).
    pub max_bytes: i64,
    /// How long a publish waits for the server's acknowledgement before
    /// the publisher spools instead.
    pub ack_timeout: Duration,
}

impl JetStreamOptions {
    /// The defaults for a server at `url`.
    pub fn new(url: &str) -> Self {
        JetStreamOptions {
            url: url.to_string(),
            stream: "TRADELAB_EVENTS".into(),
            subject_prefix: "tradelab.events".into(),
            max_age: Duration::from_secs(30 * 24 * 3600),
            max_bytes: -1,
            ack_timeout: Duration::from_secs(2),
        }
    }

    fn subject(&self, session: &str) -> String {
        format!("{}.{session}", self.subject_prefix)
    }
}

fn err(context: &str, e: impl std::fmt::Display) -> TransportError {
    TransportError(format!("{context}: {e}"))
}

/// A connection to the server, made when first needed (tried again at each
/// use until it is); once made, the client reconnects by itself.
struct Connection {
    runtime: tokio::runtime::Runtime,
    options: JetStreamOptions,
    context: Option<jetstream::Context>,
}

impl Connection {
    fn new(options: JetStreamOptions) -> Result<Connection, TransportError> {
        // One thread of its own: the client answers the server's pings and
        // reconnects while the caller is between sends.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("nats-client")
            .enable_all()
            .build()
            .map_err(|e| err("starting the NATS client's runtime", e))?;
        Ok(Connection {
            runtime,
            options,
            context: None,
        })
    }

    /// The JetStream context, the stream created or updated to the options.
    fn context(&mut self) -> Result<jetstream::Context, TransportError> {
        if let Some(c) = &self.context {
            return Ok(c.clone());
        }
        let o = self.options.clone();
        let context = self.runtime.block_on(async move {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(o.ack_timeout)
                .connect(o.url.as_str())
                .await
                .map_err(|e| err(&format!("connecting to NATS at {} (bus.url)", o.url), e))?;
            let mut context = jetstream::new(client);
            context.set_timeout(o.ack_timeout);
            let config = stream::Config {
                name: o.stream.clone(),
                subjects: vec![format!("{}.>", o.subject_prefix)],
                max_age: o.max_age,
                max_bytes: o.max_bytes,
                storage: stream::StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            };
            let created = context.get_or_create_stream(config.clone()).await;
            created.map_err(|e| {
                err(
                    &format!(
                        "creating the JetStream stream {} (is JetStream enabled: nats-server -js?)",
                        o.stream
                    ),
                    e,
                )
            })?;
            context
                .update_stream(config)
                .await
                .map_err(|e| err(&format!("applying the retention settings to stream {}", o.stream), e))?;
            Ok::<_, TransportError>(context)
        })?;
        self.context = Some(context.clone());
        Ok(context)
    }
}

/// Publishes events to JetStream.
pub struct JetStream {
    connection: Connection,
}

impl JetStream {
    /// A publisher's transport to the server in `options`; it connects on
    /// first use, so a server that is down only spools events.
    pub fn new(options: JetStreamOptions) -> Result<JetStream, TransportError> {
        Ok(JetStream {
            connection: Connection::new(options)?,
        })
    }
}

impl Transport for JetStream {
    fn describe(&self) -> String {
        format!("NATS JetStream at {}", self.connection.options.url)
    }

    fn send(&mut self, events: &[Event]) -> Result<(), TransportError> {
        let context = self.connection.context()?;
        let options = &self.connection.options;
        // While the client knows it is cut off (it reconnects by itself),
        // fail at once rather than wait out acknowledgements: the publisher
        // spools, and a checkpoint waiting on it is not held up.
        if context.client().connection_state() != async_nats::connection::State::Connected {
            return Err(TransportError(format!(
                "not connected to NATS at {} (reconnecting)",
                options.url
            )));
        }
        let sent = self.connection.runtime.block_on(async {
            // All published, then all acknowledgements awaited: one round
            // trip for the batch, not one per event.
            let mut acks = Vec::with_capacity(events.len());
            for e in events {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", e.id().as_str());
                let ack = context
                    .publish_with_headers(options.subject(&e.session), headers, e.to_json().into())
                    .await
                    .map_err(|x| err("publishing an event", x))?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await
                    .map_err(|x| err("waiting for JetStream's acknowledgement", x))?;
            }
            Ok::<_, TransportError>(())
        });
        // On an error the client keeps reconnecting by itself; the
        // publisher spools meanwhile and sends again.
        sent
    }

    fn ready(&mut self, within: Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        loop {
            let connected = self
                .connection
                .context()
                .is_ok_and(|c| c.client().connection_state() == async_nats::connection::State::Connected);
            if connected {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn head(&mut self, session: &str) -> Result<Option<ChainHead>, TransportError> {
        let context = self.connection.context()?;
        let options = self.connection.options.clone();
        self.connection.runtime.block_on(async move {
            let stream = context
                .get_stream_no_info(&options.stream)
                .await
                .map_err(|e| err("opening the event stream", e))?;
            match stream.get_last_raw_message_by_subject(&options.subject(session)).await {
                Ok(m) => {
                    let e = Event::from_json(&m.payload).map_err(|x| err("the stream's last event", x))?;
                    Ok(Some(ChainHead::of(&e)))
                }
                Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(err("reading the session's last event", e)),
            }
        })
    }
}

/// An event read from the stream, to acknowledge once handled.
pub struct Delivery {
    /// The event (`None`: the message is not an event; acknowledge it
    /// so it is not redelivered forever).
    pub event: Result<Event, String>,
    message: jetstream::Message,
}

/// A durable pull consumer: several workers with the same name share the
/// stream's events, each delivered to one of them until acknowledged.
pub struct JetStreamConsumer {
    connection: Connection,
    durable: String,
    consumer: Option<consumer::Consumer<consumer::pull::Config>>,
}

impl JetStreamConsumer {
    /// A consumer named `durable` on the stream in `options`; created on
    /// the server if missing, from the stream's first event.
    pub fn new(options: JetStreamOptions, durable: &str) -> Result<JetStreamConsumer, TransportError> {
        Ok(JetStreamConsumer {
            connection: Connection::new(options)?,
            durable: durable.to_string(),
            consumer: None,
        })
    }

    fn consumer(&mut self) -> Result<consumer::Consumer<consumer::pull::Config>, TransportError> {
        if let Some(c) = &self.consumer {
            return Ok(c.clone());
        }
        let context = self.connection.context()?;
        let options = self.connection.options.clone();
        let durable = self.durable.clone();
        let c = self.connection.runtime.block_on(async move {
            let stream = context
                .get_stream(&options.stream)
                .await
                .map_err(|e| err("opening the event stream", e))?;
            stream
                .get_or_create_consumer(
                    &durable,
                    consumer::pull::Config {
                        durable_name: Some(durable.clone()),
                        ack_policy: consumer::AckPolicy::Explicit,
                        ack_wait: Duration::from_secs(30),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| err(&format!("the durable consumer {durable}"), e))
        })?;
        self.consumer = Some(c.clone());
        Ok(c)
    }

    /// Up to `max` events, waiting at most `wait` for the first.
    pub fn fetch(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>, TransportError> {
        let consumer = self.consumer()?;
        let got = self.connection.runtime.block_on(async move {
            let mut batch = consumer
                .fetch()
                .max_messages(max)
                .expires(wait)
                .messages()
                .await
                .map_err(|e| err("fetching events", e))?;
            let mut out = Vec::new();
            while let Some(m) = batch.next().await {
                let message = m.map_err(|e| err("receiving an event", e))?;
                out.push(Delivery {
                    event: Event::from_json(&message.payload),
                    message,
                });
            }
            Ok::<_, TransportError>(out)
        });
        got
    }

    /// Acknowledges `deliveries`: they are handled and not sent again.
    pub fn ack(&mut self, deliveries: &[Delivery]) -> Result<(), TransportError> {
        self.connection.runtime.block_on(async {
            for d in deliveries {
                d.message.ack().await.map_err(|e| err("acknowledging an event", e))?;
            }
            Ok(())
        })
    }
}

/// Removes the stream in `options` and every event in it (benchmarks and
/// tests clean up with it; the audit store keeps its own copy).
pub fn delete_stream(options: &JetStreamOptions) -> Result<(), TransportError> {
    let connection = Connection::new(options.clone())?;
    let o = options.clone();
    connection.runtime.block_on(async move {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(o.ack_timeout)
            .connect(o.url.as_str())
            .await
            .map_err(|e| err(&format!("connecting to NATS at {}", o.url), e))?;
        jetstream::new(client)
            .delete_stream(&o.stream)
            .await
            .map_err(|e| err(&format!("deleting stream {}", o.stream), e))?;
        Ok(())
    })
}
