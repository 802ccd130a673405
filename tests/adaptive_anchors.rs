//! The anchors (`limit_suite::sim::anchors`), each checked on a few steps computed by hand from
//! its published description: every expected limit below is derived in the comment above it.

use std::time::Duration;

use limit_suite::sim::anchors::{
    self, Aimd, AimdConfig, EnvoyConfig, EnvoyGradient, Gradient2, Gradient2Config, VectorArc,
    VectorConfig, Vegas, VegasConfig, Windowed, WindowedConfig,
};
use limit_suite::sim::{Controller, Sample};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A call that ended well after `rtt`, with `inflight` in flight at its admission.
fn ok(rtt: Duration, inflight: usize) -> Sample {
    Sample {
        rtt,
        inflight,
        dropped: false,
    }
}

/// A call that the downstream refused after `rtt`.
fn refused(rtt: Duration, inflight: usize) -> Sample {
    Sample {
        rtt,
        inflight,
        dropped: true,
    }
}

/// `all()` gives one anchor of each kind, named as the table shows them, each starting from
/// its published initial limit.
#[test]
fn all_gives_each_anchor_at_its_defaults() {
    let all = anchors::all();
    let named: Vec<(String, usize)> = all.iter().map(|c| (c.name(), c.initial_limit())).collect();
    let expected = [
        ("netflix-vegas", 20),
        ("netflix-gradient2", 20),
        ("netflix-gradient2-windowed", 20),
        ("netflix-aimd", 20),
        ("envoy-gradient", 3),
        ("vector-arc", 1),
    ];
    let expected: Vec<(String, usize)> = expected.iter().map(|&(n, l)| (n.to_owned(), l)).collect();
    assert_eq!(named, expected);
    // Only Envoy acts on time.
    let ticking: Vec<bool> = all.iter().map(|c| c.tick().is_some()).collect();
    assert_eq!(ticking, [false, false, false, false, true, false]);
}

/// Vegas (`VegasLimit`): queue = ⌈limit·(1 − rtt_noload/rtt)⌉ against threshold = log10,
/// alpha = 3·log10 and beta = 6·log10 of the limit (1, 3, 6 below 100): ≤ threshold → +beta,
/// < alpha → +log10, > beta → −log10, else unchanged; the first sample and any lower one
/// only set rtt_noload.
#[test]
fn vegas_steps() {
    let mut vegas = Vegas::new(VegasConfig::default());
    // The first sample is learnt as rtt_noload = 100 ms, not judged.
    assert_eq!(vegas.on_sample(ms(100), ok(ms(100), 20)), None);
    assert_eq!(vegas.rtt_noload(), Some(ms(100)));
    // 115 ms at 20: queue = ⌈20·(15/115)⌉ = ⌈2.61⌉ = 3, not below alpha 3: unchanged.
    assert_eq!(vegas.on_sample(ms(215), ok(ms(115), 20)), None);
    // 125 ms at 20: queue = ⌈20·(1 − 100/125)⌉ = 4, within [alpha 3, beta 6]: unchanged.
    assert_eq!(vegas.on_sample(ms(225), ok(ms(125), 20)), None);
    // 100 ms at 20: queue 0 ≤ threshold 1: 20 + beta 6 = 26.
    assert_eq!(vegas.on_sample(ms(325), ok(ms(100), 20)), Some(26));
    // 105 ms at 26: queue = ⌈26·(5/105)⌉ = ⌈1.24⌉ = 2, above threshold 1 and below alpha 3:
    // 26 + log10(26) = 27.
    assert_eq!(vegas.on_sample(ms(430), ok(ms(105), 26)), Some(27));
    // 200 ms at 27: queue = ⌈27·0.5⌉ = 14 > beta 6: 27 − 1 = 26.
    assert_eq!(vegas.on_sample(ms(630), ok(ms(200), 27)), Some(26));
    // A drop decreases whatever the RTT: 26 − 1 = 25.
    assert_eq!(vegas.on_sample(ms(730), refused(ms(100), 26)), Some(25));
    // A lower RTT is a new rtt_noload, and the sample is not judged.
    assert_eq!(vegas.on_sample(ms(810), ok(ms(80), 25)), None);
    assert_eq!(vegas.rtt_noload(), Some(ms(80)));
}

