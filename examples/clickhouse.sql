-- Asterisk CDRs from Kafka into ClickHouse: Kafka table -> materialized view -> MergeTree.
--
-- Produce matching messages with the asterisk-cdr preset and ClickHouse times:
--
--   cdrship --topic asterisk_cdr --file /var/log/asterisk/cdr-csv/Master.csv \
--       --format json --preset asterisk-cdr --time-format clickhouse \
--       --timezone Europe/Moscow -k uniqueid --meta --meta-as headers
--
-- --timezone is the zone the PBX writes its local times in. cdrship converts
-- start/answer/end to UTC as 'YYYY-MM-DD hh:mm:ss' (--output-timezone defaults
-- to UTC), which the DateTime('UTC') columns read with the default
-- date_time_input_format = 'basic'. An unanswered call's empty answer comes
-- as JSON null and stays NULL here; it never becomes 1970-01-01.
-- (With --time-format iso8601 instead, add date_time_input_format =
-- 'best_effort' to the Kafka table's SETTINGS.)
--
-- Metadata (--meta): send it as Kafka headers (--meta-as headers, as above).
-- As JSON fields cdrship writes _host, _source and, in --file mode, _offset.
-- _offset is also the name of a Kafka engine virtual column (the message's
-- offset in its partition; the others are _topic, _key, _partition,
-- _timestamp, _timestamp_ms, _headers.name, _headers.value, _table in recent
-- versions, and _raw_message, _error with kafka_handle_error_mode =
-- 'stream'). A physical _offset column hides that virtual column, so don't
-- declare one. Without it the Kafka engine drops the JSON _offset field,
-- because it skips unknown fields by default. _host and _source don't clash.
-- With --meta-as fields (the default), add `_host String, _source String` to
-- kafka_asterisk_cdr without DEFAULT (the Kafka engine refuses DEFAULT expressions)
-- and select them as they are in asterisk_cdr_consumer. kafka_handle_error_mode doesn't
-- affect any of this: it only decides what happens to a message that fails to
-- parse.
--
-- Optional fields: with newcdrcolumns = yes in cdr.conf, add
-- `peeraccount String, linkedid String, sequence UInt32` to all three
-- objects. With --charset, a line with invalid bytes also carries _raw (the
-- original line); add `_raw String` to keep it.
--
-- Delivery is at-least-once without --exactly-once. The idempotent producer
-- never duplicates on retries, but after a crash (kill -9) lines sent and not
-- yet acknowledged are sent again, as exact copies with the same header
-- cdrship.id (dev:ino:fingerprint@offset, --file mode). With --exactly-once
-- (--file mode) the topic holds each line once. Consumers of a topic fed
-- without it use asterisk_cdr_dedup below instead of asterisk_cdr: a
-- ReplacingMergeTree keyed by cdrship.id, read with FINAL.
--
-- examples/clickhouse_check.py runs these statements in chDB. With KAFKA_BROKERS
-- set (as in CI) it runs all of them as written, with kafka_asterisk_cdr's
-- broker list, topic and group pointed at that Kafka, and cdrship ships
-- examples/Master.csv there with the options above. Without it,
-- kafka_asterisk_cdr becomes a Memory table with the virtual columns, into
-- which it inserts cdrship's JSON. Either way it also feeds the dedup pair
-- every line twice.

CREATE TABLE asterisk_cdr
(
    accountcode    String,
    src            String,
    dst            String,
    dcontext       String,
    clid           String,
    channel        String,
    dstchannel     String,
    lastapp        String,
    lastdata       String,
    start          DateTime('UTC'),
    answer         Nullable(DateTime('UTC')),
    end            DateTime('UTC'),
    duration       UInt32,
    billsec        UInt32,
    disposition    LowCardinality(String),
    amaflags       LowCardinality(String),
    uniqueid       String,
    userfield      String,
    _host          LowCardinality(String) DEFAULT '',  -- --host-id, hostname by default
    _source        String DEFAULT '',                  -- file path, peer address or stdin
    _source_offset UInt64 DEFAULT 0                    -- byte offset after the line in _source (--file mode)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(start)
ORDER BY (start, uniqueid);

-- Kafka table: the columns are the JSON fields. Plain columns only (no
-- DEFAULT). A field missing from a message, such as userfield on a 17-field
-- line, gets the type's default value.
CREATE TABLE kafka_asterisk_cdr
(
    accountcode String,
    src         String,
    dst         String,
    dcontext    String,
    clid        String,
    channel     String,
    dstchannel  String,
    lastapp     String,
    lastdata    String,
    start       DateTime('UTC'),
    answer      Nullable(DateTime('UTC')),
    end         DateTime('UTC'),
    duration    UInt32,
    billsec     UInt32,
    disposition LowCardinality(String),
    amaflags    LowCardinality(String),
    uniqueid    String,
    userfield   String
)
ENGINE = Kafka
SETTINGS
    kafka_broker_list = 'kafka1:9092,kafka2:9092',
    kafka_topic_list = 'asterisk_cdr',
    kafka_group_name = 'clickhouse_asterisk_cdr',
    kafka_format = 'JSONEachRow';

CREATE MATERIALIZED VIEW asterisk_cdr_consumer TO asterisk_cdr AS
SELECT
    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield,
    -- headers written by --meta --meta-as headers; a missing header gives ''
    _headers.value[indexOf(_headers.name, 'cdrship.host')] AS _host,
    _headers.value[indexOf(_headers.name, 'cdrship.source')] AS _source,
    toUInt64OrZero(_headers.value[indexOf(_headers.name, 'cdrship.offset')]) AS _source_offset
FROM kafka_asterisk_cdr;

-- Deduplicating variant: one row per cdrship.id, whatever was sent twice.
-- ReplacingMergeTree drops rows with an equal sorting key when it merges
-- parts, in the background; FINAL merges at query time, so a query with
-- FINAL never counts a duplicate. Copies of a line have the same start, so
-- they are in the same partition, where the merge sees them.
CREATE TABLE asterisk_cdr_dedup
(
    cdrship_id     String,                             -- header cdrship.id (--file mode)
    accountcode    String,
    src            String,
    dst            String,
    dcontext       String,
    clid           String,
    channel        String,
    dstchannel     String,
    lastapp        String,
    lastdata       String,
    start          DateTime('UTC'),
    answer         Nullable(DateTime('UTC')),
    end            DateTime('UTC'),
    duration       UInt32,
    billsec        UInt32,
    disposition    LowCardinality(String),
    amaflags       LowCardinality(String),
    uniqueid       String,
    userfield      String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(start)
ORDER BY cdrship_id;

CREATE MATERIALIZED VIEW asterisk_cdr_dedup_consumer TO asterisk_cdr_dedup AS
SELECT
    _headers.value[indexOf(_headers.name, 'cdrship.id')] AS cdrship_id,
    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
    start, answer, end, duration, billsec, disposition, amaflags, uniqueid, userfield
FROM kafka_asterisk_cdr;

-- Billing without duplicates (the check runs this query):
--   SELECT count() AS rows, sum(billsec) AS billsec FROM asterisk_cdr_dedup FINAL
