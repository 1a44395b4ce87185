//! The parsed command line turned once into a plain [`Config`] that
//! nothing else ties to clap: option combinations are checked and values
//! become domain types here.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use clap::{CommandFactory as _, FromArgMatches as _};

pub use crate::args::Cli;
use crate::args::{FormatArg, MetaAs, WhenFull};
use crate::record::{Columns, Format, JsonFormat, Mapper, TimeConv, TimeFormat};
use crate::source::file::FollowOptions;
use crate::source::tcp::ServeOptions;

/// The durable spool's place and size.
#[derive(Debug, Clone)]
pub struct SpoolConfig {
    /// Its directory.
    pub dir: PathBuf,
    /// Most bytes on disk.
    pub max_bytes: u64,
}

/// Where lines come from; exactly one per process.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// Standard input: a pipe, a file, or an inetd socket.
    Stdin {
        /// Close an inetd socket silent for this long.
        idle_timeout: Option<Duration>,
    },
    /// A followed file.
    File {
        /// The path to follow (re-opened after rotation), resolved: a
        /// symlink's target, in its directory's canonical path.
        path: PathBuf,
        /// The path as given (older state files are named after it).
        given: PathBuf,
        /// Where progress is saved, if anywhere.
        state_dir: Option<PathBuf>,
        /// How to follow it.
        options: FollowOptions,
    },
    /// TCP listeners: bound to `addrs`, or passed by systemd when empty.
    Listen {
        /// Addresses to bind.
        addrs: Vec<SocketAddr>,
        /// Peer handling.
        options: ServeOptions,
    },
}

/// Everything the pipeline needs, free of clap.
#[derive(Debug, Clone)]
pub struct Config {
    /// The input.
    pub source: SourceConfig,
    /// Producer properties in the order they are applied.
    pub kafka: Vec<(String, String)>,
    /// Destination topic.
    pub topic: String,
    /// Destination of rejected lines.
    pub reject_topic: String,
    /// Line to message mapping.
    pub mapper: Mapper,
    /// Longest line accepted.
    pub max_line_bytes: usize,
    /// Largest mapped message (value and key) the producer accepts.
    pub max_value_bytes: usize,
    /// Drain bound on shutdown.
    pub shutdown_timeout: Duration,
    /// Tee delivered values to stdout.
    pub echo: bool,
    /// The durable spool (stdin and TCP), if any.
    pub spool: Option<SpoolConfig>,
    /// Host id for metadata headers (`--meta` as headers), if any.
    pub meta_headers: Option<String>,
    /// Prometheus endpoint address.
    pub metrics: Option<SocketAddr>,
    /// Period of the stats line, if any.
    pub stats_interval: Option<Duration>,
    /// `--exactly-once`, with its fence (`None`: from the brokers).
    pub exactly_once: Option<Option<Duration>>,
}