/// Vegas' "no upward drift": a sample with fewer than half the limit in flight
/// (`inflight·2 < limit`) leaves the limit alone, however fast.
#[test]
fn vegas_ignores_samples_far_below_the_limit() {
    let mut vegas = Vegas::new(VegasConfig::default());
    vegas.on_sample(ms(100), ok(ms(100), 20));
    // 9·2 = 18 < 20: no change, though queue 0 would add beta.
    assert_eq!(vegas.on_sample(ms(200), ok(ms(100), 9)), None);
    // 10·2 = 20 ≥ 20: queue 0 → 20 + 6.
    assert_eq!(vegas.on_sample(ms(300), ok(ms(100), 10)), Some(26));
}

/// Vegas' probe: every `jitter·probe_multiplier·limit` samples (jitter uniform in [0.5, 1)),
/// the sample is taken as the new rtt_noload, even if higher, so a lasting rise of the base
/// latency is learnt. With a multiplier of 1 at limit 20, that is between the 10th and the
/// 19th sample.
#[test]
fn vegas_probes_a_new_rtt_noload() {
    let mut vegas = Vegas::new(VegasConfig {
        probe_multiplier: 1,
        ..VegasConfig::default()
    });
    vegas.on_sample(ms(100), ok(ms(100), 1));
    assert_eq!(vegas.rtt_noload(), Some(ms(100)));
    // 150 ms samples with 1 in flight (too few to move the limit) until the probe.
    let mut count = 1;
    while vegas.rtt_noload() == Some(ms(100)) && count < 30 {
        count += 1;
        assert_eq!(vegas.on_sample(ms(100 * count), ok(ms(150), 1)), None);
    }
    assert_eq!(vegas.rtt_noload(), Some(ms(150)));
    assert!((10..20).contains(&count), "probed at sample {count}");
}

/// Vegas' thresholds grow with log10 of the limit (2 from 100 to 999), and smoothing mixes
/// the old estimate in: `(1 − s)·old + s·new`.
#[test]
fn vegas_log10_thresholds_and_smoothing() {
    let mut vegas = Vegas::new(VegasConfig {
        initial_limit: 100,
        ..VegasConfig::default()
    });
    vegas.on_sample(ms(100), ok(ms(100), 100));
    // Queue 0 ≤ threshold 2: 100 + beta 12.
    assert_eq!(vegas.on_sample(ms(200), ok(ms(100), 100)), Some(112));

    let mut smooth = Vegas::new(VegasConfig {
        smoothing: 0.5,
        ..VegasConfig::default()
    });
    smooth.on_sample(ms(100), ok(ms(100), 20));
    // Queue 0: new 26, smoothed 0.5·20 + 0.5·26 = 23.
    assert_eq!(smooth.on_sample(ms(200), ok(ms(100), 20)), Some(23));
}

/// Gradient2 (`Gradient2Limit`): gradient = clamp(1.5·longRtt/rtt, 0.5, 1), new =
/// limit·gradient + 4, smoothed `0.8·old + 0.2·new`, clamped to [20, 200]; the long RTT is the
/// plain mean of the first 10 samples.
#[test]
fn gradient2_steps() {
    let mut g = Gradient2::new(Gradient2Config::default());
    // 100 ms: long 100 ms, gradient 1: new 24, smoothed 0.8·20 + 0.2·24 = 20.8 → 20.
    assert_eq!(g.on_sample(ms(100), ok(ms(100), 20)), None);
    // Again: new 20.8 + 4 = 24.8, smoothed 0.8·20.8 + 0.2·24.8 = 21.6 → 21.
    assert_eq!(g.on_sample(ms(200), ok(ms(100), 20)), Some(21));

    // Smoothing 1 shows the gradient alone.
    let mut g = Gradient2::new(Gradient2Config {
        initial_limit: 100,
        min_limit: 1,
        smoothing: 1.0,
        ..Gradient2Config::default()
    });
    // 100 ms: gradient 1: 100 + 4 = 104.
    assert_eq!(g.on_sample(ms(100), ok(ms(100), 100)), Some(104));
    // 400 ms: long = (100 + 400)/2 = 250, gradient 1.5·250/400 = 0.9375: 104·0.9375 + 4
    // = 101.5 → 101.
    assert_eq!(g.on_sample(ms(500), ok(ms(400), 100)), Some(101));
    // 1 s: long = 1500/3 = 500, gradient 0.75: 101.5·0.75 + 4 = 80.125 → 80.
    assert_eq!(g.on_sample(ms(1500), ok(ms(1000), 100)), Some(80));
    // 10 s: long = 11500/4 = 2875, 1.5·2875/10000 = 0.43 → clamped to 0.5: 80.125·0.5 + 4
    // = 44.06 → 44.
    assert_eq!(g.on_sample(ms(11500), ok(ms(10_000), 100)), Some(44));
}

