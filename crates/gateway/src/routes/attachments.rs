//! Attachments.
//!
//! - `POST /v1/attachments` (multipart, one file part): stored in the attachment store,
//!   its type sniffed from the bytes (the name and the client's `Content-Type` are not
//!   trusted). At most [`MAX_ATTACHMENT_BYTES`]: larger is 413 `attachment_too_large`,
//!   answered before any of the body is read when its `Content-Length` says so
//!   ([`refuse_declared_too_large`]), else as soon as the limit is passed. The file is
//!   streamed to the blob store's directory as it arrives ([`crate::carriers::upload`]),
//!   so an upload holds a few hundred KiB of memory, not its size.
//!   With `?mms=true` only JPEG, PNG and GIF are accepted (415 `unsupported_media_type`);
//!   otherwise any file is (unrecognised content as `application/octet-stream`), and the
//!   MMS check happens when it is posted to a conversation that texts. Answers
//!   `{attachment_id, id, mime, size}`: `attachment_id` is the content hash that messages
//!   name, `id` the organization's attachment id that timelines show.
//! - `GET /v1/attachments/{hash or id}?conversation=<id>`: the bytes, for a participant of
//!   that conversation when one of its messages references the attachment (one lookup in
//!   the reference index, `carriers::references`); 404 otherwise (whether it exists or
//!   not). An inbound MMS item that could not be fetched from the carrier answers 410
//!   `media_unavailable` with the reason.
//! - `GET /v1/carriers/media/{id}/{token}`: the bytes, for the carrier fetching MMS media;
//!   the signed URL is the credential (see `carriers::media_urls`).

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use carrier::blobs::{AttachmentError, AttachmentPolicy, MMS_IMAGE_TYPES};
use carrier::media::{preparation_bytes, prepare_mms_image, MediaError, MMS_MAX_BYTES};
use domain::conversation::AttachmentRef;
use domain::limits::{
    MAX_ATTACHMENTS_PER_MESSAGE, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_LEN, MAX_MMS_IMAGE_BYTES,
};
use domain::{AttachmentId, ConversationId, OrgId};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::Authenticated;
use crate::carriers::attachments::{self, AttachmentStored};
use crate::carriers::upload::Upload;
use crate::carriers::CarrierState;
use crate::error::ApiError;
use crate::routes::json::ApiPath;
use crate::routes::json::ApiQuery;

/// Largest upload body: the file and the multipart framing around it.
pub const MAX_UPLOAD_BODY: usize = MAX_ATTACHMENT_LEN + 64 * 1024;

fn carriers(state: &AppState) -> Result<&CarrierState, ApiError> {
    state.carriers.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "attachments_unavailable",
            "this server has no attachment store",
        )
    })
}

/// 413 `attachment_too_large`.
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "attachment_too_large",
        format!("an attachment has at most {MAX_ATTACHMENT_BYTES} bytes"),
    )
}

fn refused(e: &AttachmentError) -> ApiError {
    match e {
        AttachmentError::TooLarge { .. } => too_large(),
        AttachmentError::UnsupportedMediaType { .. } => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.code(), e.to_string())
        }
        AttachmentError::Empty => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UploadQuery {
    /// Accept MMS images only.
    #[serde(default)]
    pub mms: bool,
}

#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Uploaded {
    /// The content hash (BLAKE3, hex): what messages and `GET` name.
    pub attachment_id: String,
    /// The organization's id of the attachment, as timelines show it.
    pub id: AttachmentId,
    pub mime: String,
    pub size: u64,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request("invalid_multipart", e.body_text())
    }
}

/// 413 `attachment_too_large` when the request's `Content-Length` is over
/// [`MAX_UPLOAD_BODY`]: judged from the headers alone, before any of the body is read.
///
/// # Errors
/// `attachment_too_large` (413).
pub fn refuse_declared_too_large(headers: &HeaderMap) -> Result<(), ApiError> {
    match declared_length(headers) {
        Some(length) if length > MAX_UPLOAD_BODY as u64 => Err(too_large()),
        _ => Ok(()),
    }
}