impl Cli {
    /// Validate option combinations and build the [`Config`].
    pub fn into_config(self) -> Result<Config> {
        let host = self
            .meta
            .then(|| self.host_id.clone().unwrap_or_else(hostname));
        let headers = self.format == FormatArg::Raw || self.meta_as == MetaAs::Headers;
        let (meta_fields, meta_headers) = if headers { (None, host) } else { (host, None) };
        let format = match self.format {
            FormatArg::Raw => {
                if self.header {
                    bail!("--header needs --format json (it names JSON fields)");
                }
                if self.key.is_some() {
                    bail!("--key needs --format json (the key is taken from a named field)");
                }
                if self.avaya_cm_layout.is_some() {
                    bail!("--avaya-cm-layout needs --format json (it names JSON fields)");
                }
                Format::Raw
            }
            FormatArg::Json | FormatArg::JsonSchema if self.trim => {
                bail!("--trim is for raw lines (JSON fields are trimmed already)")
            }
            FormatArg::Json | FormatArg::JsonSchema => {
                Format::Json(Box::new(self.json_format(meta_fields)?))
            }
        };
        let mapper = Mapper::new(format, self.key.as_deref())?;
        let mapper = if self.trim { mapper.trimmed() } else { mapper };
        let (file_given, listen_given) = (self.file.is_some(), !self.listen.is_empty());
        let source = match (self.file, self.listen.is_empty()) {
            (Some(given), _) => SourceConfig::File {
                path: resolved(&given),
                given,
                state_dir: self
                    .state_dir
                    .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from)),
                options: FollowOptions {
                    poll_interval: self.poll_interval,
                    from: self.from,
                    partial_line_timeout: self.partial_line_timeout,
                    rotate_grace: self.rotate_grace,
                },
            },
            (None, empty) if !empty || crate::source::activation::present() => {
                SourceConfig::Listen {
                    addrs: self.listen,
                    options: ServeOptions {
                        allow: self.allow,
                        max_connections: self.max_connections,
                        max_connections_per_peer: Some(self.max_connections_per_peer)
                            .filter(|&n| n > 0),
                        idle_timeout: self.idle_timeout,
                        refuse_when_full: self.when_full == WhenFull::Reject,
                    },
                }
            }
            (None, _) => SourceConfig::Stdin {
                idle_timeout: self.idle_timeout,
            },
        };
        if crate::source::activation::present() && (file_given || listen_given) {
            warn!("sockets passed by systemd (LISTEN_FDS) are ignored: --file or --listen is set");
        }
        if self.exactly_once {
            match &source {
                SourceConfig::File {
                    state_dir: Some(_), ..
                } => {}
                SourceConfig::File { .. } => bail!(
                    "--exactly-once needs --state-dir (or $STATE_DIRECTORY): the state says \
                     where to read Kafka back from after a crash"
                ),
                _ if self.spool_dir.is_some() => {}
                _ => bail!(
                    "--exactly-once needs --file or --spool-dir: a pipe or socket cannot be \
                     read again after a crash, so lines in flight then cannot be checked"
                ),
            }
        }
        if self.max_line_bytes == 0 {
            bail!("--max-line-bytes must be at least 1");
        }
        let mut kafka = crate::sink::default_properties(&self.brokers);
        if self.metrics.is_some() {
            // Broker state, round-trip times and errors for the endpoint.
            kafka.push(("statistics.interval.ms".into(), "5000".into()));
        }
        if let Some(file) = &self.properties_file {
            kafka.extend(crate::properties::read(file)?);
        }
        for prop in &self.property {
            let (key, value) = prop
                .split_once('=')
                .with_context(|| format!("-X {prop}: expected key=value"))?;
            kafka.push((key.trim().to_owned(), value.trim().to_owned()));
        }
        let (max_value_bytes, limit) = crate::sink::value_limit(&kafka)?;
        if self.max_line_bytes > max_value_bytes {
            bail!(
                "--max-line-bytes {} does not fit the producer's message.max.bytes {limit} \
                 ({} bytes are kept for key and headers): lower --max-line-bytes to at most \
                 {max_value_bytes} or raise -X message.max.bytes",
                self.max_line_bytes,
                crate::sink::HEADROOM
            );
        }
        Ok(Config {
            source,
            kafka,
            max_value_bytes,
            reject_topic: self
                .reject_topic
                .unwrap_or_else(|| format!("{}.rejects", self.topic)),
            topic: self.topic,
            mapper,
            max_line_bytes: self.max_line_bytes,
            shutdown_timeout: self.shutdown_timeout,
            echo: self.echo,
            spool: self.spool_dir.map(|dir| SpoolConfig {
                dir,
                max_bytes: self.spool_max_bytes,
            }),
            meta_headers,
            metrics: self.metrics,
            stats_interval: Some(self.stats_interval).filter(|d| !d.is_zero()),
            exactly_once: self.exactly_once.then_some(self.exactly_once_fence),
        })
    }

    fn json_format(&self, meta_host: Option<String>) -> Result<JsonFormat> {
        let columns = match (&self.preset, &self.columns) {
            _ if self.avaya_cm_layout.is_some() => {
                let layout = self.avaya_cm_layout.as_deref().unwrap_or_default();
                let text = match layout.strip_prefix('@') {
                    Some(file) => std::fs::read_to_string(file)
                        .with_context(|| format!("--avaya-cm-layout: reading {file}"))?,
                    None => layout.to_owned(),
                };
                Columns::avaya_cm(&text).context("--avaya-cm-layout")?
            }
            (Some(name), _) => Columns::preset(name)?,
            (None, Some(list)) => Columns::parse(list)?,
            (None, None) if self.header => Columns::unnamed(),
            (None, None) => bail!(
                "--format json needs column names: --preset asterisk-cdr, --columns a,b,c or --header"
            ),
        };
        let time = TimeConv::new(
            TimeFormat::parse(&self.time_format)?,
            columns.time_input,
            self.timezone.as_deref(),
            Some(&self.output_timezone),
        )?;
        let charset = encoding_rs::Encoding::for_label(self.charset.as_bytes())
            .with_context(|| format!("--charset {}: unknown charset", self.charset))?;
        Ok(JsonFormat {
            columns,
            time,
            charset,
            envelope: self.format == FormatArg::JsonSchema,
            meta_host,
            header: self.header,
        })
    }
}

