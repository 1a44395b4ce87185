//! The librdkafka statistics an operator alerts on, kept from the last
//! report (`statistics.interval.ms`, set with `--metrics`): per broker,
//! whether it is up, its round-trip time, and its request errors, retries
//! and disconnects.

use std::fmt::Write as _;

use rdkafka::statistics::Statistics;

/// One broker's numbers.
#[derive(Debug, Clone, PartialEq)]
struct Broker {
    name: String,
    up: bool,
    /// Average round-trip time in seconds over the last window.
    rtt: Option<f64>,
    txerrs: u64,
    txretries: u64,
    disconnects: i64,
}

/// The last statistics report, reduced to what [`KafkaStats::render`] shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KafkaStats {
    brokers: Vec<Broker>,
}

impl From<Statistics> for KafkaStats {
    fn from(stats: Statistics) -> Self {
        let mut brokers: Vec<_> = stats
            .brokers
            .into_values()
            // Bootstrap and internal entries (node id -1) are not brokers.
            .filter(|b| b.nodeid >= 0)
            .map(|b| Broker {
                up: b.state == "UP",
                rtt: b.rtt.filter(|w| w.cnt > 0).map(|w| w.avg as f64 / 1e6),
                txerrs: b.txerrs,
                txretries: b.txretries,
                disconnects: b.disconnects.unwrap_or(0),
                name: b.name,
            })
            .collect();
        brokers.sort_by(|a, b| a.name.cmp(&b.name));
        KafkaStats { brokers }
    }
}

impl KafkaStats {
    /// Append the Prometheus text of these numbers.
    pub fn render(&self, out: &mut String) {
        type Field = fn(&Broker) -> Option<String>;
        let series: [(&str, &str, &str, Field); 5] = [
            (
                "cdrship_kafka_broker_up",
                "gauge",
                "1 while the connection to the broker is up.",
                |b| Some(u8::from(b.up).to_string()),
            ),
            (
                "cdrship_kafka_broker_rtt_seconds",
                "gauge",
                "Average request round-trip time.",
                |b| b.rtt.map(|r| r.to_string()),
            ),
            (
                "cdrship_kafka_request_errors_total",
                "counter",
                "Requests that failed to send.",
                |b| Some(b.txerrs.to_string()),
            ),
            (
                "cdrship_kafka_request_retries_total",
                "counter",
                "Requests sent again.",
                |b| Some(b.txretries.to_string()),
            ),
            (
                "cdrship_kafka_disconnects_total",
                "counter",
                "Connections lost.",
                |b| Some(b.disconnects.to_string()),
            ),
        ];
        for (name, kind, help, field) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for broker in &self.brokers {
                if let Some(value) = field(broker) {
                    let _ = writeln!(out, "{name}{{broker=\"{}\"}} {value}", broker.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_from_a_librdkafka_report() {
        let report = r#"{"name":"p","client_id":"c","type":"producer","ts":1,"time":1,"age":1,
            "replyq":0,"msg_cnt":0,"msg_size":0,"msg_max":0,"msg_size_max":0,"tx":0,"tx_bytes":0,
            "rx":0,"rx_bytes":0,"txmsgs":0,"txmsg_bytes":0,"rxmsgs":0,"rxmsg_bytes":0,
            "simple_cnt":0,"metadata_cache_cnt":0,"topics":{},
            "brokers":{
              "k1:9092/1":{"name":"k1:9092/1","nodeid":1,"nodename":"k1:9092","source":"learned",
                "state":"UP","stateage":1,"outbuf_cnt":0,"outbuf_msg_cnt":0,"waitresp_cnt":0,
                "waitresp_msg_cnt":0,"tx":9,"txbytes":0,"txerrs":2,"txretries":3,"txidle":0,
                "req_timeouts":0,"rx":0,"rxbytes":0,"rxerrs":0,"rxcorriderrs":0,"rxpartial":0,
                "rxidle":0,"req":{},"zbuf_grow":0,"buf_grow":0,"connects":1,"disconnects":4,
                "rtt":{"min":1,"max":9,"avg":2500,"sum":5000,"cnt":2,"stddev":0,"hdrsize":0,
                  "p50":0,"p75":0,"p90":0,"p95":0,"p99":0,"p99_99":0,"outofrange":0},
                "toppars":{}},
              "k0:9092/bootstrap":{"name":"k0:9092/bootstrap","nodeid":-1,"nodename":"k0:9092",
                "source":"configured","state":"INIT","stateage":1,"outbuf_cnt":0,"outbuf_msg_cnt":0,
                "waitresp_cnt":0,"waitresp_msg_cnt":0,"tx":0,"txbytes":0,"txerrs":0,"txretries":0,
                "txidle":0,"req_timeouts":0,"rx":0,"rxbytes":0,"rxerrs":0,"rxcorriderrs":0,
                "rxpartial":0,"rxidle":0,"req":{},"zbuf_grow":0,"buf_grow":0,"toppars":{}}}}"#;
        let stats = KafkaStats::from(serde_json::from_str::<Statistics>(report).unwrap());
        let mut out = String::new();
        stats.render(&mut out);
        assert!(
            out.contains("cdrship_kafka_broker_up{broker=\"k1:9092/1\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("cdrship_kafka_broker_rtt_seconds{broker=\"k1:9092/1\"} 0.0025\n"));
        assert!(out.contains("cdrship_kafka_request_errors_total{broker=\"k1:9092/1\"} 2\n"));
        assert!(out.contains("cdrship_kafka_request_retries_total{broker=\"k1:9092/1\"} 3\n"));
        assert!(out.contains("cdrship_kafka_disconnects_total{broker=\"k1:9092/1\"} 4\n"));
        assert!(!out.contains("bootstrap"), "{out}");
    }
}
