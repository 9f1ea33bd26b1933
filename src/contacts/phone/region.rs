//! Which country a number belongs to, and which country codes the API accepts.

use std::str::FromStr;

use phonenumber::{
    Metadata as RegionMetadata, PhoneNumber, country,
    metadata::{DATABASE, Descriptor, Descriptors},
};

/// libphonenumber region ids that are not assigned ISO 3166-1 alpha-2 codes: Ascension Island
/// and Tristan da Cunha (exceptionally reserved; ISO counts both under `SH`) and Kosovo
/// (user-assigned). Every other region libphonenumber has metadata for is an assigned code.
const NOT_ISO_3166: [&str; 3] = ["AC", "TA", "XK"];

/// The rule for `countryCode`: an assigned ISO 3166-1 alpha-2 code that libphonenumber has
/// numbering metadata for.
pub(super) fn is_known_iso_region(id: &str) -> bool {
    !NOT_ISO_3166.contains(&id) && country::Id::from_str(id).is_ok()
}

/// The region a number belongs to, as libphonenumber's `getRegionCodeForNumber` decides it:
/// the only region of its calling code, else the first whose leading digits or number
/// patterns match the national significant number. `None` for non-geographic codes, regions
/// without an ISO 3166-1 code, and numbers no region claims. (The crate's own
/// `country().id()` drops the national number's leading zeros first, so Italian landlines,
/// `+39 02…`, matched no region.)
pub(super) fn region_of(number: &PhoneNumber) -> Option<String> {
    // `Display` keeps the leading zeros that belong to the number.
    let national = number.national().to_string();
    let regions = DATABASE.by_code(&number.code().value())?;
    let region = match regions.as_slice() {
        [only] => *only,
        several => several
            .iter()
            .copied()
            .find(|meta| match meta.leading_digits() {
                Some(pattern) => pattern.find(&national).is_some_and(|m| m.start() == 0),
                None => has_known_type(meta, &national),
            })?,
    };
    is_known_iso_region(region.id()).then(|| region.id().to_owned())
}

/// The descriptor of each number type a region may have (all but the general one).
pub(super) fn number_types(descriptors: &Descriptors) -> impl Iterator<Item = &Descriptor> {
    [
        descriptors.fixed_line(),
        descriptors.mobile(),
        descriptors.toll_free(),
        descriptors.premium_rate(),
        descriptors.shared_cost(),
        descriptors.personal_number(),
        descriptors.voip(),
        descriptors.pager(),
        descriptors.uan(),
        descriptors.voicemail(),
    ]
    .into_iter()
    .flatten()
}

/// libphonenumber's "number type is not UNKNOWN" for `region`.
fn has_known_type(region: &RegionMetadata, national: &str) -> bool {
    let descriptors = region.descriptors();
    descriptors.general().is_match(national)
        && number_types(descriptors).any(|desc| desc.is_match(national))
}