/// The body length a request's `Content-Length` declares, if it has a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `POST /v1/attachments`.
pub async fn upload(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiQuery(query): ApiQuery<UploadQuery>,
    request: Request,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let carriers = carriers(&state)?;
    refuse_declared_too_large(request.headers())?;
    let request =
        request.map(|body| Body::from_stream(Budgeted::new(body.into_data_stream(), READ_BUDGET)));
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
    let mut field = loop {
        match multipart.next_field().await.map_err(multipart_error)? {
            Some(f) if f.file_name().is_some() || f.name() == Some("file") => break f,
            Some(_) => continue,
            None => {
                return Err(ApiError::bad_request(
                    "missing_file",
                    "send the file as a multipart part named `file`",
                ))
            }
        }
    };
    let mut upload = Upload::start(&carriers.blobs).await?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if upload.size() + chunk.len() as u64 > MAX_ATTACHMENT_BYTES {
            return Err(too_large());
        }
        upload.push(chunk).await?;
    }
    let upload = upload.complete().await?;
    let policy = if query.mms {
        AttachmentPolicy::mms_images(MAX_ATTACHMENT_LEN)
    } else {
        AttachmentPolicy::any_type(MAX_ATTACHMENT_LEN)
    };
    let size = usize::try_from(upload.size()).unwrap_or(usize::MAX);
    policy
        .check_sized(size, upload.head())
        .map_err(|e| refused(&e))?;
    let blob = upload.keep().await?;
    let stored = attachments::record(state.store(), caller.org, blob).await?;
    Ok((
        StatusCode::CREATED,
        Json(Uploaded {
            id: attachments::attachment_id(caller.org, &stored.hash),
            attachment_id: stored.hash,
            mime: stored.mime,
            size: stored.size,
        }),
    ))
}

/// Most bytes read from an upload's connection before the multipart parser hands them on.
pub const READ_BUDGET: usize = 256 * 1024;

/// A body stream that ends its turn (wakes itself and answers `Pending`) once it has
/// yielded `budget` bytes in a row. The multipart parser (multer) pulls from the body
/// until it answers `Pending` before handing any of it out: on a fast connection to a
/// busy server that is whatever the socket has buffered, MiBs per upload.
struct Budgeted<S> {
    inner: S,
    budget: usize,
    /// Bytes yielded since the stream last answered `Pending`.
    yielded: usize,
}

impl<S> Budgeted<S> {
    fn new(inner: S, budget: usize) -> Self {
        Self {
            inner,
            budget,
            yielded: 0,
        }
    }
}

impl<S> futures_util::Stream for Budgeted<S>
where
    S: futures_util::Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.yielded >= self.budget {
            self.yielded = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(bytes))) => self.yielded += bytes.len(),
            Poll::Pending => self.yielded = 0,
            Poll::Ready(_) => {}
        }
        next
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FetchQuery {
    /// The conversation whose message references the attachment (required: only its
    /// participants may fetch it).
    pub conversation: Option<ConversationId>,
}

fn not_found() -> ApiError {
    ApiError::not_found("attachment_not_found", "no such attachment")
}

/// `GET /v1/attachments/{key}?conversation=<id>`.
pub async fn fetch(
    State(state): State<AppState>,
    caller: Authenticated,
    ApiPath(key): ApiPath<String>,
    ApiQuery(query): ApiQuery<FetchQuery>,
) -> Result<Response, ApiError> {
    let carriers = carriers(&state)?;
    let conversation = query.conversation.ok_or_else(|| {
        ApiError::bad_request(
            "conversation_required",
            "name the conversation the attachment is in: ?conversation=<id>",
        )
    })?;
    crate::routes::conversations::visible(&state, &caller, conversation)
        .await
        .map_err(|_| not_found())?;
    let (id, entry) = attachments::resolve_entry(state.store(), caller.org, &key).await?;
    let referenced = crate::carriers::references::references(
        state.store(),
        &state.ws.progress,
        conversation,
        id,
    )
    .await?;
    if !referenced {
        return Err(not_found());
    }
    match entry {
        attachments::Entry::Stored(stored) => {
            let bytes = attachments::read(&carriers.blobs, &stored).await?;
            Ok(serve(&stored.mime, bytes))
        }
        attachments::Entry::Unavailable(u) => Err(ApiError::new(
            StatusCode::GONE,
            "media_unavailable",
            format!(
                "the carrier's media could not be fetched ({}): {}",
                u.code, u.reason
            ),
        )),
    }
}

