//! Flow control: DATA stays within the stream and connection send windows;
//! WINDOW_UPDATE releases exactly its increment; SETTINGS_INITIAL_WINDOW_SIZE
//! moves every open stream's window, below zero and back.

mod conn_common;

use conn_common::{Peer, alone, request};
use h2fw::conn::{Config, Connection, Error, StreamHints};
use h2fw::frame::{FrameError, setting};

const MFS: u32 = 16_384;

fn open(conn: &mut Connection, stream: u32) {
    conn.open_stream(stream, &request("/up").get(), StreamHints::default(), false).unwrap();
}

fn sent(peer: &mut Peer, conn: &mut Connection, stream: u32) -> usize {
    peer.drain_data(conn, MFS).get(&stream).copied().unwrap_or(0)
}

#[test]
fn data_beyond_the_stream_window_waits_for_window_update() {
    let mut conn = alone(Config::default());
    let mut peer = Peer::default();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1000)]).unwrap();
    conn.apply_window_update(0, 1 << 20).unwrap();
    open(&mut conn, 1);
    assert_eq!(conn.send(1, &[7; 5000]).unwrap(), 5000);
    assert_eq!(sent(&mut peer, &mut conn, 1), 1000);
    assert_eq!(conn.stats().pending_bytes, 4000);
    assert_eq!(sent(&mut peer, &mut conn, 1), 0, "nothing more without an update");
    conn.apply_window_update(1, 1500).unwrap();
    assert_eq!(sent(&mut peer, &mut conn, 1), 1500);
    assert_eq!(conn.stream_window(1), Some(0));
    conn.apply_window_update(1, 1).unwrap();
    assert_eq!(sent(&mut peer, &mut conn, 1), 1);
    conn.apply_window_update(1, 10_000).unwrap();
    assert_eq!(sent(&mut peer, &mut conn, 1), 2499);
    assert_eq!(conn.stream_window(1), Some(10_000 - 2499));
    assert_eq!(conn.stats().pending_bytes, 0);
}

#[test]
fn the_connection_window_bounds_all_streams_together() {
    let mut conn = alone(Config::default());
    let mut peer = Peer::default();
    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]).unwrap();
    open(&mut conn, 1);
    open(&mut conn, 3);
    assert_eq!(conn.send(1, &[1; 50_000]).unwrap(), 50_000);
    assert_eq!(conn.send(3, &[3; 50_000]).unwrap(), 50_000);
    let first = peer.drain_data(&mut conn, MFS);
    assert_eq!(first.values().sum::<usize>(), 65_535, "the default connection window");
    assert_eq!(conn.stats().conn_window, 0);
    assert_eq!(peer.drain_data(&mut conn, MFS).values().sum::<usize>(), 0);
    conn.apply_window_update(0, 10_000).unwrap();
    assert_eq!(peer.drain_data(&mut conn, MFS).values().sum::<usize>(), 10_000);
    conn.apply_window_update(0, 1 << 20).unwrap();
    assert_eq!(peer.drain_data(&mut conn, MFS).values().sum::<usize>(), 100_000 - 75_535);
}

#[test]
fn initial_window_size_changes_shift_open_streams_below_zero_and_back() {
    let mut conn = alone(Config::default());
    let mut peer = Peer::default();
    conn.apply_window_update(0, 1 << 24).unwrap();
    open(&mut conn, 1);
    assert_eq!(conn.send(1, &[9; 100_000]).unwrap(), 100_000);
    assert_eq!(sent(&mut peer, &mut conn, 1), 65_535);
    assert_eq!(conn.stream_window(1), Some(0));

    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 35_535)]).unwrap();
    assert_eq!(conn.stream_window(1), Some(-30_000));
    conn.apply_window_update(1, 20_000).unwrap();
    assert_eq!(conn.stream_window(1), Some(-10_000));
    assert_eq!(sent(&mut peer, &mut conn, 1), 0, "a negative window sends nothing");

    // A stream opened now starts at the new initial size.
    open(&mut conn, 3);
    assert_eq!(conn.stream_window(3), Some(35_535));

    conn.apply_peer_settings(&[(setting::INITIAL_WINDOW_SIZE, 65_535)]).unwrap();
    assert_eq!(conn.stream_window(1), Some(20_000));
    assert_eq!(conn.stream_window(3), Some(65_535));
    assert_eq!(sent(&mut peer, &mut conn, 1), 20_000);
    assert_eq!(conn.stats().pending_bytes, 100_000 - 85_535);
}

