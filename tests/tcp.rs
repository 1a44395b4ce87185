//! The TCP listener end to end: many concurrent PBX connections, the
//! allowlist and the connection cap.

mod common;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use common::{cdrship, connect_from, serve_tcp, texts, wait_until, Broker, Cdrship};

#[test]
fn five_hundred_connections_of_a_thousand_lines_arrive_in_order() {
    const CONNECTIONS: usize = 500;
    const LINES: usize = 1000;
    let broker = Broker::start();
    let topic = broker.topic("tcp-500", 16);
    let args = [
        "-t",
        &topic,
        "--listen",
        "127.0.0.1:0",
        "--max-connections",
        "1000",
        // 500 PBXs, all on 127.0.0.1 here.
        "--max-connections-per-peer",
        "0",
    ];
    let mut run = cdrship(&broker, &args);
    let addr = run.listening_on();
    let reader = broker.reader(&topic);
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut stream = TcpStream::connect(addr)?;
                let lines: String = (0..LINES).map(|i| format!("{c} {i}\n")).collect();
                stream.write_all(lines.as_bytes())
            })
        })
        .collect();
    for (c, client) in clients.into_iter().enumerate() {
        client
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("client {c}: {e}"));
    }
    let got = reader.read(CONNECTIONS * LINES);
    // Per partition, each connection's lines must be in order; together
    // they must be complete.
    let mut last: HashMap<(i32, usize), usize> = HashMap::new();
    let mut seen = vec![0usize; CONNECTIONS];
    for msg in &got {
        let text = msg.text();
        let (c, i) = text.split_once(' ').unwrap();
        let (c, i): (usize, usize) = (c.parse().unwrap(), i.parse().unwrap());
        if let Some(prev) = last.insert((msg.partition, c), i) {
            assert!(prev < i, "connection {c}: line {i} after {prev}");
        }
        seen[c] += 1;
    }
    assert!(
        seen.iter().all(|&n| n == LINES),
        "some connection incomplete"
    );
    run.stop();
    assert_eq!(reader.stored(), (CONNECTIONS * LINES) as i64);
}

#[test]
fn peers_outside_the_allowlist_are_refused_and_logged() {
    let broker = Broker::start();
    let (topic, mut run, addr) = serve_tcp(&broker, "allow", &["--allow", "127.0.0.1/32"]);

    let mut denied = connect_from("127.0.0.2", addr);
    let _ = denied.write_all(b"denied\n");
    // cdrship closes the connection at once: the read ends.
    let _ = denied.read(&mut [0; 16]);
    run.wait_for_log("127.0.0.2");

    let mut allowed = connect_from("127.0.0.1", addr);
    allowed.write_all(b"allowed\n").unwrap();
    drop(allowed);
    let got = broker.reader(&topic).read(1);
    assert_eq!(texts(&got), ["allowed"]);
    run.stop();
    assert!(
        run.log().contains("127.0.0.2") && run.log().contains("refused"),
        "{}",
        run.log()
    );
    assert!(run.log().contains("1 connections refused"), "{}", run.log());
    assert_eq!(broker.reader(&topic).stored(), 1);
}

#[test]
fn beyond_max_connections_peers_wait_until_a_slot_frees() {
    let broker = Broker::start();
    let (topic, mut run, addr) = serve_tcp(&broker, "cap", &["--max-connections", "2"]);
    let reader = broker.reader(&topic);
    let mut got = Vec::new();

    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    first.write_all(b"first\n").unwrap();
    second.write_all(b"second\n").unwrap();
    reader.read_more(&mut got, 2);
    // The third peer completes the handshake in the kernel backlog, but
    // cdrship does not accept it while both slots are taken.
    let mut third = TcpStream::connect(addr).unwrap();
    third.write_all(b"third\n").unwrap();
    // Lines sent after the third connected arrive; the third's does not.
    first.write_all(b"first again\n").unwrap();
    second.write_all(b"second again\n").unwrap();
    reader.read_more(&mut got, 4);
    assert!(
        !texts(&got).contains(&"third".to_string()),
        "{:?}",
        texts(&got)
    );
    assert_eq!(run.log().matches(": connected").count(), 2, "{}", run.log());

    drop(first);
    reader.read_more(&mut got, 5);
    assert_eq!(texts(&got)[4], "third");
    drop((second, third));
    wait_until("all connections closed", || {
        run.log().matches(": closed").count() == 3
    });
    run.stop();
}

