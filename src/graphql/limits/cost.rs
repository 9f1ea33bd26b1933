//! What the complexity limit charges the fields whose answer may be large, and the largest
//! answer that leaves an admitted document: `metadata` may be ~155 KiB of JSON (50 keys ×
//! 500 characters, each U+0001 escaped to six bytes) where `id` is 40 bytes, so charging it 1
//! let one read of 15 aliased pages answer 228 MB. Each charge here is set so that no unit of
//! complexity buys more than [`bytes_per_unit`] bytes of JSON; the largest answer is then
//! `max_complexity` times that (the test of the bound computes it from these constants, so
//! raising a limit without the charge fails it).

use crate::contacts::{bsuid, metadata, windows};

/// What `metadata` costs (any other field costs 1). The most an ordinary page allows: a
/// 100-contact page selecting every scalar field with `metadata`, pages info and filtered
/// counts beside it, stays under the default limit of 5,000.
pub const METADATA: usize = 29;

/// `previousWhatsappUserIds`: one query per contact, and a list as long as the contact's
/// identity changes (charged as [`PREVIOUS_USER_IDS_CHARGED`] of them).
pub const PREVIOUS_USER_IDS: usize = 10;

/// `whatsappWindows` counts its fields once per this many windows (a contact has at most
/// [`windows::MAX_PER_CONTACT`]): `MAX_PER_CONTACT / WINDOWS_PER_UNIT` times its fields.
pub const WINDOWS_PER_UNIT: usize = 25;

/// `contactChanges` counts its fields once per this many changes (a page is one range read
/// of the log); the `contact` of a change is charged this many times its fields, so a
/// contact costs the same in the change feed as in `contacts`.
pub const CHANGES_PER_UNIT: usize = 10;

/// The longest name (alias, field, fragment, operation, variable) a document may hold: a
/// response key is repeated once per row of the answer, so its length multiplies as a
/// field's value does.
pub const MAX_NAME_BYTES: usize = 128;

/// A character in a JSON string: a control character is escaped to `\u0001`.
const ESCAPED_CHAR_BYTES: usize = 6;
/// A character that is not escaped: at most four bytes of UTF-8.
const UTF8_CHAR_BYTES: usize = 4;
/// `"key":` with its comma, for the longest response key.
const KEY_BYTES: usize = MAX_NAME_BYTES + 4;
/// The longest scalar other than `metadata`: a WhatsApp username or profile name, every
/// character escaped, with its quotes (ids, numbers, BSUIDs, timestamps are shorter).
const SCALAR_BYTES: usize = bsuid::MAX_NAME_CHARS * ESCAPED_CHAR_BYTES + 2;
/// A timestamp (`2026-11-26T21:14:43.123456789Z`, years 1–9999) with its quotes.
const TIMESTAMP_BYTES: usize = 32;
/// The longest `whatsappWindows` field: a business number of 32 digits, or a timestamp.
const WINDOW_FIELD_BYTES: usize = 34;
/// The longest BSUID (`CC.` and 128 characters) with its quotes and comma.
const BSUID_BYTES: usize = 3 + bsuid::MAX_BSUID_BODY + 3;
/// `previousWhatsappUserIds` as charged: what its units buy, in BSUIDs.
pub const PREVIOUS_USER_IDS_CHARGED: usize = PREVIOUS_USER_IDS * bytes_per_unit() / BSUID_BYTES;

/// The largest `metadata` object in JSON: every key (no control characters allowed) of
/// four-byte characters, every value of escaped ones, each entry with its two pairs of quotes,
/// colon and comma, and the braces.
pub const METADATA_JSON_BYTES: usize = 2 + metadata::MAX_KEYS
    * (metadata::MAX_KEY_CHARS * UTF8_CHAR_BYTES
        + metadata::MAX_VALUE_CHARS * ESCAPED_CHAR_BYTES
        + 6);

/// What one unit of complexity buys in `metadata`, the dearest field.
pub const fn metadata_bytes_per_unit() -> usize {
    (KEY_BYTES + METADATA_JSON_BYTES).div_ceil(METADATA)
}

/// What one unit buys in any other field charged 1 (its key and its largest value).
pub const fn field_bytes_per_unit() -> usize {
    let value = if SCALAR_BYTES > TIMESTAMP_BYTES {
        SCALAR_BYTES
    } else {
        TIMESTAMP_BYTES
    };
    KEY_BYTES + value + 2
}

/// What one unit of a `whatsappWindows` field buys: the field in every window (each
/// window's braces and comma counted with it).
pub const fn window_bytes_per_unit() -> usize {
    let per_field = windows::MAX_PER_CONTACT * (KEY_BYTES + WINDOW_FIELD_BYTES + 3);
    per_field.div_ceil(windows_multiplier())
}

/// `whatsappWindows` is charged this many times its fields, plus 1.
pub const fn windows_multiplier() -> usize {
    windows::MAX_PER_CONTACT.div_ceil(WINDOWS_PER_UNIT)
}

/// The most bytes of JSON one unit of complexity buys: what `metadata` buys, as long as
/// every other charge keeps its fields below it (checked when compiling, below).
pub const fn bytes_per_unit() -> usize {
    metadata_bytes_per_unit()
}

/// The largest answer (`data` of JSON) a document of `max_complexity` may have.
pub const fn worst_case_response_bytes(max_complexity: usize) -> usize {
    max_complexity * bytes_per_unit()
}

// Metadata buys the most per unit, and the charge of `previousWhatsappUserIds` covers 400
// of them: checked when compiling, so changing a limit or a charge cannot break it unseen.
const _: () = assert!(field_bytes_per_unit() < bytes_per_unit());
const _: () = assert!(window_bytes_per_unit() < bytes_per_unit());
const _: () = assert!(PREVIOUS_USER_IDS_CHARGED >= 400);
