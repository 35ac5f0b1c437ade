//! Byte strings that are not UTF-8, carried losslessly in `String`s.
//!
//! Layer files and environment values are bytes: an old layer tree may hold Latin-1
//! text, and the original tools passed it through as it was. mfenv keeps its text types
//! and maps every byte that is not part of valid UTF-8 to one character of a private
//! use range, `U+10FF00 + byte` (fish does the same with its own range). Valid UTF-8
//! that encodes a character of that range is mapped byte by byte too, so [`decode`] and
//! [`encode`] are exact inverses of each other for every input.
//!
//! Decoding happens where bytes come in (the environment snapshot, layer files, layer
//! arguments); encoding where they go out (stdout, stderr, the environment of `exec`,
//! file system paths). Shell renderers see the mapped characters and write them in
//! their own syntax (fish: `\XHH`; POSIX shells: the raw byte inside single quotes).
//!
//! Invariant: text that is valid UTF-8 without characters of the range is its own
//! encoding, so the common case costs one scan for the byte `0xF4` and no copy.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The first character of the range; byte `b` is `BASE + b`.
const BASE: u32 = 0x10_FF00;

/// The byte a mapped character stands for, if it is one.
pub fn escaped_byte(c: char) -> Option<u8> {
    let code = u32::from(c);
    (BASE..=BASE + 0xFF)
        .contains(&code)
        .then(|| u8::try_from(code - BASE).expect("the range holds 256 characters"))
}

fn push_byte(out: &mut String, byte: u8) {
    out.push(char::from_u32(BASE + u32::from(byte)).expect("U+10FF00..U+10FFFF are characters"));
}

/// Every character of the range starts with this byte in UTF-8.
const LEAD: u8 = 0xF4;

/// Text standing for `bytes` (see the module documentation).
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes)
        && !has_escapes(text)
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if escaped_byte(c).is_some() {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    push_byte(&mut out, byte);
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            push_byte(&mut out, *byte);
        }
    }
    Cow::Owned(out)
}

/// Like [`decode`], taking ownership (no copy for valid UTF-8).
pub fn decode_owned(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) if !has_escapes(&text) => text,
        Ok(text) => decode(text.as_bytes()).into_owned(),
        Err(error) => decode(error.as_bytes()).into_owned(),
    }
}

/// Text standing for an OS string.
pub fn decode_os(value: OsString) -> String {
    decode_owned(value.into_vec())
}

/// True when `text` holds mapped characters (bytes that are not UTF-8).
pub fn has_escapes(text: &str) -> bool {
    text.as_bytes().contains(&LEAD) && text.chars().any(|c| escaped_byte(c).is_some())
}

/// The bytes `text` stands for.
pub fn encode(text: &str) -> Cow<'_, [u8]> {
    if !has_escapes(text) {
        return Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match escaped_byte(c) {
            Some(byte) => out.push(byte),
            None => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
    Cow::Owned(out)
}

/// The OS string `text` stands for (environment values, paths).
pub fn to_os(text: &str) -> Cow<'_, OsStr> {
    match encode(text) {
        Cow::Borrowed(bytes) => Cow::Borrowed(OsStr::from_bytes(bytes)),
        Cow::Owned(bytes) => Cow::Owned(OsString::from_vec(bytes)),
    }
}

/// The path `text` stands for.
pub fn to_path(text: &str) -> Cow<'_, std::path::Path> {
    match to_os(text) {
        Cow::Borrowed(os) => Cow::Borrowed(std::path::Path::new(os)),
        Cow::Owned(os) => Cow::Owned(std::path::PathBuf::from(os)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_text_is_its_own_encoding() {
        assert!(matches!(
            decode("é日本 ok".as_bytes()),
            Cow::Borrowed("é日本 ok")
        ));
        assert!(matches!(encode("é日本 ok"), Cow::Borrowed(_)));
    }

    #[test]
    fn latin1_bytes_round_trip() {
        let bytes = b"caf\xe9 \xff\xfe";
        let text = decode(bytes);
        assert_eq!(
            text.chars().filter(|c| escaped_byte(*c).is_some()).count(),
            3
        );
        assert_eq!(&*encode(&text), bytes);
    }

    #[test]
    fn characters_of_the_range_in_valid_utf8_are_mapped_too() {
        let real = "\u{10FF41}x";
        let text = decode(real.as_bytes());
        assert_ne!(text, real);
        assert_eq!(&*encode(&text), real.as_bytes());
    }

    proptest! {
        #[test]
        fn any_bytes_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let text = decode(&bytes).into_owned();
            prop_assert_eq!(&*encode(&text), &bytes[..]);
            prop_assert_eq!(decode_owned(bytes.clone()), text);
        }
    }
}
