//! The tracker's unit tests: watermarks, generations, failures, idle.

use super::*;

fn mark(offset: u64) -> Option<Mark> {
    Some(Mark {
        generation: 0,
        offset,
    })
}

#[test]
fn watermark_moves_only_over_contiguous_acks() {
    let t = Tracker::new(CancellationToken::new());
    let seqs: Vec<_> = (1..=4).map(|i| t.begin(mark(i * 10), false, 1)).collect();
    t.delivered(seqs[1], None);
    t.delivered(seqs[3], None);
    assert_eq!(t.watermark(), None);
    t.delivered(seqs[0], None);
    assert_eq!(t.watermark(), mark(20));
    t.delivered(seqs[2], None);
    assert_eq!(t.watermark(), mark(40));
    assert_eq!(t.pending(), 0);
}

#[test]
fn each_generation_keeps_its_own_watermark() {
    let t = Tracker::new(CancellationToken::new());
    let at = |generation, offset| Some(Mark { generation, offset });
    let old = t.begin(at(1, 10), false, 1);
    let new = t.begin(at(2, 5), false, 1);
    let old_again = t.begin(at(1, 20), false, 1);
    t.delivered(new, None);
    t.delivered(old_again, None);
    assert_eq!((t.watermark_of(1), t.watermark_of(2)), (None, None));
    t.delivered(old, None);
    assert_eq!((t.watermark_of(1), t.watermark_of(2)), (Some(20), Some(5)));
    assert_eq!(t.watermark(), at(1, 20));
}

#[test]
fn a_failure_pins_the_watermark_and_cancels() {
    let cancel = CancellationToken::new();
    let t = Tracker::new(cancel.clone());
    let a = t.begin(mark(10), false, 1);
    let b = t.begin(mark(20), false, 1);
    let c = t.begin(mark(30), true, 1);
    t.delivered(a, None);
    t.failed(b, || "boom".into());
    t.delivered(c, None);
    assert_eq!(t.watermark(), mark(10));
    assert!(cancel.is_cancelled());
    assert_eq!(t.first_error().as_deref(), Some("boom"));
    let counts = t.counts();
    assert_eq!(
        (
            counts.sent,
            counts.delivered,
            counts.failed,
            counts.rejected
        ),
        (3, 2, 1, 1)
    );
}

#[tokio::test]
async fn wait_idle_returns_once_drained() {
    let t = std::sync::Arc::new(Tracker::new(CancellationToken::new()));
    let seq = t.begin(None, false, 1);
    let t2 = t.clone();
    let waiter = tokio::spawn(async move { t2.wait_idle().await });
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    t.delivered(seq, None);
    waiter.await.unwrap();
}