/// Gradient2's app-limited rule: with fewer than half the estimate in flight
/// (`inflight < limit/2`) the limit is left alone, but the long RTT still learns the sample.
#[test]
fn gradient2_app_limited() {
    let mut g = Gradient2::new(Gradient2Config {
        min_limit: 1,
        smoothing: 1.0,
        ..Gradient2Config::default()
    });
    // 9 < 20/2: no change (it would be 20 + 4), but the long RTT is now 100 ms.
    assert_eq!(g.on_sample(ms(100), ok(ms(100), 9)), None);
    assert_eq!(g.long_rtt(), ms(100));
    // 10 = 20/2 is not app-limited: 20·1 + 4 = 24.
    assert_eq!(g.on_sample(ms(200), ok(ms(100), 10)), Some(24));
}

/// Gradient2's long window: after 10 samples of warm-up (their mean), each sample moves the
/// long RTT by 2/(600 + 1) of the difference; and when the long RTT is over twice the
/// sample's, it is cut by 5 % (after the sample is judged with the uncut value).
#[test]
fn gradient2_long_window() {
    let config = Gradient2Config::default();
    let mut g = Gradient2::new(config.clone());
    // App-limited samples (inflight 1) move only the long RTT: 10, 20, …, 100 ms, whose
    // mean is 55 ms.
    for i in 1..=10 {
        g.on_sample(ms(100 * i), ok(ms(10 * i), 1));
    }
    assert_eq!(g.long_rtt(), ms(55));
    // 700 ms: 55 + (700 − 55)·2/601 = 57.146422… ms.
    g.on_sample(ms(2000), ok(ms(700), 1));
    assert_eq!(g.long_rtt(), Duration::from_nanos(57_146_422));

    let mut g = Gradient2::new(config);
    for i in 1..=10 {
        g.on_sample(Duration::from_secs(i), ok(Duration::from_secs(1), 1));
    }
    // 100 ms after a long 1 s: long = 1000 − 900·2/601 = 997.004991… ms, over twice 100 ms,
    // so cut to 0.95 of it: 947.154742… ms.
    g.on_sample(Duration::from_secs(11), ok(ms(100), 1));
    assert_eq!(g.long_rtt(), Duration::from_nanos(947_154_742));
}

/// AIMD (`AIMDLimit`): +1 when `inflight·2 ≥ limit`, `⌊limit·0.9⌋` on a drop or an RTT over
/// the 5 s timeout, within [20, 200].
#[test]
fn aimd_steps() {
    let mut aimd = Aimd::new(AimdConfig::default());
    // 10·2 ≥ 20: 21.
    assert_eq!(aimd.on_sample(ms(100), ok(ms(100), 10)), Some(21));
    // 10·2 < 21: unchanged.
    assert_eq!(aimd.on_sample(ms(200), ok(ms(100), 10)), None);
    for (i, limit) in (22..=25).enumerate() {
        assert_eq!(
            aimd.on_sample(ms(300 + i as u64), ok(ms(100), 20)),
            Some(limit)
        );
    }
    // A drop: ⌊25·0.9⌋ = ⌊22.5⌋ = 22.
    assert_eq!(aimd.on_sample(ms(400), refused(ms(100), 20)), Some(22));
    // An RTT of exactly the timeout is not a timeout: 23.
    assert_eq!(
        aimd.on_sample(ms(5500), ok(Duration::from_secs(5), 20)),
        Some(23)
    );
    // Over it: ⌊23·0.9⌋ = ⌊20.7⌋ = 20.
    assert_eq!(aimd.on_sample(ms(5600), ok(ms(5001), 20)), Some(20));
    // ⌊20·0.9⌋ = 18 is below the minimum 20: unchanged.
    assert_eq!(aimd.on_sample(ms(5700), refused(ms(100), 20)), None);
}

/// A delegate that records what [`Windowed`] feeds it.
#[derive(Default)]
struct Recorder(Vec<(Duration, Sample)>);