/// Parse the process's arguments (exits on `--help`, `--version` or a
/// usage error). `--version` names the librdkafka cdrship runs on and
/// what it was built with, since that decides the Kafka features (TLS,
/// SASL, codecs) and fixes at hand.
pub fn parse() -> Cli {
    // What the linked librdkafka can do (TLS, SASL mechanisms, codecs).
    let features = rdkafka::ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
        .unwrap_or_else(|_| "unknown".into());
    let version = format!(
        "{} (librdkafka {}; features: {features})",
        env!("CARGO_PKG_VERSION"),
        rdkafka::util::get_rdkafka_version().1
    );
    // Once per process: clap keeps the text for the life of the command.
    let matches = Cli::command().version(&*version.leak()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The kernel's host name (no libc call needed on Linux).
/// `--file` resolved (see [`crate::source::file::resolve`]), said in the
/// log when it is not what was given.
fn resolved(given: &Path) -> PathBuf {
    let path = crate::source::file::resolve(given);
    if path != given {
        info!("--file {} resolves to {}", given.display(), path.display());
    }
    path
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn config(args: &[&str]) -> Result<Config> {
        let mut argv = vec!["cdrship", "-t", "cdr"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.into_config()
    }

    #[test]
    fn json_without_columns_is_a_usage_error() {
        let err = config(&["-f", "json"]).unwrap_err().to_string();
        assert!(err.contains("--preset"), "{err}");
    }

    #[test]
    fn trim_and_cm_layouts_belong_to_their_format() {
        let err = config(&["-f", "json", "--preset", "asterisk-cdr", "--trim"]).unwrap_err();
        assert!(err.to_string().contains("--trim is for raw lines"), "{err}");
        let err = config(&["--avaya-cm-layout", "date 6"]).unwrap_err();
        assert!(err.to_string().contains("needs --format json"), "{err}");
        let err = config(&["-f", "json", "--avaya-cm-layout", "date"]).unwrap_err();
        assert!(format!("{err:#}").contains("no length"), "{err:#}");
        assert!(config(&["-f", "json", "--avaya-cm-layout", "date 6, space 1, time 4"]).is_ok());
        let err = config(&["-f", "json", "--avaya-cm-layout", "@/nonexistent"]).unwrap_err();
        assert!(
            format!("{err:#}").contains("reading /nonexistent"),
            "{err:#}"
        );
    }

    #[test]
    fn user_properties_come_after_defaults() {
        let cfg = config(&["-X", "acks=1", "-X", "linger.ms = 7"]).unwrap();
        let last = |key: &str| {
            cfg.kafka
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(last("acks"), "1");
        assert_eq!(last("linger.ms"), "7");
        assert_eq!(cfg.reject_topic, "cdr.rejects");
    }

    #[test]
    fn file_and_listen_are_exclusive() {
        assert!(config(&["--file", "x", "--listen", "127.0.0.1:1"]).is_err());
    }

    #[test]
    fn key_needs_json() {
        assert!(config(&["-k", "uniqueid"]).is_err());
        assert!(config(&["-f", "json", "--preset", "asterisk-cdr", "-k", "uniqueid"]).is_ok());
    }
}
