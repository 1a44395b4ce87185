//! The command line: the clap definition, and nothing but it. It depends
//! on std, clap and ipnet only, because `build.rs` compiles this same file
//! to generate the man page and shell completions: they can never miss an
//! option. `cli.rs` turns the parsed [`Cli`] into the pipeline's plain
//! configuration.
//!
//! Every option can also come from `CDRSHIP_<NAME>` so systemd units and
//! xinetd services can keep settings in an environment file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use ipnet::IpNet;

/// The man page's and `--help`'s section on TLS and SASL.
const SECURE_CLUSTERS: &str = "\
Secure clusters: put security.protocol, ssl.* and sasl.* in a -F file readable by its \
owner only (see `cdrship --version` for what librdkafka was built with: TLS, SASL \
PLAIN/SCRAM/GSSAPI/OAUTHBEARER, gzip/snappy/lz4/zstd). Values from it, and of any \
property librdkafka rejects, are never logged. A broker that refuses cdrship (wrong CA, a \
certificate for another name or expired, no client certificate, a bad password, a \
mechanism it does not offer, TLS against plaintext or the other way round, a token \
endpoint that refuses) is named in one line with what to change; when every bootstrap \
broker refused and nothing was ever delivered, cdrship exits 1, at once if what it read is \
kept (--state-dir, --spool-dir). Kerberos needs kinit (Debian package krb5-user) and the \
Cyrus GSSAPI plugin (libsasl2-modules-gssapi-mit).";

/// Ship PBX call detail records (one per line) to Apache Kafka.
///
/// Reads stdin by default (`tail -f Master.csv | cdrship -t asterisk`, or
/// under xinetd where stdin is the socket), follows a file with `--file`,
/// or serves TCP with `--listen`. Every line becomes one Kafka message.
/// Exit codes: 0 every line read was acknowledged by the broker; 75 the
/// undelivered lines are kept in the spool for the next start; 1 lines
/// were lost or reading failed; 2 usage error.
#[derive(Debug, Parser)]
#[command(version, about, max_term_width = 100, after_long_help = SECURE_CLUSTERS)]
pub struct Cli {
    /// Kafka bootstrap servers, comma separated.
    #[arg(short, long, env = "CDRSHIP_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,

    /// Topic that receives the lines.
    #[arg(short, long, env = "CDRSHIP_TOPIC")]
    pub topic: String,

