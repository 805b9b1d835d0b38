// SPDX-License-Identifier: MIT
// quinn-udp's throughput workload, the quinn-udp side: one thread, a
// sending and a receiving socket on 127.0.0.1; each step sends one
// transmit of as many SIZE-byte segments as fit in 64 KiB (GSO, at most
// 64 segments) and receives until every byte of it came back (GRO). The
// volley side is quinn_workload.c; compare.sh runs both.
//
//   quinn-workload SIZE TOTAL_BYTES REPEATS
//
// Prints one line per repeat: "quinn-udp SIZE DATAGRAMS_PER_SECOND".
use quinn_proto::Transmit;
use quinn_udp::{RecvMeta, UdpSocketState, UdpState};
use std::io::IoSliceMut;
use std::net::UdpSocket;
use std::os::unix::io::AsRawFd;
use std::process::exit;
use std::time::Instant;

fn arg(args: &[String], i: usize, what: &str) -> usize {
    match args.get(i).map(|s| s.parse::<usize>()) {
        Some(Ok(v)) if v > 0 => v,
        _ => {
            eprintln!("usage: quinn-workload SIZE TOTAL_BYTES REPEATS ({what} is not a positive number)");
            exit(2);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = arg(&args, 1, "SIZE");
    let total = arg(&args, 2, "TOTAL_BYTES");
    let repeats = arg(&args, 3, "REPEATS");
    if size > 65507 {
        eprintln!("quinn-workload: SIZE {size} is more than a UDP datagram holds");
        exit(2);
    }
    let tx_sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let rx_sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    UdpSocketState::configure((&tx_sock).into()).expect("configure");
    UdpSocketState::configure((&rx_sock).into()).expect("configure");
    let state = UdpState::new();
    let segments = std::cmp::max(1, std::cmp::min(state.max_gso_segments(), 65535 / size));
    let dst = rx_sock.local_addr().expect("local_addr");
    let mut tx = UdpSocketState::new();
    let rx = UdpSocketState::new();
    let slot = std::cmp::max(65535, state.gro_segments() * size);
    let batch = 32;
    let mut bufs: Vec<Vec<u8>> = (0..batch).map(|_| vec![0u8; slot]).collect();
    let mut meta = vec![RecvMeta::default(); batch];
    for _ in 0..repeats {
        let start = Instant::now();
        let (mut sent, mut dgrams) = (0usize, 0usize);
        while sent < total {
            let n = std::cmp::min(segments * size, total - sent);
            let t = Transmit {
                destination: dst,
                ecn: None,
                contents: vec![1u8; n],
                segment_size: if n > size { Some(size) } else { None },
                src_ip: None,
            };
            loop {
                match tx.send((&tx_sock).into(), &state, std::slice::from_ref(&t)) {
                    Ok(1) => break,
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => {
                        eprintln!("quinn-workload: send: {e}");
                        exit(1);
                    }
                }
            }
            sent += n;
            let mut got = 0usize;
            while got < n {
                let mut iov: Vec<IoSliceMut> =
                    bufs.iter_mut().map(|b| IoSliceMut::new(&mut b[..])).collect();
                match rx.recv((&rx_sock).into(), &mut iov, &mut meta) {
                    Ok(k) => {
                        for m in &meta[..k] {
                            got += m.len;
                            dgrams += (m.len + m.stride - 1) / m.stride;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let mut p = libc::pollfd {
                            fd: rx_sock.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        };
                        // SAFETY: one valid pollfd for the duration of the call.
                        if unsafe { libc::poll(&mut p, 1, 1000) } == 0 {
                            eprintln!("quinn-workload: nothing received for 1 s: datagrams lost");
                            exit(1);
                        }
                    }
                    Err(e) => {
                        eprintln!("quinn-workload: recv: {e}");
                        exit(1);
                    }
                }
            }
            if got != n {
                eprintln!("quinn-workload: received {got} bytes of {n}");
                exit(1);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!("quinn-udp {} {:.0}", size, dgrams as f64 / secs);
    }
}
