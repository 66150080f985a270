//! Cell-level rules: each function reads one cell as a person typed it and either writes its
//! normal form into a buffer the caller reuses or says, in words for the user, what is wrong.
//!
//! They run on every cell of every row, so none allocates except to build an error message.

use crate::contract::{Direction, Plan, UserType, DAYS};
use crate::intake::trim;

/// The digits of a number as typed, on the stack: numbers are checked on every row.
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl Digits {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).expect("ASCII digits")
    }
}

/// Digits of `s`, dropping the punctuation people put in numbers and a bracketed trunk "(0)".
fn digits(s: &str) -> Result<Digits, String> {
    let mut d = Digits {
        buf: [0; 32],
        len: 0,
    };
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'0'..=b'9' => {
                if d.len == d.buf.len() {
                    return Err(format!("{s:?} has too many digits for a telephone number"));
                }
                d.buf[d.len] = b[i];
                d.len += 1;
            }
            b'(' if b[i..].starts_with(b"(0)") => i += 2,
            b' ' | b'-' | b'(' | b')' | b'.' | b'/' => {}
            _ => {
                let ch = s[i..].chars().next().unwrap_or(' ');
                if ch != '\u{a0}' {
                    return Err(format!(
                        "{s:?} has {ch:?} in it; use digits, spaces and +44"
                    ));
                }
                i += ch.len_utf8() - 1;
            }
        }
        i += 1;
    }
    Ok(d)
}

/// Whether `s` is what a spreadsheet makes of a phone number typed into a General cell: the
/// number 1632960999 for 01632 960999, 9 or 10 digits that lost their leading 0. Every rule
/// for a phone number or prefix gives the 0 back; the validator says it did.
pub fn lost_leading_zero(s: &str) -> bool {
    let b = trim(s).as_bytes();
    matches!(b.len(), 9 | 10) && b[0] != b'0' && b.iter().all(u8::is_ascii_digit)
}

/// Refuses a number a spreadsheet showed in scientific notation (1.63296E+09) and saved so:
/// its last digits are rounded away, and nothing can bring them back.
fn not_scientific(s: &str) -> Result<(), String> {
    let b = s.as_bytes();
    let Some(e) = b.iter().position(|c| matches!(c, b'e' | b'E')) else {
        return Ok(());
    };
    let (mantissa, exp) = (&b[..e], &b[e + 1..]);
    let exp = exp
        .strip_prefix(b"+")
        .or_else(|| exp.strip_prefix(b"-"))
        .unwrap_or(exp);
    let digits_dot = |x: &[u8]| {
        !x.is_empty()
            && x.iter().all(|c| c.is_ascii_digit() || *c == b'.')
            && x.iter().filter(|c| **c == b'.').count() <= 1
    };
    if digits_dot(mantissa) && !exp.is_empty() && exp.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "{s} is a number the spreadsheet shows in scientific notation, and its last digits are lost: format the column as Text, type the number again (with its leading 0) and save"
        ));
    }
    Ok(())
}

/// A UK telephone number in E.164 (+44…), from 0161 496 0000, (0161) 4960000, 44161…, +44 (0)161…,
/// 00 44…, or 1614960000 (the leading 0 Excel drops from a number cell).
pub fn uk_number(input: &str, out: &mut String) -> Result<(), String> {
    out.clear();
    let s = trim(input);
    not_scientific(s)?;
    let (international, rest) = match s.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let digits = digits(rest)?;
    let d = digits.as_str();
    let nsn: &str = if international {
        match d.strip_prefix("44") {
            Some(n) => n,
            None => {
                return Err(format!(
                    "{s} is not a UK number (+44); PL+ numbers are UK numbers"
                ))
            }
        }
    } else if let Some(n) = d.strip_prefix("0044") {
        n
    } else if let Some(n) = d.strip_prefix('0') {
        n
    } else if d.len() == 12 && d.starts_with("44") {
        &d[2..]
    } else {
        // Excel drops the leading 0 from a number cell: 1632960000 was 01632 960000.
        d
    };
    let nsn = nsn.strip_prefix('0').unwrap_or(nsn);
    if nsn.is_empty() {
        return Err(format!("{s:?} has no digits"));
    }
    if !matches!(nsn.as_bytes()[0], b'1'..=b'3' | b'5' | b'7'..=b'9') {
        return Err(format!(
            "{s} does not start like a UK number (01, 02, 03, 05, 07, 08 or 09)"
        ));
    }
    let ok_len = nsn.len() == 10 || (nsn.len() == 9 && nsn.starts_with("800"));
    if !ok_len {
        // Said in the digits the partner typed: "12 has 2 digits after the 0" named a 0 that
        // was not there.
        return Err(if international {
            format!(
                "{s} has {} digits after +44; a UK number has 10 there",
                nsn.len()
            )
        } else {
            format!(
                "{s} has {} digits; a UK number has 11, starting with 0 (01632 960000)",
                d.len()
            )
        });
    }
    out.push_str("+44");
    out.push_str(nsn);
    Ok(())
}

