//! ACLs on Apache Kafka, granted through its PLAINTEXT listener, whose
//! principal (ANONYMOUS) is a super user under `scripts/kafka up --secure`.
//! rdkafka 0.39 has no admin call for ACLs, so this speaks the two
//! requests it needs itself: CreateAcls v1 to one node, then DescribeAcls
//! v1 to every node until each authorizer has the grant (they learn it
//! from the metadata log, a moment apart).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use super::wait_until;

/// What an ACL is on.
#[derive(Clone, Copy)]
pub enum On<'a> {
    /// Every topic whose name starts with this (so a topic and its
    /// `.rejects` sibling).
    TopicsFrom(&'a str),
    /// Every consumer group whose name starts with this.
    GroupsFrom(&'a str),
}

/// An operation allowed (Kafka's `AclOperation` codes).
#[derive(Clone, Copy)]
pub enum Op {
    Read = 3,
    Write = 4,
    Describe = 8,
}

/// `LITERAL` and `PREFIXED` resource pattern types.
const PREFIXED: i8 = 4;
/// `ALLOW`.
const ALLOW: i8 = 3;

impl On<'_> {
    /// Kafka's resource type code and the name.
    fn resource(self) -> (i8, &'static str, String) {
        match self {
            On::TopicsFrom(name) => (2, "topic", name.to_owned()),
            On::GroupsFrom(name) => (3, "group", name.to_owned()),
        }
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as i16).to_be_bytes());
    out.extend(s.as_bytes());
}

/// Send one request (header v1) to `server`; the response body.
fn request(server: &str, api_key: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend(api_key.to_be_bytes());
    frame.extend(1i16.to_be_bytes()); // version 1 of both requests
    frame.extend(1i32.to_be_bytes()); // correlation id
    string(&mut frame, "cdrship-test-acls");
    frame.extend(body);
    let mut stream = TcpStream::connect(server).unwrap_or_else(|e| panic!("{server}: {e}"));
    stream
        .write_all(&(frame.len() as i32).to_be_bytes())
        .unwrap();
    stream.write_all(&frame).unwrap();
    let mut len = [0; 4];
    stream.read_exact(&mut len).unwrap();
    let mut response = vec![0; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut response).unwrap();
    response.split_off(4) // the correlation id
}

/// A reader of a response body.
struct Body(Vec<u8>, usize);

impl Body {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let bytes = self.0[self.1..self.1 + N].try_into().unwrap();
        self.1 += N;
        bytes
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn nullable_string(&mut self) -> Option<String> {
        let len = self.i16();
        let len = usize::try_from(len).ok()?;
        let text = String::from_utf8_lossy(&self.0[self.1..self.1 + len]).into_owned();
        self.1 += len;
        Some(text)
    }
}

/// One ACL entry's fields after the resource type.
fn entry(out: &mut Vec<u8>, name: &str, principal: &str, op: Op) {
    string(out, name);
    out.push(PREFIXED as u8);
    string(out, principal);
    string(out, "*");
    out.push(op as u8);
    out.push(ALLOW as u8);
}

/// Allow `principal` (`User:NAME`) `op` on `on`, and wait until every
/// node of `servers` (the PLAINTEXT listeners) enforces it.
pub fn grant(servers: &str, principal: &str, grants: &[(On, Op)]) {
    let mut body = Vec::new();
    body.extend((grants.len() as i32).to_be_bytes());
    for (on, op) in grants {
        let (kind, _, name) = on.resource();
        body.push(kind as u8);
        entry(&mut body, &name, principal, *op);
    }
    let first = servers.split(',').next().unwrap();
    let mut response = Body(request(first, 30, &body), 4); // after the throttle time
    for _ in 0..response.i32() {
        let (code, message) = (response.i16(), response.nullable_string());
        assert_eq!(code, 0, "CreateAcls refused: {message:?}");
    }
    for server in servers.split(',') {
        for (on, op) in grants {
            let (kind, what, name) = on.resource();
            let mut filter = vec![kind as u8];
            entry(&mut filter, &name, principal, *op);
            wait_until(
                &format!("{server} to allow {principal} on {what} {name}"),
                || {
                    let mut response = Body(request(server, 29, &filter), 4);
                    let (code, message) = (response.i16(), response.nullable_string());
                    assert_eq!(code, 0, "DescribeAcls refused: {message:?}");
                    response.i32() > 0
                },
            );
        }
    }
}
