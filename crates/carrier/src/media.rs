//! MMS image preparation: only JPEG, PNG and GIF; decoded under limits (a decompression
//! bomb is refused, not allocated); an image already within the MMS size budget is sent
//! byte-for-byte; a larger one is downscaled and re-encoded as JPEG until it fits.
//!
//! Re-encoding applies the EXIF orientation (so phone photos stay upright), flattens
//! transparency onto white, keeps only the first frame of an animated GIF, and drops
//! metadata (EXIF, including location).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{
    DynamicImage, ExtendedColorType, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits,
    RgbImage,
};

use image::metadata::Orientation;

use crate::blobs::sniff;

/// The usual MMS size budget: 600 KiB.
pub const MMS_MAX_BYTES: usize = 600 * 1024;
/// Largest accepted width or height of an input image.
pub const MAX_INPUT_DIMENSION: u32 = 12_000;
/// Largest decoded size of an input image in bytes (a 48 MP RGB photo fits).
pub const MAX_DECODED_BYTES: u64 = 192 * 1024 * 1024;
/// Re-encoded images are first scaled so their longest side is at most this.
pub const MAX_OUTPUT_SIDE: u32 = 1600;
/// Re-encoding gives up below this longest side.
pub const MIN_OUTPUT_SIDE: u32 = 64;
/// JPEG qualities tried at each size, best first.
pub const JPEG_QUALITIES: &[u8] = &[85, 75, 65, 55, 40];

/// An image ready to send as MMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    /// The bytes to send: the original bytes, or a re-encoded JPEG.
    pub bytes: Vec<u8>,
    /// Their MIME type (`image/jpeg`, `image/png`, `image/gif`).
    pub mime: &'static str,
    /// Width in pixels, as displayed (EXIF orientation applied).
    pub width: u32,
    /// Height in pixels, as displayed.
    pub height: u32,
}

impl PreparedImage {
    /// Whether these are the caller's original bytes (not re-encoded).
    pub fn is_original(&self, input: &[u8]) -> bool {
        self.bytes == input
    }
}

/// Why an image cannot be sent as MMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Not a JPEG, PNG or GIF (by its bytes).
    #[error("unsupported media type ({}); MMS images must be JPEG, PNG or GIF", detected.unwrap_or("unrecognised"))]
    UnsupportedMediaType {
        /// What the bytes look like, if recognised.
        detected: Option<&'static str>,
    },
    /// Its dimensions or decoded size exceed the limits.
    #[error("the image is too large to process ({width}x{height})")]
    ImageTooLarge {
        /// Declared width (0 if unknown).
        width: u32,
        /// Declared height (0 if unknown).
        height: u32,
    },
    /// The bytes are not a valid image of their type (corrupt or truncated).
    #[error("the image could not be decoded: {reason}")]
    InvalidImage {
        /// Decoder detail.
        reason: String,
    },
    /// Even the smallest size and lowest quality does not fit `max_bytes`.
    #[error("the image cannot be reduced to {max_bytes} bytes")]
    CannotShrink {
        /// The budget.
        max_bytes: usize,
    },
    /// The JPEG encoder failed.
    #[error("the image could not be encoded: {reason}")]
    Encode {
        /// Encoder detail.
        reason: String,
    },
}

impl MediaError {
    /// Stable machine-readable code: `unsupported_media_type`, `image_too_large`,
    /// `invalid_image`, `image_not_shrinkable`, `image_encode_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            MediaError::UnsupportedMediaType { .. } => "unsupported_media_type",
            MediaError::ImageTooLarge { .. } => "image_too_large",
            MediaError::InvalidImage { .. } => "invalid_image",
            MediaError::CannotShrink { .. } => "image_not_shrinkable",
            MediaError::Encode { .. } => "image_encode_failed",
        }
    }
}

/// The decoder limits used for MMS images.
pub fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_INPUT_DIMENSION);
    limits.max_image_height = Some(MAX_INPUT_DIMENSION);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

/// About the most memory [`prepare_mms_image`] holds for an image of `size` bytes that
/// starts with `head`: its bytes, the decoded image and an RGB copy of it (the size the
/// header in `head` declares; [`MAX_DECODED_BYTES`] when the header cannot be read from
/// it), and the scaled-down output. An estimate to bound concurrent preparations with.
pub fn preparation_bytes(size: u64, head: &[u8]) -> u64 {
    let decoded = decoded_bytes(head)
        .unwrap_or(MAX_DECODED_BYTES)
        .min(MAX_DECODED_BYTES);
    let scaled = 3 * u64::from(MAX_OUTPUT_SIDE) * u64::from(MAX_OUTPUT_SIDE);
    size + 2 * decoded + scaled + MMS_MAX_BYTES as u64
}

/// The decoded size the image header in `head` declares, if it is a JPEG, PNG or GIF
/// whose header is there whole.
fn decoded_bytes(head: &[u8]) -> Option<u64> {
    let format = match sniff(head)? {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/gif" => ImageFormat::Gif,
        _ => return None,
    };
    let mut reader = ImageReader::with_format(Cursor::new(head), format);
    reader.limits(decode_limits());
    reader.into_decoder().ok().map(|d| d.total_bytes())
}