impl Controller for Recorder {
    fn name(&self) -> String {
        "recorder".into()
    }
    fn initial_limit(&self) -> usize {
        1
    }
    fn on_sample(&mut self, now: Duration, sample: Sample) -> Option<usize> {
        self.0.push((now, sample));
        None
    }
}

/// `WindowedLimit` (defaults: windows of 1 s, at least 10 samples, RTTs of 100 µs and more):
/// a window closes at the first sample after its end; it passes on the average RTT (in whole
/// nanoseconds), the largest in-flight count and whether any call dropped, if it holds 10
/// samples; otherwise it is thrown away. The first window holds only the first sample.
#[test]
fn windowed_aggregates_a_window_of_enough_samples() {
    let mut w = Windowed::new(WindowedConfig::default(), Recorder::default());
    // The first sample closes the empty first window at once: thrown away (1 < 10). The next
    // window ends 1 s later (2·1 ms clamped to [1 s, 1 s]), at 1.001 s.
    w.on_sample(ms(1), ok(ms(1), 1));
    // Ten samples, RTTs 10, 20, …, 100 ms, in flight 1…10, one a drop; and one of 50 µs,
    // under the threshold, not counted.
    for i in 1..=10 {
        let sample = Sample {
            rtt: ms(10 * i),
            inflight: i as usize,
            dropped: i == 4,
        };
        w.on_sample(ms(100 * i), sample);
    }
    w.on_sample(ms(1000), ok(Duration::from_micros(50), 30));
    // At 1.001 s the window has not ended yet (a sample must end after it).
    w.on_sample(ms(1001), ok(ms(12), 2));
    assert!(w.delegate().0.is_empty());
    // At 1.002 s it closes with 12 samples (the ten, the one at 1.001 s and this one):
    // (10 + 20 + … + 100 + 12 + 12)/12 = 574/12 ms = 47 833 333 ns (rounded down), at most
    // 10 in flight, a drop among them.
    w.on_sample(ms(1002), ok(ms(12), 2));
    let expected = Sample {
        rtt: Duration::from_nanos(47_833_333),
        inflight: 10,
        dropped: true,
    };
    assert_eq!(w.delegate().0, [(ms(1002), expected)]);

    // The next window ends at 2.002 s (2·10 ms clamped to 1 s); the nine samples it closes
    // with, at 2.003 s, are too few: thrown away.
    for i in 1..=8 {
        w.on_sample(ms(1002 + 100 * i), ok(ms(10), 1));
    }
    w.on_sample(ms(2003), ok(ms(10), 1));
    assert_eq!(w.delegate().0.len(), 1);
}

/// `WindowedLimit`'s window length is twice the window's lowest RTT, clamped to
/// [min_window_time, max_window_time].
#[test]
fn windowed_length_follows_the_min_rtt() {
    let config = WindowedConfig {
        min_window_time: ms(200),
        max_window_time: Duration::from_secs(1),
        ..WindowedConfig::default()
    };
    let mut w = Windowed::new(config, Recorder::default());
    // First window: one sample of 300 ms: the next ends 2·300 = 600 ms later, at 0.9 s.
    w.on_sample(ms(300), ok(ms(300), 1));
    for i in 1..=10 {
        w.on_sample(ms(300 + 60 * i), ok(ms(300), 1));
    }
    // The tenth sample came at exactly 0.9 s: not after it.
    assert!(w.delegate().0.is_empty());
    w.on_sample(ms(901), ok(ms(300), 1));
    assert_eq!(w.delegate().0, [(ms(901), ok(ms(300), 1))]);
}

/// Envoy's minRTT phase: it starts measuring with the limit pinned at min_concurrency 3,
/// ignores update ticks meanwhile, takes the p50 of 50 samples as the minRTT, and restores
/// the limit it had.
fn measured(min_rtt: Duration) -> EnvoyGradient {
    let mut envoy = EnvoyGradient::new(EnvoyConfig::default());
    assert!(envoy.measuring_min_rtt());
    // The update timer fires at 100 ms, during the measurement: nothing happens.
    assert_eq!(envoy.on_tick(ms(100)), None);
    for i in 1..=49 {
        assert_eq!(envoy.on_sample(ms(100 + i), ok(min_rtt, 1)), None);
        assert!(envoy.measuring_min_rtt());
    }
    // The 50th: the minRTT is theirs, and the limit goes back to the one it had: 3.
    assert_eq!(envoy.on_sample(ms(150), ok(min_rtt, 1)), None);
    assert!(!envoy.measuring_min_rtt());
    assert_eq!(envoy.min_rtt(), min_rtt);
    envoy
}