/// `systemd-socket-activate` (Debian's systemd package) listening on a
/// free local port and starting cdrship with `args` on connection, with
/// the sockets passed as systemd passes them in `mode`.
fn socket_activated(broker: &Broker, mode: &[&str], args: &[&str]) -> (Cdrship, SocketAddr) {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let mut command = std::process::Command::new("systemd-socket-activate");
    command
        .arg(format!("--listen={addr}"))
        .args(mode)
        .args([env!("CARGO_BIN_EXE_cdrship"), "-b", broker.servers()])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let run = common::spawn(command);
    run.wait_for_log(&format!("Listening on {addr}"));
    (run, addr)
}

#[test]
fn socket_activation_accept_no_serves_the_passed_listener() {
    let broker = Broker::start();
    let topic = broker.topic("activation", 1);
    let (mut run, addr) = socket_activated(&broker, &[], &["-t", &topic]);
    for line in ["first pbx\n", "second pbx\n"] {
        TcpStream::connect(addr)
            .unwrap()
            .write_all(line.as_bytes())
            .unwrap();
    }
    let got = broker.reader(&topic).read(2);
    let mut got = texts(&got);
    got.sort();
    assert_eq!(got, ["first pbx", "second pbx"]);
    assert!(run.log().contains("(socket activation)"), "{}", run.log());
    run.stop();
}

#[test]
fn socket_activation_accept_yes_reads_each_connection_on_stdin_until_idle() {
    let broker = Broker::start();
    let topic = broker.topic("inetd", 1);
    let args = ["-t", &topic, "--idle-timeout", "1"];
    let (run, addr) = socket_activated(&broker, &["--accept", "--inetd"], &args);
    let mut pbx = TcpStream::connect(addr).unwrap();
    let peer = pbx.local_addr().unwrap();
    pbx.write_all(b"from the pbx\nlast without newline")
        .unwrap();
    drop(pbx);
    let got = broker.reader(&topic).read(2);
    assert_eq!(texts(&got), ["from the pbx", "last without newline"]);
    run.wait_for_log(&format!("socket from {peer}"));
    run.wait_for_log("2 lines read, 2 delivered");
    // A PBX that connects and never sends is let go after --idle-timeout.
    let _silent = TcpStream::connect(addr).unwrap();
    run.wait_for_log("stdin: closed after --idle-timeout without data");
    // One that goes silent mid-line, connection open: its head is no record.
    let mut stalled = TcpStream::connect(addr).unwrap();
    stalled.write_all(b"stalled mid-").unwrap();
    let rejects = broker.reader(&format!("{topic}.rejects")).read(1);
    assert_eq!(rejects[0].text(), "stalled mid-");
    assert_eq!(
        rejects[0].header("cdrship.reject.reason").unwrap(),
        "unfinished: the stream was cut 12 bytes into this line, before its newline"
    );
    assert_eq!(broker.reader(&topic).stored(), 2);
}

#[test]
fn accept_yes_without_a_socket_on_stdin_is_explained() {
    let broker = Broker::start();
    let topic = broker.topic("accept-fd", 1);
    let (run, addr) = socket_activated(&broker, &["--accept"], &["-t", &topic]);
    TcpStream::connect(addr).unwrap().write_all(b"x\n").unwrap();
    run.wait_for_log("is a connection, not a listening socket");
}