#[test]
fn window_overflow_is_refused_and_changes_nothing() {
    let mut conn = alone(Config::default());
    open(&mut conn, 1);
    let max = (1u32 << 31) - 1;
    assert_eq!(conn.apply_window_update(1, max - 65_535 + 1), Err(Error::WindowOverflow { stream: 1 }));
    assert_eq!(conn.stream_window(1), Some(65_535));
    conn.apply_window_update(1, max - 65_535).unwrap();
    assert_eq!(conn.stream_window(1), Some(i64::from(max)));
    assert_eq!(conn.apply_window_update(0, max), Err(Error::WindowOverflow { stream: 0 }));
    assert_eq!(conn.stats().conn_window, 65_535);
    assert_eq!(conn.apply_window_update(1, 0), Err(Error::Frame(FrameError::WindowIncrement { increment: 0 })));
    assert_eq!(
        conn.apply_window_update(1, max + 1),
        Err(Error::Frame(FrameError::WindowIncrement { increment: max + 1 }))
    );
    // An update for a stream not open here is ignored.
    assert_eq!(conn.apply_window_update(99, 10), Ok(()));
}

#[test]
fn settings_are_validated_as_a_whole() {
    let mut conn = alone(Config::default());
    let mut peer = Peer::default();
    conn.apply_window_update(0, 1 << 20).unwrap();
    open(&mut conn, 1);
    conn.apply_window_update(1, 1000).unwrap(); // window 66535
    let max = (1u32 << 31) - 1;
    // Taking the window past 2^31-1 at any step refuses the whole frame,
    // including the MAX_FRAME_SIZE before it.
    let refused =
        [(setting::MAX_FRAME_SIZE, 32_768), (setting::INITIAL_WINDOW_SIZE, max), (setting::INITIAL_WINDOW_SIZE, 0)];
    assert_eq!(conn.apply_peer_settings(&refused), Err(Error::WindowOverflow { stream: 1 }));
    let out_of_range = [(setting::MAX_FRAME_SIZE, 32_768), (setting::INITIAL_WINDOW_SIZE, max + 1)];
    assert_eq!(
        conn.apply_peer_settings(&out_of_range),
        Err(Error::Frame(FrameError::SettingValue { id: setting::INITIAL_WINDOW_SIZE, value: max + 1 }))
    );
    assert_eq!(conn.stream_window(1), Some(66_535));
    // MAX_FRAME_SIZE is still 16384: a 20000-byte send goes as two frames.
    assert_eq!(conn.send(1, &[5; 20_000]).unwrap(), 20_000);
    conn_common::drain_all(&mut conn, 1 << 20, &mut peer.wire);
    let sizes: Vec<usize> = conn_common::decode(&peer.wire, 1 << 20)
        .into_iter()
        .filter_map(|f| if let h2::frame::Frame::Data(d) = f { Some(d.payload().len()) } else { None })
        .collect();
    assert_eq!(sizes, [16_384, 3616]);
    // Accepted settings apply in full.
    conn.apply_peer_settings(&[(setting::MAX_FRAME_SIZE, 32_768), (setting::INITIAL_WINDOW_SIZE, max - 1000)]).unwrap();
    assert_eq!(conn.stream_window(1), Some(i64::from(max) - 20_000));
}
