//! Serving the producer's events (delivery reports, logs, statistics) on
//! a thread that sleeps until there is one. rdkafka's `ThreadedProducer`
//! polls every 100 ms and, as its poll runs to a deadline in whole
//! milliseconds, spins through the last one: about 0.55 s of CPU a minute
//! on an idle PBX host (bench/idle.py). Here librdkafka writes a byte to
//! a pipe when its event queue turns non-empty (`io_event_enable`); the
//! thread wakes on it, drains the queue and sleeps again.

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rdkafka::bindings as rdsys;
use rdkafka::producer::{BaseProducer, Producer as _};

use super::context::DeliveryContext;

/// The main queue handle, as librdkafka hands it out.
struct Queue(*mut rdsys::rd_kafka_queue_t);

// SAFETY: librdkafka queue handles may be used from any thread.
unsafe impl Send for Queue {}

/// The event thread; stopped and joined on drop.
pub struct Poller {
    stop: Arc<AtomicBool>,
    wake: std::io::PipeWriter,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    /// Serve `producer`'s events until dropped.
    pub fn start(producer: Arc<BaseProducer<DeliveryContext>>) -> Result<Poller> {
        let (mut reader, writer) = std::io::pipe().context("creating the producer's event pipe")?;
        let wake = writer
            .try_clone()
            .context("creating the producer's event pipe")?;
        // SAFETY: the client handle is live while `producer` is; the queue
        // handle is destroyed by the thread before it drops `producer`.
        let queue =
            Queue(unsafe { rdsys::rd_kafka_queue_get_main(producer.client().native_ptr()) });
        let byte = b"!";
        // SAFETY: librdkafka copies the payload; the fd stays open as long
        // as `writer`, which the thread holds until it disables the event.
        unsafe {
            rdsys::rd_kafka_queue_io_event_enable(
                queue.0,
                writer.as_raw_fd(),
                byte.as_ptr().cast(),
                1,
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let serve = move || {
            let queue = queue;
            let mut buffer = [0u8; 64];
            loop {
                // Events that came before the fd was set, or while draining.
                // SAFETY: the queue handle is live until destroyed below.
                while unsafe { rdsys::rd_kafka_queue_length(queue.0) } > 0 {
                    producer.poll(Duration::ZERO);
                }
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                if reader.read(&mut buffer).is_err() {
                    // A broken pipe cannot wake us: poll as rdkafka does.
                    producer.poll(Duration::from_millis(100));
                }
            }
            // SAFETY: as above; after this librdkafka no longer writes
            // to the fd, which `writer` then closes.
            unsafe {
                rdsys::rd_kafka_queue_io_event_enable(queue.0, -1, std::ptr::null(), 0);
                rdsys::rd_kafka_queue_destroy(queue.0);
            }
            drop(writer);
        };
        let thread = std::thread::Builder::new()
            .name("kafka-events".into())
            .spawn(serve)
            .context("starting the producer's event thread")?;
        Ok(Poller {
            stop,
            wake,
            thread: Some(thread),
        })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.wake.write_all(b"x");
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
