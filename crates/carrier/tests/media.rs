//! MMS image preparation against real encoders/decoders.

use std::io::Cursor;
use std::time::Instant;

use carrier::media::{
    preparation_bytes, prepare_mms_image, MediaError, MAX_DECODED_BYTES, MAX_OUTPUT_SIDE,
    MMS_MAX_BYTES,
};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageFormat, RgbImage, RgbaImage};

/// Deterministic noise (xorshift64*), so "large" PNGs really are large.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn png_rgb(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter)
        .write_image(pixels, w, h, ExtendedColorType::Rgb8)
        .unwrap();
    out
}

fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            u8::try_from(x * 255 / w).unwrap(),
            u8::try_from(y * 255 / h).unwrap(),
            u8::try_from((x + y) % 256).unwrap(),
        ])
    })
}

fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .unwrap();
    out
}

#[test]
fn five_megabyte_png_goes_out_under_600_kib_and_decodes() {
    let (w, h) = (1500u32, 1150u32);
    let png = png_rgb(w, h, &noise((w * h * 3) as usize, 0x5EED));
    assert!(png.len() >= 4 * 1024 * 1024, "input is {} bytes", png.len());

    let started = Instant::now();
    let out = prepare_mms_image(&png, MMS_MAX_BYTES).unwrap();
    eprintln!(
        "prepared in {:?}: {} bytes, {}x{}",
        started.elapsed(),
        out.bytes.len(),
        out.width,
        out.height
    );

    assert!(
        out.bytes.len() <= MMS_MAX_BYTES,
        "{} bytes",
        out.bytes.len()
    );
    assert_eq!(out.mime, "image/jpeg");
    assert_eq!(carrier::blobs::sniff(&out.bytes), Some("image/jpeg"));
    let decoded = image::load_from_memory_with_format(&out.bytes, ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (out.width, out.height));
    assert!(out.width <= MAX_OUTPUT_SIDE && out.height <= MAX_OUTPUT_SIDE);
    assert!(out.width >= 200, "not shrunk to a thumbnail: {}", out.width);
    // Aspect ratio kept (within rounding).
    let ratio_in = f64::from(w) / f64::from(h);
    let ratio_out = f64::from(out.width) / f64::from(out.height);
    assert!(
        (ratio_in - ratio_out).abs() < 0.02,
        "{ratio_in} vs {ratio_out}"
    );
}

#[test]
fn oversized_photo_is_scaled_to_max_side_first() {
    // Smooth content compresses well, so only the dimension cap applies.
    let img = gradient(1700, 850);
    let jpg = jpeg(&img, 100);
    let budget = jpg.len() - 1;
    let out = prepare_mms_image(&jpg, budget).unwrap();
    assert_eq!((out.width, out.height), (1600, 800));
    assert!(out.bytes.len() <= budget);
}

#[test]
fn small_png_passes_through_byte_identical() {
    let img = gradient(64, 48);
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let out = prepare_mms_image(&png, MMS_MAX_BYTES).unwrap();
    assert_eq!(out.bytes, png);
    assert!(out.is_original(&png));
    assert_eq!(out.mime, "image/png");
    assert_eq!((out.width, out.height), (64, 48));
}

#[test]
fn small_gif_and_jpeg_pass_through() {
    let img = gradient(32, 16);
    let jpg = jpeg(&img, 80);
    let out = prepare_mms_image(&jpg, MMS_MAX_BYTES).unwrap();
    assert_eq!((out.mime, out.bytes == jpg), ("image/jpeg", true));

    let mut gif = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut gif), ImageFormat::Gif)
        .unwrap();
    let out = prepare_mms_image(&gif, MMS_MAX_BYTES).unwrap();
    assert_eq!((out.mime, out.bytes == gif), ("image/gif", true));
    assert_eq!((out.width, out.height), (32, 16));
}

#[test]
fn transparent_png_is_flattened_on_white_when_reencoded() {
    // Fully transparent black pixels must come out white, not black.
    let mut img = RgbaImage::from_pixel(300, 200, image::Rgba([0, 0, 0, 0]));
    // Some noise in one corner so the PNG is not tiny.
    let n = noise(100 * 100 * 4, 9);
    for (i, px) in n.chunks(4).enumerate() {
        img.put_pixel(
            u32::try_from(i % 100).unwrap(),
            u32::try_from(i / 100).unwrap(),
            image::Rgba([px[0], px[1], px[2], 255]),
        );
    }
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let budget = png.len() - 1;
    let out = prepare_mms_image(&png, budget).unwrap();
    assert_eq!(out.mime, "image/jpeg");
    let decoded = image::load_from_memory(&out.bytes).unwrap().to_rgb8();
    let p = decoded
        .get_pixel(decoded.width() - 5, decoded.height() - 5)
        .0;
    assert!(
        p.iter().all(|&c| c > 240),
        "transparent area is white, got {p:?}"
    );
}