/// Peak resident memory of a process in KiB (VmHWM).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn garbage_peers_do_not_stop_others_and_memory_stays_bounded() {
    let broker = Broker::start();
    let topic = broker.topic("garbage", 4);
    let mut run = cdrship(&broker, &["-t", &topic, "--listen", "127.0.0.1:0"]);
    let addr = run.listening_on();
    // Linked TLS, SASL and curl libraries alone take ~9 MiB: what counts
    // is the growth over the idle process.
    let idle = peak_rss_kib(run.child.id());

    // A trickle: one byte at a time, never a newline, connection kept open.
    let mut trickle = TcpStream::connect(addr).unwrap();
    trickle.write_all(b"s").unwrap();
    // Binary noise with NULs, and a 10 MB line without a newline.
    let noise: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut binary = TcpStream::connect(addr).unwrap();
    binary.write_all(&noise).unwrap();
    drop(binary);
    let mut huge = TcpStream::connect(addr).unwrap();
    huge.write_all(&vec![b'x'; 10 * 1024 * 1024]).unwrap();
    drop(huge);
    trickle.write_all(b"l").unwrap();

    let mut good = TcpStream::connect(addr).unwrap();
    good.write_all(common::numbered("good", 0..100).as_bytes())
        .unwrap();
    drop(good);
    let reader = broker.reader(&topic);
    let mut got_all = Vec::new();
    // The noise is not UTF-8: compare what can be read of each value.
    let lossy = |msgs: &[common::Msg]| -> Vec<String> {
        msgs.iter()
            .map(|m| String::from_utf8_lossy(&m.value).into_owned())
            .collect()
    };
    wait_until("the good client's lines", || {
        reader.poll_all(&mut got_all);
        lossy(&got_all)
            .iter()
            .filter(|t| t.starts_with("good "))
            .count()
            == 100
    });
    let rejects = broker.reader(&format!("{topic}.rejects"));
    let mut rejected = Vec::new();
    wait_until("the 10 MB line's reject", || {
        rejects.poll_all(&mut rejected);
        rejected.iter().any(|m| {
            m.header("cdrship.reject.reason")
                .is_some_and(|r| r.starts_with("line of 10485760 bytes"))
        })
    });
    // Bounded: a 10 MB line costs its 64 KiB head, not 10 MB of buffer
    // (a few MiB over the idle process here; buffering the line would add
    // at least 10 MiB).
    let peak = peak_rss_kib(run.child.id());
    assert!(
        peak - idle < 7 * 1024,
        "peak RSS {peak} KiB, {idle} KiB idle"
    );
    trickle.write_all(b"ow\n").unwrap();
    drop(trickle);
    wait_until("the trickle's line", || {
        reader.poll_all(&mut got_all);
        lossy(&got_all).contains(&"slow".to_string())
    });
    run.stop();
}

/// A PBX connection reset mid-line (a crashed or rebooted PBX): the head
/// of the line is no record; it goes to the reject topic, the whole lines
/// before it to the topic.
#[test]
fn a_connection_reset_mid_line_sends_the_head_to_the_reject_topic() {
    let broker = Broker::start();
    let topic = broker.topic("tcp-reset", 1);
    let mut run = cdrship(&broker, &["-t", &topic, "--listen", "127.0.0.1:0"]);
    let mut pbx = TcpStream::connect(run.listening_on()).unwrap();
    // One write, read at once: a whole line and the head of the next.
    pbx.write_all(b"whole\nreset mid-").unwrap();
    assert_eq!(texts(&broker.reader(&topic).read(1)), ["whole"]);
    // Linger 0: close sends a reset, and cdrship's read fails.
    socket2::SockRef::from(&pbx)
        .set_linger(Some(std::time::Duration::ZERO))
        .unwrap();
    drop(pbx);
    let rejects = broker.reader(&format!("{topic}.rejects")).read(1);
    assert_eq!(rejects[0].text(), "reset mid-");
    assert_eq!(
        rejects[0].header("cdrship.reject.reason").unwrap(),
        "unfinished: the stream was cut 10 bytes into this line, before its newline"
    );
    run.wait_for_log("connection error");
    run.stop();
    assert_eq!(broker.reader(&topic).stored(), 1);
}