/// Prepares an image for MMS: checks its type from its bytes, decodes it under
/// [`decode_limits`], keeps it untouched if it is at most `max_bytes`, otherwise scales it
/// down (longest side ≤ [`MAX_OUTPUT_SIDE`], then smaller) and re-encodes it as JPEG at
/// decreasing quality until it fits. CPU-bound: call it from a blocking task.
pub fn prepare_mms_image(bytes: &[u8], max_bytes: usize) -> Result<PreparedImage, MediaError> {
    let (mime, format) = match sniff(bytes) {
        Some(m @ "image/jpeg") => (m, ImageFormat::Jpeg),
        Some(m @ "image/png") => (m, ImageFormat::Png),
        Some(m @ "image/gif") => (m, ImageFormat::Gif),
        detected => return Err(MediaError::UnsupportedMediaType { detected }),
    };
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(MediaError::InvalidImage {
            reason: "truncated JPEG (no end-of-image marker)".into(),
        });
    }
    let (image, orientation) = decode(bytes, format)?;
    if bytes.len() <= max_bytes {
        let (width, height) = displayed_size(image.width(), image.height(), orientation);
        return Ok(PreparedImage {
            bytes: bytes.to_vec(),
            mime,
            width,
            height,
        });
    }
    let mut image = image;
    image.apply_orientation(orientation);
    let rgb = flatten_on_white(image);
    shrink_to_fit(&rgb, max_bytes)
}

fn decode(bytes: &[u8], format: ImageFormat) -> Result<(DynamicImage, Orientation), MediaError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(e, 0, 0))?;
    let (width, height) = decoder.dimensions();
    if width > MAX_INPUT_DIMENSION
        || height > MAX_INPUT_DIMENSION
        || decoder.total_bytes() > MAX_DECODED_BYTES
    {
        return Err(MediaError::ImageTooLarge { width, height });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(e, width, height))?;
    Ok((image, orientation))
}

fn decode_error(e: ImageError, width: u32, height: u32) -> MediaError {
    match e {
        ImageError::Limits(_) => MediaError::ImageTooLarge { width, height },
        other => MediaError::InvalidImage {
            reason: other.to_string(),
        },
    }
}

fn displayed_size(width: u32, height: u32, orientation: Orientation) -> (u32, u32) {
    match orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (height, width),
        _ => (width, height),
    }
}

/// Whether a JPEG has an end-of-image marker after its first scan. Walks the marker
/// segments (so an EXIF thumbnail's marker does not count), then looks for `FF D9` in the
/// entropy-coded data, where a literal `FF` is always stuffed as `FF 00`.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            0xFF => i += 1,
            0xD8 | 0x01 | 0xD0..=0xD7 => i += 2,
            0xD9 => return true,
            _ => {
                let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
                if len < 2 {
                    return false;
                }
                let end = i + 2 + len;
                if marker == 0xDA {
                    let data = bytes.get(end..).unwrap_or(&[]);
                    return data.windows(2).any(|w| w == [0xFF, 0xD9]);
                }
                i = end;
            }
        }
    }
    false
}

fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (src, dst) in rgba.pixels().zip(out.pixels_mut()) {
        let [r, g, b, a] = src.0;
        let a = u16::from(a);
        // At most (255 * 255 + 127) / 255 = 255: the fallback is never taken.
        let blend = |c: u8| {
            u8::try_from((u16::from(c) * a + 255 * (255 - a) + 127) / 255).unwrap_or(u8::MAX)
        };
        dst.0 = [blend(r), blend(g), blend(b)];
    }
    out
}

fn shrink_to_fit(rgb: &RgbImage, max_bytes: usize) -> Result<PreparedImage, MediaError> {
    let (w, h) = rgb.dimensions();
    let longest = w.max(h);
    let mut side = longest.min(MAX_OUTPUT_SIDE);
    loop {
        let frame;
        let frame_ref = if side < longest {
            let scale = f64::from(side) / f64::from(longest);
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "scale is in (0, 1): each product is in [0, w] or [0, h]"
            )]
            let (nw, nh) = (
                ((f64::from(w) * scale).round() as u32).max(1),
                ((f64::from(h) * scale).round() as u32).max(1),
            );
            frame = image::imageops::thumbnail(rgb, nw, nh);
            &frame
        } else {
            rgb
        };
        let mut smallest = usize::MAX;
        for (i, &quality) in JPEG_QUALITIES.iter().enumerate() {
            let out = encode_jpeg(frame_ref, quality)?;
            if out.len() <= max_bytes {
                return Ok(PreparedImage {
                    bytes: out,
                    mime: "image/jpeg",
                    width: frame_ref.width(),
                    height: frame_ref.height(),
                });
            }
            smallest = out.len();
            // Far over budget at the best quality: lowering the quality alone will not
            // do (85 → 40 roughly halves the size), so shrink right away, sizing the
            // step as if the lowest quality had been tried.
            if i == 0 && out.len() > max_bytes * 3 && side > MIN_OUTPUT_SIDE {
                smallest = out.len() / 2;
                break;
            }
        }
        if side <= MIN_OUTPUT_SIDE {
            return Err(MediaError::CannotShrink { max_bytes });
        }
        // Size scales roughly with pixel count: aim a bit under the budget.
        #[allow(
            clippy::cast_precision_loss,
            reason = "a rough ratio of two sizes: f64's 53 bits are plenty"
        )]
        let ratio = (max_bytes as f64 / smallest as f64).sqrt() * 0.9;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the factor is in [0.3, 0.85]: the product is in [0, side]"
        )]
        let next = (f64::from(side) * ratio.clamp(0.3, 0.85)) as u32;
        side = next.max(MIN_OUTPUT_SIDE);
    }
}

fn encode_jpeg(frame: &RgbImage, quality: u8) -> Result<Vec<u8>, MediaError> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode(
            frame.as_raw(),
            frame.width(),
            frame.height(),
            ExtendedColorType::Rgb8,
        )
        .map_err(|e| MediaError::Encode {
            reason: e.to_string(),
        })?;
    Ok(out)
}