/// A UK number as [`uk_number`], or any number already in international form (+1 415…).
pub fn phone(input: &str, out: &mut String) -> Result<(), String> {
    let s = trim(input);
    not_scientific(s)?;
    if s.starts_with('+') && !s.starts_with("+44") {
        let d = digits(&s[1..])?;
        out.clear();
        out.push('+');
        out.push_str(d.as_str());
        let n = d.len;
        if !(7..=15).contains(&n) {
            return Err(format!(
                "{s} has {n} digits; an international number has 7 to 15"
            ));
        }
        return Ok(());
    }
    uk_number(s, out)
}

/// A number or prefix to block, in E.164 form: "0870" → "+44870", "+1900" stays.
pub fn block_pattern(input: &str, out: &mut String) -> Result<(), String> {
    out.clear();
    let s = trim(input);
    not_scientific(s)?;
    if lost_leading_zero(s) {
        // A whole number stored as a number: its 0 goes back, as for any phone number.
        return uk_number(s, out);
    }
    if let Some(r) = s.strip_prefix('+') {
        out.push('+');
        out.push_str(digits(r)?.as_str());
    } else {
        let d = digits(s)?;
        let d = d.as_str();
        if let Some(n) = d.strip_prefix("00") {
            out.push('+');
            out.push_str(n);
        } else if let Some(n) = d.strip_prefix('0') {
            if n.is_empty() {
                return Err(format!(
                    "{s} alone would block every UK number: give a longer prefix such as 0870"
                ));
            }
            out.push_str("+44");
            out.push_str(n);
        } else {
            return Err(format!(
                "{s} is neither a UK number or prefix starting with 0 nor an international one starting with +"
            ));
        }
    }
    let n = out.len() - 1;
    if !(2..=15).contains(&n) {
        return Err(format!(
            "{s} gives {n} digits; a number or prefix to block has 2 to 15"
        ));
    }
    Ok(())
}

/// Email syntax as people mistype it: one @, a dotted domain, no spaces.
///
/// One pass over the bytes: it runs on most rows of most sheets, and splitting and searching
/// the text several times was a tenth of validating a large Customers file.
pub fn email(input: &str) -> Result<(), String> {
    let s = trim(input);
    let b = s.as_bytes();
    let mut at = None;
    let mut ats = 0;
    let mut spaced = false;
    // The domain's labels, checked as they pass: each non-empty, of letters, digits, hyphens
    // (not at either end) or non-ASCII, and a last one of at least two characters.
    let mut labels_ok = true;
    let mut label_start = 0;
    let mut dots = 0;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'@' => {
                ats += 1;
                if at.is_none() {
                    at = Some(i);
                    label_start = i + 1;
                }
            }
            b' ' | b'\t' | b'\n' | b'\x0c' | b'\r' | b',' | b';' => spaced = true,
            _ => {}
        }
        if at.is_some_and(|a| i > a) && c != b'@' {
            if c == b'.' {
                labels_ok &= label_ok(&b[label_start..i]);
                label_start = i + 1;
                dots += 1;
            } else if !(c.is_ascii_alphanumeric() || c == b'-' || c >= 0x80) {
                labels_ok = false;
            }
        }
    }
    let Some(at) = at else {
        return Err(format!("{s:?} is not an email address: it has no @"));
    };
    if at == 0 || ats > 1 {
        return Err(format!("{s:?} is not an email address"));
    }
    if spaced {
        return Err(format!(
            "{s:?} has a space, comma or semicolon in it: one address per cell"
        ));
    }
    let last = &b[label_start..];
    if !labels_ok || !label_ok(last) || last.len() < 2 || dots == 0 {
        return Err(format!(
            "{s:?} is not an email address: the part after @ is not a domain"
        ));
    }
    Ok(())
}

fn label_ok(label: &[u8]) -> bool {
    !label.is_empty() && label[0] != b'-' && label[label.len() - 1] != b'-'
}