    /// Librdkafka property key=value, repeatable (or `;`-separated); applied
    /// last, so it overrides cdrship's defaults (acks=all, idempotence,
    /// retry until delivered).
    #[arg(
        short = 'X',
        value_name = "KEY=VALUE",
        env = "CDRSHIP_X",
        value_delimiter = ';'
    )]
    pub property: Vec<String>,

    /// Read librdkafka properties from FILE (one key=value per line, `#`
    /// comments), before any -X: the place for passwords and keys, which
    /// on the command line show in `ps` and shell history. Keep it
    /// readable by its owner only.
    #[arg(
        short = 'F',
        long = "properties-file",
        value_name = "FILE",
        env = "CDRSHIP_PROPERTIES_FILE"
    )]
    pub properties_file: Option<PathBuf>,

    /// Follow this file (across rename+create rotation) instead of stdin.
    #[arg(long, env = "CDRSHIP_FILE", conflicts_with = "listen")]
    pub file: Option<PathBuf>,

    /// Serve TCP on this address (repeatable) instead of reading stdin.
    /// Sockets passed by systemd (LISTEN_FDS, `Accept=no`) are used when
    /// neither --listen nor --file is given.
    #[arg(long, env = "CDRSHIP_LISTEN", value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,

    /// Only accept TCP peers from this network (repeatable, e.g.
    /// 10.0.0.0/8); others are logged, counted and closed at once.
    #[arg(long, env = "CDRSHIP_ALLOW", value_delimiter = ',', value_parser = parse_net)]
    pub allow: Vec<IpNet>,

    /// Most TCP connections served at once; further peers wait in the
    /// listen backlog until one closes.
    #[arg(long, env = "CDRSHIP_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,

    /// Most TCP connections from one peer address (like xinetd
    /// `per_source`); more are logged, counted and closed at once, so one
    /// peer cannot hold every slot. 0: no limit.
    #[arg(long, env = "CDRSHIP_MAX_CONNECTIONS_PER_PEER", default_value_t = 32)]
    pub max_connections_per_peer: usize,

    /// Close a TCP connection (also an inetd socket on stdin) silent for
    /// this many seconds (default: never; PBXs keep links open for days).
    #[arg(long, env = "CDRSHIP_IDLE_TIMEOUT", value_parser = parse_secs)]
    pub idle_timeout: Option<Duration>,

    /// Keep every line read from stdin or TCP in this directory until
    /// Kafka acknowledged it; a restart sends what is left first. One
    /// process per directory.
    #[arg(long, env = "CDRSHIP_SPOOL_DIR", conflicts_with = "file")]
    pub spool_dir: Option<PathBuf>,

    /// Most disk the spool may use (bytes; K, M, G suffixes; at least 256K).
    #[arg(long, env = "CDRSHIP_SPOOL_MAX_BYTES", default_value = "1G", value_parser = parse_spool_bytes)]
    pub spool_max_bytes: u64,

    /// When the spool is full: block (stop reading; TCP peers and pipes
    /// wait) or reject (also close new TCP connections at once).
    #[arg(long, env = "CDRSHIP_WHEN_FULL", value_enum, default_value_t = WhenFull::Block)]
    pub when_full: WhenFull,

    /// Message value: the line as received (raw), a JSON object of its CSV
    /// fields (json, needs --preset or --columns), or that object in a
    /// Kafka Connect schema envelope (json-schema).
    #[arg(short, long, env = "CDRSHIP_FORMAT", value_enum, default_value_t = FormatArg::Raw)]
    pub format: FormatArg,

    /// Column preset for --format json: asterisk-cdr, asterisk-cel,
    /// avaya-ipo-smdr, avaya-cm (a customized example), avaya-cm-unformatted,
    /// avaya-cm-teleseer, avaya-cm-teleseer-isdn, avaya-cm-lsu,
    /// avaya-cm-lsu-expand, avaya-cm-printer, avaya-cm-expanded (README:
    /// Presets).
    #[arg(long, env = "CDRSHIP_PRESET", conflicts_with = "columns")]
    pub preset: Option<String>,

    /// Column names for --format json, comma separated; `name:int` makes
    /// a JSON integer, `name:datetime` a date/time (see --time-format).
    /// Fixed-width records: every column `name@OFFSET+LEN[:type]` (0-based
    /// byte offset, length in bytes).
    #[arg(long, env = "CDRSHIP_COLUMNS")]
    pub columns: Option<String>,

    /// An Avaya CM customized layout for --format json, as `display
    /// system-parameters cdr` page 2 lists it: data items and their lengths
    /// in order, separated by commas or new lines (`date 6, space 1, time 4,
    /// sec-dur 5, ...`; `space`, `return`, `line-feed`, `null` give no
    /// field); `@FILE` reads them from FILE.
    #[arg(
        long,
        value_name = "ITEMS",
        env = "CDRSHIP_AVAYA_CM_LAYOUT",
        conflicts_with_all = ["preset", "columns"]
    )]
    pub avaya_cm_layout: Option<String>,

    /// Ship raw lines without leading and trailing whitespace, as the
    /// phone.py scripts did (`sys.stdin.readline().strip()`), for
    /// consumers written against them.
    #[arg(long, env = "CDRSHIP_TRIM")]
    pub trim: bool,

    /// Take the JSON column names from the first line of the input (each
    /// file, stdin, each TCP connection); that line is not shipped.
    #[arg(long, env = "CDRSHIP_HEADER", conflicts_with_all = ["preset", "columns", "avaya_cm_layout"])]
    pub header: bool,

    /// Date/time fields in JSON: keep (the PBX's text), iso8601,
    /// clickhouse (`YYYY-MM-DD hh:mm:ss`), epoch, epoch_ms, or a strftime
    /// pattern. Empty fields are always null.
    #[arg(long, env = "CDRSHIP_TIME_FORMAT", default_value = "keep")]
    pub time_format: String,

    /// Time zone the PBX writes in (IANA name); default the system zone.
    #[arg(long, env = "CDRSHIP_TIMEZONE")]
    pub timezone: Option<String>,

    /// Time zone of converted date/times.
    #[arg(long, env = "CDRSHIP_OUTPUT_TIMEZONE", default_value = "UTC")]
    pub output_timezone: String,

    /// Charset of the PBX's lines for JSON (utf-8, cp1251, koi8-r, latin1,
    /// any WHATWG label). Lines with invalid bytes keep the original in
    /// `_raw` and are counted.
    #[arg(long, env = "CDRSHIP_CHARSET", default_value = "utf-8")]
    pub charset: String,

    /// Add metadata: `_host`, `_source` (file or peer), `_offset` (file).
    #[arg(long, env = "CDRSHIP_META")]
    pub meta: bool,

    /// Where --meta goes: JSON fields, or Kafka headers (`cdrship.host`,
    /// `cdrship.source`, `cdrship.offset`); raw format always uses headers.
    #[arg(long, env = "CDRSHIP_META_AS", value_enum, default_value_t = MetaAs::Fields)]
    pub meta_as: MetaAs,

    /// Host id for --meta (default: the hostname), so records from several
    /// PBXs with overlapping extensions stay apart.
    #[arg(long, env = "CDRSHIP_HOST_ID")]
    pub host_id: Option<String>,

    /// Message key taken from this JSON field (needs --format json).
    #[arg(short, long, env = "CDRSHIP_KEY")]
    pub key: Option<String>,

    /// Topic for rejected lines (overlong, malformed); default `<topic>.rejects`.
    #[arg(long, env = "CDRSHIP_REJECT_TOPIC")]
    pub reject_topic: Option<String>,

    /// Lines longer than this many bytes are rejected, not truncated.
    #[arg(long, env = "CDRSHIP_MAX_LINE_BYTES", default_value_t = 64 * 1024)]
    pub max_line_bytes: usize,

    /// Directory for file-mode progress; defaults to $STATE_DIRECTORY
    /// (systemd StateDirectory=). Without it a restart re-reads the file.
    #[arg(long, env = "CDRSHIP_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Seconds between file re-checks when no change event arrives.
    #[arg(long, env = "CDRSHIP_POLL_INTERVAL", default_value = "1", value_parser = parse_secs)]
    pub poll_interval: Duration,

    /// Where a file with no saved progress is read from; saved progress
    /// always wins.
    #[arg(long, env = "CDRSHIP_FROM", value_enum, default_value_t = StartAt::Beginning)]
    pub from: StartAt,

    /// Ship a file's unterminated last line after this many seconds without
    /// new bytes (default: wait for its newline forever).
    #[arg(long, env = "CDRSHIP_PARTIAL_LINE_TIMEOUT", value_parser = parse_secs)]
    pub partial_line_timeout: Option<Duration>,

    /// With --file: keep reading a rotated-away file while it still grows
    /// (a writer that holds its descriptor until it reopens), until it has
    /// been quiet for this long; the new file is read meanwhile.
    #[arg(long, env = "CDRSHIP_ROTATE_GRACE", default_value = "10", value_parser = parse_secs)]
    pub rotate_grace: Duration,

    /// Every line in the topic exactly once, also after a crash: with
    /// --file and a state directory, the state keeps where in Kafka the
    /// unsaved lines' messages can be, and a start after an unclean stop
    /// reads them back and does not send those lines again.
    #[arg(long, env = "CDRSHIP_EXACTLY_ONCE")]
    pub exactly_once: bool,

    /// With --exactly-once: seconds a start after an unclean stop waits
    /// before reading back, so the requests the stopped process had sent
    /// are written or refused by then. Default: the longest the brokers
    /// let a replica lag or a broker go silent before the in-sync set
    /// moves on (their replica.lag.time.max.ms and broker.session.timeout.ms),
    /// plus 5 s; 35 s if they do not say (see README, exactly once).
    #[arg(long, env = "CDRSHIP_EXACTLY_ONCE_FENCE", value_parser = parse_secs)]
    pub exactly_once_fence: Option<Duration>,

    /// Seconds to wait for outstanding deliveries after SIGTERM/SIGINT (at
    /// plain EOF cdrship waits until every line is acknowledged).
    #[arg(long, env = "CDRSHIP_SHUTDOWN_TIMEOUT", default_value = "30", value_parser = parse_secs)]
    pub shutdown_timeout: Duration,

    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long, env = "CDRSHIP_METRICS")]
    pub metrics: Option<SocketAddr>,

    /// Seconds between one-line stats summaries on stderr (0: none).
    #[arg(long, env = "CDRSHIP_STATS_INTERVAL", default_value = "60", value_parser = parse_secs)]
    pub stats_interval: Duration,

    /// Print each delivered message value to stdout after the broker
    /// acknowledged it (a tee for trying cdrship out).
    #[arg(long, env = "CDRSHIP_ECHO")]
    pub echo: bool,

    /// More logging (-v debug).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only log warnings and errors.
    #[arg(short, long, env = "CDRSHIP_QUIET")]
    pub quiet: bool,
}

