//! Sealing and opening one text, against RustCrypto's XChaCha20-Poly1305 (what sealed texts
//! before `eventlog::keyring` was built on ring) measured in the same run.
//!
//! Prints, per text length in bytes (`--lens`, default 16,64,256,1024):
//! - `sealing.seal.<len>.ns` and `sealing.open.<len>.ns`: one `keyring::seal` / `open`;
//! - `sealing.reference.seal.<len>.ns`: RustCrypto's, with the same key, nonce and data;
//! - `sealing.seal.<len>.speedup_vs_reference`: how many of ours in the reference's time.
//!
//! Each figure is the median of `--rounds` (5) rounds of `--iterations` (100000) calls.
//!
//! `cargo bench --bench sealing -- --rounds 5 --iterations 100000`

use std::hint::black_box;
use std::time::Instant;

use benchkit::{bench_line, median, Args, ToF64};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::XChaCha20Poly1305;
use eventlog::keyring;

/// Nanoseconds per call of `f`, median of `rounds` rounds of `iterations` calls.
fn ns_per_call(rounds: usize, iterations: usize, mut f: impl FnMut()) -> f64 {
    let per_round = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_secs_f64() * 1e9 / iterations.to_f64()
        })
        .collect();
    median(per_round)
}

fn main() {
    let args = Args::parse();
    let rounds: usize = args.get("rounds", 5);
    let iterations: usize = args.get("iterations", 100_000);
    let lens: String = args.get("lens", "16,64,256,1024".to_string());
    // A key and associated data as the actors make them: a combined 256-bit key, and the
    // names of the keys it combines (an organization's, a customer's and a day's).
    let key = keyring::combine(&[[7; 32], [9; 32]]);
    let aad = b"org/7c9e6679-7425-40de-944b-e07fc1f90ae7/+16135550101/20261207".repeat(2);
    for len in lens
        .split(',')
        .filter_map(|l| l.trim().parse::<usize>().ok())
    {
        let text = vec![b'a'; len];
        let (nonce, sealed) = keyring::seal(&key, &aad, &text);
        let reference = XChaCha20Poly1305::new(&key.into());
        assert_eq!(
            reference
                .encrypt(
                    nonce.as_slice().into(),
                    Payload {
                        msg: &text,
                        aad: &aad
                    }
                )
                .expect("the reference seals"),
            sealed,
            "the same bytes as the reference"
        );
        let seal = ns_per_call(rounds, iterations, || {
            black_box(keyring::seal(&key, black_box(&aad), black_box(&text)));
        });
        let open = ns_per_call(rounds, iterations, || {
            black_box(keyring::open(
                &key,
                black_box(&aad),
                &nonce,
                black_box(&sealed),
            ));
        });
        let by_reference = ns_per_call(rounds, iterations, || {
            let cipher = XChaCha20Poly1305::new(&key.into());
            black_box(cipher.encrypt(
                nonce.as_slice().into(),
                Payload {
                    msg: black_box(&text),
                    aad: black_box(&aad),
                },
            ))
            .ok();
        });
        bench_line(&format!("sealing.seal.{len}.ns"), seal, "ns");
        bench_line(&format!("sealing.open.{len}.ns"), open, "ns");
        bench_line(
            &format!("sealing.reference.seal.{len}.ns"),
            by_reference,
            "ns",
        );
        bench_line(
            &format!("sealing.seal.{len}.speedup_vs_reference"),
            by_reference / seal,
            "ratio",
        );
    }
}
