//! `cargo run --release` in benches/aead: seal + open throughput of AES-256-GCM from
//! aws-lc-rs, ring and RustCrypto, and ChaCha20-Poly1305 (RustCrypto), in place, at
//! 4 KiB / 64 KiB / 1 MiB messages, each over 256 MiB of input; and lz4_flex block
//! compress/decompress of 4 KiB blocks on floats, text and random bytes.
use std::hint::black_box;
use std::time::Instant;

const TOTAL: usize = 256 << 20;

fn gib_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / secs / (1u64 << 30) as f64
}

/// Best of 3 runs of `f` over TOTAL bytes in `size`-byte messages.
fn measure(size: usize, mut f: impl FnMut(&mut [u8], u64)) -> f64 {
    let mut buf = vec![7u8; size];
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for i in 0..(TOTAL / size) as u64 {
            f(&mut buf, i);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    black_box(&buf);
    gib_s(TOTAL, best)
}

fn nonce(i: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&i.to_le_bytes());
    n
}

/// Seal and open throughput of a RustCrypto AEAD at `size`-byte messages (AES-GCM
/// and ChaCha20-Poly1305 implement the same `aead` traits).
#[cfg(feature = "rustcrypto")]
fn rustcrypto<A: aes_gcm::aead::AeadInPlace + aes_gcm::aead::KeyInit>(key: &[u8; 32], size: usize) -> (f64, f64) {
    use aes_gcm::aead::Nonce;
    let k = A::new_from_slice(key).unwrap();
    let seal = measure(size, |b, i| {
        black_box(k.encrypt_in_place_detached(Nonce::<A>::from_slice(&nonce(i)), &i.to_le_bytes(), b).unwrap());
    });
    let mut data = vec![7u8; size];
    let t = k.encrypt_in_place_detached(Nonce::<A>::from_slice(&nonce(0)), b"", &mut data).unwrap();
    let open = measure(size, |b, _| {
        b.copy_from_slice(&data);
        k.decrypt_in_place_detached(Nonce::<A>::from_slice(&nonce(0)), b"", b, &t).unwrap();
    });
    (seal, open)
}

fn main() {
    let key = [0x42u8; 32];
    #[cfg(target_arch = "x86_64")]
    println!("cpu: aes={} pclmulqdq={} avx2={}", is_x86_feature_detected!("aes"), is_x86_feature_detected!("pclmulqdq"), is_x86_feature_detected!("avx2"));
    println!("| AEAD | 4 KiB seal | 4 KiB open | 64 KiB seal | 64 KiB open | 1 MiB seal | 1 MiB open |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let sizes = [4 << 10, 64 << 10, 1 << 20];
    type Row = (&'static str, Box<dyn Fn(usize) -> (f64, f64)>);
    let mut rows: Vec<Row> = Vec::new();
    #[cfg(feature = "aws-lc")]
    rows.push(("AES-256-GCM, aws-lc-rs", Box::new(move |size| {
        use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let mut tag = None;
        let seal = measure(size, |b, i| tag = Some(k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(&i.to_le_bytes()), b).unwrap()));
        let mut data = vec![7u8; size];
        let t = k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(0)), Aad::empty(), &mut data).unwrap();
        let open = measure(size, |b, _| {
            b.copy_from_slice(&data);
            let mut ct = b.to_vec();
            ct.extend_from_slice(t.as_ref());
            black_box(k.open_in_place(Nonce::assume_unique_for_key(nonce(0)), Aad::empty(), &mut ct).unwrap());
        });
        let _ = tag;
        (seal, open)
    })));
    #[cfg(feature = "ring")]
    rows.push(("AES-256-GCM, ring", Box::new(move |size| {
        use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
        let seal = measure(size, |b, i| {
            let _ = black_box(k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(i)), Aad::from(&i.to_le_bytes()), b).unwrap());
        });
        let mut data = vec![7u8; size];
        let t = k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce(0)), Aad::empty(), &mut data).unwrap();
        let open = measure(size, |b, _| {
            b.copy_from_slice(&data);
            let mut ct = b.to_vec();
            ct.extend_from_slice(t.as_ref());
            black_box(k.open_in_place(Nonce::assume_unique_for_key(nonce(0)), Aad::empty(), &mut ct).unwrap());
        });
        (seal, open)
    })));
    #[cfg(feature = "rustcrypto")]
    {
        rows.push(("AES-256-GCM, RustCrypto aes-gcm", Box::new(move |size| rustcrypto::<aes_gcm::Aes256Gcm>(&key, size))));
        rows.push(("ChaCha20-Poly1305, RustCrypto", Box::new(move |size| rustcrypto::<chacha20poly1305::ChaCha20Poly1305>(&key, size))));
    }
    let skip = std::env::var("LZ4_ONLY").is_ok();
    for (name, f) in rows.iter().filter(|_| !skip) {
        let cells: Vec<String> = sizes.iter().flat_map(|&s| { let (a, b) = f(s); [format!("{a:.2}"), format!("{b:.2}")] }).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!("(GiB/s, best of 3 over 256 MiB; open includes a copy of the ciphertext in, as a read does)");

    // LZ4 on 4 KiB blocks.
    let floats: Vec<u8> = (0..TOTAL / 8).flat_map(|i| (100.0 + (i % 1000) as f64 * 0.25).to_le_bytes()).collect();
    let words = ["price", "volume", "alpha", "beta", "error", "warning", "the", "of", "market", "close"];
    let mut text = Vec::with_capacity(TOTAL);
    let mut s = 1u64;
    while text.len() < TOTAL {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        text.extend_from_slice(words[(s >> 33) as usize % words.len()].as_bytes());
        text.push(b' ');
    }
    text.truncate(TOTAL);
    let random: Vec<u8> = (0..TOTAL).map(|_| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (s >> 56) as u8 }).collect();
    println!("| lz4_flex, 4 KiB blocks | ratio | compress GiB/s | decompress GiB/s |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, data) in [("float64", &floats), ("text", &text), ("random", &random)] {
        let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(4096)];
        let start = Instant::now();
        let mut stored = 0usize;
        let mut comp: Vec<Vec<u8>> = Vec::new();
        for block in data.chunks(4096) {
            let n = lz4_flex::block::compress_into(block, &mut out).unwrap();
            stored += n.min(4096);
            if comp.len() < 4096 { comp.push(out[..n].to_vec()); }
        }
        let c = gib_s(TOTAL, start.elapsed().as_secs_f64());
        let mut dst = vec![0u8; 4096];
        let start = Instant::now();
        let reps = TOTAL / 4096 / comp.len();
        for _ in 0..reps { for b in &comp { black_box(lz4_flex::block::decompress_into(b, &mut dst).unwrap()); } }
        let d = gib_s(TOTAL, start.elapsed().as_secs_f64());
        println!("| {name} | {:.2} | {c:.2} | {d:.2} |", stored as f64 / TOTAL as f64);
    }
}