/// The `--format` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The line's bytes exactly as received.
    Raw,
    /// CSV fields as a JSON object.
    Json,
    /// The JSON object in a Kafka Connect `{"schema","payload"}` envelope.
    JsonSchema,
}

/// The `--meta-as` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MetaAs {
    /// Fields of the JSON object.
    Fields,
    /// Kafka message headers.
    Headers,
}

/// The `--when-full` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WhenFull {
    /// Stop reading until deliveries free space.
    Block,
    /// Block, and close new TCP connections while full.
    Reject,
}

/// Where a file without saved progress is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartAt {
    /// The whole file: no CDR already in it is skipped.
    Beginning,
    /// Only lines appended from now on.
    End,
}

impl Cli {
    /// Log level from -v/-q: 0 warn, 1 info, 2 debug.
    pub fn log_level(&self) -> u8 {
        if self.quiet {
            0
        } else {
            1 + self.verbose.min(1)
        }
    }
}

/// A network (`10.0.0.0/8`) or a single address (`192.0.2.7`).
fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{text}` is not an address or network (CIDR)"))
}

/// Bytes as `1048576`, `512K`, `64M` or `1G` (powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 10),
        Some((at, 'm' | 'M')) => (&text[..at], 20),
        Some((at, 'g' | 'G')) => (&text[..at], 30),
        _ => (text, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}` is not a size in bytes (like 512M)"))
}

/// A spool size: space is freed a whole segment (64 KiB or more) at a
/// time, once deliveries moved past it, so a spool of fewer than four
/// segments could fill up with none of them free to go.
fn parse_spool_bytes(text: &str) -> Result<u64, String> {
    let bytes = parse_bytes(text)?;
    if bytes < 256 << 10 {
        return Err(format!("`{text}` is below the smallest spool, 256K"));
    }
    Ok(bytes)
}

/// Seconds as `1.5` or `30s`.
fn parse_secs(text: &str) -> Result<Duration, String> {
    text.strip_suffix('s')
        .unwrap_or(text)
        .parse::<f64>()
        .ok()
        .filter(|secs| secs.is_finite() && *secs >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{text}` is not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_bytes("512K"), Ok(512 << 10));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("1T").is_err());
        assert!(parse_bytes("99999999999G").is_err());
    }
}