/// A MAC address as 12 upper-case hex digits, from any separators and case.
pub fn mac(input: &str, out: &mut String) -> Result<(), String> {
    out.clear();
    let s = trim(input);
    for ch in s.chars() {
        match ch {
            '0'..='9' | 'A'..='F' => out.push(ch),
            'a'..='f' => out.push(ch.to_ascii_uppercase()),
            ':' | '-' | '.' | ' ' => {}
            _ => {
                return Err(format!(
                    "{s} has {ch:?} in it; a MAC address is 12 hex digits (0-9, A-F)"
                ))
            }
        }
    }
    if out.len() != 12 {
        return Err(format!(
            "{s} has {} hex digits; a MAC address has 12",
            out.len()
        ));
    }
    if out.bytes().all(|b| b == b'0') {
        return Err(format!("{s} is all zeros, which no device has"));
    }
    if out.bytes().all(|b| b == b'F') {
        return Err(format!("{s} is the broadcast address, which no device has"));
    }
    let first = u8::from_str_radix(&out[..2], 16).expect("hex checked");
    if first & 1 == 1 {
        return Err(format!(
            "{s} is a multicast address (its first byte is odd); check the label on the device"
        ));
    }
    Ok(())
}

/// A UK postcode in its standard form: "sw1a1aa" → "SW1A 1AA".
pub fn postcode(input: &str, out: &mut String) -> Result<(), String> {
    out.clear();
    let s = trim(input);
    let mut compact = [0u8; 8];
    let mut n = 0;
    for b in s.bytes() {
        if b == b' ' {
            continue;
        }
        if !b.is_ascii_alphanumeric() || n == compact.len() {
            return Err(format!("{s} is not a UK postcode (like SW1A 1AA)"));
        }
        compact[n] = b.to_ascii_uppercase();
        n += 1;
    }
    let p = &compact[..n];
    let valid = (5..=7).contains(&n) && {
        let (outward, inward) = p.split_at(n - 3);
        let inward_ok = inward[0].is_ascii_digit()
            && inward[1].is_ascii_alphabetic()
            && inward[2].is_ascii_alphabetic();
        let outward_ok = outward[0].is_ascii_alphabetic()
            && outward.iter().any(u8::is_ascii_digit)
            && match outward.len() {
                2 => outward[1].is_ascii_digit(),
                3 | 4 => outward[1..].iter().all(u8::is_ascii_alphanumeric),
                _ => false,
            };
        inward_ok && outward_ok
    };
    if !valid {
        return Err(format!("{s} is not a UK postcode (like SW1A 1AA)"));
    }
    out.push_str(std::str::from_utf8(&p[..n - 3]).expect("ASCII"));
    out.push(' ');
    out.push_str(std::str::from_utf8(&p[n - 3..]).expect("ASCII"));
    Ok(())
}

/// A whole number, accepting the "12.0" a spreadsheet may write for 12.
pub fn whole_number(input: &str) -> Option<u64> {
    let s = trim(input);
    let s = s.strip_suffix(".0").unwrap_or(s);
    s.parse().ok()
}

pub fn contract_months(input: &str) -> Result<u32, String> {
    let s = trim(input);
    let s = s
        .strip_suffix("months")
        .or_else(|| s.strip_suffix("month"))
        .unwrap_or(s)
        .trim();
    match whole_number(s) {
        Some(m @ (1 | 12 | 24 | 36)) => Ok(m as u32),
        _ => Err(format!(
            "{input:?} is not a contract length: use 1, 12, 24 or 36 (months)"
        )),
    }
}

pub fn quantity(input: &str) -> Result<u32, String> {
    match whole_number(input) {
        Some(q @ 1..=100) => Ok(q as u32),
        Some(q) if q > 100 => Err(format!(
            "{q} is more than 100, the most one order line takes: split it into several rows"
        )),
        Some(q) => Err(format!(
            "{q} orders nothing: a quantity is 1 to 100 (remove the row if nothing is wanted)"
        )),
        None => Err(format!(
            "{:?} is not a whole number from 1 to 100",
            trim(input)
        )),
    }
}

/// A time of day as HH:MM, from 9:00, 09.00, 0900, 9am, 5:30pm or 17:30:00.
/// `s` in ASCII lower case, in `buf` when it fits (it does, for any cell these rules accept),
/// so that reading a day or a time allocates nothing.
fn lower<'b>(s: &str, buf: &'b mut [u8; 64]) -> std::borrow::Cow<'b, str> {
    if s.len() > buf.len() {
        return s.to_ascii_lowercase().into();
    }
    let out = &mut buf[..s.len()];
    out.copy_from_slice(s.as_bytes());
    out.make_ascii_lowercase();
    // Changing the case of ASCII letters leaves UTF-8 valid.
    std::str::from_utf8(out).expect("still UTF-8").into()
}