/// Envoy's first minRTT measurement (see [`measured`]): the limit stays pinned at 3 and update
/// ticks do nothing until 50 samples are in.
#[test]
fn envoy_min_rtt_phase() {
    let envoy = measured(ms(10));
    assert_eq!(
        envoy.next_min_rtt_measurement().map(|t| t > ms(150)),
        Some(true)
    );
}

/// Envoy's gradient steps (after the minRTT phase above: minRTT 10 ms, limit 3, windows
/// ending every 100 ms from 150 ms): gradient = clamp(1.25·minRTT / p50, 0.5, 2), new =
/// ⌊limit·gradient + √(limit·gradient)⌋ within [3, 1000].
#[test]
fn envoy_gradient_steps() {
    let mut envoy = measured(ms(10));
    for i in 0..10 {
        envoy.on_sample(ms(200 + i), ok(ms(10), 3));
    }
    // Not yet at 249 ms.
    assert_eq!(envoy.on_tick(ms(249)), None);
    // p50 10 ms: gradient 12.5/10 = 1.25: 3.75 + √3.75 = 5.69 → 5.
    assert_eq!(envoy.on_tick(ms(250)), Some(5));
    for i in 0..10 {
        envoy.on_sample(ms(300 + i), ok(ms(25), 5));
    }
    // p50 25 ms: gradient 0.5: 2.5 + √2.5 = 4.08 → 4.
    assert_eq!(envoy.on_tick(ms(350)), Some(4));
    for i in 0..10 {
        envoy.on_sample(ms(400 + i), ok(ms(5), 4));
    }
    // p50 5 ms: 12.5/5 = 2.5 → clamped to 2: 8 + √8 = 10.83 → 10.
    assert_eq!(envoy.on_tick(ms(450)), Some(10));
    // An empty window changes nothing.
    assert_eq!(envoy.on_tick(ms(550)), None);
    // A timer due at 650 ms that fires at a later sample closes its window at 650 ms: the
    // sample at 651 ms goes to the next window. This window's p50 is 5 ms: gradient 2:
    // 20 + √20 = 24.47 → 24.
    envoy.on_sample(ms(600), ok(ms(5), 10));
    assert_eq!(envoy.on_sample(ms(651), ok(ms(100), 10)), Some(24));
}

/// Envoy's next minRTT measurement comes 60 s after the last one ended plus a jitter below
/// ⌈15 % of 60 s⌉ = 9 s; it pins the limit at 3, drops samples sent before it began, and
/// restores the limit after 50 samples.
#[test]
fn envoy_remeasures_the_min_rtt() {
    let mut envoy = measured(ms(10));
    for i in 0..10 {
        envoy.on_sample(ms(200 + i), ok(ms(5), 3));
    }
    // 3·2 + √6 = 8.45 → 8.
    assert_eq!(envoy.on_tick(ms(250)), Some(8));
    let next = envoy
        .next_min_rtt_measurement()
        .expect("a measurement is scheduled");
    assert!(next >= ms(150) + Duration::from_secs(60), "{next:?}");
    assert!(next < ms(150) + Duration::from_secs(69), "{next:?}");
    assert_eq!(envoy.on_tick(next - ms(1)), None);
    assert_eq!(envoy.on_tick(next), Some(3));
    assert!(envoy.measuring_min_rtt());
    // Sent 1 ms before the measurement began: not sampled.
    envoy.on_sample(next + ms(19), ok(ms(20), 3));
    for i in 1..=49 {
        assert_eq!(envoy.on_sample(next + ms(20 + i), ok(ms(20), 3)), None);
    }
    assert!(envoy.measuring_min_rtt());
    assert_eq!(envoy.on_sample(next + ms(70), ok(ms(20), 3)), Some(8));
    assert_eq!(envoy.min_rtt(), ms(20));
}