/// `GET /v1/carriers/media/{id}/{token}`.
pub async fn carrier_media(
    State(state): State<AppState>,
    ApiPath((id, token)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let carriers = carriers(&state)?;
    let id: AttachmentId = id.parse().map_err(|_| not_found())?;
    if !carriers.media.verify(id, &token) {
        return Err(not_found());
    }
    let stored = attachments::lookup(state.store(), id)
        .await?
        .ok_or_else(not_found)?;
    let bytes = attachments::read(&carriers.blobs, &stored).await?;
    Ok(serve(&stored.mime, bytes))
}

fn serve(mime: &str, bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    if !mime.starts_with("image/") {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment"),
        );
    }
    response
}

fn unsupported_for_mms(mime: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!("{mime} cannot be sent by MMS; send a JPEG, PNG or GIF image"),
    )
}

/// The attachments a new message names. In a conversation that texts (`texts`) each must
/// be an image carriers deliver (415 `unsupported_media_type` otherwise).
///
/// # Errors
/// `attachment_not_found` (404), `unsupported_media_type` (415), `too_many` (422).
pub(crate) async fn named(
    state: &AppState,
    org: OrgId,
    keys: &[String],
    texts: bool,
) -> Result<Vec<AttachmentStored>, ApiError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    carriers(state)?;
    if keys.len() > MAX_ATTACHMENTS_PER_MESSAGE {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many",
            format!("a message has at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments"),
        ));
    }
    let mut stored = Vec::with_capacity(keys.len());
    for key in keys {
        let a = attachments::resolve(state.store(), org, key).await?;
        if texts && !MMS_IMAGE_TYPES.contains(&a.mime.as_str()) {
            return Err(unsupported_for_mms(&a.mime));
        }
        stored.push(a);
    }
    Ok(stored)
}

/// The references the images will have once resized: their type, at most the MMS size.
pub(crate) fn as_mms(stored: &[AttachmentStored]) -> Vec<AttachmentRef> {
    stored
        .iter()
        .map(|a| AttachmentRef {
            size_bytes: a.size.min(MAX_MMS_IMAGE_BYTES),
            ..a.reference()
        })
        .collect()
}

/// Each image fit for MMS: kept when it is within [`MMS_MAX_BYTES`] and decodes, else
/// scaled down and re-encoded as JPEG, and the result stored as an attachment of its own.
/// One image at a time, each within the server's
/// [`crate::carriers::image_budget::ImageBudget`].
///
/// # Errors
/// `unsupported_media_type` (415), `image_too_large` (413), `invalid_image` and
/// `image_not_shrinkable` (422), internal errors.
pub(crate) async fn mms_ready(
    state: &AppState,
    org: OrgId,
    stored: Vec<AttachmentStored>,
) -> Result<Vec<AttachmentRef>, ApiError> {
    let carriers = carriers(state)?;
    let mut ready = Vec::with_capacity(stored.len());
    for a in stored {
        // Read whole and decoded: held against the server's budget for it first.
        let head = attachments::read_head(&carriers.blobs, &a, carrier::blobs::SNIFF_BYTES).await?;
        let _held = carriers
            .images
            .hold(preparation_bytes(a.size, &head))
            .await?;
        drop(head);
        let bytes = attachments::read(&carriers.blobs, &a).await?;
        let (prepared, bytes) =
            tokio::task::spawn_blocking(move || (prepare_mms_image(&bytes, MMS_MAX_BYTES), bytes))
                .await
                .map_err(ApiError::internal)?;
        let prepared = prepared.map_err(|e| media_refused(&a.mime, &e))?;
        if prepared.is_original(&bytes) {
            ready.push(a.reference());
        } else {
            let resized =
                attachments::store(state.store(), &carriers.blobs, org, prepared.bytes).await?;
            ready.push(resized.reference());
        }
    }
    Ok(ready)
}

fn media_refused(mime: &str, e: &MediaError) -> ApiError {
    match e {
        MediaError::UnsupportedMediaType { .. } => unsupported_for_mms(mime),
        MediaError::ImageTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.code(), e.to_string())
        }
        MediaError::InvalidImage { .. } | MediaError::CannotShrink { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        }
        MediaError::Encode { .. } => ApiError::internal(e),
    }
}