pub fn time(input: &str, out: &mut String) -> Result<u32, String> {
    out.clear();
    let mut buf = [0; 64];
    let s = lower(trim(input), &mut buf);
    let bad = || {
        format!(
            "{:?} is not a time: write it like 09:00 or 17:30",
            trim(input)
        )
    };
    let (body, pm) = if let Some(b) = s.strip_suffix("pm") {
        (b.trim(), Some(true))
    } else if let Some(b) = s.strip_suffix("am") {
        (b.trim(), Some(false))
    } else {
        (&*s, None)
    };
    let (h, m) = match body.split_once([':', '.']) {
        Some((h, rest)) => (h, rest.split(':').next().unwrap_or("")),
        None if body.len() == 4 && pm.is_none() => (&body[..2], &body[2..]),
        None => (body, "00"),
    };
    let mut h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = if m.len() == 2 {
        m.parse().map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    match pm {
        Some(true) if (1..=11).contains(&h) => h += 12,
        Some(false) if h == 12 => h = 0,
        Some(_) if !(1..=12).contains(&h) => return Err(bad()),
        _ => {}
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    use std::fmt::Write;
    let _ = write!(out, "{h:02}:{m:02}");
    Ok(h * 60 + m)
}

fn day_index(word: &str) -> Option<usize> {
    // `word` comes lower-cased already.
    let w = word.trim();
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    if w.len() < 2 {
        return None;
    }
    FULL.iter().position(|f| {
        f.starts_with(w)
            && (w.len() >= 3 || matches!(w, "mo" | "tu" | "we" | "th" | "fr" | "sa" | "su"))
    })
}

/// Opening days as a set (bit 0 = Monday): Mon-Fri, Mon,Wed,Fri, Monday to Saturday, weekdays.
pub fn days(input: &str) -> Result<u8, String> {
    let mut buf = [0; 64];
    let s = lower(trim(input), &mut buf);
    let bad = |part: &str| {
        format!(
            "{:?} is not a day; write days like Mon-Fri or Mon,Wed,Fri",
            part.trim()
        )
    };
    match &*s {
        "weekdays" => return Ok(0b0011111),
        "weekends" | "weekend" => return Ok(0b1100000),
        "every day" | "everyday" | "daily" | "all" => return Ok(0b1111111),
        _ => {}
    }
    let mut set = 0u8;
    for part in s.split([',', ';', '/', '&']).flat_map(|p| p.split(" and ")) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let range = part.split_once('-').or_else(|| part.split_once(" to "));
        match range {
            Some((a, b)) => {
                let a = day_index(a).ok_or_else(|| bad(a))?;
                let b = day_index(b).ok_or_else(|| bad(b))?;
                let mut i = a;
                loop {
                    set |= 1 << i;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => set |= 1 << day_index(part).ok_or_else(|| bad(part))?,
        }
    }
    if set == 0 {
        return Err("no days given; write days like Mon-Fri".into());
    }
    Ok(set)
}

/// The API's day names for a set from [`days`].
pub fn day_names(set: u8) -> Vec<String> {
    (0..7)
        .filter(|i| set & (1 << i) != 0)
        .map(|i| DAYS[i].to_string())
        .collect()
}

/// yes/no, y/n, true/false, 1/0, on/off; blank is None (leave unchanged).
pub fn yes_no(input: &str) -> Result<Option<bool>, String> {
    let s = trim(input);
    if s.is_empty() {
        return Ok(None);
    }
    for (words, v) in [
        (["yes", "y", "true", "1", "on"], true),
        (["no", "n", "false", "0", "off"], false),
    ] {
        if words.iter().any(|w| s.eq_ignore_ascii_case(w)) {
            return Ok(Some(v));
        }
    }
    Err(format!("{s:?} is not yes or no"))
}

pub fn plan(input: &str) -> Result<Plan, String> {
    let s = trim(input);
    for (names, p) in [
        (&["pro", "standard"][..], Plan::Pro),
        (
            &["hardware", "hardware only", "hardware-only"][..],
            Plan::Hardware,
        ),
    ] {
        if names.iter().any(|n| s.eq_ignore_ascii_case(n)) {
            return Ok(p);
        }
    }
    Err(format!(
        "{s:?} is not a plan: use pro (Standard) or hardware (Hardware only)"
    ))
}

pub fn user_type(input: &str) -> Result<UserType, String> {
    let s = trim(input);
    if s.is_empty() || s.eq_ignore_ascii_case("standard") || s.eq_ignore_ascii_case("user") {
        Ok(UserType::Standard)
    } else if s.eq_ignore_ascii_case("admin") || s.eq_ignore_ascii_case("administrator") {
        Ok(UserType::Admin)
    } else {
        Err(format!("{s:?} is not a user type: use admin or standard"))
    }
}

pub fn direction(input: &str) -> Result<Direction, String> {
    let s = trim(input);
    for (names, d) in [
        (&["inbound", "in", "incoming"][..], Direction::Inbound),
        (&["outbound", "out", "outgoing"][..], Direction::Outbound),
        (&["both", "", "in and out", "all"][..], Direction::Both),
    ] {
        if names.iter().any(|n| s.eq_ignore_ascii_case(n)) {
            return Ok(d);
        }
    }
    Err(format!(
        "{s:?} is not a direction: use inbound, outbound or both"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<String, String> {
        let mut out = String::new();
        uk_number(s, &mut out).map(|_| out)
    }

    #[test]
    fn uk_numbers_from_every_usual_form() {
        for s in [
            "0161 496 0000",
            "01614960000",
            "(0161) 496-0000",
            "+44 161 496 0000",
            "+44 (0)161 496 0000",
            "0044 161 4960000",
            "441614960000",
            "1614960000",
            "1614960000.0".trim_end_matches(".0"),
        ] {
            assert_eq!(n(s).as_deref(), Ok("+441614960000"), "{s}");
        }
        assert_eq!(
            n("1632960000").unwrap(),
            "+441632960000",
            "Excel's lost leading zero"
        );
        assert_eq!(n("020 7946 0000").unwrap(), "+442079460000");
    }

    #[test]
    fn uk_numbers_of_the_wrong_length_say_how_many_digits() {
        assert_eq!(
            n("01632 96000").unwrap_err(),
            "01632 96000 has 10 digits; a UK number has 11, starting with 0 (01632 960000)"
        );
        assert!(n("0161 496 00001").unwrap_err().contains("has 12 digits"));
        assert!(n("+44 161 496 000")
            .unwrap_err()
            .contains("9 digits after +44"));
        assert!(n("+1 415 555 0100")
            .unwrap_err()
            .contains("not a UK number"));
        assert!(n("0161 four nine six").is_err());
        assert!(n("0461 496 0000")
            .unwrap_err()
            .contains("does not start like"));
    }

    #[test]
    fn international_phones_are_kept() {
        let mut out = String::new();
        phone("+1 (415) 555-0100", &mut out).unwrap();
        assert_eq!(out, "+14155550100");
        phone("07700 900123", &mut out).unwrap();
        assert_eq!(out, "+447700900123");
    }

    #[test]
    fn block_patterns() {
        let mut out = String::new();
        block_pattern("0870", &mut out).unwrap();
        assert_eq!(out, "+44870");
        block_pattern("+1 900", &mut out).unwrap();
        assert_eq!(out, "+1900");
        block_pattern("00 33 1", &mut out).unwrap();
        assert_eq!(out, "+331");
        assert!(block_pattern("870", &mut out).is_err());
        assert!(block_pattern("0", &mut out).is_err());
        // Issue 11: 01632 960999 typed into a General cell is the number 1632960999.
        block_pattern("1632960999", &mut out).unwrap();
        assert_eq!(out, "+441632960999");
    }

    #[test]
    fn a_number_that_lost_its_zero_is_known_and_scientific_notation_is_refused() {
        assert!(lost_leading_zero("1632960999"));
        assert!(lost_leading_zero("800123456"));
        assert!(!lost_leading_zero("01632960999"));
        assert!(!lost_leading_zero("441632960999"));
        assert!(!lost_leading_zero("0870"));
        assert!(!lost_leading_zero("+441632960999"));
        let mut out = String::new();
        for rule in [uk_number, phone, block_pattern] {
            let e = rule("1.63296E+09", &mut out).unwrap_err();
            assert!(e.contains("scientific notation"), "{e}");
            assert!(rule("1.63296e9", &mut out).is_err());
        }
        phone("1632960999", &mut out).unwrap();
        assert_eq!(out, "+441632960999");
    }

    #[test]
    fn emails() {
        assert!(email("tom@acme-plumbing.example").is_ok());
        assert!(email(" Tom.Baker+ops@acme.co.uk ").is_ok());
        assert!(email("anna@café-ü.example").is_ok());
        assert!(email("x@a-b.c-d.io").is_ok());
        assert!(email("tom").unwrap_err().contains("no @"));
        assert!(email("tom @acme.com").unwrap_err().contains("space"));
        assert!(email("tom@acme").unwrap_err().contains("not a domain"));
        for bad in [
            "tom",
            "tom@",
            "@acme.com",
            "tom@acme",
            "tom@@acme.com",
            "tom @acme.com",
            "a@b.com;c@d.com",
            "tom@-acme.com",
            "tom@acme-.com",
            "tom@acme..com",
            "tom@acme.c",
            "tom@.acme.com",
            "tom@acme.com.",
            "tom@ac_me.com",
            "tom\t@acme.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs() {
        let mut out = String::new();
        for s in [
            "80:5e:c0:12:34:56",
            "80-5E-C0-12-34-56",
            "805E.C012.3456",
            "805ec0123456",
        ] {
            mac(s, &mut out).unwrap();
            assert_eq!(out, "805EC0123456", "{s}");
        }
        assert!(mac("00:00:00:00:00:00", &mut out)
            .unwrap_err()
            .contains("zeros"));
        assert!(mac("FF:FF:FF:FF:FF:FF", &mut out)
            .unwrap_err()
            .contains("broadcast"));
        assert!(mac("01:00:5E:00:00:FB", &mut out)
            .unwrap_err()
            .contains("multicast"));
        assert!(mac("80:5E:C0:12:34", &mut out)
            .unwrap_err()
            .contains("10 hex digits"));
        assert!(mac("80:5E:C0:12:34:5G", &mut out).is_err());
    }

    #[test]
    fn postcodes() {
        let mut out = String::new();
        for (s, want) in [
            ("sw1a1aa", "SW1A 1AA"),
            ("M1 1AE", "M1 1AE"),
            ("b338th", "B33 8TH"),
            (" cr2 6xh ", "CR2 6XH"),
            ("DN551PT", "DN55 1PT"),
            ("W1A 1AA", "W1A 1AA"),
        ] {
            postcode(s, &mut out).unwrap();
            assert_eq!(out, want);
        }
        for bad in ["SW1A", "12345", "SW1A 1A", "SW1A-1AA", "AAAA 1AA"] {
            assert!(postcode(bad, &mut out).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_and_days() {
        let mut out = String::new();
        for (s, want) in [
            ("9:00", "09:00"),
            ("09.00", "09:00"),
            ("0900", "09:00"),
            ("9am", "09:00"),
            ("5:30pm", "17:30"),
            ("17:30:00", "17:30"),
            ("12pm", "12:00"),
            ("12am", "00:00"),
        ] {
            time(s, &mut out).unwrap();
            assert_eq!(out, want, "{s}");
        }
        for bad in ["25:00", "9:5", "noon", "13pm"] {
            assert!(time(bad, &mut out).is_err(), "{bad}");
        }
        assert_eq!(
            day_names(days("Mon-Fri").unwrap()),
            ["mon", "tue", "wed", "thu", "fri"]
        );
        assert_eq!(
            day_names(days("Mon,Wed, friday").unwrap()),
            ["mon", "wed", "fri"]
        );
        assert_eq!(day_names(days("Monday to Saturday").unwrap()).len(), 6);
        assert_eq!(day_names(days("Sat-Mon").unwrap()), ["mon", "sat", "sun"]);
        assert_eq!(days("weekdays").unwrap(), days("mon-fri").unwrap());
        assert!(days("Mon-Funday").unwrap_err().contains("funday"));
    }

    #[test]
    fn enumerations_accept_portal_words() {
        assert_eq!(plan("Standard").unwrap(), Plan::Pro);
        assert_eq!(plan("Hardware only").unwrap(), Plan::Hardware);
        assert!(plan("gold").is_err());
        assert_eq!(yes_no("Y").unwrap(), Some(true));
        assert_eq!(yes_no("").unwrap(), None);
        assert!(yes_no("maybe").is_err());
        assert_eq!(contract_months("24").unwrap(), 24);
        assert_eq!(contract_months("12.0").unwrap(), 12);
        assert!(contract_months("18").is_err());
        assert_eq!(quantity("2.0").unwrap(), 2);
        assert!(quantity("101").is_err());
        assert!(quantity("0").is_err());
    }
}