/// Envoy measures the minRTT again at once when five windows in a row set the limit to the
/// minimum again (outside a measurement).
#[test]
fn envoy_remeasures_after_five_windows_at_the_minimum() {
    let mut envoy = measured(ms(10));
    for window in 0..5 {
        let end = ms(250 + 100 * window);
        for i in 0..5 {
            envoy.on_sample(end - ms(50) + ms(i), ok(ms(100), 3));
        }
        // p50 100 ms: gradient 0.5: 1.5 + √1.5 = 2.72 → 2 → the minimum 3.
        assert_eq!(envoy.on_tick(end), None);
        assert_eq!(envoy.measuring_min_rtt(), window == 4, "window {window}");
    }
}

/// Vector's ARC: the first response seeds the past RTT; then each window of one past-mean RTT
/// ends with a response, and +1 only if the limit was reached in it (a call admitted with
/// the limit in flight), there was no back-pressure and its mean RTT ≤ the past mean.
#[test]
fn vector_increases_only_at_the_limit() {
    let mut arc = VectorArc::new(VectorConfig::default());
    // Seeds the past RTT at 100 ms; the window ends at 200 ms.
    arc.on_admit(ms(0), 1);
    assert_eq!(arc.on_sample(ms(100), ok(ms(100), 1)), None);
    // Admitted with 1 in flight at limit 1: reached; mean 100 ms ≤ past 100 ms: 2. Past stays
    // 100 ms with no variance; the window ends at 300 ms.
    arc.on_admit(ms(100), 1);
    assert_eq!(arc.on_sample(ms(200), ok(ms(100), 1)), Some(2));
    // 90 ms, fast, but admitted with 1 in flight < 2: not reached; and 90 < 100 + 2.5·0:
    // unchanged. Past mean = 100 + 0.4·(90 − 100) = 96 ms, variance = 0.6·(10 ms · 4 ms)
    // = 24 ms² (deviation 4.9 ms); the window ends at 396 ms.
    arc.on_admit(ms(210), 1);
    assert_eq!(arc.on_sample(ms(300), ok(ms(90), 1)), None);
    let (mean, _) = arc.past_rtt().expect("seeded");
    assert_eq!(mean, ms(96));
    // Not fast: 98 ms > 96 ms, though reached; and under 96 + 2.5·4.9 = 108.2 ms: unchanged.
    let mut slow = arc.clone();
    slow.on_admit(ms(302), 2);
    assert_eq!(slow.on_sample(ms(400), ok(ms(98), 2)), None);
    // Admitted at 310 ms, in the window, with 2 in flight: reached; 90 ≤ 96 ms: 3. Past mean
    // 93.6 ms; the window ends at 493.6 ms.
    arc.on_admit(ms(310), 2);
    assert_eq!(arc.on_sample(ms(400), ok(ms(90), 2)), Some(3));
    // A call admitted at the limit before this window (from 400 ms) raised the last window's
    // flag, not this one's; one admitted in it with 1 in flight does not reach 3. Mean
    // (60 + 90)/2 = 75 ms ≤ 93.6 ms, but not reached; and under 93.6 ms + 2.5·deviation:
    // unchanged.
    assert_eq!(arc.on_sample(ms(450), ok(ms(60), 3)), None);
    arc.on_admit(ms(410), 1);
    assert_eq!(arc.on_sample(ms(500), ok(ms(90), 1)), None);
}

/// Vector's ARC decreases by `⌊limit·0.9⌋` on back-pressure (a drop, whose RTT is not
/// averaged), and when the window's RTT is at least `past mean + 2.5·deviation`.
#[test]
fn vector_decreases_on_a_drop_and_on_a_slow_window() {
    let mut arc = VectorArc::new(VectorConfig {
        initial_concurrency: 10,
        ..VectorConfig::default()
    });
    assert_eq!(arc.on_sample(ms(100), ok(ms(100), 10)), None);
    // A drop at 150 ms: back-pressure, no update yet.
    assert_eq!(arc.on_sample(ms(150), refused(ms(50), 10)), None);
    // At 200 ms: reached and fast, but back-pressure: ⌊10·0.9⌋ = 9. The window's RTT is the
    // mean of 100 and 100 ms (the seed stays in the first window; the drop does not count).
    arc.on_admit(ms(100), 10);
    assert_eq!(arc.on_sample(ms(200), ok(ms(100), 10)), Some(9));
    assert_eq!(arc.past_rtt(), Some((ms(100), Duration::ZERO)));
    // 120 ms ≥ 100 + 2.5·0: ⌊9·0.9⌋ = ⌊8.1⌋ = 8.
    assert_eq!(arc.on_sample(ms(300), ok(ms(120), 1)), Some(8));
}