#[test]
fn text_renamed_jpg_is_refused() {
    let err = prepare_mms_image(b"hello", MMS_MAX_BYTES).unwrap_err();
    assert_eq!(err.code(), "unsupported_media_type");
    assert_eq!(err, MediaError::UnsupportedMediaType { detected: None });
}

#[test]
fn other_known_types_are_refused() {
    let err = prepare_mms_image(b"%PDF-1.7\n%...", MMS_MAX_BYTES).unwrap_err();
    assert_eq!(
        err,
        MediaError::UnsupportedMediaType {
            detected: Some("application/pdf")
        }
    );
    let err = prepare_mms_image(b"", MMS_MAX_BYTES).unwrap_err();
    assert_eq!(err.code(), "unsupported_media_type");
}

#[test]
fn truncated_jpeg_is_refused_cleanly() {
    let jpg = jpeg(&gradient(200, 150), 90);
    for cut in [jpg.len() / 2, jpg.len() - 2, 600, 20, 4] {
        let err = prepare_mms_image(&jpg[..cut], MMS_MAX_BYTES).unwrap_err();
        assert!(
            matches!(err.code(), "invalid_image" | "unsupported_media_type"),
            "cut at {cut}: {err:?}"
        );
    }
    let err = prepare_mms_image(&jpg[..jpg.len() / 2], MMS_MAX_BYTES).unwrap_err();
    assert_eq!(err.code(), "invalid_image");
    // The whole file is fine.
    assert!(prepare_mms_image(&jpg, MMS_MAX_BYTES).is_ok());
}

#[test]
fn truncated_and_corrupt_png_refused_cleanly() {
    let img = gradient(120, 90);
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .unwrap();
    let err = prepare_mms_image(&png[..png.len() / 2], MMS_MAX_BYTES).unwrap_err();
    assert_eq!(err.code(), "invalid_image");
    let mut corrupt = png.clone();
    let mid = corrupt.len() / 2;
    for b in &mut corrupt[mid..mid + 16] {
        *b ^= 0x5A;
    }
    let err = prepare_mms_image(&corrupt, MMS_MAX_BYTES).unwrap_err();
    assert_eq!(err.code(), "invalid_image");
}

#[test]
fn decompression_bomb_is_refused_before_allocating() {
    // A real, tiny PNG whose declared height exceeds the dimension cap.
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&vec![0u8; 20_000], 1, 20_000, ExtendedColorType::L8)
        .unwrap();
    assert!(png.len() < 64 * 1024, "{} bytes", png.len());
    let err = prepare_mms_image(&png, MMS_MAX_BYTES).unwrap_err();
    assert_eq!(err.code(), "image_too_large");

    // Within each side but too many pixels in all: patch a small PNG's IHDR to claim
    // 11000 x 11000 (RGB: 363 MB decoded), fixing the chunk CRC.
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(&[0u8; 3], 1, 1, ExtendedColorType::Rgb8)
        .unwrap();
    png[16..20].copy_from_slice(&11_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&11_000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = prepare_mms_image(&png, MMS_MAX_BYTES).unwrap_err();
    assert_eq!(
        err,
        MediaError::ImageTooLarge {
            width: 11_000,
            height: 11_000
        }
    );
}

/// Plain CRC-32 (IEEE), bitwise, for patching a PNG chunk.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn impossible_budget_is_a_clean_error() {
    let (w, h) = (300u32, 200u32);
    let png = png_rgb(w, h, &noise((w * h * 3) as usize, 3));
    let err = prepare_mms_image(&png, 100).unwrap_err();
    assert_eq!(err.code(), "image_not_shrinkable");
}

#[test]
fn the_memory_a_preparation_takes_is_estimated_from_the_header() {
    let fixed = 3 * u64::from(MAX_OUTPUT_SIDE).pow(2) + MMS_MAX_BYTES as u64;
    // A 2000x1000 RGB PNG decodes to 6 MB; its header is in its first bytes.
    let png = png_rgb(2000, 1000, &noise(2000 * 1000 * 3, 7));
    let size = png.len() as u64;
    assert_eq!(
        preparation_bytes(size, &png[..4096]),
        size + 2 * 6_000_000 + fixed
    );
    let photo = jpeg(&gradient(640, 480), 80);
    assert_eq!(
        preparation_bytes(photo.len() as u64, &photo),
        photo.len() as u64 + 2 * 640 * 480 * 3 + fixed
    );
    // No readable header: the most an image may decode to.
    for head in [&png[..20], b"not an image".as_slice()] {
        assert_eq!(
            preparation_bytes(size, head),
            size + 2 * MAX_DECODED_BYTES + fixed
        );
    }
}
